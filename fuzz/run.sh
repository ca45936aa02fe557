#!/usr/bin/env bash
# Coverage-guided fuzzing of fastway-core with cargo-fuzz (libFuzzer).
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# Installs cargo-fuzz if missing. Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz's nightly-only sanitizer flags through. Corpora live in fuzz/corpus/<target> (kept
# between runs, not committed); crashes land in fuzz/artifacts/<target>. Each finding should become
# a regression test in core (see RELIABILITY.md).
set -euo pipefail

secs="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(frame_decoder gateway switchboard_snet endpoint)
fi

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== fuzzing $target for ${secs}s"
    if ! cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "!! $target found a failure: see fuzz/artifacts/$target" >&2
        status=1
    fi
done
exit "$status"
