//! Guest disassembly for `--trace in_asm`, by `yaxpeax-arm`.

use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Opcode};

/// One line per 4-byte word of `bytes` at `pc`.
pub fn disassemble(pc: u64, bytes: &[u8]) -> Vec<String> {
    let decoder = InstDecoder::default();
    bytes
        .chunks_exact(4)
        .enumerate()
        .map(|(n, w)| {
            let at = pc.wrapping_add(4 * n as u64);
            let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let mut reader = U8Reader::new(w);
            match decoder.decode(&mut reader) {
                Ok(i) => format!("{at:#x}: {word:08x}  {i}"),
                Err(_) => format!("{at:#x}: {word:08x}  .inst {word:#010x} (undefined)"),
            }
        })
        .collect()
}

/// Whether the independent disassembler accepts `word` (tests compare it
/// with moat's decoder).
pub fn allocated(word: u32) -> bool {
    let bytes = word.to_le_bytes();
    let mut reader = U8Reader::new(&bytes);
    matches!(InstDecoder::default().decode(&mut reader), Ok(i) if i.opcode != Opcode::Invalid)
}
