//! The IR interpreter: runs a block without generating code.
//!
//! It is the reference the JIT is tested against (same semantics functions
//! as the optimizer's constant folding, same soft-MMU slow path as generated
//! code) and the fallback on hosts without a backend. It is written for
//! obviousness, not speed.

use crate::ExitReason;
use crate::ir::{Block, Op, Opcode, Ty};
use crate::softmmu::{self, CpuState, HEADER_SIZE, MemoryHandler, TcgContextHeader};

/// Why the interpreter could not run a block (a malformed block: run
/// [`crate::ir::verify`] to find out more).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// `ld_env`/`st_env` outside the guest part of the CPU state.
    #[error("op {0}: CPU-state access out of range")]
    EnvOutOfRange(usize),
    /// A branch to a label that is never set.
    #[error("op {0}: branch to a label that is not set")]
    BadLabel(usize),
    /// A call to a helper the block does not have.
    #[error("op {0}: call of an unregistered helper")]
    BadHelper(usize),
    /// Control fell off the end of the block.
    #[error("the block ran past its last op")]
    NoExit,
    /// A temp index out of range.
    #[error("op {0}: temp does not exist")]
    BadTemp(usize),
    /// A guest memory access through a soft-MMU index the TLB does not have.
    #[error("op {0}: soft-MMU index out of range")]
    BadMmuIdx(usize),
}

/// Semantics of the pure one-operand ops (shared with constant folding).
pub fn eval_unary(opc: Opcode, ty: Ty, a: u64) -> Option<u64> {
    let a = ty.mask(a);
    let bits = ty.bits();
    let v = match opc {
        Opcode::Mov => a,
        Opcode::Neg => a.wrapping_neg(),
        Opcode::Not => !a,
        Opcode::Ext8s => a as i8 as i64 as u64,
        Opcode::Ext8u => a as u8 as u64,
        Opcode::Ext16s => a as i16 as i64 as u64,
        Opcode::Ext16u => a as u16 as u64,
        Opcode::Ext32s | Opcode::ExtsI32I64 => a as i32 as i64 as u64,
        Opcode::Ext32u | Opcode::ExtuI32I64 | Opcode::ExtrlI64I32 => a as u32 as u64,
        Opcode::Bswap16 => (a as u16).swap_bytes() as u64,
        Opcode::Bswap32 => (a as u32).swap_bytes() as u64,
        Opcode::Bswap64 => a.swap_bytes(),
        Opcode::Clz => match ty {
            Ty::I32 => (a as u32).leading_zeros() as u64,
            Ty::I64 => a.leading_zeros() as u64,
        },
        Opcode::Ctz => {
            if a == 0 {
                bits as u64
            } else {
                a.trailing_zeros() as u64
            }
        }
        Opcode::Popcnt => a.count_ones() as u64,
        _ => return None,
    };
    Some(ty.mask(v))
}

/// Semantics of the pure two-operand ops (shared with constant folding).
pub fn eval_binary(opc: Opcode, ty: Ty, a: u64, b: u64) -> Option<u64> {
    let (a, b) = (ty.mask(a), ty.mask(b));
    let bits = ty.bits();
    let sh = (b & (bits as u64 - 1)) as u32;
    let (sa, sb) = match ty {
        Ty::I32 => (a as u32 as i32 as i64, b as u32 as i32 as i64),
        Ty::I64 => (a as i64, b as i64),
    };
    let v = match opc {
        Opcode::Add => a.wrapping_add(b),
        Opcode::Sub => a.wrapping_sub(b),
        Opcode::And => a & b,
        Opcode::Or => a | b,
        Opcode::Xor => a ^ b,
        Opcode::Mul => a.wrapping_mul(b),
        Opcode::Shl => a << sh,
        Opcode::Shr => a >> sh,
        Opcode::Sar => (sa >> sh) as u64,
        Opcode::Rotl => match ty {
            Ty::I32 => (a as u32).rotate_left(sh) as u64,
            Ty::I64 => a.rotate_left(sh),
        },
        Opcode::Rotr => match ty {
            Ty::I32 => (a as u32).rotate_right(sh) as u64,
            Ty::I64 => a.rotate_right(sh),
        },
        Opcode::Mulsh => match ty {
            Ty::I32 => ((sa * sb) >> 32) as u64,
            Ty::I64 => ((sa as i128 * sb as i128) >> 64) as u64,
        },
        Opcode::Muluh => match ty {
            Ty::I32 => (a * b) >> 32,
            Ty::I64 => ((a as u128 * b as u128) >> 64) as u64,
        },
        Opcode::Divu => a.checked_div(b).unwrap_or(0),
        Opcode::Remu => a.checked_rem(b).unwrap_or(a),
        Opcode::Divs => {
            if b == 0 {
                0
            } else {
                match ty {
                    Ty::I32 => (sa as i32).wrapping_div(sb as i32) as u32 as u64,
                    Ty::I64 => sa.wrapping_div(sb) as u64,
                }
            }
        }
        Opcode::Rems => {
            if b == 0 {
                a
            } else {
                match ty {
                    Ty::I32 => (sa as i32).wrapping_rem(sb as i32) as u32 as u64,
                    Ty::I64 => sa.wrapping_rem(sb) as u64,
                }
            }
        }
        _ => return None,
    };
    Some(ty.mask(v))
}

/// Runs blocks; keeps its buffers between runs.
#[derive(Debug, Default)]
pub struct Interpreter {
    vals: Vec<u64>,
    /// (op index, guest pc in effect there) per label.
    labels: Vec<(usize, u64)>,
    /// Pending `st_env_fault` stores: (offset, size in bytes, value).
    pending: Vec<(usize, usize, u64)>,
}

impl Interpreter {
    /// A new interpreter.
    pub fn new() -> Interpreter {
        Interpreter::default()
    }

    /// Runs `blk` against `cpu`, with `mem` behind the TLB.
    pub fn run<S: CpuState>(
        &mut self,
        blk: &Block,
        cpu: &mut S,
        mem: &mut dyn MemoryHandler,
    ) -> Result<ExitReason, InterpError> {
        let size = cpu.env_size();
        cpu.header().with_handler(mem, |hdr| {
            let env = hdr as *mut TcgContextHeader as *mut u8;
            // SAFETY: `env` points to the whole `S` (the header is its first
            // field), `size` bytes, exclusively borrowed for this call.
            unsafe { self.run_raw(blk, env, size) }
        })
    }

    /// Runs `blk` against the CPU state at `env` (`env_size` bytes, starting
    /// with a [`TcgContextHeader`] with the memory handler installed).
    ///
    /// # Safety
    ///
    /// `env` must be valid for reads and writes of `env_size` bytes, start
    /// with a `TcgContextHeader`, and not be accessed by anything else during
    /// the call (helpers called by the block receive it).
    pub unsafe fn run_raw(
        &mut self,
        blk: &Block,
        env: *mut u8,
        env_size: usize,
    ) -> Result<ExitReason, InterpError> {
        let hdr = env as *mut TcgContextHeader;
        // SAFETY: `env` starts with a header (caller's contract).
        if unsafe { (*hdr).exit_requested() } {
            return Ok(ExitReason::Interrupted { pc: blk.pc });
        }
        self.vals.clear();
        self.vals.resize(blk.num_temps(), 0);
        self.labels.clear();
        self.labels.resize(blk.num_labels(), (usize::MAX, 0));
        // The pc of an op is that of the nearest `insn_start` before it in
        // program order (static, as in generated code), also after a branch.
        let mut static_pc = blk.pc;
        for (i, insn) in blk.insns.iter().enumerate() {
            match insn.op {
                Op::InsnStart { pc } => static_pc = pc,
                Op::SetLabel { l } => {
                    if let Some(slot) = self.labels.get_mut(l.0 as usize) {
                        *slot = (i, static_pc);
                    }
                }
                _ => {}
            }
        }
        self.pending.clear();
        let vals = &mut self.vals;
        let pending = &mut self.pending;
        let mut insn_pc = blk.pc;
        let mut i = 0;
        macro_rules! get {
            ($t:expr) => {
                *vals.get($t.index()).ok_or(InterpError::BadTemp(i))?
            };
        }
        macro_rules! set {
            ($t:expr, $ty:expr, $v:expr) => {{
                let v = $ty.mask($v);
                *vals.get_mut($t.index()).ok_or(InterpError::BadTemp(i))? = v;
            }};
        }
        // A malformed index is the block's error, not a guest fault.
        macro_rules! check_mmu_idx {
            ($mop:expr) => {
                if $mop.mmu_idx as usize >= softmmu::NB_MMU_MODES {
                    return Err(InterpError::BadMmuIdx(i));
                }
            };
        }
        // Atomics leave like loads when they fault.
        macro_rules! atomic {
            ($ty:expr, $d:expr, $addr:expr, $mop:expr, $op:expr, $x:expr, $y:expr) => {{
                check_mmu_idx!($mop);
                let a = get!($addr);
                let (x, y) = ($x, $y);
                // SAFETY: as for loads.
                match softmmu::atomic(unsafe { &mut *hdr }, a, $mop, $ty, $op, x, y) {
                    Ok(v) => set!($d, $ty, v),
                    Err(fault) => {
                        // SAFETY: as for loads.
                        unsafe { flush_pending(pending, env) };
                        return Ok(ExitReason::Fault {
                            pc: insn_pc,
                            vaddr: a,
                            fault,
                        });
                    }
                }
            }};
        }
        while let Some(insn) = blk.insns.get(i) {
            let ty = insn.ty;
            let opc = insn.op.opcode();
            match insn.op {
                Op::Mov { d, a }
                | Op::Neg { d, a }
                | Op::Not { d, a }
                | Op::Ext8s { d, a }
                | Op::Ext8u { d, a }
                | Op::Ext16s { d, a }
                | Op::Ext16u { d, a }
                | Op::Ext32s { d, a }
                | Op::Ext32u { d, a }
                | Op::ExtuI32I64 { d, a }
                | Op::ExtsI32I64 { d, a }
                | Op::ExtrlI64I32 { d, a }
                | Op::Bswap16 { d, a }
                | Op::Bswap32 { d, a }
                | Op::Bswap64 { d, a }
                | Op::Clz { d, a }
                | Op::Ctz { d, a }
                | Op::Popcnt { d, a } => {
                    let v = eval_unary(opc, ty, get!(a));
                    set!(d, ty, v.unwrap_or(0));
                }
                Op::Movi { d, c } => set!(d, ty, c),
                Op::Add { d, a, b }
                | Op::Sub { d, a, b }
                | Op::And { d, a, b }
                | Op::Or { d, a, b }
                | Op::Xor { d, a, b }
                | Op::Shl { d, a, b }
                | Op::Shr { d, a, b }
                | Op::Sar { d, a, b }
                | Op::Rotl { d, a, b }
                | Op::Rotr { d, a, b }
                | Op::Mul { d, a, b }
                | Op::Mulsh { d, a, b }
                | Op::Muluh { d, a, b }
                | Op::Divs { d, a, b }
                | Op::Divu { d, a, b }
                | Op::Rems { d, a, b }
                | Op::Remu { d, a, b } => {
                    let v = eval_binary(opc, ty, get!(a), get!(b)).unwrap_or(0);
                    set!(d, ty, v);
                }
                Op::Setcond { d, a, b, cond } => {
                    let v = cond.eval(ty, get!(a), get!(b)) as u64;
                    set!(d, ty, v);
                }
                Op::Movcond {
                    d,
                    c1,
                    c2,
                    v1,
                    v2,
                    cond,
                } => {
                    let v = if cond.eval(ty, get!(c1), get!(c2)) {
                        get!(v1)
                    } else {
                        get!(v2)
                    };
                    set!(d, ty, v);
                }
                Op::QemuLd { d, addr, mop } => {
                    check_mmu_idx!(mop);
                    let a = get!(addr);
                    // SAFETY: the header is valid (caller's contract) and no
                    // other reference to it is live across this call.
                    let r = softmmu::load(unsafe { &mut *hdr }, a, mop, ty);
                    match r {
                        Ok(v) => set!(d, ty, v),
                        Err(fault) => {
                            // SAFETY: pending ranges were checked against
                            // `env_size` when recorded.
                            unsafe { flush_pending(pending, env) };
                            return Ok(ExitReason::Fault {
                                pc: insn_pc,
                                vaddr: a,
                                fault,
                            });
                        }
                    }
                }
                Op::QemuSt { v, addr, mop } => {
                    check_mmu_idx!(mop);
                    let a = get!(addr);
                    let val = get!(v);
                    // SAFETY: as for loads.
                    if let Err(fault) = softmmu::store(unsafe { &mut *hdr }, a, mop, val) {
                        // SAFETY: as for loads.
                        unsafe { flush_pending(pending, env) };
                        return Ok(ExitReason::Fault {
                            pc: insn_pc,
                            vaddr: a,
                            fault,
                        });
                    }
                }
                Op::AtomicRmw {
                    d,
                    addr,
                    v,
                    mop,
                    op,
                } => atomic!(ty, d, addr, mop, Some(op), get!(v), 0),
                Op::AtomicCmpxchg {
                    d,
                    addr,
                    cmp,
                    new,
                    mop,
                } => atomic!(ty, d, addr, mop, None, get!(cmp), get!(new)),
                Op::LdEnv { d, off, mop } => {
                    let n = mop.size.bytes() as usize;
                    let off = off as usize;
                    if off < HEADER_SIZE || off + n > env_size {
                        return Err(InterpError::EnvOutOfRange(i));
                    }
                    let mut buf = [0u8; 8];
                    // SAFETY: `off..off + n` is inside the `env_size` bytes
                    // the caller vouched for.
                    unsafe { std::ptr::copy_nonoverlapping(env.add(off), buf.as_mut_ptr(), n) };
                    set!(d, ty, mop.extend(ty, u64::from_le_bytes(buf)));
                }
                Op::StEnv { v, off, mop } => {
                    let n = mop.size.bytes() as usize;
                    let off = off as usize;
                    if off < HEADER_SIZE || off + n > env_size {
                        return Err(InterpError::EnvOutOfRange(i));
                    }
                    let buf = get!(v).to_le_bytes();
                    // SAFETY: as for `ld_env`.
                    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), env.add(off), n) };
                    pending.retain(|&(o, m, _)| o + m <= off || off + n <= o);
                }
                Op::StEnvFault { v, off, mop } => {
                    let n = mop.size.bytes() as usize;
                    let off = off as usize;
                    if off < HEADER_SIZE || off + n > env_size {
                        return Err(InterpError::EnvOutOfRange(i));
                    }
                    pending.push((off, n, get!(v)));
                }
                Op::SetLabel { .. } => pending.clear(),
                Op::Br { l } => {
                    pending.clear();
                    (i, insn_pc) = *self
                        .labels
                        .get(l.0 as usize)
                        .filter(|p| p.0 != usize::MAX)
                        .ok_or(InterpError::BadLabel(i))?;
                    continue;
                }
                Op::Brcond { a, b, cond, l } => {
                    pending.clear();
                    if cond.eval(ty, get!(a), get!(b)) {
                        (i, insn_pc) = *self
                            .labels
                            .get(l.0 as usize)
                            .filter(|p| p.0 != usize::MAX)
                            .ok_or(InterpError::BadLabel(i))?;
                        continue;
                    }
                }
                Op::Call { ret, helper, args } => {
                    let h = blk.get_helper(helper).ok_or(InterpError::BadHelper(i))?;
                    let mut a = [0u64; crate::ir::MAX_HELPER_ARGS];
                    for (k, t) in args.as_slice().iter().enumerate() {
                        a[k] = get!(*t);
                    }
                    let v = h.func.call(env, &a[..args.as_slice().len()]);
                    if let Some(r) = ret {
                        let rty = blk.ty(r);
                        set!(r, rty, v);
                    }
                    if h.flags.may_exit {
                        // SAFETY: header valid; the helper has returned.
                        let code = unsafe { (*hdr).helper_exit };
                        if code != 0 {
                            // SAFETY: as for loads.
                            unsafe { flush_pending(pending, env) };
                            return Ok(ExitReason::HelperExit { pc: insn_pc, code });
                        }
                    }
                }
                Op::InsnStart { pc } => insn_pc = pc,
                Op::Mb { .. } => std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst),
                Op::GotoTb { slot, pc } => return Ok(ExitReason::Chain { slot, pc }),
                Op::ExitIndirect { pc } => return Ok(ExitReason::Indirect { pc: get!(pc) }),
                Op::ExitStatus { code } => return Ok(ExitReason::Status { code, pc: insn_pc }),
            }
            i += 1;
        }
        Err(InterpError::NoExit)
    }
}

/// Performs the pending `st_env_fault` stores, in program order.
///
/// # Safety
///
/// Every recorded range must lie inside the CPU state at `env` (checked when
/// recorded against the caller's `env_size`).
unsafe fn flush_pending(pending: &mut Vec<(usize, usize, u64)>, env: *mut u8) {
    for (off, n, v) in pending.drain(..) {
        let buf = v.to_le_bytes();
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), env.add(off), n) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_edge_cases_are_defined() {
        use Opcode::*;
        for ty in [Ty::I32, Ty::I64] {
            assert_eq!(eval_binary(Divu, ty, 7, 0), Some(0));
            assert_eq!(eval_binary(Remu, ty, 7, 0), Some(7));
            assert_eq!(eval_binary(Divs, ty, 7, 0), Some(0));
            assert_eq!(eval_binary(Rems, ty, 7, 0), Some(7));
        }
        assert_eq!(
            eval_binary(Divs, Ty::I32, 0x8000_0000, 0xffff_ffff),
            Some(0x8000_0000)
        );
        assert_eq!(
            eval_binary(Rems, Ty::I32, 0x8000_0000, 0xffff_ffff),
            Some(0)
        );
        assert_eq!(eval_binary(Divs, Ty::I64, 1 << 63, u64::MAX), Some(1 << 63));
        assert_eq!(
            eval_binary(Rems, Ty::I64, (-7i64) as u64, 2),
            Some((-1i64) as u64)
        );
        assert_eq!(
            eval_binary(Rems, Ty::I32, (-7i32) as u32 as u64, 2),
            Some(0xffff_ffff)
        );
    }

    #[test]
    fn shifts_mask_the_count() {
        use Opcode::*;
        assert_eq!(eval_binary(Shl, Ty::I32, 1, 33), Some(2));
        assert_eq!(eval_binary(Shl, Ty::I64, 1, 65), Some(2));
        assert_eq!(
            eval_binary(Sar, Ty::I32, 0x8000_0000, 31),
            Some(0xffff_ffff)
        );
        assert_eq!(eval_binary(Rotr, Ty::I32, 1, 1), Some(0x8000_0000));
    }

    #[test]
    fn bit_counts() {
        use Opcode::*;
        assert_eq!(eval_unary(Clz, Ty::I32, 0), Some(32));
        assert_eq!(eval_unary(Clz, Ty::I64, 1), Some(63));
        assert_eq!(eval_unary(Ctz, Ty::I64, 0), Some(64));
        assert_eq!(eval_unary(Ctz, Ty::I32, 0x100), Some(8));
        assert_eq!(eval_unary(Popcnt, Ty::I64, u64::MAX), Some(64));
        assert_eq!(eval_unary(Bswap16, Ty::I64, 0xdead_1234), Some(0x3412));
        assert_eq!(eval_unary(Mulsh, Ty::I64, 1), None);
        assert_eq!(eval_binary(Mulsh, Ty::I64, u64::MAX, u64::MAX), Some(0));
        assert_eq!(
            eval_binary(Muluh, Ty::I64, u64::MAX, u64::MAX),
            Some(u64::MAX - 1)
        );
        assert_eq!(
            eval_binary(Mulsh, Ty::I32, 0xffff_ffff, 2),
            Some(0xffff_ffff)
        );
    }
}
