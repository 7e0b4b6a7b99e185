#!/usr/bin/env bash
# Compute-bound guest under moat's TCG and QEMU's TCG (and natively, for
# x86-64), in one run.
#
#   benches/vs-qemu.sh [x86_64|aarch64] [RUNS] [ITERATIONS]
#
# x86_64 (default): tests/guests/bin/x86_64/workload.elf (CoreMark-like
# kernels, see its source) under `moat run --accel tcg` and
# `qemu-system-x86_64 -M microvm -accel tcg`, and the same C code built for
# the host. aarch64: tests/guests/bin/aarch64/workload.bin under `moat run
# --machine virt --accel tcg` and `qemu-system-aarch64 -M virt -cpu
# cortex-a57 -accel tcg` (no native run: the host is x86-64). The runs
# alternate, RUNS times each (default 5); the script prints each one's
# median wall time and the ratios. Every run must print the same checksum
# line (the native one for x86-64, QEMU's for aarch64), or the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:-x86_64}
runs=${2:-5}
case "$arch" in
x86_64)
    iterations=${3:-200000}
    image=tests/guests/bin/x86_64/workload.elf
    qemu=qemu-system-x86_64
    moat_cmd=(target/release/moat run --accel tcg --quiet --memory 128M --kernel "$image"
        --append "iterations=$iterations")
    qemu_cmd=("$qemu" -M microvm -bios /usr/share/qemu/qboot.rom -accel tcg -m 128M
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -nographic -no-reboot -nodefaults
        -serial stdio -kernel "$image" -append "iterations=$iterations")
    ;;
aarch64)
    iterations=${3:-2000}
    image=tests/guests/bin/aarch64/workload.bin
    qemu=qemu-system-aarch64
    moat_cmd=(target/release/moat run --machine virt --accel tcg --quiet --memory 128M
        --kernel "$image" --append "iterations=$iterations")
    qemu_cmd=("$qemu" -M virt -cpu cortex-a57 -accel tcg -m 128M -nographic -no-reboot
        -nodefaults -serial stdio -kernel "$image" -append "iterations=$iterations")
    ;;
*)
    echo "usage: benches/vs-qemu.sh [x86_64|aarch64] [RUNS] [ITERATIONS]" >&2
    exit 2
    ;;
esac

cargo build --release --quiet
command -v "$qemu" >/dev/null || {
    echo "$qemu is missing: see README (bookworm-backports)" >&2
    exit 1
}

# Runs a command, checks its output line, prints its wall time in seconds.
time_run() {
    local expected=$1
    shift
    local start end output
    start=$(date +%s.%N)
    output=$("$@" 2>/dev/null || true)
    end=$(date +%s.%N)
    if [ "$(printf '%s\n' "$output" | grep '^workload:')" != "$expected" ]; then
        echo "wrong output from $1: $output (expected: $expected)" >&2
        exit 1
    fi
    awk "BEGIN { print $end - $start }"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

native_cmd=()
if [ "$arch" = x86_64 ]; then
    make -s -C tests/guests/x86_64 workload-host >/dev/null
    native_cmd=(tests/guests/x86_64/build/workload-host "$iterations")
    expected=$("${native_cmd[@]}")
else
    expected=$("${qemu_cmd[@]}" 2>/dev/null | grep '^workload:')
fi

declare -a moat_times qemu_times native_times
for _ in $(seq "$runs"); do
    moat_times+=("$(time_run "$expected" "${moat_cmd[@]}")")
    qemu_times+=("$(time_run "$expected" "${qemu_cmd[@]}")")
    if [ "${#native_cmd[@]}" -gt 0 ]; then
        native_times+=("$(time_run "$expected" "${native_cmd[@]}")")
    fi
done
moat=$(printf '%s\n' "${moat_times[@]}" | median)
qemu=$(printf '%s\n' "${qemu_times[@]}" | median)

echo "$arch: $expected"
printf 'median wall time over %s runs:\n' "$runs"
if [ "${#native_cmd[@]}" -gt 0 ]; then
    native=$(printf '%s\n' "${native_times[@]}" | median)
    printf '  moat tcg   %8.3f s   %5.2fx native\n' "$moat" "$(awk "BEGIN { print $moat / $native }")"
    printf '  qemu tcg   %8.3f s   %5.2fx native\n' "$qemu" "$(awk "BEGIN { print $qemu / $native }")"
    printf '  native     %8.3f s\n' "$native"
else
    printf '  moat tcg   %8.3f s\n' "$moat"
    printf '  qemu tcg   %8.3f s\n' "$qemu"
fi
printf 'moat is %.2fx the speed of QEMU (goal: 2x)\n' "$(awk "BEGIN { print $qemu / $moat }")"
