//! The stack: push, pop, pusha, popa, enter, leave, pushf, popf, and the
//! stack-pointer arithmetic call and ret share.
//!
//! The stack width is 64 bits in 64-bit mode, else 32 or 16 as SS.B says
//! (a 16-bit stack pointer wraps at 64 KiB and writes leave the upper half
//! of esp alone). Every push or pop stores to memory before it writes rsp,
//! so a fault leaves rsp untouched.

use accel_tcg::ir::{Block, Temp};
use iced_x86::{OpKind, Register};

use super::{Ctx, Flow, Res, alu::reg_of, gpr_num, status, tbflags};
use crate::state::{self, rflags};

const RSP: usize = 4;
const RBP: usize = 5;

impl Ctx<'_> {
    /// The width of the stack pointer in bytes: 8 in 64-bit mode, else 4
    /// or 2 by SS.B.
    pub fn stack_bytes(&self) -> u32 {
        if self.code64() {
            8
        } else if self.tb & tbflags::SS32 != 0 {
            4
        } else {
            2
        }
    }

    /// The linear address of stack offset `sp`.
    pub fn stack_addr(&mut self, sp: Temp) -> Temp {
        if self.code64() {
            return sp;
        }
        let z = self.zext(sp, self.stack_bytes());
        if self.tb & tbflags::ADDSEG != 0 {
            let base = self.ld(state::seg_base_off(state::seg::SS));
            let s = self.op2(Block::add, z, base);
            return self.zext(s, 4);
        }
        z
    }

    /// Writes the stack pointer at the stack width.
    pub fn write_sp(&mut self, sp: Temp) {
        self.write_reg(RSP, self.stack_bytes(), false, sp);
    }

    /// Stores `vals` (each `bytes` wide) pushed in order below rsp, then
    /// updates rsp. Returns the new rsp.
    pub fn push_many(&mut self, vals: &[Temp], bytes: u32) -> Temp {
        let mut sp = self.reg64(RSP);
        for &v in vals {
            sp = self.op2i(Block::sub, sp, bytes as u64);
            let a = self.stack_addr(sp);
            self.qst(a, bytes, v);
        }
        self.write_sp(sp);
        sp
    }

    /// Loads `bytes` at the top of the stack; returns the value and the
    /// incremented stack pointer (not yet written).
    pub fn pop_val(&mut self, bytes: u32) -> (Temp, Temp) {
        let sp = self.reg64(RSP);
        let a = self.stack_addr(sp);
        let v = self.qld(a, bytes, false);
        let nsp = self.op2i(Block::add, sp, bytes as u64);
        (v, nsp)
    }
}

/// push.
pub fn push(c: &mut Ctx<'_>) -> Res {
    let bytes = c.stack_size();
    let v = if c.i.op_kind(0) == OpKind::Register && c.i.op_register(0).is_segment_register() {
        let s = seg_index(c.i.op_register(0));
        c.ld(state::seg_selector_off(s))
    } else {
        c.read_op(0, bytes)?
    };
    c.push_many(&[v], bytes);
    Ok(Flow::Next)
}

/// The CPU-state index of a segment register.
pub fn seg_index(r: Register) -> usize {
    match r {
        Register::ES => state::seg::ES,
        Register::CS => state::seg::CS,
        Register::SS => state::seg::SS,
        Register::FS => state::seg::FS,
        Register::GS => state::seg::GS,
        _ => state::seg::DS,
    }
}

/// pop.
pub fn pop(c: &mut Ctx<'_>) -> Res {
    let bytes = c.stack_size();
    if c.i.op_kind(0) == OpKind::Register && c.i.op_register(0).is_segment_register() {
        let s = seg_index(c.i.op_register(0));
        let (v, nsp) = c.pop_val(bytes);
        // The segment load may fault: rsp is written in Rust after it.
        c.st(v, state::scratch_off(0));
        c.st(nsp, state::scratch_off(1));
        return Ok(c.exit(status::LOAD_SEG | (s as u64) << 16 | 1 << 20));
    }
    let (v, nsp) = c.pop_val(bytes);
    match c.i.op_kind(0) {
        OpKind::Register => {
            let Some(n) = reg_of(c, 0) else {
                return Err(super::Unsupported);
            };
            c.write_sp(nsp);
            c.write_reg(n, bytes, false, v);
        }
        _ => {
            // An rsp-based destination address sees the incremented rsp.
            let mut a = c.ea();
            if gpr_num(c.i.memory_base()).0 == RSP && c.i.memory_base() != Register::None {
                a = c.op2i(Block::add, a, bytes as u64);
                if !c.code64() {
                    a = c.zext(a, 4);
                }
            }
            c.qst(a, bytes, v);
            c.write_sp(nsp);
        }
    }
    Ok(Flow::Next)
}

/// pusha/pushad (16- and 32-bit code): ax, cx, dx, bx, the original sp,
/// bp, si, di.
pub fn pusha(c: &mut Ctx<'_>) -> Res {
    let bytes = c.i.stack_pointer_increment().unsigned_abs() / 8;
    if bytes != 2 && bytes != 4 {
        return Err(super::Unsupported);
    }
    let vals: Vec<Temp> = (0..8).map(|n| c.read_reg(n, bytes, false)).collect();
    c.push_many(&vals, bytes);
    Ok(Flow::Next)
}

/// popa/popad: di, si, bp, (sp skipped), bx, dx, cx, ax; all eight loads
/// happen before any register is written.
pub fn popa(c: &mut Ctx<'_>) -> Res {
    let bytes = c.i.stack_pointer_increment().unsigned_abs() / 8;
    if bytes != 2 && bytes != 4 {
        return Err(super::Unsupported);
    }
    let sp = c.reg64(RSP);
    let mut vals = Vec::with_capacity(8);
    for k in 0..8u64 {
        let off = c.op2i(Block::add, sp, k * bytes as u64);
        let a = c.stack_addr(off);
        vals.push(c.qld(a, bytes, false));
    }
    let nsp = c.op2i(Block::add, sp, 8 * bytes as u64);
    c.write_sp(nsp);
    for (k, v) in vals.into_iter().enumerate() {
        let n = 7 - k;
        if n != RSP {
            c.write_reg(n, bytes, false, v);
        }
    }
    Ok(Flow::Next)
}

/// enter (nesting level 0 only; other levels raise #UD).
pub fn enter(c: &mut Ctx<'_>) -> Res {
    let size = c.i.immediate(0) & 0xffff;
    let level = c.i.immediate(1) & 0x1f;
    if level != 0 {
        return Err(super::Unsupported);
    }
    // stack_pointer_increment includes the frame size: take the operand
    // size from the form.
    let bytes = match c.i.code() {
        iced_x86::Code::Enterw_imm16_imm8 => 2,
        iced_x86::Code::Enterd_imm16_imm8 => 4,
        _ => 8,
    };
    let rbp = c.read_reg(RBP, bytes, false);
    let frame = c.push_many(&[rbp], bytes);
    let nsp = c.op2i(Block::sub, frame, size);
    if size != 0 {
        // Probe the lowest byte of the new frame, as hardware does.
        let a = c.stack_addr(nsp);
        c.qld(a, 1, false);
    }
    c.write_sp(nsp);
    c.write_reg(RBP, bytes, false, frame);
    Ok(Flow::Next)
}

/// leave: rsp = rbp; pop rbp.
pub fn leave(c: &mut Ctx<'_>) -> Res {
    let bytes = c.stack_size();
    let rbp = c.reg64(RBP);
    let a = c.stack_addr(rbp);
    let v = c.qld(a, bytes, false);
    let nsp = c.op2i(Block::add, rbp, bytes as u64);
    c.write_sp(nsp);
    c.write_reg(RBP, bytes, false, v);
    Ok(Flow::Next)
}

/// pushf: RFLAGS without VM and RF.
pub fn pushf(c: &mut Ctx<'_>) -> Res {
    let bytes = c.stack_size();
    let f = c.eflags_arith();
    let e = c.ld(state::EFLAGS_OFF);
    let all = c.op2(Block::or, e, f);
    let v = c.op2i(Block::and, all, !(rflags::VM | rflags::RF));
    c.push_many(&[v], bytes);
    Ok(Flow::Next)
}

/// popf: at CPL 0 every writable bit; above, IF and IOPL are kept.
pub fn popf(c: &mut Ctx<'_>) -> Res {
    let bytes = c.stack_size();
    let (v, nsp) = c.pop_val(bytes);
    let mut mask = rflags::WRITABLE;
    if c.cpl() != 0 {
        mask &= !(rflags::IF | rflags::IOPL);
    }
    if bytes == 2 {
        mask &= 0xffff;
    }
    let e = c.ld(state::EFLAGS_OFF);
    let keep = c.op2i(Block::and, e, !mask);
    let newbits = c.op2i(Block::and, v, mask & !rflags::ARITH);
    let ne = c.op2(Block::or, keep, newbits);
    let ne = c.op2i(Block::or, ne, rflags::FIXED);
    c.write_sp(nsp);
    c.st(ne, state::EFLAGS_OFF);
    c.set_eflags_cc(v);
    // TF or IF may have changed: look at interrupts before going on.
    c.goto(0, c.next_rip());
    Ok(Flow::End)
}
