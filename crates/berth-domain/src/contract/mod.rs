//! The store contract (feature `contract-tests`): async functions that take fresh stores and
//! assert, with `assert!` and `panic!`, that they keep their ports' documented semantics.
//!
//! One suite for every adapter: `berth-domain` runs it on the in-memory adapters
//! (`tests/contract.rs`), `berth-persistence` on the sea-orm stores over SQLite and PostgreSQL.
//! [`store_contract_tests!`](crate::store_contract_tests) writes one `#[tokio::test]` per
//! function, so an adapter cannot skip one:
//!
//! ```ignore
//! async fn stores() -> ((), berth_domain::contract::Stores) {
//!     let database = berth_domain::memory::MemoryDatabase::new();
//!     ((), berth_domain::contract::Stores::memory(&database))
//! }
//! berth_domain::store_contract_tests!(stores);
//! ```
//!
//! A new port gets its own file here with its functions, and a line in the macro.

// A test suite: a failed expectation is a panic with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod audit;
pub mod credentials;
pub mod directory;
pub mod idempotency;
pub mod registries;
pub mod roles;

use std::sync::Arc;

use secrecy::SecretString;
use uuid::Uuid;

use crate::ambient::Ambient;
use crate::audit::{
    AccessLog, AuditActor, AuditData, AuditEvent, AuditEventStore, AuditEventType, AuditTarget,
};
use crate::credential::{Password, RegistryCredential, ScopeTarget, Username};
use crate::directory::{Organization, ResourceName};
use crate::ids::{CredentialGuid, OrganizationGuid};
use crate::location::RegistryLocation;
use crate::metadata::{LabelKey, LabelValue, Metadata, MetadataPatch};
use crate::ports::{CredentialStore, DirectoryStore, IdempotencyStore, RegistryStore, StoreError};

/// Fresh stores of one adapter, on one empty database.
#[derive(Clone)]
pub struct Stores {
    /// The credential store.
    pub credentials: Arc<dyn CredentialStore>,
    /// The directory store, on the same database.
    pub directory: Arc<dyn DirectoryStore>,
    /// The registry store, on the same database.
    pub registries: Arc<dyn RegistryStore>,
    /// The idempotency store, on the same database.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The audit events the other stores' writes keep, on the same database.
    pub audit_events: Arc<dyn AuditEventStore>,
    /// An access log writing to the same database, whose events `audit_events` lists once
    /// `record` returned (a batching log is tested on its own: it writes later by design).
    pub access_log: Arc<dyn AccessLog>,
}

#[cfg(feature = "memory")]
impl Stores {
    /// The in-memory stores of `database`.
    pub fn memory(database: &crate::memory::MemoryDatabase) -> Self {
        Self {
            credentials: Arc::new(database.credentials()),
            directory: Arc::new(database.directory()),
            registries: Arc::new(database.registries()),
            idempotency: Arc::new(database.idempotency()),
            audit_events: Arc::new(database.audit_events()),
            access_log: Arc::new(database.access_log()),
        }
    }
}

/// Writes one `#[tokio::test]` per contract function, each on the stores `$make` gives: an
/// async function returning `(guard, Stores)`, the guard kept alive for the test (a temporary
/// database, say).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::store_contract_tests!(
            @each $make;
            credentials::insert_get_update_delete_round_trip,
            credentials::a_locked_credential_makes_other_writers_wait_and_see_its_write,
            credentials::uniqueness_and_parents_are_enforced,
            credentials::label_selectors_agree_with_the_in_memory_semantics,
            credentials::totals_are_counted_at_any_page,
            credentials::selector_pages_keep_order_offsets_and_totals,
            credentials::visibility_filters_and_order_apply_in_the_store,
            credentials::pull_matches_read_every_level_and_open_only_the_winners,
            directory::entries_round_trip_with_parents_and_dependents,
            directory::lists_filter_order_and_page,
            directory::an_app_delete_takes_its_credentials_with_their_events,
            roles::upserts_follow_cloud_controllers_rules,
            roles::the_last_organization_role_stays_while_space_roles_need_it,
            roles::permission_facts_give_the_users_roles_and_every_spaces_organization,
            roles::lists_filter_order_page_and_keep_to_the_visible,
            roles::role_writes_keep_their_event_and_refused_ones_none,
            roles::organizations_and_spaces_with_roles_refuse_deletion,
            registries::a_claimed_registry_reads_back_as_written_and_is_one_per_organization,
            registries::only_the_lease_holder_writes_a_registry_or_records_its_robots,
            registries::the_managed_robot_and_its_credential_are_written_and_deleted_together,
            registries::leases_expire_wait_and_stall,
            idempotency::a_lapsed_claim_is_taken_over_and_a_live_answer_is_kept,
            idempotency::answers_complete_once_release_and_prune,
            audit::credential_and_directory_writes_keep_their_event_and_refused_ones_none,
            audit::registry_writes_keep_their_events_and_refused_ones_none,
            audit::visibility_filters_order_and_pages_apply_in_the_store,
            audit::pruning_deletes_the_oldest_in_batches_and_never_a_newer_one,
            audit::the_access_log_keeps_every_event_it_is_given
        );
    };
    (@each $make:path; $($module:ident :: $name:ident),+) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, stores) = $make().await;
                $crate::contract::$module::$name(&stores).await;
            }
        )+
    };
}

/// A credential with a new guid, stamped now.
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
    let now = crate::now();
    RegistryCredential {
        guid: CredentialGuid::from_uuid(Uuid::now_v7()),
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
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown credential, or what the store answers.
pub async fn update(
    store: &dyn CredentialStore,
    credential: &RegistryCredential,
    password: Option<&Password>,
) -> Result<(), StoreError> {
    let locked = store
        .lock(credential.guid)
        .await?
        .ok_or(StoreError::NotFound)?;
    locked.write(credential, password, &event()).await
}

/// An event for a write whose event the test does not look at.
pub fn event() -> AuditEvent {
    AuditEvent::new(
        &Ambient::system(),
        AuditEventType::CredentialUpdate,
        AuditActor::system(),
        AuditTarget::new("target", "registry_credential", "test"),
        AuditData::new(),
    )
}

/// A password.
pub fn password(text: &str) -> Password {
    Password::parse(SecretString::from(text)).unwrap()
}

/// A new organization in the stores' directory.
pub async fn organization(stores: &Stores) -> OrganizationGuid {
    let now = crate::now();
    let guid = OrganizationGuid::from_uuid(Uuid::new_v4());
    stores
        .directory
        .organizations()
        .insert(
            &Organization {
                guid,
                name: ResourceName::parse("o").unwrap(),
                created_at: now,
                updated_at: now,
            },
            &event(),
        )
        .await
        .unwrap();
    guid
}
