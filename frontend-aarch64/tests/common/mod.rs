#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed
//! Shared set-up for the AArch64 front end's integration tests: run
//! hand-assembled A64 words on moat's exec loop ([`TcgVcpu`]) with the
//! interpreter or the JIT and a block budget.
//!
//! A test program ends with [`EPILOGUE`]: it copies x0 to x18 and calls
//! PSCI SYSTEM_OFF through `hvc #0`; [`Run::x`] gives x0 back from x18, so
//! tests must not use x18 themselves. Every exception vector (VBAR_EL1 =
//! [`VECTORS`]) holds the same epilogue, so an exception ends the run too
//! and the test reads ESR_EL1/ELR_EL1.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

pub mod random;

use std::sync::Arc;

use accel_tcg::exec::engine::{InterpEngine, JitEngine};
use accel_tcg::exec::{Machine, SharedCodePages, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use devices::{Bus, Clock, VmLifecycle};
use frontend_aarch64::{A64Cpu, A64State};
use machine::arch::{AARCH64_PSTATE_EL1H_MASKED, Aarch64CpuState};
use machine::{CpuState, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM base (as on the `virt` board).
pub const RAM: u64 = 0x4000_0000;
/// RAM size.
pub const RAM_SIZE: usize = 4 << 20;
/// Where test code is loaded.
pub const CODE: u64 = RAM;
/// The exception vectors.
pub const VECTORS: u64 = RAM + 0x10_0000;
/// A data area tests may use.
pub const DATA: u64 = RAM + 0x20_0000;
/// The initial stack pointer (SP_EL1).
pub const STACK: u64 = RAM + 0x30_0000;

/// `mov x18, x0; mov x0, #0x84000008; hvc #0` (PSCI SYSTEM_OFF).
pub const EPILOGUE: [u32; 4] = [
    0xaa0003f2, // mov x18, x0
    0xd2800100, // mov x0, #0x8
    0xf2b08000, // movk x0, #0x8400, lsl #16
    0xd4000002, // hvc #0
];

/// Which engine runs the translated blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// accel-tcg's IR interpreter (which also verifies every block's IR).
    Interp,
    /// accel-tcg's x86-64 JIT, with chaining.
    Jit,
}

/// Both engines.
pub const ENGINES: [Engine; 2] = [Engine::Interp, Engine::Jit];

/// Guest memory with `code` at [`CODE`] followed by the epilogue, and the
/// vectors.
pub fn memory_with(code: &[u32]) -> GuestMemoryMmap {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(RAM), RAM_SIZE)]).unwrap();
    write_words(&mem, CODE, code);
    write_words(&mem, CODE + 4 * code.len() as u64, &EPILOGUE);
    for slot in 0..16 {
        write_words(&mem, VECTORS + 0x80 * slot, &EPILOGUE);
    }
    mem
}

/// Writes little-endian words.
pub fn write_words(mem: &GuestMemoryMmap, at: u64, words: &[u32]) {
    for (n, w) in words.iter().enumerate() {
        mem.write_obj(*w, GuestAddress(at + 4 * n as u64)).unwrap();
    }
}

/// The boot state tests start from: EL1h masked at [`CODE`].
pub fn entry_state() -> Aarch64CpuState {
    Aarch64CpuState {
        pc: CODE,
        pstate: AARCH64_PSTATE_EL1H_MASKED,
        sp_el1: STACK,
        vbar_el1: VECTORS,
        ..Aarch64CpuState::default()
    }
}

/// The machine one vCPU of `cpus` runs on.
pub fn machine(
    memory: &GuestMemoryMmap,
    lifecycle: &Arc<VmLifecycle>,
    shared: &Arc<SharedCodePages>,
    index: u32,
    cpus: u32,
) -> Machine {
    Machine {
        memory: memory.clone(),
        pio: Arc::new(Bus::new("pio")),
        mmio: Arc::new(Bus::new("mmio")),
        lifecycle: lifecycle.clone(),
        interrupts: Arc::new(devices::NoInterruptController),
        clock: Clock::new(),
        index,
        cpus,
        shared_code: shared.clone(),
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Run {
    /// How it ended (`None`: the block budget ran out).
    pub exit: Option<VcpuExit>,
    /// The architectural state afterwards, x0 restored from x18.
    pub state: Aarch64CpuState,
}

impl Run {
    /// Register `n` (x0 as the program left it).
    pub fn x(&self, n: usize) -> u64 {
        self.state.x[n]
    }
    /// NZCV as a 4-bit number (N = 8).
    pub fn nzcv(&self) -> u64 {
        (self.state.pstate >> 28) & 0xf
    }
    /// The exception class of ESR_EL1.
    pub fn ec(&self) -> u64 {
        self.state.esr_el1 >> 26
    }
}

/// Runs one vCPU from `state` on `mem` with `engine` for at most
/// `max_blocks` blocks.
pub fn run_state(
    mem: &GuestMemoryMmap,
    state: Aarch64CpuState,
    engine: Engine,
    max_blocks: u64,
) -> Run {
    let lifecycle = Arc::new(VmLifecycle::new());
    let shared = SharedCodePages::new(lifecycle.clone());
    let mut cpu = A64Cpu::new();
    cpu.set_cpu_state(&CpuState::Aarch64(Box::new(state)))
        .unwrap();
    let m = machine(mem, &lifecycle, &shared, 0, 1);
    let env = size_of::<A64State>();
    let (exit, st) = match engine {
        Engine::Interp => {
            let mut v = TcgVcpu::new(cpu, InterpEngine::new(env), m);
            let exit = v.run_blocks(max_blocks).unwrap();
            (exit, v.cpu().cpu_state())
        }
        Engine::Jit => {
            let jit = JitEngine::new(1 << 20, env).unwrap();
            let mut v = TcgVcpu::new(cpu, jit, m);
            let exit = v.run_blocks(max_blocks).unwrap();
            (exit, v.cpu().cpu_state())
        }
    };
    let CpuState::Aarch64(mut state) = st else {
        panic!("not an AArch64 state")
    };
    state.x[0] = state.x[18];
    Run {
        exit,
        state: *state,
    }
}

/// Runs `code` (then the epilogue) from `state` with `engine`.
pub fn run_with(code: &[u32], state: Aarch64CpuState, engine: Engine) -> Run {
    let mem = memory_with(code);
    run_state(&mem, state, engine, 10_000)
}

/// Runs `code` with registers `regs` (x0..) on both engines, checks that
/// both reach the epilogue and agree, and returns the interpreter's run.
pub fn run(code: &[u32], regs: &[u64]) -> Run {
    let mut state = entry_state();
    state.x[..regs.len()].copy_from_slice(regs);
    run_both(code, state)
}

/// [`run`] from a full state.
pub fn run_both(code: &[u32], state: Aarch64CpuState) -> Run {
    let a = run_with(code, state.clone(), Engine::Interp);
    let b = run_with(code, state, Engine::Jit);
    assert_eq!(
        a.exit,
        Some(VcpuExit::Shutdown(0)),
        "interpreter run: {:?}",
        a.state
    );
    assert_eq!(
        b.exit,
        Some(VcpuExit::Shutdown(0)),
        "JIT run: {:?}",
        b.state
    );
    assert_eq!(a.state, b.state, "interpreter and JIT disagree");
    a
}

/// The Arm ARM's `AddWithCarry` for a reference: (result, NZCV).
pub fn add_with_carry(x: u64, y: u64, carry: bool, bits: u32) -> (u64, u64) {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let (x, y) = (x & mask, y & mask);
    let unsigned = x as u128 + y as u128 + carry as u128;
    let sx = ((x << (64 - bits)) as i64 >> (64 - bits)) as i128;
    let sy = ((y << (64 - bits)) as i64 >> (64 - bits)) as i128;
    let signed = sx + sy + carry as i128;
    let result = unsigned as u64 & mask;
    let sres = ((result << (64 - bits)) as i64 >> (64 - bits)) as i128;
    let n = (result >> (bits - 1)) & 1;
    let z = u64::from(result == 0);
    let c = u64::from(result as u128 != unsigned);
    let v = u64::from(sres != signed);
    (result, (n << 3) | (z << 2) | (c << 1) | v)
}

/// Reports that `test` (or part of it) did not run because `reason`, on
/// stderr past libtest's capture (so plain `cargo test` shows it and
/// `scripts/test` counts it), as the root package's tests do. Where
/// `variable` (a `MOAT_REQUIRE_*` name) is 1, the skip is a failure instead.
pub fn skip(test: &str, variable: &str, reason: &str) {
    use std::io::Write;
    if std::env::var_os(variable).is_some_and(|value| value == "1") {
        panic!("{test} cannot run ({reason}), and {variable}=1 says it must");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}
