//! Exception entry: Undefined Instruction for unallocated and untranslated
//! words, SVC/HVC/BRK, alignment and PC alignment faults, from EL1 and EL0,
//! and `eret`; system registers through `mrs`/`msr`.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;

/// The address of the vector slot the run ended in.
fn vector_slot(r: &Run) -> u64 {
    r.state.pc - 4 * EPILOGUE.len() as u64
}

/// Runs `nop; word` at EL1 (or EL0 with `el0`) and returns the run.
fn raise(word: u32, regs: &[u64], el0: bool) -> Run {
    let mut s = entry_state();
    s.x[..regs.len()].copy_from_slice(regs);
    if el0 {
        s.pstate = 0;
        s.sp_el0 = STACK - 0x1000;
    }
    run_both(&[0xd503201f, word], s)
}

const INSN: u64 = CODE + 4;

#[test]
fn undefined_instruction() {
    for word in [
        0x0000_0000, // udf #0 (unallocated)
        0xd400_0003, // smc #0 (no EL3)
        0xd69f_03e1, // eret with op4 != 0: unallocated
    ] {
        let r = raise(word, &[], false);
        assert_eq!(r.ec(), 0, "{word:#x}");
        assert_eq!(r.state.esr_el1, 1 << 25, "{word:#x}");
        assert_eq!(r.state.elr_el1, INSN, "{word:#x}");
        assert_eq!(r.state.spsr_el1, 0x3c5);
        assert_eq!(vector_slot(&r), VECTORS + 0x200);
    }
}

#[test]
fn svc_hvc_brk() {
    // svc #0x1234: preferred return is the next instruction.
    let r = raise(0xd402_4681, &[], false);
    assert_eq!((r.ec(), r.state.esr_el1 & 0xffff), (0x15, 0x1234));
    assert_eq!(r.state.elr_el1, INSN + 4);
    // hvc #5 (not the PSCI conduit): no EL2, so UNDEFINED.
    let r = raise(0xd400_00a2, &[], false);
    assert_eq!((r.ec(), r.state.elr_el1), (0, INSN));
    // brk #7: preferred return is the brk itself.
    let r = raise(0xd420_00e0, &[], false);
    assert_eq!((r.ec(), r.state.esr_el1 & 0xffff), (0x3c, 7));
    assert_eq!(r.state.elr_el1, INSN);
}

#[test]
fn from_el0_to_the_lower_el_vector() {
    let r = raise(0xd402_4681, &[], true);
    assert_eq!(r.ec(), 0x15);
    assert_eq!(r.state.spsr_el1, 0);
    assert_eq!(vector_slot(&r), VECTORS + 0x400);
    // mrs x1, currentel is UNDEFINED at EL0; hvc too.
    for word in [0xd538_4241, 0xd400_0002] {
        let r = raise(word, &[], true);
        assert_eq!((r.ec(), r.state.elr_el1), (0, INSN));
    }
}

#[test]
fn alignment_faults() {
    // ldxr x1, [x0] at an odd address: Data Abort, alignment fault.
    let r = raise(0xc85f_7c01, &[DATA + 1], false);
    assert_eq!(r.ec(), 0x25);
    assert_eq!(r.state.esr_el1 & 0x3f, 0x21);
    assert_eq!((r.state.far_el1, r.state.elr_el1), (DATA + 1, INSN));
    // br x0 to CODE + 2: PC alignment fault on the target.
    let r = raise(0xd61f_0000, &[CODE + 2], false);
    assert_eq!(r.ec(), 0x22);
    assert_eq!((r.state.far_el1, r.state.elr_el1), (CODE + 2, CODE + 2));
}

#[test]
fn eret_to_el0_and_back() {
    let code = [
        0xd538_4241, // mrs x1, currentel
        0xd538_4202, // mrs x2, spsel
        0xd500_40bf, // msr spsel, #0
        0x9100_03e3, // mov x3, sp
        0xd500_41bf, // msr spsel, #1
        0xd69f_03e0, // eret (to ELR = el0 code, SPSR = EL0t)
    ];
    let el0 = [
        0xd53b_d045, // mrs x5, tpidr_el0
        0xd402_4681, // svc #0x1234
    ];
    let mem = memory_with(&code);
    let el0_code = CODE + 0x1000;
    write_words(&mem, el0_code, &el0);
    for engine in ENGINES {
        let mut s = entry_state();
        s.sp_el0 = 0x1234_0000;
        s.elr_el1 = el0_code;
        s.spsr_el1 = 0x6000_0000;
        s.tpidr_el0 = 0x77;
        let r = run_state(&mem, s, engine, 1000);
        assert_eq!(r.exit, Some(machine::VcpuExit::Shutdown(0)));
        assert_eq!((r.x(1), r.x(2), r.x(3), r.x(5)), (4, 1, 0x1234_0000, 0x77));
        assert_eq!(r.ec(), 0x15);
        assert_eq!(r.state.elr_el1, el0_code + 8);
        // NZCV came back from SPSR at eret and went into SPSR at svc.
        assert_eq!(r.state.spsr_el1, 0x6000_0000);
        assert_eq!(vector_slot(&r), VECTORS + 0x400);
    }
}
