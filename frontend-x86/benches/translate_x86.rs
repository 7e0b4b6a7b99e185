//! Translation speed in guest instructions per second: every block of the
//! compute workload guest's code (`tests/guests/bin/x86_64/workload.elf`),
//! decoded, translated to IR, optimized and compiled to host code, as the exec
//! loop does on a cache miss.

use accel_tcg::backend::x86_64::Jit;
use accel_tcg::guest::CodeReader;
use accel_tcg::ir::{Block, Op};
use accel_tcg::softmmu::MemFault;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frontend_x86::X86State;
use frontend_x86::translate::{tbflags, translate_block};
use machine::loader::elf::ElfImage;

const IMAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/guests/bin/x86_64/workload.elf"
);

/// Guest code as a flat byte array at its load address.
struct Flat {
    base: u64,
    bytes: Vec<u8>,
}

impl CodeReader for Flat {
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = vaddr.wrapping_add(i as u64).wrapping_sub(self.base) as usize;
            *byte = *self.bytes.get(at).ok_or(MemFault { code: 14 })?;
        }
        Ok(())
    }
}

/// The start of every block that translating the image's code from its first
/// byte in order produces, and the guest instructions they hold.
fn block_starts(code: &mut Flat) -> (Vec<u64>, u64) {
    let end = code.base + code.bytes.len() as u64;
    let mut pc = code.base;
    let mut starts = Vec::new();
    let mut insns = 0;
    let mut block = Block::new(pc);
    while pc < end {
        block.clear(pc);
        if translate_block(pc, tbflags::CODE64, code, &mut block, 512).is_err() {
            break;
        }
        let (count, last) = block
            .insns
            .iter()
            .filter_map(|insn| match insn.op {
                Op::InsnStart { pc } => Some(pc),
                _ => None,
            })
            .fold((0, pc), |(n, _), at| (n + 1, at));
        starts.push(pc);
        insns += count;
        // Continue after the block's last instruction.
        let mut bytes = [0u8; 15];
        let available = (end - last).min(15) as usize;
        if code.read(last, &mut bytes[..available]).is_err() {
            break;
        }
        let mut decoder = iced_x86::Decoder::with_ip(
            64,
            &bytes[..available],
            last,
            iced_x86::DecoderOptions::NONE,
        );
        let length = decoder.decode().len().max(1) as u64;
        pc = last + length;
    }
    (starts, insns)
}

fn translate(c: &mut Criterion) {
    let file = std::fs::read(IMAGE).expect("the workload guest image");
    let elf = ElfImage::parse(&file).expect("a valid ELF");
    let segment = &elf.segments[0];
    let mut code = Flat {
        base: segment.paddr,
        bytes: segment.data(&file).to_vec(),
    };
    let (starts, insns) = block_starts(&mut code);
    let mut group = c.benchmark_group("x86 translation");
    group.throughput(Throughput::Elements(insns));
    group.sample_size(20);
    group.bench_function(
        format!(
            "workload.elf: {} blocks, {insns} guest instructions",
            starts.len()
        ),
        |b| {
            let mut jit = Jit::new(64 << 20, size_of::<X86State>()).expect("a JIT");
            let mut block = Block::new(0);
            let mut scratch = accel_tcg::opt::Scratch::default();
            b.iter(|| {
                jit.flush();
                for &pc in &starts {
                    block.clear(pc);
                    if translate_block(pc, tbflags::CODE64, &mut code, &mut block, 512).is_ok() {
                        accel_tcg::opt::optimize_with(&mut block, &mut scratch);
                        let _ = jit.compile(&block);
                    }
                }
            });
        },
    );
    group.finish();
}

criterion_group!(benches, translate);
criterion_main!(benches);
