//! Closing the file descriptors moat inherited from its parent.
//!
//! A descriptor left open by whoever started moat (a shell, a supervisor, a
//! leaky library) is a capability the guest-facing process does not need: a
//! compromised moat could read or write through it whatever seccomp and Landlock
//! allow. moat closes everything but stdin, stdout and stderr before it opens
//! anything itself, so afterwards every open descriptor is one of moat's own.

/// Closes every descriptor from 3 up. Call before moat opens any file. Returns
/// what was done, for the layer report.
pub fn close_inherited() -> Result<String, String> {
    let inherited = count_open_from_3();
    // SAFETY: close_range only closes descriptors; nothing in moat holds one of
    // these yet (this runs before moat opens any file), so no owner is left with
    // a dangling descriptor.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if closed == 0 {
        return Ok(describe(inherited));
    }
    // close_range needs Linux 5.9: close one by one what /proc lists instead.
    let listed = open_from_3().map_err(|error| format!("cannot list /proc/self/fd: {error}"))?;
    for fd in &listed {
        // SAFETY: as above, none of these descriptors belongs to moat yet.
        unsafe { libc::close(*fd) };
    }
    Ok(describe(Some(listed.len())))
}

fn describe(count: Option<usize>) -> String {
    match count {
        Some(0) => "none inherited".to_string(),
        Some(1) => "closed 1 inherited descriptor".to_string(),
        Some(count) => format!("closed {count} inherited descriptors"),
        None => "closed every descriptor above 2".to_string(),
    }
}

fn count_open_from_3() -> Option<usize> {
    open_from_3().ok().map(|fds| fds.len())
}

/// The open descriptors numbered 3 and up, without the one used to list them.
fn open_from_3() -> std::io::Result<Vec<i32>> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        {
            fds.push(fd);
        }
    }
    // The directory stream's own descriptor was listed too and is closed by now.
    fds.retain(|&fd| {
        // SAFETY: F_GETFD only queries the descriptor table.
        fd > 2 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
    });
    Ok(fds)
}
