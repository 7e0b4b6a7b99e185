#!/usr/bin/env bash
# Regenerates every figure in README.md's Performance section, with what is
# needed to say how it was measured: the machine, the date, the commands.
#
#   benches/readme-figures.sh [STARTUP_RUNS] [WORKLOAD_RUNS] [ITERATIONS]
#
# Needs qemu-system-x86_64 (README: bookworm-backports) and /dev/kvm. Builds
# moat with the release profile. Prints the raw output of each benchmark;
# README.md quotes the medians.
set -euo pipefail
cd "$(dirname "$0")/.."

startup_runs=${1:-20}
workload_runs=${2:-5}
iterations=${3:-200000}

echo "== machine"
echo "date: $(date -u +%Y-%m-%d)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kernel: $(uname -r); virtualization: $(systemd-detect-virt 2>/dev/null || echo unknown)"
qemu-system-x86_64 --version | head -1 || true

echo "== start-up: cargo bench --bench startup -- $startup_runs"
cargo bench --quiet --bench startup -- "$startup_runs"

echo "== peak RSS of one moat run, as /usr/bin/time reports it (the same wait4 figure)"
if [ -x /usr/bin/time ]; then
    for _ in 1 2 3; do
        /usr/bin/time -f "moat max RSS %M KiB, %e s" target/release/moat run --accel kvm \
            --kernel tests/guests/bin/x86_64/hello.elf >/dev/null </dev/null || true
    done
else
    echo "/usr/bin/time is missing (apt-get install time)"
fi

echo "== TCG workload: benches/vs-qemu.sh x86_64 $workload_runs $iterations"
benches/vs-qemu.sh x86_64 "$workload_runs" "$iterations"

echo "== translation speed: cargo bench -p frontend-x86 --bench translate_x86"
cargo bench --quiet -p frontend-x86 --bench translate_x86 2>&1 | grep -E "time:|thrpt:|translate" || true

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
