#!/usr/bin/env bash
# `make run`: a master and one local worker on SQLite under ./var. Ctrl-C stops both cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${FARMHAND_HOST:-127.0.0.1}
PORT=${FARMHAND_PORT:-6000}
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

cat <<MSG

  farmhand is running: master on $HOST:$PORT, one local worker, SQLite in ./var
    console:   telnet $HOST $PORT      (try: clients, disable NAME, enable NAME, help)
    JSON-RPC:  echo '{"jsonrpc":"2.0","id":1,"method":"clients.list"}' | python3 -c \\
               'import socket,sys; s=socket.create_connection(("$HOST",$PORT)); s.sendall(sys.stdin.buffer.read()); print(s.makefile().readline())'
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
