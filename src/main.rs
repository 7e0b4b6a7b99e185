//! moat's command-line front end: parses flags, picks an accelerator, builds the
//! board and runs it. The work happens in the `machine`, `devices` and
//! accelerator crates; this binary wires them together.

mod cli;
mod console;
mod logger;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    logger::init();
    let cli = cli::Cli::parse();
    let status = match cli.command {
        cli::Command::Run(args) => run::run(&args),
    };
    ExitCode::from(status)
}
