#!/usr/bin/env bash
# `nsnet network connect` (one published TCP port per endpoint) and `network
# disconnect` at N endpoints on one network, and one connect that publishes 1000
# ports: bench/run.sh's nsnet CLI rounds alone (bench/README.md tells how to
# read them). Runs in throwaway sandboxes; the host's network is never touched.
#
#   bench/connect.sh [N ...]      default: 10 100 1000
set -euo pipefail
sizes=("$@")
[ $# -gt 0 ] || sizes=(10 100 1000)
exec "$(dirname "$0")/run.sh" --tools nsnet-cli --sizes "$(IFS=,; echo "${sizes[*]}")" --no-pods
