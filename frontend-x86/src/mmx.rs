//! MMX: the 64-bit integer SIMD registers MM0-MM7 and the instructions on
//! them (MMX itself, the SSE/SSE2 integer instructions' mm forms and
//! SSSE3's).
//!
//! # State
//!
//! MMi is the low 64 bits (the significand) of *physical* x87 register i;
//! [`X86State::fpu_st`] holds the registers relative to TOP, so MMi lives
//! in `fpu_st[(i - TOP) & 7]`. Every MMX instruction but emms sets TOP to 0
//! and every tag to valid ([`crate::x87::mmx_enter`], which rotates
//! `fpu_st` so the physical registers keep their values); a register an
//! MMX instruction writes gets its exponent field (bits 64-79) set to all
//! ones. emms empties every tag ([`crate::x87::mmx_exit`]).
//!
//! # Faults
//!
//! Decided by the translator: #UD with CR0.EM (and for the forms that also
//! name an XMM register, without CR4.OSFXSR), #NM with CR0.TS. A pending
//! unmasked x87 exception raises #MF before the instruction does anything:
//! every call of [`helper_mmx`] checks it first, and the translator calls
//! it (with [`Op::Check`] or [`Op::Read`]) before any guest memory access,
//! so that a page fault leaves the x87 state as it was.
//!
//! # Why the host's MMX unit
//!
//! As for SSE ([`crate::simd`]): each arithmetic operation runs the same
//! instruction on the host, on mm0 (destination) and mm1 (source), inside
//! one `asm!` block that ends with `emms`, so the host's x87 stack is empty
//! again when Rust code runs. The shuffles with an immediate (pshufw,
//! palignr) and pinsrw/pextrw are plain Rust.

use crate::state::{X86State, XMM_TMP};
use crate::x87;

/// `helper_exit` code for #MF (vector + 1).
const EXIT_MF: u32 = 16 + 1;

/// The source number that names the memory operand the translator loaded
/// into the low half of [`XMM_TMP`].
pub const SRC_TMP: u64 = 8;

/// True when the host can run the SSSE3 mm and xmm forms.
pub fn ssse3() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the host can run the SSE3 instructions.
pub fn sse3() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines [`Op`] and the host kernels: `rust` rows are done in Rust,
/// `host` rows are the host instruction text with mm0 the destination,
/// mm1 the source and `{g}` the general-purpose result.
macro_rules! ops {
    (rust { $($r:ident,)* } host { $($name:ident $text:literal,)* }) => {
        /// An MMX operation done by [`helper_mmx`].
        #[allow(missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Op { $($r,)* $($name,)* }

        impl Op {
            const ALL: &[Op] = &[$(Op::$r,)* $(Op::$name,)*];

            /// The operation numbered `v` (as passed to the helper).
            pub fn from_u64(v: u64) -> Option<Op> {
                Op::ALL.get(usize::try_from(v).ok()?).copied()
            }
        }

        /// Runs host row `op` on `a` (mm0, updated) and `b` (mm1); `g` is
        /// the general-purpose result. False for the Rust rows.
        #[cfg(target_arch = "x86_64")]
        fn run_host(op: Op, a: &mut u64, b: u64, g: &mut u64) -> bool {
            match op {
                $(Op::$name => {
                    // SAFETY: reads 8 bytes at `a` and `b` and writes 8 at
                    // `a`; clobbers mm0, mm1 (declared as the whole x87
                    // stack, which is empty on entry) and `g`, and ends with
                    // emms, which leaves the x87 stack empty as the ABI
                    // requires. MMX integer instructions touch no flags
                    // Rust relies on and cannot fault.
                    unsafe {
                        core::arch::asm!(
                            "movq mm0, [{a}]",
                            "movq mm1, [{b}]",
                            $text,
                            "movq [{a}], mm0",
                            "emms",
                            a = in(reg) core::ptr::from_mut::<u64>(a),
                            b = in(reg) &raw const b,
                            g = inout(reg) *g,
                            out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                            out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                            options(nostack),
                        );
                    }
                    true
                })*
                _ => false,
            }
        }
    };
}

// Every text names `{g}` (asm! requires each operand to be used).
ops! {
    rust {
        // #MF if pending, nothing else.
        Check,
        // Returns MM[d] (before the transition: TOP-relative).
        Read,
        // The transition only.
        Enter,
        // MM[d] = g.
        Write,
        Emms,
        // imm in g.
        Pshufw,
        Palignr,
        // g = word | index << 16.
        Pinsrw,
        // Returns word g of MM[s]; writes nothing.
        Pextrw,
    }
    host {
        Pmovmskb "pmovmskb {g:e}, mm1",
        Paddb "paddb mm0, mm1\nmov {g}, {g}",
        Paddw "paddw mm0, mm1\nmov {g}, {g}",
        Paddd "paddd mm0, mm1\nmov {g}, {g}",
        Paddq "paddq mm0, mm1\nmov {g}, {g}",
        Psubb "psubb mm0, mm1\nmov {g}, {g}",
        Psubw "psubw mm0, mm1\nmov {g}, {g}",
        Psubd "psubd mm0, mm1\nmov {g}, {g}",
        Psubq "psubq mm0, mm1\nmov {g}, {g}",
        Paddsb "paddsb mm0, mm1\nmov {g}, {g}",
        Paddsw "paddsw mm0, mm1\nmov {g}, {g}",
        Paddusb "paddusb mm0, mm1\nmov {g}, {g}",
        Paddusw "paddusw mm0, mm1\nmov {g}, {g}",
        Psubsb "psubsb mm0, mm1\nmov {g}, {g}",
        Psubsw "psubsw mm0, mm1\nmov {g}, {g}",
        Psubusb "psubusb mm0, mm1\nmov {g}, {g}",
        Psubusw "psubusw mm0, mm1\nmov {g}, {g}",
        Pcmpeqb "pcmpeqb mm0, mm1\nmov {g}, {g}",
        Pcmpeqw "pcmpeqw mm0, mm1\nmov {g}, {g}",
        Pcmpeqd "pcmpeqd mm0, mm1\nmov {g}, {g}",
        Pcmpgtb "pcmpgtb mm0, mm1\nmov {g}, {g}",
        Pcmpgtw "pcmpgtw mm0, mm1\nmov {g}, {g}",
        Pcmpgtd "pcmpgtd mm0, mm1\nmov {g}, {g}",
        Pmullw "pmullw mm0, mm1\nmov {g}, {g}",
        Pmulhw "pmulhw mm0, mm1\nmov {g}, {g}",
        Pmulhuw "pmulhuw mm0, mm1\nmov {g}, {g}",
        Pmuludq "pmuludq mm0, mm1\nmov {g}, {g}",
        Pmaddwd "pmaddwd mm0, mm1\nmov {g}, {g}",
        Pand "pand mm0, mm1\nmov {g}, {g}",
        Pandn "pandn mm0, mm1\nmov {g}, {g}",
        Por "por mm0, mm1\nmov {g}, {g}",
        Pxor "pxor mm0, mm1\nmov {g}, {g}",
        Psllw "psllw mm0, mm1\nmov {g}, {g}",
        Pslld "pslld mm0, mm1\nmov {g}, {g}",
        Psllq "psllq mm0, mm1\nmov {g}, {g}",
        Psrlw "psrlw mm0, mm1\nmov {g}, {g}",
        Psrld "psrld mm0, mm1\nmov {g}, {g}",
        Psrlq "psrlq mm0, mm1\nmov {g}, {g}",
        Psraw "psraw mm0, mm1\nmov {g}, {g}",
        Psrad "psrad mm0, mm1\nmov {g}, {g}",
        Punpcklbw "punpcklbw mm0, mm1\nmov {g}, {g}",
        Punpcklwd "punpcklwd mm0, mm1\nmov {g}, {g}",
        Punpckldq "punpckldq mm0, mm1\nmov {g}, {g}",
        Punpckhbw "punpckhbw mm0, mm1\nmov {g}, {g}",
        Punpckhwd "punpckhwd mm0, mm1\nmov {g}, {g}",
        Punpckhdq "punpckhdq mm0, mm1\nmov {g}, {g}",
        Packsswb "packsswb mm0, mm1\nmov {g}, {g}",
        Packssdw "packssdw mm0, mm1\nmov {g}, {g}",
        Packuswb "packuswb mm0, mm1\nmov {g}, {g}",
        Pmaxub "pmaxub mm0, mm1\nmov {g}, {g}",
        Pminub "pminub mm0, mm1\nmov {g}, {g}",
        Pmaxsw "pmaxsw mm0, mm1\nmov {g}, {g}",
        Pminsw "pminsw mm0, mm1\nmov {g}, {g}",
        Pavgb "pavgb mm0, mm1\nmov {g}, {g}",
        Pavgw "pavgw mm0, mm1\nmov {g}, {g}",
        Psadbw "psadbw mm0, mm1\nmov {g}, {g}",
        // SSSE3
        Pabsb "pabsb mm0, mm1\nmov {g}, {g}",
        Pabsw "pabsw mm0, mm1\nmov {g}, {g}",
        Pabsd "pabsd mm0, mm1\nmov {g}, {g}",
        Phaddw "phaddw mm0, mm1\nmov {g}, {g}",
        Phaddd "phaddd mm0, mm1\nmov {g}, {g}",
        Phaddsw "phaddsw mm0, mm1\nmov {g}, {g}",
        Phsubw "phsubw mm0, mm1\nmov {g}, {g}",
        Phsubd "phsubd mm0, mm1\nmov {g}, {g}",
        Phsubsw "phsubsw mm0, mm1\nmov {g}, {g}",
        Pmaddubsw "pmaddubsw mm0, mm1\nmov {g}, {g}",
        Pmulhrsw "pmulhrsw mm0, mm1\nmov {g}, {g}",
        Pshufb "pshufb mm0, mm1\nmov {g}, {g}",
        Psignb "psignb mm0, mm1\nmov {g}, {g}",
        Psignw "psignw mm0, mm1\nmov {g}, {g}",
        Psignd "psignd mm0, mm1\nmov {g}, {g}",
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn run_host(_op: Op, _a: &mut u64, _b: u64, _g: &mut u64) -> bool {
    // Unreachable: without the x87 unit the translator raises #UD.
    false
}

/// MMi's physical slot in `fpu_st` under the current TOP.
fn slot(s: &X86State, i: usize) -> usize {
    let top = ((s.fpu_fsw & x87::sw::TOP) >> x87::sw::TOP_SHIFT) as usize;
    (i + 8 - top) & 7
}

/// The result of the Rust rows on `a` (destination) and `b` (source).
pub fn rust_op(op: Op, a: u64, b: u64, g: u64) -> u64 {
    match op {
        Op::Pshufw => (0..4).fold(0, |acc, k| {
            let w = (b >> (16 * ((g >> (2 * k)) & 3))) & 0xffff;
            acc | w << (16 * k)
        }),
        Op::Palignr => {
            let v = (a as u128) << 64 | b as u128;
            let n = 8 * (g & 0xff) as u32;
            if n >= 128 { 0 } else { (v >> n) as u64 }
        }
        Op::Pinsrw => {
            let k = 16 * ((g >> 16) & 3);
            (a & !(0xffff << k)) | (g & 0xffff) << k
        }
        _ => a,
    }
}

/// Runs MMX operation `op` with destination `regs & 0xff` and source
/// `regs >> 8 & 0xff` (MM0-MM7, or [`SRC_TMP`]) and general-purpose
/// operand `g`; returns the general-purpose result. Raises #MF first if an
/// unmasked x87 exception is pending.
pub extern "C" fn helper_mmx(env: *mut u8, op: u64, regs: u64, g: u64) -> u64 {
    // SAFETY: translated code passes its CPU-state pointer, an X86State not
    // otherwise borrowed while the helper runs.
    let s = unsafe { &mut *(env as *mut X86State) };
    let Some(op) = Op::from_u64(op) else {
        s.header.helper_exit = crate::translate::status::UD as u32 + 1;
        return 0;
    };
    if x87::pending(s) {
        s.header.helper_exit = EXIT_MF;
        return 0;
    }
    let d = (regs & 7) as usize;
    let src = regs >> 8 & 0xff;
    match op {
        Op::Check => return 0,
        Op::Read => return s.fpu_st[slot(s, d)][0],
        Op::Emms => {
            x87::mmx_exit(s);
            return 0;
        }
        _ => {}
    }
    x87::mmx_enter(s);
    let b = if src == SRC_TMP {
        s.xmm[XMM_TMP][0]
    } else {
        s.fpu_st[(src & 7) as usize][0]
    };
    let a = s.fpu_st[d][0];
    let (new, ret) = match op {
        Op::Enter => return 0,
        Op::Write => (g, 0),
        Op::Pextrw => return (b >> (16 * (g & 3))) & 0xffff,
        Op::Pmovmskb => {
            let mut gv = 0;
            let mut a1 = a;
            run_host(op, &mut a1, b, &mut gv);
            return gv & 0xff;
        }
        Op::Pshufw | Op::Palignr | Op::Pinsrw => (rust_op(op, a, b, g), 0),
        _ => {
            let (mut a1, mut g1) = (a, g);
            run_host(op, &mut a1, b, &mut g1);
            (a1, 0)
        }
    };
    s.fpu_st[d] = [new, 0xffff];
    ret
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn call(s: &mut X86State, op: Op, d: u64, src: u64, g: u64) -> u64 {
        helper_mmx((&raw mut *s).cast::<u8>(), op as u64, d | src << 8, g)
    }

    #[test]
    fn mm_registers_are_physical_x87_registers() {
        let mut s = X86State::new();
        // TOP = 3: MM3 is ST0.
        s.fpu_fsw = 3 << x87::sw::TOP_SHIFT;
        s.fpu_st[0] = [0x1111, 0x4000];
        s.fpu_st[5] = [0x5555, 0x4000];
        assert_eq!(call(&mut s, Op::Read, 3, 0, 0), 0x1111);
        call(&mut s, Op::Paddb, 3, 0, 0);
        assert_eq!(s.fpu_fsw & x87::sw::TOP, 0);
        assert_eq!(s.fpu_ftw, 0xff);
        assert_eq!(s.fpu_st[3], [0x1111 + 0x5555, 0xffff]);
        // MM0 (physical 0) was ST5; only the destination's exponent changes.
        assert_eq!(s.fpu_st[0], [0x5555, 0x4000]);
        call(&mut s, Op::Emms, 0, 0, 0);
        assert_eq!(s.fpu_ftw, 0);
    }

    #[test]
    fn pending_exception_is_mf() {
        let mut s = X86State::new();
        s.fpu_fsw = 0x80 | 1;
        s.fpu_fcw = 0x37e;
        call(&mut s, Op::Paddb, 0, 1, 0);
        assert_eq!(s.header.helper_exit, EXIT_MF);
        assert_eq!(s.fpu_ftw, 0);
    }

    #[test]
    fn rust_rows() {
        assert_eq!(
            rust_op(Op::Pshufw, 0, 0x4444_3333_2222_1111, 0x1b),
            0x1111_2222_3333_4444
        );
        assert_eq!(rust_op(Op::Palignr, 0xaa, 0xbb00, 1), 0xaa00_0000_0000_00bb);
        assert_eq!(rust_op(Op::Palignr, 0xaa, 0xbb00, 16), 0);
        assert_eq!(rust_op(Op::Pinsrw, !0, 0, 0x2_1234), 0xffff_1234_ffff_ffff);
    }
}
