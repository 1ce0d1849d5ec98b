#![doc = include_str!("../README.md")]

mod client;
pub mod config;
pub mod docker;
mod error;
pub mod kubelet;
pub mod wire;

pub use client::BerthClient;
pub use error::{ApiError, ClientError};

/// What a helper binary prints and how it exits: the protocol modules return one, and `main`
/// only writes it out, so the protocols are tested without a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

impl Outcome {
    fn success(stdout: String) -> Self {
        Self {
            stdout,
            stderr: String::new(),
            code: 0,
        }
    }

    /// Writes the outcome to the process's stdout and stderr; returns the exit code.
    pub fn emit(&self) -> std::process::ExitCode {
        use std::io::Write;
        // A closed pipe leaves nobody to tell; the exit code still says what happened.
        let _ = std::io::stdout().write_all(self.stdout.as_bytes());
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().write_all(self.stderr.as_bytes());
        std::process::ExitCode::from(self.code)
    }
}

/// Reads at most `limit` bytes of stdin as text (a helper's input is a line or a small object).
///
/// # Errors
/// A one-line message when stdin cannot be read, is larger than `limit` or is not UTF-8.
pub fn read_stdin(limit: u64) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read stdin: {error}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("stdin is larger than {limit} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "stdin is not UTF-8".to_owned())
}

/// The process environment as the protocol modules read it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// A runtime for one call: the binaries make one or a few requests and exit.
///
/// # Errors
/// When the runtime cannot start (no threads, no I/O driver).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
