#!/usr/bin/env bash
# wrk-static.sh: portico against nginx (and lighttpd, if installed) serving
# static files on one core.
#
#   go build -o portico ./cmd/portico
#   bench/wrk-static.sh [PORTICO_BINARY]      (default ./portico)
#
# Each server is pinned to CPU 0 (taskset -c 0; Go then runs with
# GOMAXPROCS=1), wrk to CPU 1. Tests, in interleaved rounds so that a noisy
# neighbour hurts every server alike:
#   ka     1 KiB file, keep-alive                      (requests/s)
#   close  1 KiB file, new connection per request      (requests/s)
#   big    1 MiB file, keep-alive                      (MB/s)
# It prints each server's median and the ratio portico/nginx.
#
# Environment: ROUNDS (5), DURATION (10s), CONNS (50), SERVERS
# ("portico nginx lighttpd"), SERVER_CPU (0), CLIENT_CPU (1),
# NGINX (/usr/sbin/nginx), LIGHTTPD (/usr/sbin/lighttpd), WRK (/usr/bin/wrk).
# The script builds nothing and leaves no process behind (trap).
set -euo pipefail

PORTICO=${1:-./portico}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NGINX=${NGINX:-/usr/sbin/nginx}
LIGHTTPD=${LIGHTTPD:-/usr/sbin/lighttpd}
WRK=${WRK:-/usr/bin/wrk}
SERVERS=${SERVERS:-portico nginx lighttpd}
TESTS=${TESTS:-ka close big}

die() { echo "wrk-static: $*" >&2; exit 1; }
[ -x "$WRK" ] || die "wrk not found at $WRK"
command -v taskset >/dev/null || die "taskset not found"

TMP=$(mktemp -d /tmp/wrk-static.XXXXXX)
chmod 755 "$TMP" # nginx workers may run as nobody
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The files served.
DOCS=$TMP/docs
mkdir -p "$DOCS"
head -c 1024 /dev/zero | tr '\0' 'x' >"$DOCS/1k.txt"
head -c $((1 << 20)) /dev/urandom >"$DOCS/1m.bin"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port name
	local i
	for i in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "$2 did not start on port $1 (see $TMP/*.log)"
}

declare -A PORT

start_portico() {
	[ -x "$PORTICO" ] || { echo "wrk-static: skipping portico: no binary at $PORTICO" >&2; return 1; }
	local port; port=$(free_port)
	cat >"$TMP/portico.toml" <<EOF
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:$port"]
[[site.route]]
path = "/"
static = { root = "$DOCS" }
EOF
	taskset -c "$SERVER_CPU" "$PORTICO" run -c "$TMP/portico.toml" >"$TMP/portico.log" 2>&1 &
	PIDS+=($!)
	PORT[portico]=$port
	wait_port "$port" portico
}

start_nginx() {
	[ -x "$NGINX" ] || { echo "wrk-static: skipping nginx: not found" >&2; return 1; }
	local port; port=$(free_port)
	mkdir -p "$TMP/nginx/logs"
	cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    keepalive_requests 100000000;
    keepalive_timeout 65;
    types { text/plain txt; application/octet-stream bin; }
    default_type application/octet-stream;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        root $DOCS;
    }
}
EOF
	taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >>"$TMP/nginx.log" 2>&1 &
	PIDS+=($!)
	PORT[nginx]=$port
	wait_port "$port" nginx
}

start_lighttpd() {
	[ -x "$LIGHTTPD" ] || { echo "wrk-static: skipping lighttpd: not found" >&2; return 1; }
	local port; port=$(free_port)
	cat >"$TMP/lighttpd.conf" <<EOF
server.document-root = "$DOCS"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$TMP/lighttpd.log"
server.max-keep-alive-requests = 100000000
server.max-keep-alive-idle = 65
server.max-connections = 4096
mimetype.assign = (".txt" => "text/plain", ".bin" => "application/octet-stream")
EOF
	taskset -c "$SERVER_CPU" "$LIGHTTPD" -D -f "$TMP/lighttpd.conf" >>"$TMP/lighttpd.log" 2>&1 &
	PIDS+=($!)
	PORT[lighttpd]=$port
	wait_port "$port" lighttpd
}

RUNNING=()
for s in $SERVERS; do
	if "start_$s"; then
		RUNNING+=("$s")
	fi
done
[ ${#RUNNING[@]} -gt 0 ] || die "no server started"

# Check that every server answers with the right length before measuring.
for s in "${RUNNING[@]}"; do
	got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:${PORT[$s]}/1k.txt")
	[ "$got" = "200 1024" ] || die "$s: GET /1k.txt: got '$got', want '200 1024'"
	got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:${PORT[$s]}/1m.bin")
	[ "$got" = "200 1048576" ] || die "$s: GET /1m.bin: got '$got', want '200 1048576'"
done

# run_wrk server test duration -> prints requests/s
run_wrk() {
	local s=$1 t=$2 d=$3 url args=() out
	url="http://127.0.0.1:${PORT[$s]}"
	case $t in
	ka) url+=/1k.txt ;;
	close) url+=/1k.txt; args=(-H 'Connection: close') ;;
	big) url+=/1m.bin ;;
	esac
	out=$(taskset -c "$CLIENT_CPU" "$WRK" -t1 -c"$CONNS" -d"$d" "${args[@]}" "$url" 2>&1) || die "wrk failed: $out"
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "wrk-static: warning: $s $t: $(grep 'Non-2xx' <<<"$out")" >&2
	fi
	if grep -q 'Socket errors' <<<"$out"; then
		echo "wrk-static: note: $s $t: $(grep 'Socket errors' <<<"$out" | sed 's/^ *//')" >&2
	fi
	awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

echo "servers: ${RUNNING[*]} on CPU $SERVER_CPU; wrk -t1 -c$CONNS on CPU $CLIENT_CPU; $ROUNDS rounds x $DURATION" >&2

# Warm up (fills caches, faults pages in).
for s in "${RUNNING[@]}"; do
	for t in $TESTS; do run_wrk "$s" "$t" 2s >/dev/null; done
done

for r in $(seq "$ROUNDS"); do
	for t in $TESTS; do
		for s in "${RUNNING[@]}"; do
			v=$(run_wrk "$s" "$t" "$DURATION")
			echo "$v" >>"$TMP/result.$s.$t"
			printf 'round %d  %-6s %-9s %12s req/s\n' "$r" "$t" "$s" "$v" >&2
		done
	done
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo
printf '%-8s' "test"
for s in "${RUNNING[@]}"; do printf '%16s' "$s"; done
printf '%18s\n' "portico/nginx"
for t in $TESTS; do
	unit="req/s"
	[ "$t" = big ] && unit="MB/s"
	printf '%-8s' "$t"
	declare -A med=()
	for s in "${RUNNING[@]}"; do
		m=$(median "$TMP/result.$s.$t")
		[ "$t" = big ] && m=$(awk -v r="$m" 'BEGIN {printf "%.1f", r * 1048576 / 1e6}')
		med[$s]=$m
		printf '%11s %-4s' "$m" "$unit"
	done
	if [ -n "${med[portico]:-}" ] && [ -n "${med[nginx]:-}" ]; then
		# Also the median of the per-round ratios: each round runs the
		# servers back to back, so a ratio is less hurt by a busy machine.
		paste "$TMP/result.portico.$t" "$TMP/result.nginx.$t" | awk '{print $1 / $2}' >"$TMP/ratio.$t"
		awk -v a="${med[portico]}" -v b="${med[nginx]}" -v r="$(median "$TMP/ratio.$t")" \
			'BEGIN {printf "%17.2fx  (per-round median %.2fx)\n", a / b, r}'
	else
		echo "                 -"
	fi
	unset med
done
