//! Resource limits: no core dumps, a bounded descriptor table and bounded files.

/// The descriptor limit: moat's own (stdio, /dev/kvm, a VM, a vCPU, a serial log,
/// the JIT's code buffer) fit many times over.
pub const MAX_FILES: u64 = 64;

/// The largest file moat may write (a serial log, or stdout redirected to a
/// file): generous for logs, small enough that a guest printing forever cannot
/// fill the host's disk.
pub const MAX_FILE_SIZE: u64 = 4 << 30;

/// Sets RLIMIT_CORE to 0 (a core dump would copy guest memory to disk),
/// RLIMIT_NOFILE and RLIMIT_FSIZE, and marks the process not dumpable, which also
/// keeps other processes of the same user from attaching a debugger.
pub fn apply() -> Result<String, String> {
    lower(libc::RLIMIT_CORE, 0, "RLIMIT_CORE")?;
    lower(libc::RLIMIT_NOFILE, MAX_FILES, "RLIMIT_NOFILE")?;
    lower(libc::RLIMIT_FSIZE, MAX_FILE_SIZE, "RLIMIT_FSIZE")?;
    // SAFETY: setting a signal disposition to SIG_IGN installs no handler. A write
    // past RLIMIT_FSIZE then fails with EFBIG instead of killing moat with SIGXFSZ.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // SAFETY: PR_SET_DUMPABLE takes an integer and changes only this process.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_DUMPABLE: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(format!(
        "core 0, nofile {MAX_FILES}, fsize {} GiB, not dumpable",
        MAX_FILE_SIZE >> 30
    ))
}

/// Lowers both the soft and the hard limit to `value`, or keeps a lower hard
/// limit the parent already set.
fn lower(resource: libc::__rlimit_resource_t, value: u64, name: &str) -> Result<(), String> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct that we own.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(format!("{name}: {}", std::io::Error::last_os_error()));
    }
    let value = value.min(current.rlim_max);
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads one rlimit struct that we own.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(format!("{name}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
