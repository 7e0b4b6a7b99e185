//! Random A64 code for the differential tests (`random_code.rs`: JIT
//! against interpreter; `unicorn_oracle.rs`: moat against Unicorn).
//!
//! Words come from the decoder's own table lines (integer data processing,
//! loads and stores) with random fields, then fixed up so a sequence stays
//! comparable: loads and stores address memory through [`BASE`] only, which
//! nothing else writes; nothing writes x18 (the test epilogue's scratch);
//! PC-relative literals point into the sequence; [`sequence`] adds forward
//! branches (so every sequence ends) and bounds how far writeback can move
//! [`BASE`], so every access stays inside a small window.

use frontend_aarch64::decode::{Class, TABLE};
use frontend_aarch64::translate::{check, tbflags};

/// The base register of generated loads and stores (never a destination).
pub const BASE: u32 = 28;
/// The register the test epilogue clobbers (never a destination).
pub const SCRATCH: u32 = 18;
/// How far all the writebacks of one [`sequence`] may move [`BASE`], in
/// bytes: with the largest offset (±512) and access (16 bytes) added, every
/// access lies within [`REACH`] of the initial base.
pub const WRITEBACK_BUDGET: i64 = 1024;
/// The farthest a [`sequence`]'s access reaches from the initial [`BASE`].
pub const REACH: u64 = 2048;

/// A small deterministic generator (SplitMix64): the oracle test's fixed
/// seed gives the same cases everywhere.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// A register value: often a boundary value, else random bits.
    pub fn value(&mut self) -> u64 {
        const SPECIAL: [u64; 10] = [
            0,
            1,
            u64::MAX,
            0x7fff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0x1_0000_0000,
            63,
        ];
        match self.below(4) {
            0 => SPECIAL[self.below(SPECIAL.len() as u64) as usize],
            1 => self.below(256),
            _ => self.next_u64(),
        }
    }
}

/// The table lines generated words come from.
fn lines() -> Vec<&'static frontend_aarch64::decode::Entry> {
    TABLE
        .iter()
        .filter(|e| {
            matches!(e.class, Class::DpImm | Class::DpReg)
                || (e.class == Class::LoadStore && e.name != "LDST_REG")
        })
        .collect()
}

/// Replaces register field `lo` when it names [`BASE`] or [`SCRATCH`].
fn avoid(w: u32, lo: u32) -> u32 {
    match (w >> lo) & 31 {
        BASE => (w & !(31 << lo)) | (27 << lo),
        SCRATCH => (w & !(31 << lo)) | (17 << lo),
        _ => w,
    }
}

/// A generated word from table line `line` (modulo the line count) with
/// random bits `bits`: loads and stores use [`BASE`], and no destination is
/// [`BASE`] or [`SCRATCH`]. Offsets are left as drawn.
pub fn word(line: usize, bits: u32) -> u32 {
    let lines = lines();
    let e = lines[line % lines.len()];
    let mut w = avoid((bits & !e.mask) | e.value, 0);
    if e.class == Class::LoadStore {
        w = (w & !(31 << 5)) | (BASE << 5);
        w = avoid(w, 10);
        w = avoid(w, 16);
        // Two loads into one register, or a status register that is also
        // the data, are CONSTRAINED UNPREDICTABLE: keep them distinct.
        if (w >> 10) & 31 == w & 31 {
            w ^= 1 << 10;
            w = avoid(w, 10);
        }
        if (w >> 16) & 31 == w & 31 || (w >> 16) & 31 == (w >> 10) & 31 {
            w ^= 2 << 16;
            w = avoid(w, 16);
        }
    }
    w
}

/// Sign-extends the `bits`-wide field of `w` at `lo`.
fn sfield(w: u32, lo: u32, bits: u32) -> i64 {
    ((w >> lo) as i64) << (64 - bits) >> (64 - bits)
}

/// Clamps a load/store word's offset: unsigned offsets below 64 elements;
/// unless `unaligned`, immediate offsets aligned to the access size and
/// writeback by multiples of 16 (so [`BASE`] stays 16-byte aligned);
/// writeback only while the budget `left` allows. Returns the word.
fn bound_offsets(w: u32, name: &str, unaligned: bool, left: &mut i64) -> u32 {
    let size = w >> 30;
    match name {
        "LDST_UIMM" => w & !(0xfc0 << 10),
        "LDST_IMM9" => {
            let mut w = w;
            let writeback = (w >> 10) & 1 == 1;
            if !unaligned {
                let align = if writeback { 4 } else { size };
                w &= !(((1 << align) - 1) << 12);
            }
            let offset = sfield(w, 12, 9);
            if writeback {
                if offset.abs() > *left {
                    // Unscaled offset form: no writeback.
                    return w & !(3 << 10);
                }
                *left -= offset.abs();
            }
            w
        }
        "LDST_PAIR" => {
            let mut w = w;
            let pp = (w >> 23) & 3;
            let scale = if size == 2 { 8 } else { 4 };
            if (pp == 1 || pp == 3) && !unaligned {
                w &= !((16 / scale - 1) << 15);
            }
            let offset = sfield(w, 15, 7) * scale as i64;
            if pp == 1 || pp == 3 {
                if offset.abs() > *left {
                    // Signed offset form: no writeback.
                    return (w & !(3 << 23)) | (2 << 23);
                }
                *left -= offset.abs();
            }
            w
        }
        _ => w,
    }
}

/// A forward branch at word `at` of `len` to a word in `at + 1..=len`
/// (`len` is the first epilogue word).
fn branch(rng: &mut Rng, at: usize, len: usize) -> u32 {
    let off = 1 + rng.below((len - at) as u64) as u32;
    let rt = avoid(rng.next_u32() & 31, 0);
    match rng.below(5) {
        0 => 0x1400_0000 | off,                                              // b
        1 => 0x9400_0000 | off,                                              // bl
        2 => 0x5400_0000 | (off << 5) | (rng.next_u32() & 15),               // b.cond
        3 => 0x3400_0000 | (rng.next_u32() & 0x8100_0000) | (off << 5) | rt, // cbz/cbnz
        _ => {
            0x3600_0000
                | (rng.next_u32() & 0x80f8_0000)
                | (rng.next_u32() & 0x0100_0000)
                | (off << 5)
                | rt
        } // tbz/tbnz
    }
}

/// A random sequence of `len` allocated words: about one in eight a
/// forward branch, the rest data processing and loads/stores into the
/// window [`REACH`] bytes either side of [`BASE`]'s initial value.
pub fn sequence(rng: &mut Rng, len: usize) -> Vec<u32> {
    let lines = lines();
    let mut left = WRITEBACK_BUDGET;
    let mut code = Vec::with_capacity(len);
    for at in 0..len {
        if rng.below(8) == 0 {
            code.push(branch(rng, at, len));
            continue;
        }
        // Draw until the word is allocated (bounded: fall back to a nop).
        let mut chosen = 0xd503_201f;
        for _ in 0..32 {
            let line = rng.below(lines.len() as u64) as usize;
            let e = lines[line];
            let mut w = word(line, rng.next_u32());
            let unaligned = rng.below(64) == 0;
            if e.name == "LDR_LIT" && len < 2 {
                // No room for an 8-byte literal inside the sequence.
                continue;
            }
            if e.name == "LDR_LIT" {
                // Point into the sequence (8 bytes before its end), at
                // an 8-byte aligned word unless `unaligned`.
                let mut target = rng.below(len.saturating_sub(1).max(1) as u64) as i64;
                if !unaligned {
                    target &= !1;
                }
                let imm = (target - at as i64) as u32 & 0x7ffff;
                w = (w & !(0x7ffff << 5)) | (imm << 5);
            }
            let mut budget = left;
            w = bound_offsets(w, e.name, unaligned, &mut budget);
            if check(w, tbflags::EL1).is_ok() {
                left = budget;
                chosen = w;
                break;
            }
        }
        code.push(chosen);
    }
    code
}
