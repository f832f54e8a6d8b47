#!/usr/bin/env bash
# The publication log benchmark (docs/performance.md, "Publication log"). Not run in CI; run on an idle machine.
# Builds in Release and prints: the log's cost on a small signed publish, and a client's catch-up from a
# checkpoint 100,000 entries old (proof hashes, tile requests, CPU). About a minute; knobs are passed through:
#   bash benchmarks/tlog/run.sh [--publishes 40] [--catch-up 100000] [--runs 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build -c Release -v quiet -nologo benchmarks/tlog/Cairn.Benchmarks.Tlog.csproj >/dev/null
exec dotnet benchmarks/tlog/bin/Release/net10.0/cairn-tlog-bench.dll "$@"
