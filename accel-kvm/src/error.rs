//! Why KVM cannot be used, and why a KVM vCPU could not go on: each a
//! sentence a user can act on.

use std::io;

use crate::KVM_DEVICE;

/// Why `/dev/kvm` cannot serve moat.
#[derive(Debug, thiserror::Error)]
pub enum KvmUnavailable {
    #[error(
        "{KVM_DEVICE} does not exist: this host has no KVM (enable virtualization in the \
         firmware and load kvm_intel or kvm_amd), or use --accel tcg to emulate"
    )]
    Missing,
    #[error(
        "permission denied opening {KVM_DEVICE}: add your user to the kvm group \
         (sudo usermod -aG kvm \"$USER\", then log in again), or use --accel tcg to emulate"
    )]
    PermissionDenied,
    #[error("cannot open {KVM_DEVICE}: {0}")]
    Open(#[source] io::Error),
    #[error("{KVM_DEVICE} speaks KVM API version {found}, moat needs {needed}")]
    ApiVersion { found: i32, needed: u32 },
}

impl KvmUnavailable {
    /// The reason for a failed open of `/dev/kvm`.
    pub(crate) fn from_open(error: &kvm_ioctls::Error) -> KvmUnavailable {
        match error.errno() {
            libc::ENOENT => KvmUnavailable::Missing,
            libc::EACCES | libc::EPERM => KvmUnavailable::PermissionDenied,
            errno => KvmUnavailable::Open(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// Why a KVM vCPU stopped for good without the guest asking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvmFailure {
    #[error("KVM_RUN failed: {0}")]
    Run(#[source] kvm_ioctls::Error),
    #[error(
        "KVM internal error: emulation failure (the host's instruction emulator could not \
         run the guest instruction at rip)"
    )]
    Emulation,
    #[error("KVM internal error: an exception occurred while delivering another exception")]
    NestedException,
    #[error("KVM internal error: an event could not be delivered to the guest")]
    EventDelivery,
    #[error("KVM internal error (suberror {0})")]
    Internal(u32),
    #[error("unhandled KVM system event {0}")]
    SystemEvent(u32),
    #[error(
        "KVM could not enter the guest: hardware entry failure reason {reason:#x} on host CPU {cpu}"
    )]
    FailEntry { reason: u64, cpu: u32 },
    #[error("unexpected KVM exit {exit}")]
    UnexpectedExit {
        /// The exit as kvm-ioctls prints it.
        exit: String,
    },
}

impl KvmFailure {
    /// The failure for KVM's internal-error suberrors (`KVM_INTERNAL_ERROR_*`).
    pub(crate) fn internal(suberror: u32) -> KvmFailure {
        match suberror {
            kvm_bindings::KVM_INTERNAL_ERROR_EMULATION => KvmFailure::Emulation,
            kvm_bindings::KVM_INTERNAL_ERROR_SIMUL_EX => KvmFailure::NestedException,
            kvm_bindings::KVM_INTERNAL_ERROR_DELIVERY_EV => KvmFailure::EventDelivery,
            other => KvmFailure::Internal(other),
        }
    }
}
