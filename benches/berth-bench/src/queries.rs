//! The SQL of the floor's handlers, written as Berth's credential store issues it (sea-orm's
//! statements for `find_by_id`, a filtered page and its count), and `explain`, which shows
//! PostgreSQL's plans for them.

use anyhow::Context;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

const COLUMNS: &str = r#""guid", "scope", "scope_key", "organization_guid", "space_guid", "app_guid", "location", "username", "password_ciphertext", "password_key_label", "labels", "annotations", "created_at", "updated_at", "revision""#;

/// One credential row by primary key.
pub fn get_by_guid(guid: Uuid) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(r#"SELECT {COLUMNS} FROM "registry_credentials" WHERE "guid" = $1 LIMIT $2"#),
        [guid.into(), 1u64.into()],
    )
}

/// A label selector of `key=value` and `key` requirements, comma-separated: the forms the
/// benchmark's list uses (Berth itself takes every form).
pub fn parse_selector(text: &str) -> Vec<(String, Option<String>)> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
            None => (part.to_owned(), None),
        })
        .collect()
}

/// The `WHERE` of one organization's credentials matching `selector`, and its values.
fn list_filter(organization: Uuid, selector: &[(String, Option<String>)]) -> (String, Vec<Value>) {
    let mut values: Vec<Value> = vec![organization.into()];
    let mut sql = String::from(r#""registry_credentials"."organization_guid" IN ($1)"#);
    for (key, value) in selector {
        values.push(key.clone().into());
        sql.push_str(&format!(
            r#" AND EXISTS(SELECT 1 FROM "registry_credential_labels" WHERE "registry_credential_labels"."credential_guid" = "registry_credentials"."guid" AND "registry_credential_labels"."key" = ${}"#,
            values.len()
        ));
        if let Some(value) = value {
            values.push(value.clone().into());
            sql.push_str(&format!(
                r#" AND "registry_credential_labels"."value" IN (${})"#,
                values.len()
            ));
        }
        sql.push_str(r#" AND "registry_credential_labels"."organization_guid" IN ($1))"#);
    }
    (sql, values)
}

/// The first page of `per_page`, oldest first, as Berth's list orders it.
pub fn list_page(
    organization: Uuid,
    selector: &[(String, Option<String>)],
    per_page: u64,
) -> Statement {
    let (filter, mut values) = list_filter(organization, selector);
    values.push(per_page.into());
    values.push(0u64.into());
    let limit = values.len() - 1;
    let offset = values.len();
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            r#"SELECT {COLUMNS} FROM "registry_credentials" WHERE {filter} ORDER BY "registry_credentials"."created_at" ASC, "registry_credentials"."guid" ASC LIMIT ${limit} OFFSET ${offset}"#
        ),
        values,
    )
}

/// How many credentials the list matches in all.
pub fn list_count(organization: Uuid, selector: &[(String, Option<String>)]) -> Statement {
    let (filter, values) = list_filter(organization, selector);
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            r#"SELECT COUNT(*) AS num_items FROM (SELECT {COLUMNS} FROM "registry_credentials" WHERE {filter}) AS "sub_query""#
        ),
        values,
    )
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    #[arg(long, env = "BERTH_DATABASE__URL")]
    database_url: String,
    #[arg(long)]
    organization: Uuid,
    #[arg(long)]
    selector: String,
    #[arg(long)]
    guid: Uuid,
}

/// Prints `EXPLAIN (ANALYZE, BUFFERS)` of the get, the page and the count.
pub async fn explain(args: ExplainArgs) -> anyhow::Result<()> {
    let db = berth_persistence::connect(&args.database_url, &Default::default())
        .await
        .context("connecting to the benchmark database")?;
    let selector = parse_selector(&args.selector);
    let statements = [
        ("get by guid", get_by_guid(args.guid)),
        ("list page", list_page(args.organization, &selector, 50)),
        ("list count", list_count(args.organization, &selector)),
    ];
    for (name, statement) in statements {
        let explained = Statement {
            sql: format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}", statement.sql),
            ..statement
        };
        println!("-- {name}");
        for row in db.query_all_raw(explained).await? {
            println!("{}", row.try_get_by_index::<String>(0)?);
        }
        println!();
    }
    Ok(())
}
