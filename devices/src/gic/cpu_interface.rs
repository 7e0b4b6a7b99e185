//! The GICv2 CPU interface's register map (IHI0048B section 4.4). Every
//! register takes aligned 32-bit accesses only; others read zero and are
//! ignored.

use super::{GIC_SPURIOUS, MIN_ABPR, MIN_BPR, PRIORITY_MASK, State};
use crate::pl011::le_value;

mod reg {
    pub const CTLR: u64 = 0x00;
    pub const PMR: u64 = 0x04;
    pub const BPR: u64 = 0x08;
    pub const IAR: u64 = 0x0c;
    pub const EOIR: u64 = 0x10;
    pub const RPR: u64 = 0x14;
    pub const HPPIR: u64 = 0x18;
    pub const ABPR: u64 = 0x1c;
    pub const AIAR: u64 = 0x20;
    pub const AEOIR: u64 = 0x24;
    pub const AHPPIR: u64 = 0x28;
    pub const APR0: u64 = 0xd0;
    pub const IIDR: u64 = 0xfc;
    pub const DIR: u64 = 0x1000;
}

/// Arm, GICv2 (architecture 2), product 0x020 (GIC-400), revision 0.
pub const GICC_IIDR: u32 = 0x0202_043b;

/// `GICC_CTLR` bits 0-10 (the enables, AckCtl, FIQEn, CBPR, the bypass
/// disables and both EOI modes) are stored.
const CTLR_WRITABLE: u32 = 0x7ff;

impl State {
    pub(super) fn cpu_read(&mut self, cpu: usize, offset: u64, len: usize) -> u64 {
        if len != 4 || offset & 3 != 0 {
            log::debug!("gic: {len}-byte CPU interface read at {offset:#x} ignored");
            return 0;
        }
        let c = &self.cpus[cpu];
        let value = match offset {
            reg::CTLR => c.ctlr,
            reg::PMR => c.pmr,
            reg::BPR => c.bpr,
            reg::ABPR => c.abpr,
            reg::IAR | reg::AIAR => self.acknowledge(cpu),
            reg::RPR => u32::from(c.running_priority()),
            reg::HPPIR | reg::AHPPIR => self.highest_pending_id(cpu),
            reg::APR0 => c.apr,
            reg::IIDR => GICC_IIDR,
            // APR1-3 and the non-secure APRs: RAZ with five priority bits.
            0xd4..=0xec => 0,
            _ => {
                log::debug!("gic: read of unknown CPU interface register {offset:#x}");
                0
            }
        };
        u64::from(value)
    }

    pub(super) fn cpu_write(&mut self, cpu: usize, offset: u64, data: &[u8]) {
        if data.len() != 4 || offset & 3 != 0 {
            log::debug!(
                "gic: {}-byte CPU interface write at {offset:#x} ignored",
                data.len()
            );
            return;
        }
        let value = le_value(data) as u32;
        let c = &mut self.cpus[cpu];
        match offset {
            reg::CTLR => c.ctlr = value & CTLR_WRITABLE,
            reg::PMR => c.pmr = value & u32::from(PRIORITY_MASK),
            reg::BPR => c.bpr = (value & 7).max(MIN_BPR),
            reg::ABPR => c.abpr = (value & 7).max(MIN_ABPR),
            reg::EOIR | reg::AEOIR => self.end_of_interrupt(cpu, value),
            reg::APR0 => c.apr = value,
            reg::DIR => self.deactivate(cpu, value & 0x3ff),
            _ => log::debug!(
                "gic: write of {value:#x} to read-only or unknown CPU interface register {offset:#x} ignored"
            ),
        }
    }

    /// `GICC_HPPIR`: the highest-priority pending interrupt the interface
    /// forwards, whatever the mask and running priority; with the source CPU
    /// for an SGI.
    fn highest_pending_id(&self, cpu: usize) -> u32 {
        match self.best_pending(cpu) {
            Some((id, _, _)) if id < 16 => {
                let source = self.cpus[cpu].sgi_sources[id as usize].trailing_zeros();
                id | (source << 10)
            }
            Some((id, _, _)) => id,
            None => GIC_SPURIOUS,
        }
    }
}
