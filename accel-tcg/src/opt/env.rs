//! CPU-state (guest register) optimizations: store-to-load forwarding and
//! dead-store elimination for `ld_env`/`st_env`.
//!
//! Both work within a basic block. What can make the CPU state differ from
//! what the block's own ops say:
//!
//! * a helper call that may read or write it (any helper not marked `pure`
//!   or `no_env`): pending knowledge is dropped, pending stores are kept;
//! * a label: another path joins, whose stores this pass did not see.
//!
//! Dead-store elimination must also keep a store when the block might leave
//! between it and the overwriting store, because whoever looks at the state
//! after the exit must see it: exits, branches, guest memory accesses (they
//! may fault) and helpers that may exit are barriers.

use super::{Range, Scratch, compact};
use crate::ir::{Block, Op, OpFlags};

/// Whether a call to `helper` may read or write the CPU state or leave.
fn call_is_barrier(blk: &Block, op: &Op) -> bool {
    match *op {
        Op::Call { helper, .. } => match blk.get_helper(helper) {
            Some(h) => !(h.flags.pure || (h.flags.no_env && !h.flags.may_exit)),
            None => true,
        },
        _ => false,
    }
}

/// A store becomes `st_env_fault` only if at most this many fault points lie
/// before its killer: every fault point gets its own copy of the deferred
/// stores in its fault path, so deferring a register write-back over a long
/// stretch of memory accesses would cost more code than the store it saves.
/// Flag stores, overwritten by the next flag-setting instruction, are well
/// within it.
pub const MAX_DEFERRED_ACROSS: u8 = 2;

/// Replaces `ld_env` of a field whose value a temp already holds with a
/// `mov` from that temp.
pub fn forward_env(blk: &mut Block, s: &mut Scratch) {
    s.version.clear();
    s.version.resize(blk.num_temps(), 0);
    // (offset, size, temp, version of the temp when recorded)
    s.env_vals.clear();
    for i in 0..blk.insns.len() {
        let op = blk.insns[i].op;
        match op {
            Op::SetLabel { .. } => s.env_vals.clear(),
            Op::Call { .. } if call_is_barrier(blk, &op) => s.env_vals.clear(),
            Op::StEnv { v, off, mop } => {
                let n = mop.size.bytes();
                s.env_vals
                    .retain(|&(o, sz, _, _)| o + sz <= off || off + n <= o);
                if n * 8 == blk.ty(v).bits() {
                    s.env_vals
                        .push((off, n, v.0, s.version.get(v.index()).copied().unwrap_or(0)));
                }
            }
            Op::LdEnv { d, off, mop } => {
                let n = mop.size.bytes();
                let dty = blk.ty(d);
                if n * 8 == dty.bits() {
                    let found = s.env_vals.iter().find(|&&(o, sz, t, ver)| {
                        o == off
                            && sz == n
                            && blk.ty(crate::ir::Temp(t)) == dty
                            && s.version.get(t as usize) == Some(&ver)
                    });
                    if let Some(&(_, _, t, _)) = found {
                        blk.insns[i].op = Op::Mov {
                            d,
                            a: crate::ir::Temp(t),
                        };
                    }
                }
            }
            _ => {}
        }
        blk.insns[i].op.for_each_def(|t| {
            if let Some(v) = s.version.get_mut(t.index()) {
                *v = v.wrapping_add(1);
            }
        });
        if let Op::LdEnv { d, off, mop } = op {
            let n = mop.size.bytes();
            if n * 8 == blk.ty(d).bits() && blk.insns[i].op.opcode() == crate::ir::Opcode::LdEnv {
                // One entry per field keeps the list as short as the number
                // of fields the block touches.
                let ver = s.version.get(d.index()).copied().unwrap_or(0);
                match s.env_vals.iter_mut().find(|e| e.0 == off && e.1 == n) {
                    Some(e) => *e = (off, n, d.0, ver),
                    None => s.env_vals.push((off, n, d.0, ver)),
                }
            }
        }
    }
}

/// Removes `st_env`s that a later `st_env` overwrites before anything can
/// observe them, and turns those that only a fault could observe into
/// `st_env_fault`.
pub fn dead_stores(blk: &mut Block, s: &mut Scratch) {
    s.keep.clear();
    s.keep.resize(blk.insns.len(), true);
    s.ranges.clear();
    // Stores that end the pending window of an existing `st_env_fault` (from
    // an earlier run) must stay as they are: removing or deferring them
    // would stretch that window past redefinitions of its temp.
    s.ends_window.clear();
    s.ends_window.resize(blk.insns.len(), false);
    if blk
        .insns
        .iter()
        .any(|i| matches!(i.op, Op::StEnvFault { .. }))
    {
        let mut pending: Vec<(u32, u32)> = Vec::new();
        for (i, insn) in blk.insns.iter().enumerate() {
            match insn.op {
                Op::StEnvFault { off, mop, .. } => pending.push((off, off + mop.size.bytes())),
                Op::StEnv { off, mop, .. } => {
                    let end = off + mop.size.bytes();
                    let before = pending.len();
                    pending.retain(|&(o, e)| e <= off || end <= o);
                    s.ends_window[i] = pending.len() != before;
                }
                op if op.opcode().flags().has(OpFlags::BB_END) => pending.clear(),
                _ => {}
            }
        }
    }
    // Index of the nearest definition of each temp after the current op
    // (walking backward), `u32::MAX` if none.
    s.version.clear();
    s.version.resize(blk.num_temps(), u32::MAX);
    for i in (0..blk.insns.len()).rev() {
        let op = blk.insns[i].op;
        let flags = op.opcode().flags();
        op.for_each_def(|t| {
            if let Some(d) = s.version.get_mut(t.index()) {
                *d = i as u32;
            }
        });
        match op {
            Op::StEnv { v, off, mop } => {
                let end = off + mop.size.bytes();
                let covering = |r: &&Range| r.start <= off && end <= r.end;
                // A store ending an existing window is kept as is (see
                // above); it still kills earlier stores.
                let fixed = s.ends_window[i];
                if !fixed && s.ranges.iter().filter(covering).any(|r| r.crossed == 0) {
                    s.keep[i] = false;
                    continue;
                }
                let killer = s
                    .ranges
                    .iter()
                    .filter(|r| !fixed && covering(r))
                    .find(|r| r.convertible && r.crossed <= MAX_DEFERRED_ACROSS)
                    .map(|r| r.killer as usize);
                // The value must still be in `v` at the fault points: no
                // redefinition before the killer.
                let next_def = s.version.get(v.index()).copied().unwrap_or(0) as usize;
                if killer.is_some_and(|k| next_def > k) {
                    blk.insns[i].op = Op::StEnvFault { v, off, mop };
                    continue;
                }
                // A kept store: a pending store before it that overlaps it
                // would be discarded here, not at the later killer.
                for r in s.ranges.iter_mut() {
                    if r.start < end && off < r.end {
                        r.convertible = false;
                    }
                }
                if s.ranges.len() < 64 {
                    s.ranges.push(Range {
                        start: off,
                        end,
                        killer: i as u32,
                        crossed: 0,
                        convertible: true,
                    });
                }
            }
            Op::StEnvFault { .. } => {}
            Op::LdEnv { off, mop, .. } => {
                let end = off + mop.size.bytes();
                s.ranges.retain(|r| r.end <= off || end <= r.start);
            }
            _ if flags.has(OpFlags::BB_END) => s.ranges.clear(),
            _ if flags.has(OpFlags::MEM) || call_may_only_exit(blk, &op) => {
                for r in s.ranges.iter_mut() {
                    r.crossed = r.crossed.saturating_add(1);
                }
            }
            _ if call_is_barrier(blk, &op) => s.ranges.clear(),
            _ => {}
        }
    }
    compact(blk, &s.keep);
}

/// A call that does not touch the CPU state but may leave the block.
fn call_may_only_exit(blk: &Block, op: &Op) -> bool {
    match *op {
        Op::Call { helper, .. } => blk
            .get_helper(helper)
            .is_some_and(|h| h.flags.no_env && h.flags.may_exit && !h.flags.pure),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{HelperFlags, HelperFn, MemOp, Opcode, Ty};
    use crate::softmmu::HEADER_SIZE;

    const R0: u32 = HEADER_SIZE as u32;

    extern "C" fn nop(_: *mut u8) -> u64 {
        0
    }

    fn opcodes(b: &Block) -> Vec<Opcode> {
        b.insns.iter().map(|i| i.op.opcode()).collect()
    }

    #[test]
    fn store_then_load_forwards() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I64, 5);
        let y = b.temp64();
        b.st_env(x, R0, MemOp::Q);
        b.ld_env(y, R0, MemOp::Q);
        b.exit_indirect(y);
        forward_env(&mut b, &mut Scratch::default());
        assert_eq!(b.insns[2].op, Op::Mov { d: y, a: x });
    }

    #[test]
    fn narrower_or_clobbered_loads_do_not_forward() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I64, 5);
        let y = b.temp64();
        let z = b.temp64();
        b.st_env(x, R0, MemOp::Q);
        b.ld_env(y, R0, MemOp::UL); // narrower: not forwarded
        b.movi(x, 7); // x no longer holds the stored value
        b.ld_env(z, R0, MemOp::Q);
        b.exit_indirect(z);
        forward_env(&mut b, &mut Scratch::default());
        assert_eq!(b.insns[2].op.opcode(), Opcode::LdEnv);
        assert_eq!(b.insns[4].op.opcode(), Opcode::LdEnv);
    }

    #[test]
    fn calls_block_forwarding_unless_no_env() {
        for (flags, forwarded) in [
            (HelperFlags::default(), false),
            (
                HelperFlags {
                    no_env: true,
                    ..HelperFlags::default()
                },
                true,
            ),
        ] {
            let mut b = Block::new(0);
            let h = b.helper("h", HelperFn::A0(nop), flags);
            let y = b.temp64();
            let z = b.temp64();
            b.ld_env(y, R0, MemOp::Q);
            b.call_helper(None, h, &[]);
            b.ld_env(z, R0, MemOp::Q);
            b.exit_indirect(z);
            forward_env(&mut b, &mut Scratch::default());
            assert_eq!(b.insns[2].op.opcode() == Opcode::Mov, forwarded);
        }
    }

    #[test]
    fn overwritten_store_is_dead_but_not_across_barriers() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I64, 5);
        let a = b.const_temp(Ty::I64, 0x1000);
        b.st_env(x, R0, MemOp::Q); // dead: overwritten below
        b.st_env(x, R0, MemOp::UL);
        b.st_env(x, R0, MemOp::Q);
        b.st_env(x, R0 + 8, MemOp::Q); // kept: a load may fault before the next store
        b.qemu_ld(x, a, MemOp::Q);
        b.st_env(x, R0 + 8, MemOp::Q);
        b.exit_status(0);
        dead_stores(&mut b, &mut Scratch::default());
        use Opcode::*;
        assert_eq!(
            opcodes(&b),
            [Movi, Movi, StEnv, StEnv, QemuLd, StEnv, ExitStatus]
        );
    }

    #[test]
    fn read_between_keeps_store() {
        let mut b = Block::new(0);
        let x = b.const_temp(Ty::I64, 5);
        let y = b.temp32();
        b.st_env(x, R0, MemOp::Q);
        b.ld_env(y, R0 + 4, MemOp::UB);
        b.st_env(x, R0, MemOp::Q);
        b.exit_status(0);
        dead_stores(&mut b, &mut Scratch::default());
        assert_eq!(b.insns.len(), 5);
    }
}
