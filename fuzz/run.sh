#!/usr/bin/env bash
# Builds and runs netstrata's libFuzzer targets on stable Rust, without
# cargo-fuzz: SanitizerCoverage comes from stable codegen flags, and the
# libfuzzer-sys crate compiles libFuzzer itself (a C++ compiler is needed).
#
#   fuzz/run.sh build                     build every target
#   fuzz/run.sh smoke SECONDS             run every target SECONDS on its
#                                         committed corpus; fails on any
#                                         crash, timeout or OOM
#   fuzz/run.sh campaign TARGET SECONDS [DIR]
#                                         a long run with a working corpus
#                                         in DIR (default
#                                         /work/fuzz-corpus/TARGET), crashes
#                                         in DIR/../artifacts/TARGET
#   fuzz/run.sh minimize TARGET [DIR]     merge the working corpus into
#                                         fuzz/corpus/TARGET, minimised
#   fuzz/run.sh list                      the targets, one a line
#
# A crash is replayed by running the target on the file:
#   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET crash-file
# Every crash found becomes a file in fuzz/regressions/TARGET/, which
# smoke replays before it fuzzes.
#
# Everything runs on one core: cargo -j1 and a single fuzzing process.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$FUZZ_DIR/target/$TRIPLE/release"

# Coverage instrumentation, as cargo-fuzz sets it (inline 8-bit counters
# and a PC table for libFuzzer's coverage, comparison tracing for its
# value profile and dictionary). Debug assertions and overflow checks
# come from fuzz/Cargo.toml's release profile. The explicit --target
# keeps these flags away from build scripts, which are linked without
# libFuzzer.
FUZZ_RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing"

# Every target and the longest input it gets: whole frames and packets
# may be 64 KiB; scripts of steps and text stay small, for speed.
TARGETS=(
    ethernet:65536
    arp:65536
    ipv4:65536
    icmpv4:65536
    udp:65536
    tcp:65536
    dns_message:65536
    http_head:16384
    http_chunked:8192
    url:4096
    interface:65536
    tcp_connection:4096
    http_server:16384
    dns_resolver:8192
    vnet:65600
)

# libFuzzer's flags common to every run.
COMMON_FLAGS=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1)

die() {
    echo "run.sh: $*" >&2
    exit 2
}

target_names() {
    local t
    for t in "${TARGETS[@]}"; do
        echo "${t%%:*}"
    done
}

max_len_of() {
    local t
    for t in "${TARGETS[@]}"; do
        if [ "${t%%:*}" = "$1" ]; then
            echo "${t#*:}"
            return
        fi
    done
    die "unknown target '$1' (see: fuzz/run.sh list)"
}

build() {
    echo "== building fuzz targets (RUSTFLAGS: $FUZZ_RUSTFLAGS)"
    (cd "$FUZZ_DIR" && RUSTFLAGS="$FUZZ_RUSTFLAGS" cargo build -j1 --release \
        --target "$TRIPLE" --bins)
}

# Prints the figures of a finished run from its log: executions, final
# coverage and features, executions per second.
summarize() {
    local name="$1" log="$2"
    local execs rate cov ft
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
    ft="$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
    printf '%-16s execs %10s  exec/s %8s  cov %6s  ft %6s\n' \
        "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}"
}

# Runs one target for a time on a corpus directory (which grows) and
# writes crashes under an artifact directory. Returns libFuzzer's status.
fuzz_one() {
    local name="$1" seconds="$2" corpus="$3" artifacts="$4" log="$5"
    local max_len
    max_len="$(max_len_of "$name")"
    mkdir -p "$corpus" "$artifacts"
    "$BIN_DIR/$name" "${COMMON_FLAGS[@]}" -max_len="$max_len" \
        -max_total_time="$seconds" -artifact_prefix="$artifacts/" \
        "$corpus" >"$log" 2>&1
}

smoke() {
    local seconds="${1:?usage: fuzz/run.sh smoke SECONDS}"
    build
    local work failed=() name status
    work="$(mktemp -d)"
    # Expanded now: the trap runs after this function's locals are gone.
    trap "rm -rf '$work'" EXIT
    echo "== smoke: the regressions, then every target for ${seconds}s on a copy of its corpus"
    local reproducer
    for reproducer in "$FUZZ_DIR"/regressions/*/*; do
        [ -f "$reproducer" ] || continue
        name="$(basename "$(dirname "$reproducer")")"
        if ! "$BIN_DIR/$name" "$reproducer" >"$work/replay.log" 2>&1; then
            failed+=("$name:$(basename "$reproducer")")
            echo "-- regression $name/$(basename "$reproducer") fails again:"
            tail -n 20 "$work/replay.log"
        fi
    done
    for name in $(target_names); do
        mkdir -p "$work/$name/corpus"
        if [ -d "$FUZZ_DIR/corpus/$name" ]; then
            cp -r "$FUZZ_DIR/corpus/$name/." "$work/$name/corpus/"
        fi
        status=0
        fuzz_one "$name" "$seconds" "$work/$name/corpus" "$work/$name/artifacts" \
            "$work/$name/log" || status=$?
        summarize "$name" "$work/$name/log"
        if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/$name/artifacts")" ]; then
            failed+=("$name")
            echo "-- $name failed (status $status); the end of its log:"
            tail -n 40 "$work/$name/log"
            local a
            for a in "$work/$name/artifacts"/*; do
                [ -e "$a" ] || continue
                echo "-- artifact $(basename "$a"), hex:"
                od -A x -t x1z -v "$a" | head -n 32
            done
        fi
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        echo "== smoke FAILED: ${failed[*]}"
        return 1
    fi
    echo "== smoke passed: $(target_names | wc -l) targets"
}

campaign() {
    local name="${1:?usage: fuzz/run.sh campaign TARGET SECONDS [DIR]}"
    local seconds="${2:?usage: fuzz/run.sh campaign TARGET SECONDS [DIR]}"
    local corpus="${3:-/work/fuzz-corpus/$name}"
    max_len_of "$name" >/dev/null
    local artifacts log status=0
    artifacts="$(dirname "$corpus")/artifacts/$name"
    log="$(dirname "$corpus")/$name.log"
    build
    mkdir -p "$corpus"
    # A new working corpus starts from the committed one.
    if [ -z "$(ls -A "$corpus")" ] && [ -d "$FUZZ_DIR/corpus/$name" ]; then
        cp -r "$FUZZ_DIR/corpus/$name/." "$corpus/"
    fi
    echo "== campaign: $name for ${seconds}s"
    echo "   corpus $corpus, artifacts $artifacts, log $log"
    fuzz_one "$name" "$seconds" "$corpus" "$artifacts" "$log" || status=$?
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true
    summarize "$name" "$log"
    if [ "$status" -ne 0 ]; then
        echo "== $name stopped with status $status; the end of its log:"
        tail -n 40 "$log"
        echo "== replay: $BIN_DIR/$name <artifact from $artifacts>"
    fi
    return "$status"
}

minimize() {
    local name="${1:?usage: fuzz/run.sh minimize TARGET [DIR]}"
    local working="${2:-/work/fuzz-corpus/$name}"
    local max_len committed merged
    max_len="$(max_len_of "$name")"
    [ -d "$working" ] || die "no working corpus at $working"
    build
    committed="$FUZZ_DIR/corpus/$name"
    merged="$(mktemp -d)"
    # A set-cover merge of edge coverage (hit counts ignored) keeps, from
    # the committed corpus and the working one, a small set of inputs
    # that reaches every edge either reaches: a few hundred kilobytes in
    # the repository rather than megabytes. The working corpus keeps
    # every feature for the next campaign.
    mkdir -p "$committed"
    "$BIN_DIR/$name" "${COMMON_FLAGS[@]}" -max_len="$max_len" -set_cover_merge=1 \
        -use_counters=0 "$merged" "$committed" "$working" 2>&1 |
        grep -E 'MERGE-OUTER|ERROR' || true
    rm -rf "$committed"
    mkdir -p "$committed"
    cp "$merged"/* "$committed"/ 2>/dev/null || true
    rm -rf "$merged"
    echo "== fuzz/corpus/$name: $(ls "$committed" | wc -l) files, $(du -sh "$committed" | cut -f1)"
}

case "${1:-}" in
    build) build ;;
    smoke) smoke "${2:-}" ;;
    campaign) campaign "${@:2}" ;;
    minimize) minimize "${@:2}" ;;
    list) target_names ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
