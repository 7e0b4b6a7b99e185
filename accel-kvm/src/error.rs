//! Why KVM cannot be used, and why a KVM vCPU could not go on: each a
//! sentence a user can act on.

use std::ffi::CStr;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why the KVM device cannot serve moat.
#[derive(Debug, thiserror::Error)]
pub enum KvmUnavailable {
    #[error(
        "{} does not exist: this host has no KVM (enable virtualization in the \
         firmware and load kvm_intel or kvm_amd), or use --accel tcg to emulate",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "permission denied opening {} ({access}): {advice}, or use --accel tcg to emulate",
        path.display()
    )]
    PermissionDenied {
        path: PathBuf,
        /// Owner, group and mode, as `ls -l` would show them (`root:kvm 0660`).
        access: String,
        /// What would let this user open it, decided from owner and mode.
        advice: String,
    },
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is not a KVM device ({what}: it does not answer KVM_GET_API_VERSION); \
         the KVM device is character device 10:232, or use --accel tcg to emulate",
        path.display()
    )]
    NotKvm { path: PathBuf, what: String },
    #[error("{} speaks KVM API version {found}, moat needs {needed}", path.display())]
    ApiVersion {
        path: PathBuf,
        found: i32,
        needed: u32,
    },
}

impl KvmUnavailable {
    /// The reason for a failed open of the KVM device at `path`.
    pub(crate) fn from_open(path: &Path, error: &kvm_ioctls::Error) -> KvmUnavailable {
        let path = path.to_path_buf();
        match error.errno() {
            libc::ENOENT => KvmUnavailable::Missing { path },
            libc::EACCES | libc::EPERM => {
                let (access, advice) = permission_advice(&path);
                KvmUnavailable::PermissionDenied {
                    path,
                    access,
                    advice,
                }
            }
            errno => KvmUnavailable::Open {
                path,
                source: io::Error::from_raw_os_error(errno),
            },
        }
    }

    /// The reason for a device that opened but gave API version `found`.
    pub(crate) fn from_version(path: &Path, found: i32) -> KvmUnavailable {
        if found < 0 {
            KvmUnavailable::NotKvm {
                path: path.to_path_buf(),
                what: file_kind(path),
            }
        } else {
            KvmUnavailable::ApiVersion {
                path: path.to_path_buf(),
                found,
                needed: kvm_bindings::KVM_API_VERSION,
            }
        }
    }
}

/// What `path` is, in words, for a device that is not KVM.
fn file_kind(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(metadata) => {
            let kind = metadata.file_type();
            if kind.is_file() {
                "a regular file".to_string()
            } else if kind.is_dir() {
                "a directory".to_string()
            } else if kind.is_char_device() || kind.is_block_device() {
                let rdev = metadata.rdev();
                format!(
                    "{} device {}:{}",
                    if kind.is_char_device() {
                        "character"
                    } else {
                        "block"
                    },
                    libc::major(rdev),
                    libc::minor(rdev)
                )
            } else {
                "not a device".to_string()
            }
        }
        Err(error) => format!("cannot inspect it: {error}"),
    }
}

/// The device's owner, group and mode, and what the user can do about a
/// permission error given them: joining a group helps only when that group may
/// read and write the device.
fn permission_advice(path: &Path) -> (String, String) {
    let Ok(metadata) = std::fs::metadata(path) else {
        return (
            "owner unknown".to_string(),
            "ask the administrator for read and write access to it".to_string(),
        );
    };
    let owner = user_name(metadata.uid()).unwrap_or_else(|| metadata.uid().to_string());
    let group = group_name(metadata.gid()).unwrap_or_else(|| metadata.gid().to_string());
    let mode = metadata.mode() & 0o7777;
    let access = format!("{owner}:{group} {mode:04o}");
    let group_rw = mode & 0o060 == 0o060;
    let advice = if group_rw && metadata.gid() != 0 {
        format!(
            "add your user to the {group} group (sudo usermod -aG {group} \"$USER\", then log in again)"
        )
    } else {
        format!(
            "only {owner} can open it; ask the administrator to give it to the kvm group with \
             mode 0660 (as systemd's udev rules do: chgrp kvm {path} && chmod 0660 {path}), \
             or start moat as {owner} with --user to drop privileges",
            path = path.display()
        )
    };
    (access, advice)
}

fn user_name(uid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data filled by getpwuid_r; the buffer outlives
    // the use of the strings it points into.
    unsafe {
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let status = libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        );
        if status != 0 || result.is_null() || entry.pw_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned())
    }
}

fn group_name(gid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 16384];
    // SAFETY: group is plain data filled by getgrgid_r; the buffer outlives
    // the use of the strings it points into.
    unsafe {
        let mut entry: libc::group = std::mem::zeroed();
        let mut result: *mut libc::group = std::ptr::null_mut();
        let status = libc::getgrgid_r(
            gid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        );
        if status != 0 || result.is_null() || entry.gr_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(entry.gr_name).to_string_lossy().into_owned())
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
