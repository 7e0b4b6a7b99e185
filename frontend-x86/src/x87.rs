//! The x87 FPU, run on the host's own x87 unit.
//!
//! # State
//!
//! [`X86State`] keeps the x87 state in fxsave's form, so fxsave/fxrstor are
//! plain copies: the control word `fpu_fcw`, the status word `fpu_fsw`
//! (C0-C3, TOP in bits 11-13, the flags ES/SF/PE/UE/OE/ZE/DE/IE and B), the
//! *abridged* tag word `fpu_ftw` (bit p set when physical register p holds
//! a value), ST0-ST7 relative to TOP as 80-bit values in `fpu_st`, and the
//! last instruction's opcode (`fpu_fop`, 11 bits), instruction pointer
//! (`fpu_fip`: its rip, `fpu_fcs`: CS) and data pointer (`fpu_fdp`: the
//! offset of its memory operand, `fpu_fds`: that operand's segment
//! selector). The translator records the pointers after every non-control
//! instruction (everything but fninit, fnclex, fldcw, fnstcw, fnstsw,
//! fldenv, fnstenv, frstor, fnsave and fwait); the data pointer only for
//! instructions with a memory operand. The full two-bit tags that fnstenv
//! and fnsave store (valid, zero, special, empty) are computed by the host
//! from the register contents, as hardware does.
//!
//! # Why the host's x87 unit
//!
//! 80-bit extended precision with the guest's precision and rounding
//! control, denormals, pseudo-denormals and unnormals in m80 loads, the
//! "indefinite" results, C0-C3 from compares, fprem's partial remainders and
//! the transcendentals' exact bits cannot be reproduced by soft-float
//! without a great deal of code, and any difference is visible. An x86-64
//! host has all of it: each operation runs *the same instruction* on the
//! host, inside one `asm!` block that saves the host's x87 state (`fnsave`,
//! which also reinitialises the unit), loads the guest's with `frstor`,
//! executes the instruction, saves the result with `fnsave` and restores
//! the host's with `frstor`. The result is exact by construction: the
//! stack, TOP, tags, C0-C3, the sticky flags, stack faults (IE with SF and
//! C1) and the masked responses all come from the host unit.
//!
//! It costs four state loads and saves per instruction (a few hundred
//! nanoseconds); x87 code is rare in anything moat boots. On other hosts
//! [`available`] is false: cpuid reports no FPU and x87 instructions raise
//! #UD, as SSE does there.
//!
//! # Exceptions
//!
//! Unmasked exceptions are deferred as on hardware: the host records them
//! (ES and B set, the destination left as the SDM says) without trapping,
//! because the only instructions that follow in the `asm!` block (`fnsave`,
//! `frstor`) do not wait. The next *waiting* x87 instruction (everything
//! but fninit, fnclex, fnstcw, fnstsw, fnstenv and fnsave), or fwait, then
//! raises #MF (vector 16) before doing anything. moat raises #MF whatever
//! CR0.NE says: the legacy FERR#/IRQ 13 route is not modelled. A store to
//! memory that an unmasked exception suppresses is detected by running the
//! instruction twice over different buffer contents.
//!
//! # MMX
//!
//! MMX instructions ([`crate::mmx`]) use [`mmx_enter`] and [`mmx_exit`] for
//! their effect on TOP and the tag word.

use crate::state::X86State;

/// True when this host can run the x87 helpers.
pub const fn available() -> bool {
    cfg!(target_arch = "x86_64")
}

/// Status-word bits.
pub mod sw {
    /// The six exception flags (IE, DE, ZE, OE, UE, PE).
    pub const FLAGS: u64 = 0x3f;
    /// Stack fault.
    pub const SF: u64 = 1 << 6;
    /// Exception summary.
    pub const ES: u64 = 1 << 7;
    /// TOP's shift.
    pub const TOP_SHIFT: u32 = 11;
    /// TOP.
    pub const TOP: u64 = 7 << TOP_SHIFT;
}

/// `helper_exit` code for #MF (vector + 1).
const EXIT_MF: u32 = 16 + 1;

/// Bits of the helper's `arg`.
pub mod arg {
    /// The register index of an st(i) form (bits 0-2).
    pub const STI: u64 = 7;
    /// A waiting instruction: #MF first if an unmasked exception is pending.
    pub const WAIT: u64 = 1 << 3;
    /// Stores to memory: report whether the store happens.
    pub const STORE: u64 = 1 << 4;
    /// The environment image has the 16-bit format.
    pub const ENV16: u64 = 1 << 5;
    /// Real-address-mode image format.
    pub const REAL: u64 = 1 << 6;
    /// fnstenv/fnsave: write the guest's pointers into the image.
    pub const PUT_PTRS: u64 = 1 << 7;
    /// fldenv/frstor: take the pointers from the image.
    pub const GET_PTRS: u64 = 1 << 8;
}

/// MMX instructions' effect on the x87 state: TOP = 0, every tag valid.
/// `fpu_st` is relative to TOP, so it rotates: each physical register
/// keeps its value.
pub fn mmx_enter(s: &mut X86State) {
    let top = ((s.fpu_fsw & sw::TOP) >> sw::TOP_SHIFT) as usize;
    if top != 0 {
        let old = s.fpu_st;
        for (p, r) in s.fpu_st.iter_mut().enumerate() {
            *r = old[(p + 8 - top) & 7];
        }
    }
    s.fpu_fsw &= !sw::TOP;
    s.fpu_ftw = 0xff;
}

/// emms: every tag empty. The SDM names only the tag word, but hardware
/// (checked against the host in `tests/native_mmx.rs`) also sets TOP to 0,
/// as the MMX transition does.
pub fn mmx_exit(s: &mut X86State) {
    mmx_enter(s);
    s.fpu_ftw = 0;
}

/// True when a waiting x87 instruction must raise #MF: an unmasked
/// exception flag is set (or ES is).
pub fn pending(s: &X86State) -> bool {
    s.fpu_fsw & sw::ES != 0 || s.fpu_fsw & sw::FLAGS & !s.fpu_fcw != 0
}

/// The 108-byte fnsave image (32-bit protected-mode format).
type Image = [u8; 108];

/// The guest state as an frstor image. Non-empty registers are tagged
/// valid: the unit keeps one bit per register and recomputes the rest.
fn to_image(s: &X86State) -> Image {
    let mut m = [0u8; 108];
    m[0..2].copy_from_slice(&(s.fpu_fcw as u16).to_le_bytes());
    m[4..6].copy_from_slice(&(s.fpu_fsw as u16).to_le_bytes());
    let tw = (0..8).fold(0u16, |tw, p| {
        if s.fpu_ftw >> p & 1 != 0 {
            tw
        } else {
            tw | 3 << (2 * p)
        }
    });
    m[8..10].copy_from_slice(&tw.to_le_bytes());
    for (i, r) in s.fpu_st.iter().enumerate() {
        let at = 28 + 10 * i;
        m[at..at + 8].copy_from_slice(&r[0].to_le_bytes());
        m[at + 8..at + 10].copy_from_slice(&(r[1] as u16).to_le_bytes());
    }
    m
}

/// Takes the x87 state back from an fnsave image (pointers excepted).
fn from_image(s: &mut X86State, m: &Image) {
    let w = |k: usize| u16::from_le_bytes([m[k], m[k + 1]]) as u64;
    s.fpu_fcw = w(0);
    s.fpu_fsw = w(4);
    let tw = w(8);
    s.fpu_ftw = (0..8).fold(0, |a, p| {
        if tw >> (2 * p) & 3 != 3 {
            a | 1 << p
        } else {
            a
        }
    });
    for (i, r) in s.fpu_st.iter_mut().enumerate() {
        let at = 28 + 10 * i;
        let mut lo = [0u8; 8];
        lo.copy_from_slice(&m[at..at + 8]);
        *r = [u64::from_le_bytes(lo), w(at + 8)];
    }
}

/// Writes the guest's instruction and data pointers into an environment
/// image (SDM Vol. 1, figures 8-9 to 8-12).
fn put_pointers(s: &X86State, m: &mut [u8], flags: u64) {
    let (fip, fdp, fop) = (s.fpu_fip, s.fpu_fdp, s.fpu_fop & 0x7ff);
    let mut put = |at: usize, v: u64, n: usize| {
        m[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
    };
    let real = flags & arg::REAL != 0;
    let lin_ip = (s.fpu_fcs << 4).wrapping_add(fip & 0xffff);
    let lin_dp = (s.fpu_fds << 4).wrapping_add(fdp & 0xffff);
    match (flags & arg::ENV16 != 0, real) {
        (true, false) => {
            put(6, fip, 2);
            put(8, s.fpu_fcs, 2);
            put(10, fdp, 2);
            put(12, s.fpu_fds, 2);
        }
        (true, true) => {
            put(6, lin_ip, 2);
            put(8, fop | (lin_ip >> 16 & 0xf) << 12, 2);
            put(10, lin_dp, 2);
            put(12, (lin_dp >> 16 & 0xf) << 12, 2);
        }
        (false, false) => {
            put(12, fip, 4);
            put(16, s.fpu_fcs & 0xffff | fop << 16, 4);
            put(20, fdp, 4);
            put(24, s.fpu_fds & 0xffff, 4);
        }
        (false, true) => {
            put(12, lin_ip & 0xffff, 4);
            put(16, fop | (lin_ip >> 16 & 0xffff) << 12, 4);
            put(20, lin_dp & 0xffff, 4);
            put(24, (lin_dp >> 16 & 0xffff) << 12, 4);
        }
    }
}

/// Reads the pointers from an environment image (the inverse of
/// [`put_pointers`]; real-mode images give linear addresses with
/// selector 0).
fn get_pointers(s: &mut X86State, m: &[u8], flags: u64) {
    let get = |at: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&m[at..at + n]);
        u64::from_le_bytes(b)
    };
    let real = flags & arg::REAL != 0;
    match (flags & arg::ENV16 != 0, real) {
        (true, false) => {
            s.fpu_fip = get(6, 2);
            s.fpu_fcs = get(8, 2);
            s.fpu_fdp = get(10, 2);
            s.fpu_fds = get(12, 2);
        }
        (true, true) => {
            let w = get(8, 2);
            s.fpu_fip = get(6, 2) | (w >> 12) << 16;
            s.fpu_fop = w & 0x7ff;
            s.fpu_fdp = get(10, 2) | (get(12, 2) >> 12) << 16;
            s.fpu_fcs = 0;
            s.fpu_fds = 0;
        }
        (false, false) => {
            s.fpu_fip = get(12, 4);
            let w = get(16, 4);
            s.fpu_fcs = w & 0xffff;
            s.fpu_fop = w >> 16 & 0x7ff;
            s.fpu_fdp = get(20, 4);
            s.fpu_fds = get(24, 2);
        }
        (false, true) => {
            let w = get(16, 4);
            s.fpu_fip = get(12, 2) | (w >> 12 & 0xffff) << 16;
            s.fpu_fop = w & 0x7ff;
            s.fpu_fdp = get(20, 2) | (get(24, 4) >> 12 & 0xffff) << 16;
            s.fpu_fcs = 0;
            s.fpu_fds = 0;
        }
    }
}

/// Runs one host instruction text between the state switches. `m` is the
/// memory operand ([rsi]), `g` is rax (the flags for fcmov/fcomi).
#[cfg(target_arch = "x86_64")]
macro_rules! frame {
    ($text:expr, $img:ident, $m:ident, $g:ident) => {{
        let mut host = [0u8; 108];
        // SAFETY: fnsave writes 108 bytes at `host`, frstor/fnsave read and
        // write 108 bytes at `img`, and the instruction touches at most 108
        // bytes at rsi (`m` holds 112). The host's x87 state is saved first
        // and restored last; in between only `fnsave`/`frstor` follow the
        // guest instruction, and neither waits, so a pending unmasked
        // exception never traps here (and none is pending when a waiting
        // guest instruction runs: the caller raises #MF first). rax is the
        // only other register written; pushfq in the compare rows uses the
        // stack, so no `nostack`.
        unsafe {
            core::arch::asm!(
                "fnsave [{host}]",
                "frstor [{img}]",
                $text,
                "fnsave [{img}]",
                "frstor [{host}]",
                host = in(reg) host.as_mut_ptr(),
                img = in(reg) $img.as_mut_ptr(),
                in("rsi") $m.as_mut_ptr(),
                inout("rax") *$g,
            );
        }
    }};
}

/// Defines [`Op`] and its host kernels. `plain` rows are one instruction
/// text; `sti` rows are the two opcode bytes of an st(i) form with the
/// register index added to the second, between a text before and after.
macro_rules! ops {
    (
        plain { $($p:ident $pt:literal,)* }
        sti { $($s:ident $pre:literal $bytes:literal $post:literal,)* }
    ) => {
        /// An x87 operation done by [`helper_x87`].
        #[allow(missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Op { Wait, $($p,)* $($s,)* }

        impl Op {
            const ALL: &[Op] = &[Op::Wait, $(Op::$p,)* $(Op::$s,)*];

            /// The operation numbered `v` (as passed to the helper).
            pub fn from_u64(v: u64) -> Option<Op> {
                Op::ALL.get(usize::try_from(v).ok()?).copied()
            }
        }

        /// Runs `op` (register index `i`) on the host over `img`.
        #[cfg(target_arch = "x86_64")]
        fn run(op: Op, i: u64, img: &mut Image, m: &mut [u8; 112], g: &mut u64) {
            match op {
                Op::Wait => {}
                $(Op::$p => frame!($pt, img, m, g),)*
                $(Op::$s => match i & 7 {
                    0 => frame!(concat!($pre, ".byte ", $bytes, "+0", $post), img, m, g),
                    1 => frame!(concat!($pre, ".byte ", $bytes, "+1", $post), img, m, g),
                    2 => frame!(concat!($pre, ".byte ", $bytes, "+2", $post), img, m, g),
                    3 => frame!(concat!($pre, ".byte ", $bytes, "+3", $post), img, m, g),
                    4 => frame!(concat!($pre, ".byte ", $bytes, "+4", $post), img, m, g),
                    5 => frame!(concat!($pre, ".byte ", $bytes, "+5", $post), img, m, g),
                    6 => frame!(concat!($pre, ".byte ", $bytes, "+6", $post), img, m, g),
                    _ => frame!(concat!($pre, ".byte ", $bytes, "+7", $post), img, m, g),
                },)*
            }
        }
    };
}

ops! {
    plain {
        Fld1 "fld1",
        Fldz "fldz",
        Fldpi "fldpi",
        Fldl2e "fldl2e",
        Fldl2t "fldl2t",
        Fldlg2 "fldlg2",
        Fldln2 "fldln2",
        Fchs "fchs",
        Fabs "fabs",
        Fsqrt "fsqrt",
        Fprem "fprem",
        Fprem1 "fprem1",
        Frndint "frndint",
        Fscale "fscale",
        Fxtract "fxtract",
        Ftst "ftst",
        Fxam "fxam",
        Fcompp "fcompp",
        Fucompp "fucompp",
        Fsin "fsin",
        Fcos "fcos",
        Fsincos "fsincos",
        Fptan "fptan",
        Fpatan "fpatan",
        F2xm1 "f2xm1",
        Fyl2x "fyl2x",
        Fyl2xp1 "fyl2xp1",
        Fincstp "fincstp",
        Fdecstp "fdecstp",
        Fnop "fnop",
        Fninit "fninit",
        Fnclex "fnclex",
        FldM32 "fld dword ptr [rsi]",
        FldM64 "fld qword ptr [rsi]",
        FldM80 "fld tbyte ptr [rsi]",
        FildM16 "fild word ptr [rsi]",
        FildM32 "fild dword ptr [rsi]",
        FildM64 "fild qword ptr [rsi]",
        Fbld "fbld tbyte ptr [rsi]",
        FaddM32 "fadd dword ptr [rsi]",
        FaddM64 "fadd qword ptr [rsi]",
        FmulM32 "fmul dword ptr [rsi]",
        FmulM64 "fmul qword ptr [rsi]",
        FcomM32 "fcom dword ptr [rsi]",
        FcomM64 "fcom qword ptr [rsi]",
        FcompM32 "fcomp dword ptr [rsi]",
        FcompM64 "fcomp qword ptr [rsi]",
        FsubM32 "fsub dword ptr [rsi]",
        FsubM64 "fsub qword ptr [rsi]",
        FsubrM32 "fsubr dword ptr [rsi]",
        FsubrM64 "fsubr qword ptr [rsi]",
        FdivM32 "fdiv dword ptr [rsi]",
        FdivM64 "fdiv qword ptr [rsi]",
        FdivrM32 "fdivr dword ptr [rsi]",
        FdivrM64 "fdivr qword ptr [rsi]",
        FiaddM16 "fiadd word ptr [rsi]",
        FiaddM32 "fiadd dword ptr [rsi]",
        FimulM16 "fimul word ptr [rsi]",
        FimulM32 "fimul dword ptr [rsi]",
        FicomM16 "ficom word ptr [rsi]",
        FicomM32 "ficom dword ptr [rsi]",
        FicompM16 "ficomp word ptr [rsi]",
        FicompM32 "ficomp dword ptr [rsi]",
        FisubM16 "fisub word ptr [rsi]",
        FisubM32 "fisub dword ptr [rsi]",
        FisubrM16 "fisubr word ptr [rsi]",
        FisubrM32 "fisubr dword ptr [rsi]",
        FidivM16 "fidiv word ptr [rsi]",
        FidivM32 "fidiv dword ptr [rsi]",
        FidivrM16 "fidivr word ptr [rsi]",
        FidivrM32 "fidivr dword ptr [rsi]",
        FstM32 "fst dword ptr [rsi]",
        FstM64 "fst qword ptr [rsi]",
        FstpM32 "fstp dword ptr [rsi]",
        FstpM64 "fstp qword ptr [rsi]",
        FstpM80 "fstp tbyte ptr [rsi]",
        FistM16 "fist word ptr [rsi]",
        FistM32 "fist dword ptr [rsi]",
        FistpM16 "fistp word ptr [rsi]",
        FistpM32 "fistp dword ptr [rsi]",
        FistpM64 "fistp qword ptr [rsi]",
        Fbstp "fbstp tbyte ptr [rsi]",
        // SSE3 (translated only where the host has it)
        FisttpM16 "fisttp word ptr [rsi]",
        FisttpM32 "fisttp dword ptr [rsi]",
        FisttpM64 "fisttp qword ptr [rsi]",
        Fnstcw "fnstcw word ptr [rsi]",
        Fnstsw "fnstsw word ptr [rsi]",
        Fldcw "fldcw word ptr [rsi]",
        Fnstenv32 "fnstenv [rsi]",
        Fnstenv16 ".byte 0x66, 0xd9, 0x36",
        Fldenv32 "fldenv [rsi]",
        Fldenv16 ".byte 0x66, 0xd9, 0x26",
        Fnsave32 "fnsave [rsi]",
        Fnsave16 ".byte 0x66, 0xdd, 0x36",
        Frstor32 "frstor [rsi]",
        Frstor16 ".byte 0x66, 0xdd, 0x26",
    }
    sti {
        FldSt "" "0xd9, 0xc0" "",
        FstSt "" "0xdd, 0xd0" "",
        FstpSt "" "0xdd, 0xd8" "",
        Fxch "" "0xd9, 0xc8" "",
        FcomSt "" "0xd8, 0xd0" "",
        FcompSt "" "0xd8, 0xd8" "",
        FucomSt "" "0xdd, 0xe0" "",
        FucompSt "" "0xdd, 0xe8" "",
        Ffree "" "0xdd, 0xc0" "",
        Fcomi "" "0xdb, 0xf0" "\npushfq\npop rax",
        Fcomip "" "0xdf, 0xf0" "\npushfq\npop rax",
        Fucomi "" "0xdb, 0xe8" "\npushfq\npop rax",
        Fucomip "" "0xdf, 0xe8" "\npushfq\npop rax",
        FaddSt0 "" "0xd8, 0xc0" "",
        FmulSt0 "" "0xd8, 0xc8" "",
        FsubSt0 "" "0xd8, 0xe0" "",
        FsubrSt0 "" "0xd8, 0xe8" "",
        FdivSt0 "" "0xd8, 0xf0" "",
        FdivrSt0 "" "0xd8, 0xf8" "",
        FaddSti "" "0xdc, 0xc0" "",
        FmulSti "" "0xdc, 0xc8" "",
        FsubrSti "" "0xdc, 0xe0" "",
        FsubSti "" "0xdc, 0xe8" "",
        FdivrSti "" "0xdc, 0xf0" "",
        FdivSti "" "0xdc, 0xf8" "",
        Faddp "" "0xde, 0xc0" "",
        Fmulp "" "0xde, 0xc8" "",
        Fsubrp "" "0xde, 0xe0" "",
        Fsubp "" "0xde, 0xe8" "",
        Fdivrp "" "0xde, 0xf0" "",
        Fdivp "" "0xde, 0xf8" "",
        Fcmovb "sahf\n" "0xda, 0xc0" "",
        Fcmove "sahf\n" "0xda, 0xc8" "",
        Fcmovbe "sahf\n" "0xda, 0xd0" "",
        Fcmovu "sahf\n" "0xda, 0xd8" "",
        Fcmovnb "sahf\n" "0xdb, 0xc0" "",
        Fcmovne "sahf\n" "0xdb, 0xc8" "",
        Fcmovnbe "sahf\n" "0xdb, 0xd0" "",
        Fcmovnu "sahf\n" "0xdb, 0xd8" "",
    }
}

/// Runs [`Op`] `op` on the guest's x87 state with the flags in `a` (see
/// [`arg`]) and `g` (the guest's RFLAGS, for fcmov); the memory operand is
/// in [`X86State::fpu_buf`]. Returns 1 if a store's memory must be written
/// (0 if an unmasked exception suppressed it), the arithmetic RFLAGS bits
/// for fcomi and friends, otherwise 0. A pending unmasked exception before
/// a waiting instruction raises #MF instead.
pub extern "C" fn helper_x87(env: *mut u8, op: u64, a: u64, g: u64) -> u64 {
    // SAFETY: translated code passes its CPU-state pointer, an X86State not
    // otherwise borrowed while the helper runs.
    let s = unsafe { &mut *(env as *mut X86State) };
    let Some(op) = Op::from_u64(op) else {
        s.header.helper_exit = crate::translate::status::UD as u32 + 1;
        return 0;
    };
    if a & arg::WAIT != 0 && pending(s) {
        s.header.helper_exit = EXIT_MF;
        return 0;
    }
    exec(s, op, a, g)
}

/// [`helper_x87`] after the #MF check.
#[cfg(target_arch = "x86_64")]
fn exec(s: &mut X86State, op: Op, a: u64, g: u64) -> u64 {
    if op == Op::Wait {
        return 0;
    }
    let mut m = [0u8; 112];
    for (k, w) in s.fpu_buf.iter().enumerate() {
        m[8 * k..8 * k + 8].copy_from_slice(&w.to_le_bytes());
    }
    let before = to_image(s);
    let mut img = before;
    // sahf takes the flags from AH.
    let mut rax = (g & 0xff) << 8;
    let m0 = m;
    run(op, a & arg::STI, &mut img, &mut m, &mut rax);
    let mut ret = rax & (crate::state::rflags::ARITH);
    if a & arg::STORE != 0 {
        ret = 1;
        let raised = u16::from_le_bytes([img[4], img[5]]) as u64;
        let cw = u16::from_le_bytes([img[0], img[1]]) as u64;
        if raised & sw::FLAGS & !cw != 0 {
            // An unmasked exception may have suppressed the store: run
            // again over other contents and see whether they survive.
            let (mut img2, mut m2, mut rax2) = (before, m0.map(|b| !b), 0);
            run(op, a & arg::STI, &mut img2, &mut m2, &mut rax2);
            if m2 != m {
                ret = 0;
                m = m0;
            }
        }
    }
    if a & arg::GET_PTRS != 0 {
        get_pointers(s, &m, a);
    }
    from_image(s, &img);
    if a & arg::PUT_PTRS != 0 {
        put_pointers(s, &mut m, a);
    }
    if matches!(op, Op::Fninit | Op::Fnsave16 | Op::Fnsave32) {
        s.fpu_fip = 0;
        s.fpu_fcs = 0;
        s.fpu_fdp = 0;
        s.fpu_fds = 0;
        s.fpu_fop = 0;
    }
    for (k, w) in s.fpu_buf.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&m[8 * k..8 * k + 8]);
        *w = u64::from_le_bytes(b);
    }
    ret
}

#[cfg(not(target_arch = "x86_64"))]
fn exec(_s: &mut X86State, _op: Op, _a: u64, _g: u64) -> u64 {
    // Unreachable: without `available()` the translator emits #UD instead.
    0
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn fresh() -> Box<X86State> {
        let mut s = Box::new(X86State::new());
        let p = (&raw mut *s).cast::<u8>();
        helper_x87(p, Op::Fninit as u64, 0, 0);
        s
    }

    fn call(s: &mut X86State, op: Op, a: u64) -> u64 {
        helper_x87((&raw mut *s).cast::<u8>(), op as u64, a | arg::WAIT, 0)
    }

    #[test]
    fn push_and_add() {
        let mut s = fresh();
        call(&mut s, Op::Fld1, 0);
        call(&mut s, Op::Fld1, 0);
        call(&mut s, Op::Faddp, 1);
        assert_eq!(s.fpu_fsw & sw::TOP, 7 << sw::TOP_SHIFT);
        assert_eq!(s.fpu_ftw, 0x80);
        // 2.0 as an 80-bit value.
        assert_eq!(s.fpu_st[0], [0x8000_0000_0000_0000, 0x4000]);
    }

    #[test]
    fn unmasked_divide_by_zero_is_deferred_to_the_next_waiting_instruction() {
        let mut s = fresh();
        s.fpu_fcw = 0x37f & !4;
        call(&mut s, Op::Fld1, 0);
        call(&mut s, Op::Fldz, 0);
        call(&mut s, Op::FdivrSt0, 1);
        assert_ne!(s.fpu_fsw & sw::ES, 0);
        assert_eq!(s.header.helper_exit, 0);
        call(&mut s, Op::Fld1, 0);
        assert_eq!(s.header.helper_exit, EXIT_MF);
    }

    #[test]
    fn env_pointers_round_trip() {
        for f in [0, arg::ENV16, arg::REAL, arg::ENV16 | arg::REAL] {
            let mut s = X86State::new();
            s.fpu_fip = 0x1234;
            s.fpu_fcs = 0x0567;
            s.fpu_fdp = 0x89ab;
            s.fpu_fds = 0x0cde;
            s.fpu_fop = 0x7ff;
            let mut m = [0u8; 28];
            put_pointers(&s, &mut m, f);
            let mut t = X86State::new();
            get_pointers(&mut t, &m, f);
            if f & arg::REAL != 0 {
                assert_eq!(t.fpu_fip, 0x5670 + 0x1234);
                assert_eq!(t.fpu_fdp, 0xcde0 + 0x89ab);
            } else {
                assert_eq!((t.fpu_fip, t.fpu_fcs), (0x1234, 0x567));
                assert_eq!((t.fpu_fdp, t.fpu_fds), (0x89ab, 0xcde));
            }
        }
    }
}
