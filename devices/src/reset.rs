//! The PC's two reset paths: the keyboard controller's pulse-reset command (0xfe
//! to port 0x64) and the reset control register at 0xcf9. Linux's `reboot` tries
//! both (`reboot=k` and `reboot=pci`).

use std::sync::Arc;

use crate::bus::BusDevice;
use crate::lifecycle::VmLifecycle;

/// The i8042 command port.
pub const I8042_PORT: u64 = 0x64;
/// The reset control register.
pub const CF9_PORT: u64 = 0xcf9;

const I8042_CMD_PULSE_RESET: u8 = 0xfe;
/// 0xcf9 bit 2 starts the reset; bit 1 chooses hard over soft, which a VM need not
/// tell apart.
const CF9_RESET_CPU: u8 = 1 << 2;

/// Which of the two ports a [`ResetControl`] instance answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPort {
    I8042,
    Cf9,
}

/// A reset controller at one of the two ports.
pub struct ResetControl {
    port: ResetPort,
    cf9_value: u8,
    lifecycle: Arc<VmLifecycle>,
}

impl ResetControl {
    pub fn new(port: ResetPort, lifecycle: Arc<VmLifecycle>) -> Self {
        ResetControl {
            port,
            cf9_value: 0,
            lifecycle,
        }
    }
}

impl BusDevice for ResetControl {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        match self.port {
            // Status register: output buffer empty, input buffer empty, so a guest
            // waiting for the controller to be ready does not spin forever.
            ResetPort::I8042 => data.fill(0),
            ResetPort::Cf9 => data.fill(self.cf9_value),
        }
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match self.port {
            ResetPort::I8042 if value == I8042_CMD_PULSE_RESET => self.lifecycle.request_reset(),
            ResetPort::I8042 => {}
            ResetPort::Cf9 => {
                if value & CF9_RESET_CPU != 0 {
                    self.lifecycle.request_reset();
                }
                self.cf9_value = value & !CF9_RESET_CPU;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::LifecycleEvent;

    fn after_writes(port: ResetPort, values: &[u8]) -> Option<LifecycleEvent> {
        let lifecycle = Arc::new(VmLifecycle::new());
        let mut device = ResetControl::new(port, lifecycle.clone());
        for &value in values {
            device.write(0, &[value]);
        }
        lifecycle.pending()
    }

    #[test]
    fn i8042_resets_only_on_pulse_command() {
        assert_eq!(after_writes(ResetPort::I8042, &[0xd1, 0x60, 0xad]), None);
        assert_eq!(
            after_writes(ResetPort::I8042, &[0xfe]),
            Some(LifecycleEvent::Reset)
        );
    }

    #[test]
    fn cf9_resets_on_bit_two() {
        assert_eq!(after_writes(ResetPort::Cf9, &[0x02]), None);
        assert_eq!(
            after_writes(ResetPort::Cf9, &[0x02, 0x06]),
            Some(LifecycleEvent::Reset)
        );
        let lifecycle = Arc::new(VmLifecycle::new());
        let mut device = ResetControl::new(ResetPort::Cf9, lifecycle);
        device.write(0, &[0x0a]);
        let mut data = [0u8];
        device.read(0, &mut data);
        assert_eq!(data, [0x0a]);
    }
}
