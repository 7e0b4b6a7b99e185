//! Random bytes as guest code, run by moat's real exec loop on the JIT and on
//! the interpreter: whatever the bytes do (fault, loop, jump into the weeds,
//! overwrite themselves), moat must end with a guest-visible outcome and never
//! panic. A watchdog ends guests that loop forever, as Ctrl-C would.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Arc;
use std::time::Duration;

use accel_tcg::exec::engine::{Engine, InterpEngine, JitEngine};
use accel_tcg::exec::{Machine, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use devices::{Bus, VmLifecycle};
use frontend_x86::{X86Cpu, X86State};
use machine::VcpuExit;
use machine::boards::pc::boot;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM: u64 = 4 << 20;
const CODE: u64 = 0x10_0000;

fn run_random<E: Engine>(engine: E, code: &[u8], long_mode: bool) -> VcpuExit {
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
    memory.write_slice(code, GuestAddress(CODE)).unwrap();
    boot::write_gdt(&memory).unwrap();
    let state = if long_mode {
        boot::write_identity_page_tables(&memory, RAM).unwrap();
        boot::long_mode_entry(CODE)
    } else {
        boot::protected_mode_entry(CODE, 0, 0)
    };
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(state)))
        .unwrap();
    let lifecycle = Arc::new(VmLifecycle::new());
    let machine = Machine {
        memory,
        pio: Arc::new(Bus::new("pio")),
        mmio: Arc::new(Bus::new("mmio")),
        lifecycle: lifecycle.clone(),
        interrupts: Arc::new(devices::NoInterruptController),
        clock: devices::Clock::new(),
        index: 0,
        cpus: 1,
        shared_code: accel_tcg::exec::SharedCodePages::new(lifecycle.clone()),
    };
    let mut vcpu = TcgVcpu::new(cpu, engine, machine);
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(40));
        lifecycle.request_shutdown(130);
    });
    let exit = vcpu.run_guest().unwrap();
    watchdog.join().unwrap();
    exit
}

#[test]
fn random_code_ends_cleanly_on_both_engines() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let env_size = size_of::<X86State>();
    for case in 0..40 {
        let code: Vec<u8> = (0..256).map(|_| next() as u8).collect();
        let long_mode = case % 2 == 0;
        for exit in [
            run_random(InterpEngine::new(env_size), &code, long_mode),
            run_random(JitEngine::new(1 << 20, env_size).unwrap(), &code, long_mode),
        ] {
            // No IDT: the first exception is a triple fault. Or the guest halts,
            // resets, or is stopped by the watchdog.
            assert!(
                matches!(
                    exit,
                    VcpuExit::Crashed(_)
                        | VcpuExit::Halted { .. }
                        | VcpuExit::Shutdown(_)
                        | VcpuExit::Reset
                ),
                "case {case}: {exit:?}"
            );
        }
    }
}
