//! Landlock: the kernel's unprivileged access control, used to limit moat to the
//! files named on its command line.
//!
//! By the time Landlock is applied moat has opened everything it will ever open,
//! so the ruleset allows only reading the images and writing the serial log,
//! denies every other path, every TCP bind and connect (Landlock ABI 4), and
//! signals or abstract UNIX sockets outside moat (ABI 6). On an older kernel the
//! parts it knows are enforced (best effort) and the report says so.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    Scope, path_beneath_rules,
};
use machine::policy::Availability;

/// The newest Landlock ABI whose rights moat asks for.
const ABI_WANTED: ABI = ABI::V6;

/// Asks the kernel which Landlock ABI it speaks.
pub fn probe() -> Availability {
    // SAFETY: with a null attribute, size 0 and the VERSION flag, the call only
    // returns the ABI version (or an error) and creates nothing.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if version >= 1 {
        return Availability::Available;
    }
    Availability::Unavailable(match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EOPNOTSUPP) => "Landlock is disabled at boot (add landlock to lsm=)".into(),
        _ => "this kernel has no Landlock (Linux 5.13 or later)".into(),
    })
}

/// Restricts moat (the calling thread and any thread it starts later) to reading
/// `read` and writing `write`.
pub fn restrict(read: &[PathBuf], write: &[PathBuf]) -> Result<String, String> {
    let abi = ABI_WANTED;
    let fail = |error: landlock::RulesetError| error.to_string();
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(fail)?
        .handle_access(AccessNet::from_all(abi))
        .map_err(fail)?
        .scope(Scope::from_all(abi))
        .map_err(fail)?
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(read, AccessFs::ReadFile))
        .map_err(fail)?
        .add_rules(path_beneath_rules(
            write,
            AccessFs::WriteFile | AccessFs::Truncate,
        ))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)?;
    let files = match read.len() + write.len() {
        1 => "1 file".to_string(),
        count => format!("{count} files"),
    };
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(format!("{files} allowed, nothing else")),
        RulesetStatus::PartiallyEnforced => Ok(format!(
            "{files} allowed, nothing else (partly: the kernel's Landlock is older than ABI {})",
            abi as i32
        )),
        RulesetStatus::NotEnforced => Err("not enforced by this kernel".into()),
    }
}
