//! `moat run`: from flags to a running guest and back to an exit status.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::{Arc, Mutex};

use accel_kvm::KvmAccelerator;
use devices::{NoInterrupt, SerialOutput, SharedDevice, Uart16550, VmLifecycle};
use machine::loader::LoadError;
use machine::x86_64::{Board, BoardConfig, BoardError, Initrd, check_memory_size};
use machine::{Accelerator, Arch, RunOutcome};

use crate::cli::{AccelChoice, RunArgs, SerialChoice};
use crate::console;

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
    match try_run(args) {
        Ok(status) => status,
        Err(failure) => {
            eprintln!("moat: {}", failure.message);
            failure.status
        }
    }
}

fn try_run(args: &RunArgs) -> Result<u8, Failure> {
    check_memory_size(args.memory).map_err(|error| usage(format!("--memory: {error}")))?;
    let kernel = read_image("kernel", &args.kernel, args.memory)?;
    let initrd = args
        .initrd
        .as_ref()
        .map(|path| read_image("initrd", path, args.memory))
        .transpose()?;

    let arch = machine::loader::image_arch(&kernel).unwrap_or(Arch::X86_64);
    if arch != Arch::X86_64 {
        return Err(usage(format!(
            "kernel '{}' is an {arch} image; moat's {arch} board is not built yet",
            args.kernel.display()
        )));
    }
    let serial_output = open_serial(&args.serial)?;
    let uart = Arc::new(Mutex::new(Uart16550::new(
        Box::new(NoInterrupt),
        serial_output,
    )));
    if args.serial == SerialChoice::Stdio {
        console::spawn_stdin_reader(uart.clone());
    }
    let uart_device: SharedDevice = uart;

    let lifecycle = Arc::new(VmLifecycle::new());
    console::install_signal_handlers(lifecycle.clone());

    let kernel_name = args.kernel.to_string_lossy();
    let initrd_name = args
        .initrd
        .as_ref()
        .map(|path| path.to_string_lossy().into_owned());
    let config = BoardConfig {
        memory_size: args.memory,
        kernel_name: &kernel_name,
        kernel: &kernel,
        initrd: initrd.as_ref().map(|data| Initrd {
            name: initrd_name.as_deref().unwrap_or(""),
            data,
        }),
        cmdline: &args.append,
    };
    let build = || Board::build(&config, uart_device.clone(), lifecycle.clone());
    // The first board is built before the accelerator is opened, so a bad image
    // is reported as such on any host.
    let board = build().map_err(|error| board_failure(error, args))?;
    let accel = select_accelerator(args.accel, arch)?;
    let outcome = machine::run(accel.as_ref(), !args.no_reboot, board, build, |board| {
        (board.vm_spec(), board.boot.clone())
    })
    .map_err(|error| match error {
        machine::run::RunError::Board(error) => board_failure(error, args),
        machine::run::RunError::Accel(error) => failed(error.to_string()),
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

/// Reads a whole image, refusing before allocation one that cannot fit in RAM.
fn read_image(what: &str, path: &Path, memory: u64) -> Result<Vec<u8>, Failure> {
    let describe = |error: std::io::Error| usage(format!("{what} '{}': {error}", path.display()));
    let file = File::open(path).map_err(describe)?;
    let metadata = file.metadata().map_err(describe)?;
    if !metadata.is_file() {
        return Err(usage(format!(
            "{what} '{}' is not a regular file",
            path.display()
        )));
    }
    if metadata.len() > memory {
        return Err(usage(format!(
            "{what} '{}' is {} bytes, larger than guest RAM ({memory} bytes)",
            path.display(),
            metadata.len()
        )));
    }
    let mut data = Vec::with_capacity(metadata.len() as usize);
    std::io::Read::read_to_end(&mut &file, &mut data).map_err(describe)?;
    Ok(data)
}

fn select_accelerator(choice: AccelChoice, arch: Arch) -> Result<Box<dyn Accelerator>, Failure> {
    let tcg_missing = "the tcg accelerator is not part of this build yet";
    match choice {
        AccelChoice::Kvm => {
            if Arch::host() != Some(arch) {
                return Err(usage(format!(
                    "--accel kvm runs only guests of the host's architecture, and this guest is {arch}"
                )));
            }
            KvmAccelerator::open()
                .map(|accel| Box::new(accel) as Box<dyn Accelerator>)
                .map_err(|error| usage(error.to_string()))
        }
        AccelChoice::Tcg => Err(usage(tcg_missing)),
        AccelChoice::Auto => {
            if Arch::host() == Some(arch) {
                match KvmAccelerator::open() {
                    Ok(accel) => return Ok(Box::new(accel)),
                    Err(error) => log::info!("--accel auto: KVM unavailable: {error}"),
                }
            }
            Err(usage(format!(
                "--accel auto: KVM cannot run this guest here and {tcg_missing}"
            )))
        }
    }
}

fn open_serial(choice: &SerialChoice) -> Result<SerialOutput, Failure> {
    Ok(match choice {
        SerialChoice::Stdio => SerialOutput::Stdout,
        SerialChoice::Null => SerialOutput::Null,
        SerialChoice::File(path) => SerialOutput::File(
            OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(path)
                .map_err(|error| usage(format!("--serial file:{}: {error}", path.display())))?,
        ),
    })
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
        BoardError::MemorySize { .. } => usage(format!("--memory: {error}")),
        other => failed(other.to_string()),
    }
}
