//! `microreboot`: the command-line front end of the workspace.
//!
//! Subcommands validate plans against the kernel, infer recovery groups from traces, run the
//! simulator and the experiments, and write the evaluation report. Exit codes: 0 success (or an
//! accepted plan), 1 a rejected plan or failed check, 2 bad input or usage.

#[macro_use]
mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            let broken_pipe = err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
            if broken_pipe {
                return ExitCode::SUCCESS; // the reader went away (`| head`): not an error
            }
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
