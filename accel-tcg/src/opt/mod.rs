//! The optimizer: passes over a block, run in a fixed order.
//!
//! Each pass is a plain function `fn(&mut Block, &mut Scratch)`; [`optimize`]
//! runs them in the order below and, in debug builds, verifies the block after
//! each one so a broken pass is caught at the pass.
//!
//! 1. [`unreachable::remove_unreachable`]: ops after an unconditional branch
//!    or exit up to the next label, and labels nobody branches to.
//! 2. [`env::forward_env`]: a `ld_env` of a CPU-state field whose value is
//!    already in a temp (stored or loaded earlier in the same basic block)
//!    becomes a `mov`. This keeps guest registers in host registers for the
//!    whole block without the backend knowing about guest registers.
//! 3. [`fold::fold`]: constant folding and propagation, copy propagation and
//!    algebraic identities; branches on constants become `br` or vanish.
//! 4. [`unreachable::remove_unreachable`] again, for the branches step 3
//!    resolved.
//! 5. [`env::dead_stores`]: a `st_env` that a later `st_env` to the same bytes
//!    overwrites, with no read, env-touching call, branch, label or exit in
//!    between, is removed; if memory accesses (or helpers that may exit) lie
//!    in between, it becomes a `st_env_fault`, which costs nothing on the
//!    fast path and is only performed on the way out of a fault.
//! 6. [`dce::dce`]: pure ops whose results nobody reads are removed.
//!
//! # Flags and dead code
//!
//! Front ends compute guest condition flags eagerly into temps and store them
//! to their CPU-state fields (one field per flag or per flag group) like any
//! other register. When a later instruction of the same block overwrites the
//! flags before anything reads them, step 5 removes the earlier stores and
//! step 6 then removes the computation that fed them. For x86, where almost
//! every instruction writes flags and few read them, this removes most flag
//! work inside a block: only the last write before the block exit (or before
//! a branch or an env-touching helper call) survives as a store. Flags
//! overwritten after an intervening memory access are stored only in that
//! access's fault path (`st_env_fault`), so precise exceptions cost nothing
//! while no fault happens; their computation stays, since the fault path
//! needs the value. Front ends get the most out
//! of it by storing flags as separate fields instead of merging them into one
//! word with read-modify-write sequences, which would read the old value.

pub mod dce;
pub mod env;
pub mod fold;
pub mod unreachable;

use crate::ir::Block;

/// Reusable buffers, so optimizing a block allocates nothing once warm.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) keep: Vec<bool>,
    pub(crate) words: Vec<u64>,
    pub(crate) label_live: Vec<u64>,
    pub(crate) version: Vec<u32>,
    pub(crate) konst: Vec<(u32, u64)>,
    pub(crate) copy: Vec<(u32, u32, u32)>,
    pub(crate) ranges: Vec<Range>,
    pub(crate) env_vals: Vec<(u32, u32, u32, u32)>,
    pub(crate) label_used: Vec<bool>,
    pub(crate) ends_window: Vec<bool>,
    pub(crate) setc: Vec<fold::SetcFact>,
    pub(crate) zext: Vec<u32>,
}

/// Bytes `start..end` of the CPU state that the store at op `killer`
/// overwrites later, as the dead-store pass walks backward.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub start: u32,
    pub end: u32,
    pub killer: u32,
    /// Memory accesses and exiting helpers between here and the killer
    /// (saturating).
    pub crossed: u8,
    /// No other kept store overlaps the range between here and the killer,
    /// so the killer is the first store a pending `st_env_fault` meets.
    pub convertible: bool,
}

/// A pass.
pub type Pass = fn(&mut Block, &mut Scratch);

/// The passes [`optimize`] runs, in order, with their names.
pub const PASSES: &[(&str, Pass)] = &[
    ("unreachable", unreachable::remove_unreachable),
    ("forward_env", env::forward_env),
    ("fold", fold::fold),
    ("unreachable", unreachable::remove_unreachable),
    ("dead_stores", env::dead_stores),
    ("dce", dce::dce),
];

/// Optimizes `blk` with fresh buffers (see [`optimize_with`] to reuse them).
pub fn optimize(blk: &mut Block) {
    optimize_with(blk, &mut Scratch::default());
}

/// Optimizes `blk` with the passes in [`PASSES`].
pub fn optimize_with(blk: &mut Block, scratch: &mut Scratch) {
    for (name, pass) in PASSES {
        pass(blk, scratch);
        if cfg!(debug_assertions)
            && let Err(e) = crate::ir::verify(blk, usize::MAX)
        {
            panic!("pass {name} produced a malformed block: {e}\n{blk}");
        }
    }
}

/// Drops the ops whose `keep` flag is false.
pub(crate) fn compact(blk: &mut Block, keep: &[bool]) {
    if !keep.contains(&false) {
        return;
    }
    let mut i = 0;
    blk.insns.retain(|_| {
        let k = keep.get(i).copied().unwrap_or(true);
        i += 1;
        k
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{MemOp, Opcode, Ty};
    use crate::softmmu::HEADER_SIZE;

    const R0: u32 = HEADER_SIZE as u32;
    const FLAGS: u32 = HEADER_SIZE as u32 + 8;

    fn opcodes(b: &Block) -> Vec<Opcode> {
        b.insns.iter().map(|i| i.op.opcode()).collect()
    }

    /// Two x86-like instructions that both write flags: the first flag
    /// computation and store vanish, the register stays in a temp.
    #[test]
    fn overwritten_flags_vanish() {
        let mut b = Block::new(0);
        let one = b.const_temp(Ty::I64, 1);
        for pc in [0u64, 3] {
            b.insn_start(pc);
            let r = b.temp64();
            b.ld_env(r, R0, MemOp::Q);
            b.add(r, r, one);
            let zf = b.temp64();
            let zero = b.const_temp(Ty::I64, 0);
            b.setcond(zf, r, zero, crate::ir::Cond::Eq);
            b.st_env(zf, FLAGS, MemOp::Q);
            b.st_env(r, R0, MemOp::Q);
        }
        b.goto_tb(0, 6);
        optimize(&mut b);
        use Opcode::*;
        assert_eq!(
            opcodes(&b),
            [
                Movi, InsnStart, LdEnv, Add, InsnStart, Add, Movi, Setcond, StEnv, StEnv, GotoTb
            ],
            "{b}"
        );
    }
}
