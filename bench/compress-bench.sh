#!/usr/bin/env bash
# compress-bench.sh: on-the-fly gzip of a 100 KiB JavaScript file, keep-alive,
# "Accept-Encoding: gzip", portico vs nginx (one worker), in two cases:
#
#   static  portico: static route, compress = ["gzip"], compress_level = 1
#           nginx:   root + gzip on; gzip_comp_level 1 (nginx's default level)
#   cached  portico: proxy + cache + compress = ["gzip"], compress_level = 1
#           nginx:   proxy_cache in front of a gzip_comp_level 1 upstream
#           in front of a second nginx serving the file (gzipped for the
#           nginx front, plain for portico, which compresses it itself), so
#           both cache the compressed variant and serve hits without
#           compressing again.
#
# portico compresses a static file once per encoding and keeps the bytes
# in its open-file cache; nginx's gzip filter compresses on every request.
# Level 1 on both sides: that is nginx's default (gzip_comp_level 1), and
# portico's compress_level 1 is gzip level 1 too (klauspost/compress), so
# the bytes on the wire are comparable (the sizes are printed).
#
# Servers run pinned to CPU 0 (GOMAXPROCS=1 / one worker); wrk and the
# upstream to CPU 1. Rounds are interleaved; medians, CPU time per request
# (user+system from /proc) and the portico/nginx ratios are printed. Each
# server is checked to answer gzip that decodes to the file before measuring.
#
# usage: bench/compress-bench.sh [-d SECONDS] [-c CONNS] [-r ROUNDS]
# env:   NGINX=/usr/sbin/nginx WRK=wrk JS=/path/to/file.js (default: the
#        first 100 KiB of Debian's jquery.js, else generated)
#        PORTICO_BUILD_WAIT=600 (seconds to wait for ./cmd/portico to build)
#
# Only 127.0.0.1 is used. Everything started is stopped on exit.
set -euo pipefail

DUR=10 CONNS=64 ROUNDS=3
while getopts "d:c:r:h" opt; do
	case $opt in
	d) DUR=$OPTARG ;;
	c) CONNS=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	*) sed -n '2,29p' "$0"; exit 2 ;;
	esac
done

NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-compress-bench.XXXXXX)
chmod 755 "$TMP" # nginx workers may run as another user
. "$ROOT/bench/lib.sh"
build_portico bench/upstream # (the upstream binary is not used: nginx serves the file)

# The file: 100 KiB of real JavaScript when the system has some.
mkdir -p "$TMP/www"
JS=${JS:-/usr/share/javascript/jquery/jquery.js}
if [ -r "$JS" ]; then
	head -c 102400 "$JS" >"$TMP/www/app.js"
else
	python3 - "$TMP/www/app.js" <<'PY'
import random, sys
r = random.Random(1)
words = "function return const let var this if else => { } ( ) ; document window value index length await export import".split()
out = []
n = 0
while n < 102400:
    w = r.choice(words) + (" %d" % r.randrange(1 << 16) if r.random() < 0.2 else "") + ("\n" if r.random() < 0.1 else " ")
    out.append(w); n += len(w)
open(sys.argv[1], "w").write("".join(out)[:102400])
PY
fi
chmod -R a+rX "$TMP/www"
SIZE=$(stat -c %s "$TMP/www/app.js")

# Upstreams for the cached case: nginx on the load CPU, serving the file,
# gzipped (level 1) for the nginx front, as it is for portico (which
# compresses below its cache, once per variant).
UPORT=$(free_port) UPLAIN=$(free_port)
mkdir -p "$TMP/up/logs"
cat >"$TMP/up/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/up/nginx.pid;
error_log $TMP/up/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/up/body;
    proxy_temp_path $TMP/up/proxy;
    fastcgi_temp_path $TMP/up/fastcgi;
    uwsgi_temp_path $TMP/up/uwsgi;
    scgi_temp_path $TMP/up/scgi;
    types { application/javascript js; }
    server {
        listen 127.0.0.1:$UPORT;
        root $TMP/www;
        gzip on; gzip_comp_level 1; gzip_types application/javascript; gzip_min_length 1024;
        gzip_proxied any; gzip_vary on;
        add_header Cache-Control "public, max-age=3600";
    }
    server {
        listen 127.0.0.1:$UPLAIN;
        root $TMP/www;
        add_header Cache-Control "public, max-age=3600";
    }
}
EOF
taskset -c "$LOAD_CPU" "$NGINX" -p "$TMP/up" -c "$TMP/up/nginx.conf" 2>"$TMP/up.log" &
PIDS+=($!)
wait_port "$UPORT"
wait_port "$UPLAIN"

# portico: both cases in one process, on two listeners.
PSTATIC=$(free_port) PCACHE=$(free_port)
cat >"$TMP/portico.toml" <<EOF
[server]
access_log = "off"
[[site]]
name = "static"
listen = ["127.0.0.1:$PSTATIC"]
compress = ["gzip"]
compress_level = 1
  [[site.route]]
  path = "/"
  static = { root = "$TMP/www" }
[[site]]
name = "cached"
listen = ["127.0.0.1:$PCACHE"]
compress = ["gzip"]
compress_level = 1
  [[site.route]]
  path = "/"
  proxy = { upstreams = ["http://127.0.0.1:$UPLAIN"] }
  cache = { max_size = "64MB" }
EOF
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$TMP/portico" run -c "$TMP/portico.toml" >"$TMP/portico.log" 2>&1 &
PORTICO_PID=$!
PIDS+=($PORTICO_PID)

# nginx: one worker, both cases.
NSTATIC=$(free_port) NCACHE=$(free_port)
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
    sendfile on;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    types { application/javascript js; }
    proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=60m use_temp_path=off;
    upstream app { server 127.0.0.1:$UPORT; keepalive 256; }
    server {
        listen 127.0.0.1:$NSTATIC;
        root $TMP/www;
        gzip on; gzip_comp_level 1; gzip_types application/javascript; gzip_min_length 1024; gzip_vary on;
    }
    server {
        listen 127.0.0.1:$NCACHE;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding gzip;
            proxy_cache bench;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
EOF
taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.log" &
NGINX_PID=$!
PIDS+=($NGINX_PID)

NAMES=(portico-static nginx-static portico-cached nginx-cached)
PORTS=($PSTATIC $NSTATIC $PCACHE $NCACHE)
MAINPIDS=($PORTICO_PID $NGINX_PID $PORTICO_PID $NGINX_PID)

cpu_ticks() { # user+system clock ticks of PID and its children
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $total
}
HZ=$(getconf CLK_TCK)

declare -A WIRE
for i in 0 1 2 3; do
	wait_port "${PORTS[$i]}" || { echo "${NAMES[$i]} did not start; logs:" >&2; cat "$TMP/portico.log" "$TMP/nginx.log" "$TMP/nginx/logs/error.log" >&2 2>/dev/null; exit 1; }
	url="http://127.0.0.1:${PORTS[$i]}/app.js"
	curl -s -o /dev/null -H 'Accept-Encoding: gzip' "$url" # fill the caches
	curl -s -D "$TMP/h$i" -o "$TMP/b$i.gz" -H 'Accept-Encoding: gzip' "$url"
	ce=$(tr -d '\r' <"$TMP/h$i" | awk -F': ' 'tolower($1) == "content-encoding" {print $2}')
	if [ "$ce" != gzip ] || ! gzip -dc "$TMP/b$i.gz" | cmp -s - "$TMP/www/app.js"; then
		echo "${NAMES[$i]}: Content-Encoding '$ce', or the body does not decode to the file" >&2
		cat "$TMP/h$i" >&2
		exit 1
	fi
	WIRE[${NAMES[$i]}]=$(stat -c %s "$TMP/b$i.gz")
done
pstat=$(tr -d '\r' <"$TMP/h2" | awk -F': ' 'tolower($1) == "cache-status" {print $2}')
nstat=$(tr -d '\r' <"$TMP/h3" | awk -F': ' 'tolower($1) == "x-cache-status" {print $2}')
echo "portico Cache-Status: $pstat; nginx X-Cache-Status: $nstat" >&2
case "$pstat" in *hit*) ;; *) echo "portico is not answering from its cache" >&2; exit 1 ;; esac
[ "$nstat" = HIT ] || { echo "nginx is not answering from its cache" >&2; exit 1; }

run_wrk() { # name port pid -> "rps cpu_us_per_request" on stdout
	local t0 t1 out rps reqs errs
	t0=$(cpu_ticks "$3")
	out=$(taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d"${DUR}s" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$2/app.js" 2>&1)
	t1=$(cpu_ticks "$3")
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
	[ -n "$errs" ] && echo "  $1: $errs" >&2
	echo "$rps $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print 0 }')"
}

echo "warming up..." >&2
for i in 0 1 2 3; do
	taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d1s -H 'Accept-Encoding: gzip' "http://127.0.0.1:${PORTS[$i]}/app.js" >/dev/null 2>&1
done

declare -A RPS CPU
for r in $(seq 1 "$ROUNDS"); do
	for i in 0 1 2 3; do
		read -r rps cpu < <(run_wrk "${NAMES[$i]}" "${PORTS[$i]}" "${MAINPIDS[$i]}")
		RPS[${NAMES[$i]}]+="$rps "
		CPU[${NAMES[$i]}]+="$cpu "
		printf "round %d %-15s %10.0f req/s  %8.1f CPU us/req\n" "$r" "${NAMES[$i]}" "$rps" "$cpu" >&2
	done
done

median() { echo "$@" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "gzip of a ${SIZE}-byte JavaScript file, keep-alive, wrk -c$CONNS -d${DUR}s, $ROUNDS rounds, medians"
echo "servers on CPU $SERVER_CPU (one worker / GOMAXPROCS=1); wrk and the upstream on CPU $LOAD_CPU; level 1 on both"
printf "%-15s %12s %12s %12s\n" server "req/s" "CPU us/req" "gzip bytes"
declare -A MR MC
for n in "${NAMES[@]}"; do
	MR[$n]=$(median ${RPS[$n]})
	MC[$n]=$(median ${CPU[$n]})
	printf "%-15s %12.0f %12.1f %12d\n" "$n" "${MR[$n]}" "${MC[$n]}" "${WIRE[$n]}"
done
echo
echo "static: portico/nginx req/s $(ratio "${MR[portico-static]}" "${MR[nginx-static]}")x, CPU/req $(ratio "${MC[portico-static]}" "${MC[nginx-static]}")x"
echo "cached: portico/nginx req/s $(ratio "${MR[portico-cached]}" "${MR[nginx-cached]}")x, CPU/req $(ratio "${MC[portico-cached]}" "${MC[nginx-cached]}")x"
