//! Data processing, immediate and register: results and NZCV against values
//! computed by hand from the Arm ARM's pseudocode, on both engines.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;

const X0: u64 = 0xfedc_ba98_7654_3210;

#[test]
fn immediate_class() {
    let code = [
        0x92089c01, // and x1, x0, #0xff00ff00ff00ff00
        0x3200f002, // orr w2, w0, #0x55555555
        0xd2410003, // eor x3, x0, #0x8000000000000000
        0x72010004, // ands w4, w0, #0x80000000
        0xd53b4205, // mrs x5, nzcv
        0xd2c24686, // mov x6, #0x123400000000
        0x12800027, // mov w7, #0xfffffffe (movn)
        0xf2b7dde6, // movk x6, #0xbeef, lsl #16
        0x92800008, // mov x8, #-1
        0x93442c09, // sbfx x9, x0, #4, #8
        0x531c7c0a, // lsr w10, w0, #28 (ubfm)
        0xb3783c0b, // bfi x11, x0, #8, #16
        0xd37df00c, // lsl x12, x0, #3
        0x531f7c0d, // lsr w13, w0, #31
        0x937ffc0e, // asr x14, x0, #63
        0x93401c0f, // sxtb x15, w0
        0x53003c10, // uxth w16, w0
        0x93c63011, // extr x17, x0, x6, #12
        0x13802013, // ror w19, w0, #8
        0xb37cfc14, // bfxil x20, x0, #60, #4
        0x93440c15, // sbfiz x21, x0, #60, #4
    ];
    let mut s = entry_state();
    s.x[0] = X0;
    s.x[11] = 0x1111_1111_1111_1111;
    s.x[20] = 0x2222_2222_2222_2222;
    let r = run_both(&code, s);
    let w0 = X0 as u32;
    assert_eq!(r.x(1), X0 & 0xff00_ff00_ff00_ff00);
    assert_eq!(r.x(2), u64::from(w0 | 0x5555_5555));
    assert_eq!(r.x(3), X0 ^ (1 << 63));
    assert_eq!(r.x(4), u64::from(w0 & 0x8000_0000));
    // 0x76543210 & 0x80000000 = 0: Z.
    assert_eq!(r.x(5), 0x4000_0000);
    assert_eq!(r.x(6), 0x1234_beef_0000);
    assert_eq!(r.x(7), 0xffff_fffe);
    assert_eq!(r.x(8), u64::MAX);
    assert_eq!(r.x(9), ((X0 >> 4) as u8 as i8) as i64 as u64);
    assert_eq!(r.x(10), u64::from(w0 >> 28));
    assert_eq!(
        r.x(11),
        (0x1111_1111_1111_1111 & !(0xffff << 8)) | ((X0 & 0xffff) << 8)
    );
    assert_eq!(r.x(12), X0 << 3);
    assert_eq!(r.x(13), u64::from(w0 >> 31));
    assert_eq!(r.x(14), u64::MAX);
    assert_eq!(r.x(15), X0 as u8 as i8 as i64 as u64);
    assert_eq!(r.x(16), X0 as u16 as u64);
    assert_eq!(r.x(17), (0x1234_beef_0000u64 >> 12) | (X0 << 52));
    assert_eq!(r.x(19), u64::from(w0.rotate_right(8)));
    assert_eq!(r.x(20), (0x2222_2222_2222_2222 & !0xf) | (X0 >> 60));
    assert_eq!(r.x(21), 0);
}

/// N Z C V of a 4-bit NZCV value.
fn conds(f: u64) -> (bool, bool, bool, bool) {
    (f & 8 != 0, f & 4 != 0, f & 2 != 0, f & 1 != 0)
}

#[test]
fn register_class() {
    let code = [
        0x8b011002, // add x2, x0, x1, lsl #4
        0x4b810c03, // sub w3, w0, w1, asr #3
        0x8b21cbe4, // add x4, sp, w1, sxtw #2
        0xeb210005, // subs x5, x0, w1, uxtb
        0x8a210006, // bic x6, x0, x1
        0x2ae11007, // orn w7, w0, w1, ror #4
        0xca61f008, // eon x8, x0, x1, lsr #60
        0xea200009, // bics x9, x0, x0
        0xd53b420a, // mrs x10, nzcv
        0xfa411006, // ccmp x0, x1, #0x6, ne
        0xd53b420b, // mrs x11, nzcv
        0x3a430809, // ccmn w0, #0x3, #0x9, eq
        0xd53b420c, // mrs x12, nzcv
        0x9a81800d, // csel x13, x0, x1, hi
        0x1a81340e, // csinc w14, w0, w1, lo
        0xda81a00f, // csinv x15, x0, x1, ge
        0xda81b410, // csneg x16, x0, x1, lt
        0xdac00011, // rbit x17, x0
        0x5ac00413, // rev16 w19, w0
        0xdac00814, // rev32 x20, x0
        0xdac00c15, // rev x21, x0
        0x5ac01036, // clz w22, w1
        0xdac01417, // cls x23, x0
        0x9ac10818, // udiv x24, x0, x1
        0x1ac10c19, // sdiv w25, w0, w1
        0x9adf081a, // udiv x26, x0, xzr
        0x9ac1201b, // lsl x27, x0, x1
        0x1ac1281c, // asr w28, w0, w1
        0x9ac12c1d, // ror x29, x0, x1
    ];
    for x1 in [0x25u64, 0xffff_fff3, 0x8000_0000_0000_0001] {
        let r = run(&code, &[X0, x1]);
        let (w0, w1) = (X0 as u32, x1 as u32);
        assert_eq!(r.x(2), X0.wrapping_add(x1 << 4));
        assert_eq!(
            r.x(3),
            u64::from(w0.wrapping_sub(((w1 as i32) >> 3) as u32))
        );
        assert_eq!(r.x(4), STACK.wrapping_add(((w1 as i32 as i64) << 2) as u64));
        assert_eq!(r.x(5), X0.wrapping_sub(x1 & 0xff));
        assert_eq!(r.x(6), X0 & !x1);
        assert_eq!(r.x(7), u64::from(w0 | !w1.rotate_right(4)));
        assert_eq!(r.x(8), X0 ^ !(x1 >> 60));
        assert_eq!((r.x(9), r.x(10)), (0, 0x4000_0000));
        // ne fails after bics (Z set): NZCV = #6.
        assert_eq!(r.x(11), 0x6000_0000);
        // eq holds: the flags of w0 + 3.
        let (_, f) = add_with_carry(X0, 3, false, 32);
        assert_eq!(r.x(12), f << 28);
        let (n, z, c, v) = conds(f);
        assert_eq!(r.x(13), if c && !z { X0 } else { x1 });
        assert_eq!(
            r.x(14),
            if !c {
                u64::from(w0)
            } else {
                u64::from(w1.wrapping_add(1))
            }
        );
        assert_eq!(r.x(15), if n == v { X0 } else { !x1 });
        assert_eq!(r.x(16), if n != v { X0 } else { x1.wrapping_neg() });
        assert_eq!(r.x(17), X0.reverse_bits());
        assert_eq!(
            r.x(19),
            u64::from(((w0 >> 8) & 0x00ff_00ff) | ((w0 & 0x00ff_00ff) << 8))
        );
        assert_eq!(
            r.x(20),
            u64::from(w0.swap_bytes()) | u64::from(((X0 >> 32) as u32).swap_bytes()) << 32
        );
        assert_eq!(r.x(21), X0.swap_bytes());
        assert_eq!(r.x(22), u64::from(w1.leading_zeros()));
        assert_eq!(r.x(23), u64::from((!X0).leading_zeros() - 1));
        assert_eq!(r.x(24), X0 / x1);
        assert_eq!(
            r.x(25),
            u64::from((w0 as i32).wrapping_div(w1 as i32) as u32)
        );
        assert_eq!(r.x(26), 0);
        assert_eq!(r.x(27), X0 << (x1 & 63));
        assert_eq!(r.x(28), u64::from(((w0 as i32) >> (w1 & 31)) as u32));
        assert_eq!(r.x(29), X0.rotate_right((x1 & 63) as u32));
    }
}

#[test]
fn multiply_class() {
    let code = [
        0x9b01081e, // madd x30, x0, x1, x2
        0x1b018803, // msub w3, w0, w1, w2
        0x9b210804, // smaddl x4, w0, w1, x2
        0x9ba18805, // umsubl x5, w0, w1, x2
        0x9b417c06, // smulh x6, x0, x1
        0x9bc17c07, // umulh x7, x0, x1
        0x1ac12408, // lsr w8, w0, w1
    ];
    let (x1, x2) = (0x8123_4567_89ab_cdefu64, 0x0102_0304_0506_0708u64);
    let r = run(&code, &[X0, x1, x2]);
    let (w0, w1, w2) = (X0 as u32, x1 as u32, x2 as u32);
    assert_eq!(r.x(30), x2.wrapping_add(X0.wrapping_mul(x1)));
    assert_eq!(r.x(3), u64::from(w2.wrapping_sub(w0.wrapping_mul(w1))));
    assert_eq!(
        r.x(4),
        x2.wrapping_add((w0 as i32 as i64 * w1 as i32 as i64) as u64)
    );
    assert_eq!(r.x(5), x2.wrapping_sub(u64::from(w0) * u64::from(w1)));
    assert_eq!(
        r.x(6),
        ((X0 as i64 as i128 * x1 as i64 as i128) >> 64) as u64
    );
    assert_eq!(r.x(7), ((X0 as u128 * x1 as u128) >> 64) as u64);
    assert_eq!(r.x(8), u64::from(w0 >> (w1 & 31)));
}

#[test]
fn division_edge_cases() {
    let code = [
        0x9ac10c02, // sdiv x2, x0, x1
        0x1ac10c03, // sdiv w3, w0, w1
        0x9adf0c04, // sdiv x4, x0, xzr
        0x1adf0805, // udiv w5, w0, wzr
    ];
    let r = run(&code, &[0x8000_0000_8000_0000, u64::MAX]);
    // 0x8000000080000000 / -1 = -0x8000000080000000.
    assert_eq!(r.x(2), 0x7fff_ffff_8000_0000);
    assert_eq!(r.x(3), 0x8000_0000);
    assert_eq!((r.x(4), r.x(5)), (0, 0));
    let r = run(&code[..1], &[1 << 63, u64::MAX]);
    assert_eq!(r.x(2), 1 << 63);
}

#[test]
fn immediates_with_sp_and_pc() {
    let code = [
        0xb13ffc01, // adds x1, x0, #0xfff
        0xd53b4202, // mrs x2, nzcv
        0x71400403, // subs w3, w0, #0x1, lsl #12
        0xd53b4204, // mrs x4, nzcv
        0xb100041f, // cmn x0, #0x1
        0xd53b4205, // mrs x5, nzcv
        0x910023e6, // add x6, sp, #0x8
        0x910003e7, // mov x7, sp
        0x9100001f, // mov sp, x0
        0x10ffffe8, // adr x8, .-4
        0xb0091a29, // adrp x9, .+0x12345000 (page)
        0x1100040a, // add w10, w0, #0x1
        0xd10000ff, // sub sp, x7, #0x0
    ];
    for x0 in [u64::MAX, 0x7fff_ffff_ffff_f001, 0x1000, 0] {
        let r = run(&code, &[x0]);
        let (v1, f1) = add_with_carry(x0, 0xfff, false, 64);
        assert_eq!((r.x(1), r.x(2) >> 28), (v1, f1));
        let (v3, f3) = add_with_carry(x0, !0x1000, true, 32);
        assert_eq!((r.x(3), r.x(4) >> 28), (v3, f3));
        assert_eq!(r.x(5) >> 28, add_with_carry(x0, 1, false, 64).1);
        assert_eq!((r.x(6), r.x(7)), (STACK + 8, STACK));
        assert_eq!(r.x(8), CODE + 0x24 - 4);
        assert_eq!(r.x(9), (CODE & !0xfff) + 0x1234_5000);
        assert_eq!(r.x(10), (x0 as u32).wrapping_add(1) as u64);
        assert_eq!(r.state.sp_el1, STACK);
    }
}
