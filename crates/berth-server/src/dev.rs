//! Dev mode's data folder: generated keys kept between runs, and the admin token.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use berth_persistence::sealing::KeyRing;
use secrecy::{ExposeSecret, SecretString};

const ENCRYPTION_KEYS_FILE: &str = "encryption.keys";
const DEV_KEY_LABEL: &str = "dev";
const HS256_SECRET_FILE: &str = "jwt-hs256.secret";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Creates the data folder, readable by its owner only.
///
/// # Errors
/// When the folder cannot be created.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    restrict(dir, 0o700)
}

/// Writes a file that only its owner may read.
///
/// # Errors
/// When the file cannot be written.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    restrict(path, 0o600)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

/// The dev key ring, generated once and kept in the data folder so restarts can open old rows.
///
/// # Errors
/// When the file cannot be read, written or parsed.
pub fn encryption_keys(dir: &Path) -> anyhow::Result<KeyRing> {
    let path = dir.join(ENCRYPTION_KEYS_FILE);
    let spec = if path.exists() {
        SecretString::from(fs::read_to_string(&path)?.trim().to_owned())
    } else {
        let spec = KeyRing::generate_spec_entry(DEV_KEY_LABEL)?;
        write_private(&path, spec.expose_secret())?;
        spec
    };
    KeyRing::from_spec(&spec, DEV_KEY_LABEL)
        .with_context(|| format!("dev key ring in {}", path.display()))
}

/// The dev HS256 signing key, generated once and kept in the data folder.
///
/// # Errors
/// When the file cannot be read or written, or no randomness is available.
pub fn hs256_secret(dir: &Path) -> anyhow::Result<SecretString> {
    let path = dir.join(HS256_SECRET_FILE);
    if path.exists() {
        return Ok(SecretString::from(
            fs::read_to_string(&path)?.trim().to_owned(),
        ));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let secret = BASE64.encode(bytes);
    write_private(&path, &secret)?;
    Ok(SecretString::from(secret))
}
