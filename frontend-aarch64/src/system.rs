//! System instructions finished in Rust: `msr`/`mrs`, `msr <pstatefield>,
//! #imm`, `sys` (cache, TLB and address-translation maintenance) and `wfi`.
//!
//! Translated code ends its block with `exit_status(SYSTEM | word << 32)`
//! ([`crate::translate::status::system`]); [`execute`] runs the
//! instruction against the CPU and continues at the next one.
//!
//! **To be completed** (the system helper): TLBI by address/ASID (now: a
//! full flush), AT (PAR_EL1), DC ZVA (DCZID_EL0 says prohibited for now),
//! the remaining PSTATE fields (PAN, UAO, SSBS), EL0 cache maintenance
//! checks, and WFI wake-up on GIC and timer interrupts beyond
//! `interrupt_pending`.

use accel_tcg::guest::{GuestEvent, Platform};
use accel_tcg::softmmu::CpuState;

use crate::cpu::A64Cpu;
use crate::state::pstate;
use crate::sysregs::{self, SysReg};

/// SCTLR_EL1.UMA: EL0 may change DAIF.
const SCTLR_UMA: u64 = 1 << 9;

/// Runs the system instruction `word` at `pc`.
pub fn execute(cpu: &mut A64Cpu, word: u32, pc: u64, platform: &Platform<'_>) -> GuestEvent {
    let next = pc.wrapping_add(4);
    let el = cpu.state.el;
    let ok = if word & 0xffff_f01f == 0xd503_201f {
        // HINT space: only WFI comes here.
        cpu.state.pc = next;
        if platform.interrupts.interrupt_pending(platform.cpu) {
            return GuestEvent::Continue;
        }
        cpu.halted = true;
        return GuestEvent::Wait;
    } else if word & 0xfff8_f01f == 0xd500_401f {
        msr_pstate(cpu, word, el)
    } else if word & 0xfff8_0000 == 0xd508_0000 {
        // SYS with L = 0: maintenance.
        sys(cpu, word, el)
    } else if word & 0xffd0_0000 == 0xd510_0000 {
        mrs_msr(cpu, word, el)
    } else {
        false
    };
    if !ok {
        cpu.undefined(pc);
        return GuestEvent::Continue;
    }
    cpu.state.pc = next;
    if cpu.state.daif & pstate::I == 0 && platform.interrupts.interrupt_pending(platform.cpu) {
        cpu.state.header().request_exit();
    }
    GuestEvent::Continue
}

fn msr_pstate(cpu: &mut A64Cpu, word: u32, el: u64) -> bool {
    let op1 = (word >> 16) & 7;
    let op2 = (word >> 5) & 7;
    let imm = u64::from((word >> 8) & 0xf);
    let s = &mut *cpu.state;
    match (op1, op2) {
        (0, 5) if el >= 1 => {
            s.set_el_sp(el, imm & 1);
            true
        }
        (3, 6) | (3, 7) => {
            if el == 0 && s.sctlr_el1 & SCTLR_UMA == 0 {
                return false;
            }
            let bits = (imm << 6) & pstate::DAIF;
            if op2 == 6 {
                s.daif |= bits;
            } else {
                s.daif &= !bits;
            }
            true
        }
        _ => {
            log::debug!("aarch64: msr to PSTATE field op1={op1} op2={op2} not modelled");
            false
        }
    }
}

fn sys(cpu: &mut A64Cpu, word: u32, el: u64) -> bool {
    let r = SysReg::from_word(word);
    match r.crn {
        // TLBI: flush everything (by-address forms included).
        8 if el >= 1 => {
            cpu.state.header().tlb.flush();
            true
        }
        // IC / DC maintenance: no caches are modelled.
        7 => true,
        _ => {
            log::debug!("aarch64: sys {r:?} not modelled");
            el >= 1
        }
    }
}

fn mrs_msr(cpu: &mut A64Cpu, word: u32, el: u64) -> bool {
    let r = SysReg::from_word(word);
    let rt = (word & 31) as usize;
    let s = &mut *cpu.state;
    if word & (1 << 21) != 0 {
        match sysregs::read(s, r, el) {
            Ok(v) => {
                if rt != 31 {
                    s.x[rt] = v;
                }
                true
            }
            Err(_) => false,
        }
    } else {
        let v = if rt == 31 { 0 } else { s.x[rt] };
        let ok = sysregs::write(s, r, el, v).is_ok();
        // SCTLR, TCR, TTBR0/1, MAIR change translation: the block ended
        // here, and the TLBs hold stale entries.
        if ok && r.op0 == 3 && r.op1 == 0 && matches!((r.crn, r.crm), (1, 0) | (2, 0) | (10, 2)) {
            s.header().tlb.flush();
        }
        ok
    }
}
