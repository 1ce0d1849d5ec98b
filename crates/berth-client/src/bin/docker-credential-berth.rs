//! `docker-credential-berth`: Docker's credential-helper protocol, answered by Berth.
//! The protocol lives in `berth_client::docker`; this only reads and writes the process's pipes.

use std::process::ExitCode;

use berth_client::{Outcome, docker};

/// The server URL `get` reads, or the JSON `store` reads, is small.
const MAX_STDIN_BYTES: u64 = 64 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdin = if matches!(
        args.first().map(String::as_str),
        Some("get" | "store" | "erase")
    ) {
        match berth_client::read_stdin(MAX_STDIN_BYTES) {
            Ok(text) => text,
            Err(message) => return fail(&message),
        }
    } else {
        String::new()
    };
    let runtime = match berth_client::runtime() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start: {error}")),
    };
    runtime
        .block_on(docker::run(&args, &stdin, &berth_client::process_env))
        .emit()
}

fn fail(message: &str) -> ExitCode {
    Outcome {
        stdout: format!("{message}\n"),
        stderr: format!("docker-credential-berth: {message}\n"),
        code: 1,
    }
    .emit()
}
