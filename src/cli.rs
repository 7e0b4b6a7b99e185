//! Command-line syntax: clap definitions and value parsers. Nothing here touches
//! a file or a device.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  moat run --kernel tests/guests/bin/x86_64/hello.elf
      Boot the bundled hello guest under KVM (or TCG where KVM is absent).
  moat run --kernel vmlinux --initrd initrd.img --append 'console=ttyS0' --memory 512M
      Boot a PVH kernel with an initrd and a command line.
  moat run --kernel guest.elf --serial file:serial.log
      Send the guest's serial output to a file.

Exit status: the guest's own (a debug-exit write of v exits with (v << 1) | 1),
0 when the guest halts or powers off, 1 when the guest crashed (triple fault) or
the accelerator failed, 2 for a usage or input error, 130 when interrupted.";

/// moat: a machine emulator and virtual machine monitor.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a guest kernel and run it until it exits.
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
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
    /// The kernel command line.
    #[arg(long, value_name = "CMDLINE", default_value = "")]
    pub append: String,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Guest RAM: a number with an optional K, M, G or T suffix (no suffix: MiB).
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = parse_memory_size)]
    pub memory: u64,
    /// Number of vCPUs (only 1 for now).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1))]
    pub cpus: u32,
    /// Serial port: stdio, null, or file:PATH.
    #[arg(long, value_name = "stdio|null|file:PATH", default_value = "stdio", value_parser = parse_serial)]
    pub serial: SerialChoice,
    /// Exit instead of restarting when the guest resets the machine.
    #[arg(long)]
    pub no_reboot: bool,
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
