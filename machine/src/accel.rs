//! The accelerator interface: what KVM and TCG each implement.
//!
//! Three levels, as in cloud-hypervisor's hypervisor crate: an [`Accelerator`]
//! makes a [`Vm`], which makes [`Vcpu`]s. `Vcpu::run` returns only for lifecycle
//! events; device accesses are dispatched inside the accelerator to the buses in
//! [`VmSpec`], so devices behave the same under every accelerator.

use std::fmt;
use std::sync::Arc;

use devices::{Bus, Clock, InterruptController, IrqRouter, VmLifecycle};
use vm_memory::GuestMemoryMmap;

use crate::arch::{Arch, BootState, CpuState};

/// Which accelerator runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccelKind {
    Kvm,
    Tcg,
}

impl AccelKind {
    pub fn name(self) -> &'static str {
        match self {
            AccelKind::Kvm => "kvm",
            AccelKind::Tcg => "tcg",
        }
    }
}

impl fmt::Display for AccelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the policy gate may promise about an accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Hardware virtualization: a security boundary when the process is confined.
    Hardware,
    /// Emulation: guest code is translated by moat itself; not a security boundary.
    None,
}

/// Everything an accelerator needs to build a VM.
#[derive(Clone)]
pub struct VmSpec {
    pub arch: Arch,
    /// vCPUs the machine has (`lifecycle` holds one kick for each).
    pub cpus: u32,
    pub memory: GuestMemoryMmap,
    pub pio_bus: Arc<Bus>,
    pub mmio_bus: Arc<Bus>,
    pub lifecycle: Arc<VmLifecycle>,
    /// The board's own interrupt controller models, for accelerators that
    /// emulate them (TCG). KVM uses its in-kernel ones instead.
    pub interrupts: Arc<dyn InterruptController>,
    /// The board's interrupt lines. Connected to `interrupts`' models; an
    /// accelerator with its own controllers (KVM's in-kernel irqchip)
    /// connects those instead.
    pub irq: Arc<IrqRouter>,
    /// The VM clock: guest time counters and timer deadlines.
    pub clock: Arc<Clock>,
}

pub trait Accelerator: Send + Sync {
    fn kind(&self) -> AccelKind;
    fn isolation(&self) -> Isolation;
    fn supports(&self, arch: Arch) -> bool;
    fn create_vm(&self, spec: VmSpec) -> Result<Box<dyn Vm>, AccelError>;
}

pub trait Vm: Send + Sync {
    fn create_vcpu(&self, index: u32, boot: &BootState) -> Result<Box<dyn Vcpu>, AccelError>;
}

pub trait Vcpu: Send {
    /// Runs guest code until a lifecycle event.
    fn run(&mut self) -> Result<VcpuExit, AccelError>;
    fn cpu_state(&self) -> Result<CpuState, AccelError>;
    fn set_cpu_state(&mut self, state: &CpuState) -> Result<(), AccelError>;
}

/// Why a vCPU stopped running guest code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuExit {
    /// The guest asked to end (debug-exit, PSCI SYSTEM_OFF), or the host did
    /// (Ctrl-C): moat exits with this status.
    Shutdown(i32),
    /// The guest asked for a reset.
    Reset,
    /// The vCPU halted with nothing that could wake it.
    Halted { pc: u64 },
    /// The guest crashed in a way the architecture defines as fatal.
    Crashed(Crash),
}

/// A fatal guest failure: the CPU stopped itself in a way its architecture
/// defines as the end (x86: a triple fault shuts the CPU down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// The architecture's name for what happened, for the one-line report
    /// (the front end or accelerator that saw it says: "triple fault").
    pub cause: &'static str,
    /// The program counter of the instruction that crashed.
    pub pc: u64,
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest crashed ({}) at pc {:#x}", self.cause, self.pc)
    }
}

/// An accelerator failure. Guest misbehaviour is a [`VcpuExit`], not an error;
/// errors are what moat or the host could not do.
#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    /// The accelerator cannot be used here; the reason says what to do.
    #[error("{0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    #[error("{operation} failed: {source}")]
    Host {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The vCPU could not continue; the register dump (when the registers
    /// could still be read) says where it stood.
    #[error("{reason}{}", state.as_ref().map(|state| format!("\n{state}")).unwrap_or_else(|| " (the registers could not be read)".to_string()))]
    VcpuFailed {
        reason: Box<dyn std::error::Error + Send + Sync>,
        state: Option<Box<CpuState>>,
    },
    #[error("the {accel} accelerator cannot run {arch} guests")]
    UnsupportedArch { accel: AccelKind, arch: Arch },
    #[error("a vCPU for {expected} guests was given a {found} CPU state")]
    WrongArch { expected: Arch, found: Arch },
    /// moat's translator failed (not the guest): a bug to report.
    #[error("moat's TCG translator failed with the guest at pc {pc:#x}: {source}")]
    Translator {
        pc: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("vCPU {index} stopped on an internal error in moat (a panic; see the message above)")]
    VcpuPanicked { index: u32 },
    #[error("vCPU {index} is one too many: this machine runs at most {max}")]
    TooManyVcpus { index: u32, max: u32 },
    #[error("no host thread to run vCPU {index} on")]
    NoVcpuThread { index: u32 },
}

impl AccelError {
    /// Wraps a host error from `operation`.
    pub fn host(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        AccelError::Host {
            operation,
            source: Box::new(source),
        }
    }
}
