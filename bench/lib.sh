# bench/lib.sh: what proxy-bench.sh and cache-bench.sh share. Source it
# after setting ROOT and TMP; it sets up cleanup of every PID in PIDS, the
# CPUs to pin to, and helpers to find ports and build portico.

PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

NCPU=$(nproc)
SERVER_CPU=0
LOAD_CPU=$((NCPU > 1 ? 1 : 0))

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_port() { # wait until something answers HTTP on port $1
	for _ in $(seq 1 100); do
		if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; then return 0; fi
		sleep 0.1
	done
	echo "nothing answers on port $1" >&2
	return 1
}

# build_portico UPSTREAM_PKG: builds portico (polling while cmd/portico may
# still be half-written) and the named upstream into $TMP.
build_portico() {
	echo "building portico and the upstream..." >&2
	local deadline=$(($(date +%s) + ${PORTICO_BUILD_WAIT:-600}))
	until (cd "$ROOT" && go build -o "$TMP/portico" ./cmd/portico) 2>"$TMP/build.log"; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "portico does not build:" >&2; cat "$TMP/build.log" >&2; exit 1
		fi
		sleep 10
	done
	(cd "$ROOT" && go build -o "$TMP/$(basename "$1")" "./$1")
}
