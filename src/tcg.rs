//! The front ends moat's TCG accelerator is built with.

use accel_tcg::exec::{FrontEnd, Machine, TcgOptions, make_vcpu};
use accel_tcg::guest::GuestCpu;
use frontend_x86::X86Cpu;
use machine::{AccelError, Arch, BootState, Power, Vcpu};

/// x86-64 guests.
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
