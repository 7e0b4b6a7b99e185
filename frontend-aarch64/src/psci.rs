//! PSCI 1.0 through `hvc #0` (the `virt` board's conduit; its device tree
//! says `"arm,psci-1.0", "arm,psci-0.2"`), Arm DEN 0022D.
//!
//! Functions: PSCI_VERSION (1.0), PSCI_FEATURES, CPU_ON (SMC32 and SMC64
//! ids), CPU_OFF, AFFINITY_INFO, MIGRATE_INFO_TYPE (2: no migration
//! needed), SYSTEM_OFF (the VM ends with status 0), SYSTEM_RESET; anything
//! else returns NOT_SUPPORTED. CPU power goes through the lifecycle
//! ([`devices::VmLifecycle::cpu_on`]): a powered-off CPU starts when its
//! `take_cpu_on` gives the entry point and context
//! ([`crate::A64Cpu::power_on`]).

use accel_tcg::guest::{GuestEvent, Platform};
use devices::{CpuOnError, CpuPower};
use machine::VcpuExit;

use crate::cpu::A64Cpu;

/// PSCI_VERSION.
pub const PSCI_VERSION: u64 = 0x8400_0000;
/// CPU_OFF.
pub const CPU_OFF: u64 = 0x8400_0002;
/// CPU_ON (SMC32).
pub const CPU_ON_32: u64 = 0x8400_0003;
/// CPU_ON (SMC64).
pub const CPU_ON_64: u64 = 0xc400_0003;
/// AFFINITY_INFO (SMC32).
pub const AFFINITY_INFO_32: u64 = 0x8400_0004;
/// AFFINITY_INFO (SMC64).
pub const AFFINITY_INFO_64: u64 = 0xc400_0004;
/// MIGRATE_INFO_TYPE.
pub const MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
/// SYSTEM_OFF.
pub const SYSTEM_OFF: u64 = 0x8400_0008;
/// SYSTEM_RESET.
pub const SYSTEM_RESET: u64 = 0x8400_0009;
/// PSCI_FEATURES.
pub const PSCI_FEATURES: u64 = 0x8400_000a;

/// SUCCESS.
pub const SUCCESS: u64 = 0;
/// NOT_SUPPORTED return value.
pub const NOT_SUPPORTED: u64 = -1i64 as u64;
/// INVALID_PARAMETERS.
pub const INVALID_PARAMETERS: u64 = -2i64 as u64;
/// ALREADY_ON.
pub const ALREADY_ON: u64 = -4i64 as u64;
/// ON_PENDING.
pub const ON_PENDING: u64 = -5i64 as u64;

/// The CPU index an MPIDR-style target names (Aff0; higher affinity
/// levels must be 0 on this board), if it exists.
fn target(mpidr: u64, is32: bool, cpus: u32) -> Option<u32> {
    let mpidr = if is32 { mpidr & 0xffff_ffff } else { mpidr };
    // Aff3 (39:32), Aff2 (23:16), Aff1 (15:8) must be 0.
    if mpidr & 0xff_00ff_ff00 != 0 {
        return None;
    }
    let aff0 = (mpidr & 0xff) as u32;
    (aff0 < cpus).then_some(aff0)
}

/// Handles the PSCI call in x0 (arguments x1-x3, result in x0). `Some`
/// when the call stops or parks the vCPU; `None` to continue after the
/// `hvc`.
pub fn call(cpu: &mut A64Cpu, platform: &Platform<'_>) -> Option<GuestEvent> {
    let s = &mut *cpu.state;
    let f = s.x[0];
    // SMC32 calls take 32-bit arguments.
    let is32 = f & (1 << 30) == 0;
    let arg = |n: usize| if is32 { s.x[n] & 0xffff_ffff } else { s.x[n] };
    let (a1, a2, a3) = (arg(1), arg(2), arg(3));
    let result = match f {
        PSCI_VERSION => 1 << 16,
        PSCI_FEATURES => match a1 {
            PSCI_VERSION | CPU_OFF | CPU_ON_32 | CPU_ON_64 | AFFINITY_INFO_32
            | AFFINITY_INFO_64 | MIGRATE_INFO_TYPE | SYSTEM_OFF | SYSTEM_RESET | PSCI_FEATURES => {
                SUCCESS
            }
            _ => NOT_SUPPORTED,
        },
        CPU_ON_32 | CPU_ON_64 => match target(a1, is32, platform.cpus) {
            None => INVALID_PARAMETERS,
            Some(t) => match platform.lifecycle.cpu_on(t, a2, a3) {
                Ok(()) => SUCCESS,
                Err(CpuOnError::AlreadyOn(_)) => ALREADY_ON,
                Err(CpuOnError::OnPending(_)) => ON_PENDING,
                Err(CpuOnError::NoSuchCpu(_)) => INVALID_PARAMETERS,
            },
        },
        CPU_OFF => {
            platform.lifecycle.set_power(platform.cpu, false);
            cpu.off = true;
            cpu.halted = false;
            return Some(GuestEvent::Wait);
        }
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            // Only level 0 (a single CPU) is answered.
            match (target(a1, is32, platform.cpus), a2) {
                (Some(t), 0) => match platform.lifecycle.cpu_power(t) {
                    Some(CpuPower::On) => 0,
                    Some(CpuPower::Off) => 1,
                    Some(CpuPower::OnPending { .. }) => 2,
                    None => INVALID_PARAMETERS,
                },
                _ => INVALID_PARAMETERS,
            }
        }
        MIGRATE_INFO_TYPE => 2,
        SYSTEM_OFF => {
            platform.lifecycle.request_shutdown(0);
            return Some(GuestEvent::Exit(VcpuExit::Shutdown(0)));
        }
        SYSTEM_RESET => {
            platform.lifecycle.request_reset();
            return Some(GuestEvent::Exit(VcpuExit::Reset));
        }
        other => {
            log::debug!("aarch64: PSCI function {other:#x} not supported");
            NOT_SUPPORTED
        }
    };
    cpu.state.x[0] = result;
    None
}
