#!/usr/bin/env bash
# cache-tests.sh: runs the public HTTP cache test suite
# (https://github.com/http-tests/cache-tests, cache-tests.fyi) against
# portico: the suite's origin server (node), portico in front of it with a
# cached proxy route, the suite's CLI against portico; then grades the
# results with the suite's own determineTestResult (dependencies
# honoured), prints "N passed" and the tests that did not pass.
#
# usage: bench/cache-tests.sh [-i TEST_ID] [-s memory|redis://127.0.0.1:6379/0]
# env:   CACHE_TESTS_DIR   where the suite is (cloned there if missing;
#                          default ~/.cache/portico/cache-tests)
#        CACHE_TESTS_REPO  what to clone (default the GitHub repository)
#        CACHE_TESTS_REF   the commit to check out (default b55b8bd, the
#                          one the counts in docs/cache.md come from)
#        KEEP_RESULTS=FILE also copy the raw results JSON there
#
# Needs node >= 18, npm, git, go, curl. Only 127.0.0.1 is used; everything
# started is stopped on exit.
set -euo pipefail

TEST_ID="" STORE=memory
while getopts "i:s:h" opt; do
	case $opt in
	i) TEST_ID=$OPTARG ;;
	s) STORE=$OPTARG ;;
	*) sed -n '2,18p' "$0"; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/portico-cache-tests.XXXXXX)
. "$ROOT/bench/lib.sh"

SUITE=${CACHE_TESTS_DIR:-$HOME/.cache/portico/cache-tests}
REPO=${CACHE_TESTS_REPO:-https://github.com/http-tests/cache-tests}
REF=${CACHE_TESTS_REF:-b55b8bd}
if [ ! -f "$SUITE/package.json" ]; then
	echo "cloning $REPO into $SUITE..." >&2
	mkdir -p "$(dirname "$SUITE")"
	git clone -q "$REPO" "$SUITE"
fi
(cd "$SUITE" && git checkout -q "$REF")
if [ ! -d "$SUITE/node_modules/undici" ]; then
	echo "installing the suite's dependencies (npm)..." >&2
	(cd "$SUITE" && npm install --omit=dev --no-audit --no-fund >&2)
fi

echo "building portico..." >&2
(cd "$ROOT" && go build -o "$TMP/portico" ./cmd/portico)

OPORT=$(free_port)
(cd "$SUITE" && npm_config_port=$OPORT npm_config_protocol=http npm_config_pidfile="$TMP/origin.pid" \
	exec node test-engine/server/server.mjs) >"$TMP/origin.log" 2>&1 &
PIDS+=($!)

PPORT=$(free_port)
cat >"$TMP/portico.toml" <<TOML
[server]
access_log = "$TMP/access.log"
[[site]]
listen = ["127.0.0.1:$PPORT"]
  [[site.route]]
  path = "/"
  [site.route.proxy]
  upstreams = ["http://127.0.0.1:$OPORT"]
  [site.route.cache]
  store = "$STORE"
TOML
"$TMP/portico" run -c "$TMP/portico.toml" >"$TMP/portico.log" 2>&1 &
PIDS+=($!)
wait_port "$OPORT"
wait_port "$PPORT"

cd "$SUITE"
if [ -n "$TEST_ID" ]; then
	npm_config_base="http://127.0.0.1:$PPORT" npm_config_id="$TEST_ID" node --no-warnings test-engine/cli.mjs
	exit 0
fi
npm_config_base="http://127.0.0.1:$PPORT" npm_package_config_id="" node --no-warnings test-engine/cli.mjs >"$TMP/results.json"
if [ -n "${KEEP_RESULTS:-}" ]; then cp "$TMP/results.json" "$KEEP_RESULTS"; fi
node "$ROOT/bench/cache-tests-grade.mjs" "$SUITE" "$TMP/results.json"
