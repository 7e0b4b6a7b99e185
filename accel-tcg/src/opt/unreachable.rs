//! Removal of unreachable ops and unused labels.
//!
//! Branches only go forward, so an op is unreachable exactly when it follows
//! an unconditional branch or an exit with no label in between. A label that
//! no remaining branch targets is removed too: that joins two basic blocks
//! and lets the per-basic-block passes see across it.

use super::{Scratch, compact};
use crate::ir::{Block, Op, OpFlags};

/// Removes unreachable ops and labels no branch targets.
pub fn remove_unreachable(blk: &mut Block, s: &mut Scratch) {
    s.keep.clear();
    s.keep.resize(blk.insns.len(), true);
    s.label_used.clear();
    s.label_used.resize(blk.num_labels(), false);
    // Branches go forward, so when a label is reached every branch to it has
    // been seen: the label is a join point only if a reachable one targets it.
    let mut dead = false;
    // The last `insn_start` of a dead stretch sets the pc of the ops after
    // the next reachable label, so it stays if such a label follows.
    let mut dead_insn_start = None;
    for (i, insn) in blk.insns.iter().enumerate() {
        match insn.op {
            Op::SetLabel { l } => {
                if s.label_used.get(l.0 as usize).copied().unwrap_or(false) {
                    dead = false;
                    dead_insn_start = None;
                } else {
                    s.keep[i] = false;
                }
            }
            Op::InsnStart { .. } if dead => {
                if let Some(prev) = dead_insn_start.replace(i) {
                    s.keep[prev] = false;
                }
            }
            _ if dead => s.keep[i] = false,
            Op::Br { l } => {
                mark(&mut s.label_used, l.0);
                dead = true;
            }
            Op::Brcond { l, .. } => mark(&mut s.label_used, l.0),
            op if op.opcode().flags().has(OpFlags::EXIT) => dead = true,
            _ => {}
        }
    }
    if let Some(i) = dead_insn_start {
        s.keep[i] = false;
    }
    // A `br` straight to the label that follows it is a no-op; its label may
    // then have no branch left.
    let mut removed_br = false;
    for i in 0..blk.insns.len() {
        let Op::Br { l } = blk.insns[i].op else {
            continue;
        };
        if !s.keep[i] {
            continue;
        }
        let next = (i + 1..blk.insns.len()).find(|&j| s.keep[j]);
        if next.is_some_and(|j| blk.insns[j].op == (Op::SetLabel { l })) {
            s.keep[i] = false;
            removed_br = true;
        }
    }
    if removed_br {
        s.label_used.fill(false);
        for (i, insn) in blk.insns.iter().enumerate() {
            if let (true, Op::Br { l } | Op::Brcond { l, .. }) = (s.keep[i], insn.op) {
                mark(&mut s.label_used, l.0);
            }
        }
        for (i, insn) in blk.insns.iter().enumerate() {
            if let Op::SetLabel { l } = insn.op
                && !s.label_used.get(l.0 as usize).copied().unwrap_or(false)
            {
                s.keep[i] = false;
            }
        }
    }
    compact(blk, &s.keep);
}

fn mark(used: &mut [bool], l: u32) {
    if let Some(u) = used.get_mut(l as usize) {
        *u = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Cond, Opcode, Ty};

    #[test]
    fn drops_code_after_exit_and_unused_labels() {
        let mut b = Block::new(0);
        let t = b.const_temp(Ty::I64, 1);
        let l = b.label();
        let unused = b.label();
        b.brcond(t, t, Cond::Eq, l);
        b.exit_status(1);
        b.movi(t, 5); // unreachable
        b.set_label(unused); // nobody branches here: no join point
        b.movi(t, 6); // still unreachable
        b.set_label(l);
        b.exit_status(2);
        remove_unreachable(&mut b, &mut Scratch::default());
        let ops: Vec<_> = b.insns.iter().map(|i| i.op.opcode()).collect();
        use Opcode::*;
        assert_eq!(ops, [Movi, Brcond, ExitStatus, SetLabel, ExitStatus]);
    }

    #[test]
    fn br_to_next_label_disappears() {
        let mut b = Block::new(0);
        let l = b.label();
        b.br(l);
        b.set_label(l);
        b.exit_status(0);
        remove_unreachable(&mut b, &mut Scratch::default());
        assert_eq!(b.insns.len(), 1);
    }
}
