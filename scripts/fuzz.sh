#!/usr/bin/env bash
# libFuzzer targets (fuzz/fuzz_*.c) built with clang into build-fuzz/.
#
#   scripts/fuzz.sh build              library + CLI with ASan/UBSan and coverage,
#                                      one fuzzer per target, seed corpora, dictionary
#   scripts/fuzz.sh smoke [SECONDS]    build, replay fuzz/regressions/<target>/, then
#                                      fuzz each target for SECONDS (default 30); CI
#   scripts/fuzz.sh long SECONDS [T..] fuzz each target (or those named) for SECONDS,
#                                      going on after crashes (fork mode), printing
#                                      executions, coverage (cov/ft) and crashes
#   scripts/fuzz.sh coverage           line coverage of src/ by the saved corpora
#
# The growing corpus lives in build-fuzz/corpus/<target>/ (kept between runs);
# the generated seeds in build-fuzz/seeds/<target>/; crashes are written to
# build-fuzz/crashes/<target>/.  A crash found becomes a file under
# fuzz/regressions/<target>/ and a test in tests/test_hostile.c.
# Exit status: 0 when no target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_MAKE_JOBS:-$(nproc)}
cflags="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer"
san="address,undefined"
targets=()
for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done

# Options every run shares: no hang over 10 s per input, 2 GB RSS at most.
common_opts=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

build() {
  command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (scripts/install-deps.sh fuzz)" >&2; exit 1; }
  # The library and the CLI, instrumented but without libFuzzer's main.
  mkdir -p "$out"
  make --no-print-directory -j"$jobs" BUILD="$out" CC=clang OPT=-O1 \
    SANITIZE=fuzzer-no-link,$san all >"$out/build.log" 2>&1 || { tail -40 "$out/build.log" >&2; exit 1; }
  mkdir -p "$out/fuzz"
  local incs="-I. -Iinclude -Isrc -I$out/gen -I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/hdf5/serial"
  local blas
  blas=$(ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so 2>/dev/null || echo -lopenblas)
  for t in "${targets[@]}"; do
    if [ ! "$out/fuzz/$t" -nt "fuzz/$t.c" ] || [ "$out/libnetsurg.a" -nt "$out/fuzz/$t" ] ||
       [ fuzz/fuzz_common.h -nt "$out/fuzz/$t" ]; then
      # shellcheck disable=SC2086
      clang $cflags -Wall -Wextra -Werror -fopenmp -fsanitize=fuzzer,$san \
        -fno-sanitize-recover=all $incs "fuzz/$t.c" "$out/libnetsurg.a" \
        -lprotobuf-c "$blas" -ljpeg -lpng -lz -llmdb -lleveldb -lhdf5_serial -lm -o "$out/fuzz/$t"
    fi
  done
  make_dict
  fuzz/make-corpus.sh "$out/netsurg" "$out/seeds" >"$out/corpus.log" 2>&1 ||
    { tail -20 "$out/corpus.log" >&2; exit 1; }
}

# Prototxt dictionary: every field and enum value name of the schema, and
# the text format's punctuation.
make_dict() {
  {
    cat <<'EOT'
"{"
"}"
":"
"\""
"'"
"["
"]"
"<"
">"
","
";"
"#"
"\\"
"\\x"
"inf"
"-inf"
"nan"
"0x"
"1e"
"true"
"false"
EOT
    grep -oE '^\s*(optional|repeated|required)\s+\S+\s+[a-z_0-9]+' src/format/caffe.proto |
      awk '{print $3}' | sort -u | sed 's/.*/"&"/'
    grep -oE '^\s*[A-Z][A-Z_0-9]+\s*=' src/format/caffe.proto | tr -d ' =' | sort -u | sed 's/.*/"&"/'
    # Layer type names as prototxts spell them.
    for ty in Input Convolution Deconvolution Pooling LRN InnerProduct ReLU Sigmoid TanH Softmax \
              Dropout Concat Eltwise Split Slice BatchNorm Scale Bias Flatten Reshape Crop \
              ArgMax PReLU ELU Power AbsVal BNLL Exp Log Silence Data; do
      printf '"%s"\n' "$ty"
    done
  } >"$out/text.dict"
}

dict_for() {
  case $1 in fuzz_text|fuzz_net) echo "-dict=$out/text.dict" ;; *) echo "" ;; esac
}

# Runs one target for $2 seconds and prints "target secs execs cov ft result".
# $3 = keep-going: fork mode that records every crash and goes on (long
# runs); otherwise the first crash stops the run (smoke, CI).
run_target() {
  local t=$1 secs=$2 keep=${3:-}
  local log="$out/logs/$t.log" crashes="$out/crashes/$t"
  mkdir -p "$out/corpus/$t" "$crashes" "$out/logs"
  local before
  before=$(find "$crashes" -type f | wc -l)
  local opts=("${common_opts[@]}" -max_total_time="$secs" -artifact_prefix="$crashes/")
  [ -n "$keep" ] && opts+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  local d
  d=$(dict_for "$t")
  [ -n "$d" ] && opts+=("$d")
  local rc=0
  "$out/fuzz/$t" "${opts[@]}" "$out/corpus/$t" "$out/seeds/$t" >"$log" 2>&1 || rc=$?
  local execs cov ft found
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  if [ -n "$keep" ]; then
    # Fork mode's parent counts differently: measure the corpus itself.
    "$out/fuzz/$t" -runs=0 "${common_opts[@]}" "$out/corpus/$t" >"$log.cov" 2>&1 || true
    cov=$(grep -oE ' cov: [0-9]+' "$log.cov" | tail -1 | awk '{print $2}')
    ft=$(grep -oE ' ft: [0-9]+' "$log.cov" | tail -1 | awk '{print $2}')
  else
    cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -oE ' ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  fi
  found=$(($(find "$crashes" -type f | wc -l) - before))
  local result=ok
  if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
    result="CRASH (rc $rc, $found new file(s) in $crashes, log $log)"
  fi
  printf '%-16s %6ss  execs %-11s cov %-6s ft %-6s corpus %-6s %s\n' "$t" "$secs" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "$(find "$out/corpus/$t" -type f | wc -l)" "$result"
  if [ "$result" != ok ]; then
    grep -E 'ERROR|SUMMARY|runtime error|contract violated|Test unit written' "$log" | head -8 >&2
    return 1
  fi
  return 0
}

# Replays the saved crash files of every target once (no fuzzing).
replay_regressions() {
  local failed=0
  for t in "${targets[@]}"; do
    local dir=fuzz/regressions/$t
    [ -d "$dir" ] || continue
    local files=("$dir"/*)
    [ -e "${files[0]}" ] || continue
    if "$out/fuzz/$t" -timeout=10 -rss_limit_mb=2048 "${files[@]}" >"$out/logs/$t.replay.log" 2>&1; then
      printf '%-18s %d regression inputs ok\n' "$t" "${#files[@]}"
    else
      printf '%-18s regression FAILED (see %s)\n' "$t" "$out/logs/$t.replay.log"
      failed=1
    fi
  done
  return $failed
}

fuzz_all() { # SECONDS KEEP_GOING [TARGET...]
  local secs=$1 keep=$2
  shift 2
  local which=("$@")
  [ ${#which[@]} -gt 0 ] || which=("${targets[@]}")
  local failed=0
  for t in "${which[@]}"; do run_target "$t" "$secs" "$keep" || failed=1; done
  return $failed
}

# Line coverage of src/ reached by the saved corpora (build-fuzz/corpus/),
# from a build with clang's source-based coverage; writes
# $out/cov/report.txt and prints its total.
coverage() {
  local cov=$out/cov
  mkdir -p "$cov"
  make --no-print-directory -j"$jobs" BUILD="$cov" CC=clang OPT=-O0 \
    CFLAGS="-fprofile-instr-generate -fcoverage-mapping" \
    LDFLAGS="-fopenmp -fprofile-instr-generate" "$cov/libnetsurg.a" >"$cov/build.log" 2>&1 ||
    { tail -20 "$cov/build.log" >&2; exit 1; }
  local incs="-I. -Iinclude -Isrc -I$cov/gen -I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/hdf5/serial"
  local blas objects=()
  blas=$(ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so 2>/dev/null || echo -lopenblas)
  rm -f "$cov"/*.profraw
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    clang $cflags -fopenmp -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping $incs \
      "fuzz/$t.c" "$cov/libnetsurg.a" -lprotobuf-c "$blas" -ljpeg -lpng -lz -llmdb -lleveldb -lhdf5_serial -lm -o "$cov/$t"
    objects+=(-object "$cov/$t")
    [ -d "$out/corpus/$t" ] || continue
    LLVM_PROFILE_FILE="$cov/$t.profraw" "$cov/$t" -runs=0 -timeout=30 -rss_limit_mb=4096 \
      "$out/corpus/$t" >"$cov/$t.log" 2>&1 || true
  done
  llvm-profdata merge -sparse "$cov"/*.profraw -o "$cov/all.profdata"
  llvm-cov report "${objects[@]:1}" -instr-profile="$cov/all.profdata" src >"$cov/report.txt"
  tail -1 "$cov/report.txt"
}

mode=${1:-}
case "$mode" in
  build) build ;;
  smoke)
    build
    mkdir -p "$out/logs"
    failed=0
    replay_regressions || failed=1
    fuzz_all "${2:-30}" "" || failed=1
    exit $failed
    ;;
  long)
    [ $# -ge 2 ] || { echo "usage: $0 long SECONDS [TARGET...]" >&2; exit 1; }
    secs=$2
    shift 2
    build
    fuzz_all "$secs" keep-going "$@"
    ;;
  coverage) coverage ;;
  *)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 1
    ;;
esac
