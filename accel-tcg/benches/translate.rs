//! Translation speed: IR ops optimized and compiled per second.
//!
//! The block imitates what an x86 front end produces for straight-line
//! integer code: per guest instruction an `insn_start`, register loads, an
//! ALU op, eager flag computation stored to the CPU state (mostly dead), a
//! memory access every few instructions, and the register write-back.

use accel_tcg::backend::x86_64::{CompileError, Jit};
use accel_tcg::ir::{Block, Cond, MemOp, Ty};
use accel_tcg::opt::{Scratch, optimize_with};
use accel_tcg::softmmu::HEADER_SIZE;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const REG: u32 = HEADER_SIZE as u32;
const FLAGS: u32 = REG + 16 * 8;
const ENV_SIZE: usize = HEADER_SIZE + 32 * 8;

fn guest_like_block(insns: u64) -> Block {
    let mut b = Block::new(0x40_0000);
    for k in 0..insns {
        let pc = 0x40_0000 + k * 3;
        b.insn_start(pc);
        let dst = REG + ((k * 5) % 16) as u32 * 8;
        let src = REG + ((k * 7 + 3) % 16) as u32 * 8;
        let x = b.temp64();
        let y = b.temp64();
        b.ld_env(x, dst, MemOp::Q);
        if k % 4 == 3 {
            // A load from memory at [src + 16].
            let a = b.temp64();
            let off = b.const_temp(Ty::I64, 16);
            b.ld_env(a, src, MemOp::Q);
            b.add(a, a, off);
            b.qemu_ld(y, a, MemOp::Q);
        } else {
            b.ld_env(y, src, MemOp::Q);
        }
        let r = b.temp64();
        match k % 3 {
            0 => b.add(r, x, y),
            1 => b.sub(r, x, y),
            _ => b.and(r, x, y),
        }
        // Flags: ZF, SF, CF, each to its own field.
        let zero = b.const_temp(Ty::I64, 0);
        let zf = b.temp64();
        let sf = b.temp64();
        let cf = b.temp64();
        b.setcond(zf, r, zero, Cond::Eq);
        b.setcond(sf, r, zero, Cond::Lt);
        b.setcond(cf, r, x, Cond::Ltu);
        b.st_env(zf, FLAGS, MemOp::UB);
        b.st_env(sf, FLAGS + 1, MemOp::UB);
        b.st_env(cf, FLAGS + 2, MemOp::UB);
        b.st_env(r, dst, MemOp::Q);
    }
    b.goto_tb(0, 0x40_0000 + insns * 3);
    b
}

fn bench(c: &mut Criterion) {
    let blk = guest_like_block(40);
    let ops = blk.insns.len() as u64;
    let mut g = c.benchmark_group("translate");
    g.throughput(Throughput::Elements(ops));
    let mut scratch = Scratch::default();
    g.bench_function("optimize", |bench| {
        bench.iter(|| {
            let mut b = blk.clone();
            optimize_with(&mut b, &mut scratch);
            b
        })
    });
    // Each pass alone, on the block as the passes before it leave it.
    let mut staged = blk.clone();
    for (i, (name, pass)) in accel_tcg::opt::PASSES.iter().enumerate() {
        let input = staged.clone();
        g.bench_function(format!("pass{i}/{name}"), |bench| {
            bench.iter(|| {
                let mut b = input.clone();
                pass(&mut b, &mut scratch);
                b
            })
        });
        pass(&mut staged, &mut scratch);
    }
    g.bench_function("clone", |bench| bench.iter(|| blk.clone()));
    let mut jit = Jit::new(64 << 20, ENV_SIZE).expect("jit");
    let mut optimized = blk.clone();
    optimize_with(&mut optimized, &mut scratch);
    g.bench_function("codegen", |bench| {
        bench.iter(|| match jit.compile(&optimized) {
            Err(CompileError::CacheFull) => {
                jit.flush();
                jit.compile(&optimized).expect("compile")
            }
            r => r.expect("compile"),
        })
    });
    g.bench_function("optimize+codegen", |bench| {
        bench.iter(|| {
            let mut b = blk.clone();
            optimize_with(&mut b, &mut scratch);
            match jit.compile(&b) {
                Err(CompileError::CacheFull) => {
                    jit.flush();
                    jit.compile(&b).expect("compile")
                }
                r => r.expect("compile"),
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
