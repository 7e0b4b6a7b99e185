//! MMX, the SSE/SSSE3 mm forms, SSE3 and SSSE3 against the host CPU: the
//! same instruction bytes run natively in-process (a trampoline that loads
//! and saves the general-purpose registers, RFLAGS, MXCSR, xmm0-15 and the
//! x87 state with frstor/fnsave) and through the front end on moat's exec
//! loop (the IR interpreter with and without the optimizer, and the JIT).
//! General-purpose and XMM registers, MXCSR, the arithmetic flags, the x87
//! control and status words (TOP), the tag word, ST0-ST7 (so the mm values
//! and their exponent fields) and a memory buffer must agree bit for bit.
//!
//! Inputs: a random TOP, random tags and random 80-bit register contents
//! (so that the MMX transition and the exponent rule are visible), every
//! x87 and SIMD exception masked (an unmasked one would trap the test
//! process; #MF, #NM and #UD are tested with guests below).

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
const PAGE: usize = 4096;
/// Guest address of the buffer r15 points to.
const BUF: u64 = 0x3000;
const BUF_LEN: usize = 160;

/// The state the trampoline loads and stores.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Regs {
    r: [u64; 16],
    flags: u64,
    mxcsr: u64,
    xmm: [[u64; 2]; 16],
    img: [u8; 108],
    pad: [u8; 4],
}

const FLAGS_OFF: u32 = 128;
const MXCSR_OFF: u32 = 136;
const XMM_OFF: u32 = 144;
const IMG_OFF: u32 = 400;
const _: () = assert!(std::mem::offset_of!(Regs, img) == IMG_OFF as usize);

/// The x87 state compared: CW, SW, abridged tags, ST0-ST7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fpu {
    cw: u16,
    sw: u16,
    tags: u8,
    st: [[u8; 10]; 8],
}

fn fpu_of_image(img: &[u8; 108]) -> Fpu {
    let tw = u16::from_le_bytes([img[8], img[9]]);
    Fpu {
        cw: u16::from_le_bytes([img[0], img[1]]),
        sw: u16::from_le_bytes([img[4], img[5]]),
        tags: (0..8).fold(0, |a, p| {
            if tw >> (2 * p) & 3 != 3 {
                a | 1 << p
            } else {
                a
            }
        }),
        st: std::array::from_fn(|i| img[28 + 10 * i..38 + 10 * i].try_into().unwrap()),
    }
}

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

/// Saves callee-saved registers, the host MXCSR and x87 state; loads
/// everything from the `Regs` in rdi; runs the snippet; stores it all back
/// and restores the host's.
fn trampoline(snippet: &[u8]) -> Vec<u8> {
    // push rbx, rbp, r12-r15, rdi; sub rsp, 8; stmxcsr [rsp]
    let mut c = vec![
        0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x57,
    ];
    c.extend([0x48, 0x83, 0xec, 0x08, 0x0f, 0xae, 0x1c, 0x24]);
    // sub rsp, 112; fnsave [rsp]; frstor [rdi + IMG_OFF]
    c.extend([0x48, 0x83, 0xec, 0x70, 0xdd, 0x34, 0x24]);
    c.extend(rdi_disp(&[], false, &[0xdd], 4, IMG_OFF));
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
    c.extend([0x48, 0x8b, 0xbc, 0x24, 0x88, 0, 0, 0]); // mov rdi, [rsp+136]
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
    c.extend(rdi_disp(&[], false, &[0xdd], 6, IMG_OFF)); // fnsave [rdi+IMG]
    // frstor [rsp]; add rsp, 112
    c.extend([0xdd, 0x24, 0x24, 0x48, 0x83, 0xc4, 0x70]);
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
    // rsp, the host MXCSR and x87 state restored, DF cleared) and takes a
    // `Regs`; the snippets are user-mode MMX/SSE instructions with every
    // exception masked and none pending, touching memory only through r15
    // (and rdi, set from r15), which points to a live, 16-byte aligned
    // buffer.
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

/// Runs `snippet` (then hlt) in a 64-bit ring-0 guest with CR4.OSFXSR and
/// `cr0`'s extra bits; returns the state and how the run ended.
fn emulate(
    snippet: &[u8],
    input: &Regs,
    engine: Engine,
    opt: bool,
    buf: &mut [u8],
    cr0: u64,
) -> (Regs, Option<VcpuExit>) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    mem.write_slice(buf, GuestAddress(BUF)).unwrap();
    let mut code = snippet.to_vec();
    code.push(0xf4);
    mem.write_slice(&code, GuestAddress(0x1000)).unwrap();
    let mut st = common::flat64_state(0x1000);
    st.rflags = 2 | (input.flags & ALL);
    st.cr4 = 1 << 9;
    st.cr0 |= cr0;
    st.gprs = input.r;
    st.gprs[4] = 0x8000;
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
        .unwrap();
    cpu.state.xmm[..16].copy_from_slice(&input.xmm);
    cpu.state.mxcsr = input.mxcsr;
    let f = fpu_of_image(&input.img);
    cpu.state.fpu_fcw = f.cw as u64;
    cpu.state.fpu_fsw = f.sw as u64;
    cpu.state.fpu_ftw = f.tags as u64;
    for (i, r) in f.st.iter().enumerate() {
        let mut lo = [0u8; 8];
        lo.copy_from_slice(&r[..8]);
        cpu.state.fpu_st[i] = [
            u64::from_le_bytes(lo),
            u16::from_le_bytes([r[8], r[9]]) as u64,
        ];
    }
    let mut vm = TestVm::with_engine(cpu, mem.clone(), engine);
    vm.optimize = opt;
    let exit = vm.run(1000);
    let out = vm.state();
    mem.read_slice(buf, GuestAddress(BUF)).unwrap();
    let s = &vm.cpu().state;
    let mut regs = Regs {
        r: out.gprs,
        flags: out.rflags,
        mxcsr: s.mxcsr,
        xmm: [[0; 2]; 16],
        img: [0; 108],
        pad: [0; 4],
    };
    regs.xmm.copy_from_slice(&s.xmm[..16]);
    regs.img[0..2].copy_from_slice(&(s.fpu_fcw as u16).to_le_bytes());
    regs.img[4..6].copy_from_slice(&(s.fpu_fsw as u16).to_le_bytes());
    let tw = (0..8).fold(0u16, |tw, p| {
        if s.fpu_ftw >> p & 1 != 0 {
            tw
        } else {
            tw | 3 << (2 * p)
        }
    });
    regs.img[8..10].copy_from_slice(&tw.to_le_bytes());
    for (i, r) in s.fpu_st.iter().enumerate() {
        regs.img[28 + 10 * i..36 + 10 * i].copy_from_slice(&r[0].to_le_bytes());
        regs.img[36 + 10 * i..38 + 10 * i].copy_from_slice(&(r[1] as u16).to_le_bytes());
    }
    (regs, exit)
}

/// What is compared.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    r: [u64; 16],
    flags: u64,
    mxcsr: u64,
    xmm: [[u64; 2]; 16],
    fpu: Fpu,
}

fn seen(r: &Regs) -> Seen {
    let mut g = r.r;
    g[4] = 0;
    g[15] = 0;
    g[7] = 0; // rdi may point at the buffer
    let mut fpu = fpu_of_image(&r.img);
    // The full tag word is not compared; empty registers' contents are
    // whatever the last value was, which both sides keep.
    fpu.sw &= !0x8000; // B mirrors ES
    Seen {
        r: g,
        flags: r.flags & ALL,
        mxcsr: r.mxcsr,
        xmm: r.xmm,
        fpu,
    }
}

/// Runs `snippet` both ways (r15 and rdi → a copy of `buf`) and compares.
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
    ninput.r[7] = nbuf.as_mut_ptr() as u64 + 8;
    let want = seen(&native(snippet, &ninput));
    for (engine, opt) in [
        (Engine::Interp, false),
        (Engine::Interp, true),
        (Engine::Jit, true),
    ] {
        let mut ebuf = buf.to_vec();
        let mut einput = input;
        einput.r[15] = BUF;
        einput.r[7] = BUF + 8;
        let (got, exit) = emulate(snippet, &einput, engine, opt, &mut ebuf, 0);
        assert!(
            matches!(exit, Some(VcpuExit::Halted { .. })),
            "{exit:?} for {snippet:02x?}"
        );
        assert_eq!(
            seen(&got),
            want,
            "state for {snippet:02x?} ({engine:?}, opt {opt}) from {input:x?}"
        );
        assert_eq!(
            &ebuf[..],
            &nbuf[..],
            "memory for {snippet:02x?} ({engine:?})"
        );
    }
}

// ---- instruction generation ----

/// How an instruction's operands are encoded.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// mm, mm/m
    Mm,
    /// mm, mm/m, imm8
    MmI,
    /// shift group /n on an mm, imm8
    Shi(u8),
    /// mm, r/m32/64 (movd/movq)
    MmG,
    /// r/m32/64, mm (movd/movq)
    GMm,
    /// mm/m64, mm (`.0`: a register destination allowed)
    StMm(bool),
    /// r32, mm register (`.0`: with an imm8)
    GMmR(bool),
    /// pinsrw mm, r32/m16, imm8
    Pinsrw,
    /// xmm, mm/m64 (`.0`: memory allowed)
    XMm(bool),
    /// mm, xmm/m (`.0`: memory allowed; `.1`: aligned 16-byte memory)
    MmX(bool, bool),
    /// no operands
    None,
    /// maskmovq mm, mm (stores at rdi)
    Maskmov,
    /// xmm, xmm/m128 (`.0`: aligned memory; `.1`: memory only)
    X(bool, bool),
    /// xmm, xmm/m128, imm8
    XI,
    /// x87 store, memory only, modrm.reg `.0`
    X87(u8),
}

/// (mandatory prefix, opcode bytes, form)
const TABLE: &[(u8, &[u8], Form)] = {
    use Form::*;
    &[
        (0, &[0x0f, 0xfc], Mm),
        (0, &[0x0f, 0xfd], Mm),
        (0, &[0x0f, 0xfe], Mm),
        (0, &[0x0f, 0xd4], Mm),
        (0, &[0x0f, 0xf8], Mm),
        (0, &[0x0f, 0xf9], Mm),
        (0, &[0x0f, 0xfa], Mm),
        (0, &[0x0f, 0xfb], Mm),
        (0, &[0x0f, 0xec], Mm),
        (0, &[0x0f, 0xed], Mm),
        (0, &[0x0f, 0xdc], Mm),
        (0, &[0x0f, 0xdd], Mm),
        (0, &[0x0f, 0xe8], Mm),
        (0, &[0x0f, 0xe9], Mm),
        (0, &[0x0f, 0xd8], Mm),
        (0, &[0x0f, 0xd9], Mm),
        (0, &[0x0f, 0x74], Mm),
        (0, &[0x0f, 0x75], Mm),
        (0, &[0x0f, 0x76], Mm),
        (0, &[0x0f, 0x64], Mm),
        (0, &[0x0f, 0x65], Mm),
        (0, &[0x0f, 0x66], Mm),
        (0, &[0x0f, 0xd5], Mm),
        (0, &[0x0f, 0xe5], Mm),
        (0, &[0x0f, 0xe4], Mm),
        (0, &[0x0f, 0xf4], Mm),
        (0, &[0x0f, 0xf5], Mm),
        (0, &[0x0f, 0xdb], Mm),
        (0, &[0x0f, 0xdf], Mm),
        (0, &[0x0f, 0xeb], Mm),
        (0, &[0x0f, 0xef], Mm),
        (0, &[0x0f, 0xf1], Mm),
        (0, &[0x0f, 0xf2], Mm),
        (0, &[0x0f, 0xf3], Mm),
        (0, &[0x0f, 0xd1], Mm),
        (0, &[0x0f, 0xd2], Mm),
        (0, &[0x0f, 0xd3], Mm),
        (0, &[0x0f, 0xe1], Mm),
        (0, &[0x0f, 0xe2], Mm),
        (0, &[0x0f, 0x60], Mm),
        (0, &[0x0f, 0x61], Mm),
        (0, &[0x0f, 0x62], Mm),
        (0, &[0x0f, 0x68], Mm),
        (0, &[0x0f, 0x69], Mm),
        (0, &[0x0f, 0x6a], Mm),
        (0, &[0x0f, 0x63], Mm),
        (0, &[0x0f, 0x6b], Mm),
        (0, &[0x0f, 0x67], Mm),
        (0, &[0x0f, 0xde], Mm),
        (0, &[0x0f, 0xda], Mm),
        (0, &[0x0f, 0xee], Mm),
        (0, &[0x0f, 0xea], Mm),
        (0, &[0x0f, 0xe0], Mm),
        (0, &[0x0f, 0xe3], Mm),
        (0, &[0x0f, 0xf6], Mm),
        (0, &[0x0f, 0x70], MmI),
        (0, &[0x0f, 0x71], Shi(2)),
        (0, &[0x0f, 0x71], Shi(4)),
        (0, &[0x0f, 0x71], Shi(6)),
        (0, &[0x0f, 0x72], Shi(2)),
        (0, &[0x0f, 0x72], Shi(4)),
        (0, &[0x0f, 0x72], Shi(6)),
        (0, &[0x0f, 0x73], Shi(2)),
        (0, &[0x0f, 0x73], Shi(6)),
        (0, &[0x0f, 0x6e], MmG),
        (0, &[0x0f, 0x7e], GMm),
        (0, &[0x0f, 0x6f], Mm),
        (0, &[0x0f, 0x7f], StMm(true)),
        (0, &[0x0f, 0xe7], StMm(false)),
        (0, &[0x0f, 0xd7], GMmR(false)),
        (0, &[0x0f, 0xc5], GMmR(true)),
        (0, &[0x0f, 0xc4], Pinsrw),
        (0, &[0x0f, 0x77], None),
        (0, &[0x0f, 0xf7], Maskmov),
        (0, &[0x0f, 0x2a], XMm(true)),
        (0x66, &[0x0f, 0x2a], XMm(true)),
        (0xf3, &[0x0f, 0xd6], XMm(false)),
        (0, &[0x0f, 0x2d], MmX(true, false)),
        (0, &[0x0f, 0x2c], MmX(true, false)),
        (0x66, &[0x0f, 0x2d], MmX(true, true)),
        (0x66, &[0x0f, 0x2c], MmX(true, true)),
        (0xf2, &[0x0f, 0xd6], MmX(false, false)),
        // SSSE3, mm forms
        (0, &[0x0f, 0x38, 0x00], Mm),
        (0, &[0x0f, 0x38, 0x01], Mm),
        (0, &[0x0f, 0x38, 0x02], Mm),
        (0, &[0x0f, 0x38, 0x03], Mm),
        (0, &[0x0f, 0x38, 0x04], Mm),
        (0, &[0x0f, 0x38, 0x05], Mm),
        (0, &[0x0f, 0x38, 0x06], Mm),
        (0, &[0x0f, 0x38, 0x07], Mm),
        (0, &[0x0f, 0x38, 0x08], Mm),
        (0, &[0x0f, 0x38, 0x09], Mm),
        (0, &[0x0f, 0x38, 0x0a], Mm),
        (0, &[0x0f, 0x38, 0x0b], Mm),
        (0, &[0x0f, 0x38, 0x1c], Mm),
        (0, &[0x0f, 0x38, 0x1d], Mm),
        (0, &[0x0f, 0x38, 0x1e], Mm),
        (0, &[0x0f, 0x3a, 0x0f], MmI),
        // SSSE3, xmm forms
        (0x66, &[0x0f, 0x38, 0x00], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x01], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x02], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x03], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x04], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x05], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x06], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x07], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x08], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x09], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x0a], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x0b], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x1c], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x1d], X(true, false)),
        (0x66, &[0x0f, 0x38, 0x1e], X(true, false)),
        (0x66, &[0x0f, 0x3a, 0x0f], XI),
        // SSE3
        (0x66, &[0x0f, 0xd0], X(true, false)),
        (0xf2, &[0x0f, 0xd0], X(true, false)),
        (0x66, &[0x0f, 0x7c], X(true, false)),
        (0xf2, &[0x0f, 0x7c], X(true, false)),
        (0x66, &[0x0f, 0x7d], X(true, false)),
        (0xf2, &[0x0f, 0x7d], X(true, false)),
        (0xf3, &[0x0f, 0x16], X(true, false)),
        (0xf3, &[0x0f, 0x12], X(true, false)),
        (0xf2, &[0x0f, 0x12], X(false, false)),
        (0xf2, &[0x0f, 0xf0], X(false, true)),
        (0, &[0xdf], X87(1)),
        (0, &[0xdb], X87(1)),
        (0, &[0xdd], X87(1)),
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
    /// A general-purpose register other than rsp, rdi and r15.
    fn gpr(&mut self) -> usize {
        [0, 1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 13, 14][self.next(13) as usize]
    }
}

/// The r/m operand: a register or `[r15 + disp8]`.
#[derive(Clone, Copy)]
enum Rm {
    Reg(usize),
    Mem(u8),
}

/// `[prefix] [REX] opcode modrm [disp8] [imm8]`.
fn enc(prefix: u8, w: bool, op: &[u8], reg: usize, rm: Rm, imm: Option<u8>) -> Vec<u8> {
    let mut v = Vec::new();
    if prefix != 0 {
        v.push(prefix);
    }
    let (b, modrm, disp) = match rm {
        Rm::Reg(r) => (r >= 8, 0xc0 | (r as u8 & 7), Option::None),
        Rm::Mem(d) => (true, 0x47, Some(d)),
    };
    let rex = 0x40 | if w { 8 } else { 0 } | if reg >= 8 { 4 } else { 0 } | if b { 1 } else { 0 };
    if rex != 0x40 {
        v.push(rex);
    }
    v.extend_from_slice(op);
    v.push(modrm | ((reg as u8 & 7) << 3));
    v.extend(disp);
    v.extend(imm);
    v
}

/// Row `row` with operands drawn from `seed`.
fn generate_row(row: usize, seed: u64) -> Vec<u8> {
    let mut p = Pick(seed | 1);
    let (prefix, op, form) = TABLE[row];
    let mm = p.next(8) as usize;
    let mm2 = p.next(8) as usize;
    let x = p.next(16) as usize;
    let w = p.next(2) == 1;
    let imm = p.next(256) as u8;
    let mem = p.next(3) == 0;
    let disp = |p: &mut Pick, align: bool| {
        if align {
            (p.next(8) * 16) as u8
        } else {
            p.next(113) as u8
        }
    };
    let mrm = |p: &mut Pick, r: usize| {
        if mem {
            Rm::Mem(disp(p, false))
        } else {
            Rm::Reg(r)
        }
    };
    match form {
        Form::Mm => {
            let rm = mrm(&mut p, mm2);
            enc(prefix, false, op, mm, rm, Option::None)
        }
        Form::MmI => {
            let rm = mrm(&mut p, mm2);
            let imm = if op.len() == 3 { imm & 0x1f } else { imm };
            enc(prefix, false, op, mm, rm, Some(imm))
        }
        Form::Shi(n) => {
            let count = if p.next(2) == 0 { imm & 0x7f } else { imm };
            enc(prefix, false, op, n as usize, Rm::Reg(mm), Some(count))
        }
        Form::MmG | Form::GMm => {
            let g = p.gpr();
            let rm = mrm(&mut p, g);
            enc(prefix, w, op, mm, rm, Option::None)
        }
        Form::StMm(reg_ok) => {
            let rm = if mem || !reg_ok {
                Rm::Mem(disp(&mut p, false))
            } else {
                Rm::Reg(mm2)
            };
            enc(prefix, false, op, mm, rm, Option::None)
        }
        Form::GMmR(with_imm) => enc(prefix, w, op, p.gpr(), Rm::Reg(mm), with_imm.then_some(imm)),
        Form::Pinsrw => {
            let g = p.gpr();
            let rm = mrm(&mut p, g);
            enc(prefix, false, op, mm, rm, Some(imm))
        }
        Form::XMm(mem_ok) => {
            let rm = if mem && mem_ok {
                Rm::Mem(disp(&mut p, false))
            } else {
                Rm::Reg(mm)
            };
            enc(prefix, false, op, x, rm, Option::None)
        }
        Form::MmX(mem_ok, align) => {
            let rm = if mem && mem_ok {
                Rm::Mem(disp(&mut p, align))
            } else {
                Rm::Reg(x)
            };
            enc(prefix, false, op, mm, rm, Option::None)
        }
        Form::None => vec![0x0f, 0x77],
        Form::Maskmov => enc(prefix, false, op, mm, Rm::Reg(mm2), Option::None),
        Form::X(align, mem_only) => {
            let rm = if mem || mem_only {
                Rm::Mem(disp(&mut p, align))
            } else {
                Rm::Reg(p.next(16) as usize)
            };
            enc(prefix, false, op, x, rm, Option::None)
        }
        Form::XI => {
            let rm = if mem {
                Rm::Mem(disp(&mut p, true))
            } else {
                Rm::Reg(p.next(16) as usize)
            };
            enc(prefix, false, op, x, rm, Some(imm & 0x3f))
        }
        Form::X87(reg) => enc(
            prefix,
            false,
            op,
            reg as usize,
            Rm::Mem(disp(&mut p, false)),
            Option::None,
        ),
    }
}

fn generate(seed: u64) -> Vec<u8> {
    let mut p = Pick(seed | 1);
    let row = p.next(TABLE.len() as u64) as usize;
    generate_row(row, p.next(u64::MAX))
}

/// A random input: registers, flags, MXCSR (masked), and an x87 state with
/// a random TOP, tags and contents, every exception masked and none
/// pending.
fn input(seed: u64, gprs: [u64; 16], xmm: [[u64; 2]; 16]) -> Regs {
    let mut p = Pick(seed | 1);
    let mut img = [0u8; 108];
    let cw: u16 = 0x3f | (p.next(4) as u16) << 8 | (p.next(4) as u16) << 10 | 0x40;
    let sw: u16 = (p.next(8) as u16) << 11 | (p.next(16) as u16 & 0x4700) | (p.next(64) as u16);
    img[0..2].copy_from_slice(&cw.to_le_bytes());
    img[4..6].copy_from_slice(&sw.to_le_bytes());
    let tags = p.next(256);
    let tw = (0..8).fold(0u16, |tw, k| {
        if tags >> k & 1 != 0 {
            tw
        } else {
            tw | 3 << (2 * k)
        }
    });
    img[8..10].copy_from_slice(&tw.to_le_bytes());
    for i in 0..8 {
        let m = p.next(u64::MAX) | if p.next(2) == 0 { 1 << 63 } else { 0 };
        let e = match p.next(4) {
            0 => 0xffff,
            1 => 0x3fff + p.next(64) as u16,
            2 => 0x7fff,
            _ => p.next(0x10000) as u16,
        };
        img[28 + 10 * i..36 + 10 * i].copy_from_slice(&m.to_le_bytes());
        img[36 + 10 * i..38 + 10 * i].copy_from_slice(&e.to_le_bytes());
    }
    let csr = p.next(u64::MAX);
    Regs {
        r: gprs,
        flags: p.next(u64::MAX) & ALL,
        mxcsr: (csr & 0x3f) | (csr & 0x40) | 0x1f80 | (csr >> 8 & 3) << 13 | (csr >> 10 & 1) << 15,
        xmm,
        img,
        pad: [0; 4],
    }
}

fn host_has(row: usize) -> bool {
    let (prefix, op, _) = TABLE[row];
    let ssse3 = op.len() == 3;
    let sse3 = matches!(
        (prefix, op),
        (0x66 | 0xf2, [0x0f, 0xd0 | 0x7c | 0x7d])
            | (0xf3, [0x0f, 0x16 | 0x12])
            | (0xf2, [0x0f, 0x12 | 0xf0])
            | (0, [0xdf | 0xdb | 0xdd])
    );
    (!ssse3 || std::arch::is_x86_feature_detected!("ssse3"))
        && (!sse3 || std::arch::is_x86_feature_detected!("sse3"))
}

proptest! {
    #![proptest_config(Config {
        cases: 600,
        failure_persistence: Option::None,
        rng_seed: RngSeed::Fixed(0x6d6d_7833),
        ..Config::default()
    })]

    #[test]
    fn random_mmx_sequences_match_the_host(
        seeds in prop::collection::vec(any::<u64>(), 1..6),
        state in any::<u64>(),
        gprs in any::<[u64; 16]>(),
        xmm in any::<[[u64; 2]; 16]>(),
        buf in prop::collection::vec(any::<u8>(), BUF_LEN),
    ) {
        let code: Vec<u8> = seeds
            .iter()
            .filter(|&&s| host_has(Pick(s | 1).next(TABLE.len() as u64) as usize))
            .flat_map(|&s| generate(s))
            .collect();
        check(&code, &input(state, gprs, xmm), &buf);
    }
}

/// Every table row on its own over several seeds.
#[test]
fn every_form_matches_the_host() {
    let mut x = 0x6d6d_7830_u64;
    for round in 0..6u64 {
        for row in 0..TABLE.len() {
            if !host_has(row) {
                continue;
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let code = generate_row(row, x ^ round);
            let mut p = Pick(x | 1);
            let gprs: [u64; 16] = std::array::from_fn(|_| p.next(u64::MAX));
            let xmm: [[u64; 2]; 16] = std::array::from_fn(|_| [p.next(u64::MAX), p.next(u64::MAX)]);
            let buf: Vec<u8> = (0..BUF_LEN).map(|_| p.next(256) as u8).collect();
            check(&code, &input(x, gprs, xmm), &buf);
        }
    }
}

// ---- faults ----

/// Runs `code` (then hlt) with CR0 |= `cr0`, CR4 = `cr4` and the x87
/// control and status words, through an IDT whose handler for vector v
/// loads v into eax and halts; returns the vector taken, or `None` if the
/// code reached its own hlt. Also returns the x87 TOP and tag word after.
fn fault(code: &[u8], cr0: u64, cr4: u64, cw: u64, sw: u64) -> (Option<u8>, u64, u64) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let mut c = code.to_vec();
    c.push(0xf4);
    mem.write_slice(&c, GuestAddress(0x1000)).unwrap();
    for v in 0..32u64 {
        let handler = 0x5000 + 16 * v;
        let mut h = vec![0xb8];
        h.extend((v as u32).to_le_bytes());
        h.push(0xf4);
        mem.write_slice(&h, GuestAddress(handler)).unwrap();
        let lo = (handler & 0xffff) | 8 << 16 | 0x8e00 << 32 | (handler >> 16 & 0xffff) << 48;
        let hi = handler >> 32;
        mem.write_obj(lo, GuestAddress(0x4000 + 16 * v)).unwrap();
        mem.write_obj(hi, GuestAddress(0x4008 + 16 * v)).unwrap();
    }
    // A GDT with the 64-bit code segment the gates name (selector 8).
    mem.write_obj(0x00af_9a00_0000_ffff_u64, GuestAddress(0x6008))
        .unwrap();
    let mut st = common::flat64_state(0x1000);
    st.gdt.base = 0x6000;
    st.gdt.limit = 0x17;
    st.cr0 |= cr0;
    st.cr4 = cr4;
    st.idt.base = 0x4000;
    st.idt.limit = 32 * 16 - 1;
    st.gprs[0] = 0xdead;
    st.gprs[4] = 0x8000;
    st.gprs[15] = BUF;
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
        .unwrap();
    cpu.state.fpu_fcw = cw;
    cpu.state.fpu_fsw = sw;
    let mut vm = TestVm::new(cpu, mem);
    let exit = vm.run(100);
    assert!(
        matches!(exit, Some(VcpuExit::Halted { .. })),
        "{exit:?} for {code:02x?}"
    );
    let rax = vm.state().gprs[0];
    let s = &vm.cpu().state;
    let top = s.fpu_fsw >> 11 & 7;
    let v = if rax == 0xdead { None } else { Some(rax as u8) };
    (v, top, s.fpu_ftw)
}

#[test]
fn mmx_faults() {
    const EM: u64 = 4;
    const TS: u64 = 8;
    const OSFXSR: u64 = 1 << 9;
    const NM: Option<u8> = Some(7);
    const UD: Option<u8> = Some(6);
    const MF: Option<u8> = Some(16);
    let paddb = [0x0f, 0xfc, 0xc1];
    let emms = [0x0f, 0x77];
    let movq_load = [0x41, 0x0f, 0x6f, 0x07]; // movq mm0, [r15]
    let cvtpi2ps_mem = [0x41, 0x0f, 0x2a, 0x07]; // cvtpi2ps xmm0, [r15]
    let movq2dq = [0xf3, 0x0f, 0xd6, 0xc1];
    let top3 = 3 << 11;
    // Plain runs: TOP 0, tags valid; emms: empty.
    assert_eq!(fault(&paddb, 0, OSFXSR, 0x37f, top3), (None, 0, 0xff));
    assert_eq!(fault(&emms, 0, OSFXSR, 0x37f, top3), (None, 0, 0));
    // MMX does not need CR4.OSFXSR; movq2dq (an SSE2 instruction) does.
    assert_eq!(fault(&paddb, 0, 0, 0x37f, 0).0, None);
    assert_eq!(fault(&movq2dq, 0, 0, 0x37f, 0).0, UD);
    // CR0.EM: #UD (before TS); CR0.TS: #NM; nothing changes.
    assert_eq!(fault(&paddb, EM | TS, OSFXSR, 0x37f, top3), (UD, 3, 0));
    assert_eq!(fault(&paddb, TS, OSFXSR, 0x37f, top3), (NM, 3, 0));
    assert_eq!(fault(&emms, TS, OSFXSR, 0x37f, 0).0, NM);
    // A pending unmasked x87 exception (ZE with ES): #MF, state unchanged.
    let pending = top3 | 0x80 | 4;
    for code in [&paddb[..], &emms, &movq_load] {
        assert_eq!(
            fault(code, 0, OSFXSR, 0x37b, pending),
            (MF, 3, 0),
            "{code:02x?}"
        );
    }
    // Masked flags are not pending.
    assert_eq!(fault(&paddb, 0, OSFXSR, 0x37f, top3 | 4).0, None);
    // cvtpi2ps from memory is not an MMX instruction: no #MF, no transition.
    assert_eq!(
        fault(&cvtpi2ps_mem, 0, OSFXSR, 0x37b, pending),
        (None, 3, 0)
    );
}
