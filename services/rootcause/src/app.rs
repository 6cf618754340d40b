//! Start-up and shutdown: build the application from a [`Config`], serve until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::actions::{Actions, ActionsWorkers, Advice};
use crate::config::Config;
use crate::ingest::{Ingest, Writer};
use crate::learning::Learning;
use crate::live_topology::{LiveTopology, TopologySpec};
use crate::ranking::{Ranking, RankingWorker};
use crate::store::{Store, sqlite_directory};
use crate::{routes, telemetry};

/// How often histograms are compacted for `/metrics`.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How often the service looks for topology versions that other replicas stored.
const TOPOLOGY_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How often SQLite's write-ahead log is copied into the database file, off the ingest path.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The current topology.
    pub topology: Arc<LiveTopology>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Alert intake.
    pub ingest: Ingest,
    /// Incidents ranked as they change.
    pub ranking: Ranking,
    /// Fault history, training jobs and the model registry.
    pub learning: Learning,
    /// Runbooks, similar incidents, approvals, automation and the audit log.
    pub actions: Actions,
}

/// A built application: store open, topology loaded, listener bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    writer: Writer,
    ranker: RankingWorker,
    actions: ActionsWorkers,
}

impl Application {
    /// Opens the store (running migrations), loads the topology and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<Application> {
        // First: metrics recorded before the recorder exists are lost, and start-up already
        // records some (the rankings of the incidents restored from the store).
        let metrics = telemetry::metrics();
        let url = config.database_url();
        if let Some(directory) = sqlite_directory(url.expose())? {
            std::fs::create_dir_all(&directory).with_context(|| {
                format!(
                    "cannot create the database directory {}",
                    directory.display()
                )
            })?;
        }
        let store = Store::open(url.expose(), &config.store)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        let configured = config
            .topology
            .as_deref()
            .map(TopologySpec::parse)
            .transpose()?;
        let topology = Arc::new(LiveTopology::start(store.clone(), configured.as_ref()).await?);
        let advice = Arc::new(Advice::new(&config.actions));
        let (ranking, ranker) = Ranking::start(
            &config.ranking,
            &config.prometheus,
            store.clone(),
            topology.clone(),
            advice.clone(),
        )?;
        let learning = Learning::start(
            store.clone(),
            ranking.clone(),
            topology.clone(),
            &config.ranking,
            advice.clone(),
        )
        .await
        .context("cannot start the model registry")?;
        // Before intake starts: the notifier must see the first rankings.
        let (actions, actions_workers) =
            Actions::start(store.clone(), advice, ranking.clone(), &config.actions)
                .await
                .context("cannot start the emergency actions")?;
        let (ingest, writer) = Ingest::start(
            store.clone(),
            topology.clone(),
            config.ingest.clone(),
            config.correlation.clone(),
            ranking.clone(),
        )
        .await
        .context("cannot rebuild the correlation engine from the store")?;
        let state = AppState {
            store,
            topology,
            metrics,
            ingest,
            ranking,
            learning,
            actions,
        };
        let router = routes::router(state.clone(), &config.http);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            database = %url,
            engine = ?state.store.engine(),
            topology_version = state.topology.current().version.id,
            model = state.ranking.model(),
            "rootcause is ready"
        );
        Ok(Application {
            listener,
            router,
            state,
            writer,
            ranker,
            actions: actions_workers,
        })
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (each is bounded
    /// by the request timeout) and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let metrics = self.state.metrics.clone();
        let upkeep = tokio::spawn(async move {
            let mut interval = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
            loop {
                interval.tick().await;
                metrics.run_upkeep();
            }
        });
        let topology = self.state.topology.clone();
        let refresh = tokio::spawn(async move {
            let mut interval = tokio::time::interval(TOPOLOGY_REFRESH_INTERVAL);
            loop {
                interval.tick().await;
                if let Err(error) = topology.refresh().await {
                    tracing::warn!(%error, "cannot look for newer topology versions");
                }
            }
        });
        let store = self.state.store.clone();
        let checkpoints = tokio::spawn(async move {
            let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
            loop {
                interval.tick().await;
                if let Err(error) = store.checkpoint().await {
                    tracing::warn!(%error, "WAL checkpoint failed");
                }
            }
        });
        // Event streams never end by themselves: they are ended when shutdown begins, or the
        // server would wait for their connections forever.
        let ranking = self.state.ranking.clone();
        let shutdown = async move {
            shutdown.await;
            ranking.shut_down();
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
        upkeep.abort();
        refresh.abort();
        checkpoints.abort();
        self.state.ranking.shut_down();
        self.ranker.finish().await;
        self.actions.abort();
        // Every request is answered; with the last intake handle gone the writer commits what
        // it holds and stops, and only then does the database close.
        let store = self.state.store.clone();
        drop(self.state);
        self.writer.finish().await;
        store.close().await;
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
