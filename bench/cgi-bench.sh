#!/usr/bin/env bash
# cgi-bench.sh: requests per second of the C hello program
# (examples/cgi-bin/hello.c) through portico, Apache mod_cgid and
# nginx + fcgiwrap, side by side.
#
# Each server is pinned to CPU 0 (taskset -c 0), wrk to CPU 1. Rounds are
# interleaved (portico, apache, nginx, portico, ...) so drift in the
# machine's load hits all alike; the median of each is reported, with the
# ratios portico/apache and portico/nginx. Traffic stays on 127.0.0.1.
#
# Usage: bench/cgi-bench.sh            (from the repo root or anywhere)
# Knobs: ROUNDS=5 DURATION=5s CONNS=16 BUILD_WAIT=600 (seconds to wait for
#        ./cmd/portico to build) PORTICO=path (skip the build)
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-16}
BUILD_WAIT=${BUILD_WAIT:-600}

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/portico-cgi-bench.XXXXXX)
chmod 755 "$work" # scripts run as nobody under root
pids=()

# Every server runs in its own session (setsid), so its whole process
# group (Apache's children and cgid daemon, nginx workers, fcgiwrap's
# preforked children) is stopped by pid, and nothing holds our output open.
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 -- "-$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need() { command -v "$1" >/dev/null || { echo "cgi-bench: $1 not found" >&2; exit 1; }; }
need taskset; need setsid; need wrk; need cc; need curl

# A free port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_up() { # url
	for _ in $(seq 100); do
		if curl -sf -o /dev/null "$1"; then return 0; fi
		sleep 0.1
	done
	echo "cgi-bench: $1 did not come up" >&2
	return 1
}

# The program under test.
mkdir -p "$work/cgi-bin"
chmod 755 "$work/cgi-bin"
cc -O2 -o "$work/cgi-bin/hello" "$repo/examples/cgi-bin/hello.c"

# portico: built from this tree (someone may still be writing it: retry).
if [[ -z "${PORTICO:-}" ]]; then
	PORTICO="$work/portico"
	deadline=$((SECONDS + BUILD_WAIT))
	until (cd "$repo" && go build -o "$PORTICO" ./cmd/portico) 2>"$work/build.log"; do
		if ((SECONDS > deadline)); then
			echo "cgi-bench: portico does not build:" >&2
			cat "$work/build.log" >&2
			exit 1
		fi
		echo "cgi-bench: waiting for ./cmd/portico to build..." >&2
		sleep 10
	done
fi

p_port=$(free_port)
cat >"$work/portico.toml" <<EOF
[server]
access_log = "off"

[[site]]
name = "bench"
listen = ["127.0.0.1:$p_port"]

  [[site.route]]
  path = "/cgi-bin/"
  cgi = { root = "$work/cgi-bin", max_processes = 256 }
EOF
setsid taskset -c 0 "$PORTICO" run -c "$work/portico.toml" </dev/null >"$work/portico.log" 2>&1 &
pids+=($!)

# Apache with mod_cgid: one server process (event MPM), its cgid daemon.
mods=/usr/lib/apache2/modules
a_port=$(free_port)
mkdir -p "$work/apache"
cat >"$work/apache/httpd.conf" <<EOF
ServerRoot "$work/apache"
ServerName 127.0.0.1
Listen 127.0.0.1:$a_port
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule alias_module $mods/mod_alias.so
LoadModule cgid_module $mods/mod_cgid.so
User nobody
Group nogroup
PidFile "$work/apache/httpd.pid"
ErrorLog "$work/apache/error.log"
ScriptSock "$work/apache/cgid.sock"
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
KeepAlive On
MaxKeepAliveRequests 0
ScriptAlias /cgi-bin/ "$work/cgi-bin/"
<Directory "$work/cgi-bin">
    Require all granted
</Directory>
EOF
setsid taskset -c 0 /usr/sbin/apache2 -f "$work/apache/httpd.conf" -DFOREGROUND </dev/null >"$work/apache/out.log" 2>&1 &
pids+=($!)

# nginx + fcgiwrap (fcgiwrap forks one process per request, like CGI).
n_port=$(free_port)
mkdir -p "$work/nginx/logs"
setsid taskset -c 0 /usr/sbin/fcgiwrap -c 4 -s "unix:$work/nginx/fcgiwrap.sock" </dev/null >"$work/nginx/fcgiwrap.log" 2>&1 &
pids+=($!)
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    fastcgi_temp_path $work/nginx/fastcgi;
    proxy_temp_path $work/nginx/proxy;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$n_port;
        location /cgi-bin/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $work\$fastcgi_script_name;
            fastcgi_pass unix:$work/nginx/fcgiwrap.sock;
        }
    }
}
EOF
setsid taskset -c 0 /usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" </dev/null >"$work/nginx/out.log" 2>&1 &
pids+=($!)

declare -A url=(
	[portico]="http://127.0.0.1:$p_port/cgi-bin/hello"
	[apache]="http://127.0.0.1:$a_port/cgi-bin/hello"
	[nginx]="http://127.0.0.1:$n_port/cgi-bin/hello"
)
names=(portico apache nginx)
for n in "${names[@]}"; do
	wait_up "${url[$n]}"
	body=$(curl -sf "${url[$n]}")
	[[ "$body" == "Hello, world!" ]] || { echo "cgi-bench: $n answered '$body'" >&2; exit 1; }
done

declare -A results
echo "cgi-bench: $ROUNDS rounds of $DURATION, $CONNS connections, servers on CPU 0, wrk on CPU 1"
for ((r = 1; r <= ROUNDS; r++)); do
	for n in "${names[@]}"; do
		out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" "${url[$n]}")
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
		results[$n]+="$rps "
		printf '  round %d  %-8s %10s req/s %s\n' "$r" "$n" "$rps" "$errs"
	done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
declare -A med
echo
for n in "${names[@]}"; do
	med[$n]=$(median <<<"${results[$n]}")
	printf '%-8s median %10s req/s\n' "$n" "${med[$n]}"
done
# Ratio of the medians, and the median of each round's ratio (the latter
# is steadier when the machine's load drifts during the run).
ratios() { # other
	paste -d' ' <(tr ' ' '\n' <<<"${results[portico]}" | sed '/^$/d') <(tr ' ' '\n' <<<"${results[$1]}" | sed '/^$/d') |
		awk '$2 > 0 {printf "%s ", $1 / $2}'
}
ra=$(ratios apache | median)
rx=$(ratios nginx | median)
awk -v p="${med[portico]}" -v a="${med[apache]}" -v x="${med[nginx]}" -v ra="$ra" -v rx="$rx" 'BEGIN {
	printf "portico/apache(mod_cgid)   %.2fx  (median of per-round ratios %.2fx)\n", p / a, ra
	printf "portico/nginx+fcgiwrap     %.2fx  (median of per-round ratios %.2fx)\n", p / x, rx
}'
