//! WFE and SEV between two vCPU threads: a CPU asleep in WFE wakes at
//! another's SEV, and SEVL makes the next WFE go straight on. Both engines.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use accel_tcg::exec::engine::{InterpEngine, JitEngine};
use accel_tcg::exec::{SharedCodePages, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use common::*;
use devices::VmLifecycle;
use frontend_aarch64::{A64Cpu, A64State};
use machine::{CpuState, VcpuExit};
use vm_memory::{Bytes, GuestAddress};

/// CPU 1 (x0 = 1): `sevl; wfe` (goes on), then waits in `wfe` until the
/// flag at [x1] is set, counting wake-ups in x3, then ends the machine (the
/// common epilogue). It looks at the flag before each `wfe`, as a guest
/// must: a SEV that came before (CPU 1's thread can start late) is already
/// consumed. CPU 0 (x0 = 0): spins 2^21 times (so CPU 1 is almost always
/// asleep by then), sets the flag, `sev`, then turns itself off (PSCI
/// CPU_OFF); a lost SEV leaves CPU 1 asleep and the machine never ends.
const CODE: [u32; 18] = [
    0xb5000100, //      cbnz x0, cpu1
    0xd2a00402, //      mov x2, #0x200000
    0xd1000442, // 1:   sub x2, x2, #1
    0xb5ffffe2, //      cbnz x2, 1b
    0xd2800024, //      mov x4, #1
    0xf9000024, //      str x4, [x1]
    0xd503209f, //      sev
    0x14000008, //      b off
    0xd50320bf, // cpu1: sevl
    0xd503205f, //      wfe (the SEVL event: goes on)
    0xf9400025, // 2:   ldr x5, [x1]
    0xb50000e5, //      cbnz x5, end (the epilogue, after `off`)
    0xd503205f, //      wfe
    0x91000463, //      add x3, x3, #1
    0x17fffffc, //      b 2b
    0xd2800040, // off: mov x0, #0x2
    0xf2b08000, //      movk x0, #0x8400, lsl #16 (CPU_OFF)
    0xd4000002, //      hvc #0
];

fn run(engine: Engine) {
    let code = CODE;
    let mem = memory_with(&code);
    let lifecycle = Arc::new(VmLifecycle::with_vcpus(2));
    let shared = SharedCodePages::new(lifecycle.clone());
    let threads: Vec<_> = (0..2u32)
        .map(|index| {
            let mut s = entry_state();
            s.x[0] = u64::from(index);
            s.x[1] = DATA;
            s.sp_el1 = STACK - 0x1000 * u64::from(index);
            let mut cpu = A64Cpu::new();
            cpu.set_cpu_state(&CpuState::Aarch64(Box::new(s))).unwrap();
            let m = machine(&mem, &lifecycle, &shared, index, 2);
            std::thread::spawn(move || {
                let env = size_of::<A64State>();
                let (exit, state) = match engine {
                    Engine::Interp => {
                        let mut vcpu = TcgVcpu::new(cpu, InterpEngine::new(env), m);
                        let exit = vcpu.run_blocks(u64::MAX).unwrap();
                        (exit, vcpu.cpu().cpu_state())
                    }
                    Engine::Jit => {
                        let jit = JitEngine::new(1 << 20, env).unwrap();
                        let mut vcpu = TcgVcpu::new(cpu, jit, m);
                        let exit = vcpu.run_blocks(u64::MAX).unwrap();
                        (exit, vcpu.cpu().cpu_state())
                    }
                };
                (exit, state)
            })
        })
        .collect();
    let start = Instant::now();
    while !threads[1].is_finished() {
        if start.elapsed() > Duration::from_secs(20) {
            lifecycle.request_shutdown(99);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let (exit, state) = results.remove(1);
    assert_eq!(
        exit,
        Some(VcpuExit::Shutdown(0)),
        "{engine:?}: SEV did not wake WFE"
    );
    let CpuState::Aarch64(state) = state else {
        panic!("not an aarch64 state");
    };
    // Usually the one wake-up that saw the flag (none if CPU 1 started after
    // the SEV); a spurious one is allowed, but not a spin (millions).
    assert!(state.x[3] < 100, "{engine:?}: {} wake-ups", state.x[3]);
    assert_eq!(mem.read_obj::<u64>(GuestAddress(DATA)).unwrap(), 1);
}

#[test]
fn sev_wakes_a_cpu_asleep_in_wfe_interp() {
    run(Engine::Interp);
}

#[test]
fn sev_wakes_a_cpu_asleep_in_wfe_jit() {
    run(Engine::Jit);
}
