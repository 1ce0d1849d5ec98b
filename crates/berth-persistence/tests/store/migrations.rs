//! Migrations that move data, checked on rows written before them.

use berth_migration::{Migrator, MigratorTrait};
use berth_testkit::TestDatabase;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use uuid::Uuid;

#[tokio::test]
async fn label_rows_get_their_credentials_organization() {
    let db = TestDatabase::new().await;
    let connection = berth_persistence::connect(db.url(), &Default::default())
        .await
        .unwrap();
    Migrator::up(&connection, Some(3)).await.unwrap();
    let now = berth_domain::now();
    let organization = Uuid::new_v4();
    connection
        .execute(
            Query::insert()
                .into_table(Alias::new("organizations"))
                .columns(["guid", "name", "created_at", "updated_at"].map(Alias::new))
                .values_panic([organization.into(), "o".into(), now.into(), now.into()]),
        )
        .await
        .unwrap();
    let in_organization = Uuid::new_v4();
    let foundation = Uuid::new_v4();
    let rows = [
        (in_organization, "organization", Some(organization)),
        (foundation, "foundation", None),
    ];
    for (guid, scope, owner) in rows {
        let scope_key = owner.map_or("foundation".to_owned(), |o| format!("organization:{o}"));
        connection
            .execute(
                Query::insert()
                    .into_table(Alias::new("registry_credentials"))
                    .columns(
                        [
                            "guid",
                            "scope",
                            "scope_key",
                            "organization_guid",
                            "space_guid",
                            "app_guid",
                            "location",
                            "username",
                            "password_ciphertext",
                            "password_key_label",
                            "labels",
                            "annotations",
                            "created_at",
                            "updated_at",
                            "revision",
                        ]
                        .map(Alias::new),
                    )
                    .values_panic([
                        guid.into(),
                        scope.into(),
                        scope_key.into(),
                        owner.into(),
                        Option::<Uuid>::None.into(),
                        Option::<Uuid>::None.into(),
                        "r.io".into(),
                        "u".into(),
                        vec![0u8; 40].into(),
                        "k1".into(),
                        r#"{"env":"prod"}"#.into(),
                        "{}".into(),
                        now.into(),
                        now.into(),
                        0i64.into(),
                    ]),
            )
            .await
            .unwrap();
        connection
            .execute(
                Query::insert()
                    .into_table(Alias::new("registry_credential_labels"))
                    .columns(["credential_guid", "key", "value"].map(Alias::new))
                    .values_panic([guid.into(), "env".into(), "prod".into()]),
            )
            .await
            .unwrap();
    }

    Migrator::up(&connection, None).await.unwrap();
    // Read back as Berth does after `berth migrate`: on connections opened after the migration.
    // On SQLite a connection of the migrating pool may still hold the schema it read before the
    // migration's `ALTER TABLE`, and answer its first query with it.
    connection.close().await.unwrap();
    let connection = berth_persistence::connect(db.url(), &Default::default())
        .await
        .unwrap();

    for (guid, _, owner) in rows {
        let row = connection
            .query_one(
                Query::select()
                    .column(Alias::new("organization_guid"))
                    .from(Alias::new("registry_credential_labels"))
                    .and_where(Expr::col(Alias::new("credential_guid")).eq(guid)),
            )
            .await
            .unwrap()
            .expect("the label row survives the migration");
        let copied: Option<Uuid> = row.try_get("", "organization_guid").unwrap();
        assert_eq!(copied, owner);
    }
}

/// Whether the database holds an index of that name (PostgreSQL's catalog or SQLite's schema).
async fn has_index(connection: &sea_orm::DatabaseConnection, name: &str) -> bool {
    let sql = match connection.get_database_backend() {
        sea_orm::DbBackend::Postgres => "SELECT count(*) AS n FROM pg_indexes WHERE indexname = $1",
        _ => "SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND name = $1",
    };
    let row = connection
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            connection.get_database_backend(),
            sql,
            [name.into()],
        ))
        .await
        .unwrap()
        .expect("a count");
    row.try_get::<i64>("", "n").unwrap() == 1
}

#[tokio::test]
async fn organization_list_index_comes_and_goes_with_its_migration() {
    let db = TestDatabase::new().await;
    let connection = berth_persistence::connect(db.url(), &Default::default())
        .await
        .unwrap();
    let index = "idx_registry_credentials_organization_created_at";
    Migrator::up(&connection, Some(4)).await.unwrap();
    assert!(!has_index(&connection, index).await);

    Migrator::up(&connection, None).await.unwrap();
    assert!(
        has_index(&connection, index).await,
        "the organization list's index exists after the migrations"
    );

    // Down to the fourth migration, whatever has been added since.
    let later = u32::try_from(Migrator::migrations().len() - 4).unwrap();
    Migrator::down(&connection, Some(later)).await.unwrap();
    assert!(!has_index(&connection, index).await);
}

#[tokio::test]
async fn idempotency_keys_come_and_go_with_their_migration() {
    let db = TestDatabase::new().await;
    let connection = berth_persistence::connect(db.url(), &Default::default())
        .await
        .unwrap();
    Migrator::up(&connection, None).await.unwrap();
    let index = "idx_idempotency_keys_expires_at";
    assert!(has_index(&connection, index).await);
    let position = Migrator::migrations()
        .iter()
        .position(|migration| migration.name() == "m20261130_000010_create_idempotency_keys")
        .expect("the migration is listed");
    let later = u32::try_from(Migrator::migrations().len() - position).unwrap();
    Migrator::down(&connection, Some(later)).await.unwrap();
    assert!(!has_index(&connection, index).await);
    Migrator::up(&connection, None).await.unwrap();
    assert!(has_index(&connection, index).await);
}
