//! moat's command-line front end: parses flags, picks an accelerator, builds the
//! board and runs it. The work happens in the `machine`, `devices` and
//! accelerator crates; this binary wires them together, decides what it may
//! promise about isolation (`gate`, `check`) and confines itself (`sandbox`).

mod check;
mod cli;
mod console;
mod gate;
mod logger;
mod run;
mod sandbox;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    // One malloc arena for every thread: a per-thread arena reads
    // /proc/sys/vm/overcommit_memory when it shrinks, which the sandboxed
    // vCPU threads may not open.
    // SAFETY: mallopt takes integers, before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    logger::init();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return ExitCode::from(report_usage_error(&error)),
    };
    let status = match cli.command {
        cli::Command::Run(args) => run::run(&args),
        cli::Command::Check(args) => check::check(&args),
    };
    ExitCode::from(status)
}

/// Prints help and version as clap would; turns every other parse error into the
/// one-line message moat gives for all bad input, with status 2.
fn report_usage_error(error: &clap::Error) -> u8 {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                run::STATUS_USAGE
            } else {
                0
            }
        }
        _ => {
            eprintln!("moat: {} (see moat --help)", describe(error));
            run::STATUS_USAGE
        }
    }
}

/// A bad value reads `--cpus: 9 is not between 1 and 8`, as moat's other
/// messages about a flag do; everything else as clap says it.
fn describe(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    if error.kind() == ErrorKind::ValueValidation {
        let flag = match error.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => arg.split_whitespace().next(),
            _ => None,
        };
        if let (Some(flag), Some(source)) = (flag, std::error::Error::source(error)) {
            return format!("{flag}: {source}");
        }
    }
    one_line(&error.render().to_string())
}

/// clap's multi-line message up to its usage section, on one line.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}
