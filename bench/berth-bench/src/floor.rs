//! `floor`: the least an actix-web service over the same pool can do, per route. Berth's
//! figures are read against these, measured in the same run by the same load generator. Two
//! floors run side by side: one on the statements Berth's store issues, one on the best
//! statements for the same answer (`--statements`, see `queries.rs`).
//!
//! - `GET /static`: a static JSON body the size of one credential resource;
//! - `GET /v3/registry_credentials/{guid}`: one primary-key `SELECT`;
//! - `POST /v3/registry_credentials`: one `INSERT` of a credential row;
//! - `GET /v3/registry_credentials?organization_guids=..&label_selector=..&per_page=..`: the
//!   page query and its count (counted only when the page is full, as Berth's store does);
//! - `POST /v3/registry_credentials/actions/resolve`: the pull lookup's one statement, exactly
//!   as Berth's store builds it (`berth_persistence::pull_statement`), built once per distinct
//!   body and then only run: no body decoding, no candidates, no seals opened, no answer built.
//!
//! No authentication, no permission rules, no sealing, no validation: that is Berth's work,
//! and what the ratios show the price of.

use std::cell::RefCell;
use std::collections::HashMap;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use berth_persistence::{PoolSettings, WorkerPools};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};
use uuid::Uuid;

use crate::queries::{self, Statements};

#[derive(Debug, clap::Args)]
pub struct FloorArgs {
    #[arg(long, env = "BERTH_DATABASE__URL")]
    database_url: String,
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Server workers (default: one per core, as Berth).
    #[arg(long)]
    workers: Option<usize>,
    /// Berth's statements, or the best ones for the same answers.
    #[arg(long, value_enum, default_value = "berth")]
    statements: Statements,
}

/// A credential resource's worth of JSON (590 bytes), as `dependencies.md` section 10 measured.
const STATIC_BODY: &str = r#"{"guid":"0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","created_at":"2026-11-24T10:00:00Z","updated_at":"2026-11-24T10:00:00Z","scope":"space","location":"registry.example.com/team","username":"robot","relationships":{"space":{"data":{"guid":"6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"}}},"metadata":{"labels":{"env":"prod","team":"team-07"},"annotations":{}},"links":{"self":{"href":"http://127.0.0.1:8080/v3/registry_credentials/0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},"space":{"href":"http://127.0.0.1:8080/v3/spaces/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"}},"padding":"................................"}"#;

pub fn run(args: FloorArgs) -> anyhow::Result<()> {
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    actix_web::rt::System::new().block_on(async move {
        // Berth's own pool settings and per-worker pools: the floor differs from Berth only in
        // what the handlers do.
        let settings = PoolSettings::default();
        let shared = berth_persistence::connect(&args.database_url, &settings)
            .await
            .context("connecting to the benchmark database")?;
        let pools = WorkerPools::new(shared, &args.database_url, &settings, workers);
        let statements = args.statements;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(pools.open()))
                .app_data(web::Data::new(statements))
                .route("/static", web::get().to(static_body))
                .route("/v3/registry_credentials/{guid}", web::get().to(select_one))
                .route("/v3/registry_credentials", web::post().to(insert_one))
                .route("/v3/registry_credentials", web::get().to(list_page))
                .route(
                    "/v3/registry_credentials/actions/resolve",
                    web::post().to(pull_lookup),
                )
                .app_data(web::Data::new(PullStatements::default()))
        })
        .workers(workers)
        .bind(&args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
        println!(
            "floor ({:?} statements) listening on {}",
            args.statements, args.listen
        );
        server.run().await.context("serving")
    })
}

async fn static_body() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(STATIC_BODY)
}

fn row_json(row: &QueryResult) -> Result<serde_json::Value, sea_orm::DbErr> {
    Ok(serde_json::json!({
        "guid": row.try_get::<Uuid>("", "guid")?,
        "scope": row.try_get::<String>("", "scope")?,
        "organization_guid": row.try_get::<Option<Uuid>>("", "organization_guid")?,
        "space_guid": row.try_get::<Option<Uuid>>("", "space_guid")?,
        "app_guid": row.try_get::<Option<Uuid>>("", "app_guid")?,
        "location": row.try_get::<String>("", "location")?,
        "username": row.try_get::<String>("", "username")?,
        "labels": row.try_get::<String>("", "labels")?,
        "annotations": row.try_get::<String>("", "annotations")?,
        "created_at": row.try_get::<time::OffsetDateTime>("", "created_at")?.unix_timestamp(),
        "updated_at": row.try_get::<time::OffsetDateTime>("", "updated_at")?.unix_timestamp(),
    }))
}

fn failed(error: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::InternalServerError().body(error.to_string())
}

async fn select_one(
    db: web::Data<DatabaseConnection>,
    statements: web::Data<Statements>,
    guid: web::Path<Uuid>,
) -> HttpResponse {
    match db.query_one_raw(statements.get_by_guid(*guid)).await {
        Ok(Some(row)) => match row_json(&row) {
            Ok(json) => HttpResponse::Ok().json(json),
            Err(error) => failed(error),
        },
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(error) => failed(error),
    }
}

/// Takes the location and the organization from the same body Berth is sent.
async fn insert_one(
    db: web::Data<DatabaseConnection>,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    let location = body["location"].as_str().unwrap_or("registry.example.com");
    let Some(organization) = body["relationships"]["organization"]["data"]["guid"]
        .as_str()
        .and_then(|text| Uuid::parse_str(text).ok())
    else {
        return HttpResponse::BadRequest().finish();
    };
    let guid = Uuid::now_v7();
    let now = time::OffsetDateTime::now_utc();
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        r#"INSERT INTO "registry_credentials" ("guid", "scope", "scope_key", "organization_guid", "space_guid", "app_guid", "location", "username", "password_ciphertext", "password_key_label", "labels", "annotations", "created_at", "updated_at", "revision") VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#,
        [
            guid.into(),
            "organization".into(),
            format!("organization:{organization}").into(),
            organization.into(),
            location.into(),
            "robot".into(),
            vec![0u8; 44].into(),
            "floor".into(),
            "{}".into(),
            "{}".into(),
            now.into(),
            now.into(),
            0i64.into(),
        ],
    );
    match db.execute_raw(statement).await {
        Ok(_) => HttpResponse::Created().json(serde_json::json!({ "guid": guid })),
        Err(error) => failed(error),
    }
}

async fn list_page(
    db: web::Data<DatabaseConnection>,
    statements: web::Data<Statements>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(organization) = query
        .get("organization_guids")
        .and_then(|text| Uuid::parse_str(text).ok())
    else {
        return HttpResponse::BadRequest().finish();
    };
    let selector = queries::parse_selector(query.get("label_selector").map_or("", String::as_str));
    let per_page = query
        .get("per_page")
        .and_then(|text| text.parse().ok())
        .unwrap_or(50);
    let rows = match db
        .query_all_raw(statements.list_page(organization, &selector, per_page))
        .await
    {
        Ok(rows) => rows,
        Err(error) => return failed(error),
    };
    let count = if (rows.len() as u64) < per_page {
        Ok(rows.len() as i64)
    } else {
        db.query_one_raw(statements.list_count(organization, &selector))
            .await
            .and_then(|row| row.map_or(Ok(0), |row| row.try_get::<i64>("", "num_items")))
    };
    let count = match count {
        Ok(count) => count,
        Err(error) => return failed(error),
    };
    let resources: Result<Vec<_>, _> = rows.iter().map(row_json).collect();
    match resources {
        Ok(resources) => HttpResponse::Ok().json(serde_json::json!({
            "pagination": { "total_results": count },
            "resources": resources,
        })),
        Err(error) => failed(error),
    }
}

/// The pull lookup's statement of each body seen, per worker.
#[derive(Default)]
struct PullStatements(RefCell<HashMap<web::Bytes, Statement>>);

/// The statement Berth's store runs for a resolve body (`images` and an app).
fn pull_lookup_statement(backend: DbBackend, body: &[u8]) -> anyhow::Result<Statement> {
    use berth_domain::credential::RequestedOwner;
    use berth_domain::ids::AppGuid;
    use berth_domain::image_reference::ImageReference;
    use berth_domain::pull_secrets::{PullRequest, PullSubject};

    let body: serde_json::Value = serde_json::from_slice(body)?;
    let app = body["relationships"]["app"]["data"]["guid"]
        .as_str()
        .context("the floor resolves an app's images only")?;
    let subjects = body["images"]
        .as_array()
        .context("no images")?
        .iter()
        .map(|image| {
            let text = image.as_str().context("an image that is not a string")?;
            Ok(PullSubject::Image(ImageReference::parse(text)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let owner = RequestedOwner::App(AppGuid::parse(app)?);
    let query = PullRequest::new(owner, subjects)?.into_query();
    Ok(berth_persistence::pull_statement(backend, &query))
}

async fn pull_lookup(
    db: web::Data<DatabaseConnection>,
    statements: web::Data<PullStatements>,
    body: web::Bytes,
) -> HttpResponse {
    let cached = statements.0.borrow().get(&body).cloned();
    let statement = match cached {
        Some(statement) => statement,
        None => match pull_lookup_statement(db.get_database_backend(), &body) {
            Ok(statement) => {
                statements.0.borrow_mut().insert(body, statement.clone());
                statement
            }
            Err(error) => return HttpResponse::BadRequest().body(error.to_string()),
        },
    };
    match db.query_all_raw(statement).await {
        Ok(rows) => {
            let found: Result<Vec<_>, sea_orm::DbErr> = rows
                .iter()
                .map(|row| {
                    Ok(serde_json::json!({
                        "guid": row.try_get_by_index::<Option<Uuid>>(2)?,
                        "scope": row.try_get_by_index::<Option<String>>(3)?,
                        "location": row.try_get_by_index::<Option<String>>(4)?,
                        "username": row.try_get_by_index::<Option<String>>(5)?,
                    }))
                })
                .collect();
            match found {
                Ok(found) => HttpResponse::Ok().json(serde_json::json!({ "matches": found })),
                Err(error) => failed(error),
            }
        }
        Err(error) => failed(error),
    }
}
