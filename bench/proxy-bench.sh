#!/usr/bin/env bash
# proxy-bench.sh: reverse-proxy requests/s and p99 latency of portico vs
# nginx (proxy_pass with upstream keepalive, one worker) vs Caddy
# (reverse_proxy, GOMAXPROCS=1), all in front of the same tiny Go upstream
# (bench/upstream). Proxies run pinned to CPU 0; wrk and the upstream to
# CPU 1. Rounds are interleaved; medians and ratios are printed.
#
# usage: bench/proxy-bench.sh [-d SECONDS] [-c CONNS] [-r ROUNDS] [-s BODY_BYTES]
# env:   NGINX=/usr/sbin/nginx CADDY=/usr/bin/caddy WRK=wrk
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
	*) sed -n '2,12p' "$0"; exit 2 ;;
	esac
done

NGINX=${NGINX:-/usr/sbin/nginx}
CADDY=${CADDY:-/usr/bin/caddy}
WRK=${WRK:-wrk}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-proxy-bench.XXXXXX)
. "$ROOT/bench/lib.sh"
build_portico bench/upstream

UPORT=$(free_port)
GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/upstream" -addr "127.0.0.1:$UPORT" -size "$SIZE" 2>"$TMP/upstream.log" &
PIDS+=($!)
wait_port "$UPORT"

# portico
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
EOF
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$TMP/portico" run -c "$TMP/portico.toml" >"$TMP/portico.log" 2>&1 &
PIDS+=($!)
PORTICO_PID=$!

# nginx: one worker, upstream keepalive, HTTP/1.1 to the upstream.
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
    upstream app { server 127.0.0.1:$UPORT; keepalive 256; }
    server {
        listen 127.0.0.1:$NPORT;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            # The fields portico must send (compare.sh says why).
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header Via "1.1 nginx";
        }
    }
}
EOF
taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.log" &
PIDS+=($!)
NGINX_PID=$!

# Caddy
CPORT=$(free_port)
cat >"$TMP/Caddyfile" <<EOF
{
	admin off
	auto_https off
}
http://127.0.0.1:$CPORT {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$UPORT {
		# Caddy keeps 32 idle connections per host by default; give it
		# the same pool as nginx and portico.
		transport http {
			keepalive 90s
			keepalive_idle_conns 256
			keepalive_idle_conns_per_host 256
		}
	}
}
EOF
XDG_DATA_HOME=$TMP/caddy XDG_CONFIG_HOME=$TMP/caddy HOME=$TMP/caddy GOMAXPROCS=1 \
	taskset -c "$SERVER_CPU" "$CADDY" run --config "$TMP/Caddyfile" --adapter caddyfile >"$TMP/caddy.log" 2>&1 &
PIDS+=($!)
CADDY_PID=$!

NAMES=(portico nginx caddy)
PORTS=($PPORT $NPORT $CPORT)
MAINPIDS=($PORTICO_PID $NGINX_PID $CADDY_PID)

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
for i in 0 1 2; do
	wait_port "${PORTS[$i]}" || { echo "${NAMES[$i]} did not start; log:" >&2; cat "$TMP/${NAMES[$i]}.log" >&2; exit 1; }
	body=$(curl -s "http://127.0.0.1:${PORTS[$i]}/")
	if [ "${#body}" -ne "$SIZE" ]; then
		echo "${NAMES[$i]} answered ${#body} bytes, want $SIZE" >&2; exit 1
	fi
done

# to_us "1.23ms" -> microseconds
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000; else m = 1
		printf "%.0f", n * m }'
}

run_wrk() { # name port pid -> "rps p99us cpu_us_per_request" on stdout
	local t0 t1 out rps p99 reqs errs
	t0=$(cpu_ticks "$3")
	out=$(taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$2/" 2>&1)
	t1=$(cpu_ticks "$3")
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
	[ -n "$errs" ] && echo "  $1: $errs" >&2
	echo "$rps $(to_us "$p99") $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
}

echo "warming up..." >&2
for i in 0 1 2; do
	taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$CONNS" -d2s "http://127.0.0.1:${PORTS[$i]}/" >/dev/null 2>&1
done

declare -A RPS P99 CPU
for r in $(seq 1 "$ROUNDS"); do
	for i in 0 1 2; do
		read -r rps p99 cpu < <(run_wrk "${NAMES[$i]}" "${PORTS[$i]}" "${MAINPIDS[$i]}")
		RPS[${NAMES[$i]}]+="$rps "
		P99[${NAMES[$i]}]+="$p99 "
		CPU[${NAMES[$i]}]+="$cpu "
		printf "round %d %-8s %10.0f req/s  p99 %6d us  %6.1f CPU us/req\n" "$r" "${NAMES[$i]}" "$rps" "$p99" "$cpu" >&2
	done
done

median() { echo "$@" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo
echo "reverse proxy, ${SIZE}-byte upstream body, wrk -c$CONNS -d${DUR}s, $ROUNDS rounds, medians"
echo "proxies on CPU $SERVER_CPU (one worker / GOMAXPROCS=1); wrk and upstream on CPU $LOAD_CPU"
echo "CPU us/req: the proxy's own CPU time per request (user+system, from /proc);"
echo "on a busy machine it is steadier than req/s, which also depends on the load side."
printf "%-8s %12s %12s %12s\n" proxy "req/s" "p99 (us)" "CPU us/req"
declare -A MR MP MC
for n in "${NAMES[@]}"; do
	MR[$n]=$(median ${RPS[$n]})
	MP[$n]=$(median ${P99[$n]})
	MC[$n]=$(median ${CPU[$n]})
	printf "%-8s %12.0f %12.0f %12.1f\n" "$n" "${MR[$n]}" "${MP[$n]}" "${MC[$n]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "portico/nginx req/s: $(ratio "${MR[portico]}" "${MR[nginx]}")x   p99: $(ratio "${MP[portico]}" "${MP[nginx]}")x   CPU/req: $(ratio "${MC[portico]}" "${MC[nginx]}")x"
echo "portico/caddy req/s: $(ratio "${MR[portico]}" "${MR[caddy]}")x   p99: $(ratio "${MP[portico]}" "${MP[caddy]}")x   CPU/req: $(ratio "${MC[portico]}" "${MC[caddy]}")x"
