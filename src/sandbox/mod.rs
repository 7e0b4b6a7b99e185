//! Process hardening: what moat does to itself so that a guest that breaks out
//! of the accelerator finds a process that can do almost nothing.
//!
//! The layers, each in its own module and each reporting whether it was applied:
//! inherited descriptors closed ([`fds`], first thing in `moat run`), then, once
//! every file is open, the board built and the accelerator open
//! ([`confine`]): resource limits ([`rlimits`]), new namespaces
//! ([`namespaces`]), Landlock ([`landlock`]), privileges and capabilities
//! ([`privileges`]), `no_new_privs`, and last a seccomp allow-list per thread
//! ([`seccomp`]). The order matters: namespaces and the user change need
//! capabilities that the privilege layer then drops, and seccomp comes last
//! because it forbids the calls the others make.
//!
//! [`probe`] predicts, without changing anything, which layers the host can apply;
//! the policy gate uses that before any image is read. The [`Report`] from
//! [`confine`] says what actually happened.

pub mod fds;
pub mod landlock;
pub mod namespaces;
pub mod privileges;
pub mod rlimits;
pub mod seccomp;

use std::path::PathBuf;

use machine::AccelKind;
use machine::policy::{Availability, Layer};
use seccompiler::BpfProgram;

/// What [`confine`] is to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub accel: AccelKind,
    /// The effective uid moat started with.
    pub euid: u32,
    /// `--user`, resolved.
    pub user: Option<privileges::Target>,
    /// Files moat read (the images): Landlock allows reading them and nothing else.
    pub read_paths: Vec<PathBuf>,
    /// Files moat writes (a serial log).
    pub write_paths: Vec<PathBuf>,
    /// Descriptors the vCPU thread may write: stdout, stderr, a serial log.
    pub write_fds: Vec<i32>,
    /// What closing inherited descriptors did at start.
    pub inherited_fds: Result<String, String>,
    /// stdin is a terminal in raw mode (see `seccomp::Context::terminal`).
    pub terminal: bool,
    /// Disk images the vCPU threads read and write (virtio-blk).
    pub disk_fds: Vec<i32>,
}

/// What each layer did: `Ok` with a detail when applied, `Err` with the reason
/// when not.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub layers: Vec<(Layer, Result<String, String>)>,
}

impl Report {
    /// The report as facts for the policy gate.
    pub fn availability(&self) -> Vec<(Layer, Availability)> {
        self.layers
            .iter()
            .map(|(layer, result)| {
                let availability = match result {
                    Ok(_) => Availability::Available,
                    Err(reason) => Availability::Unavailable(reason.clone()),
                };
                (*layer, availability)
            })
            .collect()
    }

    /// One line per run, for `--verbose`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .layers
            .iter()
            .map(|(layer, result)| match result {
                Ok(detail) => format!("{layer} applied ({detail})"),
                Err(reason) => format!("{layer} NOT applied ({reason})"),
            })
            .collect();
        format!("sandbox: {}", parts.join("; "))
    }
}

/// Which layers this host can apply, judged without changing anything.
pub fn probe(euid: u32) -> Vec<(Layer, Availability)> {
    Layer::ALL
        .iter()
        .map(|&layer| {
            let availability = match layer {
                Layer::Seccomp => seccomp::probe(),
                Layer::Namespaces => namespaces::probe(euid),
                Layer::Landlock => landlock::probe(),
                // Closing descriptors, lowering limits, dropping capabilities and
                // no_new_privs (Linux 3.5) work for every process on every kernel
                // moat runs on.
                Layer::NoNewPrivs
                | Layer::Privileges
                | Layer::ResourceLimits
                | Layer::InheritedFds => Availability::Available,
            };
            (layer, availability)
        })
        .collect()
}

/// The seccomp filters of the threads [`ThreadStarter`] starts.
pub struct ThreadFilters {
    /// For the stdin reader.
    pub stdin: BpfProgram,
    /// For each vCPU thread (the same allow-list as the main thread).
    pub vcpu: BpfProgram,
}

/// Starts moat's other threads (the stdin reader, the vCPU threads), given the
/// seccomp filters each must install before doing anything else (`None` when
/// the sandbox has none), and returns once they have. Every thread moat will
/// ever have starts here: once the main thread's filter is on, it cannot start
/// threads (no `clone`).
pub type ThreadStarter<'a> = dyn FnOnce(Option<ThreadFilters>) -> Result<(), String> + 'a;

/// Applies every layer to the moat process. Call it once, on the thread that
/// will run the vCPU, while moat has no other thread, after every file is open
/// and before the first guest instruction. `start_threads` starts the others (the
/// stdin reader and the vCPU threads) at the point where they inherit every process-wide layer but
/// not the vCPU thread's filter, and each installs its own.
pub fn confine(plan: &Plan, start_threads: Box<ThreadStarter<'_>>) -> Report {
    let mut report = Report::default();
    report
        .layers
        .push((Layer::InheritedFds, plan.inherited_fds.clone()));
    report
        .layers
        .push((Layer::ResourceLimits, rlimits::apply()));
    report
        .layers
        .push((Layer::Namespaces, namespaces::enter(plan.euid)));
    report.layers.push((
        Layer::Landlock,
        landlock::restrict(&plan.read_paths, &plan.write_paths),
    ));
    report
        .layers
        .push((Layer::Privileges, privileges::drop_privileges(plan.user)));
    report.layers.push((Layer::NoNewPrivs, set_no_new_privs()));
    report
        .layers
        .push((Layer::Seccomp, install_filters(plan, start_threads)));
    report
}

fn set_no_new_privs() -> Result<String, String> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only and affects this process
    // and everything it could ever execute.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok("set".to_string())
}

fn install_filters(plan: &Plan, start_threads: Box<ThreadStarter<'_>>) -> Result<String, String> {
    let context = seccomp::Context {
        write_fds: plan.write_fds.clone(),
        jit: plan.accel == AccelKind::Tcg,
        terminal: plan.terminal,
        disk_fds: plan.disk_fds.clone(),
    };
    let compiled = seccomp::compile(seccomp::Role::Vcpu, &context).and_then(|vcpu| {
        seccomp::compile(seccomp::Role::Stdin, &context).map(|stdin| (vcpu, stdin))
    });
    let (vcpu, stdin) = match compiled {
        Ok(filters) => filters,
        Err(reason) => {
            // The other threads still have to run, unfiltered and reported so.
            start_threads(None)?;
            return Err(reason);
        }
    };
    // A thread whose filter fails ends without touching guest input; this one is
    // confined either way.
    let threads = start_threads(Some(ThreadFilters {
        stdin,
        vcpu: vcpu.clone(),
    }));
    seccomp::install(&vcpu)?;
    threads?;
    Ok("kill on any call outside the vcpu and stdin allow-lists".to_string())
}
