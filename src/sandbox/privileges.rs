//! Privileges: `--user NAME|UID[:GID]`, and dropping every capability.
//!
//! moat needs root (or the kvm group) only to open `/dev/kvm` and the images.
//! Once those are open it changes to the `--user` account (supplementary groups
//! cleared, then gid, then uid, real, effective and saved alike) and drops every
//! capability: effective, permitted, inheritable, ambient and the bounding set.
//! The capabilities go even without `--user`, so root without `--user` at least
//! runs without them (still a weakening: root owns the host's files).

use std::ffi::CString;
use std::io;

/// The account `--user` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub uid: u32,
    pub gid: u32,
}

/// Resolves `NAME`, `UID`, `NAME:GID` or `UID:GID`. A name (or a uid with an
/// account) brings its primary group unless a GID is given; a bare uid with no
/// account gets the gid of the same number.
pub fn resolve(spec: &str) -> Result<Target, String> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let gid = group
        .map(|group| {
            group
                .parse::<u32>()
                .map_err(|_| format!("--user {spec}: '{group}' is not a numeric gid"))
        })
        .transpose()?;
    if user.is_empty() {
        return Err(format!("--user {spec}: no user named"));
    }
    let account = if user.bytes().all(|byte| byte.is_ascii_digit()) {
        let uid = user
            .parse::<u32>()
            .map_err(|_| format!("--user {spec}: '{user}' is not a uid"))?;
        let account =
            lookup(Lookup::Uid(uid)).map_err(|error| format!("--user {spec}: {error}"))?;
        account.unwrap_or(Target { uid, gid: uid })
    } else {
        lookup(Lookup::Name(user))
            .map_err(|error| format!("--user {spec}: {error}"))?
            .ok_or_else(|| format!("--user {spec}: no such user"))?
    };
    Ok(Target {
        uid: account.uid,
        gid: gid.unwrap_or(account.gid),
    })
}

enum Lookup<'a> {
    Name(&'a str),
    Uid(u32),
}

/// Looks an account up through the C library (so NSS sources count too).
fn lookup(key: Lookup<'_>) -> Result<Option<Target>, String> {
    let mut buffer = vec![0u8; 16 << 10];
    loop {
        // SAFETY: passwd is plain data the C library fills in.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = match &key {
            Lookup::Name(name) => {
                let name =
                    CString::new(*name).map_err(|_| "the name has a NUL byte".to_string())?;
                // SAFETY: every pointer refers to live memory of the stated size; the
                // C library writes strings into `buffer` and the result into `entry`.
                unsafe {
                    libc::getpwnam_r(
                        name.as_ptr(),
                        &mut entry,
                        buffer.as_mut_ptr().cast(),
                        buffer.len(),
                        &mut found,
                    )
                }
            }
            // SAFETY: as above.
            Lookup::Uid(uid) => unsafe {
                libc::getpwuid_r(
                    *uid,
                    &mut entry,
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    &mut found,
                )
            },
        };
        match status {
            0 if found.is_null() => return Ok(None),
            0 => {
                return Ok(Some(Target {
                    uid: entry.pw_uid,
                    gid: entry.pw_gid,
                }));
            }
            libc::ERANGE if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 4, 0),
            error => {
                return Err(format!(
                    "looking up the account: {}",
                    io::Error::from_raw_os_error(error)
                ));
            }
        }
    }
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

/// Changes to `target` (if any) and drops every capability. Must run while moat
/// has a single thread: capabilities belong to threads, and one started before
/// would keep them.
pub fn drop_privileges(target: Option<Target>) -> Result<String, String> {
    // The bounding set first: dropping from it needs CAP_SETPCAP, gone below.
    let mut bounding_kept = false;
    for cap in 0..64 {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and changes only
        // this thread's bounding set.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            match io::Error::last_os_error().raw_os_error() {
                // Past the last capability this kernel knows.
                Some(libc::EINVAL) => break,
                // No CAP_SETPCAP: an unprivileged moat cannot shrink the bounding
                // set, which matters only across exec, and exec is never allowed.
                Some(libc::EPERM) => {
                    bounding_kept = true;
                    break;
                }
                _ => return Err(os_error("PR_CAPBSET_DROP")),
            }
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    let ambient = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if ambient != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
        return Err(os_error("clearing ambient capabilities"));
    }

    if let Some(target) = target {
        // SAFETY: an empty group list with a null pointer is valid for setgroups.
        if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
            return Err(os_error("setgroups"));
        }
        // SAFETY: setresgid and setresuid take integers only. The C library
        // applies them to every thread, and moat has one here anyway.
        if unsafe { libc::setresgid(target.gid, target.gid, target.gid) } != 0 {
            return Err(os_error("setresgid"));
        }
        // SAFETY: as above.
        if unsafe { libc::setresuid(target.uid, target.uid, target.uid) } != 0 {
            return Err(os_error("setresuid"));
        }
        // Check that there is no way back.
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        if (uid, gid) != (target.uid, target.gid) {
            return Err(format!("still uid {uid} gid {gid} after changing user"));
        }
        if target.uid != 0 {
            // SAFETY: setuid(0) changes nothing when it fails, which it must.
            if unsafe { libc::setuid(0) } == 0 {
                return Err("could change back to root after dropping privileges".into());
            }
        }
    }

    clear_capability_sets()?;
    let mut done = match target {
        Some(target) => format!(
            "uid {} gid {}, no groups, no capabilities",
            target.uid, target.gid
        ),
        None => "no capabilities".to_string(),
    };
    if bounding_kept {
        done.push_str(" (bounding set kept: no CAP_SETPCAP)");
    }
    Ok(done)
}

/// The kernel's capability ABI, version 3 (two 32-bit words per set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Empties the effective, permitted and inheritable sets and checks they stay so.
fn clear_capability_sets() -> Result<(), String> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capset reads a version-3 header and two data words, which is what we
    // pass; pid 0 is the calling thread.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(os_error("capset"));
    }
    // SAFETY: capget writes two data words into `data`.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(os_error("capget"));
    }
    if data
        .iter()
        .any(|word| word.effective | word.permitted | word.inheritable != 0)
    {
        return Err("capabilities remain after dropping them".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_specs() {
        assert_eq!(resolve("0"), Ok(Target { uid: 0, gid: 0 }));
        assert_eq!(resolve("root"), Ok(Target { uid: 0, gid: 0 }));
        assert_eq!(resolve("root:5"), Ok(Target { uid: 0, gid: 5 }));
        // A uid with no account gets the group of the same number.
        assert_eq!(
            resolve("4000123"),
            Ok(Target {
                uid: 4000123,
                gid: 4000123
            })
        );
        assert_eq!(
            resolve("4000123:7"),
            Ok(Target {
                uid: 4000123,
                gid: 7
            })
        );
        assert!(resolve("").is_err());
        assert!(resolve(":5").is_err());
        assert!(resolve("root:wheel").is_err());
        assert!(resolve("no-such-user-here").is_err());
        assert!(resolve("99999999999").is_err());
    }
}
