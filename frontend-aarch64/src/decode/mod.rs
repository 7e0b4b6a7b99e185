//! The A64 decoder: one table of bit patterns, as the Arm ARM draws them.
//!
//! Each line of [`table`] names an encoding, its class, its 32-bit pattern
//! and the handler that translates it:
//!
//! ```text
//! ADD_imm: DpImm: "z0010001 0s iiiiiiiiiiii nnnnn ddddd" => dp_imm::add_sub_imm;
//! ```
//!
//! A pattern reads most-significant bit first; `0` and `1` are fixed bits,
//! any other letter is a field bit (dynarmic's style: `d` Rd, `n` Rn, `m`
//! Rm, `t` Rt, `z` sf, `i` immediates...), and spaces are ignored. The
//! patterns become `(mask, value)` pairs in a `const fn` at compile time: a
//! pattern that is not exactly 32 bits long is a compile error.
//!
//! Lookup is first match in table order, so more specific encodings (aliases
//! with fixed fields, such as `MOV (to/from SP)` inside `ADD`) come first.
//! A word no line matches is *unallocated*; a handler that finds a reserved
//! field value inside its encoding also reports it unallocated. Both raise
//! the guest's Undefined Instruction exception (ESR EC 0). Encoding classes
//! moat does not translate yet have lines whose handler is
//! [`crate::translate::not_implemented`]: they raise Undefined Instruction
//! too, logged at debug level.
//!
//! Handlers take the raw word and extract their fields with [`Insn`]'s
//! accessors, whose names match the pattern letters.

mod table;

pub use table::TABLE;

/// The mask and value of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Bits the pattern fixes.
    pub mask: u32,
    /// Their values.
    pub value: u32,
}

/// Parses a pattern string at compile time.
///
/// Panics (a compile error when evaluated in a `const`) unless the string
/// holds exactly 32 non-space characters.
pub const fn pattern(s: &str) -> Pattern {
    let bytes = s.as_bytes();
    let mut mask = 0u32;
    let mut value = 0u32;
    let mut n = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if c == b' ' {
            continue;
        }
        assert!(n < 32, "A64 pattern longer than 32 bits");
        let bit = 31 - n;
        match c {
            b'0' => mask |= 1 << bit,
            b'1' => {
                mask |= 1 << bit;
                value |= 1 << bit;
            }
            _ => {}
        }
        n += 1;
    }
    assert!(n == 32, "A64 pattern shorter than 32 bits");
    Pattern { mask, value }
}

/// The instruction classes of the Arm ARM's top-level encoding table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Data processing, immediate.
    DpImm,
    /// Data processing, register.
    DpReg,
    /// Branches, exception generation and system instructions.
    Branch,
    /// System instructions (hints, barriers, MSR/MRS, SYS).
    System,
    /// Loads and stores.
    LoadStore,
    /// Scalar floating point and Advanced SIMD, and their loads and stores.
    FpSimd,
}

/// What translates one encoding.
pub type Handler = fn(&mut crate::translate::Ctx<'_>, Insn) -> crate::translate::Res;

/// One line of the table.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The encoding's name.
    pub name: &'static str,
    /// Its class.
    pub class: Class,
    /// Fixed bits.
    pub mask: u32,
    /// Their values.
    pub value: u32,
    /// The translator.
    pub handler: Handler,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("class", &self.class)
            .field("mask", &format_args!("{:#010x}", self.mask))
            .field("value", &format_args!("{:#010x}", self.value))
            .finish()
    }
}

/// Builds [`TABLE`] from lines `NAME: Class: "pattern" => handler;`.
macro_rules! a64_table {
    ($($name:ident : $class:ident : $pat:literal => $handler:path;)*) => {
        /// Every encoding, in lookup order.
        pub static TABLE: &[$crate::decode::Entry] = &[
            $({
                const P: $crate::decode::Pattern = $crate::decode::pattern($pat);
                $crate::decode::Entry {
                    name: stringify!($name),
                    class: $crate::decode::Class::$class,
                    mask: P.mask,
                    value: P.value,
                    handler: $handler,
                }
            },)*
        ];
    };
}
pub(crate) use a64_table;

/// The table line that decodes `word`, or `None` for an unallocated word.
pub fn decode(word: u32) -> Option<&'static Entry> {
    TABLE.iter().find(|e| word & e.mask == e.value)
}

/// An instruction word with field accessors named like the pattern letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn(pub u32);

impl Insn {
    /// Bits `lo..=hi`.
    #[inline]
    pub const fn bits(self, hi: u32, lo: u32) -> u32 {
        (self.0 >> lo) & (u32::MAX >> (31 - (hi - lo)))
    }
    /// Bit `n`.
    #[inline]
    pub const fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 != 0
    }
    /// Rd / Rt (bits 4..0).
    #[inline]
    pub const fn rd(self) -> usize {
        self.bits(4, 0) as usize
    }
    /// Rn (bits 9..5).
    #[inline]
    pub const fn rn(self) -> usize {
        self.bits(9, 5) as usize
    }
    /// Rt2 / Ra (bits 14..10).
    #[inline]
    pub const fn ra(self) -> usize {
        self.bits(14, 10) as usize
    }
    /// Rm / Rs (bits 20..16).
    #[inline]
    pub const fn rm(self) -> usize {
        self.bits(20, 16) as usize
    }
    /// sf (bit 31): 64-bit operation.
    #[inline]
    pub const fn sf(self) -> bool {
        self.bit(31)
    }
    /// Sign-extended bits `lo..=hi`.
    #[inline]
    pub const fn sbits(self, hi: u32, lo: u32) -> i64 {
        let w = hi - lo + 1;
        let v = self.bits(hi, lo) as i64;
        (v << (64 - w)) >> (64 - w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_msb_first() {
        let p = pattern("1000 0000 0000 0000 0000 0000 0000 00x1");
        assert_eq!(p.mask, 0xffff_fffd);
        assert_eq!(p.value, 0x8000_0001);
    }

    #[test]
    fn fields() {
        // add x1, x2, #3
        let i = Insn(0x9100_0c41);
        assert_eq!((i.rd(), i.rn(), i.bits(21, 10)), (1, 2, 3));
        assert!(i.sf());
        assert_eq!(Insn(0x17ff_ffff).sbits(25, 0), -1);
    }
}
