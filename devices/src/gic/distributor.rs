//! The GICv2 distributor's register map (IHI0048B section 4.3).
//!
//! Word registers take aligned 32-bit accesses; the priority, target and
//! SGI-pending registers also take single bytes, as the spec allows. Other
//! accesses read zero and are ignored, logged at debug level.

use super::{
    Bits, CTLR_GRP0, CTLR_GRP1, GIC_NUM_IRQS, GIC_SPI_BASE, PRIORITY_MASK, SGI_BITS, State, WORDS,
};
use crate::pl011::le_value;

mod reg {
    pub const CTLR: u64 = 0x000;
    pub const TYPER: u64 = 0x004;
    pub const IIDR: u64 = 0x008;
    pub const IGROUPR: u64 = 0x080;
    pub const ISENABLER: u64 = 0x100;
    pub const ICENABLER: u64 = 0x180;
    pub const ISPENDR: u64 = 0x200;
    pub const ICPENDR: u64 = 0x280;
    pub const ISACTIVER: u64 = 0x300;
    pub const ICACTIVER: u64 = 0x380;
    pub const IPRIORITYR: u64 = 0x400;
    pub const ITARGETSR: u64 = 0x800;
    pub const ICFGR: u64 = 0xc00;
    pub const SGIR: u64 = 0xf00;
    pub const CPENDSGIR: u64 = 0xf10;
    pub const SPENDSGIR: u64 = 0xf20;
    pub const ID: u64 = 0xfd0;
}

/// Arm's JEP106 code in bits 11:0, product 0x020 (GIC-400), revision 0.
pub const GICD_IIDR: u32 = 0x0200_043b;

/// PIDR4-7, PIDR0-3 and CIDR0-3 from 0xfd0: a GIC-400's.
const ID_REGS: [u8; 12] = [
    0x04, 0x00, 0x00, 0x00, 0x90, 0xb4, 0x2b, 0x00, 0x0d, 0xf0, 0x05, 0xb1,
];

/// The bit-per-interrupt register banks, by their set/clear base offsets.
#[derive(Clone, Copy)]
enum BitReg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

impl BitReg {
    /// The bank at `offset` and the word index within it.
    fn decode(offset: u64) -> Option<(BitReg, usize)> {
        let bank = match offset & !0x7f {
            reg::IGROUPR => BitReg::Group,
            reg::ISENABLER => BitReg::SetEnable,
            reg::ICENABLER => BitReg::ClearEnable,
            reg::ISPENDR => BitReg::SetPending,
            reg::ICPENDR => BitReg::ClearPending,
            reg::ISACTIVER => BitReg::SetActive,
            reg::ICACTIVER => BitReg::ClearActive,
            _ => return None,
        };
        Some((bank, ((offset & 0x7f) / 4) as usize))
    }

    fn read(self, bits: &Bits) -> u32 {
        match self {
            BitReg::Group => bits.group,
            BitReg::SetEnable | BitReg::ClearEnable => bits.enabled,
            BitReg::SetPending | BitReg::ClearPending => bits.pending(),
            BitReg::SetActive | BitReg::ClearActive => bits.active,
        }
    }

    /// Writes `value` to word `w`. SGIs' pending bits change only through
    /// `GICD_SGIR` and the SGI pending registers.
    fn write(self, bits: &mut Bits, w: usize, value: u32) {
        let pendable = if w == 0 { value & !SGI_BITS } else { value };
        match self {
            BitReg::Group => bits.group = value,
            BitReg::SetEnable => bits.enabled |= value,
            BitReg::ClearEnable => bits.enabled &= !value,
            BitReg::SetPending => bits.latch |= pendable,
            // A level interrupt whose input is high stays pending.
            BitReg::ClearPending => bits.latch &= !pendable,
            BitReg::SetActive => bits.active |= value,
            BitReg::ClearActive => bits.active &= !value,
        }
    }
}

impl State {
    pub(super) fn dist_read(&self, cpu: usize, offset: u64, len: usize) -> u64 {
        if len == 1
            && let Some(byte) = self.dist_read_byte(cpu, offset)
        {
            return u64::from(byte);
        }
        if len != 4 || offset & 3 != 0 {
            log::debug!("gic: {len}-byte distributor read at {offset:#x} ignored");
            return 0;
        }
        if let Some((bank, w)) = BitReg::decode(offset) {
            return self
                .bits(cpu, w)
                .map_or(0, |bits| u64::from(bank.read(bits)));
        }
        let value = match offset {
            reg::CTLR => self.ctlr,
            reg::TYPER => (WORDS as u32 - 1) | ((self.cpu_count() - 1) << 5),
            reg::IIDR => GICD_IIDR,
            0xc00..=0xcfc => self.icfgr(cpu, ((offset - reg::ICFGR) / 4) as u32),
            reg::ID..=0xffc => u32::from(ID_REGS[((offset - reg::ID) / 4) as usize]),
            _ => match self.byte_register(offset) {
                true => (0..4).fold(0, |acc, i| {
                    acc | u32::from(self.dist_read_byte(cpu, offset + i).unwrap_or(0)) << (8 * i)
                }),
                false => {
                    log::debug!("gic: read of unknown distributor register {offset:#x}");
                    0
                }
            },
        };
        u64::from(value)
    }

    pub(super) fn dist_write(&mut self, cpu: usize, offset: u64, data: &[u8]) {
        let value = le_value(data) as u32;
        if data.len() == 1 && self.byte_register(offset) {
            self.dist_write_byte(cpu, offset, value as u8);
            return;
        }
        if data.len() != 4 || offset & 3 != 0 {
            log::debug!(
                "gic: {}-byte distributor write at {offset:#x} ignored",
                data.len()
            );
            return;
        }
        if let Some((bank, w)) = BitReg::decode(offset) {
            if let Some(bits) = self.bits_mut(cpu, w) {
                bank.write(bits, w, value);
            }
            return;
        }
        match offset {
            reg::CTLR => self.ctlr = value & (CTLR_GRP0 | CTLR_GRP1),
            0xc00..=0xcfc => self.set_icfgr(((offset - reg::ICFGR) / 4) as u32, value),
            reg::SGIR => self.write_sgir(cpu, value),
            _ if self.byte_register(offset) => {
                for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
                    self.dist_write_byte(cpu, offset + i as u64, byte);
                }
            }
            _ => log::debug!(
                "gic: write of {value:#x} to read-only or unknown distributor register {offset:#x} ignored"
            ),
        }
    }

    /// Whether `offset` is in a byte-accessible register.
    fn byte_register(&self, offset: u64) -> bool {
        matches!(offset, 0x400..=0xbff | 0xf10..=0xf2f)
    }

    fn dist_read_byte(&self, cpu: usize, offset: u64) -> Option<u8> {
        let byte = match offset {
            0x400..=0x7ff => {
                let id = (offset - reg::IPRIORITYR) as u32;
                if id < GIC_NUM_IRQS {
                    self.priority(cpu, id)
                } else {
                    0
                }
            }
            0x800..=0xbff => {
                let id = (offset - reg::ITARGETSR) as u32;
                if id >= GIC_NUM_IRQS {
                    0
                } else if id < GIC_SPI_BASE || self.cpu_count() == 1 {
                    1 << cpu
                } else {
                    self.spi_targets[(id - GIC_SPI_BASE) as usize]
                }
            }
            // Each SGI's byte holds the CPUs it is pending from.
            0xf10..=0xf2f => self.cpus[cpu].sgi_sources[((offset - reg::CPENDSGIR) % 16) as usize],
            _ => return None,
        };
        Some(byte)
    }

    fn dist_write_byte(&mut self, cpu: usize, offset: u64, value: u8) {
        let cpu_mask = self.cpu_mask();
        match offset {
            0x400..=0x7ff => {
                let id = (offset - reg::IPRIORITYR) as u32;
                let value = value & PRIORITY_MASK;
                if id < GIC_SPI_BASE {
                    self.cpus[cpu].priority[id as usize] = value;
                } else if id < GIC_NUM_IRQS {
                    self.spi_priority[(id - GIC_SPI_BASE) as usize] = value;
                }
            }
            0x800..=0xbff => {
                let id = (offset - reg::ITARGETSR) as u32;
                if (GIC_SPI_BASE..GIC_NUM_IRQS).contains(&id) && self.cpu_count() > 1 {
                    self.spi_targets[(id - GIC_SPI_BASE) as usize] = value & cpu_mask;
                }
            }
            0xf10..=0xf2f => {
                let sgi = ((offset - reg::CPENDSGIR) % 16) as usize;
                let c = &mut self.cpus[cpu];
                if offset < reg::SPENDSGIR {
                    c.sgi_sources[sgi] &= !value;
                } else {
                    c.sgi_sources[sgi] |= value & cpu_mask;
                }
                if c.sgi_sources[sgi] == 0 {
                    c.private.latch &= !(1 << sgi);
                } else {
                    c.private.latch |= 1 << sgi;
                }
            }
            _ => {}
        }
    }

    /// `GICD_ICFGR<n>`: two bits per interrupt, bit 1 set for edge.
    fn icfgr(&self, cpu: usize, n: u32) -> u32 {
        let w = (n / 2) as usize;
        let Some(bits) = self.bits(cpu, w) else {
            return 0;
        };
        let half = bits.edge >> ((n % 2) * 16);
        (0..16).fold(0, |acc, i| {
            acc | if half & (1 << i) != 0 {
                2 << (2 * i)
            } else {
                0
            }
        })
    }

    /// SGIs and PPIs have a fixed configuration; SPIs take bit 1 of each pair.
    fn set_icfgr(&mut self, n: u32, value: u32) {
        let w = (n / 2) as usize;
        if w == 0 || w >= WORDS {
            return;
        }
        let half = (0..16).fold(0u32, |acc, i| {
            acc | if value & (2 << (2 * i)) != 0 {
                1 << i
            } else {
                0
            }
        });
        let shift = (n % 2) * 16;
        let bits = &mut self.shared[w - 1];
        bits.edge = (bits.edge & !(0xffff << shift)) | (half << shift);
    }

    /// `GICD_SGIR`: sends an SGI from CPU `cpu`.
    fn write_sgir(&mut self, cpu: usize, value: u32) {
        let list = ((value >> 16) & 0xff) as u8;
        let targets = match (value >> 24) & 3 {
            0 => list,
            1 => !(1u8 << cpu),
            2 => 1 << cpu,
            _ => {
                log::debug!("gic: SGIR write {value:#x} with the reserved filter ignored");
                0
            }
        };
        self.send_sgi(cpu, targets & self.cpu_mask(), value & 0xf);
    }
}
