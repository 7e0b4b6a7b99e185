//! Exclusives and LSE atomics on two vCPU threads counting to an exact
//! total, on both engines.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::sync::Arc;

use accel_tcg::exec::engine::{InterpEngine, JitEngine};
use accel_tcg::exec::{SharedCodePages, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use common::*;
use devices::VmLifecycle;
use frontend_aarch64::{A64Cpu, A64State};
use machine::{CpuState, VcpuExit};
use vm_memory::{Bytes, GuestAddress};

const LOOP: [u32; 27] = [
    0xc85ffc02, // loop: ldaxr x2, [x0]
    0x91000442, // add x2, x2, #1
    0xc803fc02, // stlxr w3, x2, [x0]
    0x35ffffa3, // cbnz w3, loop
    0x885f7d02, // l32: ldxr w2, [x8]
    0x11000c42, // add w2, w2, #3
    0x88037d02, // stxr w3, w2, [x8]
    0x35ffffa3, // cbnz w3, l32
    0xd2800024, // mov x4, #1
    0xf8e40125, // ldaddal x4, x5, [x9]
    0xf82a4166, // ldsmax x10, x6, [x11]
    0xf94001ac, // l2: ldr x12, [x13]
    0x9100058e, // add x14, x12, #1
    0xaa0c03ef, // mov x15, x12
    0xc8effdae, // casal x15, x14, [x13]
    0xeb0c01ff, // cmp x15, x12
    0x54ffff61, // b.ne l2
    0xc87f4670, // lp: ldxp x16, x17, [x19]
    0x91000610, // add x16, x16, #1
    0x91000a31, // add x17, x17, #2
    0xc8234670, // stxp w3, x16, x17, [x19]
    0x35ffff83, // cbnz w3, lp
    0xf1000421, // subs x1, x1, #1
    0x54fffd21, // b.ne loop
    // Each CPU turns itself off (PSCI CPU_OFF); SYSTEM_OFF from the first
    // to finish would stop the other mid-count.
    0xd2800040, // mov x0, #0x2
    0xf2b08000, // movk x0, #0x8400, lsl #16
    0xd4000002, // hvc #0
];

const N: u64 = 20_000;

fn counters(engine: Engine) {
    let mem = memory_with(&LOOP);
    let lifecycle = Arc::new(VmLifecycle::with_vcpus(2));
    let shared = SharedCodePages::new(lifecycle.clone());
    let threads: Vec<_> = (0..2u32)
        .map(|index| {
            let mut s = entry_state();
            s.x[0] = DATA;
            s.x[1] = N;
            s.x[8] = DATA + 8;
            s.x[9] = DATA + 16;
            s.x[10] = if index == 0 { (-5i64) as u64 } else { 42 };
            s.x[11] = DATA + 24;
            s.x[13] = DATA + 32;
            s.x[19] = DATA + 48;
            s.sp_el1 = STACK - 0x1000 * u64::from(index);
            let mut cpu = A64Cpu::new();
            cpu.set_cpu_state(&CpuState::Aarch64(Box::new(s))).unwrap();
            let m = machine(&mem, &lifecycle, &shared, index, 2);
            std::thread::spawn(move || {
                let env = size_of::<A64State>();
                match engine {
                    Engine::Interp => {
                        TcgVcpu::new(cpu, InterpEngine::new(env), m).run_blocks(u64::MAX)
                    }
                    Engine::Jit => {
                        let jit = JitEngine::new(1 << 20, env).unwrap();
                        TcgVcpu::new(cpu, jit, m).run_blocks(u64::MAX)
                    }
                }
                .unwrap()
            })
        })
        .collect();
    // The last CPU to turn off ends its run as halted (nothing can wake
    // the machine); the other is asleep, off, and is stopped here.
    while !threads.iter().any(|t| t.is_finished()) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    lifecycle.request_shutdown(0);
    for t in threads {
        let exit = t.join().unwrap();
        assert!(
            matches!(
                exit,
                Some(VcpuExit::Halted { .. }) | Some(VcpuExit::Shutdown(0))
            ),
            "{exit:?}"
        );
    }
    let rd = |off: u64| mem.read_obj::<u64>(GuestAddress(DATA + off)).unwrap();
    assert_eq!(rd(0), 2 * N, "ldaxr/stlxr counter");
    assert_eq!(
        mem.read_obj::<u32>(GuestAddress(DATA + 8)).unwrap(),
        6 * N as u32
    );
    assert_eq!(rd(16), 2 * N, "ldaddal counter");
    assert_eq!(rd(24), 42, "ldsmax");
    assert_eq!(rd(32), 2 * N, "casal counter");
    // 64-bit pairs are atomic on their first doubleword only.
    assert_eq!(rd(48), 2 * N, "ldxp/stxp first word");
    assert!(rd(56) <= 4 * N && rd(56) > 0);
}

#[test]
fn two_vcpus_count_exactly_interp() {
    counters(Engine::Interp);
}

#[test]
fn two_vcpus_count_exactly_jit() {
    counters(Engine::Jit);
}
