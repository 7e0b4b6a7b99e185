//! What to do with each KVM exit: a pure function of the exit and the buses, so
//! it is tested without a VM (as Firecracker's `handle_kvm_exit` is).

use devices::{Bus, LifecycleEvent};
use kvm_ioctls::VcpuExit as KvmExit;
use machine::VcpuExit;

use crate::error::KvmFailure;

/// The run loop's next step after an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitAction {
    /// Handled; enter the guest again.
    Continue,
    /// The vCPU executed `hlt` and no interrupt can wake it: without an
    /// interrupt controller nothing ever will.
    Halt,
    /// KVM_EXIT_SHUTDOWN: the x86 CPU shut down, a triple fault.
    TripleFault,
    /// A lifecycle event the guest raised through KVM itself.
    Exit(VcpuExit),
    /// KVM_EXIT_INTERNAL_ERROR; the caller reads the suberror.
    InternalError,
    /// Anything else: moat cannot continue.
    Fail(KvmFailure),
}

/// Handles one exit. `io_size` is the width of one port access, which KVM
/// reports separately from the data of a string (`rep ins/outs`) access.
pub fn dispatch_exit(exit: KvmExit<'_>, io_size: usize, pio: &Bus, mmio: &Bus) -> ExitAction {
    let io_size = io_size.max(1);
    match exit {
        KvmExit::IoOut(port, data) => {
            for chunk in data.chunks(io_size) {
                pio.write(u64::from(port), chunk);
            }
            ExitAction::Continue
        }
        KvmExit::IoIn(port, data) => {
            for chunk in data.chunks_mut(io_size) {
                pio.read(u64::from(port), chunk);
            }
            ExitAction::Continue
        }
        KvmExit::MmioRead(addr, data) => {
            mmio.read(addr, data);
            ExitAction::Continue
        }
        KvmExit::MmioWrite(addr, data) => {
            mmio.write(addr, data);
            ExitAction::Continue
        }
        KvmExit::Hlt => ExitAction::Halt,
        KvmExit::Shutdown => ExitAction::TripleFault,
        KvmExit::Intr => ExitAction::Continue,
        KvmExit::InternalError => ExitAction::InternalError,
        KvmExit::SystemEvent(kind, _) => match kind {
            kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => ExitAction::Exit(VcpuExit::Shutdown(0)),
            kvm_bindings::KVM_SYSTEM_EVENT_RESET => ExitAction::Exit(VcpuExit::Reset),
            other => ExitAction::Fail(KvmFailure::SystemEvent(other)),
        },
        KvmExit::FailEntry(reason, cpu) => ExitAction::Fail(KvmFailure::FailEntry { reason, cpu }),
        other => ExitAction::Fail(KvmFailure::UnexpectedExit {
            exit: format!("{other:?}"),
        }),
    }
}

/// The vCPU exit for a lifecycle request.
pub(crate) fn lifecycle_exit(event: LifecycleEvent) -> VcpuExit {
    match event {
        LifecycleEvent::Shutdown(status) => VcpuExit::Shutdown(status),
        LifecycleEvent::Reset => VcpuExit::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::{BusDevice, DebugExit, VmLifecycle};
    use std::sync::{Arc, Mutex};

    /// Records every access it sees.
    #[derive(Default)]
    struct Recorder(Vec<(u64, Vec<u8>)>);
    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(0x40 + offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    fn buses() -> (Bus, Bus, Arc<Mutex<Recorder>>) {
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let mut pio = Bus::new("pio");
        pio.insert(recorder.clone(), 0x3f8, 8).unwrap();
        let mut mmio = Bus::new("mmio");
        mmio.insert(recorder.clone(), 0xd000_0000, 0x1000).unwrap();
        (pio, mmio, recorder)
    }

    #[test]
    fn port_string_accesses_go_out_one_element_at_a_time() {
        let (pio, mmio, recorder) = buses();
        let data = *b"hi";
        assert_eq!(
            dispatch_exit(KvmExit::IoOut(0x3f8, &data), 1, &pio, &mmio),
            ExitAction::Continue
        );
        assert_eq!(
            recorder.lock().unwrap().0,
            vec![(0, b"h".to_vec()), (0, b"i".to_vec())]
        );
        let mut wide = [0u8; 4];
        dispatch_exit(KvmExit::IoIn(0x3fa, &mut wide), 2, &pio, &mmio);
        assert_eq!(wide, [0x42; 4]);
        // Unmapped ports read as all-ones.
        let mut unmapped = [0u8; 1];
        dispatch_exit(KvmExit::IoIn(0x80, &mut unmapped), 1, &pio, &mmio);
        assert_eq!(unmapped, [0xff]);
    }

    #[test]
    fn mmio_goes_to_the_mmio_bus() {
        let (pio, mmio, recorder) = buses();
        dispatch_exit(
            KvmExit::MmioWrite(0xd000_0010, &[1, 2, 3, 4]),
            0,
            &pio,
            &mmio,
        );
        assert_eq!(recorder.lock().unwrap().0, vec![(0x10, vec![1, 2, 3, 4])]);
        let mut data = [0u8; 8];
        dispatch_exit(KvmExit::MmioRead(0xe000_0000, &mut data), 0, &pio, &mmio);
        assert_eq!(data, [0xff; 8]);
    }

    #[test]
    fn debug_exit_write_raises_a_shutdown_request() {
        let lifecycle = Arc::new(VmLifecycle::new());
        let mut pio = Bus::new("pio");
        pio.insert(
            Arc::new(Mutex::new(DebugExit::new(lifecycle.clone()))),
            0xf4,
            4,
        )
        .unwrap();
        let mmio = Bus::new("mmio");
        dispatch_exit(KvmExit::IoOut(0xf4, &[0x10, 0, 0, 0]), 4, &pio, &mmio);
        assert_eq!(
            lifecycle.pending().map(lifecycle_exit),
            Some(VcpuExit::Shutdown(33))
        );
    }

    #[test]
    fn lifecycle_and_failure_exits() {
        let (pio, mmio, _) = buses();
        assert_eq!(
            dispatch_exit(KvmExit::Hlt, 0, &pio, &mmio),
            ExitAction::Halt
        );
        assert_eq!(
            dispatch_exit(KvmExit::Shutdown, 0, &pio, &mmio),
            ExitAction::TripleFault
        );
        assert_eq!(
            dispatch_exit(
                KvmExit::SystemEvent(kvm_bindings::KVM_SYSTEM_EVENT_RESET, &[]),
                0,
                &pio,
                &mmio
            ),
            ExitAction::Exit(VcpuExit::Reset)
        );
        assert!(matches!(
            dispatch_exit(KvmExit::FailEntry(0x21, 1), 0, &pio, &mmio),
            ExitAction::Fail(KvmFailure::FailEntry {
                reason: 0x21,
                cpu: 1
            })
        ));
        assert!(matches!(
            dispatch_exit(KvmExit::Unknown, 0, &pio, &mmio),
            ExitAction::Fail(_)
        ));
    }
}
