//! The x87 FPU against the host CPU: every x87 instruction moat handles
//! (found by decoding every D8-DF opcode with a register operand and with
//! an `[r15]` memory operand) runs natively in-process, between an `frstor`
//! and an `fnsave` of the same state image, and through the front end on
//! moat's exec loop (the IR interpreter with and without the optimizer, and
//! the JIT). The control word, status word, tag word, ST0-ST7, RAX, the
//! arithmetic flags and a memory buffer must agree bit for bit.
//!
//! Register contents are drawn from the values that matter (zeros,
//! denormals, pseudo-denormals, unnormals, infinities, pseudo-infinities,
//! quiet and signalling NaNs, the indefinite, ordinary and extreme values);
//! the memory buffer holds such values as m32/m64/m80 too, or random bytes;
//! the control word has every precision and rounding mode, with every
//! exception masked (an unmasked one would trap the test process: the #MF
//! path is tested with a guest instead).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed
#![cfg(target_arch = "x86_64")]

mod common;

use accel_tcg::guest::GuestCpu;
use common::{Engine, TestVm};
use frontend_x86::X86Cpu;
use frontend_x86::translate::x87::spec;
use iced_x86::{Code, Decoder, DecoderOptions};
use machine::VcpuExit;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The six arithmetic flags.
const ALL: u64 = 0x8d5;
const PAGE: usize = 4096;
/// Guest address of the buffer r15 points to.
const BUF: u64 = 0x3000;
const BUF_LEN: usize = 128;

/// What the trampoline loads and stores.
#[repr(C)]
#[derive(Clone, Copy)]
struct Io {
    img: [u8; 108],
    _pad: [u8; 4],
    mem: u64,
    flags: u64,
    rax: u64,
}

/// The x87 state compared: CW, SW, abridged tags, ST0-ST7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fpu {
    cw: u16,
    sw: u16,
    tags: u8,
    st: [[u8; 10]; 8],
    flags: u64,
    rax: u64,
}

fn fpu_of_image(img: &[u8; 108], flags: u64, rax: u64) -> Fpu {
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
        flags: flags & ALL,
        rax,
    }
}

/// The trampoline: saves the host's x87 state, loads the image from the
/// `Io` in rdi, r15 and the flags, runs the snippet, stores the flags,
/// rax and the state image back, and restores the host's state.
fn trampoline(snippet: &[u8]) -> Vec<u8> {
    let mut c = vec![0x53, 0x41, 0x57]; // push rbx; push r15
    c.extend([0x48, 0x83, 0xec, 0x70]); // sub rsp, 112
    c.extend([0xdd, 0x34, 0x24]); // fnsave [rsp]
    c.extend([0xdd, 0x27]); // frstor [rdi]
    c.extend([0x4c, 0x8b, 0x7f, 0x70]); // mov r15, [rdi+112]
    c.extend([0x31, 0xc0]); // xor eax, eax
    c.extend([0xff, 0x77, 0x78, 0x9d]); // push [rdi+120]; popfq
    c.extend_from_slice(snippet);
    c.extend([0x9c, 0x8f, 0x47, 0x78]); // pushfq; pop [rdi+120]
    c.extend([0x48, 0x89, 0x87, 0x80, 0, 0, 0]); // mov [rdi+128], rax
    c.extend([0xdd, 0x37]); // fnsave [rdi]
    c.extend([0xdd, 0x24, 0x24]); // frstor [rsp]
    c.extend([0x48, 0x83, 0xc4, 0x70]); // add rsp, 112
    c.extend([0x41, 0x5f, 0x5b, 0xfc, 0xc3]); // pop r15; pop rbx; cld; ret
    c
}

fn native(snippet: &[u8], io: &mut Io) {
    let code = trampoline(snippet);
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
    // SAFETY: the page is ours, written and then made executable. The
    // trampoline follows the SysV ABI (rbx, r15 and rsp restored, the host
    // x87 state saved and restored, DF cleared); the snippet is one x87
    // instruction with every exception masked, touching memory only at r15
    // (a live buffer of BUF_LEN bytes).
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), page.cast::<u8>(), code.len());
        assert_eq!(
            libc::mprotect(page, PAGE, libc::PROT_READ | libc::PROT_EXEC),
            0
        );
        let f: extern "C" fn(*mut Io) = std::mem::transmute(page);
        f(io);
        libc::munmap(page, PAGE);
    }
}

/// Runs `snippet` (then hlt) in a 64-bit guest from the state in `img`.
fn emulate(
    snippet: &[u8],
    img: &[u8; 108],
    flags: u64,
    engine: Engine,
    opt: bool,
    buf: &mut [u8],
) -> Fpu {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    mem.write_slice(buf, GuestAddress(BUF)).unwrap();
    let mut code = snippet.to_vec();
    code.push(0xf4);
    mem.write_slice(&code, GuestAddress(0x1000)).unwrap();
    let mut st = common::flat64_state(0x1000);
    st.rflags = 2 | (flags & ALL);
    st.gprs[15] = BUF;
    st.gprs[4] = 0x8000;
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
        .unwrap();
    let f = fpu_of_image(img, 0, 0);
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
    let exit = vm.run(100);
    assert!(
        matches!(exit, Some(VcpuExit::Halted { .. })),
        "{exit:?} for {snippet:02x?}"
    );
    let out = vm.state();
    mem.read_slice(buf, GuestAddress(BUF)).unwrap();
    let s = &vm.cpu().state;
    Fpu {
        cw: s.fpu_fcw as u16,
        sw: s.fpu_fsw as u16,
        tags: s.fpu_ftw as u8,
        st: std::array::from_fn(|i| {
            let mut r = [0u8; 10];
            r[..8].copy_from_slice(&s.fpu_st[i][0].to_le_bytes());
            r[8..].copy_from_slice(&(s.fpu_st[i][1] as u16).to_le_bytes());
            r
        }),
        flags: out.rflags & ALL,
        rax: out.gprs[0],
    }
}

/// Every x87 instruction moat handles, as bytes with `[r15]` for memory.
fn snippets() -> Vec<(Vec<u8>, Code)> {
    let mut v = Vec::new();
    let mut cands: Vec<Vec<u8>> = Vec::new();
    for op in 0xd8u8..=0xdf {
        for modrm in 0xc0u8..=0xff {
            cands.push(vec![op, modrm]);
        }
        for reg in 0..8u8 {
            cands.push(vec![0x41, op, reg << 3 | 7]);
            cands.push(vec![0x66, 0x41, op, reg << 3 | 7]);
        }
    }
    cands.push(vec![0x9b]);
    cands.push(vec![0xdf, 0xe0]);
    for c in cands {
        let mut d = Decoder::new(64, &c, DecoderOptions::NONE);
        let i = d.decode();
        if i.is_invalid() || i.len() != c.len() || spec(i.code()).is_none() {
            continue;
        }
        v.push((c, i.code()));
    }
    v
}

/// Bytes of the environment image holding pointers (host addresses
/// natively), blanked before comparing.
fn pointer_bytes(code: Code) -> std::ops::Range<usize> {
    use Code as C;
    match code {
        C::Fnstenv_m14byte | C::Fnsave_m94byte => 6..14,
        C::Fnstenv_m28byte | C::Fnsave_m108byte => 12..28,
        _ => 0..0,
    }
}

fn check(snippet: &[u8], code: Code, img: &[u8; 108], flags: u64, buf: &[u8; BUF_LEN]) {
    let mut nbuf = *buf;
    let mut io = Io {
        img: *img,
        _pad: [0; 4],
        mem: nbuf.as_mut_ptr() as u64,
        flags: flags & ALL,
        rax: 0,
    };
    native(snippet, &mut io);
    let want = fpu_of_image(&io.img, io.flags, io.rax);
    let ptrs = pointer_bytes(code);
    nbuf[ptrs.clone()].fill(0);
    for (engine, opt) in [
        (Engine::Interp, false),
        (Engine::Interp, true),
        (Engine::Jit, true),
    ] {
        let mut ebuf = *buf;
        let got = emulate(snippet, img, flags, engine, opt, &mut ebuf);
        ebuf[ptrs.clone()].fill(0);
        assert_eq!(
            got, want,
            "{code:?} {snippet:02x?} ({engine:?}, {opt}) from {img:02x?}"
        );
        assert_eq!(ebuf, nbuf, "memory for {code:?} ({engine:?}, {opt})");
    }
}

/// Interesting 80-bit values: (sign+exponent, significand).
fn special80() -> impl Strategy<Value = (u16, u64)> {
    let j = 1u64 << 63;
    prop_oneof![
        Just((0, 0)),
        Just((0x8000, 0)),
        (any::<u64>()).prop_map(|m| (0, m >> 1)), // denormal
        (any::<u64>()).prop_map(move |m| (0x8000, m | j)), // pseudo-denormal
        (1u16..0x7fff, any::<u64>()).prop_map(|(e, m)| (e, m >> 1)), // unnormal
        Just((0x7fff, j)),
        Just((0xffff, j)),
        Just((0x7fff, 0)),                     // pseudo-infinity
        Just((0xffff, 0xc000_0000_0000_0000)), // indefinite
        (any::<u64>()).prop_map(move |m| (0x7fff, m | j | 1 << 62)), // QNaN
        (any::<u64>()).prop_map(move |m| (0x7fff, (m | j | 1) & !(1 << 62))), // SNaN
        (0x3f00u16..0x4100, any::<u64>()).prop_map(move |(e, m)| (e, m | j)),
        (0x3f00u16..0x4100, any::<u64>()).prop_map(move |(e, m)| (e | 0x8000, m | j)),
        (any::<u16>(), any::<u64>()).prop_map(move |(e, m)| (e, m | j)),
        (0x3fffu16..0x403e, 0u64..64).prop_map(move |(e, m)| (e, j | m << 58)),
    ]
}

fn special_mem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), BUF_LEN),
        (special80(), prop::collection::vec(any::<u8>(), BUF_LEN)).prop_map(|((e, m), mut v)| {
            v[..8].copy_from_slice(&m.to_le_bytes());
            v[8..10].copy_from_slice(&e.to_le_bytes());
            v
        }),
        (
            prop::sample::select(vec![
                0f64,
                -0.0,
                1.0,
                -1.5,
                3.0,
                1e308,
                5e-324,
                f64::INFINITY,
                f64::NAN,
                0.1,
                65536.5,
                -2147483648.0
            ]),
            prop::collection::vec(any::<u8>(), BUF_LEN)
        )
            .prop_map(|(f, mut v)| {
                v[..8].copy_from_slice(&f.to_le_bytes());
                v
            }),
        (
            prop::sample::select(vec![
                0f32,
                -0.0,
                1.0,
                1e-45,
                1e38,
                f32::INFINITY,
                f32::NAN,
                7.5
            ]),
            prop::collection::vec(any::<u8>(), BUF_LEN)
        )
            .prop_map(|(f, mut v)| {
                v[..4].copy_from_slice(&f.to_le_bytes());
                v
            }),
        (
            prop::sample::select(vec![
                0u64,
                1,
                0x8000,
                0x7fff,
                0xffff,
                0x8000_0000,
                12345678,
                0x99_9999_9999
            ]),
            prop::collection::vec(any::<u8>(), BUF_LEN)
        )
            .prop_map(|(n, mut v)| {
                v[..8].copy_from_slice(&n.to_le_bytes());
                v
            }),
    ]
}

/// An image: every exception masked, random precision and rounding, TOP,
/// condition codes, masked flags, tags and registers.
fn image() -> impl Strategy<Value = [u8; 108]> {
    (
        0u16..4,
        0u16..4,
        0u16..8,
        any::<u16>(),
        any::<u8>(),
        prop::collection::vec(special80(), 8),
    )
        .prop_map(|(pc, rc, top, sw, tags, regs)| {
            let mut m = [0u8; 108];
            let cw = 0x7f | pc << 8 | rc << 10;
            m[0..2].copy_from_slice(&cw.to_le_bytes());
            let sw = (sw & 0x477f) | top << 11;
            m[4..6].copy_from_slice(&sw.to_le_bytes());
            let tw = (0..8).fold(0u16, |a, p| {
                if tags >> p & 1 != 0 {
                    a
                } else {
                    a | 3 << (2 * p)
                }
            });
            m[8..10].copy_from_slice(&tw.to_le_bytes());
            for (i, (e, s)) in regs.into_iter().enumerate() {
                m[28 + 10 * i..36 + 10 * i].copy_from_slice(&s.to_le_bytes());
                m[36 + 10 * i..38 + 10 * i].copy_from_slice(&e.to_le_bytes());
            }
            m
        })
}

proptest! {
    #![proptest_config(Config {
        cases: 24,
        rng_seed: RngSeed::Fixed(0x87),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Every instruction, on random states, matches the host.
    #[test]
    fn every_instruction_matches_the_host(
        img in image(),
        flags in any::<u64>(),
        mem in special_mem(),
    ) {
        let buf: [u8; BUF_LEN] = mem.try_into().unwrap();
        for (snippet, code) in snippets() {
            check(&snippet, code, &img, flags, &buf);
        }
    }
}

#[test]
fn the_instruction_list_is_complete() {
    let n = snippets().len();
    // 8 fcmov x 8 + the rest: a regression guard, not an exact count.
    assert!(n > 300, "{n}");
}

/// Runs `code` (then hlt) with CR0 = `cr0` and control word `cw`; true if
/// the guest reached its hlt (it has no IDT: an exception ends the run).
fn reaches_hlt(code: &[u8], cr0: u64, cw: u64) -> bool {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let mut c = code.to_vec();
    c.push(0xf4);
    mem.write_slice(&c, GuestAddress(0x1000)).unwrap();
    let mut st = common::flat64_state(0x1000);
    st.cr0 |= cr0;
    st.gprs[4] = 0x8000;
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
        .unwrap();
    cpu.state.fpu_fcw = cw;
    let mut vm = TestVm::new(cpu, mem);
    matches!(vm.run(100), Some(VcpuExit::Halted { .. }))
}

#[test]
fn device_not_available() {
    const TS: u64 = 8;
    const MP: u64 = 2;
    const EM: u64 = 4;
    let fld1 = [0xd9, 0xe8];
    assert!(reaches_hlt(&fld1, 0, 0x37f));
    assert!(!reaches_hlt(&fld1, TS, 0x37f));
    assert!(!reaches_hlt(&fld1, EM, 0x37f));
    // fwait: #NM only with MP and TS.
    assert!(reaches_hlt(&[0x9b], TS, 0x37f));
    assert!(reaches_hlt(&[0x9b], EM, 0x37f));
    assert!(!reaches_hlt(&[0x9b], MP | TS, 0x37f));
}

#[test]
fn unmasked_exceptions_fault_at_the_next_waiting_instruction() {
    // fld1; fldz; fdivp (ZE unmasked: deferred, reaches the hlt)
    let div = [0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9];
    assert!(reaches_hlt(&div, 0, 0x37b));
    // ... then fwait, or any waiting x87 instruction: #MF.
    assert!(!reaches_hlt(&[&div[..], &[0x9b]].concat(), 0, 0x37b));
    assert!(!reaches_hlt(&[&div[..], &[0xd9, 0xe8]].concat(), 0, 0x37b));
    // fnclex, fnstsw and fninit do not wait; masked, nothing faults.
    assert!(reaches_hlt(
        &[&div[..], &[0xdb, 0xe2, 0x9b]].concat(),
        0,
        0x37b
    ));
    assert!(reaches_hlt(
        &[&div[..], &[0xdf, 0xe0, 0xdb, 0xe3, 0x9b]].concat(),
        0,
        0x37b
    ));
    assert!(reaches_hlt(&[&div[..], &[0x9b]].concat(), 0, 0x37f));
}
