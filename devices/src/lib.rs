//! Buses and emulated devices.
//!
//! Every accelerator dispatches guest device accesses to the same [`Bus`]: KVM from
//! its exit handler, TCG from its slow memory path. A device therefore behaves the
//! same whichever accelerator runs the guest. Devices know nothing of accelerators
//! or boards: a board maps them at addresses, and devices that must end or reset the
//! machine do so through the shared [`VmLifecycle`].

pub mod bus;
pub mod clock;
pub mod debug_exit;
pub mod irq;
pub mod lifecycle;
pub mod pic;
pub mod reset;
pub mod serial;

pub use bus::{Bus, BusDevice, BusError, SharedDevice};
pub use clock::{Clock, ThreadSetup, Timer, TimerFn};
pub use debug_exit::{DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, DebugExit};
pub use irq::{IrqLine, IrqRouter, IrqSink, LineKind, ResampleFn};
pub use lifecycle::{LifecycleEvent, VmLifecycle};
pub use pic::{
    ELCR_PORT, ELCR_SIZE, EoiFn, IntrFn, MASTER_PIC_PORT, Notices, PIC_SIZE, Pic8259Pair, PicPorts,
    PicWindow, SLAVE_PIC_PORT, SharedPic,
};
pub use reset::{CF9_PORT, I8042_PORT, ResetControl, ResetPort};
pub use serial::{COM1_PORT, SerialOutput, UART_SIZE, Uart16550};
