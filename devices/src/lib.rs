//! Buses and emulated devices.
//!
//! Every accelerator dispatches guest device accesses to the same [`Bus`]: KVM from
//! its exit handler, TCG from its slow memory path. A device therefore behaves the
//! same whichever accelerator runs the guest. Devices know nothing of accelerators
//! or boards: a board maps them at addresses, and devices that must end or reset the
//! machine do so through the shared [`VmLifecycle`].
//!
//! The platform services devices share, one of each per VM:
//!
//! - [`IrqRouter`]: every interrupt line ([`IrqLine`], edge or level) goes through
//!   it to the interrupt controller the board connects as an [`IrqSink`] (moat's
//!   own [`Pic8259Pair`] under TCG, the in-kernel irqchip under KVM). Level lines
//!   are resampled at end of interrupt; [`irq`] documents the protocol.
//! - [`Clock`]: guest time from the host's monotonic clock, counters at any rate,
//!   and [`Timer`]s that run callbacks on the clock's own thread. Devices compute
//!   their counters from it instead of ticking ([`Pit`]).
//!
//! A PC board wires them roughly so:
//!
//! ```text
//!   let router = IrqRouter::new();
//!   let pic = SharedPic::new(Pic8259Pair::new(kick_cpu0, Some(eoi_to(Weak router))));
//!   router.connect(Arc::new(pic.clone()));
//!   pio: 0x20 pic.ports(Master), 0xa0 pic.ports(Slave), 0x4d0 pic.ports(Elcr)
//!   let clock = Clock::new();
//!   let pit = Pit::new(clock.clone(), router.line(0, LineKind::Edge));
//!   pio: 0x40 PitPorts(pit.clone()), 0x61 SpeakerPort(pit)
//!   pio: 0x3f8 Uart16550::new(router.line(4, LineKind::Edge), output)
//!   clock.start(install_clock_thread_seccomp)
//! ```

pub mod arm_timer;
pub mod bus;
pub mod clock;
pub mod console;
pub mod debug_exit;
pub mod gic;
pub mod ioapic;
pub mod irq;
pub mod irqchip;
pub mod kick;
pub mod lapic;
pub mod lifecycle;
pub mod pic;
pub mod pit;
pub mod pl011;
pub mod pl031;
pub mod reset;
pub mod rtc;
pub mod serial;
pub mod virtio;

pub use arm_timer::{ArmTimer, CNTFRQ_HZ, PHYS_TIMER_INTID, PpiFn, TimerReg, VIRT_TIMER_INTID};
pub use bus::{Bus, BusDevice, BusError, SharedDevice};
pub use clock::{Clock, ThreadSetup, Timer, TimerFn};
pub use console::{ConsoleInput, ConsoleWriter, HostConsole, SerialOutput};
pub use debug_exit::{DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, DebugExit};
pub use gic::{
    GIC_NUM_IRQS, GIC_SPI_BASE, GIC_SPI_COUNT, GIC_SPURIOUS, GICC_SIZE, GICD_SIZE, Gic,
    GicCpuInterface, GicDistributor, GicError, SpiEoiListener, VirtInterrupts,
};
pub use irq::{IrqLine, IrqRouter, IrqSink, LineKind, ResampleFn};
pub use irqchip::{
    CpuRegister, InterruptController, NoInterruptController, Startup, current_vcpu,
    set_current_vcpu,
};
pub use kick::VcpuKick;
pub use lifecycle::{CpuOnError, CpuPower, LifecycleEvent, VmLifecycle};
pub use pic::{
    ELCR_PORT, ELCR_SIZE, EoiFn, IntrFn, MASTER_PIC_PORT, Notices, PIC_SIZE, Pic8259Pair, PicPorts,
    PicWindow, SLAVE_PIC_PORT, SharedPic,
};
pub use pit::{PIT_HZ, PIT_PORT, PIT_SIZE, Pit, PitPorts, SPEAKER_PORT, SPEAKER_SIZE, SpeakerPort};
pub use pl011::{PL011_SIZE, Pl011};
pub use pl031::{PL031_SIZE, Pl031};
pub use reset::{CF9_PORT, I8042_PORT, ResetControl, ResetPort};
pub use rtc::{RTC_IRQ, RTC_PORT, RTC_SIZE, Rtc, RtcPorts, pc_memory_bytes};
pub use serial::{COM1_PORT, UART_SIZE, Uart16550};
pub use virtio::{
    VIRTIO_MMIO_SIZE, VirtioBlock, VirtioConsole, VirtioDevice, VirtioMmio, VirtioRng,
};
