//! Scalar floating point: not translated yet.
//!
//! The decoder's `FP_SIMD` and `FP_LDST` lines send every SIMD&FP encoding
//! to [`super::not_implemented`] (Undefined Instruction). The FP helper
//! fills this module: FMOV, FADD..., conversions, FCMP setting NZCV
//! ([`super::Ctx::set_nz`] and the flag words in [`crate::state`]), with the
//! registers in `A64State::v` and FPCR/FPSR beside them.
