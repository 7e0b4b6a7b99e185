//! Interrupt lines from devices to whatever interrupt controller the board has.

/// An edge-triggered interrupt line a device raises. The board decides where it
/// goes (an in-kernel irqchip through an eventfd, TCG's interrupt controller
/// model, or nowhere).
pub trait InterruptLine: Send {
    fn trigger(&self);
}

/// A line connected to nothing, for boards without an interrupt controller and for
/// tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInterrupt;

impl InterruptLine for NoInterrupt {
    fn trigger(&self) {}
}
