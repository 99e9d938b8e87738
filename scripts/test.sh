#!/usr/bin/env bash
# Runs every test of the workspace and ends with one summary line over all test binaries,
# so a reader (or CI) sees the totals without adding up each binary's result line.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
sum() { grep -E '^test result:' "$log" | grep -oE "[0-9]+ $1" | awk '{s += $1} END {print s + 0}'; }
echo
echo "workspace: $(sum passed) passed, $(sum failed) failed, $(sum ignored) skipped"
exit "$status"
