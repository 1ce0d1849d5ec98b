//! Passwords sealed at rest: never stored in clear, bound to their row, rotated online.

use crate::audit_event;
use berth_domain::credential::ScopeTarget;
use berth_domain::ports::{CredentialStore, StoreError};
use berth_persistence::keys;
use berth_testkit::{bytes_contain, read_files_starting_with};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::stores::{credential, password, update};
use crate::{Harness, ring};

const CANARY: &str = "canary-Sealed-9e1b";

fn table() -> Alias {
    Alias::new("registry_credentials")
}

pub async fn ciphertext(db: &DatabaseConnection, guid: Uuid) -> (Vec<u8>, String) {
    let statement = Query::select()
        .columns([
            Alias::new("password_ciphertext"),
            Alias::new("password_key_label"),
        ])
        .from(table())
        .and_where(Expr::col(Alias::new("guid")).eq(guid))
        .to_owned();
    let row = db.query_one(&statement).await.unwrap().unwrap();
    (
        row.try_get("", "password_ciphertext").unwrap(),
        row.try_get("", "password_key_label").unwrap(),
    )
}

pub async fn set_ciphertext(db: &DatabaseConnection, guid: Uuid, bytes: Vec<u8>) {
    let statement = Query::update()
        .table(table())
        .value(Alias::new("password_ciphertext"), bytes)
        .and_where(Expr::col(Alias::new("guid")).eq(guid))
        .to_owned();
    db.execute(&statement).await.unwrap();
}

/// Every stored value of every table, as text and bytes, for a search.
async fn everything_stored(harness: &Harness) -> Vec<u8> {
    if let Some(file) = harness.db.sqlite_file() {
        // The database file, its write-ahead log and shared memory.
        let _ = harness
            .connection
            .execute_unprepared("PRAGMA wal_checkpoint(FULL)")
            .await;
        return read_files_starting_with(file.parent().unwrap(), "berth.db");
    }
    let mut bytes = Vec::new();
    for table in [
        "registry_credentials",
        "registry_credential_labels",
        "organizations",
        "spaces",
        "apps",
    ] {
        let rows = harness
            .connection
            .query_all_raw(sea_orm::Statement::from_string(
                harness.connection.get_database_backend(),
                format!("SELECT row_to_json(t)::text AS row FROM {table} t"),
            ))
            .await
            .unwrap();
        for row in rows {
            bytes.extend(row.try_get::<String>("", "row").unwrap().into_bytes());
        }
    }
    bytes
}

#[tokio::test]
async fn the_password_is_nowhere_in_the_database() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let stored = credential(ScopeTarget::Foundation, "r.io", &[]);
    harness
        .credentials
        .insert(&stored, &password(CANARY), &audit_event())
        .await
        .unwrap();
    let mut updated = stored.clone();
    updated.updated_at = berth_domain::now();
    update(
        &harness.credentials,
        &updated,
        Some(&password(&format!("{CANARY}-v2"))),
    )
    .await
    .unwrap();
    let (bytes, _) = ciphertext(&harness.connection, stored.guid.as_uuid()).await;
    assert!(!bytes_contain(&bytes, CANARY.as_bytes()));
    let everything = everything_stored(&harness).await;
    assert!(
        everything.len() > 100,
        "the search must have read something"
    );
    assert!(
        bytes_contain(&everything, b"r.io"),
        "the search sees stored values"
    );
    assert!(
        !bytes_contain(&everything, CANARY.as_bytes()),
        "the password is stored in clear"
    );
    assert!(
        !bytes_contain(&everything, b"canary"),
        "no part of the password is stored in clear"
    );
}

#[tokio::test]
async fn the_same_password_sealed_twice_differs() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let first = credential(ScopeTarget::Foundation, "a.io", &[]);
    let second = credential(ScopeTarget::Foundation, "b.io", &[]);
    harness
        .credentials
        .insert(&first, &password(CANARY), &audit_event())
        .await
        .unwrap();
    harness
        .credentials
        .insert(&second, &password(CANARY), &audit_event())
        .await
        .unwrap();
    let (a, _) = ciphertext(&harness.connection, first.guid.as_uuid()).await;
    let (b, _) = ciphertext(&harness.connection, second.guid.as_uuid()).await;
    assert_ne!(a, b);
    // Re-sealing one row gives yet another ciphertext.
    update(&harness.credentials, &first, Some(&password(CANARY)))
        .await
        .unwrap();
    let (again, _) = ciphertext(&harness.connection, first.guid.as_uuid()).await;
    assert_ne!(a, again);
}

#[tokio::test]
async fn a_flipped_byte_or_a_moved_ciphertext_does_not_open() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let first = credential(ScopeTarget::Foundation, "a.io", &[]);
    let second = credential(ScopeTarget::Foundation, "b.io", &[]);
    harness
        .credentials
        .insert(&first, &password("first-pw"), &audit_event())
        .await
        .unwrap();
    harness
        .credentials
        .insert(&second, &password("second-pw"), &audit_event())
        .await
        .unwrap();
    let (original, _) = ciphertext(&harness.connection, first.guid.as_uuid()).await;

    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x80;
    set_ciphertext(&harness.connection, first.guid.as_uuid(), flipped).await;
    assert!(matches!(
        harness.credentials.reveal_password(first.guid).await,
        Err(StoreError::Unexpected(_))
    ));

    // The first row's valid ciphertext copied into the second row.
    set_ciphertext(&harness.connection, second.guid.as_uuid(), original.clone()).await;
    assert!(matches!(
        harness.credentials.reveal_password(second.guid).await,
        Err(StoreError::Unexpected(_))
    ));

    set_ciphertext(&harness.connection, first.guid.as_uuid(), original).await;
    assert_eq!(
        harness
            .credentials
            .reveal_password(first.guid)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "first-pw"
    );
}

#[tokio::test]
async fn rotation_reseals_every_row_keeps_it_readable_and_leaves_updated_at() {
    let (old_keys, spec) = ring(&["old"], "old");
    let harness = Harness::new(old_keys.clone()).await;
    let mut stored = Vec::new();
    for index in 0..25 {
        let row = credential(ScopeTarget::Foundation, &format!("r{index}.io"), &[]);
        harness
            .credentials
            .insert(&row, &password(&format!("pw-{index}")), &audit_event())
            .await
            .unwrap();
        stored.push(row);
    }
    let counts = keys::label_counts(&harness.connection).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].label.as_str(), counts[0].rows), ("old", 25));

    // A ring with a new current key and the old one still present.
    let (new_only, new_spec) = ring(&["new"], "new");
    assert_eq!(
        keys::missing_labels(&harness.connection, &new_only)
            .await
            .unwrap(),
        ["old"]
    );
    let combined = secrecy::SecretString::from(format!(
        "{},{}",
        secrecy::ExposeSecret::expose_secret(&spec),
        secrecy::ExposeSecret::expose_secret(&new_spec)
    ));
    let both = std::sync::Arc::new(
        berth_persistence::sealing::KeyRing::from_spec(&combined, "new").unwrap(),
    );

    let report = keys::rotate(&harness.connection, both.clone(), 7)
        .await
        .unwrap();
    assert_eq!(report.rotated, 25);
    let counts = keys::label_counts(&harness.connection).await.unwrap();
    assert_eq!(
        counts
            .iter()
            .map(|c| (c.label.as_str(), c.rows))
            .collect::<Vec<_>>(),
        [("new", 25)]
    );
    assert!(
        keys::missing_labels(&harness.connection, &new_only)
            .await
            .unwrap()
            .is_empty()
    );

    let store = berth_persistence::SeaOrmCredentialStore::new(harness.connection.clone(), new_only);
    for (index, row) in stored.iter().enumerate() {
        assert_eq!(
            store
                .reveal_password(row.guid)
                .await
                .unwrap()
                .unwrap()
                .expose(),
            format!("pw-{index}")
        );
        let after = store.get(row.guid).await.unwrap().unwrap();
        assert_eq!(
            after.updated_at, row.updated_at,
            "rotation must not touch updated_at"
        );
    }
    // Idempotent: a second run finds nothing to do.
    assert_eq!(
        keys::rotate(&harness.connection, both, 7)
            .await
            .unwrap()
            .rotated,
        0
    );
}

#[tokio::test]
async fn rotation_stops_at_a_row_that_does_not_open() {
    let (old_keys, spec) = ring(&["old"], "old");
    let harness = Harness::new(old_keys).await;
    let row = credential(ScopeTarget::Foundation, "r.io", &[]);
    harness
        .credentials
        .insert(&row, &password("pw"), &audit_event())
        .await
        .unwrap();
    set_ciphertext(&harness.connection, row.guid.as_uuid(), vec![1; 40]).await;
    let (_, new_spec) = ring(&["new"], "new");
    let combined = secrecy::SecretString::from(format!(
        "{},{}",
        secrecy::ExposeSecret::expose_secret(&spec),
        secrecy::ExposeSecret::expose_secret(&new_spec)
    ));
    let both = std::sync::Arc::new(
        berth_persistence::sealing::KeyRing::from_spec(&combined, "new").unwrap(),
    );
    let error = keys::rotate(&harness.connection, both, 10)
        .await
        .unwrap_err();
    assert!(error.to_string().contains(&row.guid.to_string()));
    let (_, label) = ciphertext(&harness.connection, row.guid.as_uuid()).await;
    assert_eq!(label, "old", "a row that does not open is left as it was");
}
