//! Command-line syntax: clap definitions and value parsers. Nothing here touches
//! a file or a device.

use std::path::PathBuf;

use accel_tcg::exec::trace::TraceFlags;
use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  moat run --kernel tests/guests/bin/x86_64/hello.elf
      Boot the bundled hello guest under KVM (or TCG where KVM is absent).
  moat run --kernel vmlinux --initrd initrd.img --append 'console=ttyS0' --memory 512M
      Boot a PVH kernel with an initrd and a command line.
  moat run --kernel guest.elf --serial file:serial.log
      Send the guest's serial output to a file.
  sudo moat run --kernel guest.elf --user nobody --isolation required
      Run an untrusted guest: refuse unless moat can promise isolation.
  moat check --kernel guest.elf --user nobody --json
      What moat would promise for that run, and why (docs/security.md).
";

/// The serial console's behaviour, in `--help` and quoted by README.md (a test
/// keeps them the same).
pub const CONSOLE_HELP: &str = "\
Serial console (--serial stdio):
  With a terminal on stdin, moat puts it in raw mode: each key reaches the
  guest at once, without Enter, and the terminal is restored when moat exits.
  Ctrl-A starts a command, as in QEMU: Ctrl-A x quits (status 0), Ctrl-A h
  lists the keys, Ctrl-A Ctrl-A sends Ctrl-A itself. Ctrl-C still stops moat.
  When stdin is a pipe or a file, moat stops delivering input at its end, as
  QEMU does: the guest is not told and runs on until it exits or moat is
  stopped (Ctrl-C, SIGTERM).";

/// moat's exit status, in `--help` and quoted by README.md (a test keeps them
/// the same).
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  (v << 1) | 1  the guest wrote v to the debug-exit port (QEMU's isa-debug-exit)
  0             the only vCPU halted with nothing left to wake it, the guest
                reset the machine under --no-reboot, or Ctrl-A x ended moat
  1             the guest crashed (triple fault), or moat or the accelerator
                failed
  2             a usage or input error: a bad flag, a missing or malformed
                image, an unusable /dev/kvm, a refusal by --isolation required
                (moat check: the run would be refused or could not start)
  128 + n       moat was stopped by signal n (130 for Ctrl-C, 143 for SIGTERM)";

/// Everything after the flags in `--help`.
fn after_help() -> String {
    format!("{EXAMPLES}\n{CONSOLE_HELP}\n\n{EXIT_STATUS_HELP}")
}

/// moat: a machine emulator and virtual machine monitor.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about, after_help = after_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a guest kernel and run it until it exits.
    #[command(after_help = after_help())]
    Run(RunArgs),
    /// Print what moat would promise for a run with these flags, without
    /// starting anything: the verdict, and what would stop the run (an
    /// unusable /dev/kvm, an unreadable image). Exit status 2 when
    /// --isolation required would refuse the run or it could not start.
    #[command(after_help = EXIT_STATUS_HELP)]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What to do when moat cannot promise to isolate the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationChoice {
    /// Refuse to run (status 2) unless isolation is supported with no weakening.
    Required,
    /// Run anyway; warn on stderr when the accelerator is not a security boundary.
    BestEffort,
    /// Run anyway, without the warning.
    Off,
}

impl From<IsolationChoice> for machine::IsolationMode {
    fn from(choice: IsolationChoice) -> Self {
        match choice {
            IsolationChoice::Required => machine::IsolationMode::Required,
            IsolationChoice::BestEffort => machine::IsolationMode::BestEffort,
            IsolationChoice::Off => machine::IsolationMode::Off,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

/// Which accelerator runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelChoice {
    /// KVM when the guest's architecture is the host's and /dev/kvm opens, else TCG.
    Auto,
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// moat's own binary translator (emulation: no security boundary).
    Tcg,
}

/// Where the guest's serial port is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialChoice {
    Stdio,
    Null,
    File(PathBuf),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The kernel image: ELF with a PVH note, multiboot, or plain ELF64.
    #[arg(long, value_name = "FILE")]
    pub kernel: PathBuf,
    /// A file handed to the kernel as its initrd (boot module 0).
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// The kernel command line (it may start with `-`, as in QEMU).
    #[arg(
        long,
        value_name = "CMDLINE",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub append: String,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Guest RAM: a number with an optional K, M, G or T suffix (no suffix: MiB).
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = parse_memory_size)]
    pub memory: u64,
    /// Number of vCPUs, 1 to 8, one host thread each; all but the first start
    /// powered off until the guest starts them (x86 INIT/SIPI).
    #[arg(long, default_value_t = 1, value_parser = parse_cpus)]
    pub cpus: u32,
    /// The machine type; by default the one for the kernel's architecture
    /// (pc for x86-64, virt for aarch64).
    #[arg(long, value_enum)]
    pub machine: Option<MachineChoice>,
    /// Serial port: stdio, null, or file:PATH.
    #[arg(long, value_name = "stdio|null|file:PATH", default_value = "stdio", value_parser = parse_serial)]
    pub serial: SerialChoice,
    /// Write the device tree the guest would get to FILE and exit, without
    /// running it (boards with a device tree: virt).
    #[arg(long, value_name = "FILE")]
    pub dump_dtb: Option<PathBuf>,
    /// Exit instead of restarting when the guest resets the machine.
    #[arg(long)]
    pub no_reboot: bool,
    /// Whether a run must be isolated: required, best-effort or off.
    #[arg(long, value_enum, default_value_t = IsolationChoice::BestEffort)]
    pub isolation: IsolationChoice,
    /// Confine the moat process: seccomp, namespaces, Landlock, resource limits,
    /// no capabilities.
    #[arg(long, value_enum, default_value_t = Toggle::On)]
    pub sandbox: Toggle,
    /// Drop to this user (and its group, or GID) once /dev/kvm and the images are
    /// open. Needs moat to start as root.
    #[arg(long, value_name = "NAME|UID[:GID]")]
    pub user: Option<String>,
    /// Print the isolation verdict and the sandbox layers at start.
    #[arg(long, short)]
    pub verbose: bool,
    /// Do not warn that emulation is not a security boundary.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// TCG: trace events to stderr, comma-separated: in_asm (guest code of each
    /// new block), op (its IR), out_asm (host code), exec (every block entered).
    #[arg(long, value_name = "EVENTS", value_parser = parse_trace)]
    pub trace: Option<TraceFlags>,
    /// A disk image as a virtio-blk device (repeatable, in slot order):
    /// PATH[,ro][,serial=ID]. Writable unless `ro` (a weakening: the guest
    /// writes a host file).
    #[arg(long = "disk", value_name = "PATH[,ro][,serial=ID]", value_parser = parse_disk)]
    pub disks: Vec<DiskChoice>,
    /// A virtio-rng entropy source (from the host's getrandom).
    #[arg(long)]
    pub rng: bool,
    /// TCG: write the --trace events to this file instead of stderr.
    #[arg(long, value_name = "PATH", requires = "trace")]
    pub trace_file: Option<PathBuf>,
    /// TCG: how translated blocks run: jit (host code, the default) or interp
    /// (the IR interpreter, slow; for checking the JIT).
    #[arg(long, value_enum)]
    pub tcg_engine: Option<TcgEngine>,
}

/// `--machine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MachineChoice {
    /// x86-64 PC (no PCI): 16550 COM1, 8259 PICs, 8254 PIT, APICs.
    Pc,
    /// aarch64, QEMU `virt`'s memory map.
    Virt,
}

impl From<MachineChoice> for machine::MachineKind {
    fn from(choice: MachineChoice) -> Self {
        match choice {
            MachineChoice::Pc => machine::MachineKind::Pc,
            MachineChoice::Virt => machine::MachineKind::Virt,
        }
    }
}

/// How TCG runs translated blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TcgEngine {
    /// Host code from moat's x86-64 backend.
    Jit,
    /// The IR interpreter.
    Interp,
}

/// Flags that contradict each other, found before anything is opened: each
/// is a usage error, so no flag is silently ignored.
pub fn contradictions(args: &RunArgs) -> Result<(), String> {
    if args.accel == AccelChoice::Kvm {
        if args.trace.is_some() {
            return Err(
                "--trace shows what TCG translates and runs; under --accel kvm \
                 nothing is translated (use --accel tcg)"
                    .to_string(),
            );
        }
        if args.tcg_engine.is_some() {
            return Err(
                "--tcg-engine chooses how TCG runs code; it does nothing under \
                 --accel kvm (use --accel tcg)"
                    .to_string(),
            );
        }
    }
    if args.trace.is_some_and(|trace| trace.out_asm) && args.tcg_engine == Some(TcgEngine::Interp) {
        return Err("--trace out_asm shows the host code the JIT generates; \
             --tcg-engine interp generates none"
            .to_string());
    }
    Ok(())
}

/// TCG-only flags that a run under KVM ignores (`--accel auto` picked KVM):
/// one warning each.
pub fn ignored_under_kvm(args: &RunArgs) -> Vec<&'static str> {
    let mut ignored = Vec::new();
    if args.trace.is_some() {
        ignored.push("--trace does nothing under KVM, which --accel auto chose (use --accel tcg)");
    }
    if args.tcg_engine.is_some() {
        ignored.push(
            "--tcg-engine does nothing under KVM, which --accel auto chose (use --accel tcg)",
        );
    }
    ignored
}

/// A byte count as people write sizes: the largest of T, G, M, K that divides
/// it (`4M`, `64G`, `1536K`), else bytes (`1000B`). `parse_memory_size` reads
/// every form back.
pub fn format_size(bytes: u64) -> String {
    for (shift, suffix) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        let unit = 1u64 << shift;
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

/// `--cpus`: 1 to the most any board has.
pub fn parse_cpus(text: &str) -> Result<u32, String> {
    let max = machine::boards::MAX_CPUS;
    let count: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of vCPUs (1 to {max})"))?;
    if (1..=max).contains(&count) {
        Ok(count)
    } else {
        Err(format!("{count} is not between 1 and {max}"))
    }
}

pub fn parse_trace(text: &str) -> Result<TraceFlags, String> {
    TraceFlags::parse(text)
}

/// Parses `128M`, `1G`, `512MiB`, `1048576K`; a bare number is MiB, as in QEMU.
pub fn parse_memory_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (expected e.g. 128M or 2G)"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 20,
        "k" | "kb" | "kib" => 10,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "b" => 0,
        _ => {
            return Err(format!(
                "'{text}' has an unknown size suffix '{suffix}' (use K, M, G or T)"
            ));
        }
    };
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// `--disk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskChoice {
    pub path: PathBuf,
    pub read_only: bool,
    pub serial: String,
}

/// Most bytes of a virtio-blk serial (`VIRTIO_BLK_T_GET_ID`).
const DISK_SERIAL_MAX: usize = 20;

pub fn parse_disk(text: &str) -> Result<DiskChoice, String> {
    let mut parts = text.split(',');
    let path = parts.next().unwrap_or_default();
    if path.is_empty() {
        return Err("needs a path, as in disk.img or disk.img,ro".to_string());
    }
    let mut disk = DiskChoice {
        path: PathBuf::from(path),
        read_only: false,
        serial: String::new(),
    };
    for option in parts {
        match option.split_once('=') {
            None if option == "ro" => disk.read_only = true,
            Some(("serial", id)) if id.len() <= DISK_SERIAL_MAX => disk.serial = id.to_string(),
            Some(("serial", _)) => {
                return Err(format!("serial= takes at most {DISK_SERIAL_MAX} bytes"));
            }
            _ => {
                return Err(format!(
                    "'{option}' is not a disk option (use ro, serial=ID)"
                ));
            }
        }
    }
    Ok(disk)
}

pub fn parse_serial(text: &str) -> Result<SerialChoice, String> {
    match text {
        "stdio" => Ok(SerialChoice::Stdio),
        "null" | "none" => Ok(SerialChoice::Null),
        _ => match text.strip_prefix("file:") {
            Some("") => Err("file: needs a path, as in file:serial.log".to_string()),
            Some(path) => Ok(SerialChoice::File(PathBuf::from(path))),
            None => Err(format!(
                "'{text}' is not a serial backend (use stdio, null or file:PATH)"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks() {
        assert_eq!(
            parse_disk("a.img,ro,serial=x1"),
            Ok(DiskChoice {
                path: PathBuf::from("a.img"),
                read_only: true,
                serial: "x1".to_string()
            })
        );
        assert!(parse_disk("").is_err());
        assert!(parse_disk("a.img,rw").is_err());
        assert!(parse_disk("a.img,serial=123456789012345678901").is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_size("128M"), Ok(128 << 20));
        assert_eq!(parse_memory_size("128"), Ok(128 << 20));
        assert_eq!(parse_memory_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_memory_size("512k"), Ok(512 << 10));
        assert!(parse_memory_size("").is_err());
        assert!(parse_memory_size("12X").is_err());
        assert!(parse_memory_size("-1G").is_err());
        assert!(parse_memory_size("99999999999T").is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(format_size(4 << 20), "4M");
        assert_eq!(format_size(64 << 30), "64G");
        assert_eq!(format_size(1536 << 10), "1536K");
        assert_eq!(format_size(1 << 40), "1T");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
        for bytes in [4 << 20, 1000, 1536 << 10, 3 << 40] {
            assert_eq!(parse_memory_size(&format_size(bytes)), Ok(bytes));
        }
    }

    #[test]
    fn cpu_counts() {
        assert_eq!(parse_cpus("4"), Ok(4));
        assert_eq!(parse_cpus("9"), Err("9 is not between 1 and 8".to_string()));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("many").is_err());
    }

    #[test]
    fn serial_backends() {
        assert_eq!(parse_serial("stdio"), Ok(SerialChoice::Stdio));
        assert_eq!(parse_serial("null"), Ok(SerialChoice::Null));
        assert_eq!(
            parse_serial("file:/tmp/x"),
            Ok(SerialChoice::File("/tmp/x".into()))
        );
        assert!(parse_serial("file:").is_err());
        assert!(parse_serial("tcp:1234").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
