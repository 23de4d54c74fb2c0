#!/usr/bin/env bash
# Runs every cmocka test program under BUILD/tests and the Python oracle
# tests (tests/oracle/test_*.py, through tests/oracle/runner.py), then prints
# the totals. Exit status: 0 when nothing failed.
#
# With --slow it runs only the slow checks, tests/slow/test_*.py (make
# test-slow): the ones too long for make test's 10 minutes on 2 cores.
#
# What counts as a failure besides a failed check: a program that crashes or
# exits non-zero, one whose report cannot be read or runs fewer tests than
# MIN_TESTS says (a program that prints nothing and exits 0 ran nothing), a
# missing CLI or /usr/bin/python3 (every oracle test would skip), and, when
# the environment sets CI, any skip not in CI_ALLOWED_SKIPS: CI installs
# everything (scripts/install-deps.sh all), so a skip there is a broken setup.
set -uo pipefail
here=$(pwd)
cd "$(dirname "$0")/.." || exit 1  # the tests find their data from the repo root
slow=0
if [ "${1:-}" = --slow ]; then slow=1; shift; fi
build=${1:-build}
case "$build" in /*) ;; *) [ -d "$here/$build" ] && build="$here/$build" ;; esac
export NS_BUILD="$build"
export NS_SHARED="${NS_SHARED:-$(cd .. && pwd)/shared}"
case "${CI:-}" in ""|0|false) ci=0 ;; *) ci=1 ;; esac

# The fewest tests each program must report: its test functions today
# (a skipped test counts; subtests add to a test's one). A program not named
# here must report at least one test; one named here but not built fails.
declare -A MIN_TESTS=(
  [test_alloc_fail]=11 [test_api]=7 [test_api_calls]=6 [test_backward]=37
  [test_bench_graph.py]=4 [test_cli]=12 [test_conformance]=1 [test_corpus_cli.py]=3
  [test_data]=9 [test_data_opencv.py]=4 [test_datadb.py]=14 [test_draw.py]=10
  [test_export_onnx]=4 [test_fileio]=3 [test_fork_fields]=10
  [test_fork_schema_opencv.py]=3 [test_forks_opencv.py]=3 [test_hdf5data.py]=5
  [test_hostile]=29 [test_io]=26 [test_data_prefetch]=3 [test_caffe_examples.py]=1
  [test_classify_stream.py]=9 [test_dask.py]=2 [test_json_number]=4 [test_kernels]=23
  [test_layer_clip]=6 [test_layer_dummy_data]=4 [test_layer_forks]=18
  [test_layer_memory_data]=2 [test_layer_ops]=4 [test_layer_rcnn]=9
  [test_layer_recurrent]=10 [test_layer_ssd]=14
  [test_layer_window_data]=1 [test_layers_bvlc]=34 [test_layers_caffenet]=28
  [test_layers_zoo]=33 [test_net]=14 [test_onnx_export.py]=15 [test_opencv.py]=2
  [test_notebook.py]=1 [test_pbreflect]=3 [test_preprocess]=5
  [test_pycaffe_notebooks.py]=1 [test_python_module.py]=24 [test_python_pycaffe.py]=21
  [test_onnx_layers.py]=4 [test_reuse]=6 [test_rcnn_opencv.py]=3 [test_shared_lib.py]=4
  [test_shared_params]=9 [test_recurrent_torch.py]=2
  [test_solver]=12 [test_ssd_opencv.py]=3 [test_surgery]=16 [test_surgery_opencv.py]=3
  [test_textformat]=39 [test_textformat_protobuf.py]=5 [test_threads]=3 [test_train]=6
  [test_train_torch.py]=1 [test_upgrade]=26 [test_wild_forward.py]=2
  [test_wild_forward_big.py]=1 [test_zoo_opencv.py]=5 [test_window_data.py]=5
)

# Skips CI accepts: a glob over "program: test: reason", then why it is fine.
CI_ALLOWED_SKIPS=(
  "*.py: *: slow (NS_SKIP_SLOW=1)|make test-asan asks for the quick set; make test runs them"
  "test_python_module.py: *: libnetsurg.so built with sanitizers*|the ASan runtime must load first, so python3 cannot load that library; make test runs them"
  "test_python_pycaffe.py: *: libnetsurg.so built with sanitizers*|the same"
  "test_notebook.py: *: libnetsurg.so built with sanitizers*|the same"
  "test_dask.py: *: libnetsurg.so built with sanitizers*|the same"
)

pass=0 fail=0 skip=0 failed_progs=() unallowed=()
declare -A seen=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# report NAME PASSED FAILED SKIPPED RC [SKIP LINE...]: adds one program's figures.
report() {
  local name=$1 p=$2 f=$3 s=$4 rc=$5 min=${MIN_TESTS[$1]:-1} why="" n=$(($2 + $3 + $4))
  shift 5
  seen[$name]=1
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1 why="exit status $rc, no failure reported"; fi
  if [ "$n" -lt "$min" ]; then
    f=$((f + 1)) why="${why:+$why; }reported $n tests, expected at least $min (MIN_TESTS)"
  fi
  local line bad=0
  for line in "$@"; do
    [ $ci -eq 1 ] || break
    allowed "$name: $line" && continue
    unallowed+=("$name: $line") bad=$((bad + 1))
  done
  if [ $bad -ne 0 ]; then  # a skip in CI is a failure
    f=$((f + bad)) s=$((s - bad)) why="${why:+$why; }$bad skipped in CI"
  fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  printf '%-32s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
  if [ "$f" -ne 0 ]; then
    failed_progs+=("$name"); cat "$log"; [ -z "$why" ] || echo "run-tests: $name: $why"
  fi
}

allowed() {
  local entry
  for entry in "${CI_ALLOWED_SKIPS[@]}"; do
    # shellcheck disable=SC2053  # the pattern is meant as a glob
    [[ "$1" == ${entry%%|*} ]] && return 0
  done
  return 1
}

# count REGEX: the sum of the numbers cmocka's summary lines give.
count() { sed -n "s/$1/\\1/p" "$log" | awk '{s+=$1} END {print s+0}'; }

for t in "$build"/tests/test_*; do
  [ $slow -eq 0 ] && [ -x "$t" ] || continue
  CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$log" 2>&1
  rc=$?
  p=$(count '^\[  PASSED  \] \([0-9]*\) test.*')
  f=$(count '^\[  FAILED  \] \([0-9]*\) test.*')
  s=$(count '^\[  SKIPPED \] \([0-9]*\) test.*')
  mapfile -t skips < <(sed -n 's/^\[  SKIPPED \] \([^0-9 ][^ ]*\)$/\1: (cmocka gives no reason)/p' "$log" | sort -u)
  report "$(basename "$t")" "$p" "$f" "$s" "$rc" "${skips[@]}"
done
py=/usr/bin/python3
oracles=(tests/oracle/test_*.py)
[ $slow -eq 0 ] || { shopt -s nullglob; oracles=(tests/slow/test_*.py); shopt -u nullglob; }
if [ ! -x "$py" ]; then
  echo "run-tests: $py missing: the ${#oracles[@]} oracle test files cannot run (scripts/install-deps.sh test)"
  fail=$((fail + 1)); failed_progs+=("python3")
elif [ ! -x "$build/netsurg" ]; then
  echo "run-tests: $build/netsurg missing: every oracle test would skip (make all)"
  fail=$((fail + 1)); failed_progs+=("netsurg")
else
  for t in "${oracles[@]}"; do
    "$py" tests/oracle/runner.py "$t" >"$log" 2>&1
    rc=$? p=0 f=0 s=0
    read -r p f s < <(sed -n 's/^COUNTS \([0-9]*\) \([0-9]*\) \([0-9]*\)$/\1 \2 \3/p' "$log" | tail -1)
    mapfile -t skips < <(sed -n 's/^SKIP //p' "$log")
    report "$(basename "$t")" "${p:-0}" "${f:-0}" "${s:-0}" "$rc" "${skips[@]}"
  done
fi
for name in $(printf "%s\n" "${!MIN_TESTS[@]}" | sort); do
  [ -n "${seen[$name]:-}" ] && continue
  # each mode answers for its own programs
  if [ $slow -eq 1 ]; then [ -e "tests/slow/$name" ] || continue
  elif [ -e "tests/slow/$name" ]; then continue; fi
  echo "run-tests: $name did not run (not built, or removed without updating MIN_TESTS)"
  fail=$((fail + 1)); failed_progs+=("$name")
done

echo "----------------------------------------------------------------"
if [ ${#unallowed[@]} -ne 0 ]; then
  echo "skipped in CI, so failed (CI_ALLOWED_SKIPS lists the skips CI accepts):"
  printf '  %s\n' "${unallowed[@]}"
fi
echo "TOTAL: $pass passed, $fail failed, $skip skipped"
if [ $fail -ne 0 ]; then
  echo "failing: ${failed_progs[*]}"
  exit 1
fi
