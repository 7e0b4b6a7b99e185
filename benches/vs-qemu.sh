#!/usr/bin/env bash
# Compute-bound guest under moat's TCG, QEMU's TCG, and natively, in one run.
#
#   benches/vs-qemu.sh [RUNS] [ITERATIONS]
#
# Boots tests/guests/bin/x86_64/workload.elf (CoreMark-like kernels, see its
# source) under `moat run --accel tcg` and `qemu-system-x86_64 -M microvm
# -accel tcg`, alternating, RUNS times each (default 5), and the same C code
# built for the host. Prints each one's median wall time and the ratios. All
# three must print the same checksum line, or the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
iterations=${2:-200000}
image=tests/guests/bin/x86_64/workload.elf

cargo build --release --quiet
make -s -C tests/guests/x86_64 workload-host >/dev/null
native=tests/guests/x86_64/build/workload-host
command -v qemu-system-x86_64 >/dev/null || {
    echo "qemu-system-x86_64 is missing: see README (bookworm-backports)" >&2
    exit 1
}

moat_cmd=(target/release/moat run --accel tcg --memory 128M --kernel "$image" --append "iterations=$iterations")
qemu_cmd=(qemu-system-x86_64 -M microvm -bios /usr/share/qemu/qboot.rom -accel tcg -m 128M
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -nographic -no-reboot -nodefaults
    -serial stdio -kernel "$image" -append "iterations=$iterations")
native_cmd=("$native" "$iterations")

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

expected=$("${native_cmd[@]}")
declare -a moat_times qemu_times native_times
for _ in $(seq "$runs"); do
    moat_times+=("$(time_run "$expected" "${moat_cmd[@]}")")
    qemu_times+=("$(time_run "$expected" "${qemu_cmd[@]}")")
    native_times+=("$(time_run "$expected" "${native_cmd[@]}")")
done
moat=$(printf '%s\n' "${moat_times[@]}" | median)
qemu=$(printf '%s\n' "${qemu_times[@]}" | median)
native=$(printf '%s\n' "${native_times[@]}" | median)

echo "$expected"
printf 'median wall time over %s runs:\n' "$runs"
printf '  moat tcg   %8.3f s   %5.2fx native\n' "$moat" "$(awk "BEGIN { print $moat / $native }")"
printf '  qemu tcg   %8.3f s   %5.2fx native\n' "$qemu" "$(awk "BEGIN { print $qemu / $native }")"
printf '  native     %8.3f s\n' "$native"
printf 'moat is %.2fx the speed of QEMU (goal: 2x)\n' "$(awk "BEGIN { print $qemu / $moat }")"
