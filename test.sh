#!/usr/bin/env bash
# The whole test suite: unit, fuzz seed corpora and end-to-end tests, with
# the race detector. Needs python3, php-cgi, gunicorn, redis-server and gcc
# (.ci/run installs them on Debian).
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test -race -count=1 -timeout 12m ./...
