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

/// The CPU state of one vCPU, for any guest architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuState {
    X86_64(Box<X86CpuState>),
}

impl CpuState {
    pub fn arch(&self) -> Arch {
        match self {
            CpuState::X86_64(_) => Arch::X86_64,
        }
    }

    /// The program counter, for one-line reports.
    pub fn pc(&self) -> u64 {
        match self {
            CpuState::X86_64(state) => state.rip,
        }
    }
}

impl fmt::Display for CpuState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuState::X86_64(state) => state.fmt(f),
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
