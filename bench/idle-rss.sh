#!/usr/bin/env bash
# idle-rss.sh: what idle keep-alive connections cost (issue 16 point 4).
# For portico, nginx and lighttpd (one worker each, pinned to CPU 0), it
# opens N connections (default 2000) that each send one request for a
# 1 KiB file and then stay open, idle, and reports the server's RSS
# (all its processes) before and with them, and the growth per connection,
# of the RSS and of its anonymous part (heap and stacks: what connections
# cost; the rest is the program's file pages, which the kernel may drop
# or fault in meanwhile).
# The RSS is read SETTLE seconds (default 15) after the connections are
# idle: portico parks an idle connection (its goroutine ends) at once
# when it has many, else after 1 to 2s, and one parked for 10s lets go
# of Go's socket too (fastpath ParkDetachAfter), as long-idle
# connections, most of what a server holds, do.
# PORTICO_BASELINE=path/to/portico measures another build too, in the
# same run (e.g. the main branch's, to compare before and after).
# WARM=K measures a server that has served before: K connections
# (opened at once, one request each, then closed, SETTLE seconds) ahead
# of the idle figure. A server's first traffic costs once what does not
# grow with connections (Go's runtime: the sweep sets and GC metadata of
# every size class the first requests use, about 0.8 MB; nginx and
# lighttpd: their allocators' first arenas), which a fresh process
# counts as connection cost. WARM=100 takes that out for every server;
# WARM=N measures on top of a load of the same size (which nginx's
# allocator keeps whole, so its growth then reads 0).
# MARGINAL=1 then opens N more and reports what each of those added: the
# cost of one more idle connection, without what a first load costs once
# (on any server, whether fresh or warmed).
# TLS=1 measures HTTPS connections (HTTP/1.1 by ALPN; a throwaway
# self-signed certificate) on portico and nginx; lighttpd is left out.
# TLS=h2 the same with HTTP/2 connections (bench/h2hold), as browsers
# hold them.
#   bench/idle-rss.sh [N]
set -euo pipefail
N=${1:-2000}
SETTLE=${SETTLE:-15}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-idle.XXXXXX)
chmod 755 "$TMP"
. "$ROOT/bench/lib.sh"
ulimit -n $((N * 4 + 1024))
(cd "$ROOT" && go build -o "$TMP/portico" ./cmd/portico)
[ "${TLS:-}" = h2 ] && (cd "$ROOT" && go build -o "$TMP/h2hold" ./bench/h2hold)
mkdir -p "$TMP/www"
head -c 1024 /dev/zero | tr '\0' x >"$TMP/www/1k.txt"
TLS=${TLS:-}
if [ -n "$TLS" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$TMP/key.pem" -out "$TMP/cert.pem" -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost 2>/dev/null
fi

rss_kib() { # field pid... -> summed field (VmRSS, RssAnon) of the processes and their children, KiB
	local field=$1 total=0 p kids
	shift
	for p in "$@"; do
		kids=$(pgrep -P "$p" || true)
		for q in $p $kids; do
			total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$q/status" 2>/dev/null || echo 0)))
		done
	done
	echo "$total"
}

hold() { # port fifo [n] -> holds n (N) idle connections until the fifo's writer closes it
	if [ "$TLS" = h2 ]; then
		"$TMP/h2hold" -addr "127.0.0.1:$1" -n "${3:-$N}" <"$2"
		return
	fi
	# (not stdin: python's stdin is this script, from the here-document)
	python3 - "$1" "${3:-$N}" "$2" "$TLS" <<'PY'
import socket, ssl, sys
port, n, ctl, tls = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = None
if tls:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if ctx:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(b"GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
got = 0
for s in socks:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 1024:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    got += data.startswith(b"HTTP/1.1 200")
print(f"{got} of {n} connections answered, now idle", file=sys.stderr, flush=True)
print("ready", flush=True)
with open(ctl) as f:
    f.read()
PY
}

measure() { # name pid port
	sleep 1
	if [ "${WARM:-0}" -gt 0 ]; then
		# A server that has served WARM connections before: open them,
		# close them, let it settle, and only then take the idle figure.
		rm -f "$TMP/ctl" "$TMP/ready"
		mkfifo "$TMP/ctl"
		hold "$3" "$TMP/ctl" "$WARM" <"$TMP/ctl" >"$TMP/ready" 2>/dev/null &
		local warmer=$!
		exec 9>"$TMP/ctl"
		until grep -q ready "$TMP/ready" 2>/dev/null; do sleep 0.2; done
		exec 9>&-
		wait "$warmer" 2>/dev/null || true
		sleep "$SETTLE"
	fi
	local before after anon0 anon1
	before=$(rss_kib VmRSS "$2")
	anon0=$(rss_kib RssAnon "$2")
	rm -f "$TMP/ctl" "$TMP/ready"
	mkfifo "$TMP/ctl"
	hold "$3" "$TMP/ctl" <"$TMP/ctl" >"$TMP/ready" &
	local holder=$!
	exec 9>"$TMP/ctl"
	until grep -q ready "$TMP/ready" 2>/dev/null; do sleep 0.2; done
	sleep "$SETTLE"
	after=$(rss_kib VmRSS "$2")
	anon1=$(rss_kib RssAnon "$2")
	local more="" holder2=""
	if [ -n "${MARGINAL:-}" ]; then
		rm -f "$TMP/ctl2" "$TMP/ready2"
		mkfifo "$TMP/ctl2"
		hold "$3" "$TMP/ctl2" <"$TMP/ctl2" >"$TMP/ready2" &
		holder2=$!
		exec 8>"$TMP/ctl2"
		until grep -q ready "$TMP/ready2" 2>/dev/null; do sleep 0.2; done
		sleep "$SETTLE"
		more=$(rss_kib RssAnon "$2")
		exec 8>&-
		wait "$holder2" 2>/dev/null || true
	fi
	exec 9>&-
	wait "$holder" 2>/dev/null || true
	awk -v n="$1" -v b="$before" -v a="$after" -v c="$N" -v x="$anon0" -v y="$anon1" \
		'BEGIN {printf "%-9s idle %7.1f MiB   with %d idle connections %7.1f MiB   (+%.1f MiB, %.1f KiB per connection; anonymous memory +%.1f KiB per connection)\n", n, b/1024, c, a/1024, (a-b)/1024, (a-b)/c, (y-x)/c}'
	if [ -n "$more" ]; then
		awk -v n="$1" -v c="$N" -v y="$anon1" -v z="$more" \
			'BEGIN {printf "%-9s %d more idle connections: anonymous memory +%.1f MiB, %.2f KiB per connection\n", n, c, (z-y)/1024, (z-y)/c}'
	fi
}

TLS_SITE=""
[ -n "$TLS" ] && TLS_SITE="tls = { cert = \"$TMP/cert.pem\", key = \"$TMP/key.pem\" }"
run_portico() { # name binary
	local port
	port=$(free_port)
	cat >"$TMP/portico.toml" <<TOML
[server]
access_log = "off"
idle_timeout = "5m"
[[site]]
listen = ["127.0.0.1:$port"]
$TLS_SITE
  [[site.route]]
  path = "/"
  static = { root = "$TMP/www" }
TOML
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$2" run -c "$TMP/portico.toml" >/dev/null 2>&1 &
	local pid=$!
	PIDS+=($pid)
	wait_port "$port"
	measure "$1" $pid "$port"
	kill $pid 2>/dev/null || true
}
run_portico portico "$TMP/portico"
if [ -n "${PORTICO_BASELINE:-}" ]; then
	run_portico baseline "$PORTICO_BASELINE"
fi

NPORT=$(free_port)
NGINX_TLS="" NGINX_LISTEN=""
[ -n "$TLS" ] && NGINX_TLS="ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;" NGINX_LISTEN=" ssl"
[ "$TLS" = h2 ] && NGINX_LISTEN=" ssl http2"
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections $((N * 2 + 1024)); }
worker_rlimit_nofile $((N * 4 + 1024));
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$NPORT$NGINX_LISTEN;
    $NGINX_TLS
    root $TMP/www;
  }
}
NGINX
taskset -c "$SERVER_CPU" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$NPORT"
measure nginx $! "$NPORT"
kill "$!" 2>/dev/null || true

if [ -z "$TLS" ] && command -v lighttpd >/dev/null; then
	LPORT=$(free_port)
	cat >"$TMP/lighttpd.conf" <<LIGHTTPD
server.document-root = "$TMP/www"
server.bind = "127.0.0.1"
server.port = $LPORT
server.max-connections = $((N * 2 + 1024))
server.max-fds = $((N * 4 + 1024))
server.max-keep-alive-idle = 300
server.max-keep-alive-requests = 100000
LIGHTTPD
	taskset -c "$SERVER_CPU" lighttpd -D -f "$TMP/lighttpd.conf" >/dev/null 2>&1 &
	PIDS+=($!)
	wait_port "$LPORT"
	measure lighttpd $! "$LPORT"
	kill "$!" 2>/dev/null || true
fi
