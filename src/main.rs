//! `microreboot`: the command-line front end of the workspace.
//!
//! Subcommands validate plans against the kernel, infer recovery groups from traces, run the
//! simulator and the experiments, and write the evaluation report. Exit codes: 0 success (or an
//! accepted plan), 1 a rejected plan or failed check, 2 bad input or usage.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
