#!/usr/bin/env bash
# Runs one fuzz target for SECONDS (default 600) with one worker, on the stable
# toolchain; see README.md. New inputs go to $FUZZ_WORK/TARGET (outside git),
# the committed corpus is read as a seed.
#   fuzz/run.sh cni_config|port_spec|names [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?target: cni_config, port_spec or names}
secs=${2:-600}
work=${FUZZ_WORK:-${CARGO_TARGET_DIR:-target}/fuzz-work}/$target
mkdir -p "$work"
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run --debug-assertions ${CARGO_TARGET_DIR:+--target-dir "$CARGO_TARGET_DIR/fuzz"} \
    "$target" "$work" "corpus/$target" -- \
    -dict="dicts/$target.dict" -max_total_time="$secs" -timeout=10 -print_final_stats=1
