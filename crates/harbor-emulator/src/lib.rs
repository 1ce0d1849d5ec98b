#![doc = include_str!("../README.md")]

mod faults;
mod handlers;
mod repositories;
mod state;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

pub use faults::{DropRule, FailRule, Faults};
pub use state::{ProjectView, QuotaView, RobotView, StateView};

/// How the emulated Harbor is set up.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub admin_username: String,
    pub admin_password: String,
    /// Harbor's `robot_name_prefix` (default `robot$`).
    pub robot_prefix: String,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            admin_username: "admin".into(),
            admin_password: "Harbor12345".into(),
            robot_prefix: "robot$".into(),
        }
    }
}

pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) state: Mutex<state::State>,
    pub(crate) faults: Mutex<faults::FaultState>,
}

/// A running emulator: its base URL and a handle to inspect and steer it.
pub struct RunningEmulator {
    url: String,
    port: u16,
    handle: ServerHandle,
    shared: Arc<Shared>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:<port>`, without `/api/v2.0`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Projects, quotas and robots as they are now (no secrets).
    pub fn state(&self) -> StateView {
        state::view(&lock(&self.shared.state))
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared.faults).set(faults);
    }

    /// Adds `count` repositories (named `team/app-<n>`) to a project, so deleting it answers
    /// 412 until they are deleted.
    pub fn add_repositories(&self, project: &str, count: u32) -> bool {
        lock(&self.shared.state).add_repositories(project, count)
    }

    /// Sets the used storage of a project, in bytes.
    pub fn set_usage(&self, project: &str, bytes: i64) -> bool {
        lock(&self.shared.state).set_usage(project, bytes)
    }

    /// Creates a project as another Harbor user would, outside Berth.
    pub fn create_foreign_project(&self, name: &str) -> i64 {
        lock(&self.shared.state).create_project(name, "someone-else", -1, Default::default())
    }

    /// Stops serving.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data here: keep serving.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Binds `listen` (use port 0 for any) and returns the running emulator and its server future,
/// which the caller spawns or awaits.
///
/// # Errors
/// When the address cannot be bound.
pub fn start(config: EmulatorConfig, listen: &str) -> std::io::Result<(RunningEmulator, Server)> {
    let listener = TcpListener::bind(listen)?;
    let port = listener.local_addr()?.port();
    let shared = Arc::new(Shared {
        config,
        state: Mutex::new(state::State::default()),
        faults: Mutex::new(faults::FaultState::default()),
    });
    let data = web::Data::from(shared.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().error_handler(handlers::json_error))
            .app_data(web::QueryConfig::default().error_handler(handlers::query_error))
            .wrap(actix_web::middleware::from_fn(handlers::request_id))
            .configure(handlers::configure)
    })
    .workers(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let host = listen
        .rsplit_once(':')
        .map_or("127.0.0.1", |(host, _)| host);
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    Ok((
        RunningEmulator {
            url: format!("http://{host}:{port}"),
            port,
            handle,
            shared,
        },
        server,
    ))
}
