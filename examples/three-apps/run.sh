#!/bin/sh
# Start three gunicorn instances of app.py on 127.0.0.1:8081..8083 and
# portico in front of them on 127.0.0.1:8080. Ctrl-C stops everything.
set -eu
cd "$(dirname "$0")"
PORTICO=${PORTICO:-portico}
GUNICORN=${GUNICORN:-gunicorn}
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for i in 1 2 3; do
    INSTANCE=$i "$GUNICORN" --workers 1 --bind 127.0.0.1:808$i app:application &
    pids="$pids $!"
done
"$PORTICO" run -c portico.toml &
pids="$pids $!"
wait
