//! The policy gate: what moat may promise about isolating a guest from the host.
//!
//! moat follows QEMU's security model. Guest isolation is a goal of the
//! *virtualization* use case (a hardware accelerator, a board meant for it, a
//! confined process) and not of the *emulation* use case (TCG), whose bugs are not
//! security bugs. This module turns that prose into a decision: [`evaluate`] is a
//! pure function from a [`PolicyInput`] (the run configuration and facts about the
//! host, gathered by the caller) to a [`Verdict`] that lists the guarantees that
//! hold and every reason they are weakened. [`gate`] then applies the user's
//! [`IsolationMode`] to a verdict.
//!
//! Nothing here looks at the host: probing which sandbox layers the kernel offers,
//! and applying them, is the binary's job. That keeps every rule testable with
//! plain data.

use std::fmt;

use crate::accel::{AccelKind, Isolation};

/// What the user asked for with `--isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationMode {
    /// Refuse to run unless isolation is supported with no weakening.
    Required,
    /// Run whatever the verdict; warn when the accelerator is not a boundary.
    BestEffort,
    /// Run whatever the verdict, without the warning: the user knows.
    Off,
}

impl IsolationMode {
    pub fn name(self) -> &'static str {
        match self {
            IsolationMode::Required => "required",
            IsolationMode::BestEffort => "best-effort",
            IsolationMode::Off => "off",
        }
    }
}

/// One layer of process hardening the binary applies to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// A seccomp-BPF allow-list per thread, anything else kills the process.
    Seccomp,
    /// `PR_SET_NO_NEW_PRIVS`: no exec can ever gain privileges.
    NoNewPrivs,
    /// Capabilities dropped, and with `--user` the uid and gids too.
    Privileges,
    /// New mount, IPC, UTS and network namespaces.
    Namespaces,
    /// Landlock: file access limited to the files named on the command line.
    Landlock,
    /// `RLIMIT_CORE`, `RLIMIT_NOFILE` and `RLIMIT_FSIZE` bounds.
    ResourceLimits,
    /// File descriptors inherited from the parent closed.
    InheritedFds,
}

impl Layer {
    /// Every layer, in the order the binary applies them.
    pub const ALL: [Layer; 7] = [
        Layer::InheritedFds,
        Layer::ResourceLimits,
        Layer::Namespaces,
        Layer::Landlock,
        Layer::Privileges,
        Layer::NoNewPrivs,
        Layer::Seccomp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Seccomp => "seccomp",
            Layer::NoNewPrivs => "no-new-privs",
            Layer::Privileges => "privileges",
            Layer::Namespaces => "namespaces",
            Layer::Landlock => "landlock",
            Layer::ResourceLimits => "rlimits",
            Layer::InheritedFds => "inherited-fds",
        }
    }

    /// Whether isolation can be claimed without this layer. Namespaces and
    /// Landlock are defence in depth behind seccomp ("where the kernel allows"):
    /// a host without them is named in the verdict but still supported. The
    /// other layers work on every kernel moat supports, so their absence means
    /// something is wrong and weakens the verdict.
    pub fn essential(self) -> bool {
        !matches!(self, Layer::Namespaces | Layer::Landlock)
    }

    /// What the layer guarantees when it is active.
    fn guarantee(self) -> &'static str {
        match self {
            Layer::Seccomp => {
                "each thread is confined to a system-call allow-list; any other call kills moat"
            }
            Layer::NoNewPrivs => "moat can never gain privileges (no_new_privs)",
            Layer::Privileges => "moat holds no capabilities",
            Layer::Namespaces => "private mount, IPC, UTS and network namespaces",
            Layer::Landlock => "file access limited to the files named on the command line",
            Layer::ResourceLimits => "no core dumps; bounded file descriptors and file sizes",
            Layer::InheritedFds => "no file descriptors inherited from the parent",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the host can apply a layer (or, after the fact, whether it did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// The host cannot apply the layer, and why.
    Unavailable(String),
}

/// The state of a layer in a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerState {
    /// Applied (or, before the run, will be applied).
    Active,
    /// The sandbox is off.
    Off,
    /// The host cannot apply it, and why.
    Unavailable(String),
}

/// The board the guest runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardFacts {
    pub name: String,
    /// Whether the board is meant for the virtualization use case. A board
    /// modelled only for emulation (odd devices, no hardening) is not.
    pub virtualization_supported: bool,
}

/// Who moat runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFacts {
    /// The effective uid moat was started with.
    pub euid: u32,
    /// The effective gid moat was started with.
    pub egid: u32,
    /// The uid and gid `--user` drops to, if given.
    pub drop_to: Option<(u32, u32)>,
}

impl UserFacts {
    /// The uid the guest runs under.
    pub fn running_uid(self) -> u32 {
        self.drop_to.map_or(self.euid, |(uid, _)| uid)
    }

    /// The gid the guest runs under (supplementary groups are always
    /// dropped with the user).
    pub fn running_gid(self) -> u32 {
        self.drop_to.map_or(self.egid, |(_, gid)| gid)
    }
}

/// A socket through which moat can be managed (a QMP-like monitor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementSocket {
    pub path: String,
    /// Whether users other than moat's own can connect (file mode, directory).
    pub others_can_connect: bool,
}

/// Where a character device (a serial port, a console) is connected on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharBackend {
    Stdio,
    Null,
    File(String),
    /// A listening or connecting network socket.
    Network {
        address: String,
        authenticated: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharDevice {
    /// The guest's name for it (`serial0`).
    pub name: String,
    pub backend: CharBackend,
}

/// A host file given to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFile {
    /// What it is to the guest (`kernel`, `initrd`, `disk0`).
    pub role: String,
    pub path: String,
    /// Whether the guest can change the host file (a writable disk); an image
    /// copied into guest RAM is not.
    pub guest_writable: bool,
    /// A log moat itself writes (the serial console's file, the trace): the
    /// guest decides its content, not which file or where in it.
    pub moat_writes: bool,
}

/// Everything the gate decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInput {
    pub accel: AccelKind,
    /// What the accelerator itself can promise ([`Accelerator::isolation`]).
    ///
    /// [`Accelerator::isolation`]: crate::Accelerator::isolation
    pub accel_isolation: Isolation,
    /// Why the host cannot give moat this accelerator, when probing it failed
    /// (a KVM device that does not open, or is not KVM). `None`: it is usable,
    /// or needs no probe (TCG).
    pub accel_unavailable: Option<String>,
    pub board: BoardFacts,
    /// Whether the sandbox is on (`--sandbox on`, the default).
    pub sandbox: bool,
    pub user: UserFacts,
    /// What the host can do for each layer; a layer missing here is unavailable.
    pub layers: Vec<(Layer, Availability)>,
    pub management_sockets: Vec<ManagementSocket>,
    pub char_devices: Vec<CharDevice>,
    pub host_files: Vec<HostFile>,
}

/// Whether moat promises to isolate the guest from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationVerdict {
    Supported,
    Unsupported,
}

impl IsolationVerdict {
    pub fn name(self) -> &'static str {
        match self {
            IsolationVerdict::Supported => "supported",
            IsolationVerdict::Unsupported => "unsupported",
        }
    }
}

/// A reason isolation cannot be promised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weakening {
    /// The accelerator is an emulator (TCG).
    Emulation,
    /// The hardware accelerator asked for cannot be used on this host, and why.
    AccelUnavailable { accel: AccelKind, reason: String },
    /// The board is not meant for the virtualization use case.
    UnsupportedBoard(String),
    /// `--sandbox off`.
    SandboxOff,
    /// Running as root, and not dropping to another user.
    RunningAsRoot,
    /// Running as a user, but in group 0 (root's group), which owns files
    /// and devices a confined process should not reach.
    RootGroup,
    /// An essential sandbox layer that the host cannot apply.
    LayerUnavailable(Layer, String),
    /// A management socket that other users can open.
    OpenManagementSocket(String),
    /// A character device on a network socket without authentication.
    UnauthenticatedCharDevice { name: String, address: String },
    /// A host file the guest can write.
    WritableHostFile { role: String, path: String },
}

impl Weakening {
    /// A stable identifier for machines (`moat check --json`).
    pub fn kind(&self) -> &'static str {
        match self {
            Weakening::Emulation => "emulation",
            Weakening::AccelUnavailable { .. } => "accel-unavailable",
            Weakening::UnsupportedBoard(_) => "unsupported-board",
            Weakening::SandboxOff => "sandbox-off",
            Weakening::RunningAsRoot => "running-as-root",
            Weakening::RootGroup => "root-group",
            Weakening::LayerUnavailable(..) => "layer-unavailable",
            Weakening::OpenManagementSocket(_) => "open-management-socket",
            Weakening::UnauthenticatedCharDevice { .. } => "unauthenticated-chardev",
            Weakening::WritableHostFile { .. } => "writable-host-file",
        }
    }
}

impl fmt::Display for Weakening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Weakening::Emulation => f.write_str("emulation: not a security boundary"),
            Weakening::AccelUnavailable { accel, reason } => {
                write!(f, "{accel} unavailable: {reason}")
            }
            Weakening::UnsupportedBoard(board) => {
                write!(f, "board {board} is not supported for virtualization")
            }
            Weakening::SandboxOff => f.write_str("sandbox off (--sandbox off)"),
            Weakening::RunningAsRoot => {
                f.write_str("running as root without dropping privileges (use --user)")
            }
            Weakening::RootGroup => f.write_str(
                "running in group 0, root's group (use --user NAME, or NAME:GID with another group)",
            ),
            Weakening::LayerUnavailable(layer, reason) => {
                write!(f, "sandbox layer {layer} unavailable: {reason}")
            }
            Weakening::OpenManagementSocket(path) => {
                write!(f, "management socket {path} can be opened by other users")
            }
            Weakening::UnauthenticatedCharDevice { name, address } => {
                write!(f, "{name} listens on {address} without authentication")
            }
            Weakening::WritableHostFile { role, path } => {
                write!(f, "the guest can write the host file {path} ({role})")
            }
        }
    }
}

/// The gate's decision about one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub accel: AccelKind,
    pub isolation: IsolationVerdict,
    /// What holds, in words.
    pub guarantees: Vec<String>,
    /// Every reason isolation is weakened; empty exactly when supported.
    pub weakenings: Vec<Weakening>,
    /// Each layer and its state, in [`Layer::ALL`] order.
    pub layers: Vec<(Layer, LayerState)>,
}

impl Verdict {
    /// The layers the host cannot apply, with the reason.
    pub fn unavailable_layers(&self) -> impl Iterator<Item = (Layer, &str)> {
        self.layers.iter().filter_map(|(layer, state)| match state {
            LayerState::Unavailable(reason) => Some((*layer, reason.as_str())),
            _ => None,
        })
    }

    /// The verdict in one line, as `moat run --verbose` prints it.
    pub fn summary(&self) -> String {
        let mut line = format!("isolation {} ({})", self.isolation.name(), self.accel);
        if !self.weakenings.is_empty() {
            let reasons: Vec<String> = self.weakenings.iter().map(ToString::to_string).collect();
            line.push_str(": ");
            line.push_str(&reasons.join("; "));
        }
        let unavailable: Vec<String> = self
            .unavailable_layers()
            .filter(|(layer, _)| !layer.essential())
            .map(|(layer, reason)| format!("{layer} ({reason})"))
            .collect();
        if !unavailable.is_empty() {
            line.push_str("; not available here: ");
            line.push_str(&unavailable.join(", "));
        }
        line
    }
}

/// Decides what moat may promise for a run. Pure: the same input always gives
/// the same verdict.
pub fn evaluate(input: &PolicyInput) -> Verdict {
    let mut weakenings = Vec::new();
    let mut guarantees = Vec::new();

    match (input.accel_isolation, &input.accel_unavailable) {
        (Isolation::Hardware, None) => guarantees.push(format!(
            "guest code runs under hardware virtualization ({})",
            input.accel
        )),
        // The boundary is only as real as the device that provides it.
        (Isolation::Hardware, Some(reason)) => weakenings.push(Weakening::AccelUnavailable {
            accel: input.accel,
            reason: reason.clone(),
        }),
        (Isolation::None, _) => weakenings.push(Weakening::Emulation),
    }
    if !input.board.virtualization_supported {
        weakenings.push(Weakening::UnsupportedBoard(input.board.name.clone()));
    }

    let layers: Vec<(Layer, LayerState)> = Layer::ALL
        .iter()
        .map(|&layer| {
            let state = if !input.sandbox {
                LayerState::Off
            } else {
                match input.layers.iter().find(|(known, _)| *known == layer) {
                    Some((_, Availability::Available)) => LayerState::Active,
                    Some((_, Availability::Unavailable(reason))) => {
                        LayerState::Unavailable(reason.clone())
                    }
                    None => LayerState::Unavailable("not probed".to_string()),
                }
            };
            (layer, state)
        })
        .collect();

    if input.sandbox {
        for (layer, state) in &layers {
            match state {
                LayerState::Active => guarantees.push(layer.guarantee().to_string()),
                LayerState::Unavailable(reason) if layer.essential() => {
                    weakenings.push(Weakening::LayerUnavailable(*layer, reason.clone()));
                }
                LayerState::Unavailable(_) | LayerState::Off => {}
            }
        }
    } else {
        weakenings.push(Weakening::SandboxOff);
    }

    let uid = input.user.running_uid();
    if uid == 0 {
        weakenings.push(Weakening::RunningAsRoot);
    } else if input.user.running_gid() == 0 {
        weakenings.push(Weakening::RootGroup);
    } else {
        guarantees.push(format!("runs as uid {uid}, not root"));
    }

    let open_sockets: Vec<&ManagementSocket> = input
        .management_sockets
        .iter()
        .filter(|socket| socket.others_can_connect)
        .collect();
    if open_sockets.is_empty() {
        guarantees.push("no management socket other users can open".to_string());
    }
    weakenings.extend(
        open_sockets
            .into_iter()
            .map(|socket| Weakening::OpenManagementSocket(socket.path.clone())),
    );

    for device in &input.char_devices {
        if let CharBackend::Network {
            address,
            authenticated: false,
        } = &device.backend
        {
            weakenings.push(Weakening::UnauthenticatedCharDevice {
                name: device.name.clone(),
                address: address.clone(),
            });
        }
    }

    let writable: Vec<&HostFile> = input
        .host_files
        .iter()
        .filter(|file| file.guest_writable)
        .collect();
    let logs: Vec<String> = input
        .host_files
        .iter()
        .filter(|file| file.moat_writes)
        .map(|file| format!("{} {}", file.role, file.path))
        .collect();
    if writable.is_empty() && logs.is_empty() {
        guarantees.push("the guest cannot write any host file".to_string());
    } else if writable.is_empty() {
        guarantees.push(format!(
            "the guest cannot write any host file; moat writes its output to {}",
            logs.join(", ")
        ));
    }
    weakenings.extend(
        writable
            .into_iter()
            .map(|file| Weakening::WritableHostFile {
                role: file.role.clone(),
                path: file.path.clone(),
            }),
    );

    let isolation = if weakenings.is_empty() {
        IsolationVerdict::Supported
    } else {
        IsolationVerdict::Unsupported
    };
    Verdict {
        accel: input.accel,
        isolation,
        guarantees,
        weakenings,
        layers,
    }
}

/// Why `--isolation required` refused a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--isolation required refuses this run: {}", reasons.join("; "))]
pub struct Refusal {
    pub reasons: Vec<String>,
}

/// Applies `--isolation` to a verdict: `required` refuses anything short of
/// supported isolation, the other modes let every run go ahead.
pub fn gate(mode: IsolationMode, verdict: &Verdict) -> Result<(), Refusal> {
    if mode == IsolationMode::Required && verdict.isolation != IsolationVerdict::Supported {
        return Err(Refusal {
            reasons: verdict.weakenings.iter().map(ToString::to_string).collect(),
        });
    }
    Ok(())
}

/// Whether moat should print the one-line "not a security boundary" warning.
pub fn warn_emulation(mode: IsolationMode, quiet: bool, verdict: &Verdict) -> bool {
    mode != IsolationMode::Off && !quiet && verdict.weakenings.contains(&Weakening::Emulation)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A KVM run by an unprivileged user on a host where every layer works.
    fn kvm_baseline() -> PolicyInput {
        PolicyInput {
            accel: AccelKind::Kvm,
            accel_isolation: Isolation::Hardware,
            accel_unavailable: None,
            board: BoardFacts {
                name: "x86_64-pc".to_string(),
                virtualization_supported: true,
            },
            sandbox: true,
            user: UserFacts {
                euid: 1000,
                egid: 1000,
                drop_to: None,
            },
            layers: Layer::ALL
                .iter()
                .map(|&layer| (layer, Availability::Available))
                .collect(),
            management_sockets: Vec::new(),
            char_devices: vec![CharDevice {
                name: "serial0".to_string(),
                backend: CharBackend::Stdio,
            }],
            host_files: vec![HostFile {
                role: "kernel".to_string(),
                path: "vmlinux".to_string(),
                guest_writable: false,
                moat_writes: false,
            }],
        }
    }

    fn tcg(input: &mut PolicyInput) {
        input.accel = AccelKind::Tcg;
        input.accel_isolation = Isolation::None;
    }

    fn root(input: &mut PolicyInput) {
        input.user.euid = 0;
    }

    fn root_with_user(input: &mut PolicyInput) {
        input.user = UserFacts {
            euid: 0,
            egid: 0,
            drop_to: Some((65534, 65534)),
        };
    }

    fn sandbox_off(input: &mut PolicyInput) {
        input.sandbox = false;
    }

    fn unavailable(layer: Layer) -> impl Fn(&mut PolicyInput) {
        move |input| {
            for (known, availability) in &mut input.layers {
                if *known == layer {
                    *availability = Availability::Unavailable("kernel too old".to_string());
                }
            }
        }
    }

    fn open_socket(input: &mut PolicyInput) {
        input.management_sockets.push(ManagementSocket {
            path: "/run/moat.sock".to_string(),
            others_can_connect: true,
        });
    }

    fn private_socket(input: &mut PolicyInput) {
        input.management_sockets.push(ManagementSocket {
            path: "/run/moat.sock".to_string(),
            others_can_connect: false,
        });
    }

    fn network_serial(authenticated: bool) -> impl Fn(&mut PolicyInput) {
        move |input| {
            input.char_devices[0].backend = CharBackend::Network {
                address: "0.0.0.0:4444".to_string(),
                authenticated,
            };
        }
    }

    fn file_serial(input: &mut PolicyInput) {
        input.char_devices[0].backend = CharBackend::File("serial.log".to_string());
        input.host_files.push(HostFile {
            role: "serial log".to_string(),
            path: "serial.log".to_string(),
            guest_writable: false,
            moat_writes: true,
        });
    }

    fn writable_disk(input: &mut PolicyInput) {
        input.host_files.push(HostFile {
            role: "disk0".to_string(),
            path: "disk.img".to_string(),
            guest_writable: true,
            moat_writes: false,
        });
    }

    fn readonly_initrd(input: &mut PolicyInput) {
        input.host_files.push(HostFile {
            role: "initrd".to_string(),
            path: "initrd.img".to_string(),
            guest_writable: false,
            moat_writes: false,
        });
    }

    fn emulation_board(input: &mut PolicyInput) {
        input.board = BoardFacts {
            name: "toy".to_string(),
            virtualization_supported: false,
        };
    }

    type Change = Box<dyn Fn(&mut PolicyInput)>;

    /// Each case: a name, the changes to the KVM baseline, and the weakening
    /// kinds expected, in order. Supported exactly when none are expected.
    fn cases() -> Vec<(&'static str, Vec<Change>, Vec<&'static str>)> {
        vec![
            ("kvm baseline", vec![], vec![]),
            ("kvm, root", vec![Box::new(root)], vec!["running-as-root"]),
            ("kvm, root --user", vec![Box::new(root_with_user)], vec![]),
            (
                "kvm, --user NAME:0",
                vec![Box::new(|input: &mut PolicyInput| {
                    input.user = UserFacts {
                        euid: 0,
                        egid: 0,
                        drop_to: Some((65534, 0)),
                    }
                })],
                vec!["root-group"],
            ),
            (
                "kvm, started by a user in group 0",
                vec![Box::new(|input: &mut PolicyInput| input.user.egid = 0)],
                vec!["root-group"],
            ),
            (
                "kvm, --user root",
                vec![Box::new(|input: &mut PolicyInput| {
                    input.user = UserFacts {
                        euid: 0,
                        egid: 0,
                        drop_to: Some((0, 0)),
                    }
                })],
                vec!["running-as-root"],
            ),
            (
                "kvm, sandbox off",
                vec![Box::new(sandbox_off)],
                vec!["sandbox-off"],
            ),
            (
                "kvm, sandbox off as root",
                vec![Box::new(sandbox_off), Box::new(root)],
                vec!["sandbox-off", "running-as-root"],
            ),
            (
                "kvm, no seccomp",
                vec![Box::new(unavailable(Layer::Seccomp))],
                vec!["layer-unavailable"],
            ),
            (
                "kvm, no rlimits",
                vec![Box::new(unavailable(Layer::ResourceLimits))],
                vec!["layer-unavailable"],
            ),
            (
                "kvm, no landlock",
                vec![Box::new(unavailable(Layer::Landlock))],
                vec![],
            ),
            (
                "kvm, no namespaces",
                vec![Box::new(unavailable(Layer::Namespaces))],
                vec![],
            ),
            (
                "kvm, no landlock, sandbox off",
                vec![
                    Box::new(unavailable(Layer::Landlock)),
                    Box::new(sandbox_off),
                ],
                vec!["sandbox-off"],
            ),
            (
                "kvm, open management socket",
                vec![Box::new(open_socket)],
                vec!["open-management-socket"],
            ),
            (
                "kvm, private management socket",
                vec![Box::new(private_socket)],
                vec![],
            ),
            (
                "kvm, unauthenticated network serial",
                vec![Box::new(network_serial(false))],
                vec!["unauthenticated-chardev"],
            ),
            (
                "kvm, authenticated network serial",
                vec![Box::new(network_serial(true))],
                vec![],
            ),
            ("kvm, serial to a file", vec![Box::new(file_serial)], vec![]),
            (
                "kvm, writable disk",
                vec![Box::new(writable_disk)],
                vec!["writable-host-file"],
            ),
            (
                "kvm, read-only initrd",
                vec![Box::new(readonly_initrd)],
                vec![],
            ),
            (
                "kvm, emulation-only board",
                vec![Box::new(emulation_board)],
                vec!["unsupported-board"],
            ),
            (
                "kvm, device unusable",
                vec![Box::new(|input: &mut PolicyInput| {
                    input.accel_unavailable = Some("permission denied".to_string());
                })],
                vec!["accel-unavailable"],
            ),
            (
                "tcg after kvm was found unusable",
                vec![
                    Box::new(tcg),
                    Box::new(|input: &mut PolicyInput| {
                        input.accel_unavailable = Some("permission denied".to_string());
                    }),
                ],
                vec!["emulation"],
            ),
            ("tcg", vec![Box::new(tcg)], vec!["emulation"]),
            (
                "tcg, root --user, everything else right",
                vec![Box::new(tcg), Box::new(root_with_user)],
                vec!["emulation"],
            ),
            (
                "tcg, sandbox off, root",
                vec![Box::new(tcg), Box::new(sandbox_off), Box::new(root)],
                vec!["emulation", "sandbox-off", "running-as-root"],
            ),
            (
                "kvm, everything wrong",
                vec![
                    Box::new(root),
                    Box::new(unavailable(Layer::Seccomp)),
                    Box::new(open_socket),
                    Box::new(network_serial(false)),
                    Box::new(writable_disk),
                ],
                vec![
                    "layer-unavailable",
                    "running-as-root",
                    "open-management-socket",
                    "unauthenticated-chardev",
                    "writable-host-file",
                ],
            ),
        ]
    }

    #[test]
    fn every_combination() {
        for (name, changes, expected) in cases() {
            let mut input = kvm_baseline();
            for change in &changes {
                change(&mut input);
            }
            let verdict = evaluate(&input);
            let kinds: Vec<&str> = verdict.weakenings.iter().map(Weakening::kind).collect();
            assert_eq!(kinds, expected, "{name}");
            let supported = expected.is_empty();
            assert_eq!(
                verdict.isolation,
                if supported {
                    IsolationVerdict::Supported
                } else {
                    IsolationVerdict::Unsupported
                },
                "{name}"
            );
            // required refuses exactly the unsupported runs, naming each reason.
            match gate(IsolationMode::Required, &verdict) {
                Ok(()) => assert!(supported, "{name}"),
                Err(refusal) => {
                    assert!(!supported, "{name}");
                    assert_eq!(refusal.reasons.len(), expected.len(), "{name}");
                }
            }
            assert_eq!(gate(IsolationMode::BestEffort, &verdict), Ok(()), "{name}");
            assert_eq!(gate(IsolationMode::Off, &verdict), Ok(()), "{name}");
            // Evaluating is pure.
            assert_eq!(evaluate(&input), verdict, "{name}");
        }
    }

    #[test]
    fn tcg_is_never_supported_whatever_else_holds() {
        let mut input = kvm_baseline();
        tcg(&mut input);
        let verdict = evaluate(&input);
        assert_eq!(verdict.isolation, IsolationVerdict::Unsupported);
        assert_eq!(
            verdict.weakenings[0].to_string(),
            "emulation: not a security boundary"
        );
        // The layers still apply as defence in depth and are reported.
        assert!(
            verdict
                .layers
                .iter()
                .all(|(_, state)| *state == LayerState::Active)
        );
        let refusal = gate(IsolationMode::Required, &verdict).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "--isolation required refuses this run: emulation: not a security boundary"
        );
    }

    #[test]
    fn the_tcg_warning_follows_mode_and_quiet() {
        let mut input = kvm_baseline();
        assert!(!warn_emulation(
            IsolationMode::BestEffort,
            false,
            &evaluate(&input)
        ));
        tcg(&mut input);
        let verdict = evaluate(&input);
        assert!(warn_emulation(IsolationMode::BestEffort, false, &verdict));
        assert!(warn_emulation(IsolationMode::Required, false, &verdict));
        assert!(!warn_emulation(IsolationMode::BestEffort, true, &verdict));
        assert!(!warn_emulation(IsolationMode::Off, false, &verdict));
    }

    #[test]
    fn layers_are_reported_and_optional_ones_named_when_missing() {
        let mut input = kvm_baseline();
        unavailable(Layer::Landlock)(&mut input);
        input
            .layers
            .retain(|(layer, _)| *layer != Layer::Namespaces);
        let verdict = evaluate(&input);
        assert_eq!(verdict.isolation, IsolationVerdict::Supported);
        let missing: Vec<Layer> = verdict.unavailable_layers().map(|(l, _)| l).collect();
        assert_eq!(missing, vec![Layer::Namespaces, Layer::Landlock]);
        let summary = verdict.summary();
        assert!(
            summary.starts_with("isolation supported (kvm)"),
            "{summary}"
        );
        assert!(summary.contains("landlock (kernel too old)"), "{summary}");
        assert!(summary.contains("namespaces (not probed)"), "{summary}");
        assert!(
            !verdict.guarantees.iter().any(
                |guarantee| guarantee.contains("Landlock") || guarantee.contains("file access")
            )
        );

        sandbox_off(&mut input);
        let verdict = evaluate(&input);
        assert!(
            verdict
                .layers
                .iter()
                .all(|(_, state)| *state == LayerState::Off)
        );
        assert_eq!(verdict.unavailable_layers().count(), 0);
    }

    #[test]
    fn logs_moat_writes_are_named_not_denied() {
        let mut input = kvm_baseline();
        file_serial(&mut input);
        let verdict = evaluate(&input);
        assert!(
            verdict
                .guarantees
                .iter()
                .any(|g| g.ends_with("moat writes its output to serial log serial.log")),
            "{:?}",
            verdict.guarantees
        );
        assert!(
            !verdict
                .guarantees
                .iter()
                .any(|g| g == "the guest cannot write any host file")
        );
    }

    #[test]
    fn guarantees_name_what_holds() {
        let mut input = kvm_baseline();
        root_with_user(&mut input);
        let verdict = evaluate(&input);
        for expected in [
            "hardware virtualization (kvm)",
            "system-call allow-list",
            "runs as uid 65534",
            "no management socket",
            "cannot write any host file",
        ] {
            assert!(
                verdict
                    .guarantees
                    .iter()
                    .any(|guarantee| guarantee.contains(expected)),
                "{expected} in {:?}",
                verdict.guarantees
            );
        }
        assert_eq!(verdict.summary(), "isolation supported (kvm)");
    }
}
