#!/usr/bin/env bash
# `make run`: a master, one local worker and the web dashboard, SQLite under ./var.
# Ctrl-C stops them all cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${FARMHAND_HOST:-127.0.0.1}
PORT=${FARMHAND_PORT:-6000}
WEB_PORT=${FARMHAND_DASHBOARD_PORT:-8080}
mkdir -p var

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

"$PY" master.py --host "$HOST" --port "$PORT" --data-dir var > var/master.out 2> >(tee -a var/master.log >&2) &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening on" var/master.out 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "the master failed to start (see above)" >&2; exit 1; }
  sleep 0.1
done

"$PY" worker.py --master "$HOST:$PORT" --work-dir var/work 2> >(tee -a var/worker.log >&2) &
pids+=($!)

"$PY" -m dashboard --master "$HOST:$PORT" --host "$HOST" --port "$WEB_PORT" > var/dashboard.out \
  2> >(tee -a var/dashboard.log >&2) &
pids+=($!)
dashboard_url=""
for _ in $(seq 100); do
  dashboard_url=$(grep -o 'http://[^ ]*' var/dashboard.out 2>/dev/null || true)
  [ -n "$dashboard_url" ] && break
  kill -0 "${pids[2]}" 2>/dev/null || { echo "the dashboard failed to start (see above)" >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

  farmhand is running: master on $HOST:$PORT, one local worker, the dashboard, SQLite in ./var
    dashboard: $dashboard_url
               first admin: $PY -m dashboard create-admin NAME --master $HOST:$PORT
    console:   telnet $HOST $PORT      (try: clients, disable NAME, enable NAME, help)
    JSON-RPC:  echo '{"jsonrpc":"2.0","id":1,"method":"clients.list"}' | python3 -c \\
               'import socket,sys; s=socket.create_connection(("$HOST",$PORT)); s.sendall(sys.stdin.buffer.read()); print(s.makefile().readline())'
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
