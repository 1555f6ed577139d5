#!/usr/bin/env bash
# TLS side by side: a 1 KiB file over HTTP/2 with h2load (keep-alive,
# multiplexed), and new TLS connections per second (wrk with
# "Connection: close": one handshake per request), for portico, nginx and
# Caddy with the same certificate (ECDSA P-256), each pinned to CPU 0 with
# one worker (GOMAXPROCS=1 for the Go servers), clients on CPU 1, runs
# interleaved, medians of ROUNDS. BASELINE=path/to/portico adds another
# portico build as "baseline" (the same config), to compare before and
# after in one run.
#   bench/tls-bench.sh [-d SECONDS] [-r ROUNDS] [-c CONNS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
# nginx's worker runs as nobody: without this it answers 403 to every
# request (mktemp makes the folder 0700), which once made nginx look
# faster than it is.
chmod 755 "$TMP"
DURATION=10 ROUNDS=3 CONNS=50
while getopts d:r:c: o; do
	case $o in
	d) DURATION=$OPTARG ;; r) ROUNDS=$OPTARG ;; c) CONNS=$OPTARG ;;
	*) exit 2 ;;
	esac
done
. "$ROOT/bench/lib.sh"
for t in h2load wrk nginx openssl; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
have_caddy=$(command -v caddy || true)

(cd "$ROOT" && go build -o "$TMP/portico" ./cmd/portico)
mkdir -p "$TMP/www"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 >"$TMP/www/1k.html"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

P_PORT=$(free_port) N_PORT=$(free_port) C_PORT=$(free_port)
cat >"$TMP/portico.toml" <<TOML
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:$P_PORT"]
tls = { cert = "cert.pem", key = "key.pem" }
http3 = false
  [[site.route]]
  path = "/"
  static = { root = "www" }
TOML
cat >"$TMP/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache off;
  ssl_session_tickets off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$N_PORT ssl http2;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/key.pem;
    root $TMP/www;
  }
}
NGINX
cat >"$TMP/Caddyfile" <<CADDY
{
	admin off
	auto_https off
	default_sni localhost
	servers {
		protocols h1 h2
	}
}
https://127.0.0.1:$C_PORT, https://localhost:$C_PORT {
	tls $TMP/cert.pem $TMP/key.pem
	root * $TMP/www
	file_server
}
CADDY

start() { # name
	case $1 in
	portico) (cd "$TMP" && GOMAXPROCS=1 exec taskset -c $SERVER_CPU ./portico run -c portico.toml >/dev/null 2>&1) & ;;
	baseline) (cd "$TMP" && GOMAXPROCS=1 exec taskset -c $SERVER_CPU "$BASELINE" run -c portico.toml >/dev/null 2>&1) & ;;
	nginx) taskset -c $SERVER_CPU nginx -c "$TMP/nginx.conf" -e "$TMP/nginx.err" >/dev/null 2>&1 & ;;
	caddy) (cd "$TMP" && GOMAXPROCS=1 HOME=$TMP XDG_DATA_HOME=$TMP XDG_CONFIG_HOME=$TMP exec taskset -c $SERVER_CPU caddy run --config Caddyfile --adapter caddyfile >/dev/null 2>&1) & ;;
	esac
	PIDS+=($!)
	SERVER_PID=$!
	local port; port=$(port_of "$1")
	for _ in $(seq 1 100); do
		curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:$port/1k.html" && return 0
		sleep 0.1
	done
	echo "$1 did not start" >&2; exit 1
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
port_of() { case $1 in portico | baseline) echo "$P_PORT" ;; nginx) echo "$N_PORT" ;; caddy) echo "$C_PORT" ;; esac; }

cpu_ticks() { # pid -> CPU ticks used by it and its children (nginx's worker)
	local p t=0
	for p in "$1" $(pgrep -P "$1"); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
h2() { # port -> req/s over HTTP/2, and the server's CPU microseconds per request
	local t0 t1 out
	t0=$(cpu_ticks "$SERVER_PID")
	out=$(taskset -c $LOAD_CPU h2load -c "$CONNS" -m 10 -D "$DURATION" "https://127.0.0.1:$1/1k.html" 2>/dev/null)
	t1=$(cpu_ticks "$SERVER_PID")
	echo "$out" | awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" '
		/^finished in/ {gsub(",", "", $4); rate = $4}
		/^requests:/ {done = $8}
		/^status codes:/ {bad = $5 + $7 + $9}
		END {
			if (bad || !done) printf "h2load: %d answers were not 2xx, %d were\n", bad, done > "/dev/stderr"
			printf "%s %.1f\n", rate, done ? t / hz * 1e6 / done : 0
		}'
}
handshakes() { # port -> new TLS connections per second
	taskset -c $LOAD_CPU wrk -t1 -c "$CONNS" -d "${DURATION}s" -H "Connection: close" "https://127.0.0.1:$1/1k.html" 2>/dev/null |
		awk '/^Requests\/sec/ {print $2} /Non-2xx/ {print "wrk: " $0 > "/dev/stderr"}'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

servers=(portico nginx)
[ -n "${BASELINE:-}" ] && servers+=(baseline)
[ -n "$have_caddy" ] && servers+=(caddy)
declare -A H2 HS CPU
for r in $(seq 1 "$ROUNDS"); do
	for s in "${servers[@]}"; do
		start "$s"
		read -r rate cpu < <(h2 "$(port_of "$s")")
		H2[$s]+="$rate "
		CPU[$s]+="$cpu "
		HS[$s]+="$(handshakes "$(port_of "$s")") "
		stop
		echo "round $r $s: h2 $rate (server CPU ${cpu} us/request) handshakes $(echo ${HS[$s]} | awk '{print $NF}')" >&2
	done
done
# CPU per request is the steadier figure on a busy machine: it does not
# count the time the server waits for a CPU others hold. Its ratio is
# the other server's over portico's (above 1: portico needs less).
printf '%-10s %14s %18s %16s\n' server "h2 1KiB req/s" "h2 CPU us/request" "handshakes/s"
declare -A MH MS MC
for s in "${servers[@]}"; do
	MH[$s]=$(echo "${H2[$s]}" | tr ' ' '\n' | grep . | median)
	MS[$s]=$(echo "${HS[$s]}" | tr ' ' '\n' | grep . | median)
	MC[$s]=$(echo "${CPU[$s]}" | tr ' ' '\n' | grep . | median)
	printf '%-10s %14.0f %18.1f %16.0f\n' "$s" "${MH[$s]}" "${MC[$s]}" "${MS[$s]}"
done
for s in "${servers[@]}"; do
	[ "$s" = portico ] && continue
	awk -v a="${MH[portico]}" -v b="${MH[$s]}" -v c="${MS[portico]}" -v d="${MS[$s]}" -v e="${MC[portico]}" -v f="${MC[$s]}" -v s="$s" \
		'BEGIN {printf "portico / %s: h2 %.2fx (by CPU per request %.2fx), handshakes %.2fx\n", s, a/b, f/e, c/d}'
done
