//! Fixtures shared by the integration tests: a CPU state, a guest memory
//! with RAM, MMIO and unmapped pages, random block generation, and running
//! one block through the interpreter and the JIT.

#![allow(dead_code)]

use accel_tcg::ExitReason;
use accel_tcg::backend::x86_64::{CompileError, Jit};
use accel_tcg::interp::Interpreter;
use accel_tcg::ir::{
    AtomicOp, Block, Cond, HelperFlags, HelperFn, HelperId, MemOp, MemSize, Temp, Ty,
};
use accel_tcg::softmmu::{
    CpuState, HEADER_SIZE, MemFault, MemoryHandler, NB_MMU_MODES, PAGE_MASK, PAGE_SIZE, PagePerms,
    TcgContextHeader, Tlb, TlbSet,
};

pub const NREGS: usize = 40;

/// A CPU state: the header and a register file.
#[repr(C)]
pub struct TestEnv {
    pub hdr: TcgContextHeader,
    pub regs: [u64; NREGS],
}

// SAFETY: repr(C), header first, the rest plain integers.
unsafe impl CpuState for TestEnv {}

impl TestEnv {
    pub fn new(seed: u64) -> Box<TestEnv> {
        let mut r = Rng(seed | 1);
        let mut regs = [0u64; NREGS];
        for x in regs.iter_mut() {
            *x = r.interesting();
        }
        Box::new(TestEnv {
            hdr: TcgContextHeader::new(),
            regs,
        })
    }
}

pub const fn reg(i: usize) -> u32 {
    (HEADER_SIZE + 8 * i) as u32
}

pub const RAM_BASE: u64 = 0x10000;
pub const RAM_PAGES: u64 = 4;
pub const MMIO_BASE: u64 = 0x20000;
pub const FAULT_CODE: u32 = 14;

/// Guest memory: RAM pages at `RAM_BASE` (page 0 prefilled in every TLB,
/// pages 1 and 2 filled on first miss, page 3 never: always the slow path),
/// one MMIO page (never in the TLB), everything else faults.
pub struct TestMem {
    pub ram: Vec<u8>,
    pub mmio: Vec<u8>,
    pub mmio_accesses: usize,
}

impl TestMem {
    pub fn new(seed: u64) -> TestMem {
        let mut r = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        let ram = (0..RAM_PAGES * PAGE_SIZE).map(|_| r.next() as u8).collect();
        let mmio = (0..PAGE_SIZE).map(|_| r.next() as u8).collect();
        TestMem {
            ram,
            mmio,
            mmio_accesses: 0,
        }
    }

    /// Maps RAM page 0 in the TLB of every soft-MMU index.
    pub fn prefill(&mut self, tlbs: &mut TlbSet) {
        for i in 0..NB_MMU_MODES {
            // SAFETY: the page is inside `self.ram`, which is never resized
            // and outlives every run in the tests.
            unsafe { tlbs[i].fill(RAM_BASE, self.ram.as_mut_ptr(), PagePerms::RWX) };
        }
    }

    fn byte(&mut self, a: u64) -> Option<&mut u8> {
        if (RAM_BASE..RAM_BASE + RAM_PAGES * PAGE_SIZE).contains(&a) {
            self.ram.get_mut((a - RAM_BASE) as usize)
        } else if (MMIO_BASE..MMIO_BASE + PAGE_SIZE).contains(&a) {
            self.mmio.get_mut((a - MMIO_BASE) as usize)
        } else {
            None
        }
    }

    fn maybe_fill(&mut self, tlb: &mut Tlb, vaddr: u64) {
        let page = (vaddr & PAGE_MASK).wrapping_sub(RAM_BASE) / PAGE_SIZE;
        if vaddr >= RAM_BASE && (1..=2).contains(&page) {
            let host = self
                .ram
                .as_mut_ptr()
                .wrapping_add((page * PAGE_SIZE) as usize);
            // SAFETY: as in `prefill`.
            unsafe { tlb.fill(vaddr, host, PagePerms::RWX) };
        }
    }
}

impl MemoryHandler for TestMem {
    fn load(&mut self, tlb: &mut Tlb, vaddr: u64, size: MemSize) -> Result<u64, MemFault> {
        let n = size.bytes() as u64;
        let mut v = 0u64;
        for i in 0..n {
            let b = *self
                .byte(vaddr.wrapping_add(i))
                .ok_or(MemFault { code: FAULT_CODE })?;
            v |= (b as u64) << (8 * i);
        }
        if (MMIO_BASE..MMIO_BASE + PAGE_SIZE).contains(&vaddr) {
            self.mmio_accesses += 1;
        }
        self.maybe_fill(tlb, vaddr);
        Ok(v)
    }

    fn store(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
        value: u64,
    ) -> Result<(), MemFault> {
        let n = size.bytes() as u64;
        for i in 0..n {
            self.byte(vaddr.wrapping_add(i))
                .ok_or(MemFault { code: FAULT_CODE })?;
        }
        for i in 0..n {
            if let Some(b) = self.byte(vaddr.wrapping_add(i)) {
                *b = (value >> (8 * i)) as u8;
            }
        }
        self.maybe_fill(tlb, vaddr);
        Ok(())
    }
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
    pub fn interesting(&mut self) -> u64 {
        const K: [u64; 24] = [
            0,
            1,
            2,
            7,
            8,
            31,
            32,
            33,
            63,
            64,
            65,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0x1_0000_0000,
            i64::MAX as u64,
            i64::MIN as u64,
            u64::MAX,
        ];
        match self.below(4) {
            0 => self.next(),
            1 => self.next() & 0xffff,
            _ => self.pick(&K),
        }
    }
}

pub extern "C" fn h_mix(_env: *mut u8, a: u64, b: u64) -> u64 {
    a.wrapping_mul(3) ^ (b >> 1)
}

pub extern "C" fn h_sum5(_env: *mut u8, a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    a.wrapping_add(b.rotate_left(1))
        .wrapping_add(c.rotate_left(2))
        .wrapping_add(d.rotate_left(3))
        .wrapping_add(e)
}

/// Reads reg 0, adds `a`, writes reg 1: a helper that touches the CPU state.
pub extern "C" fn h_env(env: *mut u8, a: u64) -> u64 {
    // SAFETY: tests only pass `TestEnv` states.
    let e = unsafe { &mut *(env as *mut TestEnv) };
    e.regs[1] = e.regs[0].wrapping_add(a);
    e.regs[1]
}

/// Asks to leave the block when `a % 4 == 0`.
pub extern "C" fn h_exit(env: *mut u8, a: u64) -> u64 {
    // SAFETY: as in `h_env`.
    let e = unsafe { &mut *(env as *mut TestEnv) };
    if a.is_multiple_of(4) {
        e.hdr.helper_exit = 5;
    }
    a ^ 0x55
}

pub fn env_size() -> usize {
    size_of::<TestEnv>()
}

/// Everything a run can change.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit: ExitReason,
    pub regs: Vec<u64>,
    pub ram: Vec<u8>,
    pub mmio: Vec<u8>,
    pub helper_exit: u32,
}

pub fn run_interp(blk: &Block, seed: u64) -> Outcome {
    let mut env = TestEnv::new(seed);
    let mut mem = TestMem::new(seed);
    mem.prefill(&mut env.hdr.tlb);
    let exit = Interpreter::new()
        .run(blk, &mut *env, &mut mem)
        .expect("interpreter");
    Outcome {
        exit,
        regs: env.regs.to_vec(),
        ram: mem.ram,
        mmio: mem.mmio,
        helper_exit: env.hdr.helper_exit,
    }
}

pub fn run_jit(jit: &mut Jit, blk: &Block, seed: u64) -> Outcome {
    let tb = match jit.compile(blk) {
        Ok(tb) => tb,
        Err(CompileError::CacheFull) => {
            jit.flush();
            jit.compile(blk).expect("compile after flush")
        }
        Err(e) => panic!("compile: {e}\n{blk}"),
    };
    let mut env = TestEnv::new(seed);
    let mut mem = TestMem::new(seed);
    mem.prefill(&mut env.hdr.tlb);
    let exit = jit.run(&tb, &mut *env, &mut mem).expect("run").reason;
    Outcome {
        exit,
        regs: env.regs.to_vec(),
        ram: mem.ram,
        mmio: mem.mmio,
        helper_exit: env.hdr.helper_exit,
    }
}

/// Runs `blk` (unoptimized and optimized) on the interpreter and the JIT
/// and panics with a readable report if any result differs.
pub fn check_block(jit: &mut Jit, blk: &Block, seed: u64) {
    accel_tcg::ir::verify(blk, env_size())
        .unwrap_or_else(|e| panic!("generated block invalid: {e}\n{blk}"));
    let reference = run_interp(blk, seed);
    let jit_plain = run_jit(jit, blk, seed);
    assert_eq!(
        reference, jit_plain,
        "JIT differs from the interpreter (seed {seed:#x})\n{blk}"
    );
    let mut opt = blk.clone();
    accel_tcg::opt::optimize(&mut opt);
    accel_tcg::ir::verify(&opt, env_size())
        .unwrap_or_else(|e| panic!("optimization broke the block: {e}\n{opt}"));
    let interp_opt = run_interp(&opt, seed);
    assert_eq!(
        reference, interp_opt,
        "optimized block differs (seed {seed:#x})\nbefore:\n{blk}\nafter:\n{opt}"
    );
    let jit_opt = run_jit(jit, &opt, seed);
    assert_eq!(
        reference, jit_opt,
        "JIT on the optimized block differs (seed {seed:#x})\n{opt}"
    );
    // Optimizing again (front ends may run the passes on their own output)
    // keeps the block valid and equivalent.
    let mut twice = opt.clone();
    accel_tcg::opt::optimize(&mut twice);
    accel_tcg::ir::verify(&twice, env_size())
        .unwrap_or_else(|e| panic!("second optimization broke the block: {e}\n{twice}"));
    assert_eq!(
        reference,
        run_jit(jit, &twice, seed),
        "twice-optimized block differs (seed {seed:#x})\n{twice}"
    );
}

struct Helpers {
    mix: HelperId,
    sum5: HelperId,
    env: HelperId,
    exit: HelperId,
}

/// A random block from `seed`: `len` ops of every kind, forward branches,
/// memory accesses to RAM (fast and slow path), MMIO and unmapped pages,
/// helper calls, and a dump of every temp to the CPU state before the exit.
pub fn random_block(seed: u64, len: usize) -> Block {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut b = Block::new(0x1000);
    let h = Helpers {
        mix: b.helper(
            "mix",
            HelperFn::A2(h_mix),
            HelperFlags {
                no_env: true,
                ..Default::default()
            },
        ),
        sum5: b.helper(
            "sum5",
            HelperFn::A5(h_sum5),
            HelperFlags {
                pure: true,
                ..Default::default()
            },
        ),
        env: b.helper("env", HelperFn::A1(h_env), HelperFlags::default()),
        exit: b.helper(
            "exit",
            HelperFn::A1(h_exit),
            HelperFlags {
                may_exit: true,
                no_env: true,
                pure: false,
            },
        ),
    };
    let n64 = 4 + r.below(8) as usize;
    let n32 = 2 + r.below(6) as usize;
    let t64: Vec<Temp> = (0..n64).map(|_| b.temp64()).collect();
    let t32: Vec<Temp> = (0..n32).map(|_| b.temp32()).collect();
    let mut pc = 0x1000u64;
    b.insn_start(pc);
    for &t in t64.iter().chain(&t32) {
        let ty = b.ty(t);
        if r.chance(50) {
            b.movi(t, ty.mask(r.interesting()));
        } else {
            let mop = random_env_mop(&mut r, ty);
            b.ld_env(t, reg(r.below(8) as usize), mop);
        }
    }
    let mut pending = Vec::new();
    for _ in 0..len {
        let ty = if r.chance(60) { Ty::I64 } else { Ty::I32 };
        let pool = if ty == Ty::I64 { &t64 } else { &t32 };
        let d = r.pick(pool);
        let x = r.pick(pool);
        let y = r.pick(pool);
        match r.below(100) {
            0..=29 => {
                let ops: [fn(&mut Block, Temp, Temp, Temp); 17] = [
                    Block::add,
                    Block::sub,
                    Block::and,
                    Block::or,
                    Block::xor,
                    Block::shl,
                    Block::shr,
                    Block::sar,
                    Block::rotl,
                    Block::rotr,
                    Block::mul,
                    Block::mulsh,
                    Block::muluh,
                    Block::divs,
                    Block::divu,
                    Block::rems,
                    Block::remu,
                ];
                let f = r.pick(&ops);
                f(&mut b, d, x, y);
            }
            30..=41 => {
                let mut ops: Vec<fn(&mut Block, Temp, Temp)> = vec![
                    Block::mov,
                    Block::neg,
                    Block::not,
                    Block::ext8s,
                    Block::ext8u,
                    Block::ext16s,
                    Block::ext16u,
                    Block::bswap16,
                    Block::bswap32,
                    Block::clz,
                    Block::ctz,
                    Block::popcnt,
                ];
                if ty == Ty::I64 {
                    ops.extend([Block::ext32s, Block::ext32u, Block::bswap64]
                        as [fn(&mut Block, Temp, Temp); 3]);
                }
                let f = r.pick(&ops);
                f(&mut b, d, x);
            }
            42..=45 => {
                let a = r.pick(&t32);
                let w = r.pick(&t64);
                match r.below(3) {
                    0 => b.extu_i32_i64(w, a),
                    1 => b.exts_i32_i64(w, a),
                    _ => b.extrl_i64_i32(a, w),
                }
            }
            46..=50 => {
                let c = r.pick(&Cond::ALL);
                if r.chance(50) {
                    b.setcond(d, x, y, c);
                } else {
                    let v = r.pick(pool);
                    let w = r.pick(pool);
                    b.movcond(d, x, y, v, w, c);
                }
            }
            51..=55 => b.movi(d, ty.mask(r.interesting())),
            56..=61 => {
                let mop = random_env_mop(&mut r, ty);
                let off = reg(r.below(8) as usize)
                    + if mop.size == MemSize::B8 {
                        0
                    } else {
                        r.below(2) as u32 * 4
                    };
                if r.chance(50) {
                    b.ld_env(d, off, mop);
                } else {
                    b.st_env(x, off, mop);
                }
            }
            62..=73 => {
                let addr = random_addr(&mut b, &mut r, &t64);
                let mop = random_mem_mop(&mut r, ty);
                match r.below(8) {
                    0..=2 => b.qemu_ld(d, addr, mop),
                    3..=5 => b.qemu_st(x, addr, mop),
                    6 => b.atomic_rmw(d, addr, x, mop, r.pick(&AtomicOp::ALL)),
                    _ => {
                        // Half the time the expected value is what memory
                        // holds, so the swap happens.
                        let cmp = if r.chance(50) {
                            let c = b.temp(ty);
                            b.qemu_ld(c, addr, mop);
                            c
                        } else {
                            y
                        };
                        b.atomic_cmpxchg(d, addr, cmp, x, mop);
                    }
                }
            }
            74..=77 => {
                pc += 4;
                b.insn_start(pc);
                if r.chance(20) {
                    b.mb(r.pick(&[accel_tcg::ir::MB_ALL, accel_tcg::ir::MB_ST_ST]));
                }
            }
            78..=81 => {
                let w = r.pick(&t64);
                let a = r.pick(&t64);
                match r.below(4) {
                    0 => b.call_helper(Some(w), h.mix, &[a, x]),
                    1 => {
                        let args: Vec<Temp> = (0..5).map(|_| r.pick(&t64)).collect();
                        b.call_helper(Some(w), h.sum5, &args);
                    }
                    2 => b.call_helper(if r.chance(50) { Some(w) } else { None }, h.env, &[a]),
                    _ => b.call_helper(Some(w), h.exit, &[a]),
                }
            }
            82..=89 => {
                let l = b.label();
                if r.chance(40) {
                    // A branch on a flag computed into a temp, as front ends
                    // emit for conditional jumps.
                    let zero = b.const_temp(ty, 0);
                    b.setcond(d, x, y, r.pick(&Cond::ALL));
                    if r.chance(50) {
                        let v = r.pick(pool);
                        let w = r.pick(pool);
                        let e = r.pick(pool);
                        b.movcond(e, d, zero, v, w, r.pick(&[Cond::Ne, Cond::Eq]));
                    }
                    b.brcond(d, zero, r.pick(&[Cond::Ne, Cond::Eq]), l);
                } else {
                    b.brcond(x, y, r.pick(&Cond::ALL), l);
                }
                pending.push(l);
            }
            90..=95 if !pending.is_empty() => {
                let k = r.below(pending.len() as u64) as usize;
                let l = pending.remove(k);
                b.set_label(l);
            }
            96..=97 if !pending.is_empty() => {
                let l = r.pick(&pending);
                b.br(l);
            }
            98..=99 if !pending.is_empty() => b.exit_status(3),
            _ => {
                // A flag-like full-width store to one of a few fields, which
                // later stores overwrite: dead-store and `st_env_fault` food.
                let full = if ty == Ty::I64 { MemOp::Q } else { MemOp::UL };
                b.st_env(x, reg(r.below(3) as usize), full);
            }
        }
    }
    for l in pending {
        b.set_label(l);
    }
    for (i, &t) in t64.iter().chain(&t32).enumerate() {
        let mop = if b.ty(t) == Ty::I64 {
            MemOp::Q
        } else {
            MemOp::UL
        };
        b.st_env(t, reg(8 + i), mop);
    }
    match r.below(3) {
        0 => b.goto_tb(r.below(2) as u8, 0x2000),
        1 => {
            let t = r.pick(&t64);
            b.exit_indirect(t);
        }
        _ => b.exit_status(7),
    }
    b
}

fn random_env_mop(r: &mut Rng, ty: Ty) -> MemOp {
    let sizes: &[MemSize] = if ty == Ty::I64 {
        &[MemSize::B1, MemSize::B2, MemSize::B4, MemSize::B8]
    } else {
        &[MemSize::B1, MemSize::B2, MemSize::B4]
    };
    let m = MemOp::new(r.pick(sizes));
    if r.chance(30) { m.signed() } else { m }
}

fn random_mem_mop(r: &mut Rng, ty: Ty) -> MemOp {
    let m = random_env_mop(r, ty);
    let m = if r.chance(30) { m.be() } else { m };
    let m = if r.chance(25) { m.aligned() } else { m };
    m.mmu(r.below(NB_MMU_MODES as u64) as u8)
}

/// An address temp: mostly RAM (all four pages, including page-crossing
/// offsets), sometimes MMIO, unmapped, or computed from a temp.
fn random_addr(b: &mut Block, r: &mut Rng, t64: &[Temp]) -> Temp {
    let a = b.temp64();
    match r.below(10) {
        0..=5 => {
            let page = r.below(RAM_PAGES);
            let off = if r.chance(20) {
                PAGE_SIZE - 1 - r.below(7)
            } else {
                r.below(PAGE_SIZE)
            };
            b.movi(a, RAM_BASE + page * PAGE_SIZE + off);
        }
        6 => b.movi(a, MMIO_BASE + r.below(PAGE_SIZE)),
        7 => b.movi(
            a,
            r.pick(&[
                0u64,
                0x5000,
                u64::MAX - 3,
                RAM_BASE + RAM_PAGES * PAGE_SIZE - 2,
            ]),
        ),
        _ => {
            let t = r.pick(t64);
            let mask = b.const_temp(Ty::I64, 0x3fff);
            let base = b.const_temp(Ty::I64, RAM_BASE);
            b.and(a, t, mask);
            b.add(a, a, base);
        }
    }
    a
}
