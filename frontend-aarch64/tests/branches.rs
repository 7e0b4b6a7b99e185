//! Branches: b, bl, b.cond for every condition and flag combination,
//! cbz/cbnz, tbz/tbnz, br, blr, ret.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;

#[test]
fn direct_and_indirect_branches() {
    let code = [
        0xd2800002, // mov x2, #0
        0x91000442, // loop: add x2, x2, #1
        0xf100285f, // cmp x2, #10
        0x54ffffcb, // b.lt loop
        0xb4000043, // cbz x3, skip
        0xd2800024, // mov x4, #1
        0xb5000042, // skip: cbnz x2, t1
        0xd2800025, // mov x5, #1
        0xb6f80040, // t1: tbz x0, #63, t2
        0xd28000e6, // mov x6, #7
        0x37000040, // t2: tbnz w0, #0, t3
        0xd2800127, // mov x7, #9
        0x94000005, // t3: bl fn
        0xd2800069, // mov x9, #3
        0x100000aa, // adr x10, fn2
        0xd63f0140, // blr x10
        0x14000005, // b end
        0xd28000a8, // fn: mov x8, #5
        0xd65f03c0, // ret
        0xaa1e03eb, // fn2: mov x11, x30
        0xd61f03c0, // br x30
        0xd503201f, // end: nop
    ];
    let r = run(&code, &[0x8000_0000_0000_0001]);
    assert_eq!(r.x(2), 10);
    assert_eq!((r.x(4), r.x(5), r.x(6), r.x(7)), (0, 0, 7, 0));
    assert_eq!((r.x(8), r.x(9)), (5, 3));
    assert_eq!(
        (r.x(10), r.x(11), r.x(30)),
        (CODE + 0x4c, CODE + 0x40, CODE + 0x40)
    );
}

/// The Arm ARM's `ConditionHolds`.
fn holds(cond: u32, nzcv: u64) -> bool {
    let (n, z, c, v) = (nzcv & 8 != 0, nzcv & 4 != 0, nzcv & 2 != 0, nzcv & 1 != 0);
    let r = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => n == v && !z,
        _ => true,
    };
    if cond & 1 != 0 && cond != 15 { !r } else { r }
}

#[test]
fn every_condition() {
    for nzcv in 0..16u64 {
        // One program per flag value tests all 16 conditions, each setting
        // bit `cond` of x1 when taken.
        let mut code = vec![];
        for cond in 0..16u32 {
            code.extend([
                0x54000040 | cond,                     // b.cond +8
                0x14000002,                            // b +8
                0xb2400021 | ((64 - cond) % 64) << 16, // orr x1, x1, #(1 << cond)
            ]);
        }
        let mut s = entry_state();
        s.pstate |= nzcv << 28;
        let r = run_both(&code, s);
        let want = (0..16)
            .filter(|&c| holds(c, nzcv))
            .fold(0, |m, c| m | 1 << c);
        assert_eq!(r.x(1), want, "nzcv {nzcv:#x}");
    }
}
