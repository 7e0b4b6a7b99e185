//! The JIT's runtime behaviour: chaining, exit requests, precise faults,
//! the TLB fast path, the code cache.

mod common;

use accel_tcg::ExitReason;
use accel_tcg::backend::x86_64::{CompileError, Jit, RunError};
use accel_tcg::interp::Interpreter;
use accel_tcg::ir::{AtomicOp, Block, HelperFlags, HelperFn, MemOp, MemSize, Ty};
use accel_tcg::softmmu::{MemFault, MemoryHandler, NB_MMU_MODES, PAGE_SIZE, PagePerms, Tlb};
use common::{FAULT_CODE, RAM_BASE, TestEnv, TestMem, reg};

fn jit() -> Jit {
    Jit::new(1 << 20, common::env_size()).expect("jit")
}

/// `regs[r] += k`, then `goto_tb slot -> next`.
fn add_block(pc: u64, r: usize, k: u64, next: u64) -> Block {
    let mut b = Block::new(pc);
    b.insn_start(pc);
    let t = b.temp64();
    let c = b.const_temp(Ty::I64, k);
    b.ld_env(t, reg(r), MemOp::Q);
    b.add(t, t, c);
    b.st_env(t, reg(r), MemOp::Q);
    b.goto_tb(0, next);
    b
}

#[test]
fn runs_a_block_and_reports_the_chain_exit() {
    let mut jit = jit();
    let tb = jit
        .compile(&add_block(0x1000, 0, 5, 0x2000))
        .expect("compile");
    let mut env = TestEnv::new(1);
    env.regs[0] = 10;
    let mut mem = TestMem::new(1);
    let exit = jit.run(&tb, &mut *env, &mut mem).expect("run");
    assert_eq!(
        exit.reason,
        ExitReason::Chain {
            slot: 0,
            pc: 0x2000
        }
    );
    assert_eq!(exit.jump, tb.jumps[0]);
    assert_eq!(env.regs[0], 15);
}

#[test]
fn patched_jump_chains_blocks_and_unpatching_restores_the_exit() {
    let mut jit = jit();
    let a = jit
        .compile(&add_block(0x1000, 0, 1, 0x2000))
        .expect("compile a");
    let mut bb = Block::new(0x2000);
    bb.insn_start(0x2000);
    let t = bb.temp64();
    bb.ld_env(t, reg(1), MemOp::Q);
    bb.not(t, t);
    bb.st_env(t, reg(1), MemOp::Q);
    bb.exit_status(9);
    let b = jit.compile(&bb).expect("compile b");
    let mut env = TestEnv::new(2);
    env.regs[0] = 0;
    env.regs[1] = 0;
    let mut mem = TestMem::new(2);
    let exit = jit.run(&a, &mut *env, &mut mem).expect("run");
    let site = exit.jump.expect("jump site");
    jit.patch_jump(site, &b).expect("patch");
    let exit = jit.run(&a, &mut *env, &mut mem).expect("run chained");
    assert_eq!(
        exit.reason,
        ExitReason::Status {
            code: 9,
            pc: 0x2000
        }
    );
    assert_eq!((env.regs[0], env.regs[1]), (2, u64::MAX));
    jit.unpatch_jump(site).expect("unpatch");
    let exit = jit.run(&a, &mut *env, &mut mem).expect("run unchained");
    assert_eq!(
        exit.reason,
        ExitReason::Chain {
            slot: 0,
            pc: 0x2000
        }
    );
    assert_eq!(env.regs[0], 3);
}

extern "C" fn count_and_stop(env: *mut u8) -> u64 {
    // SAFETY: only `TestEnv` states run these blocks.
    let e = unsafe { &mut *(env as *mut TestEnv) };
    e.regs[2] += 1;
    if e.regs[2] == 1000 {
        e.hdr.request_exit();
    }
    0
}

#[test]
fn a_block_chained_to_itself_still_leaves_on_exit_request() {
    let mut jit = jit();
    let mut b = Block::new(0x3000);
    b.insn_start(0x3000);
    let h = b.helper(
        "count",
        HelperFn::A0(count_and_stop),
        HelperFlags::default(),
    );
    b.call_helper(None, h, &[]);
    b.goto_tb(1, 0x3000);
    let tb = jit.compile(&b).expect("compile");
    jit.patch_jump(tb.jumps[1].expect("slot 1"), &tb)
        .expect("patch to itself");
    let mut env = TestEnv::new(3);
    env.regs[2] = 0;
    let mut mem = TestMem::new(3);
    let exit = jit.run(&tb, &mut *env, &mut mem).expect("run");
    assert_eq!(exit.reason, ExitReason::Interrupted { pc: 0x3000 });
    assert_eq!(env.regs[2], 1000);
}

/// A fault reports the faulting instruction's pc; the instruction's later
/// register write does not happen, earlier instructions' writes do.
#[test]
fn faults_are_precise_in_jit_and_interpreter() {
    let mut b = Block::new(0x100);
    b.insn_start(0x100);
    let one = b.const_temp(Ty::I64, 1);
    b.st_env(one, reg(0), MemOp::Q);
    b.insn_start(0x104);
    let addr = b.const_temp(Ty::I64, 0xdead_0000);
    let v = b.temp64();
    b.qemu_ld(v, addr, MemOp::Q);
    b.st_env(v, reg(1), MemOp::Q);
    b.insn_start(0x108);
    b.st_env(one, reg(0), MemOp::UB);
    b.exit_status(0);
    let want = ExitReason::Fault {
        pc: 0x104,
        vaddr: 0xdead_0000,
        fault: MemFault { code: FAULT_CODE },
    };
    let mut opt = b.clone();
    accel_tcg::opt::optimize(&mut opt);
    let mut jit = jit();
    for blk in [&b, &opt] {
        let tb = jit.compile(blk).expect("compile");
        let mut env = TestEnv::new(4);
        env.regs[0] = 7;
        env.regs[1] = 7;
        let mut mem = TestMem::new(4);
        let exit = jit.run(&tb, &mut *env, &mut mem).expect("run");
        assert_eq!(exit.reason, want);
        assert_eq!((env.regs[0], env.regs[1]), (1, 7));
        let mut env = TestEnv::new(4);
        env.regs[0] = 7;
        env.regs[1] = 7;
        let exit = Interpreter::new()
            .run(blk, &mut *env, &mut mem)
            .expect("interp");
        assert_eq!(exit, want);
        assert_eq!((env.regs[0], env.regs[1]), (1, 7));
    }
}

/// Counts slow-path calls.
struct Counting {
    inner: TestMem,
    calls: usize,
}

impl MemoryHandler for Counting {
    fn load(&mut self, tlb: &mut Tlb, vaddr: u64, size: MemSize) -> Result<u64, MemFault> {
        self.calls += 1;
        self.inner.load(tlb, vaddr, size)
    }
    fn store(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
        value: u64,
    ) -> Result<(), MemFault> {
        self.calls += 1;
        self.inner.store(tlb, vaddr, size, value)
    }
}

/// Ten loads and ten stores to one page.
fn page_block(page: u64) -> Block {
    let mut b = Block::new(0);
    let acc = b.const_temp(Ty::I64, 0);
    for i in 0..10u64 {
        let a = b.const_temp(Ty::I64, RAM_BASE + page * PAGE_SIZE + i * 8);
        let v = b.temp64();
        b.qemu_ld(v, a, MemOp::Q);
        b.add(acc, acc, v);
        b.qemu_st(acc, a, MemOp::UL.be());
    }
    b.st_env(acc, reg(0), MemOp::Q);
    b.exit_status(0);
    b
}

#[test]
fn tlb_hits_stay_inline_misses_fill_and_uncached_pages_always_miss() {
    let mut jit = jit();
    // page: (slow-path calls in the first run, in the second run)
    for (page, first, second) in [(0u64, 0usize, 0usize), (1, 1, 0), (3, 20, 20)] {
        let tb = jit.compile(&page_block(page)).expect("compile");
        let mut env = TestEnv::new(5);
        let mut mem = Counting {
            inner: TestMem::new(5),
            calls: 0,
        };
        mem.inner.prefill(&mut env.hdr.tlb);
        jit.run(&tb, &mut *env, &mut mem).expect("run");
        assert_eq!(mem.calls, first, "page {page}, first run");
        mem.calls = 0;
        jit.run(&tb, &mut *env, &mut mem).expect("run");
        assert_eq!(mem.calls, second, "page {page}, second run");
        // Same results as the interpreter from the same start.
        let want = common::run_interp(&page_block(page), 5);
        let got = common::run_jit(&mut jit, &page_block(page), 5);
        assert_eq!(want, got);
    }
}

#[test]
fn page_crossing_accesses_take_the_slow_path() {
    let mut b = Block::new(0);
    let a = b.const_temp(Ty::I64, RAM_BASE + PAGE_SIZE - 2);
    let v = b.temp64();
    b.qemu_ld(v, a, MemOp::UL);
    b.st_env(v, reg(0), MemOp::Q);
    b.exit_status(0);
    let mut jit = jit();
    let tb = jit.compile(&b).expect("compile");
    let mut env = TestEnv::new(6);
    let mut mem = Counting {
        inner: TestMem::new(6),
        calls: 0,
    };
    mem.inner.prefill(&mut env.hdr.tlb);
    let ram = mem.inner.ram.clone();
    jit.run(&tb, &mut *env, &mut mem).expect("run");
    assert_eq!(mem.calls, 1);
    let at = (PAGE_SIZE - 2) as usize;
    let want = u32::from_le_bytes([ram[at], ram[at + 1], ram[at + 2], ram[at + 3]]);
    assert_eq!(env.regs[0], want as u64);
}

#[test]
fn helper_exit_leaves_with_the_instruction_pc() {
    let mut b = Block::new(0x500);
    b.insn_start(0x500);
    let h = b.helper(
        "exit",
        HelperFn::A1(common::h_exit),
        HelperFlags {
            may_exit: true,
            ..Default::default()
        },
    );
    let x = b.const_temp(Ty::I64, 8);
    b.insn_start(0x504);
    b.call_helper(None, h, &[x]);
    b.st_env(x, reg(0), MemOp::Q);
    b.exit_status(0);
    let mut jit = jit();
    let tb = jit.compile(&b).expect("compile");
    let mut env = TestEnv::new(7);
    env.regs[0] = 0;
    let exit = jit.run(&tb, &mut *env, &mut TestMem::new(7)).expect("run");
    assert_eq!(exit.reason, ExitReason::HelperExit { pc: 0x504, code: 5 });
    assert_eq!(env.regs[0], 0);
}

#[test]
fn division_edge_cases_match_the_interpreter() {
    let cases: [(u64, u64); 6] = [
        (7, 0),
        (i64::MIN as u64, u64::MAX),
        (0x8000_0000, 0xffff_ffff),
        (u64::MAX, 3),
        (100, 7),
        (0, 0),
    ];
    let mut jit = jit();
    for ty in [Ty::I32, Ty::I64] {
        for (x, y) in cases {
            let mut b = Block::new(0);
            let a = b.const_temp(ty, ty.mask(x));
            let c = b.temp(ty);
            b.ld_env(c, reg(0), if ty == Ty::I64 { MemOp::Q } else { MemOp::UL });
            let ops: [fn(&mut Block, _, _, _); 6] = [
                Block::divs,
                Block::divu,
                Block::rems,
                Block::remu,
                Block::mulsh,
                Block::muluh,
            ];
            for (i, f) in ops.iter().enumerate() {
                let d = b.temp(ty);
                f(&mut b, d, a, c);
                b.st_env(
                    d,
                    reg(1 + i),
                    if ty == Ty::I64 { MemOp::Q } else { MemOp::UL },
                );
            }
            b.exit_status(0);
            let run = |jit: &mut Jit, use_jit: bool| {
                let mut env = TestEnv::new(8);
                env.regs[0] = y;
                let mut mem = TestMem::new(8);
                if use_jit {
                    let tb = jit.compile(&b).expect("compile");
                    jit.run(&tb, &mut *env, &mut mem).expect("run");
                } else {
                    Interpreter::new()
                        .run(&b, &mut *env, &mut mem)
                        .expect("interp");
                }
                env.regs
            };
            assert_eq!(
                run(&mut jit, true),
                run(&mut jit, false),
                "{ty:?} {x:#x} {y:#x}"
            );
        }
    }
}

#[test]
fn full_cache_flushes_and_stale_blocks_are_refused() {
    let mut jit = Jit::new(16 << 10, common::env_size()).expect("jit");
    let blk = common::random_block(42, 60);
    let first = jit.compile(&blk).expect("compile");
    let mut n = 1;
    loop {
        match jit.compile(&blk) {
            Ok(_) => n += 1,
            Err(CompileError::CacheFull) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(n < 10_000);
    }
    assert!(n > 1);
    jit.flush();
    let mut env = TestEnv::new(9);
    let mut mem = TestMem::new(9);
    assert_eq!(jit.run(&first, &mut *env, &mut mem), Err(RunError::Stale));
    let again = jit.compile(&blk).expect("compile after flush");
    assert_eq!(
        again.entry, first.entry,
        "the cache starts over after the trampoline"
    );
    jit.run(&again, &mut *env, &mut mem)
        .expect("run after flush");
}

#[test]
fn no_mapping_is_writable_and_executable_after_compiling_and_patching() {
    let mut jit = jit();
    let a = jit
        .compile(&add_block(0x1000, 0, 1, 0x1000))
        .expect("compile");
    jit.patch_jump(a.jumps[0].expect("site"), &a)
        .expect("patch");
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    for line in maps.lines() {
        let perms = line.split_whitespace().nth(1).unwrap_or("");
        assert!(
            !(perms.contains('w') && perms.contains('x')),
            "W+X mapping: {line}"
        );
    }
}

#[test]
fn env_accesses_outside_the_state_do_not_compile() {
    let mut b = Block::new(0);
    let t = b.temp64();
    b.ld_env(t, common::env_size() as u32 - 4, MemOp::Q);
    b.exit_status(0);
    assert!(matches!(
        jit().compile(&b),
        Err(CompileError::EnvOutOfRange(0))
    ));
    let mut b = Block::new(0);
    let t = b.temp64();
    b.ld_env(t, 8, MemOp::Q);
    b.exit_status(0);
    assert!(matches!(
        jit().compile(&b),
        Err(CompileError::EnvOutOfRange(0))
    ));
}

#[test]
fn many_live_temps_spill_correctly() {
    // 40 temps live at once: more than there are registers.
    let mut b = Block::new(0);
    let ts: Vec<_> = (0..40).map(|_| b.temp64()).collect();
    for (i, &t) in ts.iter().enumerate() {
        b.ld_env(t, reg(i % 8), MemOp::Q);
        let k = b.const_temp(Ty::I64, i as u64 * 0x1_0001);
        b.add(t, t, k);
    }
    let sum = b.const_temp(Ty::I64, 0);
    for &t in ts.iter().rev() {
        b.xor(sum, sum, t);
        b.rotl(sum, sum, t);
    }
    b.st_env(sum, reg(9), MemOp::Q);
    b.exit_status(0);
    let mut jit = jit();
    assert_eq!(
        common::run_interp(&b, 10),
        common::run_jit(&mut jit, &b, 10)
    );
}

#[test]
fn indirect_jumps_use_only_this_jits_current_jump_cache() {
    let mut a = jit();
    let mut b = jit();
    let mut target = Block::new(0x5000);
    target.exit_status(42);
    let x = a.compile(&target).expect("compile target");
    let jumper = |pc: u64| {
        let mut blk = Block::new(pc);
        let t = blk.const_temp(Ty::I64, 0x5000);
        blk.exit_indirect(t);
        blk
    };
    let za = a.compile(&jumper(0x100)).expect("compile a");
    let yb = b.compile(&jumper(0x200)).expect("compile b");
    let mut env = TestEnv::new(11);
    let mut mem = TestMem::new(11);
    env.hdr.tb_flags = 3;
    a.jump_cache_insert(&mut env.hdr, 0x5000, 3, &x)
        .expect("insert");
    // Same JIT, same flags: straight into the target.
    assert_eq!(
        a.run(&za, &mut *env, &mut mem).expect("run").reason,
        ExitReason::Status {
            code: 42,
            pc: 0x5000
        }
    );
    // Other flags: back to the caller.
    env.hdr.tb_flags = 4;
    assert_eq!(
        a.run(&za, &mut *env, &mut mem).expect("run").reason,
        ExitReason::Indirect { pc: 0x5000 }
    );
    env.hdr.tb_flags = 3;
    // Another JIT never uses entries pointing into the first one's code.
    assert_eq!(
        b.run(&yb, &mut *env, &mut mem).expect("run").reason,
        ExitReason::Indirect { pc: 0x5000 }
    );
    // And after that the entry is gone for the first JIT too (the cache was
    // emptied when the other JIT took it over).
    assert_eq!(
        a.run(&za, &mut *env, &mut mem).expect("run").reason,
        ExitReason::Indirect { pc: 0x5000 }
    );
    // Invalidation empties it as well.
    a.jump_cache_insert(&mut env.hdr, 0x5000, 3, &x)
        .expect("insert");
    a.invalidate_jump_caches();
    assert_eq!(
        a.run(&za, &mut *env, &mut mem).expect("run").reason,
        ExitReason::Indirect { pc: 0x5000 }
    );
}

#[test]
fn another_thread_can_stop_an_endless_chained_loop() {
    let mut jit = jit();
    let tb = jit
        .compile(&add_block(0x7000, 3, 1, 0x7000))
        .expect("compile");
    jit.patch_jump(tb.jumps[0].expect("site"), &tb)
        .expect("patch to itself");
    let mut env = TestEnv::new(12);
    env.regs[3] = 0;
    let stop = env.hdr.exit_request();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        stop.request();
    });
    let exit = jit.run(&tb, &mut *env, &mut TestMem::new(12)).expect("run");
    t.join().expect("thread");
    assert_eq!(exit.reason, ExitReason::Interrupted { pc: 0x7000 });
    assert!(env.regs[3] > 1000, "the loop ran: {}", env.regs[3]);
    assert!(env.hdr.exit_requested());
    env.hdr.clear_exit_request();
    assert!(!env.hdr.exit_requested());
}

#[test]
fn aligned_accesses_fault_when_misaligned_and_hit_inline_otherwise() {
    let mut jit = jit();
    for (off, want_fault) in [(4u64, false), (2, true), (PAGE_SIZE - 2, true)] {
        let mut b = Block::new(0x900);
        b.insn_start(0x900);
        let a = b.const_temp(Ty::I64, RAM_BASE + off);
        let v = b.temp64();
        b.qemu_ld(v, a, MemOp::UL.aligned());
        b.st_env(v, reg(0), MemOp::Q);
        b.exit_status(0);
        let mut env = TestEnv::new(13);
        let mut mem = Counting {
            inner: TestMem::new(13),
            calls: 0,
        };
        mem.inner.prefill(&mut env.hdr.tlb);
        let tb = jit.compile(&b).expect("compile");
        let exit = jit.run(&tb, &mut *env, &mut mem).expect("run").reason;
        if want_fault {
            let vaddr = RAM_BASE + off;
            assert_eq!(
                exit,
                ExitReason::Fault {
                    pc: 0x900,
                    vaddr,
                    fault: MemFault::UNALIGNED
                }
            );
        } else {
            assert_eq!(exit, ExitReason::Status { code: 0, pc: 0x900 });
        }
        assert_eq!(
            mem.calls, 0,
            "misaligned accesses fault before reaching the handler"
        );
        assert_eq!(
            common::run_interp(&b, 13),
            common::run_jit(&mut jit, &b, 13)
        );
    }
}

#[test]
fn malformed_blocks_are_refused_not_miscompiled() {
    let mut j = jit();
    // Backward branch.
    let mut b = Block::new(0);
    let l = b.label();
    b.set_label(l);
    b.br(l);
    b.exit_status(0);
    assert!(matches!(j.compile(&b), Err(CompileError::Malformed(_))));
    // Label never set.
    let mut b = Block::new(0);
    let l = b.label();
    b.br(l);
    b.exit_status(0);
    assert!(matches!(j.compile(&b), Err(CompileError::Malformed(_))));
    // Temp that does not exist.
    let mut b = Block::new(0);
    b.push(accel_tcg::ir::Op::Movi {
        d: accel_tcg::ir::Temp(5),
        c: 1,
    });
    b.exit_status(0);
    assert!(matches!(j.compile(&b), Err(CompileError::Malformed(_))));
    // No exit at the end.
    let mut b = Block::new(0);
    let t = b.temp64();
    b.movi(t, 1);
    assert!(matches!(j.compile(&b), Err(CompileError::Malformed(_))));
    // The interpreter refuses them too.
    let mut env = TestEnv::new(14);
    assert!(
        Interpreter::new()
            .run(&b, &mut *env, &mut TestMem::new(14))
            .is_err()
    );
}

/// Loads, a store, an atomic and a compare-and-swap at one address through
/// soft-MMU indexes 0 and 1, whose TLBs map that address to different RAM
/// pages, then a load through index 2, which maps nothing (the address is
/// outside `TestMem`, so its slow path faults).
fn two_regimes_block(va: u64) -> Block {
    let mut b = Block::new(0x700);
    b.insn_start(0x700);
    let a = b.const_temp(Ty::I64, va + 8);
    let (v0, v1, old, seen) = (b.temp64(), b.temp64(), b.temp64(), b.temp64());
    b.qemu_ld(v0, a, MemOp::Q);
    b.qemu_ld(v1, a, MemOp::Q.mmu(1));
    let k = b.const_temp(Ty::I64, 0x1234_5678);
    b.qemu_st(k, a, MemOp::UL.mmu(1));
    b.atomic_rmw(old, a, k, MemOp::UL.mmu(0), AtomicOp::Add);
    b.atomic_cmpxchg(seen, a, k, v0, MemOp::UL.mmu(1));
    b.st_env(v0, reg(0), MemOp::Q);
    b.st_env(v1, reg(1), MemOp::Q);
    b.st_env(old, reg(2), MemOp::Q);
    b.st_env(seen, reg(3), MemOp::Q);
    b.insn_start(0x704);
    let t = b.temp64();
    b.qemu_ld(t, a, MemOp::UB.mmu(2));
    b.st_env(t, reg(4), MemOp::Q);
    b.exit_status(0);
    b
}

#[test]
fn mmu_indexes_map_one_address_to_different_pages() {
    const VA: u64 = 0x50_0000;
    let blk = two_regimes_block(VA);
    let mut jit = jit();
    let tb = jit.compile(&blk).expect("compile");
    let mut results = Vec::new();
    for on_jit in [false, true] {
        let mut env = TestEnv::new(9);
        let mut mem = Counting {
            inner: TestMem::new(9),
            calls: 0,
        };
        let ram = mem.inner.ram.as_mut_ptr();
        // SAFETY: RAM pages 1 and 2 lie inside `mem.inner.ram`, which is not
        // resized and outlives the runs.
        unsafe {
            env.hdr.tlb[0].fill(VA, ram.add(PAGE_SIZE as usize), PagePerms::RWX);
            env.hdr.tlb[1].fill(VA, ram.add(2 * PAGE_SIZE as usize), PagePerms::RWX);
        }
        let q = |ram: &[u8], page: usize| {
            let at = page * PAGE_SIZE as usize + 8;
            u64::from_le_bytes(ram[at..at + 8].try_into().expect("8 bytes"))
        };
        let (page1, page2) = (q(&mem.inner.ram, 1), q(&mem.inner.ram, 2));
        assert_ne!(page1, page2, "the seed gives the pages different bytes");
        let exit = if on_jit {
            jit.run(&tb, &mut *env, &mut mem).expect("run").reason
        } else {
            Interpreter::new()
                .run(&blk, &mut *env, &mut mem)
                .expect("interp")
        };
        assert_eq!(
            exit,
            ExitReason::Fault {
                pc: 0x704,
                vaddr: VA + 8,
                fault: MemFault { code: FAULT_CODE },
            },
            "index 2 has no mapping (jit: {on_jit})"
        );
        assert_eq!(
            mem.calls, 1,
            "only index 2 left the fast path (jit: {on_jit})"
        );
        assert_eq!(env.regs[0], page1, "index 0 reads page 1");
        assert_eq!(env.regs[1], page2, "index 1 reads page 2");
        assert_eq!(env.regs[2], page1 & 0xffff_ffff, "atomic on page 1");
        assert_eq!(env.regs[3], 0x1234_5678, "index 1's store reached page 2");
        let ram = &mem.inner.ram;
        assert_eq!(q(ram, 1) as u32, (page1 as u32).wrapping_add(0x1234_5678));
        assert_eq!(q(ram, 2) as u32, page1 as u32, "cmpxchg stored on page 2");
        results.push((env.regs.to_vec(), mem.inner.ram.clone()));
    }
    assert_eq!(results[0], results[1], "interpreter and JIT agree");
}

#[test]
fn out_of_range_mmu_index_is_refused() {
    let mut b = Block::new(0);
    let a = b.const_temp(Ty::I64, RAM_BASE);
    b.qemu_ld(a, a, MemOp::Q.mmu(NB_MMU_MODES as u8));
    b.exit_status(0);
    assert!(matches!(jit().compile(&b), Err(CompileError::Malformed(_))));
    let mut env = TestEnv::new(1);
    let mut mem = TestMem::new(1);
    assert!(Interpreter::new().run(&b, &mut *env, &mut mem).is_err());
}
