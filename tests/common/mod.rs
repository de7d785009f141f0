//! Helpers shared by the CLI tests.

use std::process::Command;

/// Runs the `microreboot` binary; returns its exit code, stdout and stderr.
pub fn microreboot(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_microreboot"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
