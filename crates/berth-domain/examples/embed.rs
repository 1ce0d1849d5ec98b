//! Berth's domain embedded in another service, on the in-memory adapters: an organization gets
//! a Harbor-like registry, and its apps' images resolve to the pull login Berth made for it.
//!
//! `cargo run -p berth-domain --example embed`

use std::sync::Arc;

use berth_domain::actor::{Actor, PlatformScope};
use berth_domain::audit::{AuditQuery, AuditService};
use berth_domain::credential::RequestedOwner;
use berth_domain::directory::ResourceName;
use berth_domain::directory_service::DirectoryService;
use berth_domain::ids::OrganizationGuid;
use berth_domain::image_reference::ImageReference;
use berth_domain::listing::PageRequest;
use berth_domain::memory::{MemoryDatabase, MemoryProvisioner};
use berth_domain::pull_secret_service::PullSecretService;
use berth_domain::pull_secrets::{PullRequest, PullSubject};
use berth_domain::registry::QuotaGb;
use berth_domain::registry_service::{RegistryService, RegistrySettings};
use time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database = MemoryDatabase::new();
    let directory = Arc::new(database.directory());
    let harbor = Arc::new(MemoryProvisioner::new("harbor.example"));
    let settings = RegistrySettings {
        default_quota: QuotaGb::new(10)?,
        lease: Duration::seconds(60),
        lease_wait: Duration::seconds(2),
        usage_cache: Duration::minutes(1),
        stale_after: Duration::minutes(10),
        clock_skew: Duration::minutes(1),
    };
    let registries = RegistryService::new(
        Arc::new(database.registries()),
        directory.clone(),
        harbor.clone(),
        settings,
    );
    let pull_secrets = PullSecretService::new(
        Arc::new(database.credentials()),
        directory.clone(),
        Arc::new(database.access_log()),
    );

    let admin = Actor::new("admin", [PlatformScope::Admin], []);
    let organization = OrganizationGuid::parse("4b5a8f1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b")?;
    DirectoryService::new(directory.clone())
        .put_organization(&admin, organization, ResourceName::parse("acme")?)
        .await?;
    let (registry, default_robot) = registries.enable(&admin, organization, None).await?;
    println!(
        "registry {} ready at {} (push as {})",
        registry.project_name().as_str(),
        registry.pull_location(),
        default_robot.username()
    );

    let image = format!("{}/web:1.0", registry.pull_location());
    let request = PullRequest::new(
        RequestedOwner::Organization(organization),
        vec![PullSubject::Image(ImageReference::parse(&image)?)],
    )?;
    let deployer = Actor::new("deployer", [PlatformScope::PullSecrets], []);
    let secrets = pull_secrets.resolve(&deployer, request).await?;
    for (key, login) in &secrets.auths {
        // The managed pull robot's login, as Harbor issued it.
        assert!(harbor.accepts(login.username.as_str(), login.password.expose()));
        println!("{image} pulls from {key} as {}", login.username.as_str());
    }

    // Each change and each reveal of a password left its audit event in the same database.
    let audit = AuditService::new(Arc::new(database.audit_events()), directory);
    let query = AuditQuery {
        page: PageRequest::new(1, 50)?,
        ..AuditQuery::default()
    };
    for event in audit.list(&admin, query).await?.items {
        println!("{} {}", event.event_type.as_str(), event.target.name);
    }
    Ok(())
}
