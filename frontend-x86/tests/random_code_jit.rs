//! Random bytes as guest code, run by moat's real exec loop on the JIT and on
//! the interpreter: whatever the bytes do (fault, loop, jump into the weeds,
//! overwrite themselves), moat must end with a guest-visible outcome and never
//! panic. A block budget, or for loops the JIT chains to itself a watchdog
//! (as Ctrl-C would), ends guests that run forever.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::time::Duration;

use accel_tcg::guest::GuestCpu;
use common::{Engine, TestVm};
use frontend_x86::X86Cpu;
use machine::VcpuExit;
use machine::boards::pc::boot;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM: u64 = 4 << 20;
const CODE: u64 = 0x10_0000;

/// `None` when the block budget ran out.
fn run_random(engine: Engine, code: &[u8], long_mode: bool) -> Option<VcpuExit> {
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
    let mut vm = TestVm::with_engine(cpu, memory, engine);
    vm.deadline = Duration::from_millis(40);
    vm.run(1_000_000)
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
    for case in 0..40 {
        let code: Vec<u8> = (0..256).map(|_| next() as u8).collect();
        let long_mode = case % 2 == 0;
        for exit in [
            run_random(Engine::Interp, &code, long_mode),
            run_random(Engine::Jit, &code, long_mode),
        ] {
            // No IDT: the first exception is a triple fault. Or the guest halts,
            // resets, or is stopped by the block budget or the watchdog.
            assert!(
                matches!(
                    exit,
                    None | Some(
                        VcpuExit::Crashed(_)
                            | VcpuExit::Halted { .. }
                            | VcpuExit::Shutdown(_)
                            | VcpuExit::Reset
                    )
                ),
                "case {case}: {exit:?}"
            );
        }
    }
}
