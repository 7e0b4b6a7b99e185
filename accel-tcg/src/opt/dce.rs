//! Dead-code elimination: removes pure ops whose results nobody reads.
//!
//! A backward liveness pass. Branches only go forward, so when the pass
//! (walking backward) reaches a branch, the live set at its target label was
//! already recorded; one walk is exact, no fixpoint needed. Temps are dead at
//! every exit: values that must survive the block are stored to the CPU
//! state, and stores are never removed here.

use super::{Scratch, compact};
use crate::ir::{Block, Op, OpFlags};

/// Removes pure ops with unused results.
pub fn dce(blk: &mut Block, s: &mut Scratch) {
    let words = blk.num_temps().div_ceil(64);
    s.keep.clear();
    s.keep.resize(blk.insns.len(), true);
    s.words.clear();
    s.words.resize(words, 0);
    s.label_live.clear();
    s.label_live.resize(words * blk.num_labels(), 0);
    let live = &mut s.words;
    let is_live = |live: &[u64], t: crate::ir::Temp| {
        live.get(t.index() / 64)
            .is_some_and(|w| w & (1 << (t.0 % 64)) != 0)
    };
    fn set(live: &mut [u64], t: crate::ir::Temp, on: bool) {
        if let Some(w) = live.get_mut(t.index() / 64) {
            if on {
                *w |= 1 << (t.0 % 64);
            } else {
                *w &= !(1 << (t.0 % 64));
            }
        }
    }
    for i in (0..blk.insns.len()).rev() {
        let op = blk.insns[i].op;
        let flags = op.opcode().flags();
        match op {
            _ if flags.has(OpFlags::EXIT) => live.fill(0),
            Op::Br { l } => {
                let at = l.0 as usize * words;
                if let Some(src) = s.label_live.get(at..at + words) {
                    live.copy_from_slice(src);
                }
            }
            Op::Brcond { l, .. } => {
                let at = l.0 as usize * words;
                if let Some(src) = s.label_live.get(at..at + words) {
                    for (w, x) in live.iter_mut().zip(src) {
                        *w |= x;
                    }
                }
            }
            Op::SetLabel { l } => {
                let at = l.0 as usize * words;
                if let Some(dst) = s.label_live.get_mut(at..at + words) {
                    dst.copy_from_slice(live);
                }
                continue;
            }
            _ => {
                let pure = flags.has(OpFlags::PURE)
                    || matches!(op, Op::Call { helper, .. }
                        if blk.get_helper(helper).is_some_and(|h| h.flags.pure));
                if pure {
                    let mut any_live = false;
                    op.for_each_def(|t| any_live |= is_live(live, t));
                    if !any_live {
                        s.keep[i] = false;
                        continue;
                    }
                }
                op.for_each_def(|t| set(live, t, false));
            }
        }
        op.for_each_use(|t| set(live, t, true));
    }
    compact(blk, &s.keep);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Cond, HelperFlags, HelperFn, Opcode, Ty};

    extern "C" fn id(_: *mut u8, a: u64) -> u64 {
        a
    }

    #[test]
    fn removes_unused_chain_keeps_effects() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I64, 1);
        let y = b.temp64();
        let z = b.temp64();
        b.add(y, x, x); // only feeds z
        b.mul(z, y, y); // unused
        let pure = b.helper(
            "p",
            HelperFn::A1(id),
            HelperFlags {
                pure: true,
                ..Default::default()
            },
        );
        let eff = b.helper("e", HelperFn::A1(id), HelperFlags::default());
        b.call_helper(Some(y), pure, &[x]); // unused pure call
        b.call_helper(Some(z), eff, &[x]); // unused result, but a side effect
        b.exit_status(0);
        dce(&mut b, &mut Scratch::default());
        let ops: Vec<_> = b.insns.iter().map(|i| i.op.opcode()).collect();
        assert_eq!(ops, [Opcode::Movi, Opcode::Call, Opcode::ExitStatus]);
    }

    #[test]
    fn liveness_flows_through_labels() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I64, 1);
        let y = b.const_temp(Ty::I64, 2); // used only after the label
        let l = b.label();
        b.brcond(x, x, Cond::Eq, l);
        b.movi(y, 3); // redefines y on the fall-through path: the first movi stays live via the branch
        b.set_label(l);
        b.exit_indirect(y);
        dce(&mut b, &mut Scratch::default());
        assert_eq!(b.insns.len(), 6);
        // Without the branch, the first definition of y is dead.
        let mut b = Block::new(0);
        let y = b.const_temp(Ty::I64, 2);
        b.movi(y, 3);
        b.exit_indirect(y);
        dce(&mut b, &mut Scratch::default());
        assert_eq!(b.insns.len(), 2);
    }
}
