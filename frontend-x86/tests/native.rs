//! The host CPU as the oracle: the same user-mode instruction bytes run
//! natively in-process (through a small trampoline in an mmap'd page that
//! loads registers and RFLAGS from a struct, runs the snippet and stores them
//! back) and through the front end on the IR interpreter (with and without
//! the optimizer); registers must match, and flags must match where the
//! manual defines them.
//!
//! The property test draws random sequences of register-only integer
//! instructions (fixed seed, bounded cases) over random register and flag
//! values, tracking which flags each instruction leaves undefined so that
//! only defined flags are compared and no instruction reads an undefined
//! flag. Failures found are kept as regression tests below.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed
#![cfg(target_arch = "x86_64")]

mod common;

use std::sync::Arc;

use accel_tcg::exec::engine::JitEngine;
use accel_tcg::exec::{Machine, TcgVcpu};
use accel_tcg::guest::{GuestCpu, Platform};
use devices::{Bus, VmLifecycle};
use frontend_x86::X86Cpu;
use frontend_x86::harness::Runner;
use machine::VcpuExit;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const CF: u64 = 1;
const PF: u64 = 4;
const AF: u64 = 0x10;
const ZF: u64 = 0x40;
const SF: u64 = 0x80;
const OF: u64 = 0x800;
const ALL: u64 = CF | PF | AF | ZF | SF | OF;
const SZP: u64 = SF | ZF | PF;

/// Registers in encoding order (rsp unused) and RFLAGS.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Regs {
    r: [u64; 16],
    flags: u64,
}

/// The native side: a trampoline page.
struct Native {
    page: *mut u8,
}

const PAGE: usize = 4096;

impl Native {
    fn new() -> Native {
        // SAFETY: an anonymous private mapping, checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Native { page: p.cast() }
    }

    fn run(&self, snippet: &[u8], input: &Regs) -> Regs {
        let code = trampoline(snippet);
        assert!(code.len() <= PAGE);
        // SAFETY: the page is ours; it is made writable, filled, and made
        // executable (never both at once) before it is called.
        unsafe {
            assert_eq!(
                libc::mprotect(self.page.cast(), PAGE, libc::PROT_READ | libc::PROT_WRITE),
                0
            );
            std::ptr::copy_nonoverlapping(code.as_ptr(), self.page, code.len());
            assert_eq!(
                libc::mprotect(self.page.cast(), PAGE, libc::PROT_READ | libc::PROT_EXEC),
                0
            );
        }
        let mut regs = *input;
        // SAFETY: the trampoline follows the SysV ABI (saves callee-saved
        // registers, clears DF, restores rsp), takes a pointer to a `Regs`,
        // and the snippets are register-only user-mode instructions.
        unsafe {
            let f: extern "C" fn(*mut Regs) = std::mem::transmute(self.page);
            f(&mut regs);
        }
        regs
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        // SAFETY: unmaps the page mapped in `new`.
        unsafe { libc::munmap(self.page.cast(), PAGE) };
    }
}

/// `mov r64, [rdi + d8]` (load) or `mov [rdi + d8], r64` (store).
fn mov_rdi(store: bool, reg: usize, disp: u8) -> [u8; 4] {
    let rex = 0x48 | if reg >= 8 { 4 } else { 0 };
    [
        rex,
        if store { 0x89 } else { 0x8b },
        0x47 | ((reg as u8 & 7) << 3),
        disp,
    ]
}

fn trampoline(snippet: &[u8]) -> Vec<u8> {
    let mut c = vec![
        0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x57,
    ];
    c.extend([0xff, 0xb7, 0x80, 0, 0, 0, 0x9d]); // push [rdi+0x80]; popfq
    for r in (0..16).filter(|&r| r != 4 && r != 7) {
        c.extend(mov_rdi(false, r, (r * 8) as u8));
    }
    c.extend(mov_rdi(false, 7, 0x38));
    c.extend_from_slice(snippet);
    c.extend([0x9c, 0x57]); // pushfq; push rdi
    c.extend([0x48, 0x8b, 0x7c, 0x24, 0x10]); // mov rdi, [rsp+16]
    for r in (0..16).filter(|&r| r != 4 && r != 7) {
        c.extend(mov_rdi(true, r, (r * 8) as u8));
    }
    c.extend([0x58]); // pop rax (guest rdi)
    c.extend(mov_rdi(true, 0, 0x38));
    c.extend([0x58, 0x48, 0x89, 0x87, 0x80, 0, 0, 0]); // pop rax (flags); mov [rdi+0x80], rax
    c.extend([
        0xfc, 0x5f, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3,
    ]);
    c
}

/// The emulated side: a 64-bit ring-0 flat state without paging (the
/// walker then maps virtual to physical 1:1), the snippet at 0x1000
/// followed by hlt.
fn emulate(snippet: &[u8], input: &Regs, optimize: bool) -> Regs {
    emulate_mem(snippet, input, optimize, &mut []).0
}

/// Guest address of the memory tests' buffer (r15 points to it).
const BUF: u64 = 0x3000;

/// [`emulate`] with `buf` at [`BUF`] (copied in and out).
fn emulate_mem(snippet: &[u8], input: &Regs, optimize: bool, buf: &mut [u8]) -> (Regs, ()) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    mem.write_slice(buf, GuestAddress(BUF)).unwrap();
    let mut code = snippet.to_vec();
    code.push(0xf4);
    mem.write_slice(&code, GuestAddress(0x1000)).unwrap();
    let mut st = common::flat64_state(0x1000);
    st.rflags = 2 | (input.flags & ALL);
    st.gprs = input.r;
    st.gprs[4] = 0x8000;
    let boot = machine::CpuState::X86_64(Box::new(st));
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&boot).unwrap();
    // The JIT runs the same snippet on its own copy of memory first, through
    // moat's real exec loop; it must agree with the interpreter below.
    let jit = optimize.then(|| {
        let jit_mem = mem.clone_contents();
        let mut jit_cpu = X86Cpu::new();
        jit_cpu.set_cpu_state(&boot).unwrap();
        run_on_jit(jit_cpu, jit_mem, buf.len())
    });
    let mut runner = Runner::new(cpu);
    runner.optimize = optimize;
    let pio = Bus::new("pio");
    let mmio = Bus::new("mmio");
    let lifecycle = Arc::new(VmLifecycle::new());
    let platform = Platform {
        memory: &mem,
        pio: &pio,
        mmio: &mmio,
        lifecycle: &lifecycle,
        interrupts: &devices::NoInterruptController,
        cpu: 0,
        cpus: 1,
    };
    let exit = runner.run(&platform, 1000);
    assert!(
        matches!(exit, Some(VcpuExit::Halted { .. })),
        "{exit:?} for {snippet:02x?}"
    );
    let machine::CpuState::X86_64(out) = runner.cpu.cpu_state();
    let mut r = Regs {
        r: out.gprs,
        flags: out.rflags,
    };
    r.r[4] = 0;
    mem.read_slice(buf, GuestAddress(BUF)).unwrap();
    if let Some((jit_regs, jit_buf)) = jit {
        assert_eq!(
            jit_regs.r, r.r,
            "JIT registers for {snippet:02x?} from {input:x?}"
        );
        assert_eq!(
            jit_regs.flags, r.flags,
            "JIT flags for {snippet:02x?} from {input:x?}"
        );
        assert_eq!(jit_buf, buf, "JIT memory for {snippet:02x?}");
    }
    (r, ())
}

/// Copies guest RAM, for a second run of the same setup.
trait CloneContents {
    fn clone_contents(&self) -> GuestMemoryMmap;
}

impl CloneContents for GuestMemoryMmap {
    fn clone_contents(&self) -> GuestMemoryMmap {
        let copy = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let mut bytes = vec![0u8; 0x10_0000];
        self.read_slice(&mut bytes, GuestAddress(0)).unwrap();
        copy.write_slice(&bytes, GuestAddress(0)).unwrap();
        copy
    }
}

/// Runs a prepared CPU to its `hlt` on accel-tcg's exec loop and JIT; returns
/// the registers and the buffer at [`BUF`].
fn run_on_jit(cpu: X86Cpu, memory: GuestMemoryMmap, buf_len: usize) -> (Regs, Vec<u8>) {
    let jit = JitEngine::new(1 << 20, size_of::<frontend_x86::X86State>()).unwrap();
    let machine = Machine {
        memory: memory.clone(),
        pio: Arc::new(Bus::new("pio")),
        mmio: Arc::new(Bus::new("mmio")),
        lifecycle: Arc::new(VmLifecycle::new()),
        interrupts: Arc::new(devices::NoInterruptController),
        clock: devices::Clock::new(),
        index: 0,
        cpus: 1,
        shared_code: accel_tcg::exec::SharedCodePages::new(Arc::new(VmLifecycle::new())),
    };
    let mut vcpu = TcgVcpu::new(cpu, jit, machine);
    let exit = vcpu.run_guest().unwrap();
    assert!(matches!(exit, VcpuExit::Halted { .. }), "JIT: {exit:?}");
    let machine::CpuState::X86_64(out) = vcpu.cpu().cpu_state();
    let mut r = Regs {
        r: out.gprs,
        flags: out.rflags,
    };
    r.r[4] = 0;
    let mut buf = vec![0u8; buf_len];
    memory.read_slice(&mut buf, GuestAddress(BUF)).unwrap();
    (r, buf)
}

/// Runs `snippet` with r15 pointing to a copy of `buf` both ways and
/// compares registers (but r15), the flags in `mask` and the buffers.
fn check_mem(snippet: &[u8], input: &Regs, mask: u64, buf: &[u8]) {
    let mut input = *input;
    input.r[4] = 0;
    input.flags &= ALL;
    // 16-byte aligned, as the guest buffer is (cmpxchg16b needs it).
    let mut aligned = vec![0u128; buf.len().div_ceil(16)];
    // SAFETY: the u128 storage is at least `buf.len()` bytes and any byte
    // pattern is a valid u8.
    let nbytes =
        unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), buf.len()) };
    nbytes.copy_from_slice(buf);
    let mut ninput = input;
    ninput.r[15] = nbytes.as_mut_ptr() as u64;
    let mut native = Native::new().run(snippet, &ninput);
    native.r[4] = 0;
    native.r[15] = 0;
    let nbuf = nbytes.to_vec();
    for optimize in [false, true] {
        let mut ebuf = buf.to_vec();
        let mut einput = input;
        einput.r[15] = BUF;
        let (mut emu, ()) = emulate_mem(snippet, &einput, optimize, &mut ebuf);
        emu.r[15] = 0;
        assert_eq!(
            emu.r, native.r,
            "registers for {snippet:02x?} (optimize {optimize}) from {input:x?}"
        );
        assert_eq!(
            ebuf, nbuf,
            "memory for {snippet:02x?} (optimize {optimize}) from {input:x?}"
        );
        assert_eq!(
            emu.flags & mask,
            native.flags & mask,
            "flags {:#x} vs native {:#x} (mask {mask:#x}) for {snippet:02x?} (optimize {optimize})",
            emu.flags,
            native.flags
        );
    }
}

/// Runs `snippet` both ways and compares registers and the flags in `mask`.
fn check(snippet: &[u8], input: &Regs, mask: u64) {
    let mut input = *input;
    input.r[4] = 0;
    input.flags &= ALL;
    let native = Native::new().run(snippet, &input);
    let mut native = native;
    native.r[4] = 0;
    for optimize in [false, true] {
        let emu = emulate(snippet, &input, optimize);
        assert_eq!(
            emu.r, native.r,
            "registers for {snippet:02x?} (optimize {optimize}) from {input:x?}"
        );
        assert_eq!(
            emu.flags & mask,
            native.flags & mask,
            "flags {:#x} vs native {:#x} (mask {mask:#x}) for {snippet:02x?} (optimize {optimize}) from {input:x?}",
            emu.flags,
            native.flags
        );
    }
}

// ---- instruction generation ----

/// A generated instruction and what it does to the flags.
#[derive(Clone, Debug)]
struct Gen {
    bytes: Vec<u8>,
    /// flags it reads
    reads: u64,
    /// flags it leaves defined
    defines: u64,
    /// flags it leaves undefined
    undefines: u64,
}

/// Encodes `[66] [mandatory] [REX] opcode modrm [imm]` for a register-direct
/// operand pair.
fn enc(size: u32, mandatory: &[u8], opcode: &[u8], reg: usize, rm: usize, imm: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if size == 2 {
        v.push(0x66);
    }
    v.extend_from_slice(mandatory);
    let rex = 0x40
        | if size == 8 { 8 } else { 0 }
        | if reg >= 8 { 4 } else { 0 }
        | if rm >= 8 { 1 } else { 0 };
    if rex != 0x40 || size == 1 {
        v.push(rex);
    }
    v.extend_from_slice(opcode);
    v.push(0xc0 | ((reg as u8 & 7) << 3) | (rm as u8 & 7));
    v.extend_from_slice(imm);
    v
}

/// A tiny deterministic generator over one seed.
struct Pick(u64);

impl Pick {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    /// A register other than rsp and r15 (r15 is the memory tests' base).
    fn reg(&mut self) -> usize {
        let r = self.next(14) as usize;
        if r >= 4 { r + 1 } else { r }
    }
    fn size(&mut self) -> u32 {
        [1, 2, 4, 8][self.next(4) as usize]
    }
}

fn g(bytes: Vec<u8>, reads: u64, defines: u64, undefines: u64) -> Gen {
    Gen {
        bytes,
        reads,
        defines,
        undefines,
    }
}

fn imm(v: u64, n: usize) -> Vec<u8> {
    v.to_le_bytes()[..n].to_vec()
}

/// One random register-only instruction.
fn generate(seed: u64) -> Gen {
    let mut p = Pick(seed | 1);
    let size = p.size();
    let (reg, rm) = (p.reg(), p.reg());
    let wide = |s: u32| if s == 1 { 2 } else { s };
    match p.next(20) {
        0 => {
            // add or adc sbb and sub xor cmp (r/m, reg)
            let n = p.next(8) as u8;
            let op = n << 3;
            let (reads, def, undef) = match n {
                1 | 4 | 6 => (0, CF | OF | SZP, AF),
                2 | 3 => (CF, ALL, 0),
                _ => (0, ALL, 0),
            };
            g(
                enc(
                    size,
                    &[],
                    &[if size == 1 { op } else { op + 1 }],
                    reg,
                    rm,
                    &[],
                ),
                reads,
                def,
                undef,
            )
        }
        1 => {
            // group 1 with immediate
            let n = p.next(8) as usize;
            let v = p.next(u64::MAX);
            let (reads, def, undef) = match n {
                1 | 4 | 6 => (0, CF | OF | SZP, AF),
                2 | 3 => (CF, ALL, 0),
                _ => (0, ALL, 0),
            };
            let b = match (size, p.next(2)) {
                (1, _) => enc(1, &[], &[0x80], n, rm, &imm(v, 1)),
                (_, 0) => enc(size, &[], &[0x83], n, rm, &imm(v, 1)),
                (2, _) => enc(2, &[], &[0x81], n, rm, &imm(v, 2)),
                _ => enc(size, &[], &[0x81], n, rm, &imm(v, 4)),
            };
            g(b, reads, def, undef)
        }
        2 => {
            // shifts and rotates by an immediate
            let n = [0usize, 1, 2, 3, 4, 5, 7][p.next(7) as usize];
            let bits = size as u64 * 8;
            let c = p.next(40) as u8;
            let masked = c as u64 & if size == 8 { 63 } else { 31 };
            let b = if c == 1 && p.next(2) == 0 {
                enc(
                    size,
                    &[],
                    &[if size == 1 { 0xd0 } else { 0xd1 }],
                    n,
                    rm,
                    &[],
                )
            } else {
                enc(
                    size,
                    &[],
                    &[if size == 1 { 0xc0 } else { 0xc1 }],
                    n,
                    rm,
                    &[c],
                )
            };
            let rot = n <= 3;
            let reads = if n == 2 || n == 3 { CF } else { 0 };
            if masked == 0 {
                return g(b, reads, 0, 0);
            }
            let of = if masked == 1 { 0 } else { OF };
            if rot {
                g(b, reads, CF | (OF & !of), of)
            } else {
                let cf = if masked >= bits { CF } else { 0 };
                g(b, 0, (CF | SZP | OF) & !cf & !of, AF | cf | of)
            }
        }
        3 => {
            // shifts and rotates by cl
            let n = [0usize, 1, 4, 5, 7][p.next(5) as usize];
            let b = enc(
                size,
                &[],
                &[if size == 1 { 0xd2 } else { 0xd3 }],
                n,
                rm,
                &[],
            );
            let cf = if size <= 2 { CF } else { 0 };
            // count 0 keeps the old flags, so nothing is newly defined
            g(b, 0, 0, OF | AF | cf)
        }
        4 => {
            // group 3: not, neg, mul, imul
            let n = [2usize, 3, 4, 5][p.next(4) as usize];
            let b = enc(
                size,
                &[],
                &[if size == 1 { 0xf6 } else { 0xf7 }],
                n,
                rm,
                &[],
            );
            match n {
                2 => g(b, 0, 0, 0),
                3 => g(b, 0, ALL, 0),
                _ => g(b, 0, CF | OF, SZP | AF),
            }
        }
        5 => {
            // inc, dec
            let n = p.next(2) as usize;
            g(
                enc(
                    size,
                    &[],
                    &[if size == 1 { 0xfe } else { 0xff }],
                    n,
                    rm,
                    &[],
                ),
                0,
                OF | SZP | AF,
                0,
            )
        }
        6 => {
            // imul r, r/m [, imm]
            let s = wide(size);
            let b = match p.next(3) {
                0 => enc(s, &[], &[0x0f, 0xaf], reg, rm, &[]),
                1 => enc(s, &[], &[0x6b], reg, rm, &imm(p.next(256), 1)),
                _ => enc(
                    s,
                    &[],
                    &[0x69],
                    reg,
                    rm,
                    &imm(p.next(u64::MAX), if s == 2 { 2 } else { 4 }),
                ),
            };
            g(b, 0, CF | OF, SZP | AF)
        }
        7 => {
            // movzx, movsx, movsxd
            let s = wide(size);
            match p.next(3) {
                0 => g(enc(s, &[], &[0x0f, 0xb6], reg, rm, &[]), 0, 0, 0),
                1 => g(enc(s, &[], &[0x0f, 0xbe], reg, rm, &[]), 0, 0, 0),
                _ => g(enc(8, &[], &[0x63], reg, rm, &[]), 0, 0, 0),
            }
        }
        8 => {
            // bt, bts, btr, btc with a register or an immediate bit offset
            let s = wide(size);
            let k = p.next(4) as u8;
            let b = if p.next(2) == 0 {
                enc(s, &[], &[0x0f, 0xa3 + (k << 3)], reg, rm, &[])
            } else {
                enc(
                    s,
                    &[],
                    &[0x0f, 0xba],
                    4 + k as usize,
                    rm,
                    &[p.next(256) as u8],
                )
            };
            g(b, 0, CF, OF | SF | AF | PF)
        }
        9 => {
            // bsf, bsr, tzcnt, lzcnt, popcnt
            let s = wide(size);
            match p.next(5) {
                0 => g(
                    enc(s, &[], &[0x0f, 0xbc], reg, rm, &[]),
                    0,
                    ZF,
                    CF | OF | SF | AF | PF,
                ),
                1 => g(
                    enc(s, &[], &[0x0f, 0xbd], reg, rm, &[]),
                    0,
                    ZF,
                    CF | OF | SF | AF | PF,
                ),
                2 => g(
                    enc(s, &[0xf3], &[0x0f, 0xbc], reg, rm, &[]),
                    0,
                    CF | ZF,
                    OF | SF | AF | PF,
                ),
                3 => g(
                    enc(s, &[0xf3], &[0x0f, 0xbd], reg, rm, &[]),
                    0,
                    CF | ZF,
                    OF | SF | AF | PF,
                ),
                _ => g(enc(s, &[0xf3], &[0x0f, 0xb8], reg, rm, &[]), 0, ALL, 0),
            }
        }
        10 => {
            // cmovcc, setcc
            let cc = p.next(16) as u8;
            let reads = cond_reads(cc);
            if p.next(2) == 0 {
                g(
                    enc(wide(size), &[], &[0x0f, 0x40 + cc], reg, rm, &[]),
                    reads,
                    0,
                    0,
                )
            } else {
                g(enc(1, &[], &[0x0f, 0x90 + cc], 0, rm, &[]), reads, 0, 0)
            }
        }
        11 => {
            // shld, shrd by immediate (32/64-bit: counts below the width)
            let s = [4, 8][p.next(2) as usize];
            let right = p.next(2) as u8;
            let c = p.next(s as u64 * 8) as u8;
            let b = enc(s, &[], &[0x0f, 0xa4 + (right << 3)], reg, rm, &[c]);
            match c {
                0 => g(b, 0, 0, 0),
                1 => g(b, 0, CF | OF | SZP, AF),
                _ => g(b, 0, CF | SZP, AF | OF),
            }
        }
        12 => {
            // xadd, cmpxchg, xchg
            match p.next(3) {
                0 => g(
                    enc(
                        size,
                        &[],
                        &[0x0f, if size == 1 { 0xc0 } else { 0xc1 }],
                        reg,
                        rm,
                        &[],
                    ),
                    0,
                    ALL,
                    0,
                ),
                1 => g(
                    enc(
                        size,
                        &[],
                        &[0x0f, if size == 1 { 0xb0 } else { 0xb1 }],
                        reg,
                        rm,
                        &[],
                    ),
                    0,
                    ALL,
                    0,
                ),
                _ => g(
                    enc(
                        size,
                        &[],
                        &[if size == 1 { 0x86 } else { 0x87 }],
                        reg,
                        rm,
                        &[],
                    ),
                    0,
                    0,
                    0,
                ),
            }
        }
        13 => {
            // cbw family, cwd family, bswap, mov
            match p.next(4) {
                0 => g(
                    enc(wide(size), &[], &[0x98], 0, 0, &[])
                        [..enc(wide(size), &[], &[0x98], 0, 0, &[]).len() - 1]
                        .to_vec(),
                    0,
                    0,
                    0,
                ),
                1 => g(
                    enc(wide(size), &[], &[0x99], 0, 0, &[])
                        [..enc(wide(size), &[], &[0x99], 0, 0, &[]).len() - 1]
                        .to_vec(),
                    0,
                    0,
                    0,
                ),
                2 => {
                    let s = [4, 8][p.next(2) as usize];
                    let rex = 0x40 | if s == 8 { 8 } else { 0 } | if rm >= 8 { 1 } else { 0 };
                    let mut b = if rex != 0x40 { vec![rex] } else { vec![] };
                    b.extend([0x0f, 0xc8 + (rm as u8 & 7)]);
                    g(b, 0, 0, 0)
                }
                _ => g(
                    enc(
                        size,
                        &[],
                        &[if size == 1 { 0x88 } else { 0x89 }],
                        reg,
                        rm,
                        &[],
                    ),
                    0,
                    0,
                    0,
                ),
            }
        }
        14 => {
            // clc, stc, cmc, sahf, lahf
            match p.next(5) {
                0 => g(vec![0xf8], 0, CF, 0),
                1 => g(vec![0xf9], 0, CF, 0),
                2 => g(vec![0xf5], CF, CF, 0),
                3 => g(vec![0x9e], 0, CF | PF | AF | ZF | SF, 0),
                _ => g(vec![0x9f], CF | PF | AF | ZF | SF, 0, 0),
            }
        }
        15 => {
            // lea with base, index and scale
            let s = [2u32, 4, 8][p.next(3) as usize];
            let (base, index) = (p.reg(), p.reg());
            let scale = p.next(4) as u8;
            let disp = p.next(u64::MAX) as u32;
            let mut v = Vec::new();
            if s == 2 {
                v.push(0x66);
            }
            let rex = 0x40
                | if s == 8 { 8 } else { 0 }
                | if reg >= 8 { 4 } else { 0 }
                | if index >= 8 { 2 } else { 0 }
                | if base >= 8 { 1 } else { 0 };
            if rex != 0x40 {
                v.push(rex);
            }
            v.extend([
                0x8d,
                0x84 | ((reg as u8 & 7) << 3),
                (scale << 6) | ((index as u8 & 7) << 3) | (base as u8 & 7),
            ]);
            v.extend(disp.to_le_bytes());
            g(v, 0, 0, 0)
        }
        16 => {
            // high-byte registers without REX
            let n = p.next(8) as u8;
            let (r, m) = (p.next(8) as u8, p.next(8) as u8);
            let (reads, def, undef) = match n {
                1 | 4 | 6 => (0, CF | OF | SZP, AF),
                2 | 3 => (CF, ALL, 0),
                _ => (0, ALL, 0),
            };
            g(vec![n << 3, 0xc0 | (r << 3) | m], reads, def, undef)
        }
        17 => {
            // rcl, rcr by cl
            let n = 2 + p.next(2) as usize;
            let b = enc(
                size,
                &[],
                &[if size == 1 { 0xd2 } else { 0xd3 }],
                n,
                rm,
                &[],
            );
            g(b, CF, 0, OF)
        }
        18 => {
            // one-operand mul/imul already covered; neg/not on high bytes
            let n = 2 + p.next(2) as u8;
            let r = p.next(8) as u8;
            g(
                vec![0xf6, 0xc0 | (n << 3) | r],
                0,
                if n == 3 { ALL } else { 0 },
                0,
            )
        }
        _ => {
            // test r/m, imm
            let v = p.next(u64::MAX);
            let b = if size == 1 {
                enc(1, &[], &[0xf6], 0, rm, &imm(v, 1))
            } else {
                enc(
                    size,
                    &[],
                    &[0xf7],
                    0,
                    rm,
                    &imm(v, if size == 2 { 2 } else { 4 }),
                )
            };
            g(b, 0, CF | OF | SZP, AF)
        }
    }
}

/// Encodes an instruction whose r/m operand is `[r15 + disp8]`.
fn enc_mem(
    size: u32,
    mandatory: &[u8],
    opcode: &[u8],
    reg: usize,
    disp: u8,
    imm: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    if size == 2 {
        v.push(0x66);
    }
    v.extend_from_slice(mandatory);
    v.push(0x41 | if size == 8 { 8 } else { 0 } | if reg >= 8 { 4 } else { 0 });
    v.extend_from_slice(opcode);
    v.push(0x47 | ((reg as u8 & 7) << 3));
    v.push(disp);
    v.extend_from_slice(imm);
    v
}

/// One random instruction with a memory operand at [r15 + disp8], disp8 in
/// 0..=120 (the buffer is 128 bytes plus room for an 8-byte access).
fn generate_mem(seed: u64) -> Gen {
    let mut p = Pick(seed | 1);
    let size = p.size();
    let reg = p.reg();
    let d = p.next(121) as u8;
    let wide = |s: u32| if s == 1 { 2 } else { s };
    let alu = |n: u8| match n {
        1 | 4 | 6 => (0, CF | OF | SZP, AF),
        2 | 3 => (CF, ALL, 0),
        _ => (0, ALL, 0),
    };
    match p.next(12) {
        0 => {
            let n = p.next(8) as u8;
            let (r, def, undef) = alu(n);
            let dir = (p.next(2) as u8) << 1; // 0: op [m], reg; 2: op reg, [m]
            g(
                enc_mem(
                    size,
                    &[],
                    &[(n << 3) + dir + (size != 1) as u8],
                    reg,
                    d,
                    &[],
                ),
                r,
                def,
                undef,
            )
        }
        1 => {
            let n = p.next(8) as usize;
            let (r, def, undef) = alu(n as u8);
            let v = p.next(u64::MAX);
            let b = match size {
                1 => enc_mem(1, &[], &[0x80], n, d, &imm(v, 1)),
                2 => enc_mem(2, &[], &[0x81], n, d, &imm(v, 2)),
                _ => enc_mem(size, &[], &[0x83], n, d, &imm(v, 1)),
            };
            g(b, r, def, undef)
        }
        2 => {
            // shl/shr/sar by 1 on memory
            let n = [4usize, 5, 7][p.next(3) as usize];
            g(
                enc_mem(size, &[], &[if size == 1 { 0xd0 } else { 0xd1 }], n, d, &[]),
                0,
                CF | OF | SZP,
                AF,
            )
        }
        3 => {
            // inc, dec, not, neg
            match p.next(4) {
                0 | 1 => {
                    let n = p.next(2) as usize;
                    g(
                        enc_mem(size, &[], &[if size == 1 { 0xfe } else { 0xff }], n, d, &[]),
                        0,
                        OF | SZP | AF,
                        0,
                    )
                }
                2 => g(
                    enc_mem(size, &[], &[if size == 1 { 0xf6 } else { 0xf7 }], 2, d, &[]),
                    0,
                    0,
                    0,
                ),
                _ => g(
                    enc_mem(size, &[], &[if size == 1 { 0xf6 } else { 0xf7 }], 3, d, &[]),
                    0,
                    ALL,
                    0,
                ),
            }
        }
        4 => {
            // mov both ways, movzx/movsx from memory
            match p.next(4) {
                0 => g(
                    enc_mem(
                        size,
                        &[],
                        &[if size == 1 { 0x88 } else { 0x89 }],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    0,
                    0,
                ),
                1 => g(
                    enc_mem(
                        size,
                        &[],
                        &[if size == 1 { 0x8a } else { 0x8b }],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    0,
                    0,
                ),
                2 => g(
                    enc_mem(
                        wide(size),
                        &[],
                        &[0x0f, 0xb6 + p.next(2) as u8],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    0,
                    0,
                ),
                _ => g(
                    enc_mem(
                        wide(size),
                        &[],
                        &[0x0f, 0xbe + p.next(2) as u8],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    0,
                    0,
                ),
            }
        }
        5 => {
            // xchg, xadd, cmpxchg with memory
            match p.next(3) {
                0 => g(
                    enc_mem(
                        size,
                        &[],
                        &[if size == 1 { 0x86 } else { 0x87 }],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    0,
                    0,
                ),
                1 => g(
                    enc_mem(
                        size,
                        &[],
                        &[0x0f, if size == 1 { 0xc0 } else { 0xc1 }],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    ALL,
                    0,
                ),
                _ => g(
                    enc_mem(
                        size,
                        &[],
                        &[0x0f, if size == 1 { 0xb0 } else { 0xb1 }],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    ALL,
                    0,
                ),
            }
        }
        6 => {
            // bt* with an immediate bit offset
            let k = p.next(4) as usize;
            g(
                enc_mem(
                    wide(size),
                    &[],
                    &[0x0f, 0xba],
                    4 + k,
                    d,
                    &[p.next(256) as u8],
                ),
                0,
                CF,
                OF | SF | AF | PF,
            )
        }
        7 => {
            // cmovcc from memory, setcc to memory
            let cc = p.next(16) as u8;
            if p.next(2) == 0 {
                g(
                    enc_mem(wide(size), &[], &[0x0f, 0x40 + cc], reg, d, &[]),
                    cond_reads(cc),
                    0,
                    0,
                )
            } else {
                g(
                    enc_mem(1, &[], &[0x0f, 0x90 + cc], 0, d, &[]),
                    cond_reads(cc),
                    0,
                    0,
                )
            }
        }
        8 => {
            // imul reg, [m]; mul/imul [m]
            if p.next(2) == 0 {
                g(
                    enc_mem(wide(size), &[], &[0x0f, 0xaf], reg, d, &[]),
                    0,
                    CF | OF,
                    SZP | AF,
                )
            } else {
                let n = 4 + p.next(2) as usize;
                g(
                    enc_mem(size, &[], &[if size == 1 { 0xf6 } else { 0xf7 }], n, d, &[]),
                    0,
                    CF | OF,
                    SZP | AF,
                )
            }
        }
        9 => {
            // popcnt, tzcnt, lzcnt, bsf from memory
            let s = wide(size);
            match p.next(4) {
                0 => g(enc_mem(s, &[0xf3], &[0x0f, 0xb8], reg, d, &[]), 0, ALL, 0),
                1 => g(
                    enc_mem(s, &[0xf3], &[0x0f, 0xbc], reg, d, &[]),
                    0,
                    CF | ZF,
                    OF | SF | AF | PF,
                ),
                2 => g(
                    enc_mem(s, &[0xf3], &[0x0f, 0xbd], reg, d, &[]),
                    0,
                    CF | ZF,
                    OF | SF | AF | PF,
                ),
                _ => g(
                    enc_mem(s, &[], &[0x0f, 0xbc], reg, d, &[]),
                    0,
                    ZF,
                    CF | OF | SF | AF | PF,
                ),
            }
        }
        10 => {
            // test [m], reg; cmp [m], imm
            if p.next(2) == 0 {
                g(
                    enc_mem(
                        size,
                        &[],
                        &[if size == 1 { 0x84 } else { 0x85 }],
                        reg,
                        d,
                        &[],
                    ),
                    0,
                    CF | OF | SZP,
                    AF,
                )
            } else {
                let b = if size == 1 {
                    enc_mem(1, &[], &[0x80], 7, d, &[p.next(256) as u8])
                } else {
                    enc_mem(size, &[], &[0x83], 7, d, &[p.next(256) as u8])
                };
                g(b, 0, ALL, 0)
            }
        }
        _ => {
            // sub/sbb register from memory (r15's value differs between the
            // two runs, so no lea here)
            let n = [3u8, 5][p.next(2) as usize];
            let (r, def, undef) = alu(n);
            g(
                enc_mem(size, &[], &[(n << 3) + 2 + (size != 1) as u8], reg, d, &[]),
                r,
                def,
                undef,
            )
        }
    }
}

/// One random `lock`-prefixed instruction with a memory destination at
/// [r15 + disp8] (the forms the lock prefix is valid with).
fn generate_locked(seed: u64) -> Gen {
    const LOCK: &[u8] = &[0xf0];
    let mut p = Pick(seed | 1);
    let size = p.size();
    let reg = p.reg();
    let d = p.next(121) as u8;
    let wide = |s: u32| if s == 1 { 2 } else { s };
    // add, or, adc, sbb, and, sub, xor (not cmp)
    let n = p.next(7) as u8;
    let (r, def, undef) = match n {
        1 | 4 | 6 => (0, CF | OF | SZP, AF),
        2 | 3 => (CF, ALL, 0),
        _ => (0, ALL, 0),
    };
    let op1 = if size == 1 { 0 } else { 1 };
    match p.next(8) {
        0 => g(
            enc_mem(size, LOCK, &[(n << 3) + op1], reg, d, &[]),
            r,
            def,
            undef,
        ),
        1 => {
            let v = p.next(u64::MAX);
            let b = match size {
                1 => enc_mem(1, LOCK, &[0x80], n as usize, d, &imm(v, 1)),
                2 => enc_mem(2, LOCK, &[0x81], n as usize, d, &imm(v, 2)),
                _ => enc_mem(size, LOCK, &[0x83], n as usize, d, &imm(v, 1)),
            };
            g(b, r, def, undef)
        }
        2 => {
            let k = p.next(2) as usize;
            g(
                enc_mem(size, LOCK, &[0xfe + op1], k, d, &[]),
                0,
                OF | SZP | AF,
                0,
            )
        }
        3 => {
            // not (no flags), neg
            let k = 2 + p.next(2) as usize;
            let def = if k == 2 { 0 } else { ALL };
            g(enc_mem(size, LOCK, &[0xf6 + op1], k, d, &[]), 0, def, 0)
        }
        4 => g(enc_mem(size, LOCK, &[0x86 + op1], reg, d, &[]), 0, 0, 0),
        5 => g(
            enc_mem(size, LOCK, &[0x0f, 0xc0 + op1], reg, d, &[]),
            0,
            ALL,
            0,
        ),
        6 => g(
            enc_mem(size, LOCK, &[0x0f, 0xb0 + op1], reg, d, &[]),
            0,
            ALL,
            0,
        ),
        _ => {
            // bts, btr, btc with an immediate bit offset
            let k = 1 + p.next(3) as usize;
            g(
                enc_mem(
                    wide(size),
                    LOCK,
                    &[0x0f, 0xba],
                    4 + k,
                    d,
                    &[p.next(256) as u8],
                ),
                0,
                CF,
                OF | SF | AF | PF,
            )
        }
    }
}

/// Flags condition code `cc` reads.
fn cond_reads(cc: u8) -> u64 {
    match cc >> 1 {
        0 => OF,
        1 => CF,
        2 => ZF,
        3 => CF | ZF,
        4 => SF,
        5 => PF,
        6 => SF | OF,
        _ => SF | OF | ZF,
    }
}

/// A sequence without reads of undefined flags, and the flags it leaves
/// defined (given all defined at the start).
fn sequence(seeds: &[u64]) -> (Vec<u8>, u64) {
    let mut code = Vec::new();
    let mut undef = 0u64;
    for &s in seeds {
        let i = generate(s);
        if i.reads & undef != 0 {
            continue;
        }
        code.extend_from_slice(&i.bytes);
        undef = (undef & !i.defines) | i.undefines;
    }
    (code, ALL & !undef)
}

fn regs_from(vals: &[u64; 16], flags: u64) -> Regs {
    Regs {
        r: *vals,
        flags: flags & ALL,
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 2000,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6d6f_6174),
        ..Config::default()
    })]

    #[test]
    fn random_alu_sequences_match_the_host(
        seeds in prop::collection::vec(any::<u64>(), 1..10),
        vals in any::<[u64; 16]>(),
        flags in any::<u64>(),
        small in any::<[u8; 16]>(),
    ) {
        // Half the registers small, so shifts by cl and bit offsets see
        // interesting counts.
        let mut vals = vals;
        for (i, s) in small.iter().enumerate() {
            if s & 1 == 0 {
                vals[i] = (*s as u64) >> 1;
            }
        }
        let (code, mask) = sequence(&seeds);
        check(&code, &regs_from(&vals, flags), mask);
    }
}

/// A mixed register/memory sequence, as [`sequence`].
fn mem_sequence(seeds: &[u64]) -> (Vec<u8>, u64) {
    let mut code = Vec::new();
    let mut undef = 0u64;
    for &s in seeds {
        let i = if s % 3 == 0 {
            generate(s / 3)
        } else {
            generate_mem(s)
        };
        if i.reads & undef != 0 {
            continue;
        }
        code.extend_from_slice(&i.bytes);
        undef = (undef & !i.defines) | i.undefines;
    }
    (code, ALL & !undef)
}

proptest! {
    #![proptest_config(Config {
        cases: 1000,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6d65_6d73),
        ..Config::default()
    })]

    #[test]
    fn random_memory_sequences_match_the_host(
        seeds in prop::collection::vec(any::<u64>(), 1..8),
        vals in any::<[u64; 16]>(),
        flags in any::<u64>(),
        buf in prop::collection::vec(any::<u8>(), 136),
    ) {
        let (code, mask) = mem_sequence(&seeds);
        check_mem(&code, &regs_from(&vals, flags), mask, &buf);
    }
}

/// A sequence of locked and plain memory instructions, as [`sequence`].
fn locked_sequence(seeds: &[u64]) -> (Vec<u8>, u64) {
    let mut code = Vec::new();
    let mut undef = 0u64;
    for &s in seeds {
        let i = if s % 2 == 0 {
            generate_mem(s / 2)
        } else {
            generate_locked(s)
        };
        if i.reads & undef != 0 {
            continue;
        }
        code.extend_from_slice(&i.bytes);
        undef = (undef & !i.defines) | i.undefines;
    }
    (code, ALL & !undef)
}

proptest! {
    #![proptest_config(Config {
        cases: 400,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6c6f_636b),
        ..Config::default()
    })]

    #[test]
    fn random_locked_sequences_match_the_host(
        seeds in prop::collection::vec(any::<u64>(), 1..8),
        vals in any::<[u64; 16]>(),
        flags in any::<u64>(),
        buf in prop::collection::vec(any::<u8>(), 136),
    ) {
        let (code, mask) = locked_sequence(&seeds);
        check_mem(&code, &regs_from(&vals, flags), mask, &buf);
    }
}

/// Every locked form over many seeds, each on its own.
#[test]
fn every_locked_instruction_matches_the_host() {
    let mut x = 0x0bad_cafe_f00d_1234u64;
    let buf: Vec<u8> = (0..136u32).map(|i| (i * 37 + 11) as u8).collect();
    for k in 0..400u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let i = generate_locked(x);
        let mut vals = [0u64; 16];
        for (n, v) in vals.iter_mut().enumerate() {
            *v = x.rotate_left(n as u32 * 7) ^ k;
        }
        check_mem(
            &i.bytes,
            &regs_from(&vals, x >> 9),
            ALL & !i.undefines,
            &buf,
        );
    }
}

/// Each generator class on its own over many seeds (cheap broad coverage).
#[test]
fn every_instruction_class_matches_the_host() {
    let mut x = 0x1234_5678_9abc_def1u64;
    for k in 0..600u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (code, mask) = sequence(&[x]);
        let mut vals = [0u64; 16];
        for (i, v) in vals.iter_mut().enumerate() {
            *v = x.rotate_left(i as u32 * 5) ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            if (k + i as u64).is_multiple_of(3) {
                *v &= 0x7f;
            }
        }
        check(&code, &regs_from(&vals, x >> 7), mask);
    }
}

#[test]
fn shift_edges() {
    // shl/shr/sar/rol/ror by 0, 1, width-1, width, width+1 through cl, all sizes
    for size in [1u32, 2, 4, 8] {
        for n in [0usize, 1, 4, 5, 7] {
            for count in [0u64, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64] {
                let code = enc(size, &[], &[if size == 1 { 0xd2 } else { 0xd3 }], n, 0, &[]);
                let mut r = Regs {
                    r: [0; 16],
                    flags: CF | OF | ZF,
                };
                r.r[0] = 0x8000_0000_8000_8081;
                r.r[1] = count;
                let masked = count & if size == 8 { 63 } else { 31 };
                let mut mask = ALL & !AF;
                if masked != 1 {
                    mask &= !OF;
                }
                if masked >= size as u64 * 8 && n >= 4 {
                    mask &= !CF;
                }
                check(&code, &r, mask);
            }
        }
    }
}

#[test]
fn adc_sbb_carry_chains() {
    for size in [1u32, 2, 4, 8] {
        for (a, b) in [
            (0u64, 0u64),
            (u64::MAX, 0),
            (u64::MAX, u64::MAX),
            (0x7f, 0),
            (0x80, 0x7f),
            (0x7fff_ffff, 1),
        ] {
            for cf in [0, CF] {
                for op in [0x10u8, 0x18] {
                    let code = enc(size, &[], &[if size == 1 { op } else { op + 1 }], 3, 0, &[]);
                    let mut r = Regs {
                        r: [0; 16],
                        flags: cf,
                    };
                    r.r[0] = a;
                    r.r[3] = b;
                    check(&code, &r, ALL);
                }
            }
        }
    }
}

#[test]
fn division_matches_the_host_when_it_does_not_fault() {
    // div/idiv rbx with dividends that cannot overflow
    for size in [1u32, 2, 4, 8] {
        for signed in [false, true] {
            for (a, d, b) in [
                (100u64, 0u64, 7u64),
                (u64::MAX, 0, 3),
                (0x1234, 0, 0x10),
                (5, 0, 1),
            ] {
                let code = enc(
                    size,
                    &[],
                    &[if size == 1 { 0xf6 } else { 0xf7 }],
                    if signed { 7 } else { 6 },
                    3,
                    &[],
                );
                let mut r = Regs::default();
                let bits = size * 8;
                let m = if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                };
                // keep the quotient in range: dividend high half zero, low half small for signed
                r.r[0] = if signed {
                    a & (m >> 2) & 0x7fff
                } else {
                    a & m & 0xffff
                };
                r.r[2] = d;
                r.r[3] = b;
                check(&code, &r, 0);
            }
        }
    }
}

/// Found by the property test: cmpxchg with a 32-bit register destination
/// that does not match leaves the destination's upper half alone.
#[test]
fn regression_cmpxchg_reg32_mismatch_keeps_upper_half() {
    let mut r = Regs {
        r: [0; 16],
        flags: 0xc1,
    };
    r.r[0] = 0x14;
    r.r[2] = 0xcacf_7dac_56e0_0553;
    r.r[5] = 0xc472_223b_2d2f_7d2b;
    check(&[0x0f, 0xb1, 0xd5], &r, ALL);
    // and the equal case writes (and zero-extends) the destination
    r.r[5] = 0xffff_ffff_0000_0014;
    check(&[0x0f, 0xb1, 0xd5], &r, ALL);
}

/// Runs a string instruction with rsi and rdi pointing into a copy of `buf`
/// (given and compared as offsets from its start) both ways.
fn check_string(snippet: &[u8], input: &Regs, mask: u64, buf: &[u8]) {
    let mut input = *input;
    input.r[4] = 0;
    input.flags &= ALL;
    let mut nbuf = buf.to_vec();
    let base = nbuf.as_mut_ptr() as u64;
    let mut ninput = input;
    ninput.r[6] += base;
    ninput.r[7] += base;
    let mut native = Native::new().run(snippet, &ninput);
    native.r[4] = 0;
    native.r[6] = native.r[6].wrapping_sub(base);
    native.r[7] = native.r[7].wrapping_sub(base);
    for optimize in [false, true] {
        let mut ebuf = buf.to_vec();
        let mut einput = input;
        einput.r[6] += BUF;
        einput.r[7] += BUF;
        let (mut emu, ()) = emulate_mem(snippet, &einput, optimize, &mut ebuf);
        emu.r[6] = emu.r[6].wrapping_sub(BUF);
        emu.r[7] = emu.r[7].wrapping_sub(BUF);
        assert_eq!(
            emu.r, native.r,
            "registers for {snippet:02x?} (optimize {optimize}) from {input:x?}"
        );
        assert_eq!(
            ebuf, nbuf,
            "memory for {snippet:02x?} (optimize {optimize})"
        );
        assert_eq!(
            emu.flags & mask,
            native.flags & mask,
            "flags for {snippet:02x?} (optimize {optimize})"
        );
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 600,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x7374_7273),
        ..Config::default()
    })]

    #[test]
    fn string_instructions_match_the_host(
        op in 0usize..5,
        size in 0usize..4,
        rep in 0usize..3,
        down in any::<bool>(),
        count in 0u64..17,
        src in 136u64..376,
        dst in 136u64..376,
        rax in any::<u64>(),
        flags in any::<u64>(),
        buf in prop::collection::vec(0u8..4, 512),
    ) {
        let mut code = vec![if down { 0xfd } else { 0xfc }];
        match rep {
            1 => code.push(0xf3),
            2 => code.push(0xf2),
            _ => {}
        }
        match size {
            1 => code.push(0x66),
            3 => code.push(0x48),
            _ => {}
        }
        let opcode = [0xa4u8, 0xaa, 0xac, 0xa6, 0xae][op] + (size != 0) as u8;
        code.push(opcode);
        let mut r = Regs { r: [0; 16], flags };
        r.r[0] = rax;
        r.r[1] = count;
        r.r[6] = src;
        r.r[7] = dst;
        // cmps/scas define every flag; the others (and zero iterations)
        // leave the defined input flags alone.
        check_string(&code, &r, ALL, &buf);
    }
}

#[test]
fn cmpxchg8b_and_cmpxchg16b_match_the_host() {
    let mut buf = vec![0u8; 64];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8;
    }
    for wide in [false, true] {
        let size = if wide { 8 } else { 4 };
        // cmpxchg8b/16b [r15 + 16], plain and locked
        for lock in [&[][..], &[0xf0]] {
            let code = enc_mem(size, lock, &[0x0f, 0xc7], 1, 16, &[]);
            let (lo, hi) = if wide {
                (
                    u64::from_le_bytes(buf[16..24].try_into().unwrap()),
                    u64::from_le_bytes(buf[24..32].try_into().unwrap()),
                )
            } else {
                (
                    u32::from_le_bytes(buf[16..20].try_into().unwrap()) as u64,
                    u32::from_le_bytes(buf[20..24].try_into().unwrap()) as u64,
                )
            };
            for equal in [false, true] {
                let mut r = Regs {
                    r: [0; 16],
                    flags: CF | OF,
                };
                let upper = if wide { 0 } else { 0xdead_0000_0000_0000 };
                r.r[0] = if equal { lo } else { lo ^ 1 } | upper;
                r.r[2] = hi;
                r.r[3] = 0x1111_2222_3333_4444;
                r.r[1] = 0x5555_6666_7777_8888;
                check_mem(&code, &r, ALL, &buf);
            }
        }
    }
}
