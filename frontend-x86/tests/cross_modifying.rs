//! Cross-modifying code between two x86 vCPUs on accel-tcg's exec loop: one
//! vCPU calls a function that returns a constant, the other rewrites the
//! constant's 4 bytes (between two old values many times, then a final one).
//! The caller must only ever see whole values, and the final one within a
//! bounded number of calls once the writer is done. Both engines.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Arc;
use std::time::{Duration, Instant};

use accel_tcg::exec::engine::{Engine, InterpEngine, JitEngine};
use accel_tcg::exec::{Machine, SharedCodePages, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use devices::{Bus, VmLifecycle};
use frontend_x86::{X86Cpu, X86State};
use machine::VcpuExit;
use machine::boards::pc::boot;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM: u64 = 4 << 20;
const CALLER: u64 = 0x10_0000;
const WRITER: u64 = 0x12_0000;
const FUNCTION: u64 = 0x14_0000;
const CALLS: u64 = 0x15_0000;
const MIX: u64 = 0x15_0008;

/// Calls the function until it returns 0x22222222; 0x11111111 and
/// 0x33333333 count a call; anything else is stored at `MIX`, then `hlt`.
const CALLER_CODE: &[u8] = &[
    0x48, 0xc7, 0xc4, 0x00, 0x00, 0x20, 0x00, // mov rsp, 0x200000
    0xe8, 0xf4, 0xff, 0x03, 0x00, // 0x100007: call 0x140000
    0x3d, 0x11, 0x11, 0x11, 0x11, // cmp eax, 0x11111111
    0x74, 0x16, // je ok
    0x3d, 0x33, 0x33, 0x33, 0x33, // cmp eax, 0x33333333
    0x74, 0x0f, // je ok
    0x3d, 0x22, 0x22, 0x22, 0x22, // cmp eax, 0x22222222
    0x74, 0x12, // je done
    0x89, 0x04, 0x25, 0x08, 0x00, 0x15, 0x00, // mov [MIX], eax
    0xf4, // 0x100028: hlt
    0x48, 0xff, 0x04, 0x25, 0x00, 0x00, 0x15, 0x00, // ok: inc qword [CALLS]
    0xeb, 0xd4, // jmp 0x100007
    0xf4, // done (0x100033): hlt
];
const DONE: u64 = 0x10_0033;

/// `mov eax, 0x11111111; ret`
const FUNCTION_CODE: &[u8] = &[0xb8, 0x11, 0x11, 0x11, 0x11, 0xc3];

/// Rewrites the function's constant (at P+1) 2 * 20000 times, then to
/// 0x22222222.
const WRITER_CODE: &[u8] = &[
    0xb9, 0x20, 0x4e, 0x00, 0x00, // mov ecx, 20000
    0xc7, 0x04, 0x25, 0x01, 0x00, 0x14, 0x00, 0x33, 0x33, 0x33, 0x33, // mov [P+1], 0x33333333
    0xc7, 0x04, 0x25, 0x01, 0x00, 0x14, 0x00, 0x11, 0x11, 0x11, 0x11, // mov [P+1], 0x11111111
    0xff, 0xc9, // dec ecx
    0x75, 0xe6, // jnz 0x120005
    0xc7, 0x04, 0x25, 0x01, 0x00, 0x14, 0x00, 0x22, 0x22, 0x22, 0x22, // mov [P+1], 0x22222222
    0xf4, // hlt
];

fn vcpu<E: Engine>(
    engine: E,
    memory: &GuestMemoryMmap,
    lifecycle: &Arc<VmLifecycle>,
    shared_code: &Arc<SharedCodePages>,
    index: u32,
    entry: u64,
) -> TcgVcpu<X86Cpu, E> {
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(boot::long_mode_entry(
        entry,
    ))))
    .unwrap();
    let machine = Machine {
        memory: memory.clone(),
        pio: Arc::new(Bus::new("pio")),
        mmio: Arc::new(Bus::new("mmio")),
        lifecycle: lifecycle.clone(),
        interrupts: Arc::new(devices::NoInterruptController),
        clock: devices::Clock::new(),
        index,
        cpus: 2,
        shared_code: shared_code.clone(),
    };
    TcgVcpu::new(cpu, engine, machine)
}

fn cross_modify<E: Engine + Send>(engine: impl Fn() -> E) {
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
    boot::write_gdt(&memory).unwrap();
    boot::write_identity_page_tables(&memory, RAM).unwrap();
    memory
        .write_slice(CALLER_CODE, GuestAddress(CALLER))
        .unwrap();
    memory
        .write_slice(WRITER_CODE, GuestAddress(WRITER))
        .unwrap();
    memory
        .write_slice(FUNCTION_CODE, GuestAddress(FUNCTION))
        .unwrap();
    let lifecycle = Arc::new(VmLifecycle::with_vcpus(2));
    let shared_code = SharedCodePages::new(lifecycle.clone());
    let mut caller = vcpu(engine(), &memory, &lifecycle, &shared_code, 0, CALLER);
    let mut writer = vcpu(engine(), &memory, &lifecycle, &shared_code, 1, WRITER);
    let calls = || memory.read_obj::<u64>(GuestAddress(CALLS)).unwrap();
    std::thread::scope(|scope| {
        let caller = scope.spawn(move || {
            let exit = caller.run_guest().unwrap();
            (exit, caller)
        });
        let start = Instant::now();
        while calls() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the caller never ran"
            );
            std::thread::yield_now();
        }
        let writer = scope.spawn(move || writer.run_guest().unwrap());
        // The writer's last store, then both vCPUs halt with interrupts
        // masked: the last of them to park ends its run as halted (nothing
        // can wake the machine); the other is stopped as the run loop would.
        let start = Instant::now();
        while memory.read_obj::<u32>(GuestAddress(FUNCTION + 1)).unwrap() != 0x2222_2222 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the writer never finished"
            );
            std::thread::yield_now();
        }
        let after_writes = calls();
        let start = Instant::now();
        while !caller.is_finished() && !writer.is_finished() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "neither vCPU stopped"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        lifecycle.request_shutdown(0);
        let writer_exit = writer.join().unwrap();
        let (caller_exit, mut caller) = caller.join().unwrap();
        let at_end = calls();
        assert!(
            matches!(writer_exit, VcpuExit::Halted { .. } | VcpuExit::Shutdown(0)),
            "writer: {writer_exit:?}"
        );
        assert!(
            matches!(caller_exit, VcpuExit::Halted { .. } | VcpuExit::Shutdown(0)),
            "caller: {caller_exit:?}"
        );
        let machine::CpuState::X86_64(caller_state) = caller.cpu().cpu_state() else {
            panic!("not an x86 CPU state")
        };
        assert_eq!(caller_state.rip, DONE + 1, "the caller stopped elsewhere");
        let mut mix = [0u8; 4];
        memory.read_slice(&mut mix, GuestAddress(MIX)).unwrap();
        assert_eq!(mix, [0; 4], "the caller saw a mix of old and new bytes");
        assert!(
            at_end - after_writes <= 2,
            "{} calls after the last write",
            at_end - after_writes
        );
    });
}

#[test]
fn another_vcpus_writes_to_code_are_seen_whole_on_both_engines() {
    let env_size = size_of::<X86State>();
    cross_modify(|| InterpEngine::new(env_size));
    cross_modify(|| JitEngine::new(1 << 20, env_size).unwrap());
}
