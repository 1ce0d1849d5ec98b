//! `seed`: the benchmark's data set, written through Berth's own stores.
//!
//! Shape: `organizations` organizations, 10 spaces each and 10 apps per space; `credentials`
//! credentials spread evenly over the organizations (20% organization-scoped, 30% space, 50%
//! app), each with 2 to 5 labels: always `env` (prod, staging, dev) and `team` (20 teams), then
//! the first 0 to 3 of `tier`, `region`, `cost-center`. The benchmark's selector
//! `env=prod,tier` matches about a quarter of an organization's credentials.
//! Plus `registry_organizations` organizations without credentials, one per registry
//! enablement the load generator may send.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_domain::audit::{AuditActor, AuditData, AuditEvent, AuditEventType, AuditTarget};
use berth_domain::credential::{Password, RegistryCredential, ScopeTarget, Username};
use berth_domain::directory::{App, Organization, ResourceName, Space};
use berth_domain::ids::{AppGuid, CredentialGuid, OrganizationGuid, SpaceGuid};
use berth_domain::location::RegistryLocation;
use berth_domain::metadata::{LabelKey, LabelValue, Metadata};
use berth_domain::ports::DirectoryStore;
use berth_persistence::sealing::KeyRing;
use berth_persistence::{PoolSettings, SeaOrmCredentialStore, SeaOrmDirectoryStore};
use futures_util::{StreamExt, TryStreamExt, stream};
use sea_orm::ConnectionTrait as _;
use secrecy::SecretString;
use uuid::Uuid;

const SPACES_PER_ORGANIZATION: usize = 10;
const APPS_PER_SPACE: usize = 10;
const CREDENTIALS_PER_BATCH: usize = 2_000;
/// How many guids the GET and PATCH scripts cycle through.
const SAMPLE: usize = 20_000;
/// The audit events of the measured organization (`list_organization`) in every set: the same
/// page and count whatever the table holds (`queries::SEED_AUDIT_EVENTS`).
const MEASURED_ORGANIZATION_EVENTS: usize = 1_000;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    #[arg(long, env = "BERTH_DATABASE__URL")]
    database_url: String,
    /// The key ring Berth will run with (`label:base64key`).
    #[arg(long, env = "BERTH_ENCRYPTION__KEYS")]
    encryption_keys: SecretString,
    #[arg(long)]
    credentials: usize,
    #[arg(long)]
    organizations: usize,
    #[arg(long, default_value_t = 0)]
    registry_organizations: usize,
    /// Audit events: 1,000 in the measured organization, the rest spread evenly over the others
    /// (`queries::SEED_AUDIT_EVENTS`).
    #[arg(long, default_value_t = 0)]
    audit_events: usize,
    /// Folder for `dataset.json` and the id lists.
    #[arg(long)]
    out: PathBuf,
}

/// The event the directory store writes with a seeded entry (deleted once the set is seeded).
fn seeded(kind: AuditEventType, guid: impl ToString, target: &str) -> AuditEvent {
    AuditEvent::new(
        &berth_domain::ambient::Ambient::system(),
        kind,
        AuditActor::system(),
        AuditTarget::new(guid, target, "seeded"),
        AuditData::new(),
    )
}

/// A cheap, fixed pseudo-random stream (splitmix64), so every run seeds the same shape.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn labels_for(index: usize) -> anyhow::Result<BTreeMap<LabelKey, LabelValue>> {
    let random = mix(index as u64);
    let mut labels = BTreeMap::new();
    let mut add = |key: &str, value: &str| -> anyhow::Result<()> {
        labels.insert(LabelKey::parse(key)?, LabelValue::parse(value)?);
        Ok(())
    };
    add("env", ["prod", "staging", "dev"][(random % 3) as usize])?;
    add("team", &format!("team-{:02}", (random >> 8) % 20))?;
    let extra = (random >> 16) % 4;
    if extra >= 1 {
        add(
            "tier",
            ["gold", "silver", "bronze"][((random >> 20) % 3) as usize],
        )?;
    }
    if extra >= 2 {
        add("region", ["eu", "us", "ap"][((random >> 24) % 3) as usize])?;
    }
    if extra >= 3 {
        add("cost-center", &format!("cc-{:03}", (random >> 28) % 100))?;
    }
    Ok(labels)
}

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.organizations >= 1 && args.credentials >= 1,
        "seed at least one organization and one credential"
    );
    let pool = PoolSettings {
        max_connections: 8,
        ..PoolSettings::default()
    };
    let db = berth_persistence::connect(&args.database_url, &pool)
        .await
        .context("connecting to the benchmark database")?;
    berth_persistence::migrate(&db).await?;
    let keys = KeyRing::from_spec(&args.encryption_keys, "bench").context("the key ring")?;
    let directory = SeaOrmDirectoryStore::new(db.clone());
    let credentials = SeaOrmCredentialStore::new(db.clone(), Arc::new(keys));
    let started = std::time::Instant::now();
    let now = berth_domain::now();
    let name = |text: String| ResourceName::parse(&text).context("resource name");

    let organizations: Vec<Organization> = (0..args.organizations + args.registry_organizations)
        .map(|index| {
            Ok(Organization {
                guid: OrganizationGuid::from_uuid(Uuid::now_v7()),
                name: name(format!("org-{index}"))?,
                created_at: now,
                updated_at: now,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let (data_organizations, registry_organizations) = organizations.split_at(args.organizations);
    let mut spaces = Vec::new();
    for organization in data_organizations {
        for index in 0..SPACES_PER_ORGANIZATION {
            spaces.push(Space {
                guid: SpaceGuid::from_uuid(Uuid::now_v7()),
                name: name(format!("space-{index}"))?,
                organization: organization.guid,
                created_at: now,
                updated_at: now,
            });
        }
    }
    let mut apps = Vec::new();
    for space in &spaces {
        for index in 0..APPS_PER_SPACE {
            apps.push(App {
                guid: AppGuid::from_uuid(Uuid::now_v7()),
                name: name(format!("app-{index}"))?,
                space: space.guid,
                organization: space.organization,
                created_at: now,
                updated_at: now,
            });
        }
    }
    let directory = &directory;
    stream::iter(&organizations)
        .map(|organization| async move {
            let event = seeded(
                AuditEventType::OrganizationUpsert,
                organization.guid,
                "organization",
            );
            directory.organizations().insert(organization, &event).await
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    stream::iter(&spaces)
        .map(|space| async move {
            let event = seeded(AuditEventType::SpaceUpsert, space.guid, "space");
            directory.spaces().insert(space, &event).await
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    stream::iter(&apps)
        .map(|app| async move {
            let event = seeded(AuditEventType::AppUpsert, app.guid, "app");
            directory.apps().insert(app, &event).await
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let directory_seconds = started.elapsed().as_secs_f64();

    // Oldest first, one second apart, ending now: the list's default order is creation time.
    let first_created = now - time::Duration::seconds(args.credentials as i64);
    let build = |index: usize| -> anyhow::Result<(RegistryCredential, Password)> {
        let organization = &data_organizations[index % args.organizations];
        let slot = index / args.organizations;
        let space = &spaces[(index % args.organizations) * SPACES_PER_ORGANIZATION
            + slot % SPACES_PER_ORGANIZATION];
        let app = &apps[((index % args.organizations) * SPACES_PER_ORGANIZATION
            + slot % SPACES_PER_ORGANIZATION)
            * APPS_PER_SPACE
            + (slot / SPACES_PER_ORGANIZATION) % APPS_PER_SPACE];
        let target = match (mix(index as u64) >> 40) % 10 {
            0 | 1 => ScopeTarget::Organization(organization.guid),
            2..=4 => ScopeTarget::Space {
                organization: organization.guid,
                space: space.guid,
            },
            _ => ScopeTarget::App {
                organization: organization.guid,
                space: space.guid,
                app: app.guid,
            },
        };
        let created_at = first_created + time::Duration::seconds(index as i64);
        let credential = RegistryCredential {
            guid: CredentialGuid::from_uuid(Uuid::now_v7()),
            target,
            location: RegistryLocation::parse(&format!(
                "registry-{}.example.com/team-{}",
                index % 1000,
                index / 1000
            ))?,
            username: Username::parse(&format!("robot-{index}"))?,
            metadata: Metadata::from_stored(labels_for(index)?, BTreeMap::new()),
            created_at,
            updated_at: created_at,
            revision: 0,
        };
        let password = Password::parse(SecretString::from(format!(
            "pw-{index}-{:016x}",
            mix(!index as u64)
        )))?;
        Ok((credential, password))
    };
    let every = (args.credentials / SAMPLE).max(1);
    let mut sample = Vec::new();
    let batches: Vec<std::ops::Range<usize>> = (0..args.credentials)
        .step_by(CREDENTIALS_PER_BATCH)
        .map(|start| start..(start + CREDENTIALS_PER_BATCH).min(args.credentials))
        .collect();
    let credentials = &credentials;
    let mut loads = stream::iter(batches)
        .map(|range| {
            let batch: anyhow::Result<Vec<_>> = range.map(build).collect();
            async move {
                let batch = batch?;
                credentials.import(&batch).await?;
                anyhow::Ok(batch)
            }
        })
        .buffer_unordered(4);
    while let Some(batch) = loads.next().await {
        for (credential, _) in batch? {
            // Spread over the set, not its first rows only.
            if mix(credential.guid.as_uuid().as_u128() as u64).is_multiple_of(every as u64) {
                sample.push(credential.guid.to_string());
            }
        }
    }
    let resolve = resolve_credentials(credentials, &apps[0], now).await?;
    let credential_seconds = started.elapsed().as_secs_f64() - directory_seconds;
    // The set's events are the seeded ones only, not the directory's upserts above.
    db.execute_unprepared("DELETE FROM audit_events").await?;
    if args.audit_events > 0 {
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            crate::queries::SEED_AUDIT_EVENTS,
            [
                i64::try_from(args.audit_events)?.into(),
                data_organizations[0].guid.as_uuid().into(),
                i64::try_from(MEASURED_ORGANIZATION_EVENTS)?.into(),
            ],
        ))
        .await?;
    }
    db.execute_unprepared("VACUUM ANALYZE").await?;

    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("credentials.txt"), sample.join("\n") + "\n")?;
    let registry_guids: Vec<String> = registry_organizations
        .iter()
        .map(|organization| organization.guid.to_string())
        .collect();
    std::fs::write(
        args.out.join("registry-organizations.txt"),
        registry_guids.join("\n") + "\n",
    )?;
    let dataset = serde_json::json!({
        "credentials": args.credentials,
        "organizations": args.organizations,
        "spaces": spaces.len(),
        "apps": apps.len(),
        "registry_organizations": args.registry_organizations,
        "audit_events": args.audit_events,
        "list_organization": data_organizations[0].guid.to_string(),
        "post_organization": data_organizations[args.organizations.min(2) - 1].guid.to_string(),
        "sample_guid": sample.first(),
        "resolve": resolve,
        "seconds": { "directory": directory_seconds, "credentials": credential_seconds },
    });
    std::fs::write(
        args.out.join("dataset.json"),
        serde_json::to_string_pretty(&dataset)?,
    )?;
    println!("{dataset}");
    Ok(())
}

/// The resolve scenario's data: for one app, a credential at each of app, space and organization
/// level, each the answer for one image of the request (`bench/README.md`). Its images also try
/// their shorter paths, bare host and parent domain at every level, so the lookup weighs all of
/// them against the table.
async fn resolve_credentials(
    credentials: &SeaOrmCredentialStore,
    app: &App,
    now: time::OffsetDateTime,
) -> anyhow::Result<serde_json::Value> {
    let levels = [
        (
            ScopeTarget::App {
                organization: app.organization,
                space: app.space,
                app: app.guid,
            },
            "resolve-app.example.com/team",
            "resolve-app.example.com/team/web:1.4",
        ),
        (
            ScopeTarget::Space {
                organization: app.organization,
                space: app.space,
            },
            "resolve-space.example.com",
            "resolve-space.example.com/team/worker@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        (
            ScopeTarget::Organization(app.organization),
            "resolve-org.example.com",
            "resolve-org.example.com/platform/base/jobs:2026",
        ),
    ];
    let mut batch = Vec::new();
    let mut images = Vec::new();
    for (index, (target, location, image)) in levels.into_iter().enumerate() {
        batch.push((
            RegistryCredential {
                guid: CredentialGuid::from_uuid(Uuid::now_v7()),
                target,
                location: RegistryLocation::parse(location)?,
                username: Username::parse(&format!("resolve-{index}"))?,
                metadata: Metadata::from_stored(BTreeMap::new(), BTreeMap::new()),
                created_at: now,
                updated_at: now,
                revision: 0,
            },
            Password::parse(SecretString::from(format!("resolve-pw-{index}")))?,
        ));
        images.push(image);
    }
    credentials.import(&batch).await?;
    Ok(serde_json::json!({ "app": app.guid.to_string(), "images": images }))
}
