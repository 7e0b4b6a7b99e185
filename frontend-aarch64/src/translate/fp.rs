//! Scalar floating point and Advanced SIMD data processing.
//!
//! Every such instruction is one call of [`crate::advsimd::helper_fpsimd`]
//! with its word: the helper decodes and executes it in Rust with the Arm
//! ARM's FP semantics ([`crate::fpu`]) and asks for Undefined Instruction
//! itself when the word is reserved. The call may touch any register, NZCV,
//! FPCR and FPSR, so it is a barrier for the optimizer's state tracking.
//!
//! With FP/SIMD disabled by CPACR_EL1.FPEN (a translation-block flag),
//! every FP/SIMD instruction, loads and stores included, ends the block
//! with [`status::FP_TRAP`] instead.

use accel_tcg::ir::{HelperFlags, HelperFn};

use super::{Ctx, Flow, Res, status, tbflags};
use crate::advsimd::helper_fpsimd;
use crate::decode::Insn;

/// Ends the block with the FP access trap if FP/SIMD is disabled.
pub fn fp_check(c: &mut Ctx<'_>) -> Option<Flow> {
    if c.tb & tbflags::FP_TRAP != 0 {
        return Some(c.exit(status::FP_TRAP));
    }
    None
}

/// Every scalar FP and Advanced SIMD data-processing encoding.
pub fn data_processing(c: &mut Ctx<'_>, i: Insn) -> Res {
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let h = c.b.helper(
        "a64_fpsimd",
        HelperFn::A1(helper_fpsimd),
        HelperFlags {
            may_exit: true,
            ..HelperFlags::default()
        },
    );
    let w = c.k(u64::from(i.0));
    c.b.call_helper(None, h, &[w]);
    Ok(Flow::Next)
}
