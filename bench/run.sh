#!/usr/bin/env bash
# Load benchmark (not a test): the API under wrk against the same SQL run raw by pgbench,
# on a fresh database that is dropped at the end. Everything targets 127.0.0.1.
#
# Env: DATABASE_URL  server to use (default postgresql://root@127.0.0.1:5432/test; only its
#                    host and credentials are used: the run gets its own ml_bench_* database)
#      REDIS_URL     optional; shares rate-limit counters between the API workers
#      WORKERS (2)   API processes     GUESTS (2000)  guests to load
#      DURATION (20) seconds per run   WARMUP (5)     seconds of warm-up before each run
# Output: a table on stdout and in bench/results/latest.md (also the server log there).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
cd "$ROOT"

export WORKERS=${WORKERS:-2} GUESTS=${GUESTS:-2000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
export DURATION=${DURATION%s} WARMUP=${WARMUP%s}
for knob in WORKERS GUESTS DURATION WARMUP; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $knob must be a positive integer" >&2; exit 2; }
done
SERVER_URL=${DATABASE_URL:-postgresql://root@127.0.0.1:5432/test}
CONNECTIONS=32
SCENARIOS=(identify sale pos_commit)
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
rm -f "$RESULTS"/wrk_*.txt "$RESULTS"/pgbench_*.txt "$RESULTS/server.log"  # last run's
SERVER_PID=""
DB_CREATED=""

cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ]; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$DB_CREATED" ]; then
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" || true
  fi
  if [ -f "$WORK/server.log" ]; then cp "$WORK/server.log" "$RESULTS/server.log"; fi
  cp "$WORK"/wrk_*.txt "$WORK"/pgbench_*.txt "$RESULTS/" 2>/dev/null || true
  if [ "$status" -ne 0 ] && [ -f "$WORK/server.log" ]; then
    log "failed; last lines of the server log:"
    tail -n 30 "$WORK/server.log" >&2
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

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
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

export BENCH_DATA=$WORK BENCH_LUA=$BENCH/lua
# CPU (user + system clock ticks) used so far by the server's processes: CPU per request
# holds up better than req/s on a machine shared with other work.
server_ticks() {
  local total=0 pid
  for pid in $(pgrep -g "$SERVER_PID"); do
    total=$((total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
run_wrk() { # scenario seconds tag
  RUN_TAG=$3 wrk -c "$CONNECTIONS" -t 2 -d "${2}s" --timeout 10s --latency \
    -s "$BENCH/lua/$1.lua" "$BASE"
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

for s in "${SCENARIOS[@]}"; do
  log "app $s: warm-up ${WARMUP}s, then ${DURATION}s"
  run_wrk "$s" "$WARMUP" warmup >"$WORK/wrk_${s}_warmup.txt"
  cut -d' ' -f1 /proc/loadavg >"$WORK/load_$s.txt"  # a busy machine skews both sides
  ticks=$(server_ticks)
  run_wrk "$s" "$DURATION" main >"$WORK/wrk_$s.txt"
  echo "$(($(server_ticks) - ticks)) $(getconf CLK_TCK)" >"$WORK/cpu_$s.txt"
  grep -E "Requests/sec|50%|99%|BENCH|Non-2xx|Socket" "$WORK/wrk_$s.txt" >&2 || true
  log "raw $s: warm-up ${WARMUP}s, then ${DURATION}s"
  run_pgbench "$s" "$WARMUP" >"$WORK/pgbench_${s}_warmup.txt" 2>&1
  run_pgbench "$s" "$DURATION" -r -l --log-prefix="$WORK/pgb_$s" >"$WORK/pgbench_$s.txt" 2>&1 \
    || { cat "$WORK/pgbench_$s.txt" >&2; exit 1; }
  grep -E "^tps|^latency average|failed" "$WORK/pgbench_$s.txt" >&2 || true
done

# Both sides keep the ledger's invariants; a mismatch here is a finding, not noise.
log "ledger verify"
if timeout 120 .venv/bin/maxloyalty ledger verify --tenant bench >"$WORK/verify.log" 2>&1; then
  grep -v '…' "$WORK/verify.log" >&2
else
  log "ledger verify FAILED:"
  cat "$WORK/verify.log" >&2
fi
# JSON lines are the app's own log entries (all at WARNING or above in this run).
log "server log: $(grep -c '^{' "$WORK/server.log" || true) entries (bench/results/server.log)"

echo
"$PY" "$BENCH/report.py" "$WORK" "${SCENARIOS[@]}"
