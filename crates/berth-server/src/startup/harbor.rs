//! The Harbor the registry routes talk to: a remote Harbor, none, or dev mode's embedded
//! emulator.

use std::sync::Arc;
#[cfg(feature = "dev")]
use std::time::Duration;

use anyhow::Context;
use berth_domain::ports::RegistryProvisioner;
use berth_harbor::{HarborClient, HarborSettings};
#[cfg(feature = "dev")]
use secrecy::SecretString;

use super::runtime::HarborChoice;

/// The provisioner for the chosen Harbor, and the embedded emulator in dev mode.
pub(super) struct ChosenHarbor {
    pub(super) provisioner: Option<Arc<dyn RegistryProvisioner>>,
    pub(super) embedded: Option<EmbeddedHarbor>,
}

/// Dev mode's in-process Harbor emulator (only in builds with the `dev` feature).
#[cfg(feature = "dev")]
pub type EmbeddedHarbor = harbor_emulator::RunningEmulator;
/// Builds without the `dev` feature embed no emulator.
#[cfg(not(feature = "dev"))]
pub type EmbeddedHarbor = std::convert::Infallible;

/// The Harbor client for `choice`.
///
/// # Errors
/// Bad Harbor settings, or an embedded emulator that does not start (or that this build lacks).
pub(super) fn provisioner(choice: HarborChoice) -> anyhow::Result<ChosenHarbor> {
    let remote =
        |settings: HarborSettings| -> anyhow::Result<Option<Arc<dyn RegistryProvisioner>>> {
            Ok(Some(Arc::new(
                HarborClient::new(settings).context("harbor settings")?,
            )))
        };
    match choice {
        HarborChoice::None => Ok(ChosenHarbor {
            provisioner: None,
            embedded: None,
        }),
        HarborChoice::Remote(settings) => Ok(ChosenHarbor {
            provisioner: remote(settings)?,
            embedded: None,
        }),
        HarborChoice::Embedded => embedded(remote),
    }
}

#[cfg(not(feature = "dev"))]
fn embedded(
    _: impl Fn(HarborSettings) -> anyhow::Result<Option<Arc<dyn RegistryProvisioner>>>,
) -> anyhow::Result<ChosenHarbor> {
    anyhow::bail!(
        "this berth was built without the `dev` feature, so it embeds no Harbor emulator: \
         set harbor.url (BERTH_HARBOR__URL), or build with the default features"
    )
}

#[cfg(feature = "dev")]
fn embedded(
    remote: impl Fn(HarborSettings) -> anyhow::Result<Option<Arc<dyn RegistryProvisioner>>>,
) -> anyhow::Result<ChosenHarbor> {
    let password = harbor_emulator_password()?;
    let config = harbor_emulator::EmulatorConfig {
        admin_password: password.clone(),
        ..Default::default()
    };
    let (emulator, server) = harbor_emulator::start(config, "127.0.0.1:0")
        .context("starting the embedded Harbor emulator")?;
    tokio::spawn(server);
    let settings = HarborSettings {
        url: emulator.url().to_owned(),
        username: "admin".into(),
        password: SecretString::from(password),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        registry_endpoint: None,
    };
    Ok(ChosenHarbor {
        provisioner: remote(settings)?,
        embedded: Some(emulator),
    })
}

#[cfg(feature = "dev")]
fn harbor_emulator_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    // Harbor's rule for passwords: upper, lower and a digit.
    Ok(format!(
        "Aa1{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    ))
}
