//! The exec loop with a toy guest ISA, so caching, chaining, faults and
//! self-modifying code are tested without any real front end.
//!
//! Toy ISA (one byte opcodes, little-endian operands):
//! - `01`: acc += 1
//! - `02 rr`: jump by signed rr bytes from the next instruction
//! - `03 aaaaaaaa`: store acc's low byte at address a
//! - `04 pp`: port write of acc's low byte to port p, finished in Rust
//! - `05 rr`: count -= 1; if count != 0 jump by rr
//! - `06 ii`: acc = ii
//! - `07 ii`: halt if acc == ii
//! - `08 aaaaaaaa`: jump to address a
//! - `09 aaaaaaaa`: the 64-bit word at address a += 1
//! - `0a aaaaaaaa`: acc = the byte at address a
//! - `0b ii rr`: if acc != ii jump by rr
//! - `ff`: halt

use std::sync::{Arc, Mutex};

use devices::{Bus, DebugExit, VmLifecycle};
use machine::{CpuState as MachineCpuState, Crash, VcpuExit};
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
                0x02 | 0x04 | 0x05 | 0x06 | 0x07 => 2,
                0x0b => 3,
                0x03 | 0x08 | 0x09 | 0x0a => 5,
                _ => 1,
            };
            if len > 1 && code.read(at + 1, &mut op[1..len]).is_err() {
                b.exit_status(STATUS_HALT);
                return Ok(());
            }
            b.insn_start(at);
            let next = at + len as u64;
            let imm = || u64::from(u32::from_le_bytes([op[1], op[2], op[3], op[4]]));
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
                0x06 => {
                    let acc = b.const_temp(Ty::I64, u64::from(op[1]));
                    b.st_env(acc, ACC, MemOp::Q);
                }
                0x07 => {
                    let acc = b.temp64();
                    let value = b.const_temp(Ty::I64, u64::from(op[1]));
                    let different = b.label();
                    b.ld_env(acc, ACC, MemOp::Q);
                    b.brcond(acc, value, Cond::Ne, different);
                    b.exit_status(STATUS_HALT);
                    b.set_label(different);
                }
                0x08 => {
                    b.goto_tb(0, imm());
                    return Ok(());
                }
                0x09 => {
                    let word = b.temp64();
                    let one = b.const_temp(Ty::I64, 1);
                    let a = b.const_temp(Ty::I64, imm());
                    b.qemu_ld(word, a, MemOp::Q);
                    b.add(word, word, one);
                    b.qemu_st(word, a, MemOp::Q);
                }
                0x0a => {
                    let acc = b.temp64();
                    let a = b.const_temp(Ty::I64, imm());
                    b.qemu_ld(acc, a, MemOp::UB);
                    b.st_env(acc, ACC, MemOp::Q);
                }
                0x0b => {
                    let acc = b.temp64();
                    let value = b.const_temp(Ty::I64, u64::from(op[1]));
                    let equal = b.label();
                    b.ld_env(acc, ACC, MemOp::Q);
                    b.brcond(acc, value, Cond::Eq, equal);
                    b.goto_tb(0, next.wrapping_add(op[2] as i8 as u64));
                    b.set_label(equal);
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
            cause: "triple fault",
            pc,
        }))
    }

    fn helper_exit(&mut self, _code: u32, pc: u64, _platform: &Platform<'_>) -> GuestEvent {
        GuestEvent::Exit(VcpuExit::Halted { pc })
    }

    fn poll_interrupts(&mut self, _platform: &Platform<'_>) -> GuestEvent {
        GuestEvent::Continue
    }

    fn has_work(&mut self, _platform: &Platform<'_>) -> GuestEvent {
        GuestEvent::Continue
    }

    fn cpu_state(&self) -> MachineCpuState {
        MachineCpuState::X86_64(Box::default())
    }

    fn set_cpu_state(&mut self, _state: &MachineCpuState) -> Result<(), machine::AccelError> {
        // The toy has no architectural state to take.
        Err(machine::AccelError::WrongArch {
            expected: machine::Arch::Aarch64,
            found: machine::Arch::X86_64,
        })
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
            shared_code: super::SharedCodePages::new(lifecycle.clone()),
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

#[test]
fn bounded_runs_end_when_the_budget_is_spent() {
    // `02 fe` jumps to itself forever: each call runs exactly its budget of
    // blocks on the interpreter (no chaining) and returns.
    let mut v = vcpu(&[(0x1000, &[0x02, 0xfe])], 0x1000);
    assert_eq!(v.run_blocks(100).unwrap(), None);
    assert_eq!(v.stats.blocks_executed, 100);
    assert_eq!(v.run_blocks(0).unwrap(), None);
    assert_eq!(v.run_blocks(7).unwrap(), None);
    assert_eq!(v.stats.blocks_executed, 107);
    assert_eq!(v.stats.blocks_translated, 1);
    // A guest that stops within its budget reports how.
    let mut v = vcpu(&[(0x1000, LOOP)], 0x1000);
    v.cpu().state.count = 4;
    assert_eq!(
        v.run_blocks(1000).unwrap(),
        Some(VcpuExit::Halted { pc: 0x1005 })
    );
}

#[test]
fn unoptimized_blocks_compute_the_same() {
    for optimize in [false, true] {
        let mut v = vcpu(&[(0x1000, LOOP)], 0x1000);
        v.set_optimize(optimize);
        run_loop(&mut v);
        let mut v = jit_vcpu(&[(0x1000, LOOP)], 0x1000);
        v.set_optimize(optimize);
        run_loop(&mut v);
    }
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

/// Two toy vCPUs on one guest RAM and one shared code registry.
fn two_vcpus<E: Engine>(
    program: &[(u64, &[u8])],
    engine: impl Fn() -> E,
    pcs: [u64; 2],
) -> ([TcgVcpu<Toy, E>; 2], GuestMemoryMmap, Arc<VmLifecycle>) {
    let memory =
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM_SIZE as usize)]).unwrap();
    for &(addr, bytes) in program {
        memory.write_slice(bytes, GuestAddress(addr)).unwrap();
    }
    let lifecycle = Arc::new(VmLifecycle::with_vcpus(2));
    let shared_code = super::SharedCodePages::new(lifecycle.clone());
    let vcpu = |index: u32| {
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
        TcgVcpu::new(Toy::new(pcs[index as usize]), engine(), machine)
    };
    ([vcpu(0), vcpu(1)], memory, lifecycle)
}

fn le32(value: u32) -> [u8; 4] {
    value.to_le_bytes()
}

/// Page P's "function": acc = 0 (the byte at [`CONSTANT`]), return to 0x1005.
fn function() -> Vec<u8> {
    let mut code = vec![0x06, 0x00, 0x08];
    code.extend(le32(0x1005));
    code
}

/// The address of the function's constant.
const CONSTANT: u64 = 0x4001;
/// Iterations vCPU B has made (u64), the last value it saw, its "running"
/// flag.
const COUNTER: u64 = 0x5000;
const SEEN: u64 = 0x5008;
const RUNNING: u64 = 0x5010;
/// The value vCPU A patches in, and what B halts on.
const NEW: u8 = 42;

/// vCPU B: call the function on page P, halt if it returned [`NEW`],
/// record the value, count, raise the flag, and again.
fn caller() -> Vec<u8> {
    let mut code = vec![0x08];
    code.extend(le32(0x4000)); // 0x1000: call P
    code.extend([0x07, NEW]); // 0x1005: halt if acc == NEW
    code.push(0x03);
    code.extend(le32(SEEN as u32)); // 0x1007
    code.push(0x09);
    code.extend(le32(COUNTER as u32)); // 0x100c
    code.extend([0x06, 0x01, 0x03]);
    code.extend(le32(RUNNING as u32)); // 0x1011: flag = 1
    code.push(0x08);
    code.extend(le32(0x1000)); // 0x1018
    code
}

fn read_u64(memory: &GuestMemoryMmap, addr: u64) -> u64 {
    memory.read_obj(GuestAddress(addr)).unwrap()
}

/// Runs `b` (the caller) and `a` on threads of their own; `a` starts once
/// `b` is running. B must see A's new constant within two iterations of
/// A's store. A watchdog ends both if B never does.
fn cross_modify<E: Engine + Send>(
    [mut b, mut a]: [TcgVcpu<Toy, E>; 2],
    memory: &GuestMemoryMmap,
    lifecycle: &Arc<VmLifecycle>,
    a_starts_first: bool,
) {
    use std::time::{Duration, Instant};
    std::thread::scope(|scope| {
        let caller = scope.spawn(move || {
            let exit = b.run_guest().unwrap();
            (exit, b.stats)
        });
        if !a_starts_first {
            let start = Instant::now();
            while read_u64(memory, COUNTER) == 0 {
                assert!(start.elapsed() < Duration::from_secs(10), "B never ran");
                std::thread::yield_now();
            }
        }
        let patcher = scope.spawn(move || a.run_guest().unwrap());
        let watchdog = {
            let lifecycle = lifecycle.clone();
            scope.spawn(move || {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(20) {
                    if lifecycle.pending().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                lifecycle.request_shutdown(99);
            })
        };
        let a_exit = patcher.join().unwrap();
        let after_store = read_u64(memory, COUNTER);
        let (b_exit, b_stats) = caller.join().unwrap();
        let at_end = read_u64(memory, COUNTER);
        lifecycle.request_shutdown(0);
        watchdog.join().unwrap();
        assert!(matches!(a_exit, VcpuExit::Halted { .. }), "A: {a_exit:?}");
        assert_eq!(
            b_exit,
            VcpuExit::Halted { pc: 0x1005 },
            "B never saw the new code ({b_stats:?})"
        );
        assert!(
            at_end - after_store <= 2,
            "B ran {} iterations after the store",
            at_end - after_store
        );
        assert!(b_stats.pages_invalidated >= 1, "{b_stats:?}");
    });
    let mut seen = [0u8];
    memory.read_slice(&mut seen, GuestAddress(SEEN)).unwrap();
    assert_eq!(seen[0], 0, "B recorded a value other than the old one");
}

fn store_by_another_vcpu<E: Engine + Send>(engine: impl Fn() -> E) {
    // A: acc = NEW; [CONSTANT] = acc; halt.
    let mut patcher = vec![0x06, NEW, 0x03];
    patcher.extend(le32(CONSTANT as u32));
    patcher.push(0xff);
    let (vcpus, memory, lifecycle) = two_vcpus(
        &[
            (0x1000, &caller()),
            (0x4000, &function()),
            (0x2000, &patcher),
        ],
        engine,
        [0x1000, 0x2000],
    );
    cross_modify(vcpus, &memory, &lifecycle, false);
}

#[test]
fn a_store_by_another_vcpu_invalidates_translated_code() {
    store_by_another_vcpu(|| InterpEngine::new(size_of::<ToyState>()));
    store_by_another_vcpu(|| JitEngine::new(1 << 20, size_of::<ToyState>()).unwrap());
}

fn writable_before_translation<E: Engine + Send>(engine: impl Fn() -> E) {
    // A stores to data on page P (so its TLB maps P writable before anyone
    // has translated code there), lets B start, keeps storing until B's
    // flag is up, then patches the constant, all without leaving its run.
    const A_READY: u64 = 0x5018;
    let mut patcher = vec![0x06, 0x01, 0x03]; // 0x2000: acc = 1
    patcher.extend(le32(0x4100)); // 0x2002: [0x4100] = acc
    patcher.push(0x03);
    patcher.extend(le32(A_READY as u32)); // 0x2007: A_READY = 1
    patcher.push(0x03);
    patcher.extend(le32(0x4100)); // 0x200c: [0x4100] = acc
    patcher.push(0x0a);
    patcher.extend(le32(RUNNING as u32)); // 0x2011: acc = flag
    patcher.extend([0x0b, 0x01, (-13i8) as u8]); // 0x2016: if acc != 1 goto 0x200c
    patcher.extend([0x06, NEW, 0x03]); // 0x2019
    patcher.extend(le32(CONSTANT as u32)); // 0x201b: [CONSTANT] = NEW
    patcher.push(0xff); // 0x2020
    // B waits for A_READY before it calls the function the first time.
    let mut wait = vec![0x0a];
    wait.extend(le32(A_READY as u32)); // 0x1020: acc = A_READY
    wait.extend([0x0b, 0x01, (-8i8) as u8, 0x08]); // 0x1025: if acc != 1 goto 0x1020
    wait.extend(le32(0x1000)); // 0x1028: caller
    let (vcpus, memory, lifecycle) = two_vcpus(
        &[
            (0x1000, &caller()),
            (0x1020, &wait),
            (0x4000, &function()),
            (0x2000, &patcher),
        ],
        engine,
        [0x1020, 0x2000],
    );
    cross_modify(vcpus, &memory, &lifecycle, true);
}

#[test]
fn a_tlb_entry_writable_before_translation_is_shot_down() {
    writable_before_translation(|| InterpEngine::new(size_of::<ToyState>()));
    writable_before_translation(|| JitEngine::new(1 << 20, size_of::<ToyState>()).unwrap());
}
