//! Data processing, immediate.
use super::{Ctx, Res, Undef};
use crate::decode::Insn;
pub fn adr(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn adrp(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn add_sub_imm(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn logic_imm(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn move_wide(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn bitfield(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn extr(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
