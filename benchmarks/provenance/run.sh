#!/usr/bin/env bash
# Provenance costs (issue 14; docs/performance.md): signing a publish's statements, verifying 2,000 products.
#   bash benchmarks/provenance/run.sh            # about 1-3 minutes on an idle 2-core machine
#   BENCH_PRODUCTS=500 bash benchmarks/provenance/run.sh
# Knobs: BENCH_DIR (scratch, default a temp dir), BENCH_PUBLISHES (41), BENCH_PRODUCTS (2000), CAIRN_BIN (also time
# the real `cairn verify --provenance`; default: the cairn.dll built beside the CLI if present). Not run in CI.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dotnet build -c Release -v q --nologo "$ROOT/benchmarks/provenance/Cairn.Benchmarks.Provenance.csproj" >/dev/null
args=(--publishes "${BENCH_PUBLISHES:-41}" --products "${BENCH_PRODUCTS:-2000}")
[[ -n ${BENCH_DIR:-} ]] && args+=(--dir "$BENCH_DIR")
if [[ -n ${CAIRN_BIN:-} ]]; then args+=(--cairn "$CAIRN_BIN"); fi
exec dotnet "$ROOT/benchmarks/provenance/bin/Release/net10.0/cairn-provenance-bench.dll" "${args[@]}"
