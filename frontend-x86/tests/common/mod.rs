//! Shared set-up for this crate's integration tests: CPU states, and
//! [`TestVm`], which runs an [`X86Cpu`] on moat's exec loop
//! ([`accel_tcg::exec::TcgVcpu`]) with the interpreter or the JIT, a block
//! budget and a watchdog, so a guest that never stops ends its test.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use accel_tcg::exec::engine::{InterpEngine, JitEngine};
use accel_tcg::exec::{Machine, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use devices::{Bus, Clock, InterruptController, VmLifecycle};
use frontend_x86::{X86Cpu, X86State};
use machine::{Segment, Vcpu, VcpuExit, X86CpuState};
use vm_memory::GuestMemoryMmap;

/// A flat 64-bit ring-0 CPU at `rip`: code selector 8, data selector 0x10,
/// every base 0, paging off (the tests' memory is mapped 1:1), long mode
/// active. Tests adjust registers, flags and control registers from here.
pub fn flat64_state(rip: u64) -> X86CpuState {
    let seg = |selector: u16, type_: u8, long: bool| Segment {
        selector,
        base: 0,
        limit: 0xffff_ffff,
        type_,
        present: true,
        dpl: 0,
        db: !long,
        s: true,
        l: long,
        g: true,
        avl: false,
        unusable: false,
    };
    let data = seg(0x10, 3, false);
    X86CpuState {
        rip,
        rflags: 2,
        cs: seg(8, 0xb, true),
        ds: data,
        es: data,
        fs: data,
        gs: data,
        ss: data,
        cr0: 1,
        efer: 0x500,
        ..X86CpuState::default()
    }
}

/// Which engine runs the translated blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// accel-tcg's IR interpreter (which also verifies every block's IR).
    Interp,
    /// accel-tcg's x86-64 JIT, with chaining.
    Jit,
}

/// The exit status a run ends with when the watchdog stops it.
pub const WATCHDOG_STATUS: i32 = 124;

/// Bytes of host code the JIT may hold; test guests are small.
const JIT_CACHE: usize = 1 << 20;

/// The vCPU before and after its first run.
enum State {
    /// Not started: engine, optimizer and buses may still change.
    Ready(Box<X86Cpu>),
    Interp(Box<TcgVcpu<X86Cpu, InterpEngine>>),
    Jit(Box<TcgVcpu<X86Cpu, JitEngine>>),
    /// Only while a run starts.
    Starting,
}

/// One x86 CPU on moat's exec loop. The public fields are the machine and
/// the settings; they take effect at the first [`TestVm::run`] (the exec loop
/// is built then), so tests set them, and the CPU's state, before it.
pub struct TestVm {
    pub memory: GuestMemoryMmap,
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub lifecycle: Arc<VmLifecycle>,
    pub interrupts: Arc<dyn InterruptController>,
    pub clock: Arc<Clock>,
    pub engine: Engine,
    /// Run blocks through the IR optimizer (the exec loop's default).
    pub optimize: bool,
    /// How long one run may take before the watchdog requests a shutdown
    /// with [`WATCHDOG_STATUS`]. It bounds what the block budget cannot: a
    /// loop the JIT chains to itself, and a CPU halted with interrupts
    /// enabled, waiting for an interrupt nobody raises.
    pub deadline: Duration,
    state: State,
}

impl TestVm {
    /// `cpu` on `memory` with empty buses, no interrupt controller, the
    /// optimizing interpreter and a generous deadline.
    pub fn new(cpu: X86Cpu, memory: GuestMemoryMmap) -> TestVm {
        TestVm {
            memory,
            pio: Arc::new(Bus::new("pio")),
            mmio: Arc::new(Bus::new("mmio")),
            lifecycle: Arc::new(VmLifecycle::new()),
            interrupts: Arc::new(devices::NoInterruptController),
            clock: Clock::new(),
            engine: Engine::Interp,
            optimize: true,
            deadline: Duration::from_secs(120),
            state: State::Ready(Box::new(cpu)),
        }
    }

    /// [`TestVm::new`] with `engine`.
    pub fn with_engine(cpu: X86Cpu, memory: GuestMemoryMmap, engine: Engine) -> TestVm {
        TestVm {
            engine,
            ..TestVm::new(cpu, memory)
        }
    }

    /// The CPU, before or after runs.
    pub fn cpu(&mut self) -> &mut X86Cpu {
        match &mut self.state {
            State::Ready(cpu) => cpu,
            State::Interp(vcpu) => vcpu.cpu(),
            State::Jit(vcpu) => vcpu.cpu(),
            State::Starting => unreachable!("a run is starting"),
        }
    }

    /// The CPU's architectural state.
    pub fn state(&mut self) -> X86CpuState {
        let machine::CpuState::X86_64(state) = self.cpu().cpu_state() else {
            panic!("not an x86 CPU state")
        };
        *state
    }

    /// Loads the CPU's architectural state (once runs have started, through
    /// the vCPU, which then drops its translations).
    pub fn set_state(&mut self, state: X86CpuState) {
        let state = machine::CpuState::X86_64(Box::new(state));
        match &mut self.state {
            State::Ready(cpu) => cpu.set_cpu_state(&state).unwrap(),
            State::Interp(vcpu) => vcpu.set_cpu_state(&state).unwrap(),
            State::Jit(vcpu) => vcpu.set_cpu_state(&state).unwrap(),
            State::Starting => unreachable!("a run is starting"),
        }
    }

    /// Runs until the guest exits, or `max_blocks` iterations of the exec
    /// loop (then `None`), or the deadline (then a shutdown with
    /// [`WATCHDOG_STATUS`]). moat's own failures (a JIT error, IR the
    /// interpreter rejects) fail the test.
    pub fn run(&mut self, max_blocks: u64) -> Option<VcpuExit> {
        self.start();
        let (done, finished) = channel::<()>();
        let lifecycle = self.lifecycle.clone();
        let deadline = self.deadline;
        let watchdog = std::thread::spawn(move || {
            if finished.recv_timeout(deadline) == Err(RecvTimeoutError::Timeout) {
                lifecycle.request_shutdown(WATCHDOG_STATUS);
            }
        });
        let result = match &mut self.state {
            State::Interp(vcpu) => vcpu.run_blocks(max_blocks),
            State::Jit(vcpu) => vcpu.run_blocks(max_blocks),
            State::Ready(_) | State::Starting => unreachable!("started above"),
        };
        drop(done);
        watchdog.join().unwrap();
        match result {
            Ok(exit) => exit,
            Err(error) => panic!("moat failed: {error} ({error:?})"),
        }
    }

    /// Builds the exec loop around the CPU on the first run.
    fn start(&mut self) {
        if !matches!(self.state, State::Ready(_)) {
            return;
        }
        let State::Ready(cpu) = std::mem::replace(&mut self.state, State::Starting) else {
            unreachable!("checked above");
        };
        let machine = Machine {
            memory: self.memory.clone(),
            pio: self.pio.clone(),
            mmio: self.mmio.clone(),
            lifecycle: self.lifecycle.clone(),
            interrupts: self.interrupts.clone(),
            clock: self.clock.clone(),
            index: 0,
            cpus: 1,
            shared_code: accel_tcg::exec::SharedCodePages::new(self.lifecycle.clone()),
        };
        let env_size = size_of::<X86State>();
        self.state = match self.engine {
            Engine::Interp => {
                let mut vcpu = TcgVcpu::new(*cpu, InterpEngine::new(env_size), machine);
                vcpu.set_optimize(self.optimize);
                State::Interp(Box::new(vcpu))
            }
            Engine::Jit => {
                let jit = JitEngine::new(JIT_CACHE, env_size).unwrap();
                let mut vcpu = TcgVcpu::new(*cpu, jit, machine);
                vcpu.set_optimize(self.optimize);
                State::Jit(Box::new(vcpu))
            }
        };
    }
}
