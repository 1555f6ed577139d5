#!/usr/bin/env bash
# access-bench.sh: what access control costs. Requests/s of a 1 KiB static
# file on three routes of one server: open, behind basic auth (a bcrypt
# cost-12 user, a valid credential on every request), and behind a rate
# limit that is never reached (per client address, memory store); for
# portico and for nginx (auth_basic with the same htpasswd file,
# limit_req). Prints medians, each route's ratio to the open route, and
# portico/nginx per route. The goal for portico: >= 0.9x the open route.
#
# nginx's auth_basic runs crypt(3) on every request, so with a cost-12
# hash it answers a few requests per second per core; AUTH_COST=5 makes
# the comparison about the rest of the work instead.
#
# usage: bench/access-bench.sh [-d SECONDS] [-c CONNS] [-r ROUNDS]
# env:   PORTICO=path (default: build ./cmd/portico)  NGINX=/usr/sbin/nginx
#        WRK=wrk  AUTH_COST=12  SERVERS="portico nginx"
#
# Servers pinned to CPU 0 (GOMAXPROCS=1 / one worker), wrk to CPU 1.
# Only 127.0.0.1 is used. Everything started is stopped on exit.
set -euo pipefail

DUR=10 CONNS=50 ROUNDS=3
while getopts "d:c:r:h" opt; do
	case $opt in
	d) DUR=$OPTARG ;;
	c) CONNS=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
AUTH_COST=${AUTH_COST:-12}
SERVERS=${SERVERS:-portico nginx}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-access-bench.XXXXXX)
chmod 755 "$TMP" # nginx workers may run as another user
. "$ROOT/bench/lib.sh"

command -v "$WRK" >/dev/null || { echo "wrk not found" >&2; exit 1; }
command -v htpasswd >/dev/null || { echo "htpasswd not found (apt-get install apache2-utils)" >&2; exit 1; }
if [ -n "${PORTICO:-}" ]; then
	cp "$PORTICO" "$TMP/portico"
else
	echo "building portico..." >&2
	(cd "$ROOT" && go build -o "$TMP/portico" ./cmd/portico)
fi

DOCS=$TMP/docs
mkdir -p "$DOCS"
chmod 755 "$DOCS"
head -c 1024 /dev/zero | tr '\0' 'x' >"$DOCS/1k.txt"
htpasswd -cbB -C "$AUTH_COST" "$TMP/users.htpasswd" bench bench-password 2>/dev/null
chmod 644 "$TMP/users.htpasswd"
AUTH="Authorization: Basic $(printf 'bench:bench-password' | base64)"

declare -A PORT
start_portico() {
	local port; port=$(free_port)
	cat >"$TMP/portico.toml" <<EOF
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:$port"]
  [[site.route]]
  path = "/open/"
  static = { root = "$DOCS" }
  [[site.route]]
  path = "/auth/"
  static = { root = "$DOCS" }
  basic_auth = { htpasswd = "$TMP/users.htpasswd", realm = "bench" }
  [[site.route]]
  path = "/limited/"
  static = { root = "$DOCS" }
  rate_limit = { rate = "1000000/s", burst = 1000000, key = "ip" }
EOF
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$TMP/portico" run -c "$TMP/portico.toml" >"$TMP/portico.log" 2>&1 &
	PIDS+=($!)
	PORT[portico]=$port
}

start_nginx() {
	[ -x "$NGINX" ] || { echo "skipping nginx: not found at $NGINX" >&2; return 1; }
	local port; port=$(free_port)
	mkdir -p "$TMP/nginx/logs"
	cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    sendfile on;
    open_file_cache max=1000 inactive=60s;
    keepalive_requests 100000000;
    default_type text/plain;
    limit_req_zone \$binary_remote_addr zone=bench:10m rate=1000000r/s;
    server {
        listen 127.0.0.1:$port;
        location /open/ { alias $DOCS/; }
        location /auth/ { alias $DOCS/; auth_basic "bench"; auth_basic_user_file $TMP/users.htpasswd; }
        location /limited/ { alias $DOCS/; limit_req zone=bench burst=1000000 nodelay; }
    }
}
EOF
	taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.log" &
	PIDS+=($!)
	PORT[nginx]=$port
}

NAMES=()
for s in $SERVERS; do
	if "start_$s"; then NAMES+=("$s"); fi
done
ROUTES=(open auth limited)
for n in "${NAMES[@]}"; do
	port=${PORT[$n]}
	for _ in $(seq 1 100); do
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/open/1k.txt" && break
		sleep 0.1
	done
	# Each route must answer the file, and auth must refuse without a credential.
	for r in "${ROUTES[@]}"; do
		code=$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "http://127.0.0.1:$port/$r/1k.txt")
		[ "$code" = 200 ] || { echo "$n /$r/: $code, want 200" >&2; cat "$TMP/$n.log" "$TMP/nginx/logs/error.log" 2>/dev/null >&2; exit 1; }
	done
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/auth/1k.txt")
	[ "$code" = 401 ] || { echo "$n /auth/ without a credential: $code, want 401" >&2; exit 1; }
done

run_wrk() { # port route -> "rps p99_ms" on stdout
	local out errs
	out=$(taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d"${DUR}s" --latency -H "$AUTH" "http://127.0.0.1:$1/$2/1k.txt" 2>&1)
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
	[ -n "$errs" ] && echo "  $2: $errs" >&2
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; print v }')
	echo "$rps ${p99:-0}"
}

median() { echo "$@" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A RPS P99
for round in $(seq 1 "$ROUNDS"); do
	for n in "${NAMES[@]}"; do
		for r in "${ROUTES[@]}"; do
			read -r rps p99 < <(run_wrk "${PORT[$n]}" "$r")
			RPS[$n.$r]+="$rps "
			P99[$n.$r]+="$p99 "
			printf "round %d %-8s %-8s %10.0f req/s  p99 %8.2f ms\n" "$round" "$n" "$r" "$rps" "$p99" >&2
		done
	done
done

echo
echo "1 KiB static file, wrk -c$CONNS -d${DUR}s, $ROUNDS rounds, medians; bcrypt cost $AUTH_COST"
echo "servers on CPU $SERVER_CPU (one worker / GOMAXPROCS=1); wrk on CPU $LOAD_CPU"
printf "%-8s %-8s %12s %12s %12s\n" server route "req/s" "x open" "p99 ms"
declare -A MED
for n in "${NAMES[@]}"; do
	for r in "${ROUTES[@]}"; do
		MED[$n.$r]=$(median ${RPS[$n.$r]})
	done
	for r in "${ROUTES[@]}"; do
		printf "%-8s %-8s %12.0f %12.3f %12.2f\n" "$n" "$r" "${MED[$n.$r]}" "$(awk -v a="${MED[$n.$r]}" -v b="${MED[$n.open]}" 'BEGIN { print (b > 0) ? a / b : 0 }')" "$(median ${P99[$n.$r]})"
	done
done
if [ -n "${MED[nginx.open]:-}" ] && [ -n "${MED[portico.open]:-}" ]; then
	for r in "${ROUTES[@]}"; do
		printf "portico/nginx %-8s %8.3f\n" "$r" "$(awk -v a="${MED[portico.$r]}" -v b="${MED[nginx.$r]}" 'BEGIN { print (b > 0) ? a / b : 0 }')"
	done
fi
