//! The machine model: what a guest sees, independent of how its code runs.
//!
//! A board ([`x86_64::Board`]) lays out guest memory, maps devices on the shared
//! buses, loads the kernel image and computes the CPU state the guest starts in.
//! An [`Accelerator`] (KVM or TCG, in their own crates) then runs that state. The
//! [`run`] loop drives a vCPU through lifecycle events, restarting the board on a
//! guest reset.

pub mod accel;
pub mod arch;
pub mod loader;
pub mod memory;
pub mod run;
pub mod x86_64;

pub use accel::{
    AccelError, AccelKind, Accelerator, Crash, CrashKind, Isolation, Vcpu, VcpuExit, Vm, VmSpec,
};
pub use arch::{Arch, BootState, CpuState, Segment, TableRegister, X86CpuState};
pub use run::{RunOutcome, run};
