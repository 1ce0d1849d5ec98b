//! What only the sea-orm credential store shows (its database locks, imports); the contract
//! both adapters keep is in `contract.rs`.

use crate::audit_event;
use berth_domain::credential::{Password, RegistryCredential, ScopeTarget, Username};
use berth_domain::directory::{Organization, ResourceName};
use berth_domain::ids::{CredentialGuid, OrganizationGuid};
use berth_domain::label_selector::LabelSelector;
use berth_domain::listing::{CredentialQuery, PageRequest};
use berth_domain::location::RegistryLocation;
use berth_domain::metadata::{LabelKey, LabelValue, Metadata, MetadataPatch};
use berth_domain::permissions::CredentialVisibility;
use berth_domain::ports::{CredentialStore, DirectoryStore, StoreError};
use secrecy::SecretString;

use crate::{Harness, ring};

pub fn credential(
    target: ScopeTarget,
    location: &str,
    labels: &[(&str, &str)],
) -> RegistryCredential {
    let patch = MetadataPatch::new(
        labels
            .iter()
            .map(|(k, v)| {
                (
                    LabelKey::parse(k).unwrap(),
                    Some(LabelValue::parse(v).unwrap()),
                )
            })
            .collect(),
        Default::default(),
    );
    let now = berth_domain::now();
    RegistryCredential {
        guid: CredentialGuid::generate(),
        target,
        location: RegistryLocation::parse(location).unwrap(),
        username: Username::parse("user").unwrap(),
        metadata: Metadata::default().apply(&patch).unwrap(),
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

/// Writes `credential` (and `password`, when given) under the store's write lock.
pub async fn update(
    store: &dyn CredentialStore,
    credential: &RegistryCredential,
    password: Option<&Password>,
) -> Result<(), StoreError> {
    let locked = store
        .lock(credential.guid)
        .await?
        .ok_or(StoreError::NotFound)?;
    locked.write(credential, password, &audit_event()).await
}

pub fn password(text: &str) -> Password {
    Password::parse(SecretString::from(text)).unwrap()
}

pub async fn organization(harness: &Harness) -> OrganizationGuid {
    let now = berth_domain::now();
    let guid = OrganizationGuid::from_uuid(uuid::Uuid::new_v4());
    harness
        .directory
        .organizations()
        .insert(
            &Organization {
                guid,
                name: ResourceName::parse("o").unwrap(),
                created_at: now,
                updated_at: now,
            },
            &audit_event(),
        )
        .await
        .unwrap();
    guid
}

/// A second writer waits for the first one's lock and then reads what it wrote, on both
/// databases: a read-merge-write under the lock never loses a concurrent write.
#[tokio::test]
async fn a_locked_credential_makes_other_writers_wait_and_see_its_write() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let stored = credential(ScopeTarget::Foundation, "r.io", &[("env", "prod")]);
    harness
        .credentials
        .insert(&stored, &password("p1"), &audit_event())
        .await
        .unwrap();
    let first = harness
        .credentials
        .lock(stored.guid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.current(), &stored);
    let store = harness.credentials.clone();
    let guid = stored.guid;
    let second = tokio::spawn(async move {
        let locked = store.lock(guid).await.unwrap().unwrap();
        locked.current().clone()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second lock did not wait");
    let mut changed = stored.clone();
    changed.username = Username::parse("first-writer").unwrap();
    changed.metadata = credential(ScopeTarget::Foundation, "r.io", &[("env", "qa")]).metadata;
    first.write(&changed, None, &audit_event()).await.unwrap();
    let seen = second.await.unwrap();
    changed.revision += 1;
    assert_eq!(seen, changed);
    // A lock dropped without a write changes nothing.
    drop(
        harness
            .credentials
            .lock(stored.guid)
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        harness.credentials.get(stored.guid).await.unwrap().as_ref(),
        Some(&changed)
    );
}

/// The selector's label lookups are narrowed to the listed organizations (for the index); the
/// answer must be exactly the unnarrowed one, for every form, for inserted, imported and
/// updated credentials, with foundation credentials beside them.
#[tokio::test]
async fn label_selectors_within_organizations_agree_with_the_in_memory_semantics() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let first = organization(&harness).await;
    let second = organization(&harness).await;
    let label_sets: &[&[(&str, &str)]] = &[
        &[("env", "prod"), ("tier", "web")],
        &[("env", "dev"), ("tier", "db")],
        &[("env", "prod")],
        &[("tier", "")],
        &[],
    ];
    let targets = [
        ScopeTarget::Foundation,
        ScopeTarget::Organization(first),
        ScopeTarget::Organization(second),
    ];
    let mut all = Vec::new();
    let mut imported = Vec::new();
    for (index, labels) in label_sets.iter().enumerate() {
        for (target_index, target) in targets.iter().enumerate() {
            let stored = credential(*target, &format!("r{index}.io"), labels);
            if (index + target_index) % 2 == 0 {
                harness
                    .credentials
                    .insert(&stored, &password("p"), &audit_event())
                    .await
                    .unwrap();
            } else {
                imported.push((stored.clone(), password("p")));
            }
            all.push(stored);
        }
    }
    harness.credentials.import(&imported).await.unwrap();
    // An update rewrites the labels: they must stay findable inside the organization.
    let mut changed = all[4].clone();
    changed.metadata = credential(changed.target, "x.io", &[("env", "qa")]).metadata;
    update(&harness.credentials, &changed, None).await.unwrap();
    changed.revision += 1;
    all[4] = changed;
    for selector in [
        "env",
        "!env",
        "env=prod",
        "env!=prod",
        "env in (prod,qa)",
        "env notin (prod,qa)",
        "tier=",
        "tier,env!=dev",
        "!tier,!env",
    ] {
        let parsed = LabelSelector::parse(selector).unwrap();
        for organizations in [vec![first], vec![first, second], vec![]] {
            let mut expected: Vec<CredentialGuid> = all
                .iter()
                .filter(|c| {
                    c.target
                        .organization()
                        .is_some_and(|guid| organizations.contains(&guid))
                })
                .filter(|c| parsed.matches(c.metadata.labels()))
                .map(|c| c.guid)
                .collect();
            expected.sort();
            let query = CredentialQuery {
                label_selector: Some(parsed.clone()),
                organization_guids: Some(organizations.clone()),
                visibility: CredentialVisibility::Everything,
                page: PageRequest::new(1, 100).unwrap(),
                ..CredentialQuery::default()
            };
            let page = harness.credentials.list(&query).await.unwrap();
            let mut found: Vec<CredentialGuid> = page.items.iter().map(|c| c.guid).collect();
            found.sort();
            assert_eq!(
                found,
                expected,
                "{selector} in {} organizations",
                organizations.len()
            );
            assert_eq!(page.total_results, expected.len() as u64, "{selector}");
        }
    }
}

/// When another transaction keeps the credential locked past the database's wait (SQLite's
/// busy timeout; PostgreSQL's `lock_timeout`, set here for the test's database), `lock` is a
/// `Conflict` (answered as a 422 upstream), not an unexpected error.
#[tokio::test]
async fn a_lock_not_had_in_time_is_a_conflict() {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};

    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys.clone()).await;
    let stored = credential(ScopeTarget::Foundation, "r.io", &[]);
    harness
        .credentials
        .insert(&stored, &password("p"), &audit_event())
        .await
        .unwrap();
    let backend = harness.connection.get_database_backend();
    if backend == DbBackend::Postgres {
        let name = harness.db.url().rsplit('/').next().unwrap().to_owned();
        harness
            .connection
            .execute_unprepared(&format!("ALTER DATABASE {name} SET lock_timeout = '300ms'"))
            .await
            .unwrap();
    }
    // A store on new connections, which pick up the database's settings.
    let store = berth_persistence::SeaOrmCredentialStore::new(
        berth_persistence::connect(harness.db.url(), &Default::default())
            .await
            .unwrap(),
        keys,
    );
    let holder = berth_persistence::connect(harness.db.url(), &Default::default())
        .await
        .unwrap();
    let transaction = holder.begin().await.unwrap();
    let hold = match backend {
        DbBackend::Postgres => format!(
            "SELECT guid FROM registry_credentials WHERE guid = '{}' FOR UPDATE",
            stored.guid
        ),
        // Any write takes SQLite's one write lock.
        _ => format!(
            "UPDATE registry_credentials SET revision = revision WHERE guid = '{}'",
            stored.guid
        ),
    };
    transaction.execute_unprepared(&hold).await.unwrap();
    assert!(matches!(
        store.lock(stored.guid).await,
        Err(StoreError::Conflict)
    ));
    transaction.rollback().await.unwrap();
    assert!(store.lock(stored.guid).await.unwrap().is_some());
}
