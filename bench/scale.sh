#!/usr/bin/env bash
# Scale scenario (not a test): do the till's calls cost the same on a network with 10 million
# ledger rows as on one with 10 thousand, and does the daily expiry of a million due lots
# finish within a minute? On a fresh database beside DATABASE_URL, dropped at the end;
# everything targets 127.0.0.1. See bench/README.md.
#
# Env: DATABASE_URL  server to use (default postgresql://root@127.0.0.1:5432/test; only its
#                    host and credentials: the run gets its own ml_bench_* database)
#      CARDS (100000)  guests of the big network (100 ledger rows each)
#      SMALL (100)     guests of the small one     CALLS (300) measured calls of each kind
#      KEEP            set: keep the database (its URL is printed) to look at it afterwards
# Output: the table on stdout and in bench/results/scale.md (plans and timings beside it).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
cd "$ROOT"

export CARDS=${CARDS:-100000} SMALL=${SMALL:-100} CALLS=${CALLS:-300}
for knob in CARDS SMALL CALLS; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || { echo "scale: $knob must be a positive integer" >&2; exit 2; }
done
SERVER_URL=${DATABASE_URL:-postgresql://root@127.0.0.1:5432/test}
PY=${PY:-.venv/bin/python}
log() { printf '== %s\n' "$*" >&2; }
for tool in psql curl; do
  command -v "$tool" >/dev/null || { log "$tool is needed (apt-get install postgresql-client curl)"; exit 1; }
done
[ -x "$PY" ] || make install

DB_NAME=ml_bench_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
urls=$("$PY" - "$SERVER_URL" "$DB_NAME" <<'PYEOF'
import sys
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1]).set(drivername="postgresql")
if url.host not in (None, "127.0.0.1", "localhost", "::1"):
    sys.exit(f"scale: refusing a database on {url.host}; only loopback targets")
print(url.render_as_string(hide_password=False))
print(url.set(database=sys.argv[2]).render_as_string(hide_password=False))
PYEOF
)
ADMIN_URL=$(sed -n 1p <<<"$urls")
BENCH_URL=$(sed -n 2p <<<"$urls")
WORK=$(mktemp -d -t ml_scale.XXXXXX)
RESULTS=$BENCH/results
mkdir -p "$RESULTS"
SERVER_PID=""
DB_CREATED=""

cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ]; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$DB_CREATED" ] && [ -n "${KEEP:-}" ]; then
    log "kept $BENCH_URL (KEEP); drop it when done"
  elif [ -n "$DB_CREATED" ]; then
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" || true
  fi
  for f in "$WORK"/*.txt "$WORK"/*.json "$WORK"/*.log; do
    [ -f "$f" ] && cp "$f" "$RESULTS/scale_$(basename "$f")"
  done
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
export DATABASE_URL=$BENCH_URL MAXLOYALTY_DATA_DIR=$WORK/data MAXLOYALTY_LOG_LEVEL=WARNING \
  MAXLOYALTY_RATE_LIMIT_IDENTIFY=1000000/minute \
  MAXLOYALTY_RATE_LIMIT_IDENTIFY_TENANT=1000000/minute \
  MAXLOYALTY_RATE_LIMIT_DEFAULT=1000000/minute \
  MAXLOYALTY_RATE_LIMIT_LOGIN=1000/minute \
  MAXLOYALTY_RUN_WORKER_IN_PROCESS=false
"$PY" -m maxloyalty migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; exit 1; }

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
setsid "$PY" -m maxloyalty serve --port "$PORT" --workers 1 --no-worker >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited"; exit 1; }
  sleep 0.5
done
curl -fsS -o /dev/null "$BASE/readyz" || { log "server not ready after 60 s"; exit 1; }

"$PY" "$BENCH/scale.py" setup "$BASE" "$WORK" small big
rows() { psql -At "$BENCH_URL" -c "SELECT count(*) FROM point_transactions t JOIN tenants n ON n.id = t.tenant_id WHERE n.slug = '$1'"; }
load() { # slug cards
  local started=$SECONDS
  # shellcheck disable=SC2046 # the vars file holds -v options
  psql -q "$BENCH_URL" $(cat "$WORK/$1.vars") -v cards="$2" -f "$BENCH/scale_load.sql" \
    >"$WORK/load_$1.log" 2>&1 || { cat "$WORK/load_$1.log" >&2; exit 1; }
  log "$1: $2 cards, $(rows "$1") ledger rows loaded in $((SECONDS - started)) s"
}

# Both networks are measured as the hourly job leaves them (nothing due), after a VACUUM
# and a checkpoint: a million fresh rows otherwise keep autovacuum and the disk busy for
# minutes, and every commit's WAL flush waits behind them.
settle() {
  local started=$SECONDS
  psql -q "$BENCH_URL" -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
  log "vacuum and checkpoint: $((SECONDS - started)) s"
}

log "small network: $SMALL cards"
load small "$SMALL"
"$PY" "$BENCH/scale.py" expire "$WORK" small
settle
"$PY" "$BENCH/scale.py" measure "$BASE" "$WORK" small

log "big network: $CARDS cards (the load takes minutes)"
load big "$CARDS"
printf '{"small": %s, "big": %s}\n' "$(rows small)" "$(rows big)" >"$WORK/sizes.json"
psql -At "$BENCH_URL" -c "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class WHERE relname IN ('point_transactions', 'point_lots', 'lot_allocations', 'ledger_operations')" >"$WORK/sizes.txt"
psql -At "$BENCH_URL" -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'point_transactions'::regclass" >>"$WORK/sizes.txt"

log "plans of the hot queries"
"$PY" "$BENCH/scale.py" explain "$WORK" big >/dev/null
log "daily expiry"
"$PY" "$BENCH/scale.py" expire "$WORK" big
settle
"$PY" "$BENCH/scale.py" measure "$BASE" "$WORK" big
log "ledger verify"
"$PY" "$BENCH/scale.py" verify "$WORK" small big
"$PY" -m maxloyalty ledger verify --tenant small >&2

echo
"$PY" "$BENCH/scale.py" report "$WORK" small big | tee "$WORK/scale.md"
cp "$WORK/scale.md" "$RESULTS/scale.md"
