//! Advanced SIMD and SIMD&FP loads and stores: not translated yet.
//!
//! See [`super::fp`]: the same decoder lines lead here once implemented.
