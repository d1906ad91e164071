#!/usr/bin/env bash
# Load benchmark (not a test): the API under wrk against the same SQL run raw by pgbench and
# against the floor (bench/floor_app.py: FastAPI + asyncpg doing the least the calls need,
# served the same way), on a fresh database that is dropped at the end. Everything targets
# 127.0.0.1.
#
# Env: DATABASE_URL  server to use (default postgresql://root@127.0.0.1:5432/test; only its
#                    host and credentials are used: the run gets its own ml_bench_* database)
#      REDIS_URL     optional; shares rate-limit counters between the API workers
#      WORKERS (2)   API processes     GUESTS (2000)  guests to load
#      DURATION (20) seconds per run   WARMUP (5)     seconds of warm-up before each run
#      RUNS (1)      measured rounds (every scenario, warm-up included); the table gives the
#                    median of each figure, bench/results/latest.md each round's too
# Output: a table on stdout and in bench/results/latest.md (also the servers' logs there).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
cd "$ROOT"

export WORKERS=${WORKERS:-2} GUESTS=${GUESTS:-2000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
export DURATION=${DURATION%s} WARMUP=${WARMUP%s} RUNS=${RUNS:-1}
for knob in WORKERS GUESTS DURATION WARMUP RUNS; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $knob must be a positive integer" >&2; exit 2; }
done
SERVER_URL=${DATABASE_URL:-postgresql://root@127.0.0.1:5432/test}
CONNECTIONS=32
PY=.venv/bin/python

LOAD_AT_START=$(cut -d' ' -f1 /proc/loadavg)  # before we add any: others' work
export LOAD_AT_START
log() { printf '== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- tools: install only what is missing
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
# /usr/bin/pgbench may be Debian's wrapper without a binary behind it: ask it to run.
pgbench --version >/dev/null 2>&1 || missing+=(postgresql-contrib)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
[ -x .venv/bin/maxloyalty ] || make install

# --- a fresh database beside the one in DATABASE_URL (loopback only)
DB_NAME=ml_bench_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
urls=$("$PY" - "$SERVER_URL" "$DB_NAME" <<'EOF'
import sys
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1]).set(drivername="postgresql")
if url.host not in (None, "127.0.0.1", "localhost", "::1"):
    sys.exit(f"bench: refusing a database on {url.host}; only loopback targets")
print(url.render_as_string(hide_password=False))
print(url.set(database=sys.argv[2]).render_as_string(hide_password=False))
EOF
)
ADMIN_URL=$(sed -n 1p <<<"$urls")
BENCH_URL=$(sed -n 2p <<<"$urls")
WORK=$(mktemp -d -t ml_bench.XXXXXX)
RESULTS=$BENCH/results
mkdir -p "$RESULTS"
rm -rf "$RESULTS"/run[0-9]* "$RESULTS/server.log" "$RESULTS/floor.log"  # last run's
SERVER_PID=""
FLOOR_PID=""
DB_CREATED=""

stop_group() { # leader pid: the server and its workers
  kill -TERM -- "-$1" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$1" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$1" 2>/dev/null || true
}
cleanup() {
  local status=$? run
  if [ -n "$FLOOR_PID" ]; then stop_group "$FLOOR_PID"; fi
  if [ -n "$SERVER_PID" ]; then stop_group "$SERVER_PID"; fi
  if [ -n "$DB_CREATED" ]; then
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" || true
  fi
  cp "$WORK/server.log" "$WORK/floor.log" "$RESULTS/" 2>/dev/null || true
  for run in "$WORK"/run*; do
    [ -d "$run" ] || continue
    mkdir -p "$RESULTS/${run##*/}"
    cp "$run"/wrk_*.txt "$run"/pgbench_*.txt "$RESULTS/${run##*/}/" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for server in server floor; do
      [ -s "$WORK/$server.log" ] || continue
      log "failed; last lines of the $server log:"
      tail -n 30 "$WORK/$server.log" >&2
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "database $DB_NAME"
psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "CREATE DATABASE \"$DB_NAME\""
DB_CREATED=1

# The server's environment; the rate limits would otherwise throttle the run itself.
# MAXLOYALTY_RUN_WORKER_IN_PROCESS: `serve --workers 1 --no-worker` alone still starts the
# job worker (its settings are read before the flag is applied).
export DATABASE_URL=$BENCH_URL MAXLOYALTY_DATA_DIR=$WORK/data MAXLOYALTY_LOG_LEVEL=WARNING \
  MAXLOYALTY_RATE_LIMIT_IDENTIFY=1000000/minute \
  MAXLOYALTY_RATE_LIMIT_IDENTIFY_TENANT=1000000/minute \
  MAXLOYALTY_RATE_LIMIT_DEFAULT=1000000/minute \
  MAXLOYALTY_RATE_LIMIT_LOGIN=1000/minute \
  MAXLOYALTY_RUN_WORKER_IN_PROCESS=false
.venv/bin/maxloyalty migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; exit 1; }

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
log "server on $BASE, $WORKERS workers, redis: ${REDIS_URL:-none}"
# Own session, so the whole process tree (uvicorn's workers) stops with one signal.
setsid .venv/bin/maxloyalty serve --port "$PORT" --workers "$WORKERS" --no-worker \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited"; exit 1; }
  sleep 0.5
done
curl -fsS -o /dev/null "$BASE/readyz" || { log "server not ready after 60 s"; exit 1; }

log "loading $GUESTS guests through the API"
started=$SECONDS
"$PY" "$BENCH/load_data.py" "$BASE" "$WORK"
log "loaded in $((SECONDS - started)) s"
set -a
# shellcheck disable=SC1091
source "$WORK/bench.env"
set +a

# pgbench's side: a numbered map of the cards, and the ids the app would have in hand.
psql -q -v ON_ERROR_STOP=1 "$BENCH_URL" <<SQL
CREATE TABLE bench_cards (n serial PRIMARY KEY, card_id uuid NOT NULL, code text NOT NULL,
                          guest_id uuid NOT NULL);
\copy bench_cards (card_id, code, guest_id) FROM '$WORK/cards.tsv'
GRANT SELECT ON bench_cards TO maxloyalty_app;
ANALYZE;
SQL
read -r KEY_ID KEY_HASH SYSTEM_ID POS_KEY_ID < <(psql -AtF ' ' "$BENCH_URL" -c "
  SELECT k.id, k.key_hash, s.id, p.api_key_id FROM api_keys k CROSS JOIN loyalty_systems s
  CROSS JOIN pos_integrations p WHERE k.id <> p.api_key_id")
NCARDS=$(wc -l <"$WORK/cards.tsv")

# The floor: same server (uvicorn, $WORKERS processes, the flags `maxloyalty serve` uses),
# same database, as the app role; it needs the tenant, which the API finds from the key.
FLOOR_PORT=$(free_port)
FLOOR_BASE=http://127.0.0.1:$FLOOR_PORT
log "floor on $FLOOR_BASE, $WORKERS workers"
FLOOR_DATABASE_URL=$BENCH_URL FLOOR_TENANT_ID=$TENANT_ID \
  setsid "$PY" "$BENCH/floor_app.py" --port "$FLOOR_PORT" --workers "$WORKERS" \
  >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
# Any HTTP answer (a 404 here) means it listens; then one real lookup must succeed.
for _ in $(seq 1 60); do
  curl -sS -o /dev/null "$FLOOR_BASE/" 2>/dev/null && break
  kill -0 "$FLOOR_PID" 2>/dev/null || { log "floor exited"; exit 1; }
  sleep 0.5
done
curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  -d "{\"code\": \"$(head -n 1 "$WORK/codes.txt")\"}" "$FLOOR_BASE/identify" \
  || { log "the floor's lookup failed"; exit 1; }

export BENCH_DATA=$WORK BENCH_LUA=$BENCH/lua
# CPU (user + system clock ticks) used so far by a server's processes (its process group):
# CPU per request holds up better than req/s on a machine shared with other work.
server_ticks() { # leader pid
  local total=0 pid
  for pid in $(pgrep -g "$1"); do
    total=$((total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
run_wrk() { # scenario seconds tag base-url
  RUN_TAG=$3 wrk -c "$CONNECTIONS" -t 2 -d "${2}s" --timeout 10s --latency \
    -s "$BENCH/lua/$1.lua" "$4"
}
# Connected as the owner, acting as the app's role: row-level security applies as it does
# to the app. request_hash only needs to be some 64-hex string: the key hash is one.
run_pgbench() { # scenario seconds [extra options]
  local scenario=$1 seconds=$2
  shift 2
  PGOPTIONS="-c role=maxloyalty_app" pgbench -n -M prepared -c "$CONNECTIONS" -j 2 \
    -T "$seconds" -f "$BENCH/sql/$scenario.sql" \
    -D tenant="$TENANT_ID" -D restaurant="$RESTAURANT_ID" -D system="$SYSTEM_ID" \
    -D key_id="$KEY_ID" -D key_hash="$KEY_HASH" -D ncards="$NCARDS" \
    -D pos_key_id="$POS_KEY_ID" -D pos_integration="$POS_INTEGRATION_ID" \
    -D active=ACTIVE -D deleted=DELETED -D request_hash="$KEY_HASH" \
    -D answer="$(cat "$BENCH/sql/answer.json")" "$@" "$BENCH_URL"
}

# One scenario through HTTP (the API or the floor), into the run's directory $DIR.
measure_http() { # scenario base-url server-leader-pid
  local s=$1 ticks
  log "$s: warm-up ${WARMUP}s, then ${DURATION}s"
  run_wrk "$s" "$WARMUP" warmup "$2" >"$DIR/wrk_${s}_warmup.txt"
  cut -d' ' -f1 /proc/loadavg >"$DIR/load_$s.txt"  # a busy machine skews every side
  ticks=$(server_ticks "$3")
  run_wrk "$s" "$DURATION" main "$2" >"$DIR/wrk_$s.txt"
  echo "$(($(server_ticks "$3") - ticks)) $(getconf CLK_TCK)" >"$DIR/cpu_$s.txt"
  grep -E "Requests/sec|50%|99%|BENCH|Non-2xx|Socket" "$DIR/wrk_$s.txt" >&2 || true
}
measure_raw() { # scenario
  local s=$1
  log "raw $s: warm-up ${WARMUP}s, then ${DURATION}s"
  run_pgbench "$s" "$WARMUP" >"$DIR/pgbench_${s}_warmup.txt" 2>&1
  run_pgbench "$s" "$DURATION" -r -l --log-prefix="$DIR/pgb_$s" >"$DIR/pgbench_$s.txt" 2>&1 \
    || { cat "$DIR/pgbench_$s.txt" >&2; exit 1; }
  grep -E "^tps|^latency average|failed" "$DIR/pgbench_$s.txt" >&2 || true
}

# Each hot path beside its raw SQL and its floor call, close together in time.
for run in $(seq 1 "$RUNS"); do
  DIR=$WORK/run$run
  mkdir -p "$DIR"
  log "run $run of $RUNS"
  measure_http identify "$BASE" "$SERVER_PID"
  measure_raw identify
  measure_http floor_identify "$FLOOR_BASE" "$FLOOR_PID"
  measure_http sale "$BASE" "$SERVER_PID"
  measure_raw sale
  measure_raw accrue
  measure_http floor_accrue "$FLOOR_BASE" "$FLOOR_PID"
  measure_http pos_commit "$BASE" "$SERVER_PID"
  measure_raw pos_commit
done

# Every side keeps the ledger's invariants; a mismatch here is a finding, not noise.
log "ledger verify"
VERIFIED=""
if timeout 120 .venv/bin/maxloyalty ledger verify --tenant bench >"$WORK/verify.log" 2>&1; then
  VERIFIED=1
  grep -v '…' "$WORK/verify.log" >&2
  echo "clean ($(grep -E 'cards, [0-9]+ mismatches' "$WORK/verify.log" | head -n 1))" \
    >"$WORK/verify.txt"
else
  log "ledger verify FAILED:"
  cat "$WORK/verify.log" >&2
  echo "FAILED: $(grep -m 1 -E 'mismatches|Error' "$WORK/verify.log" || tail -n 1 "$WORK/verify.log")" \
    >"$WORK/verify.txt"
fi
# JSON lines are the app's own log entries (all at WARNING or above in this run).
log "server log: $(grep -c '^{' "$WORK/server.log" || true) entries (bench/results/server.log)"

echo
"$PY" "$BENCH/report.py" "$WORK"
[ -n "$VERIFIED" ]
