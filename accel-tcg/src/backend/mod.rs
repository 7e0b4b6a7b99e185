//! Host code generators. Only this module looks at the host architecture.
pub mod x86_64;
