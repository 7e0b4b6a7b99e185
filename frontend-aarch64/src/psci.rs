//! PSCI 0.2 through `hvc #0` (the `virt` board's conduit).
//!
//! This first version handles what a test guest needs to stop:
//! SYSTEM_OFF (the VM ends with status 0) and SYSTEM_RESET.
//!
//! **To be completed** (the system helper): PSCI_VERSION, CPU_ON (post a
//! `Startup::PowerOn` to the target's controller and kick it; a powered-off
//! CPU starts at `entry` with x0 = `context`, see
//! [`crate::cpu::A64Cpu::power_on`]), CPU_OFF, AFFINITY_INFO,
//! MIGRATE_INFO_TYPE, FEATURES, and the SMC64 function IDs.

use accel_tcg::guest::{GuestEvent, Platform};
use machine::VcpuExit;

use crate::state::A64State;

/// PSCI_VERSION.
pub const PSCI_VERSION: u64 = 0x8400_0000;
/// SYSTEM_OFF.
pub const SYSTEM_OFF: u64 = 0x8400_0008;
/// SYSTEM_RESET.
pub const SYSTEM_RESET: u64 = 0x8400_0009;
/// NOT_SUPPORTED return value.
pub const NOT_SUPPORTED: u64 = -1i64 as u64;

/// Handles the PSCI call in x0 (results in x0). `Some(event)` when the call
/// stops the vCPU; `None` to continue after the `hvc`.
pub fn call(s: &mut A64State, platform: &Platform<'_>) -> Option<GuestEvent> {
    let _ = platform;
    match s.x[0] {
        // PSCI 0.2.
        PSCI_VERSION => s.x[0] = 2,
        SYSTEM_OFF => return Some(GuestEvent::Exit(VcpuExit::Shutdown(0))),
        SYSTEM_RESET => return Some(GuestEvent::Exit(VcpuExit::Reset)),
        f => {
            log::debug!("aarch64: PSCI function {f:#x} not supported");
            s.x[0] = NOT_SUPPORTED;
        }
    }
    None
}
