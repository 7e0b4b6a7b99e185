//! The system side on the exec loop, both engines: exceptions (ESR, ELR,
//! FAR, SPSR, vectors), system registers and their EL0 traps, alignment
//! checks, the FP trap, illegal exception returns, DC ZVA, AT, PSCI; and
//! the stage-1 walk itself.
//!
//! Every vector of the test machine holds the epilogue (power off), so an
//! exception ends the run with its syndrome in the final state.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use accel_tcg::softmmu::{Access, PagePerms};
use common::*;
use frontend_aarch64::mmu::{self, A64Walker, fsc};
use vm_memory::{Bytes, GuestAddress};

/// The vector offset a run ended in (the epilogue's `hvc` is its 4th word).
fn vector(r: &Run) -> u64 {
    r.state.pc - VECTORS - 16
}

#[test]
fn svc_saves_the_next_pc_and_pstate() {
    let mut s = entry_state();
    s.pstate |= 0x6000_0000; // Z and C
    let r = run_both(&[0xd4002461], s); // svc #0x123
    assert_eq!(r.state.esr_el1, 0x5600_0123);
    assert_eq!(r.state.elr_el1, CODE + 4);
    assert_eq!(r.state.spsr_el1, 0x6000_03c5);
    assert_eq!(vector(&r), 0x200);
}

#[test]
fn brk_udf_and_el2_registers() {
    let r = run(&[0xd4200840], &[]); // brk #0x42
    assert_eq!((r.state.esr_el1, r.state.elr_el1), (0xf200_0042, CODE));
    let r = run(&[0x0000_0000], &[]); // udf #0
    assert_eq!((r.state.esr_el1, r.state.elr_el1), (0x0200_0000, CODE));
    let r = run(&[0xd53c2000], &[]); // mrs x0, ttbr0_el2
    assert_eq!((r.state.esr_el1, r.state.elr_el1), (0x0200_0000, CODE));
}

#[test]
fn mmu_off_data_accesses_must_be_aligned() {
    let r = run(&[0xf9400020], &[0, DATA + 1]); // ldr x0, [x1]
    assert_eq!(r.state.esr_el1, 0x9600_0021);
    assert_eq!(r.state.far_el1, DATA + 1);
    let r = run(&[0xf9000020], &[0, DATA + 4]); // str x0, [x1]
    assert_eq!(r.state.esr_el1, 0x9600_0061, "WnR for a store");
    let r = run(&[0xf9400020], &[0, DATA + 8]);
    assert_eq!(r.state.esr_el1, 0, "aligned: no fault");
}

#[test]
fn sp_alignment_and_pc_alignment() {
    // sctlr_el1 = x0 (SA set, MMU off); ldr x0, [sp] with SP misaligned.
    let mut s = entry_state();
    s.x[0] = 0x30d5_0818;
    s.sp_el1 = STACK + 8;
    let r = run_both(&[0xd5181000, 0xf94003e0], s);
    assert_eq!((r.state.esr_el1, r.state.elr_el1), (0x9a00_0000, CODE + 4));
    // br x1 to a misaligned target.
    let r = run(&[0xd61f0020], &[0, DATA + 2]);
    assert_eq!(r.state.esr_el1, 0x8a00_0000);
    assert_eq!((r.state.elr_el1, r.state.far_el1), (DATA + 2, DATA + 2));
}

#[test]
fn el0_traps_and_undefined_registers() {
    let code = [
        0xd53be042, // mrs x2, cntvct_el0   (EL0VCTEN = 0: trap)
    ];
    let mut s = entry_state();
    s.pstate = 0x3c0; // EL0t
    s.sp_el0 = STACK;
    let r = run_both(&code, s.clone());
    assert_eq!(
        r.state.esr_el1, 0x6234_f841,
        "EC 0x18: op0 3, op2 2, op1 3, CRn 14, x2, read"
    );
    assert_eq!((vector(&r), r.state.elr_el1), (0x400, CODE));
    let r = run_both(&[0xd50342df], s.clone()); // msr daifset, #2 (UMA = 0)
    assert_eq!(r.state.esr_el1, 0x620c_d3e4);
    let r = run_both(&[0xd5380003], s.clone()); // mrs x3, midr_el1
    assert_eq!(r.state.esr_el1, 0x0200_0000);
    let r = run_both(&[0xd503207f], s); // wfi with nTWI = 0
    assert_eq!(r.state.esr_el1, 0x07e0_0000, "EC 0x01, CV, COND 0xe, TI 0");
}

#[test]
fn id_registers() {
    let code = [
        0xd5380003, // mrs x3, midr_el1
        0xd53800a4, // mrs x4, mpidr_el1
        0xd5380605, // mrs x5, id_aa64isar0_el1
        0xd5384246, // mrs x6, currentel
    ];
    let r = run(&code, &[]);
    assert_eq!(r.x(3), 0x411f_d070);
    assert_eq!(r.x(4), 0x8000_0000);
    assert_eq!(r.x(5), 2 << 20);
    assert_eq!(r.x(6), 4);
}

#[test]
fn fp_access_trap() {
    // cpacr_el1 = 0: fmov d0, x1 traps with EC 0x07.
    let r = run(&[0xd5181041, 0xd5033fdf, 0x9e670020], &[]);
    assert_eq!((r.state.esr_el1, r.state.elr_el1), (0x1fe0_0000, CODE + 8));
}

#[test]
fn illegal_exception_return() {
    // spsr = EL2h: eret is illegal; the next instruction takes EC 0x0e.
    let code = [
        0xd5184001, // msr spsr_el1, x1
        0xd5184022, // msr elr_el1, x2
        0xd69f03e0, // eret
        0xd503201f, // nop
        0xd503201f, // nop (the eret target)
    ];
    let r = run(&code, &[0, 0x3c9, CODE + 16]);
    assert_eq!(r.state.esr_el1, 0x3a00_0000);
    assert_eq!(r.state.elr_el1, CODE + 16);
    assert_ne!(r.state.spsr_el1 & (1 << 20), 0, "SPSR.IL");
}

#[test]
fn dc_zva_and_at_with_the_mmu_off() {
    for engine in ENGINES {
        let code = [
            0xd50b7421, // dc zva, x1
            0xd5087801, // at s1e1r, x1
            0xd5387407, // mrs x7, par_el1
        ];
        let mem = memory_with(&code);
        mem.write_slice(&[0xffu8; 0x100], GuestAddress(DATA))
            .unwrap();
        let mut s = entry_state();
        s.x[1] = DATA + 0x45;
        let r = run_state(&mem, s, engine, 1000);
        let mut block = [0u8; 0x100];
        mem.read_slice(&mut block, GuestAddress(DATA)).unwrap();
        assert!(block[..0x40].iter().all(|&b| b == 0xff), "{engine:?}");
        assert!(block[0x40..0x80].iter().all(|&b| b == 0), "{engine:?}");
        assert!(block[0x80..].iter().all(|&b| b == 0xff), "{engine:?}");
        // PA, Device-nGnRnE, Outer Shareable, bit 11 RES1.
        assert_eq!(r.x(7), (DATA & !0xfff) | (2 << 7) | (1 << 11), "{engine:?}");
    }
}

#[test]
fn psci_version_features_and_unknown() {
    let code = [
        0xd2b08000,            // mov x0, #0x84000000   PSCI_VERSION
        0xd4000002,            // hvc #0
        0xaa0003e5,            // mov x5, x0
        0xd2b08000,            // mov x0, #0x84000000
        0xf2800060,            // movk x0, #3           CPU_ON (SMC32), x1 = 7: no such CPU
        0xd4000002,            // hvc #0
        0xaa0003e6,            // mov x6, x0
        0xd2b08000,            // mov x0, #0x84000000
        0xf2800000 | (6 << 5), // movk x0, #6  MIGRATE_INFO_TYPE
        0xd4000002,            // hvc #0
        0xaa0003e7,            // mov x7, x0
        0xd2b88000,            // mov x0, #0xc4000000   (not a function)
        0xd4000002,            // hvc #0
        0xaa0003e8,            // mov x8, x0
    ];
    let r = run(&code, &[0, 7]);
    assert_eq!(r.x(5), 0x1_0000);
    assert_eq!(r.x(6), -2i64 as u64);
    assert_eq!(r.x(7), 2);
    assert_eq!(r.x(8), u64::MAX);
}

// ---- the walk itself -------------------------------------------------

const L1: u64 = DATA;
const L2: u64 = DATA + 0x1000;
const L3: u64 = DATA + 0x2000;

fn put(mem: &vm_memory::GuestMemoryMmap, table: u64, index: u64, desc: u64) {
    mem.write_obj(desc, GuestAddress(table + 8 * index))
        .unwrap();
}

/// T0SZ = T1SZ = 25 (39-bit, level 1 start), 4K granules, MAIR attr 0
/// Device, attr 1 Normal WB.
fn walker() -> A64Walker {
    A64Walker {
        sctlr: 0x30d5_0819,
        tcr: 25 | (25 << 16) | (2 << 30) | (2 << 32),
        ttbr0: L1,
        ttbr1: 0,
        mair: 0xff00,
    }
}

#[test]
fn walk_levels_access_flag_and_permissions() {
    let mem = memory_with(&[]);
    let af = 1 << 10;
    let normal = 1 << 2;
    put(&mem, L1, 1, L2 | 3); // 1 GiB..2 GiB: table
    put(&mem, L2, 0, 0x4000_0000 | 1 | af | normal | (3 << 8)); // 2 MiB block
    put(&mem, L2, 2, L3 | 3);
    put(&mem, L3, 0, 0x4010_0000 | 3 | af | normal); // EL1 RW page
    put(&mem, L3, 1, 0x4010_0000 | 3 | normal); // AF = 0
    put(&mem, L3, 2, 0x4010_0000 | 3 | af | normal | (2 << 6)); // EL1 RO
    put(&mem, L3, 3, 0x4010_0000 | 3 | af | normal | (1 << 6)); // EL0 RW: PXN implied
    put(&mem, L3, 4, 0x4010_0000 | 3 | af); // Device
    let w = walker();
    let va = 0x4040_0000;
    let ok = mmu::walk(&w, &mem, 0x4000_1234, Access::Read, 1).unwrap();
    assert_eq!((ok.paddr, ok.attr, ok.sh), (0x4000_1234, 0xff, 3));
    let p = mmu::walk(&w, &mem, va + 0x10, Access::Write, 1).unwrap();
    assert_eq!(p.paddr, 0x4010_0010);
    assert_eq!(p.perms, PagePerms::RWX);
    assert_eq!(
        mmu::walk(&w, &mem, va, Access::Read, 0),
        Err(fsc::PERMISSION + 3),
        "EL0 has no access"
    );
    assert_eq!(
        mmu::walk(&w, &mem, va + 0x1000, Access::Read, 1),
        Err(fsc::ACCESS_FLAG + 3)
    );
    assert_eq!(
        mmu::walk(&w, &mem, va + 0x2000, Access::Write, 1),
        Err(fsc::PERMISSION + 3)
    );
    assert_eq!(
        mmu::walk(&w, &mem, va + 0x3000, Access::Exec, 1),
        Err(fsc::PERMISSION + 3)
    );
    assert!(mmu::walk(&w, &mem, va + 0x3000, Access::Exec, 0).is_ok());
    let dev = mmu::walk(&w, &mem, va + 0x4000, Access::Read, 1).unwrap();
    assert!(dev.device());
    assert_eq!(dev.sh, 2);
    assert_eq!(
        mmu::walk(&w, &mem, va + 0x5000, Access::Read, 1),
        Err(fsc::TRANSLATION + 3)
    );
    assert_eq!(
        mmu::walk(&w, &mem, 0x8000_0000, Access::Read, 1),
        Err(fsc::TRANSLATION + 1)
    );
    assert_eq!(
        mmu::walk(&w, &mem, 0x4060_0000, Access::Read, 1),
        Err(fsc::TRANSLATION + 2)
    );
    // Outside both ranges; TTBR1 disabled by EPD1.
    assert_eq!(
        mmu::walk(&w, &mem, 1 << 40, Access::Read, 1),
        Err(fsc::TRANSLATION)
    );
    let w1 = A64Walker {
        tcr: w.tcr | (1 << 23),
        ..w
    };
    assert_eq!(
        mmu::walk(&w1, &mem, 0xffff_ff80_0000_0000, Access::Read, 1),
        Err(fsc::TRANSLATION)
    );
    // WXN: a writable page is not executable.
    let wx = A64Walker {
        sctlr: w.sctlr | (1 << 19),
        ..w
    };
    assert_eq!(
        mmu::walk(&wx, &mem, va, Access::Exec, 1),
        Err(fsc::PERMISSION + 3)
    );
}

#[test]
fn walk_with_a_64k_granule() {
    let mem = memory_with(&[]);
    // T0SZ = 25, 64K: level 2 start (bits 38:29), then level 3 (28:16).
    let w = A64Walker {
        tcr: 25 | (1 << 14) | (2 << 32),
        ttbr0: L1,
        ..walker()
    };
    put(&mem, L1, 2, (DATA + 0x10000) | 3);
    put(
        &mem,
        DATA + 0x10000,
        0,
        0x4030_0000 | 3 | (1 << 10) | (1 << 2),
    );
    let t = mmu::walk(&w, &mem, 0x4000_1234, Access::Read, 1).unwrap();
    assert_eq!(t.paddr, 0x4030_1234);
}
