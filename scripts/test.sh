#!/usr/bin/env bash
# Runs every nsnet test. Needs root: each integration test builds its own
# throwaway sandbox (network + mount + PID namespaces, private /run) and never
# touches the host's network.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked "$@"
