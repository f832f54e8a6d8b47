#!/usr/bin/env bash
# Runs the whole test suite against real tools (bubblewrap, tar, strace, module systems, PostgreSQL) and prints
# "N passed, N failed, N skipped" from the TRX results (plus, as failed, the tests scripts/check-test-assertions.py
# finds asserting nothing).
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh || exit $?
# The coordination and gateway tests use a real PostgreSQL server: start it here, so this command alone runs the
# whole suite on a fresh machine (CAIRN_TEST_POSTGRES set by the caller names another server instead).
if [ -z "${CAIRN_TEST_POSTGRES:-}" ]; then
  bash scripts/start-postgres.sh >/dev/null || exit $?
fi

results=TestResults
rm -rf "$results"
# Build everything once, then run each test project without rebuilding, one after the other: projects that
# share src/ outputs must not rebuild them while another is running the cairn binary, and one TRX file per
# project (named after it) cannot be overwritten by another finishing in the same second.
# FUSE mounts left by a killed test host would hang whatever touches them next: detach them.
release_stale_mounts() {
  awk '$3 ~ /^fuse/ && $2 ~ "^/tmp/" {print $2}' /proc/mounts 2>/dev/null | while read -r mountpoint; do
    echo "detaching stale mount $mountpoint" >&2
    fusermount3 -uz "$mountpoint" 2>/dev/null || umount -l "$mountpoint" 2>/dev/null || true
  done
}

status=0
# Every test must assert something that could fail and must not return early (docs/contributing.md, "Writing
# tests"): each one that does not counts as a failed test in the summary below.
unasserted=0
if ! assertion_check=$(python3 scripts/check-test-assertions.py 2>&1); then
  echo "$assertion_check" >&2
  unasserted=$(echo "$assertion_check" | tail -n1 | sed -n 's/^\([0-9][0-9]*\) tests fail the assertion check$/\1/p')
  [ -n "$unasserted" ] && [ "$unasserted" -gt 0 ] || unasserted=1
  status=1
fi

# The tests that start cairn as a process run the binary that ships: the Native AOT cairn of scripts/build-cli.sh
# (docs/adr/0011-native-aot-cli.md). CAIRN_TEST_CLI set by the caller names another build instead.
if [ -z "${CAIRN_TEST_CLI:-}" ]; then
  if CAIRN_BUILD_ARTIFACTS=$PWD/artifacts/build-aot bash scripts/build-cli.sh artifacts/cairn; then
    export CAIRN_TEST_CLI=$PWD/artifacts/cairn/cairn
  else
    echo "the Native AOT cairn did not build: the tests run cairn.dll instead, and the run fails" >&2
    status=1
  fi
fi
if dotnet build Cairn.slnx -nologo -v quiet; then
  for project in $(sed -n 's#.*Path="\(tests/[^"]*\.csproj\)".*#\1#p' Cairn.slnx); do
    name=$(basename "$project" .csproj)
    # A hung test must cost minutes, not the whole CI budget: the test host is killed after 10 minutes on one
    # test (blame names it), and the project after 30 minutes whatever happens.
    timeout --kill-after=30s 30m \
      dotnet test "$project" --no-build --logger "trx;LogFileName=$name.trx" --results-directory "$results" \
        --blame-hang-timeout 10m --blame-hang-dump-type none "$@" || { status=1; echo "$name: test run failed or timed out" >&2; }
    release_stale_mounts
  done
else
  status=1
fi

passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed)))
  # xunit's skipped tests are neither executed nor counted in notExecuted: they are total minus executed.
  skipped=$((skipped + $(get total) - $(get executed)))
done

failed=$((failed + unasserted))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # The run failed without a failing test (build error, aborted test host): never report that as success.
  echo "test run failed before all results were recorded (exit $status)" >&2
  failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
