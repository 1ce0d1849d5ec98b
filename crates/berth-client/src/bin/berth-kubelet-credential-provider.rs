//! `berth-kubelet-credential-provider`: the kubelet's exec credential-provider protocol,
//! answered by Berth. The protocol lives in `berth_client::kubelet`; this only reads and writes
//! the process's pipes.

use std::process::ExitCode;

use berth_client::{Outcome, kubelet};

/// A `CredentialProviderRequest` is small (an image reference, maybe a service-account token).
const MAX_STDIN_BYTES: u64 = 1024 * 1024;

fn main() -> ExitCode {
    let stdin = match berth_client::read_stdin(MAX_STDIN_BYTES) {
        Ok(text) => text,
        Err(message) => return fail(&message),
    };
    let runtime = match berth_client::runtime() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start: {error}")),
    };
    runtime
        .block_on(kubelet::run(&stdin, &berth_client::process_env))
        .emit()
}

fn fail(message: &str) -> ExitCode {
    Outcome {
        stdout: String::new(),
        stderr: format!("berth-kubelet-credential-provider: {message}\n"),
        code: 1,
    }
    .emit()
}
