//! SSE/SSE2 against the host CPU: the same instruction bytes run natively
//! in-process (a trampoline that also loads and saves xmm0-15 and MXCSR)
//! and through the front end on moat's exec loop, with the IR interpreter
//! (with and without the optimizer) and the JIT. XMM registers, MXCSR,
//! general-purpose registers, RFLAGS and a memory buffer must agree bit for
//! bit.
//!
//! The property test draws random sequences of SSE instructions (register
//! and `[r15 + disp8]` memory forms) over XMM contents built from the values
//! that matter to floating point (zeros of both signs, denormals,
//! infinities, quiet and signalling NaNs with payloads, values near integer
//! limits) and a random MXCSR: rounding mode, FTZ, DAZ and initial flags,
//! with every exception masked (an unmasked one would trap the test process;
//! the #XM path is tested in `exceptions.rs`-style guests instead).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed
#![cfg(target_arch = "x86_64")]

mod common;

use accel_tcg::guest::GuestCpu;
use common::{Engine, TestVm};
use frontend_x86::X86Cpu;
use machine::VcpuExit;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The six arithmetic flags.
const ALL: u64 = 0x8d5;

/// The state the trampoline loads and stores.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Regs {
    r: [u64; 16],
    flags: u64,
    mxcsr: u64,
    xmm: [[u64; 2]; 16],
}

const FLAGS_OFF: u32 = 128;
const MXCSR_OFF: u32 = 136;
const XMM_OFF: u32 = 144;
const _: () = assert!(std::mem::offset_of!(Regs, xmm) == XMM_OFF as usize);
const _: () = assert!(std::mem::offset_of!(Regs, mxcsr) == MXCSR_OFF as usize);

const PAGE: usize = 4096;

/// `op r64, [rdi + disp32]` with the register in modrm.reg.
fn rdi_disp(prefix: &[u8], rex_w: bool, op: &[u8], reg: usize, disp: u32) -> Vec<u8> {
    let mut v = prefix.to_vec();
    let rex = 0x40 | if rex_w { 8 } else { 0 } | if reg >= 8 { 4 } else { 0 };
    if rex != 0x40 {
        v.push(rex);
    }
    v.extend_from_slice(op);
    v.push(0x87 | ((reg as u8 & 7) << 3));
    v.extend(disp.to_le_bytes());
    v
}

/// The trampoline: saves callee-saved registers and the host MXCSR, loads
/// MXCSR, xmm0-15, RFLAGS and the general-purpose registers from the
/// `Regs` in rdi, runs the snippet, stores everything back and restores.
fn trampoline(snippet: &[u8]) -> Vec<u8> {
    // push rbx, rbp, r12-r15, rdi; sub rsp, 8; stmxcsr [rsp]
    let mut c = vec![
        0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x57,
    ];
    c.extend([0x48, 0x83, 0xec, 0x08, 0x0f, 0xae, 0x1c, 0x24]);
    c.extend(rdi_disp(&[], false, &[0x0f, 0xae], 2, MXCSR_OFF)); // ldmxcsr
    for k in 0..16 {
        c.extend(rdi_disp(
            &[0xf3],
            false,
            &[0x0f, 0x6f],
            k,
            XMM_OFF + 16 * k as u32,
        ));
    }
    c.extend(rdi_disp(&[], false, &[0xff], 6, FLAGS_OFF)); // push [rdi+128]
    c.push(0x9d); // popfq
    for r in (0..16).filter(|&r| r != 4 && r != 7) {
        c.extend(rdi_disp(&[], true, &[0x8b], r, 8 * r as u32));
    }
    c.extend(rdi_disp(&[], true, &[0x8b], 7, 0x38));
    c.extend_from_slice(snippet);
    c.extend([0x9c, 0x57]); // pushfq; push rdi
    c.extend([0x48, 0x8b, 0x7c, 0x24, 0x18]); // mov rdi, [rsp+24]
    for r in (0..16).filter(|&r| r != 4 && r != 7) {
        c.extend(rdi_disp(&[], true, &[0x89], r, 8 * r as u32));
    }
    c.push(0x58); // pop rax (guest rdi)
    c.extend(rdi_disp(&[], true, &[0x89], 0, 0x38));
    c.push(0x58); // pop rax (flags)
    c.extend(rdi_disp(&[], true, &[0x89], 0, FLAGS_OFF));
    c.extend(rdi_disp(&[], false, &[0x0f, 0xae], 3, MXCSR_OFF)); // stmxcsr
    for k in 0..16 {
        c.extend(rdi_disp(
            &[0xf3],
            false,
            &[0x0f, 0x7f],
            k,
            XMM_OFF + 16 * k as u32,
        ));
    }
    // ldmxcsr [rsp]; add rsp, 8; pop rdi; pop r15-r12, rbp, rbx; cld; ret
    c.extend([0x0f, 0xae, 0x14, 0x24, 0x48, 0x83, 0xc4, 0x08, 0x5f]);
    c.extend([
        0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xfc, 0xc3,
    ]);
    c
}

/// Runs `snippet` natively on `input`.
fn native(snippet: &[u8], input: &Regs) -> Regs {
    let code = trampoline(snippet);
    assert!(code.len() <= PAGE);
    // SAFETY: an anonymous private mapping, checked below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    let mut regs = *input;
    // SAFETY: the page is ours, written and then made executable (never
    // both). The trampoline follows the SysV ABI (callee-saved registers,
    // rsp and the host MXCSR restored, DF cleared) and takes a `Regs`; the
    // snippets are user-mode SSE instructions with every MXCSR exception
    // masked, touching memory only through r15, which points to a live,
    // 16-byte aligned buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), page.cast::<u8>(), code.len());
        assert_eq!(
            libc::mprotect(page, PAGE, libc::PROT_READ | libc::PROT_EXEC),
            0
        );
        let f: extern "C" fn(*mut Regs) = std::mem::transmute(page);
        f(&mut regs);
        libc::munmap(page, PAGE);
    }
    regs
}

/// Guest address of the buffer r15 points to.
const BUF: u64 = 0x3000;

/// How the emulated side runs blocks.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Interp,
    InterpOpt,
    Jit,
}

/// Runs `snippet` in a 64-bit ring-0 guest with CR4.OSFXSR set.
fn emulate(snippet: &[u8], input: &Regs, mode: Mode, buf: &mut [u8]) -> Regs {
    emulate_fault(snippet, input, mode, buf, false).0
}

/// [`emulate`], also with CR4.OSXMMEXCPT if `allow_fault`, where an
/// exception (#XM without an IDT: a triple fault) ends the run instead of
/// failing the test; returns whether the guest reached its `hlt`.
fn emulate_fault(
    snippet: &[u8],
    input: &Regs,
    mode: Mode,
    buf: &mut [u8],
    allow_fault: bool,
) -> (Regs, bool) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    mem.write_slice(buf, GuestAddress(BUF)).unwrap();
    let mut code = snippet.to_vec();
    code.push(0xf4);
    mem.write_slice(&code, GuestAddress(0x1000)).unwrap();
    let mut st = common::flat64_state(0x1000);
    st.rflags = 2 | (input.flags & ALL);
    st.cr4 = if allow_fault { 3 << 9 } else { 1 << 9 };
    st.gprs = input.r;
    st.gprs[4] = 0x8000;
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
        .unwrap();
    cpu.state.xmm[..16].copy_from_slice(&input.xmm);
    cpu.state.mxcsr = input.mxcsr;
    let engine = if matches!(mode, Mode::Jit) {
        Engine::Jit
    } else {
        Engine::Interp
    };
    let mut vm = TestVm::with_engine(cpu, mem.clone(), engine);
    vm.optimize = !matches!(mode, Mode::Interp);
    let exit = vm.run(1000);
    let halted = matches!(exit, Some(VcpuExit::Halted { .. }));
    assert!(
        halted || (allow_fault && matches!(exit, Some(VcpuExit::Crashed(_)))),
        "{exit:?} for {snippet:02x?}"
    );
    let out = vm.state();
    mem.read_slice(buf, GuestAddress(BUF)).unwrap();
    let mut xmm = [[0u64; 2]; 16];
    xmm.copy_from_slice(&vm.cpu().state.xmm[..16]);
    let regs = Regs {
        r: out.gprs,
        flags: out.rflags,
        mxcsr: vm.cpu().state.mxcsr,
        xmm,
    };
    (regs, halted)
}

/// Runs `snippet` both ways (r15 → a copy of `buf`) and compares.
fn check(snippet: &[u8], input: &Regs, buf: &[u8]) {
    let mut input = *input;
    input.r[4] = 0;
    input.flags &= ALL;
    let mut aligned = vec![0u128; buf.len().div_ceil(16)];
    // SAFETY: the u128 storage holds at least `buf.len()` bytes, any byte
    // pattern is a valid u8, and `aligned` outlives the slice.
    let nbuf =
        unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), buf.len()) };
    nbuf.copy_from_slice(buf);
    let mut ninput = input;
    ninput.r[15] = nbuf.as_mut_ptr() as u64;
    let mut want = native(snippet, &ninput);
    want.r[4] = 0;
    want.r[15] = 0;
    want.flags &= ALL;
    for mode in [Mode::Interp, Mode::InterpOpt, Mode::Jit] {
        let mut ebuf = buf.to_vec();
        let mut einput = input;
        einput.r[15] = BUF;
        let mut got = emulate(snippet, &einput, mode, &mut ebuf);
        got.r[4] = 0;
        got.r[15] = 0;
        got.flags &= ALL;
        assert_eq!(
            got, want,
            "state for {snippet:02x?} ({mode:?}) from {input:x?}"
        );
        assert_eq!(&ebuf[..], &nbuf[..], "memory for {snippet:02x?} ({mode:?})");
    }
}

// ---- instruction generation ----

/// How an instruction's operands are encoded.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// xmm, xmm/m (memory of `.0` bytes, 16-byte aligned if `.1`).
    X(u32, bool),
    /// xmm, m64 only.
    XMem,
    /// xmm, xmm/m with an imm8 (memory `.0` bytes, aligned when 16).
    XI(u32),
    /// Shift group `66 0F opc /n ib` on an xmm (`.0` = n).
    Shi(u8),
    /// r32/64, xmm/m.
    Gx,
    /// r32/64, xmm (register only); `.0`: with an imm8.
    Gxr(bool),
    /// xmm, r/m32/64; `.0`: with an imm8 (pinsrw: m16).
    Xg(bool),
    /// xmm/m, xmm store of `.0` bytes (aligned if `.1`; `.2`: register
    /// destination allowed).
    St(u32, bool, bool),
    /// r/m32/64, xmm (movd/movq to a general-purpose register).
    Gst,
    /// stmxcsr m32
    Stmxcsr,
}

/// (mandatory prefix, opcode after 0F, form)
const TABLE: &[(u8, u8, Form)] = {
    use Form::*;
    const A: Form = X(16, true);
    const S4: Form = X(4, false);
    const S8: Form = X(8, false);
    &[
        (0, 0x58, A),
        (0x66, 0x58, A),
        (0xf3, 0x58, S4),
        (0xf2, 0x58, S8),
        (0, 0x5c, A),
        (0x66, 0x5c, A),
        (0xf3, 0x5c, S4),
        (0xf2, 0x5c, S8),
        (0, 0x59, A),
        (0x66, 0x59, A),
        (0xf3, 0x59, S4),
        (0xf2, 0x59, S8),
        (0, 0x5e, A),
        (0x66, 0x5e, A),
        (0xf3, 0x5e, S4),
        (0xf2, 0x5e, S8),
        (0, 0x5d, A),
        (0x66, 0x5d, A),
        (0xf3, 0x5d, S4),
        (0xf2, 0x5d, S8),
        (0, 0x5f, A),
        (0x66, 0x5f, A),
        (0xf3, 0x5f, S4),
        (0xf2, 0x5f, S8),
        (0, 0x51, A),
        (0x66, 0x51, A),
        (0xf3, 0x51, S4),
        (0xf2, 0x51, S8),
        (0, 0x53, A),
        (0xf3, 0x53, S4),
        (0, 0x52, A),
        (0xf3, 0x52, S4),
        (0, 0x54, A),
        (0x66, 0x54, A),
        (0, 0x55, A),
        (0x66, 0x55, A),
        (0, 0x56, A),
        (0x66, 0x56, A),
        (0, 0x57, A),
        (0x66, 0x57, A),
        (0, 0x14, A),
        (0, 0x15, A),
        (0x66, 0x14, A),
        (0x66, 0x15, A),
        (0, 0x2f, S4),
        (0, 0x2e, S4),
        (0x66, 0x2f, S8),
        (0x66, 0x2e, S8),
        (0, 0xc2, XI(16)),
        (0x66, 0xc2, XI(16)),
        (0xf3, 0xc2, XI(4)),
        (0xf2, 0xc2, XI(8)),
        (0, 0xc6, XI(16)),
        (0x66, 0xc6, XI(16)),
        (0x66, 0x70, XI(16)),
        (0xf2, 0x70, XI(16)),
        (0xf3, 0x70, XI(16)),
        (0xf3, 0x2a, Xg(false)),
        (0xf2, 0x2a, Xg(false)),
        (0x66, 0x6e, Xg(false)),
        (0x66, 0xc4, Xg(true)),
        (0xf3, 0x2d, Gx),
        (0xf3, 0x2c, Gx),
        (0xf2, 0x2d, Gx),
        (0xf2, 0x2c, Gx),
        (0, 0x50, Gxr(false)),
        (0x66, 0x50, Gxr(false)),
        (0x66, 0xd7, Gxr(false)),
        (0x66, 0xc5, Gxr(true)),
        (0xf3, 0x5a, S4),
        (0xf2, 0x5a, S8),
        (0, 0x5a, S8),
        (0x66, 0x5a, A),
        (0, 0x5b, A),
        (0x66, 0x5b, A),
        (0xf3, 0x5b, A),
        (0xf3, 0xe6, S8),
        (0xf2, 0xe6, A),
        (0x66, 0xe6, A),
        (0, 0x28, A),
        (0x66, 0x28, A),
        (0x66, 0x6f, A),
        (0, 0x10, X(16, false)),
        (0x66, 0x10, X(16, false)),
        (0xf3, 0x6f, X(16, false)),
        (0xf3, 0x10, S4),
        (0xf2, 0x10, S8),
        (0xf3, 0x7e, S8),
        (0, 0x12, S8),
        (0, 0x16, S8),
        (0x66, 0x12, XMem),
        (0x66, 0x16, XMem),
        (0, 0x29, St(16, true, true)),
        (0x66, 0x29, St(16, true, true)),
        (0x66, 0x7f, St(16, true, true)),
        (0, 0x2b, St(16, true, false)),
        (0x66, 0xe7, St(16, true, false)),
        (0, 0x11, St(16, false, true)),
        (0x66, 0x11, St(16, false, true)),
        (0xf3, 0x7f, St(16, false, true)),
        (0xf3, 0x11, St(4, false, true)),
        (0xf2, 0x11, St(8, false, true)),
        (0x66, 0xd6, St(8, false, true)),
        (0, 0x13, St(8, false, false)),
        (0, 0x17, St(8, false, false)),
        (0x66, 0x13, St(8, false, false)),
        (0x66, 0x17, St(8, false, false)),
        (0x66, 0x7e, Gst),
        (0, 0xae, Stmxcsr),
        (0x66, 0x71, Shi(2)),
        (0x66, 0x71, Shi(4)),
        (0x66, 0x71, Shi(6)),
        (0x66, 0x72, Shi(2)),
        (0x66, 0x72, Shi(4)),
        (0x66, 0x72, Shi(6)),
        (0x66, 0x73, Shi(2)),
        (0x66, 0x73, Shi(3)),
        (0x66, 0x73, Shi(6)),
        (0x66, 0x73, Shi(7)),
        // Integer SIMD, 66 0F xx, xmm, xmm/m128.
        (0x66, 0xfc, A),
        (0x66, 0xfd, A),
        (0x66, 0xfe, A),
        (0x66, 0xd4, A),
        (0x66, 0xf8, A),
        (0x66, 0xf9, A),
        (0x66, 0xfa, A),
        (0x66, 0xfb, A),
        (0x66, 0xec, A),
        (0x66, 0xed, A),
        (0x66, 0xdc, A),
        (0x66, 0xdd, A),
        (0x66, 0xe8, A),
        (0x66, 0xe9, A),
        (0x66, 0xd8, A),
        (0x66, 0xd9, A),
        (0x66, 0x74, A),
        (0x66, 0x75, A),
        (0x66, 0x76, A),
        (0x66, 0x64, A),
        (0x66, 0x65, A),
        (0x66, 0x66, A),
        (0x66, 0xd5, A),
        (0x66, 0xe5, A),
        (0x66, 0xe4, A),
        (0x66, 0xf4, A),
        (0x66, 0xf5, A),
        (0x66, 0xf1, A),
        (0x66, 0xf2, A),
        (0x66, 0xf3, A),
        (0x66, 0xd1, A),
        (0x66, 0xd2, A),
        (0x66, 0xd3, A),
        (0x66, 0xe1, A),
        (0x66, 0xe2, A),
        (0x66, 0x60, A),
        (0x66, 0x61, A),
        (0x66, 0x62, A),
        (0x66, 0x6c, A),
        (0x66, 0x68, A),
        (0x66, 0x69, A),
        (0x66, 0x6a, A),
        (0x66, 0x6d, A),
        (0x66, 0x63, A),
        (0x66, 0x6b, A),
        (0x66, 0x67, A),
        (0x66, 0xde, A),
        (0x66, 0xda, A),
        (0x66, 0xee, A),
        (0x66, 0xea, A),
        (0x66, 0xe0, A),
        (0x66, 0xe3, A),
        (0x66, 0xf6, A),
        (0x66, 0xdb, A),
        (0x66, 0xdf, A),
        (0x66, 0xeb, A),
        (0x66, 0xef, A),
    ]
};

/// A deterministic generator over one seed.
struct Pick(u64);

impl Pick {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    /// A general-purpose register other than rsp and r15.
    fn gpr(&mut self) -> usize {
        let r = self.next(14) as usize;
        if r >= 4 { r + 1 } else { r }
    }
}

/// The r/m operand: a register or `[r15 + disp8]`.
#[derive(Clone, Copy)]
enum Rm {
    Reg(usize),
    Mem(u8),
}

/// `[prefix] [REX] 0F opcode modrm [disp8] [imm8]`.
fn enc(prefix: u8, w: bool, op: u8, reg: usize, rm: Rm, imm: Option<u8>) -> Vec<u8> {
    let mut v = Vec::new();
    if prefix != 0 {
        v.push(prefix);
    }
    let (b, modrm, disp) = match rm {
        Rm::Reg(r) => (r >= 8, 0xc0 | (r as u8 & 7), None),
        Rm::Mem(d) => (true, 0x47, Some(d)),
    };
    let rex = 0x40 | if w { 8 } else { 0 } | if reg >= 8 { 4 } else { 0 } | if b { 1 } else { 0 };
    if rex != 0x40 {
        v.push(rex);
    }
    v.extend([0x0f, op, modrm | ((reg as u8 & 7) << 3)]);
    v.extend(disp);
    v.extend(imm);
    v
}

/// Size of the buffer r15 points to.
const BUF_LEN: usize = 128;

/// One random SSE instruction.
fn generate(seed: u64) -> Vec<u8> {
    let mut p = Pick(seed | 1);
    let (prefix, op, form) = TABLE[p.next(TABLE.len() as u64) as usize];
    let x = p.next(16) as usize;
    let y = p.next(16) as usize;
    let w = p.next(2) == 1;
    let imm = p.next(256) as u8;
    let mem = p.next(3) == 0;
    // A displacement inside the buffer (disp8 is signed: below 128),
    // 16-byte aligned when asked.
    let disp = |p: &mut Pick, align: bool| {
        if align {
            (p.next(8) * 16) as u8
        } else {
            p.next(113) as u8
        }
    };
    match form {
        Form::X(bytes, align) => {
            let rm = if mem {
                Rm::Mem(disp(&mut p, align && bytes == 16))
            } else {
                Rm::Reg(y)
            };
            enc(prefix, false, op, x, rm, None)
        }
        Form::XMem => enc(prefix, false, op, x, Rm::Mem(disp(&mut p, false)), None),
        Form::XI(bytes) => {
            let rm = if mem {
                Rm::Mem(disp(&mut p, bytes == 16))
            } else {
                Rm::Reg(y)
            };
            // The compares: predicates 0-7 (the other bits are ignored).
            let imm = if op == 0xc2 { imm & 7 } else { imm };
            enc(prefix, false, op, x, rm, Some(imm))
        }
        Form::Shi(n) => {
            // Counts around the lane widths matter most.
            let count = if p.next(2) == 0 { imm & 0x7f } else { imm };
            enc(prefix, false, op, n as usize, Rm::Reg(x), Some(count))
        }
        Form::Gx => {
            let rm = if mem {
                Rm::Mem(disp(&mut p, false))
            } else {
                Rm::Reg(y)
            };
            enc(prefix, w, op, p.gpr(), rm, None)
        }
        Form::Gxr(with_imm) => enc(prefix, w, op, p.gpr(), Rm::Reg(y), with_imm.then_some(imm)),
        Form::Xg(with_imm) => {
            let rm = if mem {
                Rm::Mem(disp(&mut p, false))
            } else {
                Rm::Reg(p.gpr())
            };
            enc(prefix, w && !with_imm, op, x, rm, with_imm.then_some(imm))
        }
        Form::St(bytes, align, reg_ok) => {
            let rm = if mem || !reg_ok {
                Rm::Mem(disp(&mut p, align && bytes == 16))
            } else {
                Rm::Reg(y)
            };
            enc(prefix, false, op, x, rm, None)
        }
        Form::Gst => {
            let rm = if mem {
                Rm::Mem(disp(&mut p, false))
            } else {
                Rm::Reg(p.gpr())
            };
            enc(prefix, w, op, x, rm, None)
        }
        Form::Stmxcsr => enc(prefix, false, op, 3, Rm::Mem(disp(&mut p, false)), None),
    }
}

/// Values that exercise floating point: a 32-bit lane.
fn f32_lane(p: &mut Pick) -> u32 {
    let sign = (p.next(2) as u32) << 31;
    let frac = p.next(1 << 23) as u32;
    sign | match p.next(12) {
        0 => 0,
        1 => 0x7f80_0000,                              // infinity
        2 => 0x7fc0_0000 | (frac & 0x3f_ffff),         // quiet NaN
        3 => 0x7f80_0000 | (frac & 0x3f_ffff).max(1),  // signalling NaN
        4 => frac.max(1),                              // denormal
        5 => 0x3f80_0000 | (frac & 0xf),               // near 1
        6 => 0x4f00_0000 | (frac & 0xff),              // near 2^31
        7 => 0x0080_0000 | (frac & 0xff),              // smallest normals
        8 => 0x7f7f_ffff,                              // largest finite
        9 => ((p.next(40) as u32 + 110) << 23) | frac, // ordinary
        10 => (p.next(64) as f32).to_bits(),           // small integers
        _ => p.next(1 << 32) as u32,
    }
}

/// Values that exercise floating point: a 64-bit lane.
fn f64_lane(p: &mut Pick) -> u64 {
    let sign = p.next(2) << 63;
    let frac = p.next(1 << 52);
    sign | match p.next(12) {
        0 => 0,
        1 => 0x7ff0_0000_0000_0000,
        2 => 0x7ff8_0000_0000_0000 | (frac & 0x7_ffff_ffff_ffff),
        3 => 0x7ff0_0000_0000_0000 | (frac & 0x7_ffff_ffff_ffff).max(1),
        4 => frac.max(1),
        5 => 0x3ff0_0000_0000_0000 | (frac & 0xff),
        6 => 0x43e0_0000_0000_0000 | (frac & 0xfff), // near 2^63
        7 => 0x41e0_0000_0000_0000 | (frac & 0xfff_ffff), // near 2^31
        8 => 0x3690_0000_0000_0000 | frac,           // tiny for f32
        9 => ((p.next(100) + 980) << 52) | frac,
        10 => (p.next(64) as f64).to_bits(),
        _ => p.next(u64::MAX),
    }
}

/// A random XMM register's contents.
fn xmm_value(seed: u64) -> [u64; 2] {
    let mut p = Pick(seed | 1);
    let half = |p: &mut Pick| match p.next(4) {
        0 | 1 => f32_lane(p) as u64 | (f32_lane(p) as u64) << 32,
        2 => f64_lane(p),
        _ => {
            let range = if p.next(2) == 0 { 70 } else { u64::MAX };
            p.next(range)
        }
    };
    [half(&mut p), half(&mut p)]
}

/// A random MXCSR with every exception masked.
fn mxcsr_value(v: u64) -> u64 {
    let flags = v & 0x3f;
    let daz = v & 0x40;
    let rc = (v >> 8) & 3;
    let ftz = (v >> 10) & 1;
    flags | daz | 0x1f80 | rc << 13 | ftz << 15
}

proptest! {
    #![proptest_config(Config {
        cases: 1500,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x7373_6532),
        ..Config::default()
    })]

    #[test]
    fn random_sse_sequences_match_the_host(
        seeds in prop::collection::vec(any::<u64>(), 1..8),
        xmm_seeds in any::<[u64; 16]>(),
        gprs in any::<[u64; 16]>(),
        flags in any::<u64>(),
        csr in any::<u64>(),
        buf in prop::collection::vec(any::<u8>(), BUF_LEN),
    ) {
        let code: Vec<u8> = seeds.iter().flat_map(|&s| generate(s)).collect();
        let mut input = Regs {
            r: gprs,
            flags: flags & ALL,
            mxcsr: mxcsr_value(csr),
            xmm: [[0; 2]; 16],
        };
        for (x, s) in input.xmm.iter_mut().zip(xmm_seeds) {
            *x = xmm_value(s);
        }
        check(&code, &input, &buf);
    }
}

/// Every table row on its own over many seeds (cheap broad coverage).
#[test]
fn every_sse_form_matches_the_host() {
    let mut x = 0x005e_ed0f_55e2_u64;
    for k in 0..(TABLE.len() as u64 * 6) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Pin the table row so that each is covered.
        let row = k % TABLE.len() as u64;
        let mut seed = x;
        let code = loop {
            let mut p = Pick(seed | 1);
            if p.next(TABLE.len() as u64) == row {
                break generate(seed);
            }
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        };
        let mut input = Regs {
            r: std::array::from_fn(|i| x.rotate_left(5 * i as u32)),
            flags: x & ALL,
            mxcsr: mxcsr_value(x >> 7),
            xmm: [[0; 2]; 16],
        };
        for (i, v) in input.xmm.iter_mut().enumerate() {
            *v = xmm_value(x ^ (i as u64) << 40);
        }
        let buf: Vec<u8> = (0..BUF_LEN).map(|i| (x >> (i % 57)) as u8).collect();
        check(&code, &input, &buf);
    }
}

/// A fixed input for the directed tests: every XMM register from
/// [`xmm_value`], a buffer of small floats.
fn fixed_input(seed: u64, mxcsr: u64) -> (Regs, Vec<u8>) {
    let mut input = Regs {
        r: std::array::from_fn(|i| seed.rotate_left(7 * i as u32)),
        flags: 0,
        mxcsr,
        xmm: [[0; 2]; 16],
    };
    for (i, v) in input.xmm.iter_mut().enumerate() {
        *v = xmm_value(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    let buf = (0..BUF_LEN / 4)
        .flat_map(|i| (i as f32 * 0.3 - 7.0).to_bits().to_le_bytes())
        .collect();
    (input, buf)
}

/// The guest sets MXCSR itself (ldmxcsr) to every rounding mode with FTZ
/// and DAZ on and off, computes, and saves MXCSR (stmxcsr).
#[test]
fn ldmxcsr_rounding_modes_ftz_and_daz_match_the_host() {
    // ldmxcsr [r15]; addps xmm0, xmm1; mulsd xmm2, xmm3; divss xmm4, xmm5;
    // cvtsd2si rax, xmm6; cvtps2dq xmm7, xmm8; sqrtpd xmm9, xmm10;
    // cvtsd2ss xmm11, xmm12; subps xmm13, [r15+16]; stmxcsr [r15+4]
    let code = [
        0x41, 0x0f, 0xae, 0x17, 0x0f, 0x58, 0xc1, 0xf2, 0x0f, 0x59, 0xd3, 0xf3, 0x0f, 0x5e, 0xe5,
        0xf2, 0x48, 0x0f, 0x2d, 0xc6, 0x66, 0x41, 0x0f, 0x5b, 0xf8, 0x66, 0x45, 0x0f, 0x51, 0xca,
        0xf2, 0x45, 0x0f, 0x5a, 0xdc, 0x45, 0x0f, 0x5c, 0x6f, 0x10, 0x41, 0x0f, 0xae, 0x5f, 0x04,
    ];
    for k in 0..64u64 {
        // RC from bits 0-1, FTZ bit 2, DAZ bit 3, initial IE/DE bits 4-5.
        let csr = 0x1f80 | (k & 3) << 13 | (k >> 2 & 1) << 15 | (k >> 3 & 1) << 6 | k >> 4;
        let (input, mut buf) = fixed_input(k, 0x1f80);
        buf[..4].copy_from_slice(&(csr as u32).to_le_bytes());
        check(&code, &input, &buf);
    }
}

// ---- regressions (failures the property test found) ----

/// cvtss2si with a memory source names no XMM register; it was not routed
/// to the SSE translator and raised #UD.
#[test]
fn regression_cvtss2si_with_a_memory_source() {
    let (input, buf) = fixed_input(1, 0x1f80);
    // cvtss2si ebx, [r15+0x40]; cvttsd2si rcx, [r15+0x48]
    let code = [
        0xf3, 0x41, 0x0f, 0x2d, 0x5f, 0x40, 0xf2, 0x49, 0x0f, 0x2c, 0x4f, 0x48,
    ];
    check(&code, &input, &buf);
}

// ---- unmasked exceptions ----

thread_local! {
    /// Length of the instruction the SIGFPE handler skips (0: none expected).
    static SKIP: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Set by the handler.
    static FAULTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// SIGFPE from an unmasked SIMD floating-point exception in the snippet:
/// records it and resumes after the faulting instruction. The destination
/// is unchanged and MXCSR keeps the flags the fault set (the kernel
/// restores the interrupted context's MXCSR), which is the state the
/// emulated #XM leaves behind.
extern "C" fn on_sigfpe(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let skip = SKIP.with(|s| s.get());
    if skip == 0 {
        // SAFETY: abort is async-signal-safe.
        unsafe { libc::abort() };
    }
    FAULTED.with(|f| f.set(true));
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: with SA_SIGINFO the third argument is the interrupted
    // context; moving its rip past the faulting instruction resumes there.
    unsafe {
        (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] += skip as i64;
    }
}

/// Runs the one-instruction `snippet` natively; whether it faulted.
fn native_fault(snippet: &[u8], input: &Regs) -> (Regs, bool) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // SAFETY: installs a SIGFPE handler (see `on_sigfpe`) with an empty
        // mask; `sa` is fully initialized (zeroed, then set).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigfpe as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGFPE, &sa, std::ptr::null_mut()), 0);
        }
    });
    SKIP.with(|s| s.set(snippet.len() as u64));
    FAULTED.with(|f| f.set(false));
    let out = native(snippet, input);
    SKIP.with(|s| s.set(0));
    (out, FAULTED.with(|f| f.get()))
}

/// Runs the one-instruction `code` natively and emulated (optimized
/// interpreter and JIT) with CR4.OSXMMEXCPT set: both fault or neither, and
/// the state after agrees. Returns whether it faulted.
fn check_fault(code: &[u8], input: &Regs, buf: &[u8]) -> bool {
    let mut aligned = vec![0u128; BUF_LEN / 16];
    // SAFETY: `aligned` holds BUF_LEN bytes; any pattern is a valid u8.
    let nbuf =
        unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), BUF_LEN) };
    nbuf.copy_from_slice(buf);
    let mut ninput = *input;
    ninput.r[4] = 0;
    ninput.r[15] = nbuf.as_mut_ptr() as u64;
    let (native_out, faulted) = native_fault(code, &ninput);
    for mode in [Mode::InterpOpt, Mode::Jit] {
        let mut want = native_out;
        want.r[4] = 0;
        want.r[15] = 0;
        want.flags &= ALL;
        let mut ebuf = buf.to_vec();
        let mut einput = *input;
        einput.r[15] = BUF;
        let (mut got, halted) = emulate_fault(code, &einput, mode, &mut ebuf, true);
        got.r[4] = 0;
        got.r[15] = 0;
        got.flags &= ALL;
        assert_eq!(
            halted, !faulted,
            "fault for {code:02x?} ({mode:?}) from {input:x?}"
        );
        assert_eq!(
            got, want,
            "state for {code:02x?} ({mode:?}) from {input:x?}"
        );
    }
    faulted
}

/// Single floating-point instructions with random exception masks: where
/// the host traps (#XM), the emulated guest must fault too, with the same
/// MXCSR flags and untouched destination; where it does not, the same
/// results.
#[test]
fn unmasked_exceptions_match_the_host() {
    let fp_rows: Vec<usize> = (0..TABLE.len())
        .filter(|&r| {
            let (_, op, form) = TABLE[r];
            let fp_op = matches!(
                op,
                0x51 | 0x58..=0x5f | 0x2a | 0x2c | 0x2d | 0x2e | 0x2f | 0xc2 | 0xe6
            );
            fp_op && !matches!(form, Form::St(..))
        })
        .collect();
    let mut x = 0x0bad_f00d_u64;
    let mut faults = 0;
    for k in 0..3000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let row = fp_rows[(x >> 33) as usize % fp_rows.len()] as u64;
        let mut seed = x;
        let code = loop {
            let mut p = Pick(seed | 1);
            if p.next(TABLE.len() as u64) == row {
                break generate(seed);
            }
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        };
        // Unmask a random subset of the six exceptions.
        let masks = (x >> 20) & 0x3f;
        let csr = (mxcsr_value(x >> 7) & !(0x3f << 7)) | masks << 7;
        let mut input = Regs {
            r: std::array::from_fn(|i| x.rotate_left(5 * i as u32)),
            flags: x & ALL,
            mxcsr: csr,
            xmm: [[0; 2]; 16],
        };
        input.r[4] = 0;
        for (i, v) in input.xmm.iter_mut().enumerate() {
            *v = xmm_value(x ^ (i as u64 + k) << 40);
        }
        let buf: Vec<u8> = (0..BUF_LEN).map(|i| (x >> (i % 57)) as u8).collect();
        faults += check_fault(&code, &input, &buf) as u32;
    }
    assert!(faults > 100, "only {faults} faults");
}

/// maskmovdqu stores the selected bytes at [rdi].
#[test]
fn maskmovdqu_matches_the_host() {
    for seed in 0..40u64 {
        let (mut input, buf) = fixed_input(seed, 0x1f80);
        // Mask bytes with random top bits.
        input.xmm[2] = [
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            !seed.rotate_left(17),
        ];
        // mov rdi, r15; add rdi, (seed % 100); maskmovdqu xmm1, xmm2; xor edi, edi
        let code = [
            0x4c,
            0x89,
            0xff,
            0x48,
            0x83,
            0xc7,
            (seed % 100) as u8,
            0x66,
            0x0f,
            0xf7,
            0xca,
            0x31,
            0xff,
        ];
        check(&code, &input, &buf);
    }
}

/// Unmasked-exception cases the test above found (each once wrong):
/// an exact tiny result with UE unmasked (FTZ must not apply, and no PE);
/// an underflowing conversion (PE only if inexact with unbounded exponent);
/// and an unmasked UE next to another unmasked exception in a packed op.
#[test]
fn regression_unmasked_underflow_cases() {
    // (code, MXCSR, two XMM registers' contents)
    type Case = (&'static [u8], u64, [(usize, [u64; 2]); 2]);
    let cases: [Case; 3] = [
        // addss xmm13, xmm4: denormal + denormal, exact and tiny.
        (
            &[0xf3, 0x44, 0x0f, 0x58, 0xec],
            0x9392,
            [(13, [0x1b, 0x15]), (4, [0x11, 0x38])],
        ),
        // cvtsd2ss xmm11, xmm2: a double denormal.
        (
            &[0xf2, 0x44, 0x0f, 0x5a, 0xda],
            0x1512,
            [(11, [0x7, 0x3f]), (2, [0x1b, 0x23])],
        ),
        // subps xmm6, xmm1: PE unmasked in one lane, exact tiny in another.
        (
            &[0x0f, 0x5c, 0xf1],
            0xc1ad,
            [
                (6, [0x4f00_0012_ff99_f339, 0x3ff0_0000_0000_0047]),
                (1, [0x3f80_000d_8080_0039, 0x18]),
            ],
        ),
    ];
    for (code, mxcsr, regs) in cases {
        let (mut input, buf) = fixed_input(7, mxcsr);
        for (n, v) in regs {
            input.xmm[n] = v;
        }
        assert!(check_fault(code, &input, &buf), "{code:02x?} faults");
    }
}
