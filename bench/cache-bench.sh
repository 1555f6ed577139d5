#!/usr/bin/env bash
# cache-bench.sh: cache-hit requests/s of portico's response cache vs nginx
# proxy_cache (one worker), both in front of the same tiny upstream
# (bench/cacheupstream: "Cache-Control: public, max-age=3600", 1 KiB).
# The servers run pinned to CPU 0 (GOMAXPROCS=1 / one worker); wrk and the
# upstream to CPU 1. Rounds are interleaved; medians and the ratio are
# printed. Both are checked to answer from their cache before measuring.
#
# usage: bench/cache-bench.sh [-d SECONDS] [-c CONNS] [-r ROUNDS] [-s BODY_BYTES]
# env:   NGINX=/usr/sbin/nginx WRK=wrk
#        PORTICO_BUILD_WAIT=600 (seconds to wait for ./cmd/portico to build)
#
# Only 127.0.0.1 is used. Everything started is stopped on exit.
set -euo pipefail

DUR=10 CONNS=64 ROUNDS=3 SIZE=1024
while getopts "d:c:r:s:h" opt; do
	case $opt in
	d) DUR=$OPTARG ;;
	c) CONNS=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	*) sed -n '2,13p' "$0"; exit 2 ;;
	esac
done

NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-cache-bench.XXXXXX)
chmod 755 "$TMP" # nginx workers may run as another user
. "$ROOT/bench/lib.sh"
build_portico bench/cacheupstream

UPORT=$(free_port)
GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/cacheupstream" -addr "127.0.0.1:$UPORT" -size "$SIZE" 2>"$TMP/upstream.log" &
UPID=$!
PIDS+=($UPID)
wait_port "$UPORT"

# portico: proxy + memory cache.
PPORT=$(free_port)
cat >"$TMP/portico.toml" <<EOF
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:$PPORT"]
[[site.route]]
path = "/"
[site.route.proxy]
upstreams = ["http://127.0.0.1:$UPORT"]
[site.route.cache]
max_size = "64MB"
EOF
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$TMP/portico" run -c "$TMP/portico.toml" >"$TMP/portico.log" 2>&1 &
PIDS+=($!)

# nginx: one worker, proxy_cache in a temp folder, upstream keepalive.
NPORT=$(free_port)
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
    proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=60m use_temp_path=off;
    upstream app { server 127.0.0.1:$UPORT; keepalive 256; }
    server {
        listen 127.0.0.1:$NPORT;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_cache bench;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
EOF
taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.log" &
PIDS+=($!)

NAMES=(portico nginx)
PORTS=($PPORT $NPORT)
for i in 0 1; do
	wait_port "${PORTS[$i]}" || { echo "${NAMES[$i]} did not start; log:" >&2; cat "$TMP/${NAMES[$i]}.log" >&2; exit 1; }
	body=$(curl -s "http://127.0.0.1:${PORTS[$i]}/")
	if [ "${#body}" -ne "$SIZE" ]; then
		echo "${NAMES[$i]} answered ${#body} bytes, want $SIZE: $body" >&2
		cat "$TMP/nginx/logs/error.log" >&2 2>/dev/null || true
		exit 1
	fi
done
# Both must now answer from their caches.
pstat=$(curl -s -D - -o /dev/null "http://127.0.0.1:$PPORT/" | tr -d '\r' | awk -F': ' 'tolower($1) == "cache-status" {print $2}')
nstat=$(curl -s -D - -o /dev/null "http://127.0.0.1:$NPORT/" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache-status" {print $2}')
echo "portico Cache-Status: $pstat; nginx X-Cache-Status: $nstat" >&2
case "$pstat" in *hit*) ;; *) echo "portico is not answering from its cache" >&2; exit 1 ;; esac
[ "$nstat" = HIT ] || { echo "nginx is not answering from its cache" >&2; exit 1; }

run_wrk() { # name port -> rps on stdout
	out=$(taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$2/" 2>&1)
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
	[ -n "$errs" ] && echo "  $1: $errs" >&2
	echo "$rps"
}

echo "warming up..." >&2
for i in 0 1; do
	taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d2s "http://127.0.0.1:${PORTS[$i]}/" >/dev/null 2>&1
done

declare -A RPS
RATIOS=""
for r in $(seq 1 "$ROUNDS"); do
	declare -A THIS
	for i in 0 1; do
		rps=$(run_wrk "${NAMES[$i]}" "${PORTS[$i]}")
		RPS[${NAMES[$i]}]+="$rps "
		THIS[${NAMES[$i]}]=$rps
		printf "round %d %-8s %10.0f req/s\n" "$r" "${NAMES[$i]}" "$rps" >&2
	done
	# The per-round ratio is robust to load that drifts across rounds.
	RATIOS+="$(awk -v a="${THIS[portico]}" -v b="${THIS[nginx]}" 'BEGIN { if (b > 0) printf "%.4f", a / b }') "
done

median() { echo "$@" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

kill "$UPID" 2>/dev/null || true
wait "$UPID" 2>/dev/null || true
echo
echo "cache hits, ${SIZE}-byte body, wrk -c$CONNS -d${DUR}s, $ROUNDS rounds, medians"
echo "servers on CPU $SERVER_CPU (one worker / GOMAXPROCS=1); wrk and upstream on CPU $LOAD_CPU"
echo "upstream: $(cat "$TMP/upstream.log")"
printf "%-8s %12s\n" server "req/s"
declare -A MR
for n in "${NAMES[@]}"; do
	MR[$n]=$(median ${RPS[$n]})
	printf "%-8s %12.0f\n" "$n" "${MR[$n]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "portico/nginx cache-hit req/s: $(ratio "${MR[portico]}" "${MR[nginx]}")x (ratio of medians)"
printf "portico/nginx cache-hit req/s: %.2fx (median of per-round ratios)\n" "$(median $RATIOS)"
