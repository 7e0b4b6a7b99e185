//! Speed of generated code: a guest-like loop body of a few instructions,
//! chained to itself through a patched `goto_tb`, or looping through
//! `exit_indirect` and the inline indirect-jump cache. Reports iterations
//! per second (each iteration enters one block).

use accel_tcg::backend::x86_64::{CompiledBlock, Jit};
use accel_tcg::ir::{Block, Cond, MemOp, MemSize, Ty};
use accel_tcg::softmmu::{
    CpuState, MemFault, MemoryHandler, PAGE_SIZE, PagePerms, TcgContextHeader, Tlb,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::mem::offset_of;

#[repr(C)]
struct Cpu {
    hdr: TcgContextHeader,
    regs: [u64; 8],
    zf: u64,
}
// SAFETY: repr(C), header first, plain integers after it.
unsafe impl CpuState for Cpu {}

struct NoMemory;
impl MemoryHandler for NoMemory {
    fn load(&mut self, _: &mut Tlb, _: u64, _: MemSize) -> Result<u64, MemFault> {
        Err(MemFault { code: 14 })
    }
    fn store(&mut self, _: &mut Tlb, _: u64, _: MemSize, _: u64) -> Result<(), MemFault> {
        Err(MemFault { code: 14 })
    }
}

const LOOP_PC: u64 = 0x1000;
const ITERATIONS: u64 = 100_000;

fn reg(i: usize) -> u32 {
    (offset_of!(Cpu, regs) + 8 * i) as u32
}

/// r1 += [r2]; [r2] = r1; r0 -= 1 with a zero flag; loop while r0 != 0.
fn loop_block(indirect: bool) -> Block {
    let mut b = Block::new(LOOP_PC);
    b.insn_start(LOOP_PC);
    let (r0, r1, r2, v) = (b.temp64(), b.temp64(), b.temp64(), b.temp64());
    b.ld_env(r1, reg(1), MemOp::Q);
    b.ld_env(r2, reg(2), MemOp::Q);
    b.qemu_ld(v, r2, MemOp::Q);
    b.add(r1, r1, v);
    b.st_env(r1, reg(1), MemOp::Q);
    b.insn_start(LOOP_PC + 4);
    b.qemu_st(r1, r2, MemOp::Q);
    b.insn_start(LOOP_PC + 8);
    let one = b.const_temp(Ty::I64, 1);
    let zero = b.const_temp(Ty::I64, 0);
    let zf = b.temp64();
    b.ld_env(r0, reg(0), MemOp::Q);
    b.sub(r0, r0, one);
    b.setcond(zf, r0, zero, Cond::Eq);
    b.st_env(zf, offset_of!(Cpu, zf) as u32, MemOp::Q);
    b.st_env(r0, reg(0), MemOp::Q);
    b.insn_start(LOOP_PC + 12);
    let done = b.label();
    b.brcond(r0, zero, Cond::Eq, done);
    if indirect {
        let target = b.const_temp(Ty::I64, LOOP_PC);
        b.exit_indirect(target);
    } else {
        b.goto_tb(0, LOOP_PC);
    }
    b.set_label(done);
    b.exit_status(0);
    accel_tcg::opt::optimize(&mut b);
    b
}

fn setup(jit: &mut Jit, indirect: bool) -> CompiledBlock {
    let tb = jit.compile(&loop_block(indirect)).expect("compile");
    if !indirect {
        jit.patch_jump(tb.jumps[0].expect("slot 0"), &tb)
            .expect("chain to itself");
    }
    tb
}

fn bench(c: &mut Criterion) {
    let mut ram = vec![0u8; PAGE_SIZE as usize];
    let mut g = c.benchmark_group("execute");
    g.throughput(Throughput::Elements(ITERATIONS));
    for indirect in [false, true] {
        let mut jit = Jit::new(1 << 20, size_of::<Cpu>()).expect("jit");
        let tb = setup(&mut jit, indirect);
        let mut cpu = Box::new(Cpu {
            hdr: TcgContextHeader::new(),
            regs: [0; 8],
            zf: 0,
        });
        // SAFETY: `ram` outlives every run below and is not resized.
        unsafe { cpu.hdr.tlb[0].fill(0x8000, ram.as_mut_ptr(), PagePerms::RWX) };
        cpu.regs[2] = 0x8010;
        if indirect {
            cpu.hdr.tb_flags = 0;
            jit.jump_cache_insert(&mut cpu.hdr, LOOP_PC, 0, &tb)
                .expect("jump cache");
        }
        let name = if indirect {
            "loop/indirect"
        } else {
            "loop/chained"
        };
        g.bench_function(name, |bench| {
            bench.iter(|| {
                cpu.regs[0] = ITERATIONS;
                let exit = jit.run(&tb, &mut *cpu, &mut NoMemory).expect("run");
                assert_eq!(cpu.regs[0], 0, "{exit:?}");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
