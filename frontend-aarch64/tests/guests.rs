//! The aarch64 test guests `fp` and `simd` (tests/guests/aarch64, outputs
//! recorded from QEMU's cortex-a57) on a RAM-only machine with a PL011
//! stand-in that collects what the guest prints, on both engines.
//!
//! The images live in the root package's `tests/guests/bin/aarch64`; set
//! `MOAT_GUESTS` to another `tests/guests` directory to use those. A
//! missing image skips the test with a note.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use accel_tcg::exec::engine::{InterpEngine, JitEngine};
use accel_tcg::exec::{Machine, SharedCodePages, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use common::{Engine, entry_state};
use devices::{Bus, BusDevice, Clock, VmLifecycle};
use frontend_aarch64::{A64Cpu, A64State};
use machine::{CpuState, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const PL011: u64 = 0x0900_0000;
const LOAD: u64 = 0x4008_0000;

/// Collects bytes written to the data register; the flag register reads 0
/// (transmit FIFO never full).
struct Uart(Arc<Mutex<Vec<u8>>>);

impl BusDevice for Uart {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == 0
            && let (Some(b), Ok(mut out)) = (data.first(), self.0.lock())
        {
            out.push(*b);
        }
    }
}

fn guests_dir() -> PathBuf {
    std::env::var_os("MOAT_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/guests"))
}

fn run_guest(name: &str, engine: Engine) -> Option<(String, String)> {
    let dir = guests_dir();
    let bin = std::fs::read(dir.join(format!("bin/aarch64/{name}.bin"))).ok()?;
    let expected =
        std::fs::read_to_string(dir.join(format!("aarch64/expected/{name}.out"))).ok()?;
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x4000_0000), 64 << 20)]).unwrap();
    mem.write_slice(&bin, GuestAddress(LOAD)).unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut mmio = Bus::new("mmio");
    mmio.insert(Arc::new(Mutex::new(Uart(out.clone()))), PL011, 0x1000)
        .unwrap();
    let lifecycle = Arc::new(VmLifecycle::new());
    let shared = SharedCodePages::new(lifecycle.clone());
    let m = Machine {
        memory: mem.clone(),
        pio: Arc::new(Bus::new("pio")),
        mmio: Arc::new(mmio),
        lifecycle: lifecycle.clone(),
        interrupts: Arc::new(devices::NoInterruptController),
        clock: Clock::new(),
        index: 0,
        cpus: 1,
        shared_code: shared,
    };
    let mut state = entry_state();
    state.pc = LOAD;
    let mut cpu = A64Cpu::new();
    cpu.set_cpu_state(&CpuState::Aarch64(Box::new(state)))
        .unwrap();
    let env = size_of::<A64State>();
    let budget = 50_000_000;
    let exit = match engine {
        Engine::Interp => TcgVcpu::new(cpu, InterpEngine::new(env), m)
            .run_blocks(budget)
            .unwrap(),
        Engine::Jit => TcgVcpu::new(cpu, JitEngine::new(8 << 20, env).unwrap(), m)
            .run_blocks(budget)
            .unwrap(),
    };
    assert_eq!(exit, Some(VcpuExit::Shutdown(0)), "{name} on {engine:?}");
    let got = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    Some((got, expected))
}

fn check(name: &str, engine: Engine) {
    let Some((got, expected)) = run_guest(name, engine) else {
        eprintln!("{name}: guest image or expected output not found; skipped");
        return;
    };
    let diff: Vec<String> = expected
        .lines()
        .zip(got.lines())
        .filter(|(e, g)| e != g)
        .map(|(e, g)| format!("expected {e:?}\n     got {g:?}"))
        .collect();
    assert!(
        diff.is_empty() && expected.lines().count() == got.lines().count(),
        "{name} on {engine:?}: {} differing lines of {}, output {} lines:\n{}",
        diff.len(),
        expected.lines().count(),
        got.lines().count(),
        diff.join("\n")
    );
}

#[test]
fn fp_guest_interp() {
    check("fp", Engine::Interp);
}

#[test]
fn fp_guest_jit() {
    check("fp", Engine::Jit);
}

#[test]
fn simd_guest_interp() {
    check("simd", Engine::Interp);
}

#[test]
fn simd_guest_jit() {
    check("simd", Engine::Jit);
}
