//! The exec loop with a toy guest ISA, so caching, chaining, faults and
//! self-modifying code are tested without any real front end.
//!
//! Toy ISA (one byte opcodes, little-endian operands):
//! - `01`: acc += 1
//! - `02 rr`: jump by signed rr bytes from the next instruction
//! - `03 aaaaaaaa`: store acc's low byte at address a
//! - `04 pp`: port write of acc's low byte to port p, finished in Rust
//! - `05 rr`: count -= 1; if count != 0 jump by rr
//! - `ff`: halt

use std::sync::{Arc, Mutex};

use devices::{Bus, DebugExit, VmLifecycle};
use machine::{CpuState as MachineCpuState, Crash, CrashKind, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::engine::{Engine, InterpEngine, JitEngine};
use super::{Machine, TcgVcpu};
use crate::guest::{
    CodeReader, FetchFault, GuestCpu, GuestEvent, PageTranslation, PageWalker, Platform,
};
use crate::ir::{Block, Cond, MemOp, Ty};
use crate::softmmu::{Access, CpuState, MemFault, PagePerms, TcgContextHeader};

#[repr(C)]
struct ToyState {
    header: TcgContextHeader,
    acc: u64,
    count: u64,
}

// SAFETY: repr(C), header first, plain integers after it.
unsafe impl CpuState for ToyState {}

const ACC: u32 = std::mem::offset_of!(ToyState, acc) as u32;
const COUNT: u32 = std::mem::offset_of!(ToyState, count) as u32;
const STATUS_OUT: u64 = 1;
const STATUS_HALT: u64 = 2;
const RAM_SIZE: u64 = 0x10000;

/// Identity mapping of RAM; everything above is unmapped.
struct ToyWalker;

impl PageWalker for ToyWalker {
    fn translate(
        &self,
        _memory: &GuestMemoryMmap,
        vaddr: u64,
        _access: Access,
        _mmu_idx: usize,
    ) -> Result<PageTranslation, MemFault> {
        if vaddr < RAM_SIZE {
            Ok(PageTranslation {
                paddr: vaddr,
                perms: PagePerms::RWX,
            })
        } else {
            Err(MemFault { code: 14 })
        }
    }
}

struct Toy {
    state: Box<ToyState>,
    pc: u64,
    /// The port and next pc of a pending `04` instruction.
    out: Vec<u8>,
    faults: Vec<(u64, u64)>,
}

impl Toy {
    fn new(pc: u64) -> Toy {
        Toy {
            state: Box::new(ToyState {
                header: TcgContextHeader::new(),
                acc: 0,
                count: 0,
            }),
            pc,
            out: Vec::new(),
            faults: Vec::new(),
        }
    }
}

impl GuestCpu for Toy {
    type State = ToyState;
    type Walker = ToyWalker;

    fn state(&mut self) -> &mut ToyState {
        &mut self.state
    }
    fn pc(&self) -> u64 {
        self.pc
    }
    fn set_pc(&mut self, pc: u64) {
        self.pc = pc;
    }
    fn tb_flags(&self) -> u64 {
        0
    }
    fn walker(&self) -> ToyWalker {
        ToyWalker
    }

    fn translate(
        &mut self,
        pc: u64,
        _flags: u64,
        code: &mut dyn CodeReader,
        b: &mut Block,
        max_insns: usize,
    ) -> Result<(), FetchFault> {
        let mut at = pc;
        for n in 0..max_insns {
            let mut op = [0u8; 5];
            if let Err(fault) = code.read(at, &mut op[..1]) {
                if n == 0 {
                    return Err(FetchFault { vaddr: at, fault });
                }
                b.goto_tb(0, at);
                return Ok(());
            }
            let len = match op[0] {
                0x02 | 0x04 | 0x05 => 2,
                0x03 => 5,
                _ => 1,
            };
            if len > 1 && code.read(at + 1, &mut op[1..len]).is_err() {
                b.exit_status(STATUS_HALT);
                return Ok(());
            }
            b.insn_start(at);
            let next = at + len as u64;
            match op[0] {
                0x01 => {
                    let acc = b.temp64();
                    let one = b.const_temp(Ty::I64, 1);
                    b.ld_env(acc, ACC, MemOp::Q);
                    b.add(acc, acc, one);
                    b.st_env(acc, ACC, MemOp::Q);
                }
                0x02 => {
                    b.goto_tb(0, next.wrapping_add(op[1] as i8 as u64));
                    return Ok(());
                }
                0x03 => {
                    let addr = u32::from_le_bytes([op[1], op[2], op[3], op[4]]);
                    let acc = b.temp64();
                    let a = b.const_temp(Ty::I64, u64::from(addr));
                    b.ld_env(acc, ACC, MemOp::Q);
                    b.qemu_st(acc, a, MemOp::UB);
                }
                0x04 => {
                    self.out.push(op[1]);
                    b.exit_status(STATUS_OUT | (u64::from(op[1]) << 8));
                    return Ok(());
                }
                0x05 => {
                    let count = b.temp64();
                    let one = b.const_temp(Ty::I64, 1);
                    let zero = b.const_temp(Ty::I64, 0);
                    let done = b.label();
                    b.ld_env(count, COUNT, MemOp::Q);
                    b.sub(count, count, one);
                    b.st_env(count, COUNT, MemOp::Q);
                    b.brcond(count, zero, Cond::Eq, done);
                    b.goto_tb(0, next.wrapping_add(op[1] as i8 as u64));
                    b.set_label(done);
                    b.goto_tb(1, next);
                    return Ok(());
                }
                _ => {
                    b.exit_status(STATUS_HALT);
                    return Ok(());
                }
            }
            at = next;
        }
        b.goto_tb(0, at);
        Ok(())
    }

    fn handle_status(&mut self, code: u64, pc: u64, platform: &Platform<'_>) -> GuestEvent {
        match code & 0xff {
            STATUS_OUT => {
                let port = code >> 8;
                platform.pio.write(port, &[self.state.acc as u8]);
                self.pc = pc + 2;
                match platform.lifecycle.pending() {
                    Some(devices::LifecycleEvent::Shutdown(status)) => {
                        GuestEvent::Exit(VcpuExit::Shutdown(status))
                    }
                    _ => GuestEvent::Continue,
                }
            }
            _ => GuestEvent::Exit(VcpuExit::Halted { pc }),
        }
    }

    fn memory_fault(
        &mut self,
        pc: u64,
        vaddr: u64,
        _access: Access,
        _fault: MemFault,
        _platform: &Platform<'_>,
    ) -> GuestEvent {
        self.faults.push((pc, vaddr));
        GuestEvent::Exit(VcpuExit::Crashed(Crash {
            kind: CrashKind::TripleFault,
            pc,
        }))
    }

    fn helper_exit(&mut self, _code: u32, pc: u64, _platform: &Platform<'_>) -> GuestEvent {
        GuestEvent::Exit(VcpuExit::Halted { pc })
    }

    fn poll_interrupts(&mut self, _platform: &Platform<'_>) -> GuestEvent {
        GuestEvent::Continue
    }

    fn has_work(&mut self, _platform: &Platform<'_>) -> bool {
        true
    }

    fn cpu_state(&self) -> MachineCpuState {
        MachineCpuState::X86_64(Box::default())
    }

    fn set_cpu_state(&mut self, _state: &MachineCpuState) -> Result<(), String> {
        Err("the toy CPU has no architectural state".into())
    }
}

fn machine(program: &[(u64, &[u8])]) -> (Machine, Arc<VmLifecycle>) {
    let memory =
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM_SIZE as usize)]).unwrap();
    for &(addr, bytes) in program {
        memory.write_slice(bytes, GuestAddress(addr)).unwrap();
    }
    let lifecycle = Arc::new(VmLifecycle::new());
    let mut pio = Bus::new("pio");
    pio.insert(
        Arc::new(Mutex::new(DebugExit::new(lifecycle.clone()))),
        0xf4,
        4,
    )
    .unwrap();
    (
        Machine {
            memory,
            pio: Arc::new(pio),
            mmio: Arc::new(Bus::new("mmio")),
            lifecycle: lifecycle.clone(),
            interrupts: Arc::new(devices::NoInterruptController),
            clock: devices::Clock::new(),
            index: 0,
            cpus: 1,
        },
        lifecycle,
    )
}

fn vcpu(program: &[(u64, &[u8])], pc: u64) -> TcgVcpu<Toy, InterpEngine> {
    let (machine, _) = machine(program);
    TcgVcpu::new(
        Toy::new(pc),
        InterpEngine::new(size_of::<ToyState>()),
        machine,
    )
}

fn jit_vcpu(program: &[(u64, &[u8])], pc: u64) -> TcgVcpu<Toy, JitEngine> {
    let (machine, _) = machine(program);
    let jit = JitEngine::new(1 << 20, size_of::<ToyState>()).unwrap();
    TcgVcpu::new(Toy::new(pc), jit, machine)
}

/// The loop program of `runs_blocks_and_caches_them`, on any engine.
fn run_loop<E: Engine>(v: &mut TcgVcpu<Toy, E>) {
    v.cpu().state.count = 4;
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x1005 });
    assert_eq!(v.cpu().state.acc, 12);
    assert_eq!(v.stats.blocks_translated, 2);
}

const LOOP: &[u8] = &[0x01, 0x01, 0x01, 0x05, (-5i8) as u8, 0xff];

#[test]
fn jit_chains_the_loop_to_itself() {
    let mut v = jit_vcpu(&[(0x1000, LOOP)], 0x1000);
    run_loop(&mut v);
    // The back edge and the loop exit were each linked once; after the
    // first iteration the loop never left translated code.
    assert_eq!(v.stats.chains_linked, 2);
    assert_eq!(v.stats.blocks_executed, 3, "{:?}", v.stats);
}

#[test]
fn jit_invalidates_stores_to_translated_code() {
    let patcher: &[u8] = &[0x01, 0x03, 0x00, 0x20, 0x00, 0x00, 0x02, 0x7f];
    let mut v = jit_vcpu(&[(0x2000, &[0xff]), (0x1000, patcher)], 0x2000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x2000 });
    v.cpu().set_pc(0x1000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x1087 });
    v.cpu().set_pc(0x2000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x2001 });
    assert_eq!(v.cpu().state.acc, 2);
}

#[test]
fn jit_port_writes_and_faults() {
    let mut v = jit_vcpu(&[(0x1000, &[0x01, 0x01, 0x04, 0xf4, 0xff])], 0x1000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Shutdown(5));
    let mut v = jit_vcpu(&[(RAM_SIZE - 3, &[0x01, 0x02, 0x7f])], RAM_SIZE - 3);
    assert!(matches!(v.run_guest().unwrap(), VcpuExit::Crashed(_)));
    assert_eq!(v.cpu().faults, vec![(RAM_SIZE + 0x7f, RAM_SIZE + 0x7f)]);
}

#[test]
fn jit_leaves_an_endless_chained_loop_when_asked() {
    // `02 fe` jumps to itself forever; a request from another thread must
    // still stop it.
    let (machine, lifecycle) = machine(&[(0x1000, &[0x02, 0xfe])]);
    let jit = JitEngine::new(1 << 20, size_of::<ToyState>()).unwrap();
    let mut v = TcgVcpu::new(Toy::new(0x1000), jit, machine);
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        lifecycle.request_shutdown(7);
    });
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Shutdown(7));
    stopper.join().unwrap();
}

#[test]
fn runs_blocks_and_caches_them() {
    // acc += 3 in a loop of 4, then halt.
    let mut v = vcpu(&[(0x1000, LOOP)], 0x1000);
    run_loop(&mut v);
    // The loop body and the tail were translated once each, then reused.
    assert_eq!(v.stats.blocks_executed, 5);
}

#[test]
fn port_writes_reach_devices_and_end_the_vm() {
    let program: &[u8] = &[0x01, 0x01, 0x04, 0xf4, 0xff];
    let mut v = vcpu(&[(0x1000, program)], 0x1000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Shutdown(5));
}

#[test]
fn fetch_from_unmapped_memory_is_a_precise_fault() {
    // Jump off the end of RAM: the jump's block runs, then the fetch faults.
    let program: &[u8] = &[0x01, 0x02, 0x7f];
    let mut v = vcpu(&[(RAM_SIZE - 3, program)], RAM_SIZE - 3);
    let exit = v.run_guest().unwrap();
    assert!(matches!(exit, VcpuExit::Crashed(_)));
    assert_eq!(v.cpu().faults, vec![(RAM_SIZE + 0x7f, RAM_SIZE + 0x7f)]);
    assert_eq!(v.cpu().state.acc, 1);
}

#[test]
fn stores_to_translated_code_invalidate_it() {
    // 0x2000 starts as "halt" (ff). Run it once so it is translated, then run
    // code at 0x1000 that stores 0x01 (acc += 1) over it, then run it again.
    let patcher: &[u8] = &[0x01, 0x03, 0x00, 0x20, 0x00, 0x00, 0x02, 0x7f];
    let mut v = vcpu(&[(0x2000, &[0xff]), (0x1000, patcher)], 0x2000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x2000 });
    assert_eq!(v.stats.blocks_translated, 1);
    // Now run the patcher: acc = 1, store 0x01 over the halt, then jump to
    // 0x1008 + 0x7f = 0x1087, which is zero bytes: halt (opcode 00).
    v.cpu().set_pc(0x1000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x1087 });
    assert_eq!(v.stats.pages_invalidated, 1);
    // The code at 0x2000 is now `01 00`: acc += 1, then halt at 0x2001.
    v.cpu().set_pc(0x2000);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x2001 });
    assert_eq!(v.cpu().state.acc, 2);
}

#[test]
fn lifecycle_requests_stop_the_loop_before_the_next_block() {
    let (machine, lifecycle) = machine(&[(0x1000, &[0x02, 0xfe])]);
    let mut v = TcgVcpu::new(
        Toy::new(0x1000),
        InterpEngine::new(size_of::<ToyState>()),
        machine,
    );
    lifecycle.request_shutdown(9);
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Shutdown(9));
}

/// A `Write` that keeps what it is given, for trace tests.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn traces_translation_and_execution() {
    let captured = Captured::default();
    let mut v = jit_vcpu(&[(0x1000, LOOP)], 0x1000);
    v.set_trace(
        super::trace::TraceFlags::parse("in_asm,op,out_asm,exec").unwrap(),
        super::trace::TraceSink::new(Box::new(captured.clone())),
    );
    run_loop(&mut v);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("IN: 0x1000"), "{text}");
    assert!(text.contains("OP: 0x1000"), "{text}");
    assert!(text.contains("OUT: 0x1000"), "{text}");
    // Every loop iteration is a traced block entry: 4 loop blocks and the tail.
    assert_eq!(
        text.matches("Trace: [0x0000000000001000]").count(),
        4,
        "{text}"
    );
    assert_eq!(
        text.matches("Trace: [0x0000000000001005]").count(),
        1,
        "{text}"
    );
    assert_eq!(v.stats.chains_linked, 0);
}

/// A block that patches an instruction later in itself must run the new
/// instruction, as x86 does.
fn patch_ahead_in_the_same_block<E: Engine>(mut v: TcgVcpu<Toy, E>) {
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x3008 });
    assert_eq!(v.cpu().state.acc, 3);
    assert_eq!(v.stats.pages_invalidated, 1);
}

/// acc = 1; [0x3007] = 1 (turns the `ff` there into `01`); acc += 1; acc += 1
/// (patched); halt.
const PATCH_AHEAD: &[u8] = &[0x01, 0x03, 0x07, 0x30, 0x00, 0x00, 0x01, 0xff, 0xff];

#[test]
fn stores_into_the_running_block_take_effect_at_once() {
    patch_ahead_in_the_same_block(vcpu(&[(0x3000, PATCH_AHEAD)], 0x3000));
    patch_ahead_in_the_same_block(jit_vcpu(&[(0x3000, PATCH_AHEAD)], 0x3000));
}

#[test]
fn data_next_to_code_does_not_invalidate_it() {
    // The loop stores to 0x1100, on its own page but past its code: the
    // translation must survive every iteration.
    let program: &[u8] = &[0x01, 0x03, 0x00, 0x11, 0x00, 0x00, 0x05, (-8i8) as u8, 0xff];
    let mut v = jit_vcpu(&[(0x1000, program)], 0x1000);
    v.cpu().state.count = 50;
    assert_eq!(v.run_guest().unwrap(), VcpuExit::Halted { pc: 0x1008 });
    assert_eq!(v.cpu().state.acc, 50);
    assert_eq!(v.stats.pages_invalidated, 0);
    assert_eq!(v.stats.blocks_translated, 2);
}
