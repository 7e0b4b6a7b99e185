//! SSE/SSE2 helpers: the instructions translated code does not do inline.
//!
//! # Why the host's SSE unit
//!
//! SSE floating point has to follow the guest's MXCSR bit for bit: the four
//! rounding modes, flush-to-zero, denormals-are-zero, the six sticky flags
//! (including DE, the denormal-operand flag that is easy to get wrong), which
//! NaN operand propagates, the default NaN, min/max returning the second
//! operand on NaNs and on two zeros, and integer indefinite for conversions
//! out of range. An x86-64 host implements exactly those rules, so each
//! helper here runs *the same instruction* on the host, inside one `asm!`
//! block that saves the host MXCSR, loads the guest's, does the operation,
//! reads the flags it raised and restores the host's control bits. No Rust
//! code runs between the `ldmxcsr` and the operation, so no host floating
//! point can see the guest's control bits. This is exact by construction.
//!
//! Loading MXCSR is slow (tens of nanoseconds on the hosts measured, a few
//! nanoseconds for everything else), so when the host MXCSR already has the
//! control bits the guest needs (the common case: round to nearest, no
//! FTZ/DAZ) and its sticky flags are ones the guest already has and masks,
//! the operation runs under the host MXCSR as it is and only reads it back.
//!
//! This is the one place in the front end that depends on the host
//! architecture (the rest keys on the guest, never on a host `cfg`). On
//! other hosts [`available`] is false: cpuid advertises no SSE and the
//! translator raises #UD for SSE instructions. A portable soft-float path is
//! future work.
//!
//! # Exceptions
//!
//! The guest MXCSR is loaded with every exception masked and its flags
//! cleared, so the host never traps; the flags raised are then compared with
//! the guest's masks. If all raised exceptions are masked, the flags are
//! ORed into the guest MXCSR and the result written. Otherwise the
//! destination is left unchanged (as the SDM specifies for unmasked SIMD
//! floating-point exceptions), the guest MXCSR gets the pre-computation flags
//! (IE, DE, ZE) if one of those is unmasked, else every raised flag, and the
//! helper asks for #XM (vector 19) when CR4.OSXMMEXCPT is set, #UD otherwise.
//! Underflow and overflow need care. FTZ applies only while UE is masked,
//! and an unmasked UE fires on every tiny result, exact or not, which a
//! masked operation does not flag: with UE unmasked the operation runs
//! without FTZ, and once more with FTZ, where the host flags UE for any tiny
//! result. And with an unmasked OE or UE, hardware sets PE only if the
//! result rounded with *unbounded exponent* is inexact, while the masked
//! run also counts the rounding into the exponent range: for those faults
//! the lanes are redone one by one as scalar operations and PE is decided
//! exactly in integer arithmetic ([`inexact_unbounded`]). The host-oracle
//! test `unmasked_exceptions_match_the_host` checks all of this against
//! real #XM faults (SIGFPE) on the host.
//!
//! # Integer SIMD
//!
//! Integer instructions use the same mechanism without touching MXCSR (they
//! cannot raise SIMD floating-point exceptions). Shuffles with an immediate
//! are plain Rust ([`shuffle`]).
//!
//! # Calling convention
//!
//! [`helper_sse`] gets the operation, the destination and source register
//! numbers (`d | s << 8`; the translator first loads a memory operand into
//! [`XMM_TMP`]) and a general-purpose value (the source of `cvtsi2ss`). It
//! returns the general-purpose result of the instructions that have one
//! (conversions to integers, `movmskps`, `pmovmskb`, the flags of `comiss`).

use crate::state::{X86State, XMM_TMP, ctl};
use crate::translate::status;

/// MXCSR flag bits.
pub mod mxcsr {
    /// invalid operation
    pub const IE: u32 = 1 << 0;
    /// denormal operand
    pub const DE: u32 = 1 << 1;
    /// divide by zero
    pub const ZE: u32 = 1 << 2;
    /// overflow
    pub const OE: u32 = 1 << 3;
    /// underflow
    pub const UE: u32 = 1 << 4;
    /// precision (inexact)
    pub const PE: u32 = 1 << 5;
    /// All six flags.
    pub const FLAGS: u32 = 0x3f;
    /// All six masks (bits 7-12).
    pub const MASKS: u32 = 0x3f << 7;
    /// flush to zero
    pub const FTZ: u32 = 1 << 15;
}

/// `helper_exit` code: exception vector + 1.
const EXIT_XM: u32 = 19 + 1;
const EXIT_UD: u32 = status::UD as u32 + 1;

/// True when this host can run the SSE helpers.
pub const fn available() -> bool {
    cfg!(target_arch = "x86_64")
}

/// Defines [`Op`] and the host kernels from one table: each row is the
/// operation's name, whether it is floating point (`fp`: runs under the
/// guest MXCSR) or integer (`int`), and the host instruction text with
/// xmm0 the destination, xmm1 the source and `{g}` the general-purpose
/// operand.
macro_rules! ops {
    ($($name:ident $kind:ident $text:literal,)*) => {
        /// An SSE operation done by [`helper_sse`].
        #[allow(missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Op { $($name,)* }

        impl Op {
            const ALL: &[Op] = &[$(Op::$name,)*];

            /// The operation numbered `v` (as passed to the helper).
            pub fn from_u64(v: u64) -> Option<Op> {
                Op::ALL.get(usize::try_from(v).ok()?).copied()
            }

            /// True for floating-point operations (MXCSR matters).
            pub fn is_fp(self) -> bool {
                match self { $(Op::$name => ops!(@fp $kind),)* }
            }
        }

        /// Runs `op` on the host: `a` is xmm0 (the destination, updated),
        /// `b` xmm1, `g` the general-purpose operand (updated), `csr` the
        /// MXCSR to run under (updated with the raised flags, which may
        /// include any of the flags in `free` that were raised earlier).
        #[cfg(target_arch = "x86_64")]
        fn run(op: Op, a: &mut [u64; 2], b: &[u64; 2], g: &mut u64, csr: &mut u32, free: u32) {
            match op { $(Op::$name => ops!(@run $kind $text, a, b, g, csr, free),)* }
        }
    };
    (@fp fp) => { true };
    (@fp int) => { false };
    (@run fp $text:literal, $a:ident, $b:ident, $g:ident, $csr:ident, $free:ident) => {{
        let mut cur = 0u32;
        // SAFETY: stmxcsr writes the four bytes of `cur`.
        unsafe {
            core::arch::asm!(
                "stmxcsr [{0}]",
                in(reg) &raw mut cur,
                options(nostack, preserves_flags),
            );
        }
        if cur & !mxcsr::FLAGS == *$csr & !mxcsr::FLAGS && cur & mxcsr::FLAGS & !$free == 0 {
            // The host MXCSR already has the wanted control bits, and the
            // flags it holds may be reported again harmlessly: run under it
            // (loading MXCSR costs tens of nanoseconds).
            // SAFETY: reads 16 bytes at `a` and `b`, writes 16 at `a` (both
            // `[u64; 2]`) and 4 at `csr`; clobbers only xmm0, xmm1, `g` and
            // the arithmetic flags. The host MXCSR masks every exception
            // (its control bits are the wanted ones), so nothing traps; only
            // its sticky flags change, which no Rust code reads. It may use
            // the stack (pushfq in the compare rows), so no `nostack`.
            unsafe {
                core::arch::asm!(
                    "movdqu xmm0, [{a}]",
                    "movdqu xmm1, [{b}]",
                    $text,
                    "movdqu [{a}], xmm0",
                    "stmxcsr [{csr}]",
                    a = in(reg) $a.as_mut_ptr(),
                    b = in(reg) $b.as_ptr(),
                    csr = in(reg) core::ptr::from_mut::<u32>($csr),
                    g = inout(reg) *$g,
                    out("xmm0") _,
                    out("xmm1") _,
                );
            }
        } else {
            let mut saved = 0u32;
            // SAFETY: the block reads 16 bytes at `a` and `b` and writes 16
            // at `a` (both are `[u64; 2]`), reads and writes the u32s behind
            // `csr` and `saved`, clobbers only xmm0, xmm1, `g` and the
            // arithmetic flags, and restores the host's MXCSR control bits
            // (with its flags cleared, so that the next operation can take
            // the fast path). The MXCSR it loads masks every exception, so
            // nothing traps. It may use the stack (pushfq in the compare
            // rows), so no `nostack`.
            unsafe {
                core::arch::asm!(
                    "stmxcsr [{saved}]",
                    "ldmxcsr [{csr}]",
                    "movdqu xmm0, [{a}]",
                    "movdqu xmm1, [{b}]",
                    $text,
                    "movdqu [{a}], xmm0",
                    "stmxcsr [{csr}]",
                    "and dword ptr [{saved}], -64",
                    "ldmxcsr [{saved}]",
                    a = in(reg) $a.as_mut_ptr(),
                    b = in(reg) $b.as_ptr(),
                    csr = in(reg) core::ptr::from_mut::<u32>($csr),
                    saved = in(reg) &raw mut saved,
                    g = inout(reg) *$g,
                    out("xmm0") _,
                    out("xmm1") _,
                );
            }
        }
    }};
    (@run int $text:literal, $a:ident, $b:ident, $g:ident, $csr:ident, $free:ident) => {{
        let _ = (&$csr, $free);
        // SAFETY: reads 16 bytes at `a` and `b`, writes 16 at `a` (both
        // `[u64; 2]`); clobbers only xmm0, xmm1, `g` and the arithmetic
        // flags. Integer SSE instructions neither read nor write MXCSR.
        unsafe {
            core::arch::asm!(
                "movdqu xmm0, [{a}]",
                "movdqu xmm1, [{b}]",
                $text,
                "movdqu [{a}], xmm0",
                a = in(reg) $a.as_mut_ptr(),
                b = in(reg) $b.as_ptr(),
                g = inout(reg) *$g,
                out("xmm0") _,
                out("xmm1") _,
            );
        }
    }};
}

// Every text ends by naming `{g}` (asm! requires each operand to be used);
// `mov {g}, {g}` changes nothing.
ops! {
    Addss fp "addss xmm0, xmm1\nmov {g}, {g}",
    Addsd fp "addsd xmm0, xmm1\nmov {g}, {g}",
    Addps fp "addps xmm0, xmm1\nmov {g}, {g}",
    Addpd fp "addpd xmm0, xmm1\nmov {g}, {g}",
    Subss fp "subss xmm0, xmm1\nmov {g}, {g}",
    Subsd fp "subsd xmm0, xmm1\nmov {g}, {g}",
    Subps fp "subps xmm0, xmm1\nmov {g}, {g}",
    Subpd fp "subpd xmm0, xmm1\nmov {g}, {g}",
    Mulss fp "mulss xmm0, xmm1\nmov {g}, {g}",
    Mulsd fp "mulsd xmm0, xmm1\nmov {g}, {g}",
    Mulps fp "mulps xmm0, xmm1\nmov {g}, {g}",
    Mulpd fp "mulpd xmm0, xmm1\nmov {g}, {g}",
    Divss fp "divss xmm0, xmm1\nmov {g}, {g}",
    Divsd fp "divsd xmm0, xmm1\nmov {g}, {g}",
    Divps fp "divps xmm0, xmm1\nmov {g}, {g}",
    Divpd fp "divpd xmm0, xmm1\nmov {g}, {g}",
    Minss fp "minss xmm0, xmm1\nmov {g}, {g}",
    Minsd fp "minsd xmm0, xmm1\nmov {g}, {g}",
    Minps fp "minps xmm0, xmm1\nmov {g}, {g}",
    Minpd fp "minpd xmm0, xmm1\nmov {g}, {g}",
    Maxss fp "maxss xmm0, xmm1\nmov {g}, {g}",
    Maxsd fp "maxsd xmm0, xmm1\nmov {g}, {g}",
    Maxps fp "maxps xmm0, xmm1\nmov {g}, {g}",
    Maxpd fp "maxpd xmm0, xmm1\nmov {g}, {g}",
    Sqrtss fp "sqrtss xmm0, xmm1\nmov {g}, {g}",
    Sqrtsd fp "sqrtsd xmm0, xmm1\nmov {g}, {g}",
    Sqrtps fp "sqrtps xmm0, xmm1\nmov {g}, {g}",
    Sqrtpd fp "sqrtpd xmm0, xmm1\nmov {g}, {g}",
    Rcpss fp "rcpss xmm0, xmm1\nmov {g}, {g}",
    Rcpps fp "rcpps xmm0, xmm1\nmov {g}, {g}",
    Rsqrtss fp "rsqrtss xmm0, xmm1\nmov {g}, {g}",
    Rsqrtps fp "rsqrtps xmm0, xmm1\nmov {g}, {g}",
    Cmpss0 fp "cmpss xmm0, xmm1, 0\nmov {g}, {g}",
    Cmpss1 fp "cmpss xmm0, xmm1, 1\nmov {g}, {g}",
    Cmpss2 fp "cmpss xmm0, xmm1, 2\nmov {g}, {g}",
    Cmpss3 fp "cmpss xmm0, xmm1, 3\nmov {g}, {g}",
    Cmpss4 fp "cmpss xmm0, xmm1, 4\nmov {g}, {g}",
    Cmpss5 fp "cmpss xmm0, xmm1, 5\nmov {g}, {g}",
    Cmpss6 fp "cmpss xmm0, xmm1, 6\nmov {g}, {g}",
    Cmpss7 fp "cmpss xmm0, xmm1, 7\nmov {g}, {g}",
    Cmpsd0 fp "cmpsd xmm0, xmm1, 0\nmov {g}, {g}",
    Cmpsd1 fp "cmpsd xmm0, xmm1, 1\nmov {g}, {g}",
    Cmpsd2 fp "cmpsd xmm0, xmm1, 2\nmov {g}, {g}",
    Cmpsd3 fp "cmpsd xmm0, xmm1, 3\nmov {g}, {g}",
    Cmpsd4 fp "cmpsd xmm0, xmm1, 4\nmov {g}, {g}",
    Cmpsd5 fp "cmpsd xmm0, xmm1, 5\nmov {g}, {g}",
    Cmpsd6 fp "cmpsd xmm0, xmm1, 6\nmov {g}, {g}",
    Cmpsd7 fp "cmpsd xmm0, xmm1, 7\nmov {g}, {g}",
    Cmpps0 fp "cmpps xmm0, xmm1, 0\nmov {g}, {g}",
    Cmpps1 fp "cmpps xmm0, xmm1, 1\nmov {g}, {g}",
    Cmpps2 fp "cmpps xmm0, xmm1, 2\nmov {g}, {g}",
    Cmpps3 fp "cmpps xmm0, xmm1, 3\nmov {g}, {g}",
    Cmpps4 fp "cmpps xmm0, xmm1, 4\nmov {g}, {g}",
    Cmpps5 fp "cmpps xmm0, xmm1, 5\nmov {g}, {g}",
    Cmpps6 fp "cmpps xmm0, xmm1, 6\nmov {g}, {g}",
    Cmpps7 fp "cmpps xmm0, xmm1, 7\nmov {g}, {g}",
    Cmppd0 fp "cmppd xmm0, xmm1, 0\nmov {g}, {g}",
    Cmppd1 fp "cmppd xmm0, xmm1, 1\nmov {g}, {g}",
    Cmppd2 fp "cmppd xmm0, xmm1, 2\nmov {g}, {g}",
    Cmppd3 fp "cmppd xmm0, xmm1, 3\nmov {g}, {g}",
    Cmppd4 fp "cmppd xmm0, xmm1, 4\nmov {g}, {g}",
    Cmppd5 fp "cmppd xmm0, xmm1, 5\nmov {g}, {g}",
    Cmppd6 fp "cmppd xmm0, xmm1, 6\nmov {g}, {g}",
    Cmppd7 fp "cmppd xmm0, xmm1, 7\nmov {g}, {g}",
    // The compares leave RFLAGS in `g`.
    Comiss fp "comiss xmm0, xmm1\npushfq\npop {g}",
    Ucomiss fp "ucomiss xmm0, xmm1\npushfq\npop {g}",
    Comisd fp "comisd xmm0, xmm1\npushfq\npop {g}",
    Ucomisd fp "ucomisd xmm0, xmm1\npushfq\npop {g}",
    Cvtsi2ss32 fp "cvtsi2ss xmm0, {g:e}",
    Cvtsi2ss64 fp "cvtsi2ss xmm0, {g}",
    Cvtsi2sd32 fp "cvtsi2sd xmm0, {g:e}",
    Cvtsi2sd64 fp "cvtsi2sd xmm0, {g}",
    Cvtss2si32 fp "cvtss2si {g:e}, xmm1",
    Cvtss2si64 fp "cvtss2si {g}, xmm1",
    Cvttss2si32 fp "cvttss2si {g:e}, xmm1",
    Cvttss2si64 fp "cvttss2si {g}, xmm1",
    Cvtsd2si32 fp "cvtsd2si {g:e}, xmm1",
    Cvtsd2si64 fp "cvtsd2si {g}, xmm1",
    Cvttsd2si32 fp "cvttsd2si {g:e}, xmm1",
    Cvttsd2si64 fp "cvttsd2si {g}, xmm1",
    Cvtss2sd fp "cvtss2sd xmm0, xmm1\nmov {g}, {g}",
    Cvtsd2ss fp "cvtsd2ss xmm0, xmm1\nmov {g}, {g}",
    Cvtdq2ps fp "cvtdq2ps xmm0, xmm1\nmov {g}, {g}",
    Cvtps2dq fp "cvtps2dq xmm0, xmm1\nmov {g}, {g}",
    Cvttps2dq fp "cvttps2dq xmm0, xmm1\nmov {g}, {g}",
    Cvtdq2pd fp "cvtdq2pd xmm0, xmm1\nmov {g}, {g}",
    Cvtpd2dq fp "cvtpd2dq xmm0, xmm1\nmov {g}, {g}",
    Cvttpd2dq fp "cvttpd2dq xmm0, xmm1\nmov {g}, {g}",
    Cvtps2pd fp "cvtps2pd xmm0, xmm1\nmov {g}, {g}",
    Cvtpd2ps fp "cvtpd2ps xmm0, xmm1\nmov {g}, {g}",
    Movmskps int "movmskps {g:e}, xmm1",
    Movmskpd int "movmskpd {g:e}, xmm1",
    Pmovmskb int "pmovmskb {g:e}, xmm1",
    Paddb int "paddb xmm0, xmm1\nmov {g}, {g}",
    Paddw int "paddw xmm0, xmm1\nmov {g}, {g}",
    Paddd int "paddd xmm0, xmm1\nmov {g}, {g}",
    Paddq int "paddq xmm0, xmm1\nmov {g}, {g}",
    Psubb int "psubb xmm0, xmm1\nmov {g}, {g}",
    Psubw int "psubw xmm0, xmm1\nmov {g}, {g}",
    Psubd int "psubd xmm0, xmm1\nmov {g}, {g}",
    Psubq int "psubq xmm0, xmm1\nmov {g}, {g}",
    Paddsb int "paddsb xmm0, xmm1\nmov {g}, {g}",
    Paddsw int "paddsw xmm0, xmm1\nmov {g}, {g}",
    Paddusb int "paddusb xmm0, xmm1\nmov {g}, {g}",
    Paddusw int "paddusw xmm0, xmm1\nmov {g}, {g}",
    Psubsb int "psubsb xmm0, xmm1\nmov {g}, {g}",
    Psubsw int "psubsw xmm0, xmm1\nmov {g}, {g}",
    Psubusb int "psubusb xmm0, xmm1\nmov {g}, {g}",
    Psubusw int "psubusw xmm0, xmm1\nmov {g}, {g}",
    Pcmpeqb int "pcmpeqb xmm0, xmm1\nmov {g}, {g}",
    Pcmpeqw int "pcmpeqw xmm0, xmm1\nmov {g}, {g}",
    Pcmpeqd int "pcmpeqd xmm0, xmm1\nmov {g}, {g}",
    Pcmpgtb int "pcmpgtb xmm0, xmm1\nmov {g}, {g}",
    Pcmpgtw int "pcmpgtw xmm0, xmm1\nmov {g}, {g}",
    Pcmpgtd int "pcmpgtd xmm0, xmm1\nmov {g}, {g}",
    Pmullw int "pmullw xmm0, xmm1\nmov {g}, {g}",
    Pmulhw int "pmulhw xmm0, xmm1\nmov {g}, {g}",
    Pmulhuw int "pmulhuw xmm0, xmm1\nmov {g}, {g}",
    Pmuludq int "pmuludq xmm0, xmm1\nmov {g}, {g}",
    Pmaddwd int "pmaddwd xmm0, xmm1\nmov {g}, {g}",
    Psllw int "psllw xmm0, xmm1\nmov {g}, {g}",
    Pslld int "pslld xmm0, xmm1\nmov {g}, {g}",
    Psllq int "psllq xmm0, xmm1\nmov {g}, {g}",
    Psrlw int "psrlw xmm0, xmm1\nmov {g}, {g}",
    Psrld int "psrld xmm0, xmm1\nmov {g}, {g}",
    Psrlq int "psrlq xmm0, xmm1\nmov {g}, {g}",
    Psraw int "psraw xmm0, xmm1\nmov {g}, {g}",
    Psrad int "psrad xmm0, xmm1\nmov {g}, {g}",
    Punpcklbw int "punpcklbw xmm0, xmm1\nmov {g}, {g}",
    Punpcklwd int "punpcklwd xmm0, xmm1\nmov {g}, {g}",
    Punpckldq int "punpckldq xmm0, xmm1\nmov {g}, {g}",
    Punpckhbw int "punpckhbw xmm0, xmm1\nmov {g}, {g}",
    Punpckhwd int "punpckhwd xmm0, xmm1\nmov {g}, {g}",
    Punpckhdq int "punpckhdq xmm0, xmm1\nmov {g}, {g}",
    Unpcklps int "unpcklps xmm0, xmm1\nmov {g}, {g}",
    Unpckhps int "unpckhps xmm0, xmm1\nmov {g}, {g}",
    Packsswb int "packsswb xmm0, xmm1\nmov {g}, {g}",
    Packssdw int "packssdw xmm0, xmm1\nmov {g}, {g}",
    Packuswb int "packuswb xmm0, xmm1\nmov {g}, {g}",
    Pmaxub int "pmaxub xmm0, xmm1\nmov {g}, {g}",
    Pminub int "pminub xmm0, xmm1\nmov {g}, {g}",
    Pmaxsw int "pmaxsw xmm0, xmm1\nmov {g}, {g}",
    Pminsw int "pminsw xmm0, xmm1\nmov {g}, {g}",
    Pavgb int "pavgb xmm0, xmm1\nmov {g}, {g}",
    Pavgw int "pavgw xmm0, xmm1\nmov {g}, {g}",
    Psadbw int "psadbw xmm0, xmm1\nmov {g}, {g}",
    // SSE3 (only translated where the host has it: see crate::mmx::sse3)
    Addsubps fp "addsubps xmm0, xmm1\nmov {g}, {g}",
    Addsubpd fp "addsubpd xmm0, xmm1\nmov {g}, {g}",
    Haddps fp "haddps xmm0, xmm1\nmov {g}, {g}",
    Haddpd fp "haddpd xmm0, xmm1\nmov {g}, {g}",
    Hsubps fp "hsubps xmm0, xmm1\nmov {g}, {g}",
    Hsubpd fp "hsubpd xmm0, xmm1\nmov {g}, {g}",
    Movshdup int "movshdup xmm0, xmm1\nmov {g}, {g}",
    Movsldup int "movsldup xmm0, xmm1\nmov {g}, {g}",
    Movddup int "movddup xmm0, xmm1\nmov {g}, {g}",
    // SSSE3 (likewise: crate::mmx::ssse3)
    Pabsb int "pabsb xmm0, xmm1\nmov {g}, {g}",
    Pabsw int "pabsw xmm0, xmm1\nmov {g}, {g}",
    Pabsd int "pabsd xmm0, xmm1\nmov {g}, {g}",
    Phaddw int "phaddw xmm0, xmm1\nmov {g}, {g}",
    Phaddd int "phaddd xmm0, xmm1\nmov {g}, {g}",
    Phaddsw int "phaddsw xmm0, xmm1\nmov {g}, {g}",
    Phsubw int "phsubw xmm0, xmm1\nmov {g}, {g}",
    Phsubd int "phsubd xmm0, xmm1\nmov {g}, {g}",
    Phsubsw int "phsubsw xmm0, xmm1\nmov {g}, {g}",
    Pmaddubsw int "pmaddubsw xmm0, xmm1\nmov {g}, {g}",
    Pmulhrsw int "pmulhrsw xmm0, xmm1\nmov {g}, {g}",
    Pshufb int "pshufb xmm0, xmm1\nmov {g}, {g}",
    Psignb int "psignb xmm0, xmm1\nmov {g}, {g}",
    Psignw int "psignw xmm0, xmm1\nmov {g}, {g}",
    Psignd int "psignd xmm0, xmm1\nmov {g}, {g}",
}

/// Register number from a helper argument byte (out-of-range numbers,
/// which the translator never passes, use the scratch slot).
fn xreg(v: u64) -> usize {
    let n = (v & 0xff) as usize;
    if n <= XMM_TMP { n } else { XMM_TMP }
}

/// Runs [`Op`] `op` with destination `regs & 0xff`, source `regs >> 8 &
/// 0xff` and general-purpose operand `g`; returns the general-purpose
/// result (see the module docs).
pub extern "C" fn helper_sse(env: *mut u8, op: u64, regs: u64, g: u64) -> u64 {
    // SAFETY: translated code passes its CPU-state pointer, an X86State not
    // otherwise borrowed while the helper runs.
    let s = unsafe { &mut *(env as *mut X86State) };
    let Some(op) = Op::from_u64(op) else {
        s.header.helper_exit = EXIT_UD;
        return 0;
    };
    let (d, src) = (xreg(regs), xreg(regs >> 8));
    match exec(op, s.xmm[d], s.xmm[src], g, s.mxcsr as u32) {
        Ok((a, g, raised)) => {
            s.mxcsr |= raised as u64;
            s.xmm[d] = a;
            g
        }
        Err(flags) => {
            s.mxcsr |= flags as u64;
            s.header.helper_exit = if s.cr4 & ctl::CR4_OSXMMEXCPT != 0 {
                EXIT_XM
            } else {
                EXIT_UD
            };
            0
        }
    }
}

/// Runs `op` on values under the guest MXCSR `guest`: the new destination,
/// the general-purpose result and the flags raised, or, for an unmasked
/// exception, `Err` with the flags to record.
pub fn exec(
    op: Op,
    a: [u64; 2],
    b: [u64; 2],
    g: u64,
    guest: u32,
) -> Result<([u64; 2], u64, u32), u32> {
    let (a0, g0) = (a, g);
    let (mut a, mut g) = (a, g);
    // Keep rounding, FTZ and DAZ; mask everything; clear the flags.
    let base = (guest & !mxcsr::FLAGS & 0xffff) | mxcsr::MASKS;
    // FTZ applies only while underflow is masked.
    let ue_unmasked = guest & (mxcsr::UE << 7) == 0;
    let mut csr = if ue_unmasked {
        base & !mxcsr::FTZ
    } else {
        base
    };
    // Flags the guest already has and masks may show up again unharmed.
    let free = guest & mxcsr::FLAGS & (guest >> 7);
    run_host(op, &mut a, &b, &mut g, &mut csr, free);
    if !op.is_fp() {
        return Ok((a, g, 0));
    }
    let raised = csr & mxcsr::FLAGS;
    let masks = guest >> 7 & mxcsr::FLAGS;
    let unmasked = raised & !masks;
    let pre = raised & (mxcsr::IE | mxcsr::DE | mxcsr::ZE);
    if unmasked & pre != 0 {
        // Pre-computation: nothing is computed, so no OE/UE/PE.
        return Err(pre);
    }
    // An unmasked underflow fires on a tiny result even when it is exact,
    // which the masked run does not flag. Under FTZ the host flags UE for
    // every tiny result: ask it.
    let tiny = ue_unmasked && {
        let (mut a1, mut g1, mut csr1) = (a0, g0, base | mxcsr::FTZ);
        run_host(op, &mut a1, &b, &mut g1, &mut csr1, 0);
        csr1 & mxcsr::UE != 0
    };
    if unmasked == 0 && !tiny {
        return Ok((a, g, raised));
    }
    if unmasked & (mxcsr::OE | mxcsr::UE) != 0 || tiny {
        // Unmasked overflow or underflow: PE means "inexact with unbounded
        // exponent", which needs the lanes one by one.
        if let Some(flags) = lane_flags(op, a0, b, base, ue_unmasked, masks) {
            return Err(flags);
        }
        return Err(raised | if tiny { mxcsr::UE } else { 0 });
    }
    Err(raised)
}

/// The flags of an instruction that faults with an unmasked overflow or
/// underflow, lane by lane: each lane runs alone as the scalar operation;
/// a lane with an unmasked OE or UE (UE also for exact tiny results) gets
/// PE only if its result, rounded with unbounded exponent, is inexact
/// ([`inexact_unbounded`]). `None` for operations that cannot overflow or
/// underflow.
fn lane_flags(
    op: Op,
    a: [u64; 2],
    b: [u64; 2],
    base: u32,
    ue_unmasked: bool,
    masks: u32,
) -> Option<u32> {
    use Op::*;
    // (scalar op, lanes, lane width in bits of the sources, destination
    // mantissa bits, operation)
    let (scalar, n, width, p, kind) = match op {
        Addss | Subss | Mulss | Divss => (op, 1, 32, 24, op),
        Addsd | Subsd | Mulsd | Divsd => (op, 1, 64, 53, op),
        Addps => (Addss, 4, 32, 24, Addss),
        Subps => (Subss, 4, 32, 24, Subss),
        Mulps => (Mulss, 4, 32, 24, Mulss),
        Divps => (Divss, 4, 32, 24, Divss),
        Addpd => (Addsd, 2, 64, 53, Addsd),
        Subpd => (Subsd, 2, 64, 53, Subsd),
        Mulpd => (Mulsd, 2, 64, 53, Mulsd),
        Divpd => (Divsd, 2, 64, 53, Divsd),
        Cvtsd2ss => (op, 1, 64, 24, op),
        Cvtpd2ps => (Cvtsd2ss, 2, 64, 24, Cvtsd2ss),
        _ => return None,
    };
    let lane = |v: [u64; 2], i: usize| -> u64 {
        if width == 32 {
            (v[i / 2] >> (32 * (i % 2))) & 0xffff_ffff
        } else {
            v[i]
        }
    };
    let daz = base & (1 << 6) != 0;
    let mut total = 0;
    for i in 0..n {
        let (la, lb) = (lane(a, i), lane(b, i));
        let run_lane = |csr: u32| {
            let (mut a1, mut g, mut csr) = ([la, 0], 0, csr);
            run_host(scalar, &mut a1, &[lb, 0], &mut g, &mut csr, 0);
            csr & mxcsr::FLAGS
        };
        let mut flags = if ue_unmasked {
            // As in `exec`: no FTZ, and tininess from a run with FTZ.
            run_lane(base & !mxcsr::FTZ) | (run_lane(base | mxcsr::FTZ) & mxcsr::UE)
        } else {
            run_lane(base)
        };
        if flags & (mxcsr::OE | mxcsr::UE) & !masks != 0 {
            flags &= !mxcsr::PE;
            if inexact_unbounded(kind, la, lb, width, p, daz) {
                flags |= mxcsr::PE;
            }
        }
        total |= flags;
    }
    Some(total)
}

/// A finite nonzero value as `mantissa * 2^exp` (`None` for zero, and for
/// denormals under DAZ).
fn decode(bits: u64, width: u32, daz: bool) -> Option<(bool, u128, i32)> {
    let (mbits, ebits): (u32, u32) = if width == 32 { (23, 8) } else { (52, 11) };
    let neg = bits >> (width - 1) & 1 != 0;
    let e = (bits >> mbits & ((1 << ebits) - 1)) as i32;
    let f = (bits & ((1 << mbits) - 1)) as u128;
    let bias: i32 = (1 << (ebits - 1)) - 1;
    if e == 0 {
        if f == 0 || daz {
            return None;
        }
        return Some((neg, f, 1 - bias - mbits as i32));
    }
    Some((neg, f | 1 << mbits, e - bias - mbits as i32))
}

/// Significant bits of `m` (from the top set bit to the lowest).
fn span(m: u128) -> u32 {
    if m == 0 {
        0
    } else {
        128 - m.leading_zeros() - m.trailing_zeros()
    }
}

/// Whether `a op b` (or the conversion of `b`), rounded to `p` mantissa
/// bits with unbounded exponent, is inexact. Only called for finite
/// operands (an infinite or NaN operand cannot overflow or underflow).
fn inexact_unbounded(kind: Op, a: u64, b: u64, width: u32, p: u32, daz: bool) -> bool {
    let (x, y) = (decode(a, width, daz), decode(b, width, daz));
    match kind {
        Op::Cvtsd2ss => y.is_some_and(|(_, m, _)| span(m) > p),
        Op::Mulss | Op::Mulsd => match (x, y) {
            (Some((_, ma, _)), Some((_, mb, _))) => span(ma * mb) > p,
            _ => false,
        },
        Op::Divss | Op::Divsd => match (x, y) {
            (Some((_, ma, _)), Some((_, mb, _))) => {
                let (oa, ob) = (ma >> ma.trailing_zeros(), mb >> mb.trailing_zeros());
                oa % ob != 0 || span(oa / ob) > p
            }
            _ => false,
        },
        _ => {
            let sub = matches!(kind, Op::Subss | Op::Subsd);
            let (Some((na, ma, ea)), Some((nb, mb, eb))) = (x, y) else {
                return false;
            };
            let nb = nb != sub;
            let lo = ea.min(eb);
            if ea.abs_diff(eb) > 70 {
                return true;
            }
            let va = (ma << (ea - lo)) as i128;
            let vb = (mb << (eb - lo)) as i128;
            let sum = if na { -va } else { va } + if nb { -vb } else { vb };
            span(sum.unsigned_abs()) > p
        }
    }
}

/// [`run`] on x86-64 hosts (see [`available`]).
#[cfg(target_arch = "x86_64")]
fn run_host(op: Op, a: &mut [u64; 2], b: &[u64; 2], g: &mut u64, csr: &mut u32, free: u32) {
    run(op, a, b, g, csr, free);
}

#[cfg(not(target_arch = "x86_64"))]
fn run_host(_op: Op, _a: &mut [u64; 2], _b: &[u64; 2], _g: &mut u64, _csr: &mut u32, _free: u32) {
    // Unreachable: without `available()` the translator emits #UD instead.
}

/// Shuffles and byte shifts with an immediate, done in Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Shuf {
    /// pshufd
    Pshufd,
    /// pshuflw
    Pshuflw,
    /// pshufhw
    Pshufhw,
    /// shufps
    Shufps,
    /// shufpd
    Shufpd,
    /// pslldq
    Pslldq,
    /// psrldq
    Psrldq,
    /// palignr (SSSE3)
    Palignr,
}

/// The result of shuffle `op` with destination `a`, source `b` and
/// immediate `imm`.
pub fn shuffle(op: Shuf, a: [u64; 2], b: [u64; 2], imm: u8) -> [u64; 2] {
    let dw = |v: [u64; 2], i: u8| -> u32 { (v[(i as usize >> 1) & 1] >> (32 * (i & 1))) as u32 };
    let w = |q: u64, i: u8| -> u64 { (q >> (16 * (i & 3))) & 0xffff };
    let words =
        |q: u64| -> u64 { (0..4).fold(0u64, |acc, k| acc | w(q, imm >> (2 * k)) << (16 * k)) };
    let pack = |d: [u32; 4]| -> [u64; 2] {
        [
            d[0] as u64 | (d[1] as u64) << 32,
            d[2] as u64 | (d[3] as u64) << 32,
        ]
    };
    let sel = |k: u32| (imm >> (2 * k)) & 3;
    match op {
        Shuf::Pshufd => pack([dw(b, sel(0)), dw(b, sel(1)), dw(b, sel(2)), dw(b, sel(3))]),
        Shuf::Pshuflw => [words(b[0]), b[1]],
        Shuf::Pshufhw => [b[0], words(b[1])],
        Shuf::Shufps => pack([dw(a, sel(0)), dw(a, sel(1)), dw(b, sel(2)), dw(b, sel(3))]),
        Shuf::Shufpd => [a[(imm & 1) as usize], b[((imm >> 1) & 1) as usize]],
        Shuf::Palignr => {
            // dst:src as 256 bits, shifted right by imm bytes.
            let n = 8 * imm as u32;
            let lo = (b[1] as u128) << 64 | b[0] as u128;
            let hi = (a[1] as u128) << 64 | a[0] as u128;
            let r = match n {
                0 => lo,
                1..128 => lo >> n | hi << (128 - n),
                128 => hi,
                129..256 => hi >> (n - 128),
                _ => 0,
            };
            [r as u64, (r >> 64) as u64]
        }
        Shuf::Pslldq | Shuf::Psrldq => {
            let v = (b[1] as u128) << 64 | b[0] as u128;
            let bits = 8 * imm as u32;
            let r = match (op, bits) {
                (_, 128..) => 0,
                (Shuf::Pslldq, n) => v << n,
                (_, n) => v >> n,
            };
            [r as u64, (r >> 64) as u64]
        }
    }
}

/// Shuffle `op` (a [`Shuf`]) with destination `regs & 0xff`, source
/// `regs >> 8 & 0xff` and immediate `imm`.
pub extern "C" fn helper_shuffle(env: *mut u8, op: u64, regs: u64, imm: u64) -> u64 {
    // SAFETY: translated code passes its CPU-state pointer, an X86State not
    // otherwise borrowed while the helper runs.
    let s = unsafe { &mut *(env as *mut X86State) };
    let op = match op {
        0 => Shuf::Pshufd,
        1 => Shuf::Pshuflw,
        2 => Shuf::Pshufhw,
        3 => Shuf::Shufps,
        4 => Shuf::Shufpd,
        5 => Shuf::Pslldq,
        6 => Shuf::Psrldq,
        _ => Shuf::Palignr,
    };
    let (d, src) = (xreg(regs), xreg(regs >> 8));
    s.xmm[d] = shuffle(op, s.xmm[d], s.xmm[src], imm as u8);
    0
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn f32s(v: [f32; 4]) -> [u64; 2] {
        let b: Vec<u64> = v.iter().map(|f| f.to_bits() as u64).collect();
        [b[0] | b[1] << 32, b[2] | b[3] << 32]
    }

    #[test]
    fn rounding_mode_is_the_guests() {
        let one = f32s([1.0, 0.0, 0.0, 0.0]);
        let tiny = f32s([f32::EPSILON / 4.0, 0.0, 0.0, 0.0]);
        // Round up (RC = 10b): 1 + tiny rounds to the next float.
        let (r, _, flags) = exec(Op::Addss, one, tiny, 0, 0x1f80 | 2 << 13).unwrap();
        assert_eq!(r[0] as u32, 1.0f32.to_bits() + 1);
        assert_eq!(flags, mxcsr::PE);
        // Nearest: 1.
        let (r, _, _) = exec(Op::Addss, one, tiny, 0, 0x1f80).unwrap();
        assert_eq!(r[0] as u32, 1.0f32.to_bits());
    }

    #[test]
    fn unmasked_divide_by_zero_faults_without_a_result() {
        let one = f32s([1.0; 4]);
        let zero = f32s([0.0; 4]);
        assert_eq!(
            exec(Op::Divps, one, zero, 0, 0x1f80 & !(1 << 9)),
            Err(mxcsr::ZE)
        );
        let (r, _, flags) = exec(Op::Divps, one, zero, 0, 0x1f80).unwrap();
        assert_eq!(r, f32s([f32::INFINITY; 4]));
        assert_eq!(flags, mxcsr::ZE);
    }

    #[test]
    fn out_of_range_conversion_is_integer_indefinite() {
        let big = [1e30f64.to_bits(), 0];
        let (_, g, flags) = exec(Op::Cvttsd2si32, [0; 2], big, 0, 0x1f80).unwrap();
        assert_eq!(g, 0x8000_0000);
        assert_eq!(flags, mxcsr::IE);
    }

    #[test]
    fn inexact_with_unbounded_exponent() {
        let f = |v: f32| v.to_bits() as u64;
        let d = |v: f64| v.to_bits();
        // 2^127 * 4 is exact (it only overflows); (1 + 2^-23) * 3 is not.
        assert!(!inexact_unbounded(
            Op::Mulss,
            f(2f32.powi(127)),
            f(4.0),
            32,
            24,
            false
        ));
        assert!(inexact_unbounded(
            Op::Mulss,
            f(1.0 + f32::EPSILON),
            f(3.0),
            32,
            24,
            false
        ));
        // 1/3 is inexact; 3/4 exact.
        assert!(inexact_unbounded(Op::Divsd, d(1.0), d(3.0), 64, 53, false));
        assert!(!inexact_unbounded(Op::Divsd, d(3.0), d(4.0), 64, 53, false));
        // Far-apart addends never fit; a cancelling difference does.
        assert!(inexact_unbounded(
            Op::Addsd,
            d(1e300),
            d(1e-300),
            64,
            53,
            false
        ));
        assert!(!inexact_unbounded(
            Op::Subss,
            f(1.5),
            f(1.25),
            32,
            24,
            false
        ));
        // A double with more than 24 significant bits does not fit a float.
        assert!(inexact_unbounded(
            Op::Cvtsd2ss,
            0,
            d(1.0 + f64::EPSILON),
            64,
            24,
            false
        ));
        assert!(!inexact_unbounded(
            Op::Cvtsd2ss,
            0,
            d(2f64.powi(-1000)),
            64,
            24,
            false
        ));
    }

    #[test]
    fn shuffles() {
        let a = [0x1111_1111_0000_0000, 0x3333_3333_2222_2222];
        let b = [0x5555_5555_4444_4444, 0x7777_7777_6666_6666];
        assert_eq!(
            shuffle(Shuf::Pshufd, a, b, 0x1b),
            [0x6666_6666_7777_7777, 0x4444_4444_5555_5555]
        );
        assert_eq!(
            shuffle(Shuf::Shufps, a, b, 0x44),
            [0x1111_1111_0000_0000, 0x5555_5555_4444_4444]
        );
        assert_eq!(
            shuffle(Shuf::Psrldq, a, b, 4),
            [0x6666_6666_5555_5555, 0x7777_7777]
        );
        assert_eq!(shuffle(Shuf::Pslldq, a, b, 16), [0, 0]);
    }
}
