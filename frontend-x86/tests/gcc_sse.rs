//! What gcc -O3 -msse2 emits, against the host CPU: the loops in
//! `data/sse_kernels.c` (vectorized float, double and integer arithmetic,
//! conversions, compares, min/max, packs, sums of absolute differences),
//! built into the flat binary `data/sse_kernels.bin` (see `data/Makefile`),
//! run natively in-process and in a 64-bit guest on the interpreter and on
//! the JIT. The output buffers and MXCSR must agree bit for bit.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed
#![cfg(target_arch = "x86_64")]

mod common;

use accel_tcg::guest::GuestCpu;
use common::{Engine, TestVm};
use frontend_x86::X86Cpu;
use machine::VcpuExit;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const BLOB: &[u8] = include_bytes!("data/sse_kernels.bin");
/// Number of kernels in the table at the start of the blob.
const KERNELS: usize = 13;
const LEN: usize = 4096;
/// Elements per kernel call (not a multiple of the vector width, so the
/// scalar tails run too).
const N: u64 = 61;

const CODE: u64 = 0x10000;
const OUT: u64 = 0x20000;
const IN: u64 = 0x30000;
const RET: u64 = 0x1000;
const STACK: u64 = 0x8000;

fn kernel_offset(k: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&BLOB[8 * k..8 * k + 8]);
    u64::from_le_bytes(w)
}

/// Runs kernel `k` natively with MXCSR 0x1f80; returns the new `out` and
/// MXCSR.
fn native(k: usize, out: &[u8], input: &[u8]) -> (Vec<u8>, u32) {
    let size = BLOB.len().next_multiple_of(4096);
    // SAFETY: an anonymous private mapping, checked below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    let mut o = vec![0u128; LEN / 16];
    let mut i = vec![0u128; LEN / 16];
    // SAFETY: both vectors hold LEN bytes; any byte pattern is a valid u128.
    unsafe {
        std::ptr::copy_nonoverlapping(out.as_ptr(), o.as_mut_ptr().cast::<u8>(), LEN);
        std::ptr::copy_nonoverlapping(input.as_ptr(), i.as_mut_ptr().cast::<u8>(), LEN);
    }
    let mut csr = 0x1f80u32;
    // SAFETY: the mapping is ours, filled and then made executable (never
    // both). The blob is position-independent, freestanding code whose
    // table entries are offsets of `extern "C"`-compatible functions
    // `(out, in, n)` that touch only `out` and `in` (LEN bytes each, see the
    // C source) and the stack. The asm blocks only load and store MXCSR
    // around the call: nothing else runs under the test value.
    unsafe {
        std::ptr::copy_nonoverlapping(BLOB.as_ptr(), page.cast::<u8>(), BLOB.len());
        assert_eq!(
            libc::mprotect(page, size, libc::PROT_READ | libc::PROT_EXEC),
            0
        );
        let f: extern "C" fn(*mut u8, *const u8, u64) =
            std::mem::transmute(page.cast::<u8>().add(kernel_offset(k) as usize));
        let mut saved = 0u32;
        core::arch::asm!("stmxcsr [{0}]", "ldmxcsr [{1}]", in(reg) &raw mut saved, in(reg) &raw const csr);
        f(o.as_mut_ptr().cast(), i.as_ptr().cast(), N);
        core::arch::asm!("stmxcsr [{0}]", "ldmxcsr [{1}]", in(reg) &raw mut csr, in(reg) &raw const saved);
        libc::munmap(page, size);
    }
    // SAFETY: `o` holds LEN initialized bytes.
    let bytes = unsafe { std::slice::from_raw_parts(o.as_ptr().cast::<u8>(), LEN) }.to_vec();
    (bytes, csr)
}

/// Runs kernel `k` in a 64-bit ring-0 guest (CR4.OSFXSR set).
fn emulate(k: usize, out: &[u8], input: &[u8], jit: bool) -> (Vec<u8>, u32) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    mem.write_slice(BLOB, GuestAddress(CODE)).unwrap();
    mem.write_slice(out, GuestAddress(OUT)).unwrap();
    mem.write_slice(input, GuestAddress(IN)).unwrap();
    mem.write_obj(0xf4u8, GuestAddress(RET)).unwrap();
    mem.write_obj(RET, GuestAddress(STACK - 8)).unwrap();
    let mut st = common::flat64_state(CODE + kernel_offset(k));
    st.cr4 = 1 << 9;
    st.gprs[4] = STACK - 8;
    st.gprs[7] = OUT;
    st.gprs[6] = IN;
    st.gprs[2] = N;
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
        .unwrap();
    let engine = if jit { Engine::Jit } else { Engine::Interp };
    let mut vm = TestVm::with_engine(cpu, mem.clone(), engine);
    let exit = vm.run(100_000);
    assert!(
        matches!(exit, Some(VcpuExit::Halted { .. })),
        "kernel {k}: {exit:?}"
    );
    assert_eq!(vm.cpu().state.rip, RET + 1, "kernel {k} returned");
    let mut o = vec![0u8; LEN];
    mem.read_slice(&mut o, GuestAddress(OUT)).unwrap();
    (o, vm.cpu().state.mxcsr as u32)
}

/// Input words: small integers, ordinary floats, denormals, NaNs,
/// infinities and raw bits, deterministic in `seed`.
fn data(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(LEN);
    while v.len() < LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w: u32 = match x % 10 {
            0 => (x >> 20) as u32 % 300,
            1 => ((x >> 20) as u32 % 300).wrapping_neg(),
            2 => ((x >> 24) as f32 / 1e4 - 50.0).to_bits(),
            3 => ((x >> 24) as f32 * 1e3).to_bits(),
            4 => (x >> 40) as u32 & 0x807f_ffff,
            5 => 0x7fc0_0000 | (x >> 50) as u32,
            6 => 0xff80_0000,
            7 => 1.0f32.to_bits(),
            _ => (x >> 32) as u32,
        };
        v.extend(w.to_le_bytes());
    }
    v
}

#[test]
fn gcc_o3_sse2_kernels_match_the_host() {
    assert_eq!(kernel_offset(KERNELS), 0, "the table has {KERNELS} kernels");
    for k in 0..KERNELS {
        for seed in [1u64, 0x1234_5678] {
            let out = data(seed ^ 0xabcd);
            let input = data(seed.wrapping_mul(k as u64 + 3));
            let want = native(k, &out, &input);
            for jit in [false, true] {
                let got = emulate(k, &out, &input, jit);
                assert_eq!(got.1, want.1, "MXCSR of kernel {k} (jit {jit})");
                if let Some(at) = (0..LEN).find(|&i| got.0[i] != want.0[i]) {
                    panic!(
                        "kernel {k} (jit {jit}) output differs at byte {at}: {:02x?} vs native {:02x?}",
                        &got.0[at..(at + 16).min(LEN)],
                        &want.0[at..(at + 16).min(LEN)]
                    );
                }
            }
        }
    }
}
