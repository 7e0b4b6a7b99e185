//! The AArch64 front end as TCG's accelerator sees it: makes vCPUs.

use accel_tcg::exec::{FrontEnd, Machine, TcgOptions, make_vcpu};
use accel_tcg::guest::GuestCpu;
use machine::{AccelError, Arch, BootState, Power, Vcpu};

use crate::A64Cpu;

/// AArch64 guests: each vCPU an [`A64Cpu`] with its MPIDR index and the VM
/// clock; secondary CPUs wait, powered off, for PSCI CPU_ON.
pub struct Aarch64FrontEnd;

impl FrontEnd for Aarch64FrontEnd {
    fn arch(&self) -> Arch {
        Arch::Aarch64
    }

    fn create_vcpu(
        &self,
        machine: Machine,
        index: u32,
        boot: &BootState,
        options: &TcgOptions,
    ) -> Result<Box<dyn Vcpu>, AccelError> {
        let mut cpu = A64Cpu::new();
        cpu.set_cpu_state(&boot.cpu)?;
        cpu.attach(index, machine.clock.clone());
        if boot.power == Power::Off {
            cpu.power_off();
        }
        make_vcpu(cpu, machine, options)
    }
}
