//! moat's model of the x86 local APIC (xAPIC mode), used under TCG; under KVM
//! the kernel's in-kernel APIC is used instead.
//!
//! Each vCPU has one [`LocalApic`]: the 4 KiB register page at [`APIC_BASE`]
//! (every CPU sees its own APIC there), interrupt acceptance (IRR → ISR → EOI
//! with TPR/PPR priorities), the ICR that sends IPIs, the timer, the LINT0 pin
//! through which the 8259 PIC reaches the CPU, and the INIT/SIPI start-up state.
//! The [`ApicBus`] owns every CPU's APIC and routes messages between them and
//! from the I/O APIC.
//!
//! Simplifications, all invisible to Linux and common firmware:
//! - The APIC ID is the CPU index and is read-only; at most 255 CPUs (0xff is
//!   the broadcast ID).
//! - The base MSR cannot relocate the page nor enable x2APIC mode.
//! - TSC-deadline timer mode is absent.
//! - LINT1 (usually NMI) has no input; NMIs arrive only as IPIs. SMI and ExtINT
//!   messages are dropped; PIC interrupts come through LINT0 instead
//!   ([`LocalApic::lint0_accepts_extint`]).
//! - Lowest-priority delivery picks the target with the lowest TPR, with no
//!   focus processor and no arbitration rotation.
//! - The thermal, performance-counter and LINT1 entries can be programmed but
//!   nothing raises them.

mod bus;
mod regs;
mod timer;

#[cfg(test)]
mod tests;

pub use bus::{ApicBus, ApicBusError, EoiListener, WakeCpu};
pub use regs::{APIC_VERSION, DeliveryMode, Destination, Ipi};
pub use timer::{APIC_TIMER_HZ, MIN_PERIODIC_NS, TimerSource};

use regs::{
    ICR_LOW_WRITABLE, LVT_COUNT, LVT_DELIVERY_MODE_SHIFT, LVT_MASKED, LVT_TIMER_PERIODIC, Lvt,
    VectorBits, esr, offset,
};
use timer::ApicTimer;

/// Guest-physical address of the xAPIC register page, and its size.
pub const APIC_BASE: u64 = 0xfee0_0000;
pub const APIC_SIZE: u64 = 0x1000;

/// The IA32_APIC_BASE model-specific register.
pub const MSR_APIC_BASE: u32 = 0x1b;
const BASE_BSP: u64 = 1 << 8;
const BASE_X2APIC: u64 = 1 << 10;
const BASE_ENABLE: u64 = 1 << 11;
/// Bits that must be zero: 7:0, 9, and the address bits above a 52-bit
/// physical address width.
const BASE_RESERVED: u64 = 0xff | (1 << 9) | !((1 << 52) - 1);

const SVR_ENABLE: u32 = 1 << 8;
/// Spurious vector, APIC software enable and focus-processor checking; EOI
/// broadcast suppression (bit 12) is absent, as the version register says.
const SVR_WRITABLE: u32 = 0x3ff;
const DELIVERY_MODE_EXTINT: u32 = 0b111;

/// Why a write to IA32_APIC_BASE was refused; the CPU raises #GP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApicBaseError {
    #[error("IA32_APIC_BASE value {0:#x} sets reserved bits")]
    ReservedBits(u64),
    #[error("IA32_APIC_BASE value {0:#x} enables x2APIC mode, which this CPU lacks")]
    X2ApicUnsupported(u64),
}

/// Where a CPU is in the INIT/SIPI start-up protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Executing (or halted, but able to take interrupts).
    Running,
    /// After INIT on an application processor, and at power-on for every AP:
    /// nothing but INIT and a start-up IPI gets it going.
    WaitForSipi,
}

/// A start-up event the CPU must act on, taken with [`LocalApic::take_startup`]
/// (the APIC makes only `Init` and `Sipi`).
pub use crate::irqchip::Startup;

/// What a register write asks of the rest of the machine. The APIC returns it
/// rather than acting, so that its caller can release the APIC's lock first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicEvent {
    /// An ICR write sent this IPI.
    Ipi(Ipi),
    /// An EOI ended a level-triggered interrupt with this vector; the I/O APIC
    /// must clear the remote IRR of the entries that sent it.
    LevelEoi(u8),
}

/// One CPU's local APIC.
pub struct LocalApic {
    id: u8,
    bsp: bool,
    /// IA32_APIC_BASE bit 11: off means the APIC is absent to the guest.
    hw_enabled: bool,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: VectorBits,
    tmr: VectorBits,
    irr: VectorBits,
    /// Errors since the last ESR write; a write moves them into `esr`.
    esr_pending: u32,
    esr: u32,
    icr_low: u32,
    icr_high: u32,
    lvt: [u32; LVT_COUNT],
    timer: ApicTimer,
    run_state: RunState,
    pending_init: bool,
    pending_sipi: Option<u8>,
    pending_nmi: bool,
}

impl LocalApic {
    /// The APIC of the CPU with this APIC ID, in its power-on state; `bsp`
    /// marks the bootstrap processor (the others start waiting for a SIPI).
    pub fn new(id: u8, bsp: bool, timer: Box<dyn TimerSource>) -> Self {
        let mut apic = LocalApic {
            id,
            bsp,
            hw_enabled: true,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            isr: VectorBits::default(),
            tmr: VectorBits::default(),
            irr: VectorBits::default(),
            esr_pending: 0,
            esr: 0,
            icr_low: 0,
            icr_high: 0,
            lvt: [0; LVT_COUNT],
            timer: ApicTimer::new(timer),
            run_state: RunState::Running,
            pending_init: false,
            pending_sipi: None,
            pending_nmi: false,
        };
        apic.power_on_reset();
        apic
    }

    /// RESET: the registers, the base MSR and the start-up state as at power-on.
    pub fn power_on_reset(&mut self) {
        self.hw_enabled = true;
        self.reset_registers();
        self.run_state = if self.bsp {
            RunState::Running
        } else {
            RunState::WaitForSipi
        };
        self.pending_init = false;
        self.pending_sipi = None;
        self.pending_nmi = false;
    }

    /// The register state after RESET or INIT (SDM "Local APIC State After
    /// Power-Up or Reset"): everything zero, DFR all ones, the APIC software
    /// disabled with spurious vector 0xff, every LVT masked. The one exception is
    /// the BSP's LINT0, unmasked in ExtINT mode as KVM and QEMU leave it, so the
    /// 8259 reaches CPU 0 without firmware programming the APIC.
    fn reset_registers(&mut self) {
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = 0xffff_ffff;
        self.svr = 0xff;
        self.isr = VectorBits::default();
        self.tmr = VectorBits::default();
        self.irr = VectorBits::default();
        self.esr_pending = 0;
        self.esr = 0;
        self.icr_low = 0;
        self.icr_high = 0;
        self.lvt = [LVT_MASKED; LVT_COUNT];
        if self.bsp {
            self.lvt[Lvt::Lint0 as usize] = DELIVERY_MODE_EXTINT << LVT_DELIVERY_MODE_SHIFT;
        }
        self.timer.reset();
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    pub fn is_bsp(&self) -> bool {
        self.bsp
    }

    /// Whether the APIC is enabled both in IA32_APIC_BASE and by software (SVR
    /// bit 8); only then does it hand fixed interrupts to the CPU.
    pub fn is_enabled(&self) -> bool {
        self.hw_enabled && self.svr & SVR_ENABLE != 0
    }

    /// Reads the register page; anything but an aligned 32-bit access to a
    /// register reads as zero.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        let value = match register_access(offset, data.len()) {
            Some(offset) if self.hw_enabled => self.read_register(offset),
            _ => {
                log::debug!(
                    "lapic {}: {}-byte read at {offset:#x} ignored",
                    self.id,
                    data.len()
                );
                0
            }
        };
        let bytes = value.to_le_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = bytes.get(i).copied().unwrap_or(0);
        }
    }

    /// Writes the register page; anything but an aligned 32-bit access to a
    /// register is ignored.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Option<ApicEvent> {
        match (
            register_access(offset, data.len()),
            <[u8; 4]>::try_from(data),
        ) {
            (Some(offset), Ok(bytes)) if self.hw_enabled => {
                self.write_register(offset, u32::from_le_bytes(bytes))
            }
            _ => {
                log::debug!(
                    "lapic {}: {}-byte write at {offset:#x} ignored",
                    self.id,
                    data.len()
                );
                None
            }
        }
    }

    fn read_register(&self, offset: u64) -> u32 {
        let word = |base: u64| ((offset - base) / 0x10) as usize;
        match offset {
            offset::ID => u32::from(self.id) << 24,
            offset::VERSION => APIC_VERSION,
            offset::TPR => self.tpr,
            offset::PPR => u32::from(self.ppr()),
            offset::LDR => self.ldr,
            offset::DFR => self.dfr,
            offset::SVR => self.svr,
            0x100..=0x170 => self.isr.word(word(offset::ISR)),
            0x180..=0x1f0 => self.tmr.word(word(offset::TMR)),
            0x200..=0x270 => self.irr.word(word(offset::IRR)),
            offset::ESR => self.esr,
            offset::ICR_LOW => self.icr_low,
            offset::ICR_HIGH => self.icr_high,
            offset::TIMER_INITIAL => self.timer.initial_count(),
            offset::TIMER_CURRENT => self.timer.current_count(self.timer_periodic()),
            offset::TIMER_DIVIDE => self.timer.divide_config(),
            // APR and RRD exist and read as zero, like the write-only EOI.
            offset::APR | offset::RRD | offset::EOI => 0,
            _ => match Lvt::from_offset(offset) {
                Some(lvt) => self.lvt[lvt as usize],
                None => {
                    log::debug!("lapic {}: read of unknown register {offset:#x}", self.id);
                    0
                }
            },
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) -> Option<ApicEvent> {
        match offset {
            offset::TPR => self.tpr = value & 0xff,
            offset::EOI => return self.eoi().map(ApicEvent::LevelEoi),
            offset::LDR => self.ldr = value & 0xff00_0000,
            offset::DFR => self.dfr = value | 0x0fff_ffff,
            offset::SVR => {
                self.svr = value & SVR_WRITABLE;
                if self.svr & SVR_ENABLE == 0 {
                    // Software disable masks every LVT entry (SDM "Spurious
                    // Interrupt"); they stay masked until software unmasks them.
                    for entry in &mut self.lvt {
                        *entry |= LVT_MASKED;
                    }
                }
            }
            offset::ESR => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            offset::ICR_LOW => {
                self.icr_low = value & ICR_LOW_WRITABLE;
                return self.send_ipi();
            }
            offset::ICR_HIGH => self.icr_high = value & 0xff00_0000,
            offset::TIMER_INITIAL => self.timer.set_initial(value),
            offset::TIMER_DIVIDE => self.timer.set_divide(value, self.timer_periodic()),
            _ => match Lvt::from_offset(offset) {
                Some(lvt) => self.write_lvt(lvt, value),
                None => log::debug!(
                    "lapic {}: write of {value:#x} to read-only or unknown register {offset:#x} ignored",
                    self.id
                ),
            },
        }
        None
    }

    fn write_lvt(&mut self, lvt: Lvt, value: u32) {
        let mut entry = value & lvt.writable_bits();
        if self.svr & SVR_ENABLE == 0 {
            entry |= LVT_MASKED;
        }
        let was_periodic = self.timer_periodic();
        self.lvt[lvt as usize] = entry;
        if lvt == Lvt::Timer && self.timer_periodic() != was_periodic {
            self.timer.mode_changed(self.timer_periodic());
        }
    }

    fn send_ipi(&mut self) -> Option<ApicEvent> {
        let Some(ipi) = Ipi::from_icr(self.icr_low, self.icr_high) else {
            log::debug!(
                "lapic {}: IPI with reserved delivery mode ({:#x}) dropped",
                self.id,
                self.icr_low
            );
            return None;
        };
        let needs_vector = matches!(ipi.mode, DeliveryMode::Fixed | DeliveryMode::LowestPriority);
        if needs_vector && ipi.vector < 16 {
            self.record_error(esr::SEND_ILLEGAL_VECTOR);
            return None;
        }
        Some(ApicEvent::Ipi(ipi))
    }

    /// Notes an error for the next ESR write to latch, and raises the LVT error
    /// interrupt if it is unmasked.
    fn record_error(&mut self, bit: u32) {
        self.esr_pending |= bit;
        let entry = self.lvt[Lvt::Error as usize];
        let vector = entry as u8;
        // A too-small error vector would only report another error; drop it.
        if entry & LVT_MASKED == 0 && vector >= 16 {
            self.irr.set(vector, true);
            self.tmr.set(vector, false);
        }
    }

    /// Accepts a fixed (or lowest-priority) interrupt: sets its IRR bit, and its
    /// TMR bit if it is level-triggered so that its EOI is reported.
    pub fn accept_fixed(&mut self, vector: u8, level_triggered: bool) {
        if !self.hw_enabled {
            return;
        }
        if vector < 16 {
            self.record_error(esr::RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        self.irr.set(vector, true);
        self.tmr.set(vector, level_triggered);
    }

    /// The processor priority: the TPR, or the class of the highest in-service
    /// vector if that is higher.
    pub fn ppr(&self) -> u8 {
        let tpr = self.tpr as u8;
        let isrv = self.isr.highest().unwrap_or(0);
        if tpr >> 4 >= isrv >> 4 {
            tpr
        } else {
            isrv & 0xf0
        }
    }

    /// The interrupt the CPU would take now: the highest requested vector whose
    /// priority class is above the PPR's, if the APIC is enabled.
    pub fn highest_pending(&self) -> Option<u8> {
        if !self.is_enabled() {
            return None;
        }
        let vector = self.irr.highest()?;
        (vector >> 4 > self.ppr() >> 4).then_some(vector)
    }

    /// The CPU's interrupt acknowledge: moves [`Self::highest_pending`] from IRR
    /// to ISR and returns it.
    pub fn acknowledge(&mut self) -> Option<u8> {
        let vector = self.highest_pending()?;
        self.irr.set(vector, false);
        self.isr.set(vector, true);
        Some(vector)
    }

    /// End of interrupt: retires the highest in-service vector; returns it if it
    /// was level-triggered.
    fn eoi(&mut self) -> Option<u8> {
        let vector = self.isr.highest()?;
        self.isr.set(vector, false);
        self.tmr.get(vector).then_some(vector)
    }

    /// CR8, the TPR's priority class, as `mov cr8` sees it.
    pub fn cr8(&self) -> u8 {
        (self.tpr >> 4) as u8 & 0xf
    }

    pub fn set_cr8(&mut self, value: u8) {
        self.tpr = u32::from(value & 0xf) << 4;
    }

    /// Whether the CPU should take interrupts from the 8259 PIC: LINT0 is
    /// unmasked in ExtINT mode, or the APIC is globally disabled and the PIC's
    /// INTR goes straight to the CPU.
    pub fn lint0_accepts_extint(&self) -> bool {
        let lint0 = self.lvt[Lvt::Lint0 as usize];
        !self.hw_enabled
            || (lint0 & LVT_MASKED == 0
                && (lint0 >> LVT_DELIVERY_MODE_SHIFT) & 7 == DELIVERY_MODE_EXTINT)
    }

    /// IA32_APIC_BASE: the page address, the BSP flag and the global enable.
    pub fn base_msr(&self) -> u64 {
        let mut value = APIC_BASE;
        if self.bsp {
            value |= BASE_BSP;
        }
        if self.hw_enabled {
            value |= BASE_ENABLE;
        }
        value
    }

    /// Writes IA32_APIC_BASE. Clearing the enable bit disables the APIC and
    /// returns its registers to their reset state (as the SDM says they are when
    /// it is enabled again). A different base address is ignored: the page cannot
    /// move. The BSP flag is read-only here.
    pub fn set_base_msr(&mut self, value: u64) -> Result<(), ApicBaseError> {
        if value & BASE_X2APIC != 0 {
            return Err(ApicBaseError::X2ApicUnsupported(value));
        }
        if value & BASE_RESERVED != 0 {
            return Err(ApicBaseError::ReservedBits(value));
        }
        if value & !0xfff != APIC_BASE {
            log::debug!(
                "lapic {}: relocation to {:#x} unsupported, the page stays at {APIC_BASE:#x}",
                self.id,
                value & !0xfff
            );
        }
        let enable = value & BASE_ENABLE != 0;
        if self.hw_enabled && !enable {
            self.reset_registers();
        }
        self.hw_enabled = enable;
        Ok(())
    }

    /// The timer's host deadline passed. Returns whether an interrupt was raised.
    pub fn timer_expired(&mut self) -> bool {
        if !self.timer.expire(self.timer_periodic()) {
            return false;
        }
        let entry = self.lvt[Lvt::Timer as usize];
        if entry & LVT_MASKED != 0 {
            return false;
        }
        self.accept_fixed(entry as u8, false);
        true
    }

    fn timer_periodic(&self) -> bool {
        self.lvt[Lvt::Timer as usize] & LVT_TIMER_PERIODIC != 0
    }

    /// VM time as the timer sees it.
    pub fn now_ns(&self) -> u64 {
        self.timer.now_ns()
    }

    /// Whether this APIC's logical destination matches `dest`, in the flat model
    /// (DFR model 0xf: any common bit) or the cluster model (model 0: same
    /// cluster in the high nibble, or cluster 0xf for all, and a common bit in
    /// the low nibble).
    pub fn matches_logical(&self, dest: u8) -> bool {
        let logical_id = (self.ldr >> 24) as u8;
        match self.dfr >> 28 {
            0xf => logical_id & dest != 0,
            0x0 => {
                let same_cluster = dest >> 4 == 0xf || dest >> 4 == logical_id >> 4;
                same_cluster && logical_id & dest & 0xf != 0
            }
            _ => false,
        }
    }

    /// INIT: the registers return to their reset state (the ID stays), and an AP
    /// waits for a SIPI.
    pub fn receive_init(&mut self) {
        self.reset_registers();
        self.pending_init = true;
        self.pending_sipi = None;
        if !self.bsp {
            self.run_state = RunState::WaitForSipi;
        }
    }

    /// A start-up IPI; ignored unless the CPU is waiting for one. Returns whether
    /// it was taken.
    pub fn receive_sipi(&mut self, vector: u8) -> bool {
        if self.run_state != RunState::WaitForSipi {
            return false;
        }
        self.pending_sipi = Some(vector);
        self.run_state = RunState::Running;
        true
    }

    pub fn receive_nmi(&mut self) {
        self.pending_nmi = true;
    }

    /// Takes a pending NMI, for the CPU to deliver.
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.pending_nmi)
    }

    /// Whether an INIT, a start-up IPI or an NMI waits to be taken: what can
    /// wake a CPU halted with interrupts masked or waiting for a SIPI.
    pub fn wake_pending(&self) -> bool {
        self.pending_init || self.pending_sipi.is_some() || self.pending_nmi
    }

    pub fn run_state(&self) -> RunState {
        self.run_state
    }

    pub fn is_waiting_for_sipi(&self) -> bool {
        self.run_state == RunState::WaitForSipi
    }

    /// The next start-up event for the CPU: INIT before a SIPI that followed it.
    pub fn take_startup(&mut self) -> Option<Startup> {
        if std::mem::take(&mut self.pending_init) {
            return Some(Startup::Init);
        }
        self.pending_sipi.take().map(Startup::Sipi)
    }
}

/// The register offset of an access, if it is an aligned 32-bit access to the
/// start of a 16-byte register slot inside the page.
fn register_access(offset: u64, len: usize) -> Option<u64> {
    (len == 4 && offset.is_multiple_of(0x10) && offset < APIC_SIZE).then_some(offset)
}
