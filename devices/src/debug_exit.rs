//! QEMU's `isa-debug-exit`: a port that ends the VM with a status of the guest's
//! choosing, so test guests report pass or fail through moat's exit status.

use std::sync::Arc;

use crate::bus::BusDevice;
use crate::lifecycle::VmLifecycle;

/// The port the x86 board maps this device at (size 4), as in QEMU's
/// `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.
pub const DEBUG_EXIT_PORT: u64 = 0xf4;
pub const DEBUG_EXIT_SIZE: u64 = 4;

/// A write of `v` ends the VM with exit status `(v << 1) | 1`, QEMU's encoding:
/// the status is always odd, so it never looks like a clean exit of moat itself.
pub struct DebugExit {
    lifecycle: Arc<VmLifecycle>,
}

impl DebugExit {
    pub fn new(lifecycle: Arc<VmLifecycle>) -> Self {
        DebugExit { lifecycle }
    }
}

impl BusDevice for DebugExit {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        // QEMU's device reads as all-ones too.
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let mut bytes = [0u8; 8];
        let len = data.len().min(8);
        bytes[..len].copy_from_slice(&data[..len]);
        let value = u64::from_le_bytes(bytes);
        // Like QEMU, the host status is the low byte of the shifted value: a process
        // exit status has 8 bits.
        let status = ((value << 1) | 1) & 0xff;
        self.lifecycle.request_shutdown(status as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::LifecycleEvent;

    fn status_after_write(data: &[u8]) -> Option<LifecycleEvent> {
        let lifecycle = Arc::new(VmLifecycle::new());
        DebugExit::new(lifecycle.clone()).write(0, data);
        lifecycle.pending()
    }

    #[test]
    fn encodes_status_like_qemu() {
        assert_eq!(status_after_write(&[0]), Some(LifecycleEvent::Shutdown(1)));
        assert_eq!(
            status_after_write(&[0x10]),
            Some(LifecycleEvent::Shutdown(33))
        );
        assert_eq!(
            status_after_write(&0x7fu32.to_le_bytes()),
            Some(LifecycleEvent::Shutdown(255))
        );
        // Bits shifted out of the byte are lost, as in QEMU.
        assert_eq!(
            status_after_write(&0x1_0000u32.to_le_bytes()),
            Some(LifecycleEvent::Shutdown(1))
        );
    }

    #[test]
    fn reads_all_ones() {
        let mut device = DebugExit::new(Arc::new(VmLifecycle::new()));
        let mut data = [0u8; 4];
        device.read(0, &mut data);
        assert_eq!(data, [0xff; 4]);
    }
}
