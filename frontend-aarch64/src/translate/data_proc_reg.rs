//! Data processing, register.
use super::{Ctx, Res, Undef};
use crate::decode::Insn;
pub fn logic_shifted(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn add_sub_shifted(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn add_sub_extended(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn adc_sbc(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn cond_compare(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn cond_select(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn one_source(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn two_source(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
pub fn three_source(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}
