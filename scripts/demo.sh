#!/usr/bin/env bash
# Builds nsnet and runs its main job, `nsnet demo`: the whole container-networking
# walk-through (veth pair, bridge network, masquerade, a running process given a
# second interface, network modes, a pod with a published port), replayed inside
# a throwaway sandbox that nsnet makes itself (its own network, mount and PID
# namespaces and /run), so the host's network is never touched. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
nsnet=$(scripts/build.sh)
exec "$nsnet" demo "$@"
