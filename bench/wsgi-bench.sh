#!/usr/bin/env bash
# wsgi-bench.sh: requests per second of a hello-world WSGI app, with the
# same number of Python workers, through
#   portico   its own wsgi worker pool (wsgi = { app = ..., workers = N })
#   gunicorn  Debian's gunicorn, sync workers, clients straight to it
#   nginx+gunicorn  the usual deployment: nginx proxy_pass to gunicorn's
#             unix socket
# Servers (and their Python workers) are pinned to CPU 0, wrk to CPU 1;
# rounds are interleaved so drift in the machine's load hits all alike;
# the median of each is printed with the ratios. Traffic stays on 127.0.0.1.
#
# Usage: bench/wsgi-bench.sh
# Knobs: ROUNDS=3 DURATION=5s CONNS=16 WORKERS=2 PORTICO=path (skip the
#        build) PYTHON=/usr/bin/python3
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-16}
WORKERS=${WORKERS:-2}
PYTHON=${PYTHON:-/usr/bin/python3}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-wsgi-bench.XXXXXX)
chmod 755 "$TMP"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

need() { command -v "$1" >/dev/null || { echo "wsgi-bench: $1 not found" >&2; exit 1; }; }
need taskset; need wrk; need curl; need gunicorn; need nginx

cat >"$TMP/hello.py" <<'EOF'
def app(environ, start_response):
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
EOF

if [[ -z "${PORTICO:-}" ]]; then
	echo "wsgi-bench: building portico..." >&2
	(cd "$ROOT" && go build -o "$TMP/portico" ./cmd/portico)
	PORTICO="$TMP/portico"
fi

p_port=$(free_port)
cat >"$TMP/portico.toml" <<EOF
[server]
access_log = "off"
[[site]]
name = "bench"
listen = ["127.0.0.1:$p_port"]
  [[site.route]]
  path = "/"
  wsgi = { app = "hello:app", dir = "$TMP", workers = $WORKERS, python = "$PYTHON" }
EOF
taskset -c "$SERVER_CPU" "$PORTICO" run -c "$TMP/portico.toml" </dev/null >"$TMP/portico.log" 2>&1 &
PIDS+=($!)

# gunicorn alone, on TCP.
g_port=$(free_port)
(cd "$TMP" && exec taskset -c "$SERVER_CPU" gunicorn -w "$WORKERS" -k sync -b "127.0.0.1:$g_port" \
	--error-logfile "$TMP/gunicorn.log" hello:app) </dev/null >/dev/null 2>&1 &
PIDS+=($!)

# gunicorn behind nginx (one nginx worker), on a unix socket.
n_port=$(free_port)
(cd "$TMP" && exec taskset -c "$SERVER_CPU" gunicorn -w "$WORKERS" -k sync -b "unix:$TMP/gunicorn.sock" \
	--error-logfile "$TMP/gunicorn2.log" hello:app) </dev/null >/dev/null 2>&1 &
PIDS+=($!)
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    upstream app { server unix:$TMP/gunicorn.sock; }
    server {
        listen 127.0.0.1:$n_port;
        location / {
            proxy_pass http://app;
            proxy_set_header Host \$host;
        }
    }
}
EOF
taskset -c "$SERVER_CPU" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" </dev/null >"$TMP/nginx/out.log" 2>&1 &
PIDS+=($!)

declare -A port=([portico]=$p_port [gunicorn]=$g_port [nginx+gunicorn]=$n_port)
names=(portico gunicorn nginx+gunicorn)
for n in "${names[@]}"; do
	wait_port "${port[$n]}"
	# nginx answers (502) before gunicorn listens: wait for the app itself.
	for _ in $(seq 1 100); do
		body=$(curl -sf "http://127.0.0.1:${port[$n]}/" || true)
		[[ "$body" == "Hello, world!" ]] && break
		sleep 0.1
	done
	[[ "$body" == "Hello, world!" ]] || { echo "wsgi-bench: $n answered '$body'" >&2; exit 1; }
done

declare -A results
echo "wsgi-bench: $ROUNDS rounds of $DURATION, $CONNS connections, $WORKERS Python workers each, servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU"
for ((r = 1; r <= ROUNDS; r++)); do
	for n in "${names[@]}"; do
		out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:${port[$n]}/")
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		errs=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
		results[$n]+="$rps "
		printf '  round %d  %-15s %10s req/s %s\n' "$r" "$n" "$rps" "$errs"
	done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
declare -A med
echo
for n in "${names[@]}"; do
	med[$n]=$(median <<<"${results[$n]}")
	printf '%-15s median %10s req/s\n' "$n" "${med[$n]}"
done
awk -v p="${med[portico]}" -v g="${med[gunicorn]}" -v x="${med[nginx+gunicorn]}" 'BEGIN {
	if (g > 0) printf "portico/gunicorn         %.2fx\n", p / g
	if (x > 0) printf "portico/nginx+gunicorn   %.2fx\n", p / x
}'
