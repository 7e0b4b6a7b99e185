//! New mount, IPC, UTS and network namespaces for the moat process.
//!
//! moat has no host networking, so a new network namespace leaves a compromised
//! moat with no network interface but a loopback that is down: no connections out,
//! no listening sockets others can reach. The IPC namespace hides the host's System
//! V and POSIX message queues and shared memory; the UTS namespace keeps moat from
//! renaming the host. The mount namespace is made private so that nothing moat
//! could mount reaches the host; it does not hide the host's files (Landlock and
//! seccomp do that).
//!
//! Creating these needs CAP_SYS_ADMIN. Root has it; an unprivileged user gets it
//! inside a new user namespace, where the kernel allows those.

use std::io;

use machine::policy::Availability;

/// The capability number from <linux/capability.h>.
const CAP_SYS_ADMIN: u32 = 21;

const FLAGS: libc::c_int =
    libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWNET;

/// Whether the namespaces can be created, judged without creating them: root
/// with CAP_SYS_ADMIN can, anyone else needs unprivileged user namespaces.
pub fn probe(euid: u32) -> Availability {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|text| text.trim().to_string())
    };
    if euid == 0 {
        // Root in a container may lack CAP_SYS_ADMIN.
        let effective = read("/proc/self/status").and_then(|status| {
            status
                .lines()
                .find_map(|line| u64::from_str_radix(line.strip_prefix("CapEff:")?.trim(), 16).ok())
        });
        return match effective {
            Some(caps) if caps & (1 << CAP_SYS_ADMIN) == 0 => {
                Availability::Unavailable("root without CAP_SYS_ADMIN".into())
            }
            _ => Availability::Available,
        };
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Availability::Unavailable(
            "user namespaces are disabled (user.max_user_namespaces = 0)".into(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Availability::Unavailable(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
                .into(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Availability::Unavailable("AppArmor restricts unprivileged user namespaces".into());
    }
    Availability::Available
}

/// Moves moat into new namespaces. Must run while moat has a single thread: the
/// kernel refuses a new user namespace to a multi-threaded process.
pub fn enter(euid: u32) -> Result<String, String> {
    let (flags, how) = if euid == 0 {
        (FLAGS, "")
    } else {
        (
            FLAGS | libc::CLONE_NEWUSER,
            " (inside a new user namespace)",
        )
    };
    // SAFETY: unshare takes flags only and changes this process's namespaces.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(format!("unshare: {}", io::Error::last_os_error()));
    }
    // Mount events no longer propagate from this namespace to the host's.
    // SAFETY: the path is a NUL-terminated literal; the other pointers may be null
    // for a propagation change.
    let private = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if private != 0 {
        return Err(format!(
            "making the mount namespace private: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(format!("mount, ipc, uts, net{how}"))
}
