#!/bin/sh
# Boots every image in ../bin/x86_64 under QEMU microvm + qboot and compares
# the serial output (stdout) byte for byte with expected/ and the exit status.
# Run from anywhere; it works in tests/guests/ so that paths QEMU hands to the
# guest (the multiboot command line starts with the kernel path) are stable.
#   QEMU=qemu-system-x86_64 ACCEL=kvm|tcg ./run-qemu.sh   (default: kvm if usable)
set -u
cd "$(dirname "$0")/.." || exit 2
QEMU=${QEMU:-qemu-system-x86_64}
if [ -z "${ACCEL:-}" ]; then
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then ACCEL=kvm; else ACCEL=tcg; fi
fi
B=bin/x86_64
E=x86_64/expected
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
# Lines matching $filter (a grep -e pattern), if set, are left out of both
# sides: where QEMU is known to differ from the CPU (see README.md).
filter=

# run NAME EXPECTED_FILE EXPECTED_STATUS QEMU_ARGS...
run() {
	name=$1 exp=$2 want=$3
	shift 3
	timeout 60 "$QEMU" -M microvm -bios /usr/share/qemu/qboot.rom \
		-accel "$ACCEL" -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-nographic -no-reboot -m 128M "$@" \
		>"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null
	got=$?
	# The recorded memory maps come from KVM: with KVM, QEMU reserves
	# 0xfeffc000-0xfeffffff (identity map + TSS pages); TCG has no such
	# entry. Compare memory maps only under KVM.
	case "$name:$ACCEL" in
	bootinfo-*:kvm) ;;
	bootinfo-*:*)
		grep -v '^mem' "$exp" >"$TMP/$name.exp"
		exp=$TMP/$name.exp
		grep -v '^mem' "$TMP/$name.out" >"$TMP/$name.filtered"
		mv "$TMP/$name.filtered" "$TMP/$name.out" ;;
	esac
	if [ -n "$filter" ]; then
		grep -v -e "$filter" "$exp" >"$TMP/$name.exp2"
		exp=$TMP/$name.exp2
		grep -v -e "$filter" "$TMP/$name.out" >"$TMP/$name.filtered"
		mv "$TMP/$name.filtered" "$TMP/$name.out"
	fi
	if [ "$got" = "$want" ] && cmp -s "$exp" "$TMP/$name.out"; then
		echo "PASS $name (status $got)"
	else
		echo "FAIL $name: status $got (want $want)"
		diff -u "$exp" "$TMP/$name.out" | sed 's/^/    /'
		sed 's/^/    stderr: /' "$TMP/$name.err"
		fail=1
	fi
}

# QEMU cannot boot a plain ELF64 itself: the PVH shim loads and enters it.
shim() {
	echo -kernel $B/qemu-elf64-shim.elf \
		-device loader,file=$B/$1,addr=0x800000,force-raw=on
}

run hello              $E/hello.out              1  -kernel $B/hello.elf
run hello-multiboot    $E/hello-multiboot.out    1  -kernel $B/hello-multiboot.elf
run hello-elf64        $E/hello-elf64.out        1  $(shim hello-elf64.elf)
run checksum           $E/checksum.out           1  -kernel $B/checksum.elf
run exitcode           $E/exitcode.out           85 -kernel $B/exitcode.elf
run exitcode-16        $E/exitcode-16.out        33 -kernel $B/exitcode.elf -append "quiet exit=16 foo=bar"
run exitcode-127       $E/exitcode-127.out       255 -kernel $B/exitcode.elf -append "exit=127"
run triplefault        $E/triplefault.out        0  -kernel $B/triplefault.elf
run bootinfo-pvh       $E/bootinfo-pvh.qemu.out       1 -kernel $B/bootinfo-pvh.elf \
	-append "hello world" -initrd x86_64/initrd.txt
run bootinfo-multiboot $E/bootinfo-multiboot.qemu.out 1 -kernel $B/bootinfo-multiboot.elf \
	-append "hello world" -initrd x86_64/initrd.txt
run bootinfo-elf64     $E/bootinfo-elf64.qemu.out     1 $(shim bootinfo-elf64.elf) \
	-append "hello world" -initrd x86_64/initrd.txt

# Guests with handlers, page tables, SMC, flags, strings, SSE. Nested KVM
# cannot emulate `int n` or `fwait` in ring 0 (exceptions: skip=...), and zero-extends
# a failing 32-bit cmpxchg's register destination (flags). QEMU's TCG raises
# #GP for #SS, leaves other upper bits in bsf/bsr's 32-bit destination, and
# gets MXCSR.DE and min/max with DAZ wrong (sse: not compared).
run paging             $E/paging.out             1  -kernel $B/paging.elf
run smc                $E/smc.out                1  -kernel $B/smc.elf
run strings            $E/strings.out            1  -kernel $B/strings.elf
if [ "$ACCEL" = kvm ]; then
	run exceptions     $E/exceptions-kvm.out     1  -kernel $B/exceptions.elf -append skip=softint,nm-fwait
	filter='^cmpxchg-reg/32:'
	run flags          $E/flags.out              1  -kernel $B/flags.elf
	filter=
	run sse            $E/sse.out                1  -kernel $B/sse.elf
else
	filter='^ss-noncanon: vector'
	run exceptions     $E/exceptions.out         1  -kernel $B/exceptions.elf
	filter='^bs[fr]/32:\|^rc[lr]-imm/\(8\|16\):'
	run flags          $E/flags.out              1  -kernel $B/flags.elf
	filter=
	echo "SKIP sse (QEMU's TCG is not the CPU there)"
fi

# Interrupts and SMP. The PIT runs at 100 Hz: pit takes 0.5 s of real time.
# smp: the APs (-smp 4) started with INIT/STARTUP IPIs; nested KVM is slow
# at contended memory, so fewer iterations there. smp-missing: cpus=4 on a
# 2-CPU machine waits 1 s for CPUs 2 and 3, then exits with 2.
run pit                $E/pit.out                1  -kernel $B/pit.elf
if [ "$ACCEL" = kvm ]; then
	run smp-4          $E/smp-4-kvm.out          1  -smp 4 -kernel $B/smp.elf -append "cpus=4 iterations=1000"
else
	run smp-4          $E/smp-4.out              1  -smp 4 -kernel $B/smp.elf -append "cpus=4 iterations=100000"
fi
run smp-missing        $E/smp-missing.out        5  -smp 2 -kernel $B/smp.elf -append "cpus=4 iterations=1000"
exit $fail
