//! The x86-64 CPU state translated code runs against.
//!
//! [`X86State`] is `#[repr(C)]`, starts with the translator's
//! [`TcgContextHeader`], and holds every field as a `u64` so translated code
//! reads and writes each with one 8-byte `ld_env`/`st_env` at a constant
//! offset (the `*_OFF` constants, checked at compile time).
//!
//! # Condition codes
//!
//! The six arithmetic flags (CF, PF, AF, ZF, SF, OF) are kept *lazily*, as
//! QEMU does: an instruction that sets flags stores the kind of operation
//! ([`CcOp`], with its operand size) and up to three operands (`cc_dst`,
//! `cc_src`, `cc_src2`), not the flags themselves: two to four plain stores per
//! flag-setting instruction (only the fields the kind needs), of which the optimizer's dead-store elimination
//! drops all but the last before a barrier, and a later `jcc`/`setcc`/`cmovcc`
//! in the same block reads the operands the translator still holds in temps:
//! `cmp; jb` becomes one host compare. Only when the operation is not known
//! at translation time (a block starting with `jcc`, flags after a shift by a
//! variable count of maybe zero) does translated code call the pure helper
//! [`crate::flags::compute`], which builds the flags from the four fields. Per
//! flag fields would instead cost six computations per instruction whenever a
//! memory access (a barrier) sits between two flag writes, which in gcc code
//! is most of the time.
//!
//! The other RFLAGS bits (IF, DF, TF, IOPL, AC, ID and the fixed bit 1) live
//! in `eflags`, whose arithmetic bits are always zero. The architectural RFLAGS
//! is `eflags | compute(cc_op, cc_dst, cc_src, cc_src2)`
//! ([`X86State::rflags`]).
//!
//! # SSE
//!
//! The sixteen XMM registers are `[u64; 2]` pairs (low, high) so that moves
//! are plain 8-byte `ld_env`/`st_env`s; a seventeenth slot, [`XMM_TMP`],
//! holds a memory operand for the SSE helpers. MXCSR is a field of its own.
//! The x87 state is described in [`crate::x87`]. None of this is in `machine::X86CpuState`, which has no XMM state:
//! it survives `load_machine` unchanged.
//!
//! # Segments
//!
//! Each segment register is four words: selector, base, limit and the
//! descriptor's attribute bits (see [`SegCache`]). Linear addresses are
//! formed by the translator from the base (only FS and GS in 64-bit mode).
//! In real mode (CR0.PE = 0) a segment load sets the selector and base =
//! selector << 4 and keeps the cached limit and attributes, so the same
//! fields describe real, protected and long mode, and
//! `machine::X86CpuState` (which holds CR0 and the segment caches) round-trips
//! all three.

use accel_tcg::softmmu::{CpuState, TcgContextHeader};
use machine::{Segment, TableRegister, X86CpuState};
use std::mem::offset_of;

use crate::flags::{self, CcOp};

/// Segment register numbers in encoding order.
pub mod seg {
    /// ES
    pub const ES: usize = 0;
    /// CS
    pub const CS: usize = 1;
    /// SS
    pub const SS: usize = 2;
    /// DS
    pub const DS: usize = 3;
    /// FS
    pub const FS: usize = 4;
    /// GS
    pub const GS: usize = 5;
}

/// RFLAGS bits.
pub mod rflags {
    /// carry
    pub const CF: u64 = 1 << 0;
    /// always one
    pub const FIXED: u64 = 1 << 1;
    /// parity
    pub const PF: u64 = 1 << 2;
    /// adjust
    pub const AF: u64 = 1 << 4;
    /// zero
    pub const ZF: u64 = 1 << 6;
    /// sign
    pub const SF: u64 = 1 << 7;
    /// trap
    pub const TF: u64 = 1 << 8;
    /// interrupt enable
    pub const IF: u64 = 1 << 9;
    /// direction
    pub const DF: u64 = 1 << 10;
    /// overflow
    pub const OF: u64 = 1 << 11;
    /// I/O privilege level
    pub const IOPL: u64 = 3 << 12;
    /// nested task
    pub const NT: u64 = 1 << 14;
    /// resume
    pub const RF: u64 = 1 << 16;
    /// virtual-8086 mode
    pub const VM: u64 = 1 << 17;
    /// alignment check
    pub const AC: u64 = 1 << 18;
    /// CPUID available
    pub const ID: u64 = 1 << 21;
    /// The six arithmetic flags.
    pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
    /// Bits software may change with popf at CPL 0 (VM and RF excepted).
    pub const WRITABLE: u64 = ARITH | TF | IF | DF | IOPL | NT | AC | ID;
}

/// Control register and EFER bits the front end looks at.
pub mod ctl {
    /// CR0.PE: protected mode
    pub const CR0_PE: u64 = 1 << 0;
    /// CR0.MP
    pub const CR0_MP: u64 = 1 << 1;
    /// CR0.EM
    pub const CR0_EM: u64 = 1 << 2;
    /// CR0.TS
    pub const CR0_TS: u64 = 1 << 3;
    /// CR0.ET
    pub const CR0_ET: u64 = 1 << 4;
    /// CR0.NE
    pub const CR0_NE: u64 = 1 << 5;
    /// CR0.WP: supervisor writes honour read-only pages
    pub const CR0_WP: u64 = 1 << 16;
    /// CR0.AM
    pub const CR0_AM: u64 = 1 << 18;
    /// CR0.NW
    pub const CR0_NW: u64 = 1 << 29;
    /// CR0.CD
    pub const CR0_CD: u64 = 1 << 30;
    /// CR0.PG: paging
    pub const CR0_PG: u64 = 1 << 31;
    /// CR4.PSE: 4 MiB pages in 32-bit paging
    pub const CR4_PSE: u64 = 1 << 4;
    /// CR4.PAE
    pub const CR4_PAE: u64 = 1 << 5;
    /// CR4.PGE
    pub const CR4_PGE: u64 = 1 << 7;
    /// CR4.OSFXSR
    pub const CR4_OSFXSR: u64 = 1 << 9;
    /// CR4.OSXMMEXCPT
    pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
    /// CR4.FSGSBASE
    pub const CR4_FSGSBASE: u64 = 1 << 16;
    /// EFER.SCE: syscall/sysret enabled
    pub const EFER_SCE: u64 = 1 << 0;
    /// EFER.LME: long mode enabled
    pub const EFER_LME: u64 = 1 << 8;
    /// EFER.LMA: long mode active
    pub const EFER_LMA: u64 = 1 << 10;
    /// EFER.NXE: no-execute enabled
    pub const EFER_NXE: u64 = 1 << 11;
}

/// Segment attribute bits in [`SegCache::attrs`]: bits 40..=55 of a
/// descriptor shifted down by 40, plus an "unusable" bit.
pub mod attr {
    /// type field (4 bits)
    pub const TYPE: u64 = 0xf;
    /// code or data (not system)
    pub const S: u64 = 1 << 4;
    /// DPL shift
    pub const DPL_SHIFT: u32 = 5;
    /// present
    pub const P: u64 = 1 << 7;
    /// available to software
    pub const AVL: u64 = 1 << 12;
    /// 64-bit code
    pub const L: u64 = 1 << 13;
    /// default size 32
    pub const DB: u64 = 1 << 14;
    /// granularity 4K
    pub const G: u64 = 1 << 15;
    /// the register holds no usable segment (null selector)
    pub const UNUSABLE: u64 = 1 << 16;
}

/// A segment register with its hidden descriptor cache.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegCache {
    /// The visible selector.
    pub selector: u64,
    /// Base address.
    pub base: u64,
    /// Limit in bytes (granularity applied).
    pub limit: u64,
    /// Attribute bits, see [`attr`].
    pub attrs: u64,
}

impl SegCache {
    /// The descriptor privilege level.
    pub fn dpl(&self) -> u64 {
        (self.attrs >> attr::DPL_SHIFT) & 3
    }

    /// Builds the cache from an 8-byte descriptor and its selector.
    pub fn from_descriptor(selector: u16, desc: u64) -> SegCache {
        let base = ((desc >> 16) & 0xff_ffff) | (((desc >> 56) & 0xff) << 24);
        let mut limit = (desc & 0xffff) | (((desc >> 48) & 0xf) << 16);
        let attrs = (desc >> 40) & 0xf0ff;
        if attrs & attr::G != 0 {
            limit = (limit << 12) | 0xfff;
        }
        SegCache {
            selector: selector as u64,
            base,
            limit,
            attrs,
        }
    }

    fn from_machine(s: &Segment) -> SegCache {
        let mut attrs = (s.type_ as u64 & 0xf) | ((s.dpl as u64 & 3) << attr::DPL_SHIFT);
        for (on, bit) in [
            (s.s, attr::S),
            (s.present, attr::P),
            (s.avl, attr::AVL),
            (s.l, attr::L),
            (s.db, attr::DB),
            (s.g, attr::G),
            (s.unusable, attr::UNUSABLE),
        ] {
            if on {
                attrs |= bit;
            }
        }
        SegCache {
            selector: s.selector as u64,
            base: s.base,
            limit: s.limit as u64,
            attrs,
        }
    }

    fn to_machine(self) -> Segment {
        Segment {
            selector: self.selector as u16,
            base: self.base,
            limit: self.limit as u32,
            type_: (self.attrs & attr::TYPE) as u8,
            present: self.attrs & attr::P != 0,
            dpl: self.dpl() as u8,
            db: self.attrs & attr::DB != 0,
            s: self.attrs & attr::S != 0,
            l: self.attrs & attr::L != 0,
            g: self.attrs & attr::G != 0,
            avl: self.attrs & attr::AVL != 0,
            unusable: self.attrs & attr::UNUSABLE != 0,
        }
    }
}

/// The x86-64 CPU state.
#[repr(C)]
#[derive(Debug)]
pub struct X86State {
    /// The translator's header (TLB, exit words).
    pub header: TcgContextHeader,
    /// rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15.
    pub regs: [u64; 16],
    /// The instruction pointer (valid outside translated code).
    pub rip: u64,
    /// RFLAGS without the arithmetic flags (those are in `cc_*`).
    pub eflags: u64,
    /// The operation that last set the flags ([`CcOp`] as u64).
    pub cc_op: u64,
    /// Its result.
    pub cc_dst: u64,
    /// Its source operand (meaning depends on `cc_op`).
    pub cc_src: u64,
    /// A second source (carry in for adc/sbb).
    pub cc_src2: u64,
    /// ES, CS, SS, DS, FS, GS.
    pub segs: [SegCache; 6],
    /// Task register.
    pub tr: SegCache,
    /// LDT register.
    pub ldtr: SegCache,
    /// GDTR base.
    pub gdt_base: u64,
    /// GDTR limit.
    pub gdt_limit: u64,
    /// IDTR base.
    pub idt_base: u64,
    /// IDTR limit.
    pub idt_limit: u64,
    /// CR0.
    pub cr0: u64,
    /// CR2 (page-fault address).
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8 (task priority), kept but unused.
    pub cr8: u64,
    /// EFER.
    pub efer: u64,
    /// IA32_STAR.
    pub star: u64,
    /// IA32_LSTAR.
    pub lstar: u64,
    /// IA32_CSTAR.
    pub cstar: u64,
    /// IA32_FMASK.
    pub sfmask: u64,
    /// IA32_KERNEL_GS_BASE.
    pub kernel_gs_base: u64,
    /// IA32_TSC_AUX.
    pub tsc_aux: u64,
    /// Added to the host-derived time stamp counter (written by wrmsr TSC).
    pub tsc_offset: u64,
    /// IA32_APIC_BASE, as this CPU's local APIC starts (enabled at
    /// 0xfee0_0000, BSP flag on CPU 0); writes are kept, not forwarded.
    pub apic_base: u64,
    /// IA32_PAT.
    pub pat: u64,
    /// IA32_MISC_ENABLE.
    pub misc_enable: u64,
    /// Current privilege level.
    pub cpl: u64,
    /// DR6, the debug status (BS, bit 14, after a single-step trap).
    pub dr6: u64,
    /// Operands translated code leaves for an instruction finished in Rust.
    pub scratch: [u64; 4],
    /// xmm0..xmm15 as (low, high) quadwords, then [`XMM_TMP`]: a slot the
    /// translator loads memory operands into so that SSE helpers only ever
    /// see register numbers.
    pub xmm: [[u64; 2]; 17],
    /// MXCSR (bits 0-15; reset value 0x1f80).
    pub mxcsr: u64,
    /// The x87 control word; the status word, the abridged tag word and
    /// ST0-ST7 follow, in fxsave's own form (see [`crate::x87`]).
    pub fpu_fcw: u64,
    /// x87 status word, with TOP in bits 11-13.
    pub fpu_fsw: u64,
    /// x87 abridged tag word: bit p set when *physical* register p is not
    /// empty.
    pub fpu_ftw: u64,
    /// ST0-ST7 (relative to TOP, as fxsave stores them; MM0-MM7 alias
    /// them): the 80-bit value in the low 10 bytes of each 16-byte slot.
    pub fpu_st: [[u64; 2]; 8],
    /// x87 last instruction opcode (11 bits, as fxsave stores it).
    pub fpu_fop: u64,
    /// x87 last instruction pointer: the rip (offset) of the last
    /// non-control x87 instruction.
    pub fpu_fip: u64,
    /// x87 last instruction's CS selector.
    pub fpu_fcs: u64,
    /// x87 last data pointer: the offset of the last non-control x87
    /// instruction's memory operand.
    pub fpu_fdp: u64,
    /// x87 last data pointer's segment selector.
    pub fpu_fds: u64,
    /// An x87 memory operand (up to the 108-byte fnsave image): translated
    /// code loads it here before, or stores it from here after, the x87
    /// helper ([`crate::x87`]).
    pub fpu_buf: [u64; 14],
    /// This CPU's index, its initial APIC ID (CPUID leaf 1, EBX[31:24]).
    pub cpu_index: u64,
    /// The VM clock the time stamp counter counts from (1 GHz: one tick per
    /// nanosecond since the clock's epoch). Generated code never reads it.
    pub clock: Option<std::sync::Arc<devices::Clock>>,
}

/// The index of the translator's scratch XMM slot in [`X86State::xmm`].
pub const XMM_TMP: usize = 16;

/// MXCSR after reset: all exceptions masked, round to nearest.
pub const MXCSR_RESET: u64 = 0x1f80;

/// The MXCSR bits software may set (fxsave's MXCSR_MASK): flags, DAZ,
/// masks, rounding control and FTZ. Setting any other bit is #GP(0).
pub const MXCSR_MASK: u64 = 0xffff;

// SAFETY: `X86State` is `#[repr(C)]` with the header first, and every field
// after it is a `u64` (or an array or struct of them): any bit pattern is valid.
unsafe impl CpuState for X86State {}

macro_rules! offs {
    ($($name:ident = $($field:tt).+;)*) => {
        $(
            #[doc = concat!("Offset of `", stringify!($($field).+), "`.")]
            pub const $name: u32 = offset_of!(X86State, $($field).+) as u32;
        )*
    };
}

offs! {
    REGS_OFF = regs;
    RIP_OFF = rip;
    EFLAGS_OFF = eflags;
    CC_OP_OFF = cc_op;
    CC_DST_OFF = cc_dst;
    CC_SRC_OFF = cc_src;
    CC_SRC2_OFF = cc_src2;
    SEGS_OFF = segs;
    GDT_BASE_OFF = gdt_base;
    GDT_LIMIT_OFF = gdt_limit;
    IDT_BASE_OFF = idt_base;
    IDT_LIMIT_OFF = idt_limit;
    CR0_OFF = cr0;
    CR2_OFF = cr2;
    CR3_OFF = cr3;
    CR4_OFF = cr4;
    CR8_OFF = cr8;
    EFER_OFF = efer;
    DR6_OFF = dr6;
    SCRATCH_OFF = scratch;
    XMM_OFF = xmm;
    MXCSR_OFF = mxcsr;
    FPU_FCW_OFF = fpu_fcw;
    FPU_FSW_OFF = fpu_fsw;
    FPU_FTW_OFF = fpu_ftw;
    FPU_ST_OFF = fpu_st;
    FPU_FOP_OFF = fpu_fop;
    FPU_FIP_OFF = fpu_fip;
    FPU_FCS_OFF = fpu_fcs;
    FPU_FDP_OFF = fpu_fdp;
    FPU_FDS_OFF = fpu_fds;
    FPU_BUF_OFF = fpu_buf;
}

/// Offset of quadword `half` (0 low, 1 high) of XMM register `n`
/// ([`XMM_TMP`] for the scratch slot).
pub const fn xmm_off(n: usize, half: usize) -> u32 {
    XMM_OFF + (16 * n + 8 * half) as u32
}

/// DR6's value at reset (its reserved bits read as ones).
pub const DR6_RESET: u64 = 0xffff_0ff0;
/// DR6.BS: the debug exception came from single-stepping.
pub const DR6_BS: u64 = 1 << 14;

/// Offset of general-purpose register `n` (encoding order).
pub const fn reg_off(n: usize) -> u32 {
    REGS_OFF + 8 * n as u32
}

/// Offset of the selector of segment register `s`.
pub const fn seg_selector_off(s: usize) -> u32 {
    SEGS_OFF + (s * size_of::<SegCache>()) as u32
}

/// Offset of the base of segment register `s`.
pub const fn seg_base_off(s: usize) -> u32 {
    seg_selector_off(s) + 8
}

/// Offset of scratch word `n`.
pub const fn scratch_off(n: usize) -> u32 {
    SCRATCH_OFF + 8 * n as u32
}

const _: () = assert!(REGS_OFF as usize == accel_tcg::softmmu::HEADER_SIZE);
const _: () = assert!(REGS_OFF.is_multiple_of(8));
const _: () = assert!(RIP_OFF == REGS_OFF + 128);
const _: () = assert!(size_of::<SegCache>() == 32);
const _: () = assert!(CC_DST_OFF == CC_OP_OFF + 8 && CC_SRC_OFF == CC_OP_OFF + 16);
const _: () = assert!(seg_base_off(seg::GS) as usize == offset_of!(X86State, segs) + 5 * 32 + 8);
const _: () = assert!(scratch_off(3) as usize + 8 <= size_of::<X86State>());
const _: () = assert!(XMM_OFF.is_multiple_of(8));
const _: () = assert!(xmm_off(XMM_TMP, 1) as usize == offset_of!(X86State, xmm) + 16 * 16 + 8);
const _: () = assert!(MXCSR_OFF == xmm_off(XMM_TMP, 1) + 8);
const _: () = assert!(FPU_ST_OFF as usize + 128 <= size_of::<X86State>());

impl Default for X86State {
    fn default() -> Self {
        X86State::new()
    }
}

impl X86State {
    /// moat's initial state: real mode with every base 0 (boards set a
    /// protected- or long-mode entry state before running, and
    /// [`crate::X86Cpu::reset_to_init`] gives the architectural INIT state).
    pub fn new() -> X86State {
        X86State {
            header: TcgContextHeader::new(),
            regs: [0; 16],
            rip: 0,
            eflags: rflags::FIXED,
            cc_op: CcOp::EFLAGS.0,
            cc_dst: 0,
            cc_src: 0,
            cc_src2: 0,
            segs: [SegCache {
                limit: 0xffff,
                attrs: attr::P | attr::S | 3,
                ..SegCache::default()
            }; 6],
            tr: SegCache::default(),
            ldtr: SegCache::default(),
            gdt_base: 0,
            gdt_limit: 0xffff,
            idt_base: 0,
            idt_limit: 0xffff,
            cr0: ctl::CR0_ET,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            star: 0,
            lstar: 0,
            cstar: 0,
            sfmask: 0,
            kernel_gs_base: 0,
            tsc_aux: 0,
            tsc_offset: 0,
            apic_base: 0xfee0_0900,
            pat: 0x0007_0406_0007_0406,
            misc_enable: 1,
            cpl: 0,
            dr6: DR6_RESET,
            scratch: [0; 4],
            xmm: [[0; 2]; 17],
            mxcsr: MXCSR_RESET,
            fpu_fcw: 0x37f,
            fpu_fsw: 0,
            fpu_ftw: 0,
            fpu_st: [[0; 2]; 8],
            fpu_fop: 0,
            fpu_fip: 0,
            fpu_fcs: 0,
            fpu_fdp: 0,
            fpu_fds: 0,
            fpu_buf: [0; 14],
            cpu_index: 0,
            clock: None,
        }
    }

    /// The architectural RFLAGS.
    pub fn rflags(&self) -> u64 {
        self.eflags | flags::compute(self.cc_op, self.cc_dst, self.cc_src, self.cc_src2)
    }

    /// Sets RFLAGS (all bits; the arithmetic ones become the lazy state).
    pub fn set_rflags(&mut self, v: u64) {
        self.eflags = (v & !rflags::ARITH) | rflags::FIXED;
        self.cc_op = CcOp::EFLAGS.0;
        self.cc_src = v & rflags::ARITH;
        self.cc_dst = 0;
        self.cc_src2 = 0;
    }

    /// True in 64-bit mode (long mode active and CS.L).
    pub fn code64(&self) -> bool {
        self.efer & ctl::EFER_LMA != 0 && self.segs[seg::CS].attrs & attr::L != 0
    }

    /// The linear address of the next instruction.
    pub fn pc(&self) -> u64 {
        if self.code64() {
            self.rip
        } else {
            self.segs[seg::CS].base.wrapping_add(self.rip) & 0xffff_ffff
        }
    }

    /// Copies the architectural state in.
    pub fn load_machine(&mut self, s: &X86CpuState) {
        self.regs = s.gprs;
        self.rip = s.rip;
        self.set_rflags(s.rflags);
        for (i, m) in [&s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs]
            .into_iter()
            .enumerate()
        {
            self.segs[i] = SegCache::from_machine(m);
        }
        self.tr = SegCache::from_machine(&s.tr);
        self.ldtr = SegCache::from_machine(&s.ldtr);
        self.gdt_base = s.gdt.base;
        self.gdt_limit = s.gdt.limit as u64;
        self.idt_base = s.idt.base;
        self.idt_limit = s.idt.limit as u64;
        self.cr0 = s.cr0;
        self.cr2 = s.cr2;
        self.cr3 = s.cr3;
        self.cr4 = s.cr4;
        self.efer = s.efer;
        // Real mode runs at CPL 0 whatever the CS cache says.
        self.cpl = if s.cr0 & ctl::CR0_PE == 0 {
            0
        } else {
            self.segs[seg::CS].dpl()
        };
        self.header.tlb.flush();
    }

    /// The architectural state.
    pub fn to_machine(&self) -> X86CpuState {
        let s = |i: usize| self.segs[i].to_machine();
        X86CpuState {
            gprs: self.regs,
            rip: self.rip,
            rflags: self.rflags(),
            cs: s(seg::CS),
            ds: s(seg::DS),
            es: s(seg::ES),
            fs: s(seg::FS),
            gs: s(seg::GS),
            ss: s(seg::SS),
            tr: self.tr.to_machine(),
            ldtr: self.ldtr.to_machine(),
            gdt: TableRegister {
                base: self.gdt_base,
                limit: self.gdt_limit as u16,
            },
            idt: TableRegister {
                base: self.idt_base,
                limit: self.idt_limit as u16,
            },
            cr0: self.cr0,
            cr2: self.cr2,
            cr3: self.cr3,
            cr4: self.cr4,
            efer: self.efer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_state_round_trips() {
        let mut m = machine::boards::pc::boot::long_mode_entry(0x10_0000);
        m.rflags = 0x2 | rflags::CF | rflags::ZF | rflags::DF;
        m.gprs[3] = 0x1234;
        let mut s = X86State::new();
        s.load_machine(&m);
        assert_eq!(s.to_machine(), m);
        assert!(s.code64());
        assert_eq!(s.pc(), 0x10_0000);
    }

    #[test]
    fn descriptor_decoding() {
        let c = SegCache::from_descriptor(0x08, 0x00af_9a00_0000_ffff);
        assert_eq!(c.base, 0);
        assert_eq!(c.limit, 0xffff_ffff);
        assert!(c.attrs & attr::L != 0 && c.attrs & attr::P != 0);
        assert_eq!(c.attrs & attr::TYPE, 0xa);
        assert_eq!(c.dpl(), 0);
    }
}
