//! The HTTP server: open the store, start the service ([`AppState::start`]), bind the listener,
//! serve until told to stop, then shut down in order ([`AppState::shut_down`]).

use std::future::Future;
use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::clock::Clock;
use crate::config::Config;
use crate::lingering::Lingering;
use crate::routes;
use crate::state::AppState;
use crate::store::{IngestLock, Store};
use crate::telemetry::names;
use crate::workers::Workers;

/// A built application: store open, service started, listener bound, not yet serving.
pub struct Application {
    /// Held until the service has stopped: this process is the database's one ingester.
    ingest_lock: IngestLock,
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
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
        let ingest_lock = store
            .claim_ingest(url.expose())
            .await
            .with_context(|| format!("cannot ingest into {url}"))?;
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
            ingest_lock,
            listener,
            router,
            limits: ConnectionLimits {
                max_connections: config.http.max_connections,
                header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs),
                drain: Duration::from_secs(config.http.request_timeout_secs),
                linger: Duration::from_millis(config.http.linger_ms),
            },
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
        serve(self.listener, self.router, &self.limits, shutdown).await;
        self.state.shut_down(self.workers).await;
        drop(self.ingest_lock);
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// What one client may hold of the server.
struct ConnectionLimits {
    /// Connections open at once; more are closed as they arrive.
    max_connections: usize,
    /// Time a connection has to send a request's headers (slow-loris).
    header_read_timeout: Duration,
    /// Longest wait for requests in flight at shutdown.
    drain: Duration,
    /// Longest a closing connection reads what its client still sends (see [`Lingering`]).
    linger: Duration,
}

/// The accept loop: axum's `serve` with what it lacks, a cap on open connections (each holds a
/// file descriptor and buffers) and a deadline for a request's headers, so that clients that
/// open connections and trickle or never send headers cannot starve the others. Stops accepting
/// when `shutdown` completes and lets open connections finish (at most `drain`).
async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // HTTP/1.1 only: what Alertmanager, Prometheus, OTLP/HTTP exporters and browsers without
    // TLS speak. Detecting HTTP/2 would first wait for bytes with no deadline at all.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, client) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!(names::REJECTED, "limit" => "http.max_connections").increment(1);
            drop(tcp);
            continue;
        };
        // Without TCP_NODELAY the tail of a large event (a ranking of hundreds of candidates)
        // waits in the kernel for the client's acknowledgement of what came before it.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
        let router = router.clone();
        let service = service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(client));
            router.clone().oneshot(request.map(Body::new))
        });
        let tcp = Lingering::new(tcp, limits.linger);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {:?}; closing them",
            limits.drain
        );
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
