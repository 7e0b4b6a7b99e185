//! The IR verifier: checks the rules listed in [`crate::ir`].
//!
//! Front ends run it in debug builds after building a block, and the
//! optimizer runs it after its passes in debug builds, so a pass that breaks a
//! block is caught where it happens rather than as wrong guest behaviour.

use super::{Block, Op, OpFlags, Ty};
use crate::softmmu::{HEADER_SIZE, NB_MMU_MODES};

/// Why a block is malformed. `op` is the index of the offending op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// An operand names a temp the block does not have.
    #[error("op {op}: temp t{temp} does not exist")]
    NoSuchTemp {
        /// op index
        op: usize,
        /// temp index
        temp: u32,
    },
    /// An operand has the wrong width.
    #[error("op {op}: temp t{temp} is {found:?}, expected {expected:?}")]
    TypeMismatch {
        /// op index
        op: usize,
        /// temp index
        temp: u32,
        /// its type
        found: Ty,
        /// the type the op needs
        expected: Ty,
    },
    /// A 64-bit-only op on 32-bit temps, or the reverse.
    #[error("op {op}: {name} is not defined on {ty:?}")]
    BadWidth {
        /// op index
        op: usize,
        /// op name
        name: &'static str,
        /// the op's type
        ty: Ty,
    },
    /// An 8-byte access into a 32-bit temp.
    #[error("op {op}: 8-byte access with a 32-bit temp")]
    AccessTooWide {
        /// op index
        op: usize,
    },
    /// `ld_env`/`st_env` outside the guest part of the CPU state.
    #[error(
        "op {op}: CPU-state access at {offset:#x} (+{size}) is outside {header:#x}..{env_size:#x}"
    )]
    EnvOutOfRange {
        /// op index
        op: usize,
        /// offset
        offset: u32,
        /// access size
        size: u32,
        /// size of the header, which IR must not touch
        header: usize,
        /// size of the CPU state
        env_size: usize,
    },
    /// A label index the block never allocated.
    #[error("op {op}: label L{label} does not exist")]
    NoSuchLabel {
        /// op index
        op: usize,
        /// label
        label: u32,
    },
    /// A label set twice.
    #[error("op {op}: label L{label} is set twice")]
    LabelSetTwice {
        /// op index
        op: usize,
        /// label
        label: u32,
    },
    /// A branch to a label that was already set (only forward branches).
    #[error("op {op}: branch back to L{label}; branches must go forward")]
    BackwardBranch {
        /// op index
        op: usize,
        /// label
        label: u32,
    },
    /// A branch to a label that is never set.
    #[error("label L{label} is used but never set")]
    LabelNotSet {
        /// label
        label: u32,
    },
    /// A call to an unregistered helper or with the wrong argument count.
    #[error("op {op}: bad helper call: {why}")]
    BadCall {
        /// op index
        op: usize,
        /// what is wrong
        why: &'static str,
    },
    /// A guest memory access through a soft-MMU index the TLB does not have.
    #[error("op {op}: soft-MMU index {mmu_idx} is not below {NB_MMU_MODES}")]
    BadMmuIdx {
        /// op index
        op: usize,
        /// the index
        mmu_idx: u8,
    },
    /// `goto_tb` with a slot other than 0 or 1.
    #[error("op {op}: chain slot {slot} is not 0 or 1")]
    BadSlot {
        /// op index
        op: usize,
        /// slot
        slot: u8,
    },
    /// The temp of a pending `st_env_fault` is redefined while the store is
    /// pending (fault paths would store the new value).
    #[error("op {op}: t{temp} is redefined while the st_env_fault at op {store} is pending")]
    PendingRedefined {
        /// the redefining op
        op: usize,
        /// the temp
        temp: u32,
        /// the st_env_fault
        store: usize,
    },
    /// Control can fall off the end of the block.
    #[error("the block does not end with an exit op")]
    NoExit,
}

/// Checks `blk` against the IR rules; `env_size` is the size in bytes of the
/// CPU state the block will run against.
pub fn verify(blk: &Block, env_size: usize) -> Result<(), VerifyError> {
    let nlabels = blk.num_labels();
    // 0: not seen, 1: referenced (not yet set), 2: set.
    let mut label_state = vec![0u8; nlabels];
    for (i, insn) in blk.insns.iter().enumerate() {
        let op = &insn.op;
        let opc = op.opcode();
        let flags = opc.flags();
        let mut err = None;
        op.typed_operands(insn.ty, |t, want| {
            if err.is_some() {
                return;
            }
            if t.index() >= blk.num_temps() {
                err = Some(VerifyError::NoSuchTemp { op: i, temp: t.0 });
                return;
            }
            if let Some(want) = want {
                let found = blk.ty(t);
                if found != want {
                    err = Some(VerifyError::TypeMismatch {
                        op: i,
                        temp: t.0,
                        found,
                        expected: want,
                    });
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        if (flags.has(OpFlags::ONLY64) && insn.ty != Ty::I64)
            || (flags.has(OpFlags::ONLY32) && insn.ty != Ty::I32)
        {
            return Err(VerifyError::BadWidth {
                op: i,
                name: opc.name(),
                ty: insn.ty,
            });
        }
        match *op {
            Op::QemuLd { mop, .. }
            | Op::QemuSt { mop, .. }
            | Op::AtomicRmw { mop, .. }
            | Op::AtomicCmpxchg { mop, .. }
                if insn.ty == Ty::I32 && mop.size.bytes() == 8 =>
            {
                return Err(VerifyError::AccessTooWide { op: i });
            }
            Op::QemuLd { mop, .. }
            | Op::QemuSt { mop, .. }
            | Op::AtomicRmw { mop, .. }
            | Op::AtomicCmpxchg { mop, .. }
                if mop.mmu_idx as usize >= NB_MMU_MODES =>
            {
                return Err(VerifyError::BadMmuIdx {
                    op: i,
                    mmu_idx: mop.mmu_idx,
                });
            }
            Op::LdEnv { off, mop, .. }
            | Op::StEnv { off, mop, .. }
            | Op::StEnvFault { off, mop, .. } => {
                if insn.ty == Ty::I32 && mop.size.bytes() == 8 {
                    return Err(VerifyError::AccessTooWide { op: i });
                }
                let size = mop.size.bytes();
                let end = off as usize + size as usize;
                if (off as usize) < HEADER_SIZE || end > env_size {
                    return Err(VerifyError::EnvOutOfRange {
                        op: i,
                        offset: off,
                        size,
                        header: HEADER_SIZE,
                        env_size,
                    });
                }
            }
            Op::SetLabel { l } => {
                let s = label_state
                    .get_mut(l.0 as usize)
                    .ok_or(VerifyError::NoSuchLabel { op: i, label: l.0 })?;
                if *s == 2 {
                    return Err(VerifyError::LabelSetTwice { op: i, label: l.0 });
                }
                *s = 2;
            }
            Op::Br { l } | Op::Brcond { l, .. } => {
                let s = label_state
                    .get_mut(l.0 as usize)
                    .ok_or(VerifyError::NoSuchLabel { op: i, label: l.0 })?;
                if *s == 2 {
                    return Err(VerifyError::BackwardBranch { op: i, label: l.0 });
                }
                *s = 1;
            }
            Op::Call { ret, helper, args } => {
                let h = blk.get_helper(helper).ok_or(VerifyError::BadCall {
                    op: i,
                    why: "no such helper",
                })?;
                if h.func.nargs() != args.as_slice().len() {
                    return Err(VerifyError::BadCall {
                        op: i,
                        why: "argument count differs from the helper's",
                    });
                }
                for &t in args.as_slice() {
                    if t.index() >= blk.num_temps() {
                        return Err(VerifyError::NoSuchTemp { op: i, temp: t.0 });
                    }
                }
                if let Some(r) = ret.filter(|r| r.index() >= blk.num_temps()) {
                    return Err(VerifyError::NoSuchTemp { op: i, temp: r.0 });
                }
            }
            Op::GotoTb { slot, .. } if slot > 1 => {
                return Err(VerifyError::BadSlot { op: i, slot });
            }
            _ => {}
        }
    }
    for (i, insn) in blk.insns.iter().enumerate() {
        let Op::StEnvFault { v, off, mop } = insn.op else {
            continue;
        };
        let end = off + mop.size.bytes();
        for (j, later) in blk.insns.iter().enumerate().skip(i + 1) {
            let mut redefined = false;
            later.op.for_each_def(|t| redefined |= t == v);
            if redefined {
                return Err(VerifyError::PendingRedefined {
                    op: j,
                    temp: v.0,
                    store: i,
                });
            }
            let ends = match later.op {
                Op::StEnv { off: o, mop: m, .. } => o < end && off < o + m.size.bytes(),
                op => op.opcode().flags().has(OpFlags::BB_END),
            };
            if ends {
                break;
            }
        }
    }
    if let Some(l) = label_state.iter().position(|&s| s == 1) {
        return Err(VerifyError::LabelNotSet { label: l as u32 });
    }
    match blk.insns.last() {
        Some(last) if last.op.opcode().flags().has(OpFlags::EXIT) => Ok(()),
        _ => Err(VerifyError::NoExit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Cond, MemOp};

    const ENV: usize = HEADER_SIZE + 256;

    #[test]
    fn rejects_type_mismatch() {
        let mut b = Block::new(0);
        let a = b.temp32();
        let c = b.temp64();
        b.add(a, a, c);
        b.exit_status(0);
        assert!(matches!(
            verify(&b, ENV),
            Err(VerifyError::TypeMismatch { op: 0, temp: 1, .. })
        ));
    }

    #[test]
    fn rejects_backward_branch_and_unset_label() {
        let mut b = Block::new(0);
        let l = b.label();
        b.set_label(l);
        b.br(l);
        b.exit_status(0);
        assert!(matches!(
            verify(&b, ENV),
            Err(VerifyError::BackwardBranch { .. })
        ));
        let mut b = Block::new(0);
        let l = b.label();
        let t = b.const_temp(Ty::I64, 1);
        b.brcond(t, t, Cond::Eq, l);
        b.exit_status(0);
        assert_eq!(verify(&b, ENV), Err(VerifyError::LabelNotSet { label: 0 }));
    }

    #[test]
    fn rejects_env_outside_guest_state_and_missing_exit() {
        let mut b = Block::new(0);
        let t = b.temp64();
        b.ld_env(t, 0, MemOp::Q);
        b.exit_status(0);
        assert!(matches!(
            verify(&b, ENV),
            Err(VerifyError::EnvOutOfRange { .. })
        ));
        let mut b = Block::new(0);
        let t = b.temp64();
        b.ld_env(t, (ENV - 4) as u32, MemOp::Q);
        assert!(matches!(
            verify(&b, ENV),
            Err(VerifyError::EnvOutOfRange { .. })
        ));
        let mut b = Block::new(0);
        let t = b.temp64();
        b.ld_env(t, HEADER_SIZE as u32, MemOp::Q);
        assert_eq!(verify(&b, ENV), Err(VerifyError::NoExit));
    }

    #[test]
    fn rejects_width_errors() {
        let mut b = Block::new(0);
        let t = b.temp32();
        b.bswap64(t, t);
        b.exit_status(0);
        assert!(matches!(verify(&b, ENV), Err(VerifyError::BadWidth { .. })));
        let mut b = Block::new(0);
        let t = b.temp32();
        let a = b.temp64();
        b.qemu_ld(t, a, MemOp::Q);
        b.exit_status(0);
        assert_eq!(verify(&b, ENV), Err(VerifyError::AccessTooWide { op: 0 }));
    }

    #[test]
    fn checks_mmu_indexes() {
        let mut b = Block::new(0);
        let a = b.temp64();
        b.qemu_ld(a, a, MemOp::Q.mmu(NB_MMU_MODES as u8 - 1));
        b.qemu_st(a, a, MemOp::UB.mmu(NB_MMU_MODES as u8));
        b.exit_status(0);
        assert_eq!(
            verify(&b, ENV),
            Err(VerifyError::BadMmuIdx {
                op: 1,
                mmu_idx: NB_MMU_MODES as u8
            })
        );
    }
}
