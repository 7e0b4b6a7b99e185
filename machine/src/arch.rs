//! Guest architectures and their CPU state as plain data.
//!
//! The same structs describe the state a guest boots in ([`BootState`]) and the
//! state an accelerator reports ([`CpuState`]), so a board computes an entry state
//! once and every accelerator starts from it.

use std::fmt;

/// A guest instruction-set architecture. A value, never a host `cfg`: TCG runs any
/// guest on any host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The host's own architecture, the only one KVM can run.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An x86 segment register with its hidden descriptor cache, field for field as
/// the hardware (and KVM's `kvm_segment`) keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub selector: u16,
    pub base: u64,
    pub limit: u32,
    /// The descriptor's 4-bit type field.
    pub type_: u8,
    pub present: bool,
    pub dpl: u8,
    /// Default operation size: 32-bit when set.
    pub db: bool,
    /// Code or data (set), as opposed to a system descriptor.
    pub s: bool,
    /// 64-bit code segment.
    pub l: bool,
    /// Limit in 4 KiB units.
    pub g: bool,
    pub avl: bool,
    pub unusable: bool,
}

/// GDTR or IDTR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableRegister {
    pub base: u64,
    pub limit: u16,
}

/// The architectural x86-64 state moat boots guests in and reports on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct X86CpuState {
    /// In encoding order: rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15.
    pub gprs: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldtr: Segment,
    pub gdt: TableRegister,
    pub idt: TableRegister,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

/// Indices into [`X86CpuState::gprs`].
pub mod x86_reg {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
}

const X86_GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

impl fmt::Display for X86CpuState {
    /// A register dump for crash reports, a few registers per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (row, names) in X86_GPR_NAMES.chunks(4).enumerate() {
            for (column, name) in names.iter().enumerate() {
                let separator = if column == 0 { "" } else { " " };
                write!(
                    f,
                    "{separator}{name:>3}={:016x}",
                    self.gprs[row * 4 + column]
                )?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "rip={:016x} rflags={:08x} cs={:04x} ss={:04x} ds={:04x} es={:04x} fs={:04x} gs={:04x}",
            self.rip,
            self.rflags,
            self.cs.selector,
            self.ss.selector,
            self.ds.selector,
            self.es.selector,
            self.fs.selector,
            self.gs.selector
        )?;
        write!(
            f,
            "cr0={:08x} cr2={:016x} cr3={:016x} cr4={:08x} efer={:x} gdt={:x}/{:x} idt={:x}/{:x}",
            self.cr0,
            self.cr2,
            self.cr3,
            self.cr4,
            self.efer,
            self.gdt.base,
            self.gdt.limit,
            self.idt.base,
            self.idt.limit
        )
    }
}

/// The architectural AArch64 state moat boots guests in and reports on
/// (EL0/EL1; no EL2 or EL3 is modelled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aarch64CpuState {
    /// x0..x30.
    pub x: [u64; 31],
    pub sp_el0: u64,
    pub sp_el1: u64,
    pub pc: u64,
    /// PSTATE in SPSR layout: N, Z, C, V (bits 31-28), D, A, I, F (9-6),
    /// M[3:0] (EL and SP selection: 0b0101 is EL1h, 0b0000 EL0t).
    pub pstate: u64,
    /// v0..v31 as (low, high) 64-bit halves.
    pub v: [[u64; 2]; 32],
    pub fpcr: u64,
    pub fpsr: u64,
    pub elr_el1: u64,
    pub spsr_el1: u64,
    pub esr_el1: u64,
    pub far_el1: u64,
    pub vbar_el1: u64,
    pub sctlr_el1: u64,
    pub tcr_el1: u64,
    pub ttbr0_el1: u64,
    pub ttbr1_el1: u64,
    pub mair_el1: u64,
    pub tpidr_el0: u64,
    pub tpidr_el1: u64,
    pub tpidrro_el0: u64,
    pub cpacr_el1: u64,
    pub contextidr_el1: u64,
    pub par_el1: u64,
    pub amair_el1: u64,
    pub cntkctl_el1: u64,
}

/// PSTATE for EL1 with SP_EL1 and every exception masked: the entry state of
/// the boot ABI.
pub const AARCH64_PSTATE_EL1H_MASKED: u64 = 0x3c5;

impl fmt::Display for Aarch64CpuState {
    /// A register dump for crash reports, four registers per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in 0..8 {
            for column in 0..4 {
                let index = row * 4 + column;
                if index == 31 {
                    break;
                }
                let separator = if column == 0 { "" } else { " " };
                write!(f, "{separator}x{index:<2}={:016x}", self.x[index])?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "pc={:016x} pstate={:08x} sp_el0={:016x} sp_el1={:016x} elr_el1={:016x} esr_el1={:08x} far_el1={:016x}",
            self.pc,
            self.pstate,
            self.sp_el0,
            self.sp_el1,
            self.elr_el1,
            self.esr_el1,
            self.far_el1
        )
    }
}

/// The CPU state of one vCPU, for any guest architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuState {
    X86_64(Box<X86CpuState>),
    Aarch64(Box<Aarch64CpuState>),
}

impl CpuState {
    pub fn arch(&self) -> Arch {
        match self {
            CpuState::X86_64(_) => Arch::X86_64,
            CpuState::Aarch64(_) => Arch::Aarch64,
        }
    }

    /// The program counter, for one-line reports.
    pub fn pc(&self) -> u64 {
        match self {
            CpuState::X86_64(state) => state.rip,
            CpuState::Aarch64(state) => state.pc,
        }
    }
}

impl fmt::Display for CpuState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuState::X86_64(state) => state.fmt(f),
            CpuState::Aarch64(state) => state.fmt(f),
        }
    }
}

/// Whether a vCPU runs from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// The boot CPU: runs `BootState::cpu` at once.
    On,
    /// A secondary CPU: waits, off, until the guest starts it the
    /// architecture's way (x86 INIT/SIPI, PSCI `CPU_ON`).
    Off,
}

/// The state a vCPU starts in, as computed by the board for the image's boot ABI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    /// The entry state; for a CPU that starts off, its reset state.
    pub cpu: CpuState,
    pub power: Power,
}

impl BootState {
    /// A CPU that runs `cpu` from the start.
    pub fn on(cpu: CpuState) -> BootState {
        BootState {
            cpu,
            power: Power::On,
        }
    }

    /// A CPU that starts off, in reset state `cpu`.
    pub fn off(cpu: CpuState) -> BootState {
        BootState {
            cpu,
            power: Power::Off,
        }
    }
}
