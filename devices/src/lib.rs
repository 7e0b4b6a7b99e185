//! Buses and emulated devices.
//!
//! Every accelerator dispatches guest device accesses to the same [`Bus`]: KVM from
//! its exit handler, TCG from its slow memory path. A device therefore behaves the
//! same whichever accelerator runs the guest. Devices know nothing of accelerators
//! or boards: a board maps them at addresses, and devices that must end or reset the
//! machine do so through the shared [`VmLifecycle`].

pub mod bus;
pub mod console;
pub mod debug_exit;
pub mod interrupt;
pub mod ioapic;
pub mod irqchip;
pub mod kick;
pub mod lapic;
pub mod lifecycle;
pub mod reset;
pub mod serial;

pub use bus::{Bus, BusDevice, BusError, SharedDevice};
pub use console::{ConsoleInput, ConsoleWriter, HostConsole, SerialOutput};
pub use debug_exit::{DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, DebugExit};
pub use interrupt::{InterruptLine, NoInterrupt};
pub use irqchip::{
    InterruptController, NoInterruptController, Startup, current_vcpu, set_current_vcpu,
};
pub use kick::VcpuKick;
pub use lifecycle::{LifecycleEvent, VmLifecycle};
pub use reset::{CF9_PORT, I8042_PORT, ResetControl, ResetPort};
pub use serial::{COM1_PORT, UART_SIZE, Uart16550};
