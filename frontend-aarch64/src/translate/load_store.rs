//! Loads and stores.
use super::{Ctx, Res, Undef};
use crate::decode::Insn;
pub fn exclusive(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn literal(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn pair(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn imm9(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn atomic(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn reg_offset(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn unsigned_offset(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
