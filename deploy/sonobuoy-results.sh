#!/bin/sh
# The Sonobuoy plugin's entry point (deploy/sonobuoy-plugin.yaml): runs its arguments (the
# `netpol-harness certify ... --out "$SONOBUOY_RESULTS_DIR"` command), then hands the report
# directory to Sonobuoy as its worker expects: a tarball of the results directory, and the
# tarball's path in the `done` file, which the worker waits for.
#
# A failing certification is a result, not a plugin error: the tarball is handed over whatever
# the command's exit status, which is logged, and the script exits 0 once it is (Sonobuoy reads
# the verdict from the JUnit files). It exits non-zero only when the results cannot be packed.
set -u
results=${SONOBUOY_RESULTS_DIR:-/tmp/sonobuoy/results}
mkdir -p "$results"
"$@"
echo "sonobuoy-results: $1 exited with status $?"
tarball=$(mktemp)
if ! tar -czf "$tarball" -C "$results" . || ! mv "$tarball" "$results/netpol-harness.tar.gz"; then
  echo "sonobuoy-results: failed to pack $results" >&2
  exit 1
fi
# The worker reads `done` as soon as it exists: write it elsewhere, then move it in whole.
printf '%s' "$results/netpol-harness.tar.gz" > "$results/.done"
mv "$results/.done" "$results/done"
