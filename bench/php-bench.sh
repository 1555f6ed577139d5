#!/usr/bin/env bash
# php-bench.sh: hello-world PHP requests/s through portico's fastcgi route
# vs nginx (fastcgi_pass, one worker), both in front of Debian's
# php8.2-fpm with the same pool: one
# php-fpm master with two identical pools (pm = static, WORKERS children
# each), one per front server, so that neither one's idle kept-alive
# connections hold the other's children. Both fronts route a pretty URL
# through the front controller (nginx: try_files $uri $uri/ /index.php).
#
# The front servers run pinned to CPU 0 (GOMAXPROCS=1 / one worker); wrk
# and php-fpm to CPU 1. Rounds are interleaved; medians and ratios are
# printed, with each front's own CPU time per request.
#
# usage: bench/php-bench.sh [-d SECONDS] [-c CONNS] [-r ROUNDS] [-w WORKERS]
# env:   NGINX=/usr/sbin/nginx FPM=/usr/sbin/php-fpm8.2 WRK=wrk
#        URLPATH=/hello/world PORTICO_BUILD_WAIT=600
#        KEEPCONN=off (Debian's stock snippet: a new connection per
#        request; "on": fastcgi_keep_conn + keepalive WORKERS, which
#        starves nginx here: see below)
#
# Why nginx runs without kept-alive FastCGI connections by default: with
# fastcgi_keep_conn a php-fpm child serves one connection until nginx
# closes it, and nginx opens one per request in flight (32 here) while
# keeping at most WORKERS idle; the other 28 wait in php-fpm's listen
# backlog (ss -xl shows them) until a kept one is dropped, often not
# before fastcgi_read_timeout (60 s). nginx then serves about a quarter
# of wrk's connections and its req/s is a fraction of what it does
# without keep-alive, which is how nginx + php-fpm is deployed (Debian's
# snippets/fastcgi-php.conf). portico keeps connections alive but never
# opens more than max_conns (= the children); requests queue inside it.
#
# Only 127.0.0.1 and unix sockets in a temp dir are used. Everything
# started is stopped on exit.
set -euo pipefail

DUR=10 CONNS=32 ROUNDS=3 WORKERS=4
while getopts "d:c:r:w:h" opt; do
	case $opt in
	d) DUR=$OPTARG ;;
	c) CONNS=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	w) WORKERS=$OPTARG ;;
	*) sed -n '2,19p' "$0"; exit 2 ;;
	esac
done

NGINX=${NGINX:-/usr/sbin/nginx}
FPM=${FPM:-/usr/sbin/php-fpm8.2}
WRK=${WRK:-wrk}
URLPATH=${URLPATH:-/hello/world}
KEEPCONN=${KEEPCONN:-off}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-php-bench.XXXXXX)
chmod 755 "$TMP"
. "$ROOT/bench/lib.sh"
for cmd in "$NGINX" "$FPM" "$WRK" taskset curl; do
	command -v "$cmd" >/dev/null || { echo "php-bench: $cmd not found" >&2; exit 1; }
done
build_portico cmd/portico

# The app: a front controller that says hello.
mkdir -p "$TMP/public"
cat >"$TMP/public/index.php" <<'EOF'
<?php
header('Content-Type: text/plain');
echo "Hello, world!\n";
EOF

# php-fpm: Debian's php.ini (opcache on, as deployed), two identical pools.
pool() { # name
	cat <<EOF
[$1]
listen = $TMP/$1.sock
pm = static
pm.max_children = $WORKERS
pm.max_requests = 0
clear_env = yes
EOF
	echo "listen.mode = 0666"
	if [ "$(id -u)" = 0 ]; then echo "user = nobody"; echo "group = nogroup"; fi
}
{
	echo "[global]"
	echo "error_log = $TMP/fpm.log"
	echo "daemonize = no"
	pool portico
	pool nginx
} >"$TMP/fpm.conf"
FPM_ARGS=(-F -y "$TMP/fpm.conf")
[ "$(id -u)" = 0 ] && FPM_ARGS+=(-R)
taskset -c "$LOAD_CPU" "$FPM" "${FPM_ARGS[@]}" >"$TMP/fpm.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
	[ -S "$TMP/portico.sock" ] && [ -S "$TMP/nginx.sock" ] && break
	sleep 0.1
done
[ -S "$TMP/nginx.sock" ] || { echo "php-fpm did not start:" >&2; cat "$TMP/fpm.log" "$TMP/fpm.out" >&2; exit 1; }

# portico: one connection per php-fpm child, as docs/config.md says.
PPORT=$(free_port)
cat >"$TMP/portico.toml" <<EOF
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:$PPORT"]
[[site.route]]
path = "/"
fastcgi = { upstream = "unix:$TMP/portico.sock", root = "$TMP/public", max_conns = $WORKERS }
EOF
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$TMP/portico" run -c "$TMP/portico.toml" >"$TMP/portico.log" 2>&1 &
PIDS+=($!)
PORTICO_PID=$!

# nginx: one worker, the usual PHP site, kept-alive FastCGI connections.
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
    keepalive_requests 1000000;
    upstream php { server unix:$TMP/nginx.sock; $([ "$KEEPCONN" = on ] && echo "keepalive $WORKERS;") }
    server {
        listen 127.0.0.1:$NPORT;
        root $TMP/public;
        index index.php;
        location / {
            try_files \$uri \$uri/ /index.php?\$query_string;
        }
        location ~ \.php$ {
            try_files \$uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_keep_conn $KEEPCONN;
            fastcgi_pass php;
        }
    }
}
EOF
taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.log" &
PIDS+=($!)
NGINX_PID=$!

NAMES=(portico nginx)
PORTS=($PPORT $NPORT)
MAINPIDS=($PORTICO_PID $NGINX_PID)

# cpu_ticks PID: user+system clock ticks of PID and its children (nginx's
# worker), from /proc.
cpu_ticks() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $total
}
HZ=$(getconf CLK_TCK)
for i in 0 1; do
	wait_port "${PORTS[$i]}" || { echo "${NAMES[$i]} did not start; log:" >&2; cat "$TMP/${NAMES[$i]}.log" >&2; exit 1; }
	body=$(curl -s "http://127.0.0.1:${PORTS[$i]}$URLPATH")
	if [ "$body" != "Hello, world!" ]; then
		echo "${NAMES[$i]} answered '$body', want 'Hello, world!'" >&2
		cat "$TMP/${NAMES[$i]}.log" "$TMP/fpm.log" >&2
		exit 1
	fi
done

run_wrk() { # name port pid -> "rps cpu_us_per_request" on stdout
	local t0 t1 out rps reqs errs
	t0=$(cpu_ticks "$3")
	out=$(taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$2$URLPATH" 2>&1)
	t1=$(cpu_ticks "$3")
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
	[ -n "$errs" ] && echo "  $1: $errs" >&2
	echo "$rps $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }')"
}

echo "warming up..." >&2
for i in 0 1; do
	taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORTS[$i]}$URLPATH" >/dev/null 2>&1
done

declare -A RPS CPU
for r in $(seq 1 "$ROUNDS"); do
	for i in 0 1; do
		read -r rps cpu < <(run_wrk "${NAMES[$i]}" "${PORTS[$i]}" "${MAINPIDS[$i]}")
		RPS[${NAMES[$i]}]+="$rps "
		CPU[${NAMES[$i]}]+="$cpu "
		printf "round %d %-8s %10.0f req/s  %6.1f CPU us/req\n" "$r" "${NAMES[$i]}" "$rps" "$cpu" >&2
	done
done

median() { echo "$@" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo
echo "PHP hello world via the front controller ($URLPATH), php-fpm pools of $WORKERS static children,"
echo "wrk -c$CONNS -d${DUR}s, $ROUNDS rounds, medians; fronts on CPU $SERVER_CPU (one worker / GOMAXPROCS=1),"
echo "wrk and php-fpm on CPU $LOAD_CPU; nginx fastcgi_keep_conn $KEEPCONN. CPU us/req: the front's own CPU time per request."
printf "%-8s %12s %12s\n" front "req/s" "CPU us/req"
declare -A MR MC
for n in "${NAMES[@]}"; do
	MR[$n]=$(median ${RPS[$n]})
	MC[$n]=$(median ${CPU[$n]})
	printf "%-8s %12.0f %12.1f\n" "$n" "${MR[$n]}" "${MC[$n]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "portico/nginx+php-fpm req/s: $(ratio "${MR[portico]}" "${MR[nginx]}")x   CPU/req: $(ratio "${MC[portico]}" "${MC[nginx]}")x"
