#!/usr/bin/env bash
# Bounded coverage-guided fuzzing (cargo-fuzz / libFuzzer) of aibox's hostile-input parsers:
# every target in fuzz/fuzz_targets runs for N seconds (default 30) from the seeds in
# fuzz/seeds/<target>, on the stable toolchain (no sanitizer: -Z flags are not needed).
#
#   scripts/fuzz.sh [--seconds N] [--sanitizer none|address] [TARGET...]
#
# The corpus grows in fuzz/corpus/<target> and crashes land in fuzz/artifacts/<target>, both
# git-ignored, as are the build (fuzz/target) and the logs (fuzz/target/fuzz-logs). Exit status
# 1 when a target found a crash (its input file is printed), 2 on a usage or build error.
set -euo pipefail

seconds=30
sanitizer=none
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
        --seconds=*) seconds="${1#--seconds=}"; shift ;;
        --sanitizer) sanitizer="${2:?--sanitizer needs a value}"; shift 2 ;;
        --sanitizer=*) sanitizer="${1#--sanitizer=}"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
    echo "fuzz.sh: --seconds takes a positive whole number, not '$seconds'" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
if [[ "$sanitizer" != none ]]; then
    # Sanitizers take -Zsanitizer: allowed on the stable compiler this way.
    export RUSTC_BOOTSTRAP=1
fi

logs="fuzz/target/fuzz-logs"
mkdir -p "$logs"
start=$(date +%s)
build=(cargo fuzz build --sanitizer "$sanitizer")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list)
    "${build[@]}" >"$logs/build.log" 2>&1 || build_status=$?
else
    for target in "${targets[@]}"; do
        "${build[@]}" "$target" >>"$logs/build.log" 2>&1 || build_status=$?
    done
fi
if [[ ${build_status:-0} -ne 0 ]]; then
    tail -n 40 "$logs/build.log" >&2
    echo "fuzz.sh: the fuzz build failed (log: $logs/build.log)" >&2
    exit 2
fi
echo "fuzz build: $(( $(date +%s) - start ))s"

crashes=()
total_runs=0
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    for seed in fuzz/seeds/"$target"/*; do
        if [[ -f "$seed" && ! -e "$corpus/${seed##*/}" ]]; then
            cp "$seed" "$corpus/"
        fi
    done
    log="$logs/$target.log"
    status=0
    cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    [[ -n "$runs" ]] || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    [[ -n "$runs" ]] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    total_runs=$(( total_runs + ${runs:-0} ))
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [[ $status -ne 0 || -n "$artifact" ]]; then
        printf '%-14s CRASH after %s runs; input: %s (log: %s)\n' "$target" "${runs:-?}" "${artifact:-none written}" "$log"
        # The panic and its message (or libFuzzer's reason: timeout, out of memory, ...).
        grep -m 1 -A 1 -E "panicked at|ERROR: libFuzzer" "$log" | cut -c1-300 | sed 's/^/               /' || true
        crashes+=("$target: ${artifact:-$log}")
    else
        printf '%-14s ok: %s runs in %ss, cov %s, features %s, corpus %s\n' "$target" "${runs:-?}" "$seconds" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    fi
done

echo "fuzz: ${#targets[@]} targets, ${seconds}s each, ${total_runs} runs, ${#crashes[@]} crashed"
if [[ ${#crashes[@]} -gt 0 ]]; then
    printf '  %s\n' "${crashes[@]}"
    echo "reproduce: cargo fuzz run --sanitizer $sanitizer TARGET INPUT; minimize: cargo fuzz tmin --sanitizer $sanitizer TARGET INPUT"
    exit 1
fi
