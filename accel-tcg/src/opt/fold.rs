//! Constant folding and propagation, copy propagation and algebraic
//! identities, in one forward walk per basic block.
//!
//! Temps may be assigned more than once, so every fact is stamped: a constant
//! or copy fact about temp `t` holds while `t` is not redefined (each
//! definition bumps `t`'s version) and, for copies, while the source is not
//! redefined either. A label starts a new epoch, which invalidates all facts
//! at once, because another path joins there.
//!
//! A temp defined by `setcond a, b, cond` is also remembered, so a branch or
//! select on it (`brcond t, 0, ne`: what a front end emits for a conditional
//! jump on a flag it computed into a temp) tests `a cond b` directly, and
//! the `setcond` dies unless something else (a flag store) reads it.
//!
//! A 64-bit temp whose upper 32 bits are known to be zero (a zero-extending
//! load or extension, a small constant, and/or/xor/shr of such values) makes a
//! later `ext32u` of it a copy: front ends for ISAs whose 32-bit operations
//! zero-extend (x86-64, AArch64 `W` registers) emit that extension after every
//! 32-bit operation, and most of them are redundant.
//!
//! Folding evaluates ops with the interpreter's semantics functions
//! ([`crate::interp::eval_unary`], [`crate::interp::eval_binary`]), so folded
//! and unfolded code cannot disagree.

use super::{Scratch, compact};
use crate::interp::{eval_binary, eval_unary};
use crate::ir::{Block, Cond, Insn, Op, Opcode, Temp, Ty};

/// `t = setcond a, b, cond` with the versions of `a` and `b` then.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SetcFact {
    epoch: u32,
    a: u32,
    a_ver: u32,
    b: u32,
    b_ver: u32,
    ty_is_64: bool,
    cond: Option<Cond>,
}

struct Facts<'a> {
    epoch: u32,
    version: &'a mut Vec<u32>,
    setc: &'a mut Vec<SetcFact>,
    /// (epoch, value) per temp.
    konst: &'a mut Vec<(u32, u64)>,
    /// (epoch, source, source version) per temp.
    copy: &'a mut Vec<(u32, u32, u32)>,
    /// The epoch in which the temp's current value was known to have its
    /// upper 32 bits zero (0: not known).
    zext: &'a mut Vec<u32>,
}

impl Facts<'_> {
    fn konst(&self, t: Temp) -> Option<u64> {
        self.konst
            .get(t.index())
            .filter(|k| k.0 == self.epoch)
            .map(|k| k.1)
    }

    /// `(a, b, cond, type)` if `t` still holds `a cond b` as 0 or 1.
    fn setcond(&self, t: Temp) -> Option<(Temp, Temp, Cond, Ty)> {
        let f = self.setc.get(t.index())?;
        let cond = f.cond?;
        let current = |x: u32, v: u32| self.version.get(x as usize) == Some(&v);
        if f.epoch != self.epoch || !current(f.a, f.a_ver) || !current(f.b, f.b_ver) {
            return None;
        }
        let ty = if f.ty_is_64 { Ty::I64 } else { Ty::I32 };
        Some((Temp(f.a), Temp(f.b), cond, ty))
    }

    /// Whether 64-bit temp `t` is known to hold a value below 2^32.
    fn zext(&self, t: Temp) -> bool {
        self.zext.get(t.index()) == Some(&self.epoch)
            || self.konst(t).is_some_and(|c| c <= u64::from(u32::MAX))
    }

    fn note_zext(&mut self, t: Temp) {
        if let Some(slot) = self.zext.get_mut(t.index()) {
            *slot = self.epoch;
        }
    }

    fn root(&self, t: Temp) -> Temp {
        match self.copy.get(t.index()) {
            Some(&(e, src, ver))
                if e == self.epoch && self.version.get(src as usize) == Some(&ver) =>
            {
                Temp(src)
            }
            _ => t,
        }
    }

    fn define(&mut self, t: Temp, konst: Option<u64>, copy_of: Option<Temp>) {
        let i = t.index();
        if i >= self.version.len() {
            return;
        }
        self.version[i] = self.version[i].wrapping_add(1);
        self.konst[i] = match konst {
            Some(v) => (self.epoch, v),
            None => (0, 0),
        };
        self.copy[i] = match copy_of {
            Some(s) if s != t => (self.epoch, s.0, self.version[s.index()]),
            _ => (0, 0, 0),
        };
        self.setc[i] = SetcFact::default();
        self.zext[i] = 0;
    }

    /// Records `d = setcond a, b, cond` (after `d`'s definition).
    fn note_setcond(&mut self, d: Temp, a: Temp, b: Temp, cond: Cond, ty: Ty) {
        if d == a || d == b {
            return; // the inputs are gone
        }
        let ver = |x: Temp| self.version.get(x.index()).copied().unwrap_or(0);
        let fact = SetcFact {
            epoch: self.epoch,
            a: a.0,
            a_ver: ver(a),
            b: b.0,
            b_ver: ver(b),
            ty_is_64: ty == Ty::I64,
            cond: Some(cond),
        };
        if let Some(slot) = self.setc.get_mut(d.index()) {
            *slot = fact;
        }
    }
}

/// Result of simplifying one op.
enum Simplified {
    Keep,
    Replace(Op),
    Remove,
}

fn simplify(op: &Op, ty: Ty, f: &Facts<'_>) -> Simplified {
    use Simplified::*;
    let k = |t: Temp| f.konst(t);
    let opc = op.opcode();
    let all_ones = ty.mask(u64::MAX);
    match *op {
        Op::Mov { d, a } if d == a => Remove,
        Op::Mov { d, a } => match k(a) {
            Some(c) => Replace(Op::Movi { d, c }),
            None => Keep,
        },
        Op::Movi { d, c } if c != ty.mask(c) => Replace(Op::Movi { d, c: ty.mask(c) }),
        Op::Ext32u { d, a } if ty == Ty::I64 && f.zext(a) => Replace(Op::Mov { d, a }),
        Op::Setcond { d, a, b, cond } => match (k(a), k(b)) {
            (Some(x), Some(y)) => Replace(Op::Movi {
                d,
                c: cond.eval(ty, x, y) as u64,
            }),
            _ if a == b => Replace(Op::Movi {
                d,
                c: cond.eval(ty, 0, 0) as u64,
            }),
            _ => Keep,
        },
        Op::Movcond {
            d,
            c1,
            c2,
            v1,
            v2,
            cond,
        } if k(c2) == Some(0)
            && matches!(cond, Cond::Ne | Cond::Eq)
            && f.setcond(c1).is_some_and(|s| s.3 == ty) =>
        {
            let Some((sa, sb, sc, _)) = f.setcond(c1) else {
                return Keep;
            };
            let cond = if cond == Cond::Ne { sc } else { sc.invert() };
            Replace(Op::Movcond {
                d,
                c1: sa,
                c2: sb,
                v1,
                v2,
                cond,
            })
        }
        Op::Movcond {
            d,
            c1,
            c2,
            v1,
            v2,
            cond,
        } => {
            let pick = match (k(c1), k(c2)) {
                (Some(x), Some(y)) => Some(cond.eval(ty, x, y)),
                _ if c1 == c2 => Some(cond.eval(ty, 0, 0)),
                _ if v1 == v2 => Some(true),
                _ => None,
            };
            match pick {
                Some(true) => Replace(Op::Mov { d, a: v1 }),
                Some(false) => Replace(Op::Mov { d, a: v2 }),
                None => Keep,
            }
        }
        Op::Brcond { a, b, cond, l }
            if k(b) == Some(0) && matches!(cond, Cond::Ne | Cond::Eq) && f.setcond(a).is_some() =>
        {
            let Some((sa, sb, sc, _)) = f.setcond(a) else {
                return Keep;
            };
            let cond = if cond == Cond::Ne { sc } else { sc.invert() };
            Replace(Op::Brcond {
                a: sa,
                b: sb,
                cond,
                l,
            })
        }
        Op::Brcond { a, b, cond, l } => {
            let taken = match (k(a), k(b)) {
                (Some(x), Some(y)) => Some(cond.eval(ty, x, y)),
                _ if a == b => Some(cond.eval(ty, 0, 0)),
                _ => None,
            };
            match taken {
                Some(true) => Replace(Op::Br { l }),
                Some(false) => Remove,
                None => Keep,
            }
        }
        _ => {
            if let Some((d, a)) = op.unary() {
                let Some(c) = k(a) else { return Keep };
                match eval_unary(opc, ty, c) {
                    Some(v) => Replace(Op::Movi { d, c: ty.mask(v) }),
                    None => Keep,
                }
            } else if let Some((d, a, b)) = op.binary() {
                let (ka, kb) = (k(a), k(b));
                if let (Some(x), Some(y)) = (ka, kb) {
                    return match eval_binary(opc, ty, x, y) {
                        Some(v) => Replace(Op::Movi { d, c: v }),
                        None => Keep,
                    };
                }
                use Opcode::*;
                let mov = |s: Temp| Replace(Op::Mov { d, a: s });
                let movi = |c: u64| Replace(Op::Movi { d, c });
                match (opc, ka, kb) {
                    (Add | Sub | Or | Xor | Shl | Shr | Sar | Rotl | Rotr, _, Some(0)) => mov(a),
                    (Add | Or | Xor, Some(0), _) => mov(b),
                    (Mul | Divs | Divu, _, Some(1)) => mov(a),
                    (Mul, Some(1), _) => mov(b),
                    (Mul | And | Mulsh | Muluh, _, Some(0))
                    | (Mul | And | Mulsh | Muluh, Some(0), _) => movi(0),
                    (And, _, Some(m)) if m == all_ones => mov(a),
                    (And, Some(m), _) if m == all_ones => mov(b),
                    (Or, _, Some(m)) | (Or, Some(m), _) if m == all_ones => movi(all_ones),
                    (Shl | Shr | Sar | Rotl | Rotr, Some(0), _) if opc != Sar => movi(0),
                    (Sub | Xor, _, _) if a == b => movi(0),
                    (And | Or, _, _) if a == b => mov(a),
                    _ => Keep,
                }
            } else {
                Keep
            }
        }
    }
}

/// Folds constants, propagates constants and copies, applies identities.
pub fn fold(blk: &mut Block, s: &mut Scratch) {
    let n = blk.num_temps();
    s.keep.clear();
    s.keep.resize(blk.insns.len(), true);
    s.version.clear();
    s.version.resize(n, 0);
    s.konst.clear();
    s.konst.resize(n, (0, 0));
    s.copy.clear();
    s.copy.resize(n, (0, 0, 0));
    s.setc.clear();
    s.setc.resize(n, SetcFact::default());
    s.zext.clear();
    s.zext.resize(n, 0);
    let mut f = Facts {
        epoch: 1,
        version: &mut s.version,
        setc: &mut s.setc,
        konst: &mut s.konst,
        copy: &mut s.copy,
        zext: &mut s.zext,
    };
    for i in 0..blk.insns.len() {
        let ty = blk.insns[i].ty;
        let mut op = blk.insns[i].op;
        if let Op::SetLabel { .. } = op {
            f.epoch += 1;
            continue;
        }
        // A pending `st_env_fault` reads its temp at later fault points, so
        // it keeps its own temp (which nothing redefines meanwhile) rather
        // than a copy whose source might change.
        if !matches!(op, Op::StEnvFault { .. }) {
            op.map_uses(|t| *t = f.root(*t));
        }
        // A replacement may change the op's type (a branch on a 32-bit
        // compare's result becomes a 32-bit compare-and-branch).
        let retype = |op: &Op| op.first_temp().map_or(ty, |t| blk.ty(t));
        let mut ty = ty;
        match simplify(&op, ty, &f) {
            Simplified::Keep => {}
            Simplified::Replace(new) => {
                op = new;
                ty = retype(&op);
                // A replacement may itself simplify (e.g. mov of a constant).
                if let Simplified::Replace(new) = simplify(&op, ty, &f) {
                    op = new;
                    ty = retype(&op);
                }
            }
            Simplified::Remove => {
                s.keep[i] = false;
                continue;
            }
        }
        // Whether the op's result has its upper 32 bits zero, judged on the
        // inputs before the definition replaces any of them.
        let result_zext = ty == Ty::I64
            && match op {
                Op::Ext32u { .. }
                | Op::Ext16u { .. }
                | Op::Ext8u { .. }
                | Op::ExtuI32I64 { .. } => true,
                Op::QemuLd { mop, .. } | Op::LdEnv { mop, .. } => {
                    !mop.signed && mop.size.bytes() <= 4
                }
                Op::Mov { a, .. } => f.zext(a),
                Op::And { a, b, .. } => f.zext(a) || f.zext(b),
                Op::Or { a, b, .. } | Op::Xor { a, b, .. } => f.zext(a) && f.zext(b),
                Op::Shr { a, .. } => f.zext(a),
                _ => false,
            };
        match op {
            Op::Movi { d, c } => f.define(d, Some(ty.mask(c)), None),
            Op::Mov { d, a } => {
                let c = f.konst(a);
                f.define(d, c, Some(a));
            }
            Op::Setcond { d, a, b, cond } => {
                f.define(d, None, None);
                f.note_setcond(d, a, b, cond, ty);
            }
            _ => op.for_each_def(|t| f.define(t, None, None)),
        }
        if result_zext {
            op.for_each_def(|t| f.note_zext(t));
        }
        blk.insns[i] = Insn { ty, op };
    }
    compact(blk, &s.keep);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Cond, MemOp};
    use crate::softmmu::HEADER_SIZE;

    #[test]
    fn folds_chains_of_constants() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I32, 0xffff_fff0);
        let y = b.const_temp(Ty::I32, 0x20);
        let z = b.temp32();
        b.add(z, x, y);
        b.shl(z, z, y); // shift by 32 masks to 0
        let w = b.temp64();
        b.exts_i32_i64(w, z);
        b.exit_indirect(w);
        fold(&mut b, &mut Scratch::default());
        assert_eq!(b.insns[2].op, Op::Movi { d: z, c: 0x10 });
        assert_eq!(b.insns[3].op, Op::Movi { d: z, c: 0x10 });
        assert_eq!(b.insns[4].op, Op::Movi { d: w, c: 0x10 });
    }

    #[test]
    fn zero_extension_of_a_zero_extended_value_is_a_copy() {
        let mut b = Block::new(0);
        let x = b.temp64();
        let y = b.temp64();
        let z = b.temp64();
        let w = b.temp64();
        b.ld_env(x, HEADER_SIZE as u32, MemOp::UL);
        b.ext32u(y, x); // x is a zero-extended 32-bit load: a copy
        b.ld_env(z, HEADER_SIZE as u32 + 8, MemOp::Q);
        b.ext32u(w, z); // z may have upper bits: kept
        b.add(y, y, w);
        b.ext32u(y, y); // an add may carry into bit 32: kept
        b.exit_indirect(y);
        fold(&mut b, &mut Scratch::default());
        assert_eq!(b.insns[1].op, Op::Mov { d: y, a: x });
        assert_eq!(b.insns[3].op, Op::Ext32u { d: w, a: z });
        assert_eq!(b.insns[5].op, Op::Ext32u { d: y, a: y });
    }

    #[test]
    fn copies_propagate_until_redefined() {
        let mut b = Block::new(0);
        let x = b.temp64();
        let y = b.temp64();
        let z = b.temp64();
        b.ld_env(x, HEADER_SIZE as u32, MemOp::Q);
        b.mov(y, x);
        b.add(z, y, y); // -> add z, x, x
        b.ld_env(x, HEADER_SIZE as u32 + 8, MemOp::Q);
        b.add(z, y, z); // y no longer a copy of x
        b.exit_indirect(z);
        fold(&mut b, &mut Scratch::default());
        assert_eq!(b.insns[2].op, Op::Add { d: z, a: x, b: x });
        assert_eq!(b.insns[4].op, Op::Add { d: z, a: y, b: z });
    }

    #[test]
    fn identities_and_branches() {
        let mut b = Block::new(0);
        let x = b.temp64();
        let zero = b.const_temp(Ty::I64, 0);
        let d = b.temp64();
        b.ld_env(x, HEADER_SIZE as u32, MemOp::Q);
        b.add(d, x, zero);
        b.xor(d, x, x);
        let l = b.label();
        b.brcond(zero, zero, Cond::Ne, l); // never taken: removed
        b.brcond(x, x, Cond::Geu, l); // always taken: br
        b.set_label(l);
        b.exit_indirect(d);
        fold(&mut b, &mut Scratch::default());
        assert_eq!(b.insns[2].op, Op::Mov { d, a: x });
        assert_eq!(b.insns[3].op, Op::Movi { d, c: 0 });
        assert_eq!(b.insns[4].op, Op::Br { l });
        assert_eq!(b.insns.len(), 7);
    }

    #[test]
    fn branches_on_setcond_results_test_the_compare() {
        let mut b = Block::new(0);
        let x = b.temp32();
        let y = b.temp32();
        let zf = b.temp64();
        let zero = b.const_temp(Ty::I64, 0);
        b.ld_env(x, HEADER_SIZE as u32, MemOp::UL);
        b.ld_env(y, HEADER_SIZE as u32 + 4, MemOp::UL);
        let flag = b.temp32();
        b.setcond(flag, x, y, Cond::Ltu);
        b.extu_i32_i64(zf, flag);
        let zero32 = b.const_temp(Ty::I32, 0);
        let l = b.label();
        b.brcond(flag, zero32, Cond::Eq, l); // -> brcond x, y, geu (32-bit)
        b.st_env(zf, HEADER_SIZE as u32 + 8, MemOp::Q);
        b.set_label(l);
        b.exit_indirect(zero);
        fold(&mut b, &mut Scratch::default());
        let br = b
            .insns
            .iter()
            .find(|i| i.op.opcode() == Opcode::Brcond)
            .expect("brcond");
        assert_eq!(
            br.op,
            Op::Brcond {
                a: x,
                b: y,
                cond: Cond::Geu,
                l
            }
        );
        assert_eq!(br.ty, Ty::I32);
        // Not when an input changed in between.
        let mut b2 = Block::new(0);
        let (x, y, f) = (b2.temp64(), b2.temp64(), b2.temp64());
        let zero = b2.const_temp(Ty::I64, 0);
        b2.ld_env(x, HEADER_SIZE as u32, MemOp::Q);
        b2.ld_env(y, HEADER_SIZE as u32 + 8, MemOp::Q);
        b2.setcond(f, x, y, Cond::Eq);
        b2.movi(x, 5);
        let l = b2.label();
        b2.brcond(f, zero, Cond::Ne, l);
        b2.set_label(l);
        b2.exit_indirect(zero);
        fold(&mut b2, &mut Scratch::default());
        let br = b2
            .insns
            .iter()
            .find(|i| i.op.opcode() == Opcode::Brcond)
            .expect("brcond");
        assert_eq!(
            br.op,
            Op::Brcond {
                a: f,
                b: zero,
                cond: Cond::Ne,
                l
            }
        );
    }

    #[test]
    fn facts_die_at_labels() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I64, 1);
        let y = b.temp64();
        let l = b.label();
        b.ld_env(y, HEADER_SIZE as u32, MemOp::Q);
        b.brcond(y, x, Cond::Eq, l);
        b.movi(x, 2);
        b.set_label(l);
        b.add(y, x, x); // x is 1 or 2 here: no folding
        b.exit_indirect(y);
        fold(&mut b, &mut Scratch::default());
        assert_eq!(b.insns[5].op, Op::Add { d: y, a: x, b: x });
    }
}
