#!/usr/bin/env bash
#  Smoke run of kp-bench: every mode once with small counts, checking that
#  each prints one JSON line with the keys of its mode and exits 0, and that
#  bad arguments exit 2 (as does verify while kp-audit is not built). The
#  figures are not asserted: a CI machine's disk and cores say nothing.
#  Usage: bench_smoke.sh BUILD_DIR
set -euo pipefail
build=$1
bench=$build/clients/kp-bench
work=$(mktemp -d /tmp/kp-bench-smoke-XXXXXX)
trap 'rm -rf "$work"' EXIT

fail () {
    echo "bench_smoke: $*" >&2
    exit 1
}

#  run MODE KEY... -- ARGS: one JSON line holding every KEY
run () {
    local mode=$1
    shift
    local keys=()
    while [ "$1" != "--" ]; do
        keys+=("$1")
        shift
    done
    shift
    local started=$SECONDS
    if ! "$bench" --mode "$mode" "$@" >"$work/out" 2>"$work/err"; then
        cat "$work/err" >&2
        fail "$mode: kp-bench failed"
    fi
    [ "$(wc -l <"$work/out")" -eq 1 ] \
        || fail "$mode: want one line, got: $(cat "$work/out")"
    python3 - "$work/out" "${keys[@]}" <<'PY' || fail "$mode: $(cat "$work/out")"
import json, sys
line = json.loads(open(sys.argv[1]).read())
missing = [key for key in sys.argv[2:] if key not in line]
if missing:
    sys.exit("missing keys: " + ", ".join(missing))
PY
    echo "bench_smoke: $mode ok in $((SECONDS - started)) s: $(cat "$work/out")"
}

run throughput mode messages size_bytes throughput_msgs_per_s receipt_p50_us \
    receipt_p99_us receipt_p999_us delivery_p50_us delivery_p99_us broker_peak_rss_mib \
    broker_cpu_s records_per_s fsyncs_per_s floor_curve_pipe_msgs_per_s \
    floor_fsync_per_s ratio_to_curve_pipe -- --count 2000
run throughput throughput_msgs_per_s -- --count 2000 --senders 2 --recipients 3 --size 200
run latency receipt_p99_us delivery_p99_us throughput_msgs_per_s \
    -- --count 2000 --rate 2000
run backlog broker_rss_before_mib broker_rss_after_mib drain_msgs_per_s \
    floor_curve_pipe_msgs_per_s -- --count 2000
run recovery recovery_ms log_records -- --count 2000
usage_errors=("--count 0" "--size 1" "--mode nonsense" "--senders" "--bogus")
if [ -x "$build/clients/kp-audit" ]; then
    run verify verify_ms log_records -- --count 2000
else
    usage_errors+=("--mode verify")
fi

#  Usage errors: one line on stderr, exit 2
for args in "${usage_errors[@]}"; do
    set +e
    # shellcheck disable=SC2086
    "$bench" $args >"$work/out" 2>"$work/err"
    code=$?
    set -e
    [ "$code" -eq 2 ] || fail "kp-bench $args: exit $code, want 2"
    [ "$(wc -l <"$work/err")" -eq 1 ] || fail "kp-bench $args: want one line on stderr"
    [ ! -s "$work/out" ] || fail "kp-bench $args: wrote to stdout"
done
echo "bench_smoke: all modes ok"
