//! `moat run`: from flags to a running guest and back to an exit status, through
//! the policy gate (before any image is read) and the sandbox (after every file
//! is open, before the first guest instruction).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use accel_kvm::KvmAccelerator;
use devices::{Clock, HostConsole, SerialOutput, VmLifecycle};
use machine::boards::{self, Board, BoardConfig, BoardError, Host, Initrd, MachineKind};
use machine::loader::LoadError;
use machine::policy::{self, IsolationMode, Weakening};
use machine::{Accelerator, Arch, RunOutcome, VcpuThreads};

use crate::cli::{AccelChoice, RunArgs, SerialChoice, TcgEngine, Toggle};
use crate::{cli, console, gate, sandbox};
use accel_tcg::exec::trace::TraceSink;
use accel_tcg::exec::{EngineKind, TcgAccelerator, TcgOptions};

/// Exit status for a usage or input error.
pub const STATUS_USAGE: u8 = 2;
/// Exit status when the guest crashed or the accelerator failed.
pub const STATUS_FAILED: u8 = 1;

/// A failure with the exit status it maps to.
struct Failure {
    status: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        status: STATUS_USAGE,
        message: message.into(),
    }
}

fn failed(message: impl Into<String>) -> Failure {
    Failure {
        status: STATUS_FAILED,
        message: message.into(),
    }
}

/// Runs the guest and returns moat's exit status.
pub fn run(args: &RunArgs) -> u8 {
    // Before moat opens anything of its own, so that every descriptor above 2 is
    // one it inherited.
    let inherited_fds = (args.sandbox == Toggle::On).then(sandbox::fds::close_inherited);
    match try_run(args, inherited_fds) {
        Ok(status) => status,
        Err(failure) => {
            eprintln!("moat: {}", failure.message);
            failure.status
        }
    }
}

fn try_run(args: &RunArgs, inherited_fds: Option<Result<String, String>>) -> Result<u8, Failure> {
    cli::contradictions(args).map_err(usage)?;
    let decision = policy_gate(args)?;
    if let Some(kind) = args.machine {
        boards::check_config(kind.into(), args.memory, args.cpus)
            .map_err(|error| config_failure(&error, Some(kind.into())))?;
    }
    let kernel = read_image("kernel", &args.kernel, args.memory)?;
    let initrd = args
        .initrd
        .as_ref()
        .map(|path| read_image("initrd", path, args.memory))
        .transpose()?;

    let kind = machine_kind(args, &kernel)?;
    let arch = kind.arch();
    boards::check_config(kind, args.memory, args.cpus)
        .map_err(|error| config_failure(&error, Some(kind)))?;
    let (serial_output, serial_fd) = open_serial(&args.serial)?;
    let (trace_sink, trace_fd) = open_trace_file(args)?;
    let console = HostConsole::new(serial_output);
    let stdin_console = (args.serial == SerialChoice::Stdio).then(|| console.clone());

    let lifecycle = Arc::new(VmLifecycle::with_vcpus(args.cpus));
    console::install_signal_handlers(lifecycle.clone());
    let clock = Clock::new();
    let host = Host {
        console,
        lifecycle: lifecycle.clone(),
        clock: clock.clone(),
    };

    let kernel_name = args.kernel.to_string_lossy();
    let initrd_name = args
        .initrd
        .as_ref()
        .map(|path| path.to_string_lossy().into_owned());
    let disks = open_disks(args)?;
    let disk_fds: Vec<RawFd> = disks.iter().map(|disk| disk.file.as_raw_fd()).collect();
    let config = BoardConfig {
        virtio: boards::virtio::VirtioConfig {
            disks: &disks,
            rng: args.rng,
        },
        memory_size: args.memory,
        cpus: args.cpus,
        kernel_name: &kernel_name,
        kernel: &kernel,
        initrd: initrd.as_ref().map(|data| Initrd {
            name: initrd_name.as_deref().unwrap_or(""),
            data,
        }),
        cmdline: &args.append,
    };
    let build = || boards::build(kind, &config, &host);
    // The first board is built before the accelerator is opened, so a bad image
    // is reported as such on any host.
    let board = build().map_err(|error| board_failure(error, args))?;
    if let Some(path) = &args.dump_dtb {
        return dump_device_tree(board.as_ref(), kind, path);
    }
    // The gate predicted KVM for `auto`; under --isolation required, auto may
    // not turn into TCG now that the image is read.
    let choice = match (args.accel, decision.mode) {
        (AccelChoice::Auto, IsolationMode::Required) => AccelChoice::Kvm,
        (choice, _) => choice,
    };
    let accel = select_accelerator(choice, arch, args, trace_sink)?;
    warn_ignored_flags(args, &decision, accel.as_ref());
    if args.verbose {
        eprintln!(
            "moat: machine {kind}, {} vCPU(s), kernel entered by {}",
            args.cpus,
            board.boot_protocol()
        );
    }
    // Raw from here to the end of try_run: dropping the guard on any return
    // restores the terminal (signals and panics restore it too).
    let terminal = match args.serial {
        SerialChoice::Stdio => console::RawTerminal::enter(),
        _ => None,
    };
    let threads = confine(
        args,
        &decision,
        accel.as_ref(),
        Confinement {
            stdin_console,
            clock,
            serial_fd,
            trace_fd,
            inherited_fds,
            terminal: terminal.is_some().then(|| lifecycle.clone()),
            disk_fds,
        },
    )?;
    let outcome =
        machine::run(accel.as_ref(), &threads, !args.no_reboot, board, build).map_err(|error| {
            match error {
                machine::run::RunError::Board(error) => board_failure(error, args),
                machine::run::RunError::Accel(error) => failed(error.to_string()),
            }
        })?;

    Ok(match outcome {
        RunOutcome::Exited(status) => {
            if let Some(signal) = console::termination_signal() {
                eprintln!("moat: stopped by signal {signal}");
            }
            u8::try_from(status & 0xff).unwrap_or(STATUS_FAILED)
        }
        RunOutcome::Halted { pc } => {
            eprintln!("moat: the guest halted at {pc:#x} with nothing left to wake it");
            0
        }
        RunOutcome::Reset => {
            eprintln!("moat: the guest reset the machine (--no-reboot)");
            0
        }
        RunOutcome::Crashed(crash) => {
            eprintln!("moat: {crash}");
            STATUS_FAILED
        }
    })
}

/// `--dump-dtb`: writes the device tree the guest would get, and ends (as
/// QEMU's `-machine dumpdtb=` does).
fn dump_device_tree(board: &dyn Board, kind: MachineKind, path: &Path) -> Result<u8, Failure> {
    let dtb = board
        .device_tree()
        .ok_or_else(|| usage(format!("--dump-dtb: the {kind} machine has no device tree")))?;
    std::fs::write(path, dtb)
        .map_err(|error| usage(format!("--dump-dtb {}: {error}", path.display())))?;
    Ok(0)
}

/// The machine to build: `--machine`, else the one for the kernel's
/// architecture (x86-64 for images that do not say).
fn machine_kind(args: &RunArgs, kernel: &[u8]) -> Result<MachineKind, Failure> {
    let image_arch = machine::loader::image_arch(kernel);
    match (args.machine.map(MachineKind::from), image_arch) {
        (Some(kind), Some(arch)) if kind.arch() != arch => Err(usage(format!(
            "kernel '{}' is an {arch} image; the {kind} machine runs {} guests",
            args.kernel.display(),
            kind.arch()
        ))),
        (Some(kind), _) => Ok(kind),
        (None, arch) => Ok(MachineKind::for_arch(arch.unwrap_or(Arch::X86_64))),
    }
}

/// `--memory` and `--cpus` out of a board's range, as people write sizes and
/// counts ("between 4M and 64G"); the limits are the board's own.
fn config_failure(error: &BoardError, kind: Option<MachineKind>) -> Failure {
    let machine = kind.map_or_else(String::new, |kind| format!(" on the {kind} machine"));
    match error {
        BoardError::MemorySize { size, min, max } => usage(format!(
            "--memory: {} is not between {} and {}{machine}",
            cli::format_size(*size),
            cli::format_size(*min),
            cli::format_size(*max)
        )),
        BoardError::CpuCount { count, max, .. } => usage(format!(
            "--cpus: {count} is not between 1 and {max}{machine}"
        )),
        BoardError::MemoryGranule { .. } => usage(format!("--memory: {error}")),
        _ => usage(error.to_string()),
    }
}

/// Opens an image and checks it can be loaded (a regular file no larger than
/// guest RAM) without reading it; `moat check` asks the same. Returns the
/// file and its size.
pub fn open_image(what: &str, path: &Path, memory: u64) -> Result<(File, u64), String> {
    let describe = |error: std::io::Error| format!("{what} '{}': {error}", path.display());
    // Non-blocking, so a FIFO (or a device) named by mistake is refused
    // below instead of hanging moat in open().
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(describe)?;
    let metadata = file.metadata().map_err(describe)?;
    if !metadata.is_file() {
        return Err(format!("{what} '{}' is not a regular file", path.display()));
    }
    if metadata.len() > memory {
        return Err(format!(
            "{what} '{}' is {} bytes, larger than guest RAM ({})",
            path.display(),
            metadata.len(),
            cli::format_size(memory)
        ));
    }
    Ok((file, metadata.len()))
}

/// Opens the `--disk` images (before the sandbox closes the file system):
/// regular files only, read-only where asked.
fn open_disks(args: &RunArgs) -> Result<Vec<boards::virtio::Disk>, Failure> {
    args.disks
        .iter()
        .map(|disk| {
            let describe =
                |error: std::io::Error| usage(format!("--disk '{}': {error}", disk.path.display()));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(!disk.read_only)
                .custom_flags(libc::O_NONBLOCK)
                .open(&disk.path)
                .map_err(describe)?;
            if !file.metadata().map_err(describe)?.is_file() {
                return Err(usage(format!(
                    "--disk '{}' is not a regular file",
                    disk.path.display()
                )));
            }
            Ok(boards::virtio::Disk {
                file: Arc::new(file),
                read_only: disk.read_only,
                serial: disk.serial.clone(),
            })
        })
        .collect()
}

/// Reads a whole image, refusing before allocation one that cannot fit in RAM.
fn read_image(what: &str, path: &Path, memory: u64) -> Result<Vec<u8>, Failure> {
    let (file, size) = open_image(what, path, memory).map_err(usage)?;
    let describe = |error: std::io::Error| usage(format!("{what} '{}': {error}", path.display()));
    let mut data = Vec::with_capacity(size as usize);
    std::io::Read::read_to_end(&mut &file, &mut data).map_err(describe)?;
    Ok(data)
}

fn select_accelerator(
    choice: AccelChoice,
    arch: Arch,
    args: &RunArgs,
    trace_sink: Option<TraceSink>,
) -> Result<Box<dyn Accelerator>, Failure> {
    match choice {
        AccelChoice::Kvm => {
            if Arch::host() != Some(arch) {
                return Err(usage(format!(
                    "--accel kvm runs only guests of the host's architecture, and this guest is {arch}"
                )));
            }
            KvmAccelerator::open_path(&gate::kvm_device())
                .map(|accel| Box::new(accel) as Box<dyn Accelerator>)
                .map_err(|error| usage(error.to_string()))
        }
        AccelChoice::Tcg => tcg_accelerator(arch, args, trace_sink.clone()),
        AccelChoice::Auto => {
            if Arch::host() == Some(arch) {
                match KvmAccelerator::open_path(&gate::kvm_device()) {
                    Ok(accel) => return Ok(Box::new(accel)),
                    Err(error) => log::info!("--accel auto: KVM unavailable, using TCG: {error}"),
                }
            }
            tcg_accelerator(arch, args, trace_sink.clone())
        }
    }
}

/// The TCG accelerator with every front end moat has.
fn tcg_accelerator(
    arch: Arch,
    args: &RunArgs,
    trace_sink: Option<TraceSink>,
) -> Result<Box<dyn Accelerator>, Failure> {
    let options = TcgOptions {
        engine: match args.tcg_engine.unwrap_or(TcgEngine::Jit) {
            TcgEngine::Jit => EngineKind::Jit,
            TcgEngine::Interp => EngineKind::Interpreter,
        },
        trace: args.trace.unwrap_or_default(),
        trace_sink,
        ..TcgOptions::default()
    };
    let accel = TcgAccelerator::new(
        vec![
            Arc::new(frontend_x86::X86FrontEnd),
            Arc::new(frontend_aarch64::Aarch64FrontEnd),
        ],
        options,
    );
    if !accel.supports(arch) {
        return Err(usage(format!("--accel tcg has no {arch} front end yet")));
    }
    Ok(Box::new(accel))
}

/// Opens `--trace-file` before the sandbox closes the file system; returns the
/// sink and its descriptor (which the sandbox lets moat write).
fn open_trace_file(args: &RunArgs) -> Result<(Option<TraceSink>, Option<RawFd>), Failure> {
    let Some(path) = &args.trace_file else {
        return Ok((None, None));
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(|error| usage(format!("--trace-file {}: {error}", path.display())))?;
    let fd = file.as_raw_fd();
    Ok((Some(TraceSink::new(Box::new(file))), Some(fd)))
}

/// Opens the serial backend; returns it with the descriptor it writes, if a file.
fn open_serial(choice: &SerialChoice) -> Result<(SerialOutput, Option<RawFd>), Failure> {
    Ok(match choice {
        SerialChoice::Stdio => (SerialOutput::Stdout, None),
        SerialChoice::Null => (SerialOutput::Null, None),
        SerialChoice::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(path)
                .map_err(|error| usage(format!("--serial file:{}: {error}", path.display())))?;
            let fd = file.as_raw_fd();
            (SerialOutput::File(file), Some(fd))
        }
    })
}

/// The policy gate, before any image is read: with `--isolation required` a
/// run that cannot be isolated ends here.
fn policy_gate(args: &RunArgs) -> Result<gate::Decision, Failure> {
    let decision = gate::decide(args).map_err(usage)?;
    if args.verbose {
        eprintln!("moat: {}", decision.verdict.summary());
    }
    if let Some(refusal) = &decision.refusal {
        return Err(usage(refusal.to_string()));
    }
    Ok(decision)
}

/// Says which flags the chosen accelerator ignores, and why `--accel auto`
/// emulates, unless told to be quiet.
fn warn_ignored_flags(args: &RunArgs, decision: &gate::Decision, accel: &dyn Accelerator) {
    if args.quiet {
        return;
    }
    if accel.kind() == machine::AccelKind::Kvm {
        for warning in cli::ignored_under_kvm(args) {
            eprintln!("moat: warning: {warning}");
        }
    } else if args.accel == AccelChoice::Auto
        && decision.mode != IsolationMode::Off
        && let Some(reason) = &decision.input.accel_unavailable
    {
        eprintln!("moat: --accel auto emulates with TCG: {reason}");
    }
}

/// What the sandbox needs from the rest of `try_run`.
struct Confinement {
    /// The console the stdin thread feeds, when the serial port is on stdio.
    stdin_console: Option<Arc<HostConsole>>,
    /// The VM clock, whose timer thread starts with the others.
    clock: Arc<Clock>,
    /// The serial log's descriptor.
    serial_fd: Option<RawFd>,
    /// The --trace-file descriptor.
    trace_fd: Option<RawFd>,
    /// What closing inherited descriptors did (`None`: the sandbox is off).
    inherited_fds: Option<Result<String, String>>,
    /// stdin is a raw terminal: the stdin thread reads Ctrl-A commands and ends
    /// the VM through this lifecycle on Ctrl-A x.
    terminal: Option<Arc<VmLifecycle>>,
    /// The `--disk` images' descriptors (the vCPU threads read and write them).
    disk_fds: Vec<RawFd>,
}

/// Confines moat (with the sandbox on), starts the stdin and vCPU threads, and
/// checks the verdict again now that the accelerator is open and the layers
/// applied. Runs after every file is opened and before the first guest
/// instruction; returns the vCPU threads.
fn confine(
    args: &RunArgs,
    decision: &gate::Decision,
    accel: &dyn Accelerator,
    confinement: Confinement,
) -> Result<VcpuThreads, Failure> {
    let Confinement {
        stdin_console,
        clock,
        serial_fd,
        trace_fd,
        inherited_fds,
        terminal,
        disk_fds,
    } = confinement;
    let raw_terminal = terminal.is_some();
    let threads: Arc<Mutex<Option<VcpuThreads>>> = Arc::new(Mutex::new(None));
    let started = threads.clone();
    let cpus = args.cpus;
    let start_threads: Box<sandbox::ThreadStarter<'_>> = Box::new(move |filters| {
        let (stdin_filter, vcpu_filter) = match filters {
            Some(filters) => (Some(filters.stdin), Some(filters.vcpu)),
            None => (None, None),
        };
        if let Some(console) = stdin_console {
            console::spawn_stdin_reader(console, stdin_filter, terminal)?;
        }
        // Timer callbacks raise interrupt lines and kick vCPUs, as a vCPU's
        // device accesses do: the clock thread gets the vCPU allow-list.
        let clock_filter = vcpu_filter.clone();
        clock
            .start(Box::new(move || match &clock_filter {
                Some(filter) => sandbox::seccomp::install(filter),
                None => Ok(()),
            }))
            .map_err(|error| format!("cannot start the clock thread: {error}"))?;
        let setup: machine::run::ThreadSetup = Arc::new(move |_index| match &vcpu_filter {
            Some(filter) => sandbox::seccomp::install(filter),
            None => Ok(()),
        });
        let vcpu_threads = VcpuThreads::start(cpus, setup)?;
        *started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(vcpu_threads);
        Ok(())
    });
    #[cfg(feature = "test-hooks")]
    let forbidden_call = std::env::var_os("MOAT_TEST_FORBIDDEN_SYSCALL").is_some();

    let report = if args.sandbox == Toggle::On {
        let mut write_fds = vec![libc::STDOUT_FILENO, libc::STDERR_FILENO];
        write_fds.extend(serial_fd);
        write_fds.extend(trace_fd);
        let plan = sandbox::Plan {
            accel: accel.kind(),
            euid: gate::euid(),
            user: decision.user,
            read_paths: [Some(&args.kernel), args.initrd.as_ref()]
                .into_iter()
                .flatten()
                .cloned()
                .chain(args.disks.iter().map(|disk| disk.path.clone()))
                .collect(),
            write_paths: match &args.serial {
                SerialChoice::File(path) => vec![path.clone()],
                _ => Vec::new(),
            }
            .into_iter()
            .chain(args.trace_file.clone())
            .chain(
                args.disks
                    .iter()
                    .filter(|disk| !disk.read_only)
                    .map(|disk| disk.path.clone()),
            )
            .collect(),
            write_fds,
            inherited_fds: inherited_fds.unwrap_or_else(|| Err("sandbox off".to_string())),
            terminal: raw_terminal,
            disk_fds,
        };
        let report = sandbox::confine(&plan, start_threads);
        if args.verbose {
            eprintln!("moat: {}", report.summary());
        }
        Some(report)
    } else {
        // --user is honoured even without the sandbox: it was asked for.
        if decision.user.is_some() {
            sandbox::privileges::drop_privileges(decision.user).map_err(failed)?;
        }
        start_threads(None).map_err(failed)?;
        None
    };

    let verdict = gate::after_sandbox(decision, accel.kind(), accel.isolation(), report.as_ref());
    if verdict != decision.verdict {
        if args.verbose {
            eprintln!("moat: now {}", verdict.summary());
        }
        policy::gate(decision.mode, &verdict).map_err(|refusal| usage(refusal.to_string()))?;
        if !args.quiet && decision.mode != IsolationMode::Off {
            for weakening in &verdict.weakenings {
                if !decision.verdict.weakenings.contains(weakening)
                    && *weakening != Weakening::Emulation
                {
                    eprintln!("moat: warning: {weakening}");
                }
            }
        }
    }
    if policy::warn_emulation(decision.mode, args.quiet, &verdict) {
        eprintln!(
            "moat: warning: {}: {} does not isolate the guest from the host",
            Weakening::Emulation,
            verdict.accel
        );
    }

    #[cfg(feature = "test-hooks")]
    if forbidden_call {
        // A call no allow-list has: with the sandbox on, the kernel kills moat
        // with SIGSYS right here. Built only with the test-hooks feature.
        // SAFETY: socket takes integers and returns a descriptor or -1.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        return Err(failed(format!(
            "test hook: the forbidden system call returned {fd}"
        )));
    }
    let threads = threads
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    threads.ok_or_else(|| failed("the vCPU threads did not start"))
}

fn board_failure(error: BoardError, args: &RunArgs) -> Failure {
    match error {
        BoardError::Kernel(load) => usage(match load {
            LoadError::CmdlineTooLong { .. } | LoadError::CmdlineNul => format!("--append: {load}"),
            LoadError::InitrdTooLarge { .. } => format!(
                "initrd '{}': {load}",
                args.initrd.as_deref().unwrap_or(Path::new("")).display()
            ),
            other => format!("kernel '{}': {other}", args.kernel.display()),
        }),
        BoardError::MemorySize { .. }
        | BoardError::MemoryGranule { .. }
        | BoardError::CpuCount { .. }
        | BoardError::NotBuilt(_) => config_failure(&error, None),
        other => failed(other.to_string()),
    }
}
