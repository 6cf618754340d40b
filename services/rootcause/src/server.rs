//! The HTTP server: open the store, start the service ([`AppState::start`]), bind the listener,
//! serve until told to stop, then shut down in order ([`AppState::shut_down`]).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::routes;
use crate::state::AppState;
use crate::store::Store;
use crate::workers::Workers;

/// A built application: store open, service started, listener bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    workers: Workers,
}

impl Application {
    /// Opens the store (creating a SQLite file's directory, running migrations), starts the
    /// service and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<Application> {
        let url = config.database_url();
        let store = Store::open(url.expose(), &config.store)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        let (state, workers) = AppState::start(config, store, Clock::system()).await?;
        // The address the service listens on is a name it answers to.
        let mut http = config.http.clone();
        if config.listen.ip().is_unspecified() && !http.allowed_hosts.iter().any(|h| h == "*") {
            tracing::warn!(
                allowed_hosts = ?http.allowed_hosts,
                "listening on every address, but only requests naming one of http.allowed_hosts \
                 are answered (421 otherwise): add the names clients use (the host name, the \
                 load balancer's name)"
            );
        }
        if !config.listen.ip().is_unspecified() {
            http.allowed_hosts.push(match config.listen.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
        }
        let router = routes::router(state.clone(), &http);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            database = %url,
            engine = ?state.store.engine(),
            topology_version = state.topology.current().version.id,
            model = state.ranking.model(),
            auth = if state.auth_required { "on" } else { "off (loopback)" },
            "rootcause is ready"
        );
        Ok(Application {
            listener,
            router,
            state,
            workers,
        })
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (each is bounded
    /// by the request timeout) and shuts the service down ([`AppState::shut_down`]).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Background work stops as soon as shutdown begins: event streams never end by
        // themselves, and the server would otherwise wait for their connections forever.
        let stop = self.workers.shutdown_token();
        let shutdown = async move {
            shutdown.await;
            stop.cancel();
        };
        // Without TCP_NODELAY the tail of a large event (a ranking of hundreds of candidates)
        // waits in the kernel for the client's acknowledgement of what came before it.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
            }
        });
        let served = axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.state.shut_down(self.workers).await;
        served.context("HTTP server failed")?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
