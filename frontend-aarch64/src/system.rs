//! System instructions finished in Rust: `msr`/`mrs`, `msr <pstatefield>,
//! #imm`, `sys` (cache, TLB and address-translation maintenance) and `wfi`.
//!
//! Translated code ends its block with `exit_status(SYSTEM | word << 32)`
//! ([`crate::translate::status::system`]); [`execute`] runs the
//! instruction against the CPU and continues at the next one. A denied
//! access raises Undefined Instruction (EC 0x00), the MSR/MRS trap (EC
//! 0x18, ISS built from the instruction word as Arm ARM D13.2.37 draws
//! it) or the FP access trap (EC 0x07).
//!
//! * TLBI (D5.10): every form flushes this vCPU's soft TLB (it has no
//!   ASID or VMID tags; by-address forms flush everything too). The
//!   Inner Shareable forms also bump a broadcast generation and kick the
//!   other vCPUs, which flush at their next block boundary
//!   ([`crate::A64Cpu`]'s `poll_interrupts`). The DSB that follows does not
//!   wait for them: a remote vCPU may finish the block it runs with the
//!   old mappings.
//! * IC/DC: no caches are modelled; code modified by stores is already
//!   invalidated by the exec loop's self-modifying-code detection, so IC
//!   IVAU/IALLU(IS) have nothing left to do. `DC ZVA` is translated to
//!   stores ([`crate::translate::system`]); only its EL0 trap comes here.
//! * AT S1E1R/W, S1E0R/W (D5.9): the walk for that regime and access,
//!   into PAR_EL1 (PA, MAIR attribute, SH; or F = 1 and the FST).
//! * WFI: `GuestEvent::Wait` unless an interrupt is already pending (the
//!   wait ends on any pending interrupt, masked or not, D1.16.2).
//! * WFE, SEV, SEVL (D1.16.1): each vCPU has an event register (in the
//!   lifecycle, so SEV reaches the others and kicks them; ERET sets it too). WFE consumes a
//!   set event and goes on, goes on at a pending interrupt, and otherwise
//!   sleeps until SEV or an interrupt, as WFI does. One wake-up source moat
//!   cannot see is another CPU's store clearing this CPU's exclusive
//!   monitor (the unlock of a spinlock waited on with `ldaxr; wfe`): while
//!   the monitor is armed, WFE only yields the host thread and goes on — a
//!   spurious wake-up, which the architecture allows — instead of sleeping
//!   through the unlock.

use std::sync::atomic::{AtomicU64, Ordering};

use accel_tcg::guest::{GuestEvent, Platform};
use accel_tcg::softmmu::{Access, CpuState};

use crate::cpu::A64Cpu;
use crate::exceptions::{ExceptionKind, ISS_CV_AL, ec, syndrome};
use crate::mmu;
use crate::state::{MMU_EL0, MMU_EL1, pstate};
use crate::sysregs::{self, Denied, SCTLR_UMA, SysReg};

/// SCTLR_EL1.nTWI: EL0 may execute WFI.
const SCTLR_NTWI: u64 = 1 << 16;
/// SCTLR_EL1.nTWE: EL0 may execute WFE.
const SCTLR_NTWE: u64 = 1 << 18;
/// SCTLR_EL1.UCI: EL0 may execute the cache maintenance it is allowed.
const SCTLR_UCI: u64 = 1 << 26;

/// Counts broadcast TLB invalidations (TLBI ...IS). Process-wide: a
/// second VM in the same process only sees spurious flushes.
pub static TLBI_BROADCASTS: AtomicU64 = AtomicU64::new(0);

/// The ISS of an EC 0x18 trap of instruction `word` (D13.2.37: Op0,
/// Op2, Op1, CRn, Rt, CRm, Direction = 1 for reads).
pub fn sys_iss(word: u32) -> u32 {
    let f = |hi: u32, lo: u32| (word >> lo) & ((1 << (hi - lo + 1)) - 1);
    (f(20, 19) << 20)
        | (f(7, 5) << 17)
        | (f(18, 16) << 14)
        | (f(15, 12) << 10)
        | (f(4, 0) << 5)
        | (f(11, 8) << 1)
        | f(21, 21)
}

/// WFE, WFI, SEV, SEVL (`op` = CRm:op2 of the hint) at `pc`.
fn hint(cpu: &mut A64Cpu, op: u32, pc: u64, platform: &Platform<'_>) -> GuestEvent {
    let next = pc.wrapping_add(4);
    let wfe = op == 2;
    if op == 4 {
        cpu.state.pc = next;
        platform.lifecycle.send_event();
        return GuestEvent::Continue;
    }
    if op == 5 {
        cpu.state.pc = next;
        platform.lifecycle.set_event(platform.cpu);
        return GuestEvent::Continue;
    }
    let trapped = if wfe { SCTLR_NTWE } else { SCTLR_NTWI };
    if cpu.state.el == 0 && cpu.state.sctlr_el1 & trapped == 0 {
        cpu.state.pc = pc;
        // ISS.TI (bit 0): 1 for WFE.
        let iss = ISS_CV_AL | u32::from(wfe);
        cpu.take_exception(ExceptionKind::Sync, syndrome(ec::WFX, iss), None);
        return GuestEvent::Continue;
    }
    cpu.state.pc = next;
    if platform.interrupts.interrupt_pending(platform.cpu) {
        return GuestEvent::Continue;
    }
    if wfe {
        if platform.lifecycle.take_event(platform.cpu) {
            return GuestEvent::Continue;
        }
        if cpu.state.excl_addr != crate::state::EXCL_NONE {
            std::thread::yield_now();
            return GuestEvent::Continue;
        }
        cpu.waiting_for_event = true;
    }
    cpu.halted = true;
    GuestEvent::Wait
}

/// Runs the system instruction `word` at `pc`.
pub fn execute(cpu: &mut A64Cpu, word: u32, pc: u64, platform: &Platform<'_>) -> GuestEvent {
    let next = pc.wrapping_add(4);
    let el = cpu.state.el;
    let result = if word & 0xffff_f01f == 0xd503_201f {
        // HINT space: WFE (2), WFI (3), SEV (4), SEVL (5) come here.
        return hint(cpu, (word >> 5) & 0x7f, pc, platform);
    } else if word & 0xfff8_f01f == 0xd500_401f {
        msr_pstate(cpu, word, el)
    } else if word & 0xfff8_0000 == 0xd508_0000 {
        // SYS with L = 0: maintenance.
        sys(cpu, word, el, platform)
    } else if word & 0xffd0_0000 == 0xd510_0000 {
        mrs_msr(cpu, word, el, platform)
    } else {
        Err(Denied::Undefined)
    };
    cpu.state.pc = pc;
    match result {
        Ok(()) => {}
        Err(Denied::Undefined) => {
            cpu.undefined(pc);
            return GuestEvent::Continue;
        }
        Err(Denied::Trap) => {
            let esr = syndrome(ec::SYS, sys_iss(word));
            cpu.take_exception(ExceptionKind::Sync, esr, None);
            return GuestEvent::Continue;
        }
        Err(Denied::FpTrap) => {
            let esr = syndrome(ec::FP_ACCESS, ISS_CV_AL);
            cpu.take_exception(ExceptionKind::Sync, esr, None);
            return GuestEvent::Continue;
        }
    }
    cpu.state.pc = next;
    if cpu.state.daif & pstate::I == 0 && platform.interrupts.interrupt_pending(platform.cpu) {
        cpu.state.header().request_exit();
    }
    GuestEvent::Continue
}

fn msr_pstate(cpu: &mut A64Cpu, word: u32, el: u64) -> Result<(), Denied> {
    let op1 = (word >> 16) & 7;
    let op2 = (word >> 5) & 7;
    let imm = u64::from((word >> 8) & 0xf);
    let s = &mut *cpu.state;
    match (op1, op2) {
        (0, 5) if el >= 1 => {
            s.set_el_sp(el, imm & 1);
            Ok(())
        }
        (3, 6) | (3, 7) => {
            if el == 0 && s.sctlr_el1 & SCTLR_UMA == 0 {
                return Err(Denied::Trap);
            }
            let bits = (imm << 6) & pstate::DAIF;
            if op2 == 6 {
                s.daif |= bits;
            } else {
                s.daif &= !bits;
            }
            Ok(())
        }
        _ => {
            log::debug!("aarch64: msr to PSTATE field op1={op1} op2={op2} not modelled");
            Err(Denied::Undefined)
        }
    }
}

fn sys(cpu: &mut A64Cpu, word: u32, el: u64, platform: &Platform<'_>) -> Result<(), Denied> {
    let r = SysReg::from_word(word);
    let rt = (word & 31) as usize;
    match (r.op1, r.crn, r.crm, r.op2) {
        // TLBI (op1 0 at EL1).
        (0, 8, crm, _) if el >= 1 => {
            cpu.state.header().tlb.flush();
            if crm == 3 {
                broadcast_tlbi(platform);
            }
            Ok(())
        }
        // AT S1E1R/W, S1E0R/W.
        (0, 7, 8, op2 @ 0..=3) if el >= 1 => {
            let va = if rt == 31 { 0 } else { cpu.state.x[rt] };
            at(cpu, va, op2, platform);
            Ok(())
        }
        // IC IALLUIS, IC IALLU: EL1 only.
        (0, 7, 1 | 5, 0) if el >= 1 => Ok(()),
        // DC IVAC, ISW, CSW, CISW: EL1 only.
        (0, 7, 6, 1 | 2) | (0, 7, 10 | 14, 2) if el >= 1 => Ok(()),
        // IC IVAU, DC CVAC, CVAU, CIVAC: EL0 with SCTLR_EL1.UCI.
        (3, 7, 5, 1) | (3, 7, 10 | 11 | 14, 1) => {
            if el == 0 && cpu.state.sctlr_el1 & SCTLR_UCI == 0 {
                return Err(Denied::Trap);
            }
            Ok(())
        }
        // DC ZVA at EL0 with SCTLR_EL1.DZE = 0 (otherwise translated).
        (3, 7, 4, 1) => Err(Denied::Trap),
        _ => {
            log::debug!("aarch64: sys {r:?} not allocated");
            Err(Denied::Undefined)
        }
    }
}

fn broadcast_tlbi(platform: &Platform<'_>) {
    TLBI_BROADCASTS.fetch_add(1, Ordering::SeqCst);
    for other in (0..platform.cpus).filter(|&c| c != platform.cpu) {
        platform.lifecycle.vcpu(other).kick();
    }
}

/// AT: translates `va` for the regime and access `op2` names into PAR_EL1.
fn at(cpu: &mut A64Cpu, va: u64, op2: u32, platform: &Platform<'_>) {
    use accel_tcg::guest::GuestCpu;
    let access = if op2 & 1 == 0 {
        Access::Read
    } else {
        Access::Write
    };
    let idx = usize::from(if op2 >= 2 { MMU_EL0 } else { MMU_EL1 });
    let walker = cpu.walker();
    cpu.state.par_el1 = match mmu::walk(&walker, platform.memory, va, access, idx) {
        Ok(w) => {
            (u64::from(w.attr) << 56)
                | (w.paddr & 0x000f_ffff_ffff_f000)
                | (u64::from(w.sh) << 7)
                | (1 << 11) // RES1
        }
        Err(fst) => 1 | (u64::from(fst) << 1) | (1 << 11),
    };
}

fn mrs_msr(cpu: &mut A64Cpu, word: u32, el: u64, platform: &Platform<'_>) -> Result<(), Denied> {
    let r = SysReg::from_word(word);
    let rt = (word & 31) as usize;
    let mut ctx = sysregs::Ctx {
        irq: platform.interrupts,
        cpu: platform.cpu,
        csselr: &mut cpu.csselr,
    };
    let s = &mut *cpu.state;
    if word & (1 << 21) != 0 {
        let v = sysregs::read(s, &mut ctx, r, el)?;
        if rt != 31 {
            s.x[rt] = v;
        }
        return Ok(());
    }
    let v = if rt == 31 { 0 } else { s.x[rt] };
    let before = (s.sctlr_el1, s.tcr_el1, s.ttbr0_el1, s.ttbr1_el1, s.mair_el1);
    sysregs::write(s, &mut ctx, r, el, v)?;
    // SCTLR, TCR, TTBR0/1 (base or ASID: the TLB has no ASID tags) and
    // MAIR decide translations: the block ended here, drop stale entries.
    if before != (s.sctlr_el1, s.tcr_el1, s.ttbr0_el1, s.ttbr1_el1, s.mair_el1) {
        s.header().tlb.flush();
    }
    Ok(())
}
