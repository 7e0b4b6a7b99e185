//! Loads and stores: every size and signedness, the addressing modes,
//! pairs, literals, unprivileged forms, acquire/release and the LSE
//! atomics, checked against a mirror of guest memory.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The test pattern at DATA: byte k is `k * 0x9d + 0x83`.
fn pattern(k: usize) -> u8 {
    (k as u8).wrapping_mul(0x9d).wrapping_add(0x83)
}

fn fill(mem: &GuestMemoryMmap) {
    let bytes: Vec<u8> = (0..256).map(pattern).collect();
    mem.write_slice(&bytes, GuestAddress(DATA)).unwrap();
}

/// Little-endian `n` bytes of the pattern at DATA + `off`.
fn pat(off: i64, n: usize) -> u64 {
    (0..n).fold(0, |v, i| {
        v | u64::from(pattern((off as usize) + i)) << (8 * i)
    })
}

fn read(mem: &GuestMemoryMmap, at: u64, n: usize) -> u64 {
    let mut b = [0u8; 8];
    mem.read_slice(&mut b[..n], GuestAddress(at)).unwrap();
    u64::from_le_bytes(b)
}

fn sext(v: u64, bits: u32) -> u64 {
    ((v << (64 - bits)) as i64 >> (64 - bits)) as u64
}

#[test]
fn loads_and_stores() {
    let code = [
        0xf9400001, // ldr x1, [x0]
        0xb9400402, // ldr w2, [x0, #4]
        0x39401c03, // ldrb w3, [x0, #7]
        0x39801c04, // ldrsb x4, [x0, #7]
        0x79c00c05, // ldrsh w5, [x0, #6]
        0xb9800406, // ldrsw x6, [x0, #4]
        0xf8408007, // ldur x7, [x0, #8] (MMU off: Device memory, so aligned)
        0xf8408c08, // ldr x8, [x0, #8]!
        0xf85f8409, // ldr x9, [x0], #-8
        0xd280004a, // mov x10, #2
        0xf86a780b, // ldr x11, [x0, x10, lsl #3]
        0x128000ec, // mov w12, #-8
        0x786cc80d, // ldrh w13, [x0, w12, sxtw]
        0x180001ee, // ldr w14, lit
        0x980001cf, // ldrsw x15, lit
        0xf9800000, // prfm pldl1keep, [x0]
        0xf9001001, // str x1, [x0, #32]
        0x3900a001, // strb w1, [x0, #40]
        0x7802a001, // sturh w1, [x0, #42]
        0xb9002c01, // str w1, [x0, #44]
        0xa9030801, // stp x1, x2, [x0, #48]
        0x29bf1003, // stp w3, w4, [x0, #-8]!
        0x28c14410, // ldp w16, w17, [x0], #8
        0x697f5013, // ldpsw x19, x20, [x0, #-8]
        0xa9435815, // ldp x21, x22, [x0, #48]
        0xf8400817, // ldtr x23, [x0]
        0x38040801, // sttrb w1, [x0, #64]
        0x14000002, // b end
        0x80000001, // lit: .word 0x80000001
        0xd503201f, // end: nop
    ];
    for engine in ENGINES {
        let mem = memory_with(&code);
        fill(&mem);
        let mut s = entry_state();
        s.x[0] = DATA + 16;
        let r = run_state(&mem, s, engine, 1000);
        assert_eq!(r.exit, Some(machine::VcpuExit::Shutdown(0)));
        let x1 = pat(16, 8);
        assert_eq!(r.x(0), DATA + 16);
        assert_eq!(r.x(1), x1);
        assert_eq!(r.x(2), pat(20, 4));
        assert_eq!(r.x(3), pat(23, 1));
        assert_eq!(r.x(4), sext(pat(23, 1), 8));
        assert_eq!(r.x(5), sext(pat(22, 2), 16) & 0xffff_ffff);
        assert_eq!(r.x(6), sext(pat(20, 4), 32));
        assert_eq!(r.x(7), pat(24, 8));
        assert_eq!(r.x(8), pat(24, 8));
        assert_eq!(r.x(9), pat(24, 8));
        assert_eq!(r.x(11), pat(32, 8));
        assert_eq!(r.x(13), pat(8, 2));
        assert_eq!(r.x(14), 0x8000_0001);
        assert_eq!(r.x(15), 0xffff_ffff_8000_0001);
        let x0 = DATA + 16;
        assert_eq!(read(&mem, x0 + 32, 8), x1);
        assert_eq!(read(&mem, x0 + 40, 1), x1 & 0xff);
        assert_eq!(read(&mem, x0 + 42, 2), x1 & 0xffff);
        assert_eq!(read(&mem, x0 + 44, 4), x1 & 0xffff_ffff);
        assert_eq!(read(&mem, x0 + 48, 8), x1);
        assert_eq!(read(&mem, x0 + 56, 8), pat(20, 4));
        let (w3, w4) = (pat(23, 1), sext(pat(23, 1), 8) & 0xffff_ffff);
        assert_eq!((r.x(16), r.x(17)), (w3, w4));
        assert_eq!((r.x(19), r.x(20)), (w3, sext(w4, 32)));
        assert_eq!((r.x(21), r.x(22)), (x1, pat(20, 4)));
        assert_eq!(r.x(23), x1);
        assert_eq!(read(&mem, x0 + 64, 1), x1 & 0xff);
    }
}

#[test]
fn lse_atomics() {
    let code = [
        0xf8211002, // ldclr x1, x2, [x0]
        0xf8212003, // ldeor x1, x3, [x0]
        0xf8243005, // ldset x4, x5, [x0]
        0xf8268007, // swp x6, x7, [x0]
        0x38280149, // ldaddb w8, w9, [x10]
        0x782b51ac, // ldsminh w11, w12, [x13]
        0xb82e720f, // ldumin w14, w15, [x16]
        0xc8b17c13, // cas x17, x19, [x0]
        0xaa0603f4, // mov x20, x6
        0xc8b47c13, // cas x20, x19, [x0]
        0x4876ff58, // caspal x22, x23, x24, x25, [x26]
    ];
    let m0 = 0xf0f0_0000_ffff_1234u64;
    let (x1, x4, x6, x8, x11, x14, x19) = (
        0x00ff_00ff_00ff_00ffu64,
        0x0101_0000_0000_0001u64,
        0x5555_6666_7777_8888u64,
        0x20u64,
        5u64,
        0x1234u64,
        0xabcdu64,
    );
    for engine in ENGINES {
        let mem = memory_with(&code);
        mem.write_obj(m0, GuestAddress(DATA)).unwrap();
        mem.write_obj(0x77f0u16, GuestAddress(DATA + 64)).unwrap();
        mem.write_obj(0x8001u16, GuestAddress(DATA + 72)).unwrap();
        mem.write_obj(0x9000_0000u32, GuestAddress(DATA + 80))
            .unwrap();
        mem.write_obj(11u64, GuestAddress(DATA + 96)).unwrap();
        mem.write_obj(22u64, GuestAddress(DATA + 104)).unwrap();
        let mut s = entry_state();
        s.x[0] = DATA;
        s.x[1] = x1;
        s.x[4] = x4;
        s.x[6] = x6;
        s.x[8] = x8;
        s.x[10] = DATA + 64;
        s.x[11] = x11;
        s.x[13] = DATA + 72;
        s.x[14] = x14;
        s.x[16] = DATA + 80;
        s.x[19] = x19;
        s.x[22] = 11;
        s.x[23] = 22;
        s.x[24] = 33;
        s.x[25] = 44;
        s.x[26] = DATA + 96;
        let r = run_state(&mem, s, engine, 1000);
        assert_eq!(r.exit, Some(machine::VcpuExit::Shutdown(0)));
        let m1 = m0 & !x1;
        let m2 = m1 ^ x1;
        assert_eq!((r.x(2), r.x(3), r.x(5), r.x(7)), (m0, m1, m2, m2 | x4));
        assert_eq!(r.x(9), 0xf0);
        assert_eq!(read(&mem, DATA + 64, 2), 0x7710);
        assert_eq!((r.x(12), read(&mem, DATA + 72, 2)), (0x8001, 0x8001));
        assert_eq!((r.x(15), read(&mem, DATA + 80, 4)), (0x9000_0000, 0x1234));
        // The first cas compared 0 with x6 and failed; the second swapped.
        assert_eq!((r.x(17), r.x(20)), (x6, x6));
        assert_eq!(read(&mem, DATA, 8), x19);
        assert_eq!((r.x(22), r.x(23)), (11, 22));
        assert_eq!(
            (read(&mem, DATA + 96, 8), read(&mem, DATA + 104, 8)),
            (33, 44)
        );
    }
}

#[test]
fn casp_max_and_acquire_release() {
    let code = [
        0x08247f66, // casp w4, w5, w6, w7, [x27]
        0xf83c601d, // ldumax x28, x29, [x0]
        0xf8bfc01e, // ldapr x30, [x0]
        0x889ffd48, // stlr w8, [x10]
        0xc8dffc15, // ldar x21, [x0]
    ];
    for engine in ENGINES {
        let mem = memory_with(&code);
        mem.write_obj(0x1111_2222_3333_4444u64, GuestAddress(DATA + 112))
            .unwrap();
        mem.write_obj(0x10u64, GuestAddress(DATA)).unwrap();
        let mut s = entry_state();
        s.x[0] = DATA;
        s.x[4] = 0x3333_4444;
        s.x[5] = 0x1111_2222;
        s.x[6] = 0xaaaa;
        s.x[7] = 0xbbbb;
        s.x[8] = 0xdead_beef;
        s.x[10] = DATA + 64;
        s.x[27] = DATA + 112;
        s.x[28] = 0x8000_0000_0000_0000;
        let r = run_state(&mem, s, engine, 1000);
        assert_eq!(r.exit, Some(machine::VcpuExit::Shutdown(0)));
        assert_eq!((r.x(4), r.x(5)), (0x3333_4444, 0x1111_2222));
        assert_eq!(read(&mem, DATA + 112, 8), 0xbbbb_0000_aaaa);
        assert_eq!(r.x(29), 0x10);
        assert_eq!(r.x(30), 0x8000_0000_0000_0000);
        assert_eq!(r.x(21), 0x8000_0000_0000_0000);
        assert_eq!(read(&mem, DATA + 64, 4), 0xdead_beef);
    }
}
