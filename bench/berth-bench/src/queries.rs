//! The floors' SQL, two sets for the same answers:
//!
//! - [`Statements::Berth`]: the statements Berth's credential store issues (sea-orm's for
//!   `find_by_id`, a filtered page and its count; a page under a label selector fetches its
//!   guids first). A floor on these is what everything around the database costs.
//! - [`Statements::Best`]: what a database engineer would write for the same answer, each on the
//!   index that serves it (named beside it). A floor on these is what the request could cost.
//!
//! And `explain`, which shows PostgreSQL's plans for both.

use anyhow::Context;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

const COLUMNS: &str = r#""guid", "scope", "scope_key", "organization_guid", "space_guid", "app_guid", "location", "username", "password_ciphertext", "password_key_label", "labels", "annotations", "created_at", "updated_at", "revision""#;

/// `$1` audit events (PostgreSQL): `$3` of them in organization `$2`, the one the growth runs
/// list, whatever the total, and the rest spread evenly over every other organization. The
/// measured list then reads the same page and counts the same entries in every set, so only the
/// table's size differs between them. One a second back from now, so none is past the retention
/// Berth prunes at start; shaped as Berth writes them, on the index Berth lists them by:
/// `(organization_guid, created_at, guid)`.
pub const SEED_AUDIT_EVENTS: &str = r#"
WITH "orgs" AS (
    SELECT "guid", row_number() OVER (ORDER BY "guid") - 1 AS "i"
    FROM "organizations" WHERE "guid" <> $2
), "total" AS (SELECT count(*) AS "c" FROM "orgs"),
"events" AS (
    SELECT "n", $2::uuid AS "organization_guid"
    FROM generate_series(0, LEAST($3::bigint, $1::bigint) - 1) AS "n"
    UNION ALL
    SELECT "n", "orgs"."guid"
    FROM generate_series(LEAST($3::bigint, $1::bigint), $1::bigint - 1) AS "n"
    CROSS JOIN "total"
    JOIN "orgs" ON "orgs"."i" = "n" % "total"."c"
)
INSERT INTO "audit_events" ("guid", "created_at", "type", "actor_guid", "actor_type",
    "actor_name", "target_guid", "target_type", "target_name", "data", "organization_guid",
    "space_guid")
SELECT gen_random_uuid(),
    date_trunc('second', now()) - "n" * interval '1 second',
    (ARRAY['audit.registry_credential.create', 'audit.registry_credential.update',
           'audit.registry_credential.access'])[1 + "n" % 3],
    'bench-user', 'user', 'bench-user',
    gen_random_uuid()::text, 'registry_credential', 'registry.example.com/team',
    '{"request":{"password":"[PRIVATE DATA HIDDEN]","username":"robot"}}',
    "events"."organization_guid", NULL
FROM "events"
"#;

const AUDIT_COLUMNS: &str = r#""guid", "created_at", "type", "actor_guid", "actor_type", "actor_name", "target_guid", "target_type", "target_name", "data", "organization_guid", "space_guid""#;

/// The statements Berth's audit store issues for one organization's first page of events, as
/// an admin sees them (no visibility condition): the page and its count.
fn audit_statements(organization: Uuid) -> [(String, Statement); 2] {
    [
        (
            "Berth's statements: audit events, one organization, page".to_owned(),
            statement(
                format!(
                    r#"SELECT {AUDIT_COLUMNS} FROM "audit_events" WHERE "organization_guid" IN ($1) ORDER BY "created_at" ASC, "guid" ASC LIMIT $2 OFFSET $3"#
                ),
                vec![organization.into(), 50u64.into(), 0u64.into()],
            ),
        ),
        (
            "Berth's statements: audit events, one organization, count".to_owned(),
            statement(
                r#"SELECT COUNT(*) AS num_items FROM (SELECT "guid" FROM "audit_events" WHERE "organization_guid" IN ($1)) AS "sub""#.to_owned(),
                vec![organization.into()],
            ),
        ),
    ]
}

/// Which set of statements a floor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Statements {
    /// The statements Berth's store issues.
    Berth,
    /// The best statements for the same answer, on the indexes that serve them.
    Best,
}

/// A label selector of `key=value` and `key` requirements, comma-separated: the forms the
/// benchmark's lists use (Berth itself takes every form).
pub type Selector = Vec<(String, Option<String>)>;

pub fn parse_selector(text: &str) -> Selector {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
            None => (part.to_owned(), None),
        })
        .collect()
}

fn statement(sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

impl Statements {
    /// One credential row by primary key.
    pub fn get_by_guid(self, guid: Uuid) -> Statement {
        match self {
            Self::Berth => statement(
                format!(
                    r#"SELECT {COLUMNS} FROM "registry_credentials" WHERE "guid" = $1 LIMIT $2"#
                ),
                vec![guid.into(), 1u64.into()],
            ),
            // registry_credentials_pkey
            Self::Best => statement(
                format!(r#"SELECT {COLUMNS} FROM "registry_credentials" WHERE "guid" = $1"#),
                vec![guid.into()],
            ),
        }
    }

    /// The first page of `per_page` of one organization's credentials matching `selector`,
    /// oldest first, as Berth's list orders it.
    pub fn list_page(self, organization: Uuid, selector: &Selector, per_page: u64) -> Statement {
        match self {
            Self::Berth => berth_list_page(organization, selector, per_page),
            Self::Best => best_list_page(organization, selector, per_page),
        }
    }

    /// How many credentials the list matches in all.
    pub fn list_count(self, organization: Uuid, selector: &Selector) -> Statement {
        match self {
            Self::Berth => {
                let (filter, values) = berth_list_filter(organization, selector);
                statement(
                    format!(
                        r#"SELECT COUNT(*) AS num_items FROM (SELECT {COLUMNS} FROM "registry_credentials" WHERE {filter}) AS "sub_query""#
                    ),
                    values,
                )
            }
            Self::Best => best_list_count(organization, selector),
        }
    }
}

/// Berth's `WHERE` of one organization's credentials matching `selector`, and its values: the
/// store's `query_condition` (label lookups narrowed to the organization).
fn berth_list_filter(organization: Uuid, selector: &Selector) -> (String, Vec<Value>) {
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

const BERTH_ORDER: &str =
    r#"ORDER BY "registry_credentials"."created_at" ASC, "registry_credentials"."guid" ASC"#;

/// The store's `fetch_page` (no selector) or `fetch_page_keys_first` (a selector).
fn berth_list_page(organization: Uuid, selector: &Selector, per_page: u64) -> Statement {
    let (filter, mut values) = berth_list_filter(organization, selector);
    values.push(per_page.into());
    values.push(0u64.into());
    let limit = values.len() - 1;
    let offset = values.len();
    let sql = if selector.is_empty() {
        format!(
            r#"SELECT {COLUMNS} FROM "registry_credentials" WHERE {filter} {BERTH_ORDER} LIMIT ${limit} OFFSET ${offset}"#
        )
    } else {
        format!(
            r#"SELECT {COLUMNS} FROM "registry_credentials" WHERE "registry_credentials"."guid" IN (SELECT "registry_credentials"."guid" FROM "registry_credentials" WHERE {filter} {BERTH_ORDER} LIMIT ${limit} OFFSET ${offset}) {BERTH_ORDER}"#
        )
    };
    statement(sql, values)
}

/// The selector as joins of label rows narrowed to the organization ($1): `l1`, `l2`, ... on
/// `idx_registry_credential_labels_organization_key_value` (organization, key, value,
/// credential), each `ON` joined to `anchor`'s credential guid.
fn best_label_joins(anchor: &str, selector: &Selector, values: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    for (index, (key, value)) in selector.iter().enumerate() {
        let alias = format!("l{}", index + 1);
        values.push(key.clone().into());
        sql.push_str(&format!(
            " JOIN registry_credential_labels {alias} ON {alias}.credential_guid = {anchor} AND {alias}.organization_guid = $1 AND {alias}.key = ${}",
            values.len()
        ));
        if let Some(value) = value {
            values.push(value.clone().into());
            sql.push_str(&format!(" AND {alias}.value = ${}", values.len()));
        }
    }
    sql
}

/// No selector: the organization's index entries in order, 50 rows read
/// (`idx_registry_credentials_organization_created_at`). A selector: the page's guids from
/// that index joined to the organization's label entries (both index-only; a credential has
/// one row per key, so the join never repeats one), then those rows by primary key.
fn best_list_page(organization: Uuid, selector: &Selector, per_page: u64) -> Statement {
    let mut values: Vec<Value> = vec![organization.into()];
    if selector.is_empty() {
        values.push(per_page.into());
        return statement(
            format!(
                "SELECT {COLUMNS} FROM registry_credentials WHERE organization_guid = $1 ORDER BY created_at, guid LIMIT $2"
            ),
            values,
        );
    }
    let joins = best_label_joins("c.guid", selector, &mut values);
    values.push(per_page.into());
    let limit = values.len();
    statement(
        format!(
            "SELECT {COLUMNS} FROM registry_credentials WHERE guid IN (SELECT c.guid FROM registry_credentials c{joins} WHERE c.organization_guid = $1 ORDER BY c.created_at, c.guid LIMIT ${limit}) ORDER BY created_at, guid"
        ),
        values,
    )
}

/// No selector: the organization's entries of `idx_registry_credentials_organization_created_at`
/// (index-only). A selector: the organization's label entries alone, joined by credential
/// (index-only on `idx_registry_credential_labels_organization_key_value`; each label row
/// carries its credential's organization, so the credentials table is not read at all).
fn best_list_count(organization: Uuid, selector: &Selector) -> Statement {
    let mut values: Vec<Value> = vec![organization.into()];
    let Some(((first_key, first_value), rest)) = selector.split_first() else {
        return statement(
            "SELECT count(*) AS num_items FROM registry_credentials WHERE organization_guid = $1"
                .to_owned(),
            values,
        );
    };
    values.push(first_key.clone().into());
    let mut first = String::from("l0.organization_guid = $1 AND l0.key = $2");
    if let Some(value) = first_value {
        values.push(value.clone().into());
        first.push_str(&format!(" AND l0.value = ${}", values.len()));
    }
    let joins = best_label_joins("l0.credential_guid", &rest.to_vec(), &mut values);
    statement(
        format!(
            "SELECT count(*) AS num_items FROM registry_credential_labels l0{joins} WHERE {first}"
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
    /// A label selector to explain the lists under, besides none; repeatable.
    #[arg(long)]
    selector: Vec<String>,
    #[arg(long)]
    guid: Uuid,
}

/// Prints `EXPLAIN (ANALYZE, BUFFERS)` of the get, and of each list's page and count, for
/// Berth's statements and for the best ones.
pub async fn explain(args: ExplainArgs) -> anyhow::Result<()> {
    let db = berth_persistence::connect(&args.database_url, &Default::default())
        .await
        .context("connecting to the benchmark database")?;
    let mut lists = vec![(String::new(), Selector::new())];
    lists.extend(args.selector.iter().map(|s| (s.clone(), parse_selector(s))));
    for set in [Statements::Berth, Statements::Best] {
        let name = match set {
            Statements::Berth => "Berth's statements",
            Statements::Best => "best statements",
        };
        let mut statements = vec![(format!("{name}: get by guid"), set.get_by_guid(args.guid))];
        if set == Statements::Berth {
            statements.extend(audit_statements(args.organization));
        }
        for (text, selector) in &lists {
            let label = if text.is_empty() {
                "organization list".to_owned()
            } else {
                format!("organization list, selector {text}")
            };
            statements.push((
                format!("{name}: {label}, page"),
                set.list_page(args.organization, selector, 50),
            ));
            statements.push((
                format!("{name}: {label}, count"),
                set.list_count(args.organization, selector),
            ));
        }
        for (title, statement) in statements {
            let explained = Statement {
                sql: format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}", statement.sql),
                ..statement
            };
            println!("-- {title}");
            for row in db.query_all_raw(explained).await? {
                println!("{}", row.try_get_by_index::<String>(0)?);
            }
            println!();
        }
    }
    Ok(())
}
