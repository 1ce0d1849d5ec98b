//! The application: adapters built and wired into the services, the listeners bound.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, web};
use anyhow::Context;
use berth_auth::{Authenticator, TokenVerifier};
use berth_domain::ambient::Ambient;
use berth_domain::audit::{AccessLog, AuditService};
use berth_domain::credential_service::CredentialService;
use berth_domain::directory_service::DirectoryService;
use berth_domain::idempotency::IdempotencyService;
use berth_domain::ports::{RegistryProvisioner, RegistryVerifier};
use berth_domain::pull_secret_service::PullSecretService;
use berth_domain::registry_service::{RegistryService, RegistrySettings};
use berth_domain::role_service::RoleService;
use berth_domain::verification_service::VerificationService;
use berth_http::health::Readiness;
use berth_http::ops::OpsProbe;
use berth_http::state::AppState;
use berth_http::v3;
use berth_http::v3::presenters::Links;
use berth_persistence::sealing::KeyRing;
use berth_persistence::{
    Deadline, PermissionCache, SeaOrmAuditStore, SeaOrmCredentialStore, SeaOrmDirectoryStore,
    SeaOrmIdempotencyStore, SeaOrmRegistryStore, WorkerPools,
};
use tracing_actix_web::TracingLogger;

use super::access_log::AccessLogWriter;
use super::harbor::{self, ChosenHarbor, EmbeddedHarbor};
use super::ops_probe::DatabaseProbe;
use super::runtime::Runtime;
use super::{database, pruner, reconciler, request_id, verification};

/// A running Berth: its port and the server future (and the metrics server's, when
/// `metrics.listen` gives the metrics their own address).
pub struct Application {
    port: u16,
    server: Server,
    metrics: Option<(u16, Server)>,
    embedded_harbor: Option<EmbeddedHarbor>,
    access_writer: AccessLogWriter,
}

impl Application {
    /// Connects the database (migrating in dev mode), checks the key ring against it, builds the
    /// adapters and services, and binds the listener.
    ///
    /// # Errors
    /// Anything that must stop Berth from serving: an unreachable database, pending migrations
    /// in production, a key label in use that the ring lacks, a bad token verifier, a busy port.
    pub async fn build(runtime: Runtime) -> anyhow::Result<Self> {
        let db = database::prepare(&runtime).await?;
        let verifier = TokenVerifier::new(runtime.auth)
            .await
            .context("token verifier (auth.*)")?;
        let ChosenHarbor {
            provisioner,
            embedded: embedded_harbor,
        } = harbor::provisioner(runtime.harbor)?;
        let registry_verifier =
            verification::verifier(runtime.verification_policy, runtime.verification_deadline)?;
        let workers = runtime.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            |workers| workers.max(1),
        );
        let pools = WorkerPools::new(db.clone(), &runtime.database_url, &runtime.pool, workers);
        let ops: Arc<dyn OpsProbe> = Arc::new(DatabaseProbe::new(
            db.clone(),
            runtime.keys.clone(),
            pools.clone(),
        ));
        let readiness = Readiness {
            ops: ops.clone(),
            harbor: provisioner.clone(),
        };
        let call_deadline = runtime.pool.call_deadline();
        // The one clock and id source every service runs on.
        let ambient = Ambient::system();
        // One per process: a role written through any store clears it for all.
        let permission_cache = Arc::new(PermissionCache::new(runtime.permission_cache_ttl));
        // The reconciler works on the shared pool; requests on their worker's own pool.
        if let Some(provisioner) = provisioner.clone() {
            let registries = RegistryService::new(
                Arc::new(Deadline::new(
                    SeaOrmRegistryStore::new(db.clone(), runtime.keys.clone()),
                    call_deadline,
                )),
                Arc::new(Deadline::new(
                    SeaOrmDirectoryStore::new(db.clone())
                        .with_permission_cache(permission_cache.clone()),
                    call_deadline,
                )),
                provisioner,
                runtime.registry,
            )
            .with_ambient(ambient.clone());
            tokio::spawn(reconciler::reconcile_forever(
                registries,
                runtime.reconcile_interval,
            ));
        }
        tokio::spawn(pruner::prune_forever(
            pruner::Pruned {
                idempotency: IdempotencyService::new(Arc::new(Deadline::new(
                    SeaOrmIdempotencyStore::new(db.clone(), runtime.keys.clone()),
                    call_deadline,
                )))
                .with_ambient(ambient.clone()),
                audit: AuditService::new(
                    Arc::new(Deadline::new(
                        SeaOrmAuditStore::new(db.clone()),
                        call_deadline,
                    )),
                    Arc::new(Deadline::new(
                        SeaOrmDirectoryStore::new(db.clone())
                            .with_permission_cache(permission_cache.clone()),
                        call_deadline,
                    )),
                )
                .with_ambient(ambient.clone()),
                audit_retention_days: runtime.audit_retention_days,
            },
            pruner::PRUNE_INTERVAL,
        ));
        // One writer per process, on the shared pool: its batches are not any worker's.
        let (access_log, access_writer) = AccessLogWriter::start(SeaOrmAuditStore::new(db.clone()));
        let parts = SharedParts {
            ambient,
            pools,
            call_deadline,
            keys: runtime.keys,
            provisioner,
            verifier: registry_verifier,
            registry: runtime.registry,
            links: Links::new(&runtime.external_url),
            authenticator: Arc::new(Authenticator::with_rules(verifier, runtime.claim_rules)),
            readiness,
            access_log: Arc::new(access_log),
            permission_cache,
        };
        berth_http::prometheus::handle();
        let listener = TcpListener::bind(&runtime.listen).with_context(|| {
            format!("cannot listen on {} (listen, BERTH_LISTEN)", runtime.listen)
        })?;
        let port = listener.local_addr()?.port();
        let metrics = match &runtime.metrics_listen {
            Some(listen) => Some(metrics_server(
                listen,
                ops.clone(),
                runtime.shutdown_timeout,
            )?),
            None => None,
        };
        let public_metrics = metrics.is_none();
        let server = actix_web::HttpServer::new(move || {
            let state = web::Data::new(parts.worker_state());
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    berth_http::one_time_secrets::one_time_secrets,
                ))
                .wrap(actix_web::middleware::from_fn(
                    berth_http::head::head_as_get,
                ))
                .wrap(actix_web::middleware::from_fn(
                    berth_http::prometheus::record_requests,
                ))
                .wrap(actix_web::middleware::from_fn(request_id::request_id))
                .wrap(TracingLogger::<crate::telemetry::BerthRootSpan>::new())
                .app_data(state.clone())
                .app_data(web::Data::from(ops.clone()))
                .configure(|config| {
                    if public_metrics {
                        berth_http::prometheus::route(config);
                    }
                })
                .configure(berth_http::routes::configure)
        })
        .workers(workers)
        .shutdown_timeout(runtime.shutdown_timeout.as_secs())
        .listen(listener)?;
        Ok(Self {
            port,
            server: server.run(),
            metrics,
            embedded_harbor,
            access_writer,
        })
    }

    /// The in-process Harbor emulator of dev mode, if this Berth runs one.
    pub fn embedded_harbor(&self) -> Option<&EmbeddedHarbor> {
        self.embedded_harbor.as_ref()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics server, when `metrics.listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until the server is stopped (SIGINT or SIGTERM; both servers hear it).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = match self.metrics {
            Some((_, metrics)) => tokio::try_join!(self.server, metrics).map(|_| ()),
            None => self.server.await,
        };
        // The requests are done: write the access events they queued.
        self.access_writer.shut_down().await;
        served
    }
}

/// `/metrics` alone on its own address, so operators can keep it off the public port.
fn metrics_server(
    listen: &str,
    ops: Arc<dyn OpsProbe>,
    shutdown_timeout: Duration,
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(listen).with_context(|| {
        format!("cannot listen on {listen} (metrics.listen, BERTH_METRICS__LISTEN)")
    })?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                berth_http::head::head_as_get,
            ))
            .app_data(web::Data::from(ops.clone()))
            .configure(berth_http::prometheus::route)
            .default_service(web::to(v3::unknown_request))
    })
    .workers(1)
    .shutdown_timeout(shutdown_timeout.as_secs())
    .listen(listener)?;
    Ok((port, server.run()))
}

/// What every server worker shares; each builds its own [`AppState`] from it.
#[derive(Clone)]
struct SharedParts {
    ambient: Ambient,
    pools: WorkerPools,
    /// Bounds every store call (`PoolSettings::call_deadline`).
    call_deadline: Option<Duration>,
    keys: Arc<KeyRing>,
    provisioner: Option<Arc<dyn RegistryProvisioner>>,
    verifier: Arc<dyn RegistryVerifier>,
    registry: RegistrySettings,
    links: Links,
    authenticator: Arc<Authenticator>,
    readiness: Readiness,
    access_log: Arc<dyn AccessLog>,
    /// The permission lookup's answers (`auth.permission_cache_ms`), shared by every worker.
    permission_cache: Arc<PermissionCache>,
}

impl SharedParts {
    /// The stores on this worker's own pool and the services on them. Runs on the worker's
    /// thread (actix-web calls the app factory there), so the pool's connections live there.
    fn worker_state(&self) -> AppState {
        let db = self.pools.open();
        let deadline = self.call_deadline;
        let directory_store = Arc::new(Deadline::new(
            SeaOrmDirectoryStore::new(db.clone())
                .with_permission_cache(self.permission_cache.clone()),
            deadline,
        ));
        let credential_store = Arc::new(Deadline::new(
            SeaOrmCredentialStore::new(db.clone(), self.keys.clone()),
            deadline,
        ));
        let registries = self.provisioner.clone().map(|provisioner| {
            RegistryService::new(
                Arc::new(Deadline::new(
                    SeaOrmRegistryStore::new(db.clone(), self.keys.clone()),
                    deadline,
                )),
                directory_store.clone(),
                provisioner,
                self.registry,
            )
            .with_ambient(self.ambient.clone())
        });
        let idempotency = IdempotencyService::new(Arc::new(Deadline::new(
            SeaOrmIdempotencyStore::new(db.clone(), self.keys.clone()),
            deadline,
        )))
        .with_ambient(self.ambient.clone());
        let audit = AuditService::new(
            Arc::new(Deadline::new(SeaOrmAuditStore::new(db.clone()), deadline)),
            directory_store.clone(),
        )
        .with_ambient(self.ambient.clone());
        AppState {
            idempotency,
            audit,
            verification: VerificationService::new(
                credential_store.clone(),
                directory_store.clone(),
                self.verifier.clone(),
            )
            .with_ambient(self.ambient.clone()),
            credentials: CredentialService::new(credential_store.clone(), directory_store.clone())
                .with_ambient(self.ambient.clone()),
            pull_secrets: PullSecretService::new(
                credential_store,
                directory_store.clone(),
                self.access_log.clone(),
            )
            .with_ambient(self.ambient.clone()),
            roles: RoleService::new(directory_store.clone()).with_ambient(self.ambient.clone()),
            directory: DirectoryService::new(directory_store).with_ambient(self.ambient.clone()),
            registries,
            links: self.links.clone(),
            authenticator: self.authenticator.clone(),
            readiness: self.readiness.clone(),
        }
    }
}
