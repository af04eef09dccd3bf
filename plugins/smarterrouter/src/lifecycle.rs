//! How the router's services start and stop inside a Pingora `Server`.
//!
//! Start: nothing runs before the daemon fork (a fork keeps only the calling thread), so every
//! thread and task lives in a Pingora service. The proxy starts accepting only once the
//! listening sockets are in hand (Pingora's bootstrap, which takes them over from the old
//! process during an upgrade), discovery has asked every node once, and the store is open with
//! profiles and feedback loaded (or 10 s have passed; 3 s for a slow node): a request does not
//! meet a router that does not know its models yet.
//!
//! Stop: on SIGTERM or SIGQUIT the router starts draining (responses close their connection, so
//! keep-alive clients reconnect to the next process; Pingora keeps in-flight requests and
//! streams running through `grace_period_seconds`). On SIGQUIT the store service also releases
//! the store for the new process. After `Server::run` returns, [`finish`] writes what is still
//! queued and flushes the store.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ExecutionPhase, Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService, GenBackgroundService};
use pingora::services::listening::Service;
use pingora::services::ServiceHandle;
use tokio::sync::broadcast;

use crate::RouterState;

/// Called once when the process is ready (a daemon's parent then returns).
pub type ReadyHook = Box<dyn FnOnce() + Send + Sync>;

/// Adds the router's services to `server`: proxy, admin (unless disabled), discovery, store,
/// profiler and the drain watcher. The listening services wait for `bootstrap` (the handle of
/// `Server::bootstrap_as_a_service`), if given. `ready` runs when the proxy is about to accept
/// or, in an upgrade (`upgrade`), just before bootstrap waits for the old process's sockets
/// (which the old process sends only when told to, after the new one is ready).
pub fn add_services(
    server: &mut Server,
    state: &Arc<RouterState>,
    bootstrap: Option<&ServiceHandle>,
    upgrade: bool,
    ready: Option<ReadyHook>,
) {
    state
        .store_service
        .watch_phases(server.watch_execution_phase());

    let store = server.add_service(GenBackgroundService::new(
        "smarterrouter store".to_string(),
        Arc::clone(&state.store_service),
    ));
    let discovery = server.add_service(background_service(
        "smarterrouter discovery",
        crate::upstream::discovery::Discovery {
            registry: Arc::clone(&state.registry),
            client: state.node_client.clone(),
            interval: Duration::from_secs(state.config.discovery.interval_secs),
        },
    ));

    server.add_service(background_service(
        "smarterrouter vram",
        crate::vram::service::VramService {
            monitor: Arc::clone(&state.vram),
            registry: Arc::clone(&state.registry),
            client: state.node_client.clone(),
            store: state.store_tx.clone(),
            pinned: state.config.routing.pinned_model.clone(),
            cluster: state.cluster.clone(),
        },
    ));

    if let Some(cluster) = &state.cluster {
        server.add_service(background_service(
            "smarterrouter cluster",
            crate::cluster::ClusterService(Arc::clone(cluster)),
        ));
    }

    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        crate::proxy::Router {
            state: Arc::clone(state),
        },
        "smarterrouter proxy",
    );
    proxy.add_tcp(&listen_address(&state.config.host, state.config.port));
    let proxy = server.add_service(proxy);
    proxy.add_dependencies([&discovery, &store]);
    proxy.add_dependencies(bootstrap);

    let admin_listen = Some(state.config.admin.listen.clone()).filter(|l| !l.is_empty());
    let admin = admin_listen.as_ref().map(|listen| {
        let mut admin = Service::new(
            "smarterrouter admin".to_string(),
            crate::admin::AdminApp {
                state: Arc::clone(state),
            },
        );
        admin.add_tcp(listen);
        let admin = server.add_service(admin);
        admin.add_dependencies(bootstrap);
        admin
    });

    if let Some(hook) = ready {
        // In an upgrade the old process sends its sockets only after it is told to (SIGQUIT,
        // once we are ready), so readiness comes before bootstrap; otherwise once we listen.
        let in_upgrade = upgrade && bootstrap.is_some();
        let mut listening = vec![listen_address(&state.config.host, state.config.port)];
        listening.extend(admin_listen.clone());
        let notifier = server.add_service(background_service(
            "smarterrouter ready",
            Ready {
                hook: std::sync::Mutex::new(Some(hook)),
                listening: if in_upgrade { Vec::new() } else { listening },
            },
        ));
        match bootstrap.filter(|_| in_upgrade) {
            Some(bootstrap) => bootstrap.add_dependency(&notifier),
            None => {
                notifier.add_dependency(&proxy);
                notifier.add_dependencies(admin.as_ref());
            }
        }
    }

    let profiler = server.add_service(background_service(
        "smarterrouter profiler",
        crate::profile::jobs::Profiler {
            registry: Arc::clone(&state.registry),
            client: state.node_client.clone(),
            store: Arc::clone(&state.store),
            store_tx: state.store_tx.clone(),
            profiles: Arc::clone(&state.profiles),
            jobs: Arc::clone(&state.jobs),
            config: state.config.profiling.clone(),
            interval: Duration::from_secs(state.config.discovery.interval_secs.max(5)),
            cluster: state.cluster.clone(),
        },
    ));
    profiler.add_dependencies([&discovery, &store]);

    server.add_service(background_service(
        "smarterrouter drain",
        Drain {
            state: Arc::clone(state),
            phases: std::sync::Mutex::new(Some(server.watch_execution_phase())),
        },
    ));
}

/// Call after `Server::run` has returned: writes what the store service had not written yet and
/// flushes the store (or the last handover file).
pub fn finish(state: &RouterState) {
    state.store_service.finish();
}

/// Runs the ready hook once the listening addresses accept connections (Pingora binds inside
/// the service tasks; a failed bind leaves the process running without a listener, so a daemon
/// that cannot listen stops instead of reporting success).
struct Ready {
    hook: std::sync::Mutex<Option<ReadyHook>>,
    listening: Vec<String>,
}

/// How long the listeners have to come up.
const LISTEN_WITHIN: Duration = Duration::from_secs(10);

#[async_trait]
impl BackgroundService for Ready {
    async fn start(&self, _shutdown: ShutdownWatch) {
        for address in &self.listening {
            let target = address
                .replace("0.0.0.0:", "127.0.0.1:")
                .replace("[::]:", "[::1]:");
            let deadline = tokio::time::Instant::now() + LISTEN_WITHIN;
            while tokio::net::TcpStream::connect(&target).await.is_err() {
                if tokio::time::Instant::now() >= deadline {
                    tracing::error!(address = %address, "not listening after {LISTEN_WITHIN:?} (see the error above); stopping");
                    std::process::exit(1);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(hook) = self.hook.lock().ok().and_then(|mut h| h.take()) {
            hook();
        }
    }
}

/// Sets [`RouterState::draining`] as soon as the process starts to stop or to be replaced.
struct Drain {
    state: Arc<RouterState>,
    phases: std::sync::Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
}

#[async_trait]
impl BackgroundService for Drain {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut phases) = self.phases.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        loop {
            let phase = tokio::select! {
                phase = phases.recv() => phase,
                // The broadcast also reaches services directly; cover phases we did not see.
                _ = shutdown.changed() => Ok(ExecutionPhase::ShutdownStarted),
            };
            match phase {
                Ok(
                    ExecutionPhase::GracefulUpgradeTransferringFds
                    | ExecutionPhase::GracefulUpgradeCloseTimeout
                    | ExecutionPhase::GracefulTerminate
                    | ExecutionPhase::ShutdownStarted,
                ) => {
                    if !self.state.draining.swap(true, Ordering::AcqRel) {
                        tracing::info!("draining: responses now close their connections");
                    }
                    return;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// `host:port` as Pingora and `TcpListener::bind` take it (IPv6 in brackets).
pub fn listen_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
