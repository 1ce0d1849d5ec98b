//! [`CredentialStore`] in memory.

use std::cmp::Ordering as CmpOrdering;

use async_trait::async_trait;

use super::{CredentialRow, MemoryDatabase, Tables};
use crate::audit::AuditEvent;
use crate::credential::{Password, RegistryCredential, RequestedOwner, Scope, ScopeTarget};
use crate::ids::CredentialGuid;
use crate::listing::{CredentialOrderField, CredentialQuery, Direction, Page, TimestampFilter};
use crate::permissions::CredentialVisibility;
use crate::ports::{CredentialStore, LockedCredential, StoreError};
use crate::pull_secrets::{PullLookup, PullMatch, PullQuery, Reveal, levels};

/// Registry credentials in a [`MemoryDatabase`]. Passwords are kept as given (nothing leaves
/// memory, so there is nothing to seal). A `lock` or `delete` of a locked credential waits until
/// the lock is written or dropped, without the deadline a database gives it, so it never answers
/// [`StoreError::Conflict`].
#[derive(Clone, Debug)]
pub struct MemoryCredentialStore {
    database: MemoryDatabase,
}

impl MemoryCredentialStore {
    /// The store on `database`'s tables.
    pub fn new(database: MemoryDatabase) -> Self {
        Self { database }
    }
}

/// Whether the parents a credential names exist, as the foreign keys check.
fn parents_exist(tables: &Tables, credential: &RegistryCredential) -> bool {
    let target = &credential.target;
    target
        .organization()
        .is_none_or(|guid| tables.organizations.contains_key(&guid))
        && target
            .space()
            .is_none_or(|guid| tables.spaces.contains_key(&guid))
        && target
            .app()
            .is_none_or(|guid| tables.apps.contains_key(&guid))
}

/// The unique (scope target, location) key.
fn same_place(a: &RegistryCredential, b: &RegistryCredential) -> bool {
    a.target == b.target && a.location == b.location
}

/// Inserts a credential row, as [`CredentialStore::insert`] documents.
pub(super) fn insert_row(
    tables: &mut Tables,
    credential: &RegistryCredential,
    password: &Password,
) -> Result<(), StoreError> {
    if tables.credentials.contains_key(&credential.guid)
        || tables
            .credentials
            .values()
            .any(|row| same_place(&row.credential, credential))
    {
        return Err(StoreError::Conflict);
    }
    if !parents_exist(tables, credential) {
        return Err(StoreError::MissingParent);
    }
    tables.credentials.insert(
        credential.guid,
        CredentialRow {
            credential: credential.clone(),
            password: password.clone(),
        },
    );
    Ok(())
}

/// Writes `credential` at its scope target and location: a credential there is taken over (its
/// guid kept; username, password and `credential`'s labels replaced), otherwise it is inserted.
pub(super) fn upsert_row(
    tables: &mut Tables,
    credential: &RegistryCredential,
    password: &Password,
) -> Result<CredentialGuid, StoreError> {
    let existing = tables
        .credentials
        .values_mut()
        .find(|row| same_place(&row.credential, credential));
    let Some(row) = existing else {
        insert_row(tables, credential, password)?;
        return Ok(credential.guid);
    };
    let current = &mut row.credential;
    current.metadata = credential
        .metadata
        .labels()
        .iter()
        .fold(current.metadata.clone(), |metadata, (key, value)| {
            metadata.with_label(key.clone(), value.clone())
        });
    current.username = credential.username.clone();
    current.updated_at = credential.updated_at;
    current.revision += 1;
    row.password = password.clone();
    Ok(current.guid)
}

fn visible(visibility: &CredentialVisibility, credential: &RegistryCredential) -> bool {
    let CredentialVisibility::Scoped {
        organizations,
        managed_organizations,
        spaces,
    } = visibility
    else {
        return true;
    };
    let target = &credential.target;
    match target.scope() {
        Scope::Foundation => true,
        Scope::Organization => target
            .organization()
            .is_some_and(|guid| organizations.contains(&guid)),
        Scope::Space | Scope::App => {
            target
                .organization()
                .is_some_and(|guid| managed_organizations.contains(&guid))
                || target.space().is_some_and(|guid| spaces.contains(&guid))
        }
    }
}

fn in_list<T: PartialEq>(list: Option<&Vec<T>>, value: Option<T>) -> bool {
    list.is_none_or(|list| value.is_some_and(|value| list.contains(&value)))
}

pub(super) fn timestamps_match(filter: &TimestampFilter, at: time::OffsetDateTime) -> bool {
    (filter.equals.is_empty() || filter.equals.contains(&at))
        && filter.lt.is_none_or(|bound| at < bound)
        && filter.lte.is_none_or(|bound| at <= bound)
        && filter.gt.is_none_or(|bound| at > bound)
        && filter.gte.is_none_or(|bound| at >= bound)
}

fn matches(query: &CredentialQuery, credential: &RegistryCredential) -> bool {
    let target = &credential.target;
    visible(&query.visibility, credential)
        && in_list(query.guids.as_ref(), Some(credential.guid))
        && in_list(query.organization_guids.as_ref(), target.organization())
        && in_list(query.space_guids.as_ref(), target.space())
        && in_list(query.app_guids.as_ref(), target.app())
        && in_list(query.scopes.as_ref(), Some(target.scope()))
        && in_list(
            query.locations.as_ref(),
            Some(credential.location.as_str().to_owned()),
        )
        && query
            .label_selector
            .as_ref()
            .is_none_or(|selector| selector.matches(credential.metadata.labels()))
        && timestamps_match(&query.created_ats, credential.created_at)
        && timestamps_match(&query.updated_ats, credential.updated_at)
}

/// Orders by the field, then by guid, both in `direction`; pages as `page` says.
pub(super) fn page_of<T: Clone>(
    mut items: Vec<T>,
    compare: impl Fn(&T, &T) -> CmpOrdering,
    direction: Direction,
    page: crate::listing::PageRequest,
) -> Page<T> {
    items.sort_by(|a, b| match direction {
        Direction::Ascending => compare(a, b),
        Direction::Descending => compare(b, a),
    });
    let total_results = items.len() as u64;
    let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let items = items
        .into_iter()
        .skip(skip)
        .take(page.per_page() as usize)
        .collect();
    Page {
        items,
        total_results,
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentialStore {
    async fn insert(
        &self,
        credential: &RegistryCredential,
        password: &Password,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        insert_row(&mut tables, credential, password)?;
        tables.record(std::slice::from_ref(event));
        Ok(())
    }

    async fn get(&self, guid: CredentialGuid) -> Result<Option<RegistryCredential>, StoreError> {
        Ok(self
            .database
            .tables()
            .credentials
            .get(&guid)
            .map(|row| row.credential.clone()))
    }

    async fn lock(
        &self,
        guid: CredentialGuid,
    ) -> Result<Option<Box<dyn LockedCredential>>, StoreError> {
        loop {
            let seen = {
                let mut tables = self.database.tables();
                let Some(row) = tables.credentials.get(&guid) else {
                    return Ok(None);
                };
                let current = row.credential.clone();
                if tables.locked_credentials.insert(guid) {
                    return Ok(Some(Box::new(MemoryLockedCredential {
                        current,
                        database: self.database.clone(),
                    })));
                }
                tables.version
            };
            self.database.changed(seen, None).await;
        }
    }

    async fn delete(&self, guid: CredentialGuid, event: &AuditEvent) -> Result<(), StoreError> {
        loop {
            let seen = {
                let mut tables = self.database.tables();
                if !tables.credentials.contains_key(&guid) {
                    return Err(StoreError::NotFound);
                }
                if !tables.locked_credentials.contains(&guid) {
                    tables.credentials.remove(&guid);
                    tables.record(std::slice::from_ref(event));
                    return Ok(());
                }
                tables.version
            };
            // A delete waits for the writer holding the credential, as a row lock makes it.
            self.database.changed(seen, None).await;
        }
    }

    async fn list(&self, query: &CredentialQuery) -> Result<Page<RegistryCredential>, StoreError> {
        let found: Vec<RegistryCredential> = self
            .database
            .tables()
            .credentials
            .values()
            .map(|row| &row.credential)
            .filter(|credential| matches(query, credential))
            .cloned()
            .collect();
        let order = query.order.unwrap_or(crate::listing::Ordering {
            field: CredentialOrderField::CreatedAt,
            direction: Direction::Ascending,
        });
        let by_field = |a: &RegistryCredential, b: &RegistryCredential| match order.field {
            CredentialOrderField::CreatedAt => a.created_at.cmp(&b.created_at),
            CredentialOrderField::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            CredentialOrderField::Location => a.location.as_str().cmp(b.location.as_str()),
        };
        Ok(page_of(
            found,
            |a, b| by_field(a, b).then_with(|| a.guid.cmp(&b.guid)),
            order.direction,
            query.page,
        ))
    }

    async fn reveal_password(&self, guid: CredentialGuid) -> Result<Option<Password>, StoreError> {
        Ok(self
            .database
            .tables()
            .credentials
            .get(&guid)
            .map(|row| row.password.clone()))
    }

    async fn pull_matches(
        &self,
        query: &PullQuery,
        reveal: Reveal,
    ) -> Result<Option<PullLookup>, StoreError> {
        let tables = self.database.tables();
        // The owner with its parents, from the directory's tables (one lock: one "statement").
        let context = match query.owner() {
            RequestedOwner::Foundation => Some(ScopeTarget::Foundation),
            RequestedOwner::Organization(guid) => tables
                .organizations
                .contains_key(&guid)
                .then_some(ScopeTarget::Organization(guid)),
            RequestedOwner::Space(guid) => {
                tables.spaces.get(&guid).map(|space| ScopeTarget::Space {
                    organization: space.organization,
                    space: guid,
                })
            }
            RequestedOwner::App(guid) => tables.apps.get(&guid).map(|app| ScopeTarget::App {
                organization: app.organization,
                space: app.space,
                app: guid,
            }),
        };
        let Some(context) = context else {
            return Ok(None);
        };
        let chain = levels(&context);
        let found: Vec<&CredentialRow> = tables
            .credentials
            .values()
            .filter(|row| {
                chain.contains(&row.credential.target)
                    && query
                        .locations()
                        .iter()
                        .any(|location| location == row.credential.location.as_str())
            })
            .collect();
        let matches: Vec<PullMatch> = found
            .iter()
            .map(|row| {
                PullMatch::new(
                    row.credential.guid,
                    row.credential.scope(),
                    row.credential.location.clone(),
                    row.credential.username.clone(),
                )
            })
            .collect();
        let passwords = match reveal {
            Reveal::Winners => {
                let winners = query.winning_guids(&context, &matches);
                found
                    .iter()
                    .filter(|row| winners.contains(&row.credential.guid))
                    .map(|row| (row.credential.guid, row.password.clone()))
                    .collect()
            }
            Reveal::Nothing => Vec::new(),
        };
        Ok(Some(PullLookup::new(context, matches, passwords)))
    }
}

/// A credential under its write lock; given back when written or dropped.
struct MemoryLockedCredential {
    current: RegistryCredential,
    database: MemoryDatabase,
}

impl Drop for MemoryLockedCredential {
    fn drop(&mut self) {
        let mut tables = self.database.tables();
        tables.locked_credentials.remove(&self.current.guid);
        tables.notify();
    }
}

#[async_trait]
impl LockedCredential for MemoryLockedCredential {
    fn current(&self) -> &RegistryCredential {
        &self.current
    }

    async fn write(
        self: Box<Self>,
        credential: &RegistryCredential,
        password: Option<&Password>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        let row = tables
            .credentials
            .get_mut(&self.current.guid)
            .ok_or(StoreError::NotFound)?;
        row.credential.username = credential.username.clone();
        row.credential.metadata = credential.metadata.clone();
        row.credential.updated_at = credential.updated_at;
        row.credential.revision += 1;
        if let Some(password) = password {
            row.password = password.clone();
        }
        tables.record(std::slice::from_ref(event));
        // Dropping `self` (after the tables' guard) gives the lock back.
        drop(tables);
        Ok(())
    }
}
