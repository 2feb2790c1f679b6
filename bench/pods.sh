#!/usr/bin/env bash
# `nsnet pod create` (pause process + namespaces + one network attach + one
# published port) and `nsnet pod rm` at N pods, and the pause process's peak
# RSS: bench/run.sh's pods round alone (bench/README.md tells how to read it).
# Runs in a throwaway sandbox; the host's network is never touched.
#
#   bench/pods.sh [N ...]      default: 10 200
set -euo pipefail
sizes=("$@")
[ $# -gt 0 ] || sizes=(10 200)
exec "$(dirname "$0")/run.sh" --tools nsnet-cli --sizes "" --pods "$(IFS=,; echo "${sizes[*]}")" --no-ports
