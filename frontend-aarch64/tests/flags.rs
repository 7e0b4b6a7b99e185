//! NZCV of add/sub with and without carry, both widths, against the Arm
//! ARM's `AddWithCarry`, on edge values, on both engines.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;

const EDGES: [u64; 9] = [
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_ffff,
];

const CODE: [u32; 8] = [
    0xab010002, // adds x2, x0, x1
    0xd53b4203, // mrs x3, nzcv
    0x6b010004, // subs w4, w0, w1
    0xd53b4205, // mrs x5, nzcv
    0xba010006, // adcs x6, x0, x1
    0xd53b4207, // mrs x7, nzcv
    0x7a010008, // sbcs w8, w0, w1
    0xd53b4209, // mrs x9, nzcv
];

#[test]
fn add_sub_flags_match_add_with_carry() {
    for &a in &EDGES {
        for &b in &EDGES {
            for carry in [false, true] {
                let mut s = entry_state();
                s.x[0] = a;
                s.x[1] = b;
                if carry {
                    s.pstate |= 1 << 29;
                }
                let r = run_both(&CODE, s);
                let (sum, f1) = add_with_carry(a, b, false, 64);
                assert_eq!((r.x(2), r.x(3) >> 28), (sum, f1), "adds {a:#x} {b:#x}");
                let (diff, f2) = add_with_carry(a, !b, true, 32);
                assert_eq!((r.x(4), r.x(5) >> 28), (diff, f2), "subs w {a:#x} {b:#x}");
                // adcs uses the carry subs w left.
                let (adc, f3) = add_with_carry(a, b, f2 & 2 != 0, 64);
                assert_eq!((r.x(6), r.x(7) >> 28), (adc, f3), "adcs {a:#x} {b:#x}");
                let (sbc, f4) = add_with_carry(a, !b, f3 & 2 != 0, 32);
                assert_eq!((r.x(8), r.x(9) >> 28), (sbc, f4), "sbcs w {a:#x} {b:#x}");
            }
        }
    }
}
