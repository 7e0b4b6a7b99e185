//! The x86 front end as TCG's accelerator sees it: makes vCPUs.

use accel_tcg::exec::{FrontEnd, Machine, TcgOptions, make_vcpu};
use accel_tcg::guest::GuestCpu;
use machine::{AccelError, Arch, BootState, Power, Vcpu};

use crate::X86Cpu;

/// x86-64 guests: each vCPU an [`X86Cpu`] with its APIC ID and the VM
/// clock; secondary CPUs wait for their start-up IPI.
pub struct X86FrontEnd;

impl FrontEnd for X86FrontEnd {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }

    fn create_vcpu(
        &self,
        machine: Machine,
        index: u32,
        boot: &BootState,
        options: &TcgOptions,
    ) -> Result<Box<dyn Vcpu>, AccelError> {
        let mut cpu = X86Cpu::new();
        cpu.set_cpu_state(&boot.cpu)?;
        cpu.attach(index, machine.clock.clone());
        if boot.power == Power::Off {
            cpu.power_off();
        }
        make_vcpu(cpu, machine, options)
    }
}
