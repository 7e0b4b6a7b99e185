//! Text form of a block, in the spirit of QEMU's `-d op`: one op per line,
//! `name_type dest, operands`, and a `----` line with the guest pc at each
//! instruction start. This is what `--trace op` prints.

use std::fmt;

use super::{Block, Op, Ty};

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "block pc={:#x} temps={} labels={}",
            self.pc,
            self.num_temps(),
            self.num_labels()
        )?;
        for insn in &self.insns {
            match insn.op {
                Op::InsnStart { pc } => writeln!(f, " ---- {pc:016x}")?,
                Op::SetLabel { l } => writeln!(f, "{l}:")?,
                op => {
                    let opc = op.opcode();
                    // Conversions name both types already.
                    let typed = op.first_temp().is_some()
                        && !matches!(op, Op::Call { .. })
                        && !op.opcode().name().contains("_i");
                    let suffix = match (typed, insn.ty) {
                        (false, _) => "",
                        (true, Ty::I32) => "_i32",
                        (true, Ty::I64) => "_i64",
                    };
                    let name = format!("{}{}", opc.name(), suffix);
                    let operands = op.fmt_operands(self);
                    writeln!(f, " {name:<15} {}", operands.join(", "))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::{Block, Cond, HelperFlags, HelperFn, MemOp, Ty};

    extern "C" fn h(_env: *mut u8, a: u64) -> u64 {
        a
    }

    #[test]
    fn prints_readably() {
        let mut b = Block::new(0x40_1000);
        b.insn_start(0x40_1000);
        let x = b.temp64();
        let y = b.const_temp(Ty::I64, 16);
        b.ld_env(x, 0x100, MemOp::Q);
        b.add(x, x, y);
        let l = b.label();
        b.brcond(x, y, Cond::Ltu, l);
        let hid = b.helper("h", HelperFn::A1(h), HelperFlags::default());
        b.call_helper(Some(x), hid, &[x]);
        b.set_label(l);
        b.qemu_st(x, y, MemOp::UL.be());
        b.qemu_ld(x, y, MemOp::Q.mmu(1));
        b.goto_tb(0, 0x40_1010);
        let text = b.to_string();
        let expected = "block pc=0x401000 temps=2 labels=1
 ---- 0000000000401000
 movi_i64        t1, $0x10
 ld_env_i64      t0, env+0x100, q
 add_i64         t0, t0, t1
 brcond_i64      t0, t1, ltu, L0
 call            t0, h, (t0)
L0:
 qemu_st_i64     t0, t1, ul_be
 qemu_ld_i64     t0, t1, q_mmu1
 goto_tb         slot0, $0x401010
";
        assert_eq!(text, expected);
    }
}
