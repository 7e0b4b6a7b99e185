//! From `moat run` flags and host facts to the policy gate's verdict.
//!
//! [`decide`] gathers what `machine::policy::evaluate` needs without reading any
//! image or allocating guest memory, so `--isolation required` can refuse a run
//! before anything of the guest's is touched; `moat check` prints the same
//! decision. [`after_sandbox`] evaluates again with the accelerator actually
//! opened and the layers actually applied, right before the guest starts.

use std::path::{Path, PathBuf};

use accel_kvm::KVM_DEVICE;
use machine::policy::{
    self, BoardFacts, CharBackend, CharDevice, HostFile, IsolationMode, PolicyInput, UserFacts,
    Verdict,
};
use machine::{AccelKind, Arch, Isolation};

use crate::cli::{AccelChoice, RunArgs, SerialChoice, Toggle};
use crate::sandbox::{self, privileges};

/// The gate's decision about a run.
#[derive(Debug, Clone)]
pub struct Decision {
    pub mode: IsolationMode,
    pub input: PolicyInput,
    pub verdict: Verdict,
    /// `--user`, resolved.
    pub user: Option<privileges::Target>,
    /// Why `--isolation required` refuses this run, if it does.
    pub refusal: Option<policy::Refusal>,
}

/// The KVM device moat opens: `/dev/kvm`. Builds with the `test-hooks`
/// feature take `MOAT_TEST_KVM_DEVICE` instead, so tests running as root can
/// meet a device that does not open or is not KVM.
pub fn kvm_device() -> PathBuf {
    #[cfg(feature = "test-hooks")]
    if let Some(path) = std::env::var_os("MOAT_TEST_KVM_DEVICE") {
        return PathBuf::from(path);
    }
    PathBuf::from(KVM_DEVICE)
}

/// Whether KVM would serve this run: `Err` says why not.
pub fn probe_kvm() -> Result<(), String> {
    if Arch::host().is_none() {
        return Err(format!(
            "moat has no KVM support for this host's architecture ({})",
            std::env::consts::ARCH
        ));
    }
    accel_kvm::probe(&kvm_device()).map_err(|reason| reason.to_string())
}

/// The accelerator a run will use, decided without reading the image, and why
/// KVM cannot be used when the probe says so. `auto` means KVM when the KVM
/// device opens and speaks KVM, else TCG; under `--isolation required` it means
/// KVM only (`moat run` never falls back to TCG there), so an unusable device is
/// the reason given, not emulation.
pub fn predicted_accel(choice: AccelChoice, mode: IsolationMode) -> (AccelKind, Option<String>) {
    match choice {
        AccelChoice::Kvm => (AccelKind::Kvm, probe_kvm().err()),
        AccelChoice::Tcg => (AccelKind::Tcg, None),
        AccelChoice::Auto => match probe_kvm() {
            Ok(()) => (AccelKind::Kvm, None),
            Err(reason) if mode == IsolationMode::Required => (AccelKind::Kvm, Some(reason)),
            Err(reason) => (AccelKind::Tcg, Some(reason)),
        },
    }
}

/// What an accelerator kind can promise; the accelerator objects say the same
/// through `Accelerator::isolation`.
pub fn isolation_of(kind: AccelKind) -> Isolation {
    match kind {
        AccelKind::Kvm => Isolation::Hardware,
        AccelKind::Tcg => Isolation::None,
    }
}

/// The effective uid moat runs with.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The decision for `args`. Errors are usage errors (a bad `--user`).
pub fn decide(args: &RunArgs) -> Result<Decision, String> {
    let mode = IsolationMode::from(args.isolation);
    let euid = euid();
    let user = args.user.as_deref().map(privileges::resolve).transpose()?;
    // Without root, --user can only name who moat already is: nothing to drop.
    let user = match user {
        Some(target) if euid != 0 => {
            // SAFETY: getegid cannot fail.
            let egid = unsafe { libc::getegid() };
            if (target.uid, target.gid) != (euid, egid) {
                return Err(format!(
                    "--user: only root can change user or group, and moat runs as uid {euid} gid {egid}"
                ));
            }
            None
        }
        user => user,
    };
    let (accel, accel_unavailable) = predicted_accel(args.accel, mode);
    let sandbox = args.sandbox == Toggle::On;
    let input = PolicyInput {
        accel,
        accel_isolation: isolation_of(accel),
        accel_unavailable,
        // Decided before any image is read: `--machine`, else the board of the
        // host's architecture (what KVM would run). Both boards are meant for
        // the virtualization use case.
        board: BoardFacts {
            name: args
                .machine
                .map(machine::MachineKind::from)
                .unwrap_or(machine::MachineKind::for_arch(
                    machine::Arch::host().unwrap_or(machine::Arch::X86_64),
                ))
                .name()
                .to_string(),
            virtualization_supported: true,
        },
        sandbox,
        user: UserFacts {
            euid,
            // SAFETY: getegid cannot fail.
            egid: unsafe { libc::getegid() },
            drop_to: user.map(|target| (target.uid, target.gid)),
        },
        layers: if sandbox {
            sandbox::probe(euid)
        } else {
            Vec::new()
        },
        // moat has no management interface yet.
        management_sockets: Vec::new(),
        char_devices: vec![CharDevice {
            name: "serial0".to_string(),
            backend: match &args.serial {
                SerialChoice::Stdio => CharBackend::Stdio,
                SerialChoice::Null => CharBackend::Null,
                SerialChoice::File(path) => CharBackend::File(display(path)),
            },
        }],
        host_files: host_files(args),
    };
    let verdict = policy::evaluate(&input);
    let refusal = policy::gate(mode, &verdict).err();
    Ok(Decision {
        mode,
        input,
        verdict,
        user,
        refusal,
    })
}

/// The host files the guest is given, and the logs moat writes for it. The
/// kernel and initrd are copied into guest RAM, so the guest cannot write
/// them.
fn host_files(args: &RunArgs) -> Vec<HostFile> {
    let file = |role: &str, path: &Path, moat_writes| HostFile {
        role: role.to_string(),
        path: display(path),
        guest_writable: false,
        moat_writes,
    };
    let mut files = vec![file("kernel", &args.kernel, false)];
    if let Some(initrd) = &args.initrd {
        files.push(file("initrd", initrd, false));
    }
    if let SerialChoice::File(path) = &args.serial {
        files.push(file("serial log", path, true));
    }
    for (index, disk) in args.disks.iter().enumerate() {
        files.push(HostFile {
            role: format!("disk{index}"),
            path: display(&disk.path),
            guest_writable: !disk.read_only,
            moat_writes: false,
        });
    }
    if let Some(path) = &args.trace_file {
        files.push(file("trace file", path, true));
    }
    files
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The verdict once the accelerator is open and the sandbox applied (or not).
pub fn after_sandbox(
    decision: &Decision,
    accel: AccelKind,
    accel_isolation: Isolation,
    report: Option<&sandbox::Report>,
) -> Verdict {
    let mut input = decision.input.clone();
    input.accel = accel;
    input.accel_isolation = accel_isolation;
    if accel == AccelKind::Kvm {
        // It opened.
        input.accel_unavailable = None;
    }
    if let Some(report) = report {
        input.layers = report.availability();
    }
    policy::evaluate(&input)
}
