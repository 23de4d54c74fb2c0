#!/usr/bin/env bash
# Runs every cmocka test program under BUILD/tests and the Python oracle
# tests (tests/oracle/test_*.py, unittest), then prints the totals.
# Exit status: 0 when nothing failed.
set -uo pipefail
build=${1:-build}
export NS_BUILD="$build"
export NS_SHARED="${NS_SHARED:-$(cd "$(dirname "$0")/.." && cd .. && pwd)/shared}"
pass=0 fail=0 skip=0 failed_progs=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$log" 2>&1
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi  # crashed before reporting
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  printf '%-32s %4d passed %3d failed %3d skipped\n' "$(basename "$t")" "$p" "$f" "$s"
  if [ "$f" -ne 0 ]; then failed_progs+=("$(basename "$t")"); cat "$log"; fi
done

py=/usr/bin/python3
if [ -x "$py" ] && ls tests/oracle/test_*.py >/dev/null 2>&1; then
  for t in tests/oracle/test_*.py; do
    "$py" "$t" -v >"$log" 2>&1
    rc=$?
    # From unittest's summary ("Ran N tests", then "OK (skipped=S)" or
    # "FAILED (failures=F, errors=E, skipped=S)"): a test may print its
    # figures between its name and its verdict.
    n=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$log" | tail -1)
    s=$(sed -n 's/.*skipped=\([0-9]*\).*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' "$log" | tail -1)
    e=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$log" | tail -1)
    n=${n:-0} s=${s:-0} f=$((${f:-0} + ${e:-0}))
    p=$((n - s - f))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    printf '%-32s %4d passed %3d failed %3d skipped\n' "$(basename "$t")" "$p" "$f" "$s"
    if [ "$f" -ne 0 ]; then failed_progs+=("$(basename "$t")"); cat "$log"; fi
  done
fi

echo "----------------------------------------------------------------"
echo "TOTAL: $pass passed, $fail failed, $skip skipped"
if [ $fail -ne 0 ]; then
  echo "failing: ${failed_progs[*]}"
  exit 1
fi
