//! The machine model: what a guest sees, independent of how its code runs.
//!
//! A board ([`boards::Board`], chosen by the image's architecture) lays out
//! guest memory, maps devices on the shared buses, wires their interrupt lines,
//! loads the kernel image and computes the state each vCPU starts in.
//! An [`Accelerator`] (KVM or TCG, in their own crates) then runs that state. The
//! [`run`] loop drives a vCPU through lifecycle events, restarting the board on a
//! guest reset. The [`policy`] gate decides what moat may promise about
//! isolating the guest from the host.

pub mod accel;
pub mod arch;
pub mod boards;
pub mod loader;
pub mod memory;
pub mod policy;
pub mod run;

pub use accel::{AccelError, AccelKind, Accelerator, Crash, Isolation, Vcpu, VcpuExit, Vm, VmSpec};
pub use arch::{
    Aarch64CpuState, Arch, BootState, CpuState, Power, Segment, TableRegister, X86CpuState,
};
pub use boards::{Board, BoardConfig, BoardError, Host, Initrd, MachineKind};
pub use policy::{IsolationMode, PolicyInput, Verdict};
pub use run::{RunOutcome, VcpuThreads, run};
