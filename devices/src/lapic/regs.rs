//! The xAPIC register page layout and the interrupt messages an APIC sends.
//!
//! Offsets and bit positions follow the Intel SDM vol. 3A, chapter "Advanced
//! Programmable Interrupt Controller (APIC)", table "Local APIC Register Address
//! Map" and the figures for the LVT and the ICR.

/// Offsets of the registers in the 4 KiB xAPIC page. Every register sits at a
/// 16-byte boundary and is accessed as one aligned 32-bit word.
pub(crate) mod offset {
    pub const ID: u64 = 0x020;
    pub const VERSION: u64 = 0x030;
    pub const TPR: u64 = 0x080;
    pub const APR: u64 = 0x090;
    pub const PPR: u64 = 0x0a0;
    pub const EOI: u64 = 0x0b0;
    pub const RRD: u64 = 0x0c0;
    pub const LDR: u64 = 0x0d0;
    pub const DFR: u64 = 0x0e0;
    pub const SVR: u64 = 0x0f0;
    pub const ISR: u64 = 0x100;
    pub const TMR: u64 = 0x180;
    pub const IRR: u64 = 0x200;
    pub const ESR: u64 = 0x280;
    pub const ICR_LOW: u64 = 0x300;
    pub const ICR_HIGH: u64 = 0x310;
    pub const LVT_TIMER: u64 = 0x320;
    pub const TIMER_INITIAL: u64 = 0x380;
    pub const TIMER_CURRENT: u64 = 0x390;
    pub const TIMER_DIVIDE: u64 = 0x3e0;
}

/// Version register: version 0x14 (an integrated xAPIC), six LVT entries (the
/// field holds the highest index, 5), no EOI-broadcast suppression.
pub const APIC_VERSION: u32 = 0x0005_0014;

/// The local vector table, in register order (LVT timer at 0x320 through LVT
/// error at 0x370; there is no CMCI entry since the version reports six).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lvt {
    Timer = 0,
    Thermal = 1,
    Perf = 2,
    Lint0 = 3,
    Lint1 = 4,
    Error = 5,
}

pub(crate) const LVT_COUNT: usize = 6;
pub(crate) const LVT_MASKED: u32 = 1 << 16;
/// LVT timer mode field (bits 18:17); bit 18 selects TSC-deadline mode, which
/// this model lacks, so only bit 17 (periodic) is writable.
pub(crate) const LVT_TIMER_PERIODIC: u32 = 1 << 17;
pub(crate) const LVT_DELIVERY_MODE_SHIFT: u32 = 8;

impl Lvt {
    pub(crate) fn from_offset(offset: u64) -> Option<Lvt> {
        let index = offset.checked_sub(offset::LVT_TIMER)? / 0x10;
        [
            Lvt::Timer,
            Lvt::Thermal,
            Lvt::Perf,
            Lvt::Lint0,
            Lvt::Lint1,
            Lvt::Error,
        ]
        .get(usize::try_from(index).ok()?)
        .copied()
    }

    /// The bits software may write: the vector and mask everywhere, the delivery
    /// mode where the entry has one, the mode bit of the timer, and polarity and
    /// trigger mode of the LINT pins. Delivery status and remote IRR are read-only.
    pub(crate) fn writable_bits(self) -> u32 {
        match self {
            Lvt::Timer => 0xff | LVT_MASKED | LVT_TIMER_PERIODIC,
            Lvt::Thermal | Lvt::Perf => 0x7ff | LVT_MASKED,
            Lvt::Lint0 | Lvt::Lint1 => 0x7ff | (1 << 13) | (1 << 15) | LVT_MASKED,
            Lvt::Error => 0xff | LVT_MASKED,
        }
    }
}

/// Error status register bits this model raises.
pub(crate) mod esr {
    /// The local APIC was asked to send an IPI with a vector below 16.
    pub const SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
    /// The local APIC received an interrupt with a vector below 16.
    pub const RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
}

/// How a message is delivered (ICR and redirection-entry bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    Fixed,
    LowestPriority,
    Smi,
    Nmi,
    Init,
    StartUp,
    ExtInt,
}

impl DeliveryMode {
    /// Decodes the three-bit field; 0b011 is reserved.
    pub fn from_bits(bits: u32) -> Option<DeliveryMode> {
        Some(match bits & 7 {
            0b000 => DeliveryMode::Fixed,
            0b001 => DeliveryMode::LowestPriority,
            0b010 => DeliveryMode::Smi,
            0b100 => DeliveryMode::Nmi,
            0b101 => DeliveryMode::Init,
            0b110 => DeliveryMode::StartUp,
            0b111 => DeliveryMode::ExtInt,
            _ => return None,
        })
    }
}

/// Which local APICs a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The APIC whose ID is this value; 0xff is a broadcast to all.
    Physical(u8),
    /// The APICs whose logical destination (LDR and DFR) matches this value.
    Logical(u8),
    SelfOnly,
    AllIncludingSelf,
    AllExcludingSelf,
}

/// An interrupt message: an IPI from a local APIC's ICR, or a message from the
/// I/O APIC (which never uses the shorthands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipi {
    pub vector: u8,
    pub mode: DeliveryMode,
    pub dest: Destination,
    /// Assert (true) or de-assert; only an INIT de-assert uses `false`.
    pub level: bool,
    /// Level-triggered (true) or edge-triggered.
    pub trigger_level: bool,
}

const ICR_DEST_LOGICAL: u32 = 1 << 11;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_TRIGGER_LEVEL: u32 = 1 << 15;
const ICR_SHORTHAND_SHIFT: u32 = 18;
/// The bits of ICR low that read back: everything but delivery status (bit 12,
/// always idle here since delivery is immediate) and the reserved bits.
pub(crate) const ICR_LOW_WRITABLE: u32 = 0x000c_cfff;

impl Ipi {
    /// Decodes an ICR write (`low` being the word just written, which is what
    /// sends the IPI). Returns `None` for the reserved delivery mode.
    pub fn from_icr(low: u32, high: u32) -> Option<Ipi> {
        let mode = DeliveryMode::from_bits(low >> LVT_DELIVERY_MODE_SHIFT)?;
        let target = (high >> 24) as u8;
        let dest = match (low >> ICR_SHORTHAND_SHIFT) & 3 {
            0 if low & ICR_DEST_LOGICAL != 0 => Destination::Logical(target),
            0 => Destination::Physical(target),
            1 => Destination::SelfOnly,
            2 => Destination::AllIncludingSelf,
            _ => Destination::AllExcludingSelf,
        };
        Some(Ipi {
            vector: low as u8,
            mode,
            dest,
            level: low & ICR_LEVEL_ASSERT != 0,
            trigger_level: low & ICR_TRIGGER_LEVEL != 0,
        })
    }

    /// An INIT level de-assert: a synchronisation message for arbitration IDs
    /// that modern processors (and this model) ignore.
    pub fn is_init_deassert(&self) -> bool {
        self.mode == DeliveryMode::Init && !self.level && self.trigger_level
    }
}

/// One 256-bit vector register (ISR, TMR or IRR) as eight 32-bit words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VectorBits([u32; 8]);

impl VectorBits {
    pub(crate) fn get(&self, vector: u8) -> bool {
        self.0[usize::from(vector >> 5)] & (1 << (vector & 31)) != 0
    }

    pub(crate) fn set(&mut self, vector: u8, value: bool) {
        let word = &mut self.0[usize::from(vector >> 5)];
        if value {
            *word |= 1 << (vector & 31);
        } else {
            *word &= !(1 << (vector & 31));
        }
    }

    pub(crate) fn highest(&self) -> Option<u8> {
        let (index, word) = self.0.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
        Some((index as u32 * 32 + 31 - word.leading_zeros()) as u8)
    }

    pub(crate) fn word(&self, index: usize) -> u32 {
        self.0.get(index).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_bits_find_the_highest() {
        let mut bits = VectorBits::default();
        assert_eq!(bits.highest(), None);
        bits.set(0x31, true);
        bits.set(0xfe, true);
        assert_eq!(bits.highest(), Some(0xfe));
        assert_eq!(bits.word(7), 1 << 30);
        bits.set(0xfe, false);
        assert_eq!(bits.highest(), Some(0x31));
        assert!(bits.get(0x31) && !bits.get(0x30));
    }

    #[test]
    fn lvt_offsets() {
        assert_eq!(Lvt::from_offset(0x320), Some(Lvt::Timer));
        assert_eq!(Lvt::from_offset(0x350), Some(Lvt::Lint0));
        assert_eq!(Lvt::from_offset(0x370), Some(Lvt::Error));
        assert_eq!(Lvt::from_offset(0x380), None);
        assert_eq!(Lvt::from_offset(0x310), None);
    }

    #[test]
    fn icr_decodes_every_destination_form() {
        // INIT, level assert, physical destination 2.
        let init = Ipi::from_icr(0x0000_4500, 0x0200_0000).unwrap();
        assert_eq!(init.mode, DeliveryMode::Init);
        assert_eq!(init.dest, Destination::Physical(2));
        assert!(init.level && !init.trigger_level && !init.is_init_deassert());
        // INIT de-assert to all but self.
        let deassert = Ipi::from_icr(0x000c_8500, 0).unwrap();
        assert!(deassert.is_init_deassert());
        assert_eq!(deassert.dest, Destination::AllExcludingSelf);
        // SIPI with vector 0x9a.
        let sipi = Ipi::from_icr(0x0000_069a, 0x0100_0000).unwrap();
        assert_eq!(
            (sipi.mode, sipi.vector, sipi.dest),
            (DeliveryMode::StartUp, 0x9a, Destination::Physical(1))
        );
        // Fixed, logical destination 0x0c.
        let logical = Ipi::from_icr(0x0000_0830, 0x0c00_0000).unwrap();
        assert_eq!(
            (logical.mode, logical.dest),
            (DeliveryMode::Fixed, Destination::Logical(0x0c))
        );
        // Shorthands override the destination field and mode.
        assert_eq!(
            Ipi::from_icr(0x0004_0840, 0x0c00_0000).unwrap().dest,
            Destination::SelfOnly
        );
        assert_eq!(
            Ipi::from_icr(0x0008_0040, 0).unwrap().dest,
            Destination::AllIncludingSelf
        );
        assert_eq!(
            Ipi::from_icr(0x0000_0440, 0).unwrap().mode,
            DeliveryMode::Nmi
        );
        assert_eq!(Ipi::from_icr(0x0000_0340, 0), None);
    }
}
