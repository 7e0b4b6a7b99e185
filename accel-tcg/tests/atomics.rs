//! Guest atomics: `atomic_rmw` and `atomic_cmpxchg` agree between the
//! interpreter and the JIT on every size, kind and path (inline TLB hit,
//! slow path through the TLB or the handler, MMIO, faults), and stay
//! indivisible when several host threads run them on the same guest RAM.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use accel_tcg::ExitReason;
use accel_tcg::backend::x86_64::Jit;
use accel_tcg::interp::Interpreter;
use accel_tcg::ir::{AtomicOp, Block, MemOp, MemSize, Ty};
use accel_tcg::softmmu::{self, MemFault, MemoryHandler, PAGE_SIZE, PagePerms, Rmw, RmwKind, Tlb};
use common::{MMIO_BASE, RAM_BASE, TestEnv, reg};

fn jit() -> Jit {
    Jit::new(1 << 20, common::env_size()).expect("jit")
}

/// One atomic at `addr` with operands from registers 0 and 1 (or, for a
/// compare-and-swap that should succeed, the value memory holds), the old
/// value to register 2, then a plain load of the result to register 3.
fn atomic_block(ty: Ty, addr: u64, mop: MemOp, op: Option<AtomicOp>, hit: bool) -> Block {
    let mut b = Block::new(0x1000);
    b.insn_start(0x1000);
    let a = b.const_temp(Ty::I64, addr);
    let x = b.temp(ty);
    let y = b.temp(ty);
    let d = b.temp(ty);
    let full = if ty == Ty::I64 { MemOp::Q } else { MemOp::UL };
    b.ld_env(x, reg(0), full);
    b.ld_env(y, reg(1), full);
    b.st_env(x, reg(4), full);
    b.insn_start(0x1004);
    match op {
        Some(op) => b.atomic_rmw(d, a, x, mop, op),
        None => {
            let cmp = if hit {
                let c = b.temp(ty);
                b.qemu_ld(c, a, mop);
                c
            } else {
                y
            };
            b.atomic_cmpxchg(d, a, cmp, x, mop);
        }
    }
    b.st_env(d, reg(2), full);
    b.insn_start(0x1008);
    b.qemu_ld(d, a, mop);
    b.st_env(d, reg(3), full);
    b.goto_tb(0, 0x2000);
    b
}

#[test]
fn every_atomic_matches_the_interpreter() {
    let mut jit = jit();
    let addrs = [
        RAM_BASE + 0x10,                 // page 0: inline TLB hit
        RAM_BASE + 0x13,                 // unaligned hit
        RAM_BASE + PAGE_SIZE + 0x20,     // page 1: miss, then filled
        RAM_BASE + 3 * PAGE_SIZE + 0x40, // page 3: always the handler
        RAM_BASE + PAGE_SIZE - 2,        // crosses into page 1
        MMIO_BASE + 0x8,
        0x5000, // unmapped: faults
    ];
    let mut seed = 1u64;
    for ty in [Ty::I32, Ty::I64] {
        for size in [MemSize::B1, MemSize::B2, MemSize::B4, MemSize::B8] {
            if ty == Ty::I32 && size == MemSize::B8 {
                continue;
            }
            for (signed, be, aligned) in [
                (false, false, false),
                (true, false, false),
                (false, true, false),
                (true, true, true),
                (false, false, true),
            ] {
                let mut mop = MemOp::new(size);
                mop.signed = signed;
                mop.big_endian = be;
                mop.aligned = aligned;
                let ops = AtomicOp::ALL.map(Some);
                for op in ops.iter().copied().chain([None]) {
                    for &addr in &addrs {
                        for hit in [false, true] {
                            if hit && op.is_some() {
                                continue;
                            }
                            seed += 1;
                            let blk = atomic_block(ty, addr, mop, op, hit);
                            common::check_block(&mut jit, &blk, seed);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_optimizer_keeps_atomics_whose_result_is_unused_and_their_order() {
    let mut b = Block::new(0x1000);
    b.insn_start(0x1000);
    let a = b.const_temp(Ty::I64, RAM_BASE);
    let one = b.const_temp(Ty::I64, 1);
    let d = b.temp64();
    let e = b.temp64();
    b.qemu_st(one, a, MemOp::Q);
    b.atomic_rmw(d, a, one, MemOp::Q, AtomicOp::Add);
    b.atomic_cmpxchg(e, a, one, one, MemOp::Q);
    b.qemu_ld(d, a, MemOp::Q);
    b.st_env(d, reg(0), MemOp::Q);
    b.exit_status(0);
    accel_tcg::opt::optimize(&mut b);
    let mem: Vec<_> = b
        .insns
        .iter()
        .map(|i| i.op.opcode())
        .filter(|o| o.flags().has(accel_tcg::ir::OpFlags::MEM))
        .collect();
    use accel_tcg::ir::Opcode::*;
    assert_eq!(mem, [QemuSt, AtomicRmw, AtomicCmpxchg, QemuLd], "{b}");
    assert!(b.to_string().contains("atomic_rmw"), "{b}");
}

#[test]
fn compare_and_swap_stores_only_on_a_match() {
    let mut jit = jit();
    for hit in [false, true] {
        let blk = atomic_block(Ty::I64, RAM_BASE + 0x10, MemOp::Q, None, hit);
        let out = common::run_jit(&mut jit, &blk, 77);
        let old = out.regs[2];
        let now = out.regs[3];
        if hit {
            assert_eq!(now, out.regs[4], "swapped in the new value");
        } else {
            assert_eq!(now, old, "memory unchanged");
        }
    }
}

#[test]
fn atomics_report_precise_faults() {
    let mut jit = jit();
    let blk = atomic_block(Ty::I64, 0x5000, MemOp::UL, Some(AtomicOp::Add), false);
    let out = common::run_jit(&mut jit, &blk, 5);
    assert!(matches!(
        out.exit,
        ExitReason::Fault {
            pc: 0x1004,
            vaddr: 0x5000,
            ..
        }
    ));
    // The store before the atomic happened, the one after it did not.
    assert_eq!(out.regs[4], out.regs[0]);
    assert_eq!(out.regs[2], TestEnv::new(5).regs[2]);
}

/// One guest RAM page shared by all threads; its handler does atomics on
/// the host page (the slow path when the TLB does not map it).
struct SharedPage(*mut u8);

// SAFETY: the page is only accessed atomically, through `atomic_host` or
// lock-prefixed generated code.
unsafe impl Send for SharedPage {}

impl MemoryHandler for SharedPage {
    fn load(&mut self, _: &mut Tlb, _: u64, _: MemSize) -> Result<u64, MemFault> {
        Err(MemFault { code: 14 })
    }
    fn store(&mut self, _: &mut Tlb, _: u64, _: MemSize, _: u64) -> Result<(), MemFault> {
        Err(MemFault { code: 14 })
    }
    fn atomic(&mut self, _: &mut Tlb, vaddr: u64, rmw: &Rmw) -> Result<u64, MemFault> {
        let off = vaddr.wrapping_sub(RAM_BASE);
        if off + u64::from(rmw.size.bytes()) > PAGE_SIZE {
            return Err(MemFault { code: 14 });
        }
        // SAFETY: the range lies inside the shared page, which outlives the
        // threads, and is only accessed atomically.
        Ok(unsafe { softmmu::atomic_host(self.0.add(off as usize), rmw) })
    }
}

const ADDS_PER_BLOCK: u64 = 10;
const ADDS_PER_THREAD: u64 = 100_000;

/// `ADDS_PER_BLOCK` atomic increments of the word at `addr`.
fn increment_block(addr: u64, size: MemSize) -> Block {
    let mut b = Block::new(0x1000);
    b.insn_start(0x1000);
    let a = b.const_temp(Ty::I64, addr);
    let one = b.const_temp(Ty::I64, 1);
    let old = b.temp64();
    for _ in 0..ADDS_PER_BLOCK {
        b.atomic_rmw(old, a, one, MemOp::new(size), AtomicOp::Add);
    }
    b.exit_status(0);
    b
}

#[derive(Clone, Copy, Debug)]
enum Engine {
    /// The JIT with the page in the TLB: `lock xadd` inline.
    JitInline,
    /// The JIT without it: the slow path and the handler.
    JitSlow,
    /// The interpreter with the page in the TLB.
    Interp,
}

fn hammer(engine: Engine, page: usize, addr: u64, size: MemSize) {
    let blk = increment_block(addr, size);
    let mut env = TestEnv::new(1);
    let mut mem = SharedPage(page as *mut u8);
    if !matches!(engine, Engine::JitSlow) {
        // SAFETY: the page outlives this thread's runs and is only accessed
        // atomically.
        unsafe { env.hdr.tlb[0].fill(RAM_BASE, page as *mut u8, PagePerms::RWX) };
    }
    let runs = ADDS_PER_THREAD / ADDS_PER_BLOCK;
    match engine {
        Engine::Interp => {
            let mut interp = Interpreter::new();
            for _ in 0..runs {
                let exit = interp.run(&blk, &mut *env, &mut mem).expect("run");
                assert_eq!(
                    exit,
                    ExitReason::Status {
                        code: 0,
                        pc: 0x1000
                    }
                );
            }
        }
        _ => {
            let mut jit = jit();
            let tb = jit.compile(&blk).expect("compile");
            for _ in 0..runs {
                let exit = jit.run(&tb, &mut *env, &mut mem).expect("run").reason;
                assert_eq!(
                    exit,
                    ExitReason::Status {
                        code: 0,
                        pc: 0x1000
                    }
                );
            }
        }
    }
}

fn race(engines: [Engine; 2], offset: u64, size: MemSize) {
    let page: Arc<Vec<AtomicU64>> =
        Arc::new((0..PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect());
    let threads: Vec<_> = engines
        .into_iter()
        .map(|e| {
            let page = Arc::clone(&page);
            std::thread::spawn(move || {
                hammer(e, page.as_ptr() as usize, RAM_BASE + offset, size);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let base = page.as_ptr() as *const u8;
    let mut total = 0u64;
    for i in 0..size.bytes() as usize {
        // SAFETY: the threads are done; the byte is inside the page.
        total |= u64::from(unsafe { base.add(offset as usize + i).read() }) << (8 * i);
    }
    assert_eq!(
        total,
        (2 * ADDS_PER_THREAD) & size.value_mask(),
        "{engines:?} at offset {offset} lost increments"
    );
}

#[test]
fn two_jit_threads_add_atomically_on_shared_ram() {
    race([Engine::JitInline, Engine::JitInline], 8, MemSize::B8);
}

#[test]
fn inline_and_slow_path_atomics_exclude_each_other() {
    race([Engine::JitInline, Engine::JitSlow], 16, MemSize::B4);
}

#[test]
fn interpreter_and_jit_atomics_exclude_each_other_even_unaligned() {
    race([Engine::Interp, Engine::JitInline], 0x23, MemSize::B4);
}

#[test]
fn rmw_apply_handles_byte_order_and_failed_swaps() {
    let add = Rmw {
        kind: RmwKind::Op(AtomicOp::Add, 1),
        size: MemSize::B2,
        big_endian: true,
    };
    // 0x00ff big-endian is stored as 0xff00 in little-endian value order.
    assert_eq!(add.apply(0xff00), Some(0x0001));
    let cas = Rmw {
        kind: RmwKind::Cmpxchg {
            expected: 0x1_0005,
            new: 9,
        },
        size: MemSize::B2,
        big_endian: false,
    };
    assert_eq!(cas.apply(5), Some(9), "compared at the access size");
    assert_eq!(cas.apply(6), None);
}
