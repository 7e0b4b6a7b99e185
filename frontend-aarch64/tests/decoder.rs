//! The decoder: any word decodes without panicking, to an instruction or to
//! Undefined Instruction; and on the integer classes moat implements, it
//! agrees with an independent disassembler (yaxpeax-arm) on which words
//! are allocated.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use frontend_aarch64::disasm;
use frontend_aarch64::translate::{Undef, check, tbflags};
use proptest::prelude::*;

/// Whether `word` lies in an integer encoding class moat implements
/// (op0 of the Arm ARM's top-level table), outside the system space
/// (finished in Rust, every encoding allocated) and the spaces of later
/// architecture features moat does not claim.
fn in_implemented_classes(w: u32) -> bool {
    let op0 = (w >> 25) & 0xf;
    let dp_imm = op0 & 0b1110 == 0b1000;
    let branch = op0 & 0b1110 == 0b1010;
    let ldst = op0 & 0b0101 == 0b0100 && w & (1 << 26) == 0;
    let dp_reg = op0 & 0b0111 == 0b0101;
    let system = w >> 22 == 0b11_0101_0100;
    (dp_imm || branch || ldst || dp_reg) && !system && !later_feature(w)
}

/// Encodings of features after Armv8.1 (pointer authentication, RCpc
/// unscaled, memory tagging, flag manipulation, CRC32) that moat leaves
/// unallocated or untranslated.
fn later_feature(w: u32) -> bool {
    // LDAPUR/STLUR (v8.4) and MTE tag loads/stores.
    w & 0x3f00_0000 == 0x1900_0000
        // Pointer authentication loads (LDRAA/LDRAB).
        || w & 0x3f20_0400 == 0x3820_0400
        // RMIF, SETF (v8.4) in the data-processing-register space.
        || w & 0x1fe0_7c00 == 0x1a00_0400 || w & 0x1fe0_3c00 == 0x1a00_0800
        // PAC/AUT/XPAC 1-source.
        || w & 0x5fff_0000 == 0x5ac1_0000
        // 2-source: SUBP(S), IRG, GMI, PACGA, CRC32.
        || (w & 0x5fe0_0000 == 0x1ac0_0000
            && (w & (1 << 29) != 0 || matches!((w >> 10) & 0x3f, 0 | 4 | 5 | 12 | 16..=23)))
        // BRAA/BLRAA/RETAA/ERETAA and friends.
        || (w & 0xfe00_0000 == 0xd600_0000 && w & 0x0000_0c00 != 0)
        // Armv8.5 MTE: ADDG/SUBG.
        || w & 0x7f80_0000 == 0x1180_0000
        // LSE128, LRCPC3, ST64B and later atomics in the atomic space.
        || (w & 0x3b20_0c00 == 0x3820_0000 && (w >> 12) & 0xf >= 9)
}

/// Reserved encodings yaxpeax-arm 0.3 decodes anyway (checked against the
/// Arm ARM's encoding tables by hand): moat treats them as unallocated.
fn lax_yaxpeax(w: u32) -> bool {
    let sf = w >> 31 == 1;
    let imm6 = (w >> 10) & 0x3f;
    // Logical / add-sub (shifted register), 32-bit with a shift of 32 or more.
    let shifted = w & 0x1f00_0000 == 0x0a00_0000 || w & 0x1f20_0000 == 0x0b00_0000;
    (shifted && !sf && imm6 >= 32)
        // Add/sub (shifted register) with shift type 11.
        || (w & 0x1f20_0000 == 0x0b00_0000 && (w >> 22) & 3 == 3)
        // Logical (immediate) with N = 1 in 32-bit form, or an all-ones element.
        || (w & 0x1f80_0000 == 0x1200_0000 && ((!sf && w & (1 << 22) != 0) || all_ones_bitmask(w)))
        // Move wide, 32-bit with hw >= 2, or opc 01.
        || (w & 0x1f80_0000 == 0x1280_0000 && ((!sf && (w >> 22) & 1 == 1) || (w >> 29) & 3 == 1))
        // Add/sub (extended register) with a left shift above 4, or opt != 0.
        || (w & 0x1f20_0000 == 0x0b20_0000 && ((w >> 10) & 7 > 4 || (w >> 22) & 3 != 0))
        // The "11010xx0" group (adc/sbc, ccmp, csel, 1- and 2-source) with
        // bit 21 set: reserved.
        || (w & 0x1f20_0000 == 0x1a20_0000)
        // BC.cond (Armv8.8) decoded as B.cond.
        || (w & 0xff00_0010 == 0x5400_0010)
}

/// A logical immediate whose element is all ones (reserved).
fn all_ones_bitmask(w: u32) -> bool {
    let n = (w >> 22) & 1;
    let imms = (w >> 10) & 0x3f;
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return true;
    }
    let len = 31 - combined.leading_zeros();
    let levels = (1 << len) - 1;
    imms & levels == levels
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn any_word_decodes_without_panicking(w in any::<u32>()) {
        let _ = check(w, tbflags::EL1);
        let _ = check(w, 0);
    }
}

#[test]
fn agrees_with_yaxpeax_on_implemented_classes() {
    // A deterministic sweep (xorshift) over the implemented classes.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut checked = 0;
    let mut mismatches = vec![];
    while checked < 200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = x as u32;
        if !in_implemented_classes(w) {
            continue;
        }
        checked += 1;
        let ours = match check(w, tbflags::EL1) {
            Ok(_) | Err(Undef::NotImplemented) => true,
            Err(Undef::Unallocated) => false,
        };
        let theirs = disasm::allocated(w) && !lax_yaxpeax(w);
        if ours != theirs {
            mismatches.push(w);
        }
    }
    let shown: Vec<String> = mismatches
        .iter()
        .take(40)
        .map(|w| {
            format!(
                "{w:#010x} yaxpeax={} {:?}",
                disasm::allocated(*w),
                disasm::disassemble(0, &w.to_le_bytes())
            )
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        shown.join("\n")
    );
}
