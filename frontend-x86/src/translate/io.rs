//! Port I/O. Every form ends the block with an `exit_status` and is finished
//! in Rust against the board's port bus ([`crate::cpu`]), which also looks
//! for shutdown and reset requests the access caused.

use iced_x86::{Mnemonic, OpKind};

use super::{Ctx, Flow, Res, status, string};

/// in, out, ins, outs.
pub fn io(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    // No TSS I/O bitmap: outside ring 0 port access faults.
    if c.need_cpl0() {
        return Ok(Flow::End);
    }
    match m {
        Mnemonic::In | Mnemonic::Out => {
            let (data_op, port_op) = if m == Mnemonic::In { (0, 1) } else { (1, 0) };
            let bytes = c.op_size(data_op) as u64;
            let (imm, port) = match c.i.op_kind(port_op) {
                OpKind::Immediate8 => (1u64, c.i.immediate(port_op) & 0xff),
                _ => (0, 0),
            };
            let kind = if m == Mnemonic::In {
                status::IN
            } else {
                status::OUT
            };
            Ok(c.exit(kind | bytes << 16 | imm << 20 | port << 24))
        }
        _ => {
            let bytes: u64 = match m {
                Mnemonic::Insb | Mnemonic::Outsb => 1,
                Mnemonic::Insw | Mnemonic::Outsw => 2,
                _ => 4,
            };
            let asz = string::addr_size(c)?;
            let out = matches!(m, Mnemonic::Outsb | Mnemonic::Outsw | Mnemonic::Outsd) as u64;
            let rep =
                (c.i.has_rep_prefix() || c.i.has_repe_prefix() || c.i.has_repne_prefix()) as u64;
            let seg = super::stack::seg_index(c.i.memory_segment()) as u64;
            Ok(c.exit(
                status::STRING_IO
                    | bytes << 16
                    | out << 20
                    | rep << 21
                    | (asz.trailing_zeros() as u64) << 24
                    | seg << 28,
            ))
        }
    }
}
