#!/usr/bin/env bash
# compare.sh: two portico versions side by side with nginx, in one run
# (issue 9 point 7: "no speed lost").
#
#   bench/compare.sh                     (before = 27864be, after = HEAD)
#   BEFORE=<rev> AFTER=<rev> bench/compare.sh
#
# It builds portico at BEFORE and at AFTER from `git archive` of each
# revision (so uncommitted changes are not measured), and the upstreams
# (bench/upstream, bench/cacheupstream) from AFTER. Then, for every
# scenario, it runs old portico, new portico and nginx in interleaved
# rounds (each round in a rotated order) and prints tables of medians and
# ratios, and of new's ratios round by round with the rounds it won:
#
#   ka      static 1 KiB file, keep-alive
#   close   static 1 KiB file, a new connection per request
#   big     static 1 MiB file, keep-alive (req/s; x 1.05 for MB/s)
#   proxy   reverse proxy, 1 KiB upstream body (upstream keep-alive)
#   cache   cache hit, 1 KiB (portico's cache / nginx proxy_cache)
#   404     a missing file, keep-alive (the answer scanners and bots get)
#   layer   static 1 KiB keep-alive on a route with a header layer that
#           sets two fields (new portico: [[site.route.headers]]; old
#           portico had no route layers, so the same fields are its site
#           headers; nginx: add_header in the location)
#
# Peers beside nginx, each when installed (PEERS, default "lighttpd caddy
# apache"): lighttpd on the static scenarios (ka close big 404), Caddy
# and Apache httpd (event MPM, one process) on those and the proxy.
#
# Servers run pinned to SERVER_CPU (taskset, GOMAXPROCS=1 / one nginx
# worker); wrk and the upstreams to CLIENT_CPU. Every server is checked to
# answer every scenario right (status, length, cache hit, layer fields)
# before anything is measured.
#
# Environment: ROUNDS (3), DURATION (10s), CONNS (50), SCENARIOS
# ("ka close big 404 proxy cache layer"), BEFORE (27864be), AFTER (HEAD),
# SERVER_CPU (0), CLIENT_CPU (1), NGINX (/usr/sbin/nginx), WRK (wrk).
# Only 127.0.0.1 is used; everything started is stopped on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
SCENARIOS=${SCENARIOS:-ka close big 404 proxy cache layer}
BEFORE=${BEFORE:-27864be}
AFTER=${AFTER:-HEAD}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
SERVERS=(old new nginx)
LIGHTTPD=${LIGHTTPD:-/usr/sbin/lighttpd}
CADDY=${CADDY:-$(command -v caddy || true)}
APACHE=${APACHE:-/usr/sbin/apache2}
# PEERS: the other servers that join when installed: lighttpd (one
# process) on the static scenarios; Caddy (GOMAXPROCS=1) and Apache httpd
# (event MPM, one process) on the static scenarios and the reverse proxy.
PEERS=${PEERS:-lighttpd caddy apache}
for p in $PEERS; do
	case $p in
	lighttpd) [ -x "$LIGHTTPD" ] && SERVERS+=(lighttpd) ;;
	caddy) [ -n "$CADDY" ] && [ -x "$CADDY" ] && SERVERS+=(caddy) ;;
	apache) [ -x "$APACHE" ] && SERVERS+=(apache) ;;
	esac
done
servers_for() { # scenario -> the servers that run it
	local s
	for s in "${SERVERS[@]}"; do
		case $s in
		lighttpd) case $1 in ka | close | big | 404) ;; *) continue ;; esac ;;
		caddy | apache) case $1 in ka | close | big | 404 | proxy) ;; *) continue ;; esac ;;
		esac
		echo "$s"
	done
}

die() { echo "compare: $*" >&2; exit 1; }
command -v "$WRK" >/dev/null || die "wrk not found ($WRK)"
[ -x "$NGINX" ] || die "nginx not found at $NGINX"
command -v taskset >/dev/null || die "taskset not found"
command -v curl >/dev/null || die "curl not found"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-compare.XXXXXX)
chmod 755 "$TMP" # nginx workers may run as nobody

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_port() { # port name
	local i
	for i in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "compare: $2 did not start on port $1; its log:" >&2
	cat "$TMP/$2.log" >&2 2>/dev/null || true
	exit 1
}

# ---- build

build_rev() { # rev name: portico at rev into $TMP/bin/portico-name
	local src=$TMP/src-$2
	mkdir -p "$src" "$TMP/bin"
	git -C "$ROOT" archive "$1" | tar -x -C "$src" || die "git archive $1 failed"
	echo "building portico $2 ($1 = $(git -C "$ROOT" rev-parse --short "$1"))..." >&2
	(cd "$src" && go build -o "$TMP/bin/portico-$2" ./cmd/portico) || die "portico at $1 does not build"
}
build_rev "$BEFORE" old
build_rev "$AFTER" new
(cd "$TMP/src-new" && go build -o "$TMP/bin/upstream" ./bench/upstream && go build -o "$TMP/bin/cacheupstream" ./bench/cacheupstream) ||
	die "the upstreams do not build"

# ---- what is served

DOCS=$TMP/docs
mkdir -p "$DOCS"
head -c 1024 /dev/zero | tr '\0' 'x' >"$DOCS/1k.txt"
head -c $((1 << 20)) /dev/urandom >"$DOCS/1m.bin"

UPORT=$(free_port)
CPORT=$(free_port)
GOMAXPROCS=1 taskset -c "$CLIENT_CPU" "$TMP/bin/upstream" -addr "127.0.0.1:$UPORT" -size 1024 2>"$TMP/upstream.log" &
PIDS+=($!)
GOMAXPROCS=1 taskset -c "$CLIENT_CPU" "$TMP/bin/cacheupstream" -addr "127.0.0.1:$CPORT" -size 1024 2>"$TMP/cacheupstream.log" &
PIDS+=($!)
wait_port "$UPORT" upstream
wait_port "$CPORT" cacheupstream

# Each server listens on two ports: MAIN (static, proxy, cache routes) and
# LAYER (the static route with the header layer).
declare -A MAIN LAYER
# SPID: each server's main process (its workers are its children), whose
# CPU time run_wrk counts.
declare -A SPID

portico_config() { # name main_port layer_port -> config on stdout
	local layer=""
	if [ "$1" = new ]; then
		layer='[[site.route.headers]]
set = { "X-Layer" = "1", "X-Frame-Options" = "DENY" }'
	fi
	cat <<EOF
[server]
access_log = "off"
[[site]]
listen = ["127.0.0.1:$2"]
[[site.route]]
path = "/"
static = { root = "$DOCS" }
[[site.route]]
path = "/api/"
[site.route.proxy]
upstreams = ["http://127.0.0.1:$UPORT"]
[[site.route]]
path = "/cached/"
[site.route.proxy]
upstreams = ["http://127.0.0.1:$CPORT"]
[site.route.cache]
max_size = "64MB"
[[site]]
listen = ["127.0.0.1:$3"]
EOF
	if [ "$1" = old ]; then
		echo 'headers = { "X-Layer" = "1", "X-Frame-Options" = "DENY" }'
	fi
	cat <<EOF
[[site.route]]
path = "/"
static = { root = "$DOCS" }
$layer
EOF
}

start_portico() { # old|new
	MAIN[$1]=$(free_port)
	LAYER[$1]=$(free_port)
	portico_config "$1" "${MAIN[$1]}" "${LAYER[$1]}" >"$TMP/portico-$1.toml"
	"$TMP/bin/portico-$1" check -c "$TMP/portico-$1.toml" >"$TMP/$1.log" 2>&1 || {
		cat "$TMP/$1.log" >&2
		die "portico $1 refuses its config"
	}
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$TMP/bin/portico-$1" run -c "$TMP/portico-$1.toml" >"$TMP/$1.log" 2>&1 &
	PIDS+=($!)
	SPID[$1]=$!
	wait_port "${MAIN[$1]}" "$1"
	wait_port "${LAYER[$1]}" "$1"
}

start_nginx() {
	MAIN[nginx]=$(free_port)
	LAYER[nginx]=$(free_port)
	mkdir -p "$TMP/nginx/logs"
	cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx.log warn;
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
    proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=60m use_temp_path=off;
    upstream app { server 127.0.0.1:$UPORT; keepalive 256; }
    upstream cacheapp { server 127.0.0.1:$CPORT; keepalive 256; }
    server {
        listen 127.0.0.1:${MAIN[nginx]};
        root $DOCS;
        location /api/ {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            # The forwarding fields portico must send (SPEC: X-Forwarded-
            # For, -Proto, -Host and Via), as in proxy-bench.sh: the
            # upstream shares the load's CPU, which bounds this scenario
            # (the proxy's own CPU is not saturated), so each field it
            # parses costs req/s. Without the last two, nginx read 4%
            # more req/s (session 28).
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header Via "1.1 nginx";
        }
        location /cached/ {
            proxy_pass http://cacheapp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_cache bench;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
    server {
        listen 127.0.0.1:${LAYER[nginx]};
        root $DOCS;
        location / {
            add_header X-Layer 1;
            add_header X-Frame-Options DENY;
        }
    }
}
EOF
	taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >>"$TMP/nginx.log" 2>&1 &
	PIDS+=($!)
	SPID[nginx]=$!
	wait_port "${MAIN[nginx]}" nginx
	wait_port "${LAYER[nginx]}" nginx
}

start_lighttpd() {
	MAIN[lighttpd]=$(free_port)
	cat >"$TMP/lighttpd.conf" <<LIGHTTPD
server.document-root = "$DOCS"
server.bind = "127.0.0.1"
server.port = ${MAIN[lighttpd]}
server.max-keep-alive-requests = 100000000
server.max-connections = 4096
server.network-backend = "sendfile"
mimetype.assign = (".txt" => "text/plain", ".bin" => "application/octet-stream")
LIGHTTPD
	taskset -c "$SERVER_CPU" "$LIGHTTPD" -D -f "$TMP/lighttpd.conf" >"$TMP/lighttpd.log" 2>&1 &
	PIDS+=($!)
	SPID[lighttpd]=$!
	wait_port "${MAIN[lighttpd]}" lighttpd
}

start_caddy() {
	MAIN[caddy]=$(free_port)
	cat >"$TMP/Caddyfile" <<CADDYFILE
{
	admin off
	auto_https off
}
http://127.0.0.1:${MAIN[caddy]} {
	handle /api/* {
		reverse_proxy 127.0.0.1:$UPORT
	}
	handle {
		root * $DOCS
		file_server
	}
}
CADDYFILE
	HOME=$TMP XDG_DATA_HOME=$TMP/caddy-data XDG_CONFIG_HOME=$TMP/caddy-config GOMAXPROCS=1 \
		taskset -c "$SERVER_CPU" "$CADDY" run --config "$TMP/Caddyfile" --adapter caddyfile >"$TMP/caddy.log" 2>&1 &
	PIDS+=($!)
	SPID[caddy]=$!
	wait_port "${MAIN[caddy]}" caddy
}

start_apache() {
	MAIN[apache]=$(free_port)
	local m=/usr/lib/apache2/modules d=$TMP/apache
	mkdir -p "$d/logs"
	cat >"$d/httpd.conf" <<APACHECONF
ServerRoot "$d"
ServerName 127.0.0.1
PidFile "$d/httpd.pid"
ErrorLog "$d/logs/error.log"
LogLevel warn
Listen 127.0.0.1:${MAIN[apache]}
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule mime_module $m/mod_mime.so
LoadModule dir_module $m/mod_dir.so
LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_http_module $m/mod_proxy_http.so
# One process (as one nginx worker), enough threads for the connections.
StartServers 1
ServerLimit 1
MinSpareThreads 1
MaxSpareThreads 256
ThreadsPerChild 128
ThreadLimit 128
MaxRequestWorkers 128
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 65
EnableSendfile On
EnableMMAP On
TypesConfig /etc/mime.types
DocumentRoot "$DOCS"
<Directory "$DOCS">
	Require all granted
	AllowOverride None
</Directory>
ProxyPass "/api/" "http://127.0.0.1:$UPORT/api/" keepalive=On
APACHECONF
	taskset -c "$SERVER_CPU" "$APACHE" -d "$d" -f "$d/httpd.conf" -DFOREGROUND >"$TMP/apache.log" 2>&1 &
	PIDS+=($!)
	SPID[apache]=$!
	wait_port "${MAIN[apache]}" apache
}

start_portico old
start_portico new
start_nginx
if [[ " ${SERVERS[*]} " == *" lighttpd "* ]]; then start_lighttpd; fi
if [[ " ${SERVERS[*]} " == *" caddy "* ]]; then start_caddy; fi
if [[ " ${SERVERS[*]} " == *" apache "* ]]; then start_apache; fi

url() { # server scenario
	case $2 in
	ka | close) echo "http://127.0.0.1:${MAIN[$1]}/1k.txt" ;;
	404) echo "http://127.0.0.1:${MAIN[$1]}/missing.txt" ;;
	big) echo "http://127.0.0.1:${MAIN[$1]}/1m.bin" ;;
	proxy) echo "http://127.0.0.1:${MAIN[$1]}/api/1k" ;;
	cache) echo "http://127.0.0.1:${MAIN[$1]}/cached/1k" ;;
	layer) echo "http://127.0.0.1:${LAYER[$1]}/1k.txt" ;;
	*) die "unknown scenario $2" ;;
	esac
}

# ---- check every answer before measuring

check() { # server scenario
	local u hdr code size
	u=$(url "$1" "$2")
	curl -s -o /dev/null "$u" # fills the caches
	hdr=$(curl -s -D - -o "$TMP/body" "$u" | tr -d '\r')
	code=$(awk 'NR == 1 {print $2}' <<<"$hdr")
	size=$(stat -c %s "$TMP/body")
	local want=1024
	[ "$2" = big ] && want=1048576
	if [ "$2" = 404 ]; then
		[ "$code" = 404 ] || die "$1 404: $u answered $code, want 404"
		return 0
	fi
	[ "$code" = 200 ] && [ "$size" = "$want" ] || die "$1 $2: $u answered $code with $size bytes, want 200 with $want"
	case $2 in
	cache)
		grep -qiE '^(cache-status: .*hit|x-cache-status: hit)' <<<"$hdr" || die "$1 is not answering $u from its cache: $hdr"
		;;
	layer)
		grep -qi '^x-layer: 1' <<<"$hdr" && grep -qi '^x-frame-options: deny' <<<"$hdr" || die "$1 $u lacks the layer's fields: $hdr"
		;;
	esac
}
for t in $SCENARIOS; do
	for s in $(servers_for "$t"); do check "$s" "$t"; done
done

# ---- measure

cpu_ticks() { # pid -> CPU clock ticks used so far by it and its children (nginx's worker)
	local p t=0
	for p in "$1" $(pgrep -P "$1" || true); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
HZ=$(getconf CLK_TCK)

run_wrk() { # server scenario duration -> "req/s server-CPU-us-per-request" on stdout
	local args=() out t0 t1
	[ "$2" = close ] && args=(-H 'Connection: close')
	t0=$(cpu_ticks "${SPID[$1]}")
	out=$(taskset -c "$CLIENT_CPU" "$WRK" -t1 -c"$CONNS" -d"$3" "${args[@]}" "$(url "$1" "$2")" 2>&1) || die "wrk failed: $out"
	t1=$(cpu_ticks "${SPID[$1]}")
	if [ "$2" != 404 ] && grep -q 'Non-2xx' <<<"$out"; then
		echo "compare: warning: $1 $2: $(grep 'Non-2xx' <<<"$out")" >&2
	fi
	awk -v t=$((t1 - t0)) -v hz="$HZ" '/^Requests\/sec:/ {rate = $2} / requests in / {n = $1}
		END {printf "%s %.2f\n", rate, n ? t / hz * 1e6 / n : 0}' <<<"$out"
}

echo "servers on CPU $SERVER_CPU (GOMAXPROCS=1 / one nginx worker); wrk -t1 -c$CONNS and upstreams on CPU $CLIENT_CPU; $ROUNDS rounds x $DURATION" >&2
echo "warming up..." >&2
for t in $SCENARIOS; do
	for s in $(servers_for "$t"); do run_wrk "$s" "$t" 1s >/dev/null; done
done

# rotated LIST R: the list started at its R-th element, so that no server
# is always measured first (or always right after the same other one) in
# a round: the machine's slow drifts then fall on every server alike.
rotated() {
	local -a l=($1)
	local i n=${#l[@]}
	for ((i = 0; i < n; i++)); do echo "${l[(i + $2) % n]}"; done
}

for r in $(seq "$ROUNDS"); do
	for t in $SCENARIOS; do
		for s in $(rotated "$(servers_for "$t")" "$r"); do
			read -r v c < <(run_wrk "$s" "$t" "$DURATION")
			[ -n "$v" ] || die "$s $t: wrk printed no Requests/sec"
			echo "$v" >>"$TMP/result.$s.$t"
			echo "$c" >>"$TMP/cpu.$s.$t"
			printf 'round %d  %-6s %-8s %12s req/s %8s us CPU/request\n' "$r" "$t" "$s" "$v" "$c" >&2
		done
	done
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# table KIND prints the medians of every scenario (KIND result: req/s,
# more is better; cpu: microseconds per request, less is better) and the
# ratios between servers, each oriented so that above 1 means the first
# named is ahead: req/s over req/s, or CPU over CPU the other way round.
table() {
	local kind=$1 t o n x l c a
	for t in $SCENARIOS; do
		o=$(median "$TMP/$kind.old.$t")
		n=$(median "$TMP/$kind.new.$t")
		x=$(median "$TMP/$kind.nginx.$t")
		l=$(peer "$kind" lighttpd "$t")
		c=$(peer "$kind" caddy "$t")
		a=$(peer "$kind" apache "$t")
		awk -v k="$kind" -v t="$t" -v o="$o" -v n="$n" -v x="$x" -v l="$l" -v c="$c" -v a="$a" '
			function ahead(p, q) { return k == "cpu" ? q / p : p / q }
			function fig(v) { return v > 0 ? sprintf(k == "cpu" ? "%.2f" : "%.0f", v) : "-" }
			function r(v) { return v > 0 ? sprintf("%.2fx", ahead(n, v)) : "-" }
			BEGIN {printf "%-7s %11s %11s %11s %11s %9.2fx %9.2fx %7.2fx %11s %9s %9s\n", t, fig(o), fig(n), fig(x), fig(l), ahead(o, x), ahead(n, x), ahead(n, o), r(l), r(c), r(a)}'
	done
}
peer() { # kind server scenario -> its median, or 0
	if [ -f "$TMP/$1.$2.$3" ]; then median "$TMP/$1.$2.$3"; else echo 0; fi
}

echo
echo "portico $BEFORE (old) and $AFTER (new) against nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'); medians of $ROUNDS rounds x $DURATION, req/s"
printf '%-7s %11s %11s %11s %11s %10s %10s %8s %11s %9s %9s\n' scenario old new nginx lighttpd old/nginx new/nginx new/old new/lighttpd new/caddy new/apache
table result

# CPU per request is the steadier figure on a shared machine: it does not
# count the time the server waits for a CPU others hold, which throughput
# does.
echo
echo "server CPU per request, microseconds (medians; ratios: nginx's or old's over new's, above 1 = new needs less)"
printf '%-7s %11s %11s %11s %11s %10s %10s %8s %11s %9s %9s\n' scenario old new nginx lighttpd nginx/old nginx/new old/new lighttpd/new caddy/new apache/new
table cpu

# The same comparisons round by round: a round measures every server
# within a minute, so its ratios see less of the machine's drift than
# ratios of medians taken over the whole run. Each cell is the median of
# new's per-round ratios to the peer (req/s, and the peer's CPU per
# request over new's) and the rounds new was ahead in.
paired() { # scenario peer -> "1.04x 3/5 | 1.02x 4/5", or "-"
	local t=$1 p=$2 rows
	[ -f "$TMP/result.$p.$t" ] || { echo -; return; }
	# per round: new's req/s over the peer's, the peer's CPU over new's
	rows=$(paste "$TMP/result.new.$t" "$TMP/result.$p.$t" "$TMP/cpu.new.$t" "$TMP/cpu.$p.$t" |
		awk '{print $1 / $2, $4 / $3}')
	printf '%.2fx %d/%d | %.2fx %d/%d\n' \
		"$(awk '{print $1}' <<<"$rows" | median /dev/stdin)" "$(awk '$1 > 1' <<<"$rows" | wc -l)" "$(wc -l <<<"$rows")" \
		"$(awk '{print $2}' <<<"$rows" | median /dev/stdin)" "$(awk '$2 > 1' <<<"$rows" | wc -l)" "$(wc -l <<<"$rows")"
}
echo
echo "new against each, round by round: median of the per-round ratios and rounds won (req/s | CPU per request)"
printf '%-7s %-23s %-23s %-23s %-23s\n' scenario old nginx lighttpd caddy
for t in $SCENARIOS; do
	printf '%-7s %-23s %-23s %-23s %-23s\n' "$t" "$(paired "$t" old)" "$(paired "$t" nginx)" "$(paired "$t" lighttpd)" "$(paired "$t" caddy)"
done
