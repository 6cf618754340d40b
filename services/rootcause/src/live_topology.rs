//! The topology the service works with: the newest stored version, held in memory for lock-free
//! reads and replaced atomically when a change is stored.
//!
//! Every change is validated by the topology crate, stored as a new version whose parent is the
//! version it was made from, and only then made current. Writers in this process queue on a
//! mutex; writers in other processes (replicas on one PostgreSQL) are stopped by the store's
//! one-child-per-version rule, after which the change is retried on the newer version.
//! [`LiveTopology::refresh`] picks up versions other replicas stored; the service calls it
//! every few seconds. Graph work that grows with the topology (copying, checking, hashing,
//! parsing) runs on the blocking thread pool, never on the async workers.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, TimeZone, Utc};
use rootcause_topology::bundled::{self, Example};
use rootcause_topology::risks::StructuralRisk;
use rootcause_topology::{Canonical, Format, SinglePointOfFailure, Topology, TopologyError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::store::{NewTopologyVersion, Store, StoreError, StoredTopology, TopologyVersionRow};
use crate::telemetry::names;

/// How many times a change is retried when another replica stored a version first.
const CONFLICT_RETRIES: usize = 3;

/// What is known about a stored topology version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TopologyVersion {
    /// Version id: increasing, never reused.
    pub id: i64,
    /// The version this one replaced; absent for the first.
    pub parent_id: Option<i64>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// Who or what made it: `api`, `file:PATH`, `builtin:NAME`.
    pub source: String,
    /// Free text given with the change.
    pub note: String,
    /// SHA-256 of the canonical document: equal graphs have equal digests.
    pub digest: String,
    /// Number of services.
    pub services: usize,
    /// Number of dependencies.
    pub dependencies: usize,
}

impl From<TopologyVersionRow> for TopologyVersion {
    fn from(row: TopologyVersionRow) -> Self {
        TopologyVersion {
            id: row.id,
            parent_id: row.parent_id,
            created_at: Utc
                .timestamp_millis_opt(row.created_at_ms)
                .single()
                .unwrap_or_default(),
            source: row.source,
            note: row.note,
            digest: row.digest,
            services: usize::try_from(row.service_count).unwrap_or_default(),
            dependencies: usize::try_from(row.dependency_count).unwrap_or_default(),
        }
    }
}

/// A version and its graph.
#[derive(Debug)]
pub struct Current {
    /// The stored version.
    pub version: TopologyVersion,
    /// The graph, shared with whatever works on this version (ranking jobs, training) rather
    /// than copied: a 10,000-service graph is several megabytes.
    pub topology: Arc<Topology>,
    single_points_of_failure: OnceLock<Vec<SinglePointOfFailure>>,
    structural_risks: OnceLock<Vec<StructuralRisk>>,
}

impl Current {
    fn new(version: TopologyVersion, topology: Topology) -> Current {
        Current {
            version,
            topology: Arc::new(topology),
            single_points_of_failure: OnceLock::new(),
            structural_risks: OnceLock::new(),
        }
    }

    /// A stored version, parsed. CPU-bound on large topologies: call it off the async workers.
    pub fn from_stored(stored: StoredTopology) -> anyhow::Result<Current> {
        let id = stored.version.id;
        let topology = Topology::parse(&stored.document, Format::Json)
            .with_context(|| format!("stored topology version {id} is unreadable"))?;
        Ok(Current::new(stored.version.into(), topology))
    }

    /// Single points of failure of this version, computed once on first use. CPU-bound on
    /// large topologies: call it off the async workers.
    pub fn single_points_of_failure(&self) -> &[SinglePointOfFailure] {
        self.single_points_of_failure
            .get_or_init(|| self.topology.single_points_of_failure())
    }

    /// Structural risks of this version, highest first, computed once on first use. CPU-bound
    /// on large topologies (a blast radius per service): call it off the async workers.
    pub fn structural_risks(&self) -> &[StructuralRisk] {
        self.structural_risks.get_or_init(|| {
            self.topology
                .structural_risks(self.single_points_of_failure())
        })
    }
}

/// The result of a change that was accepted.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A new version was stored and is now current.
    Stored {
        /// The version the change was made from.
        previous: Arc<Current>,
        /// The new current version.
        current: Arc<Current>,
    },
    /// The change left the graph as it was; no version was stored.
    Unchanged(Arc<Current>),
}

impl Outcome {
    /// The version current after the change.
    pub fn current(&self) -> &Arc<Current> {
        match self {
            Outcome::Stored { current, .. } | Outcome::Unchanged(current) => current,
        }
    }
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change breaks a graph rule (or names a service that does not exist).
    #[error(transparent)]
    Invalid(#[from] TopologyError),
    /// The caller based the change on a version that is no longer current.
    #[error(
        "the change was made from topology version {expected}, but the current version is {current}"
    )]
    VersionMismatch {
        /// The version the caller expected.
        expected: i64,
        /// The current version.
        current: i64,
    },
    /// The store failed, or kept losing races with other replicas.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen: an unreadable stored version, a crashed worker.
    #[error("{0}")]
    Internal(String),
}

/// Where a configured start-up topology comes from.
#[derive(Debug, Clone)]
pub enum TopologySpec {
    /// A YAML or JSON file.
    File(PathBuf),
    /// A bundled example.
    Example(&'static Example),
}

impl TopologySpec {
    /// Reads a `topology` setting: `builtin:NAME`, an existing file, or a bundled example's name.
    pub fn parse(value: &str) -> anyhow::Result<TopologySpec> {
        let unknown = || {
            let names: Vec<&str> = bundled::ALL.iter().map(|e| e.name).collect();
            anyhow::anyhow!(
                "topology {value:?} is neither a file nor a bundled example ({})",
                names.join(", ")
            )
        };
        if let Some(name) = value.strip_prefix("builtin:") {
            return bundled::find(name)
                .map(TopologySpec::Example)
                .ok_or_else(unknown);
        }
        let path = PathBuf::from(value);
        if path.is_file() {
            return Ok(TopologySpec::File(path));
        }
        bundled::find(value)
            .map(TopologySpec::Example)
            .ok_or_else(unknown)
    }

    /// Reads and checks the topology.
    pub fn load(&self) -> anyhow::Result<Topology> {
        match self {
            TopologySpec::Example(example) => Ok(example.topology()),
            TopologySpec::File(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read topology file {}", path.display()))?;
                Topology::parse(&text, Format::from_path(path))
                    .with_context(|| format!("topology file {}", path.display()))
            }
        }
    }

    /// The `source` recorded with a version loaded from here.
    pub fn source(&self) -> String {
        match self {
            TopologySpec::Example(example) => format!("builtin:{}", example.name),
            TopologySpec::File(path) => format!("file:{}", path.display()),
        }
    }
}

/// The live topology.
#[derive(Debug)]
pub struct LiveTopology {
    current: ArcSwap<Current>,
    /// Serializes changes and reloads in this process, so a reload never swaps in an older
    /// version than a change just stored.
    writer: tokio::sync::Mutex<()>,
    store: Store,
    /// Stamps stored versions.
    clock: Clock,
}

impl LiveTopology {
    /// Loads the topology at start-up.
    ///
    /// With a configured topology, it becomes current (stored as a new version unless the newest
    /// stored version has the same content). Without one, the newest stored version is current,
    /// or, on an empty store, the bundled default example.
    pub async fn start(
        store: Store,
        configured: Option<&TopologySpec>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let latest = store.latest_topology_version().await?;
        let (spec, latest) = match (configured, latest) {
            (None, Some(stored)) => {
                let current = Current::from_stored(stored)?;
                tracing::info!(
                    version = current.version.id,
                    services = current.version.services,
                    "using the newest stored topology"
                );
                return Ok(LiveTopology::with_current(store, current, clock));
            }
            (Some(spec), latest) => (spec.clone(), latest),
            (None, None) => (
                TopologySpec::Example(
                    bundled::find(bundled::DEFAULT).expect("the default example is bundled"),
                ),
                None,
            ),
        };
        let topology = spec.load()?;
        let canonical = topology.canonical();
        let current = match latest {
            Some(stored) if stored.version.digest == canonical.digest => {
                Current::new(stored.version.into(), topology)
            }
            latest => {
                let parent = latest.map(|stored| stored.version.id);
                let source = spec.source();
                let note = "loaded at start-up";
                let row =
                    insert(&store, &clock, parent, &topology, &canonical, &source, note).await?;
                tracing::info!(version = row.id, %source, "stored the start-up topology as a new version");
                Current::new(row.into(), topology)
            }
        };
        Ok(LiveTopology::with_current(store, current, clock))
    }

    fn with_current(store: Store, current: Current, clock: Clock) -> LiveTopology {
        publish_gauges(&current);
        LiveTopology {
            current: ArcSwap::from_pointee(current),
            writer: tokio::sync::Mutex::new(()),
            store,
            clock,
        }
    }

    /// The current version. Cheap: readers never wait for writers.
    pub fn current(&self) -> Arc<Current> {
        self.current.load_full()
    }

    /// Applies `change` to a copy of the current topology and stores the result as a new version.
    /// With `expected`, refuses unless that is the current version. `change` may run more than
    /// once if another replica stores a version first.
    pub async fn modify<T, F>(
        &self,
        expected: Option<i64>,
        source: &str,
        note: &str,
        change: F,
    ) -> Result<(T, Outcome), ChangeError>
    where
        T: Send + 'static,
        F: Fn(&mut Topology) -> Result<T, TopologyError> + Send + Sync + 'static,
    {
        let change = Arc::new(change);
        let _writer = self.writer.lock().await;
        let mut attempt = 0;
        loop {
            let mut base = self.current();
            if let Some(expected) = expected
                && expected != base.version.id
            {
                // The caller may have read that version from another replica: look first.
                self.reload_if_newer().await?;
                base = self.current();
                if expected != base.version.id {
                    return Err(ChangeError::VersionMismatch {
                        expected,
                        current: base.version.id,
                    });
                }
            }
            let (value, topology, canonical) = {
                let (base, change) = (base.clone(), change.clone());
                blocking(move || {
                    let mut topology = Topology::clone(&base.topology);
                    let value = change(&mut topology)?;
                    let canonical = topology.canonical();
                    Ok::<_, ChangeError>((value, topology, canonical))
                })
                .await??
            };
            if canonical.digest == base.version.digest {
                return Ok((value, Outcome::Unchanged(base)));
            }
            let parent = Some(base.version.id);
            match insert(
                &self.store,
                &self.clock,
                parent,
                &topology,
                &canonical,
                source,
                note,
            )
            .await
            {
                Ok(row) => {
                    let current = Arc::new(Current::new(row.into(), topology));
                    self.make_current(current.clone());
                    tracing::info!(
                        version = current.version.id,
                        parent = base.version.id,
                        source,
                        services = current.version.services,
                        dependencies = current.version.dependencies,
                        "stored a new topology version"
                    );
                    return Ok((
                        value,
                        Outcome::Stored {
                            previous: base,
                            current,
                        },
                    ));
                }
                Err(StoreError::Conflict(why)) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::warn!(%why, attempt, "topology changed elsewhere; retrying on the newest version");
                    self.reload_if_newer().await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Makes the newest stored version current if another replica stored a newer one. Returns
    /// whether it did.
    pub async fn refresh(&self) -> Result<bool, ChangeError> {
        let _writer = self.writer.lock().await;
        self.reload_if_newer().await
    }

    /// [`refresh`](LiveTopology::refresh) for a caller that holds the writer lock.
    async fn reload_if_newer(&self) -> Result<bool, ChangeError> {
        let newest = self.store.latest_topology_version_id().await?;
        let Some(newest) = newest.filter(|&id| id > self.current().version.id) else {
            return Ok(false);
        };
        let Some(stored) = self.store.topology_version(newest).await? else {
            return Ok(false);
        };
        let current = blocking(move || {
            Current::from_stored(stored).map_err(|e| ChangeError::Internal(format!("{e:#}")))
        })
        .await??;
        tracing::info!(
            version = current.version.id,
            "loaded a topology version stored elsewhere"
        );
        self.make_current(Arc::new(current));
        Ok(true)
    }

    fn make_current(&self, current: Arc<Current>) {
        publish_gauges(&current);
        metrics::counter!(names::TOPOLOGY_CHANGES, "source" => source_kind(&current.version.source))
            .increment(1);
        self.current.store(current);
    }
}

/// Runs CPU-bound work on the blocking pool.
async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ChangeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ChangeError::Internal(format!("topology worker failed: {e}")))
}

async fn insert(
    store: &Store,
    clock: &Clock,
    parent: Option<i64>,
    topology: &Topology,
    canonical: &Canonical,
    source: &str,
    note: &str,
) -> Result<TopologyVersionRow, StoreError> {
    store
        .insert_topology_version(&NewTopologyVersion {
            parent,
            created_at: clock.now(),
            source,
            note,
            digest: &canonical.digest,
            service_count: topology.service_count(),
            dependency_count: topology.dependency_count(),
            document: &canonical.json,
        })
        .await
}

fn publish_gauges(current: &Current) {
    metrics::gauge!(names::TOPOLOGY_SERVICES).set(current.version.services as f64);
    metrics::gauge!(names::TOPOLOGY_DEPENDENCIES).set(current.version.dependencies as f64);
    metrics::gauge!(names::TOPOLOGY_VERSION).set(current.version.id as f64);
}

/// The part of a source before any `:` (`api`, `file`, `builtin`), so metric labels stay few.
fn source_kind(source: &str) -> String {
    source.split(':').next().unwrap_or(source).to_owned()
}

#[cfg(test)]
mod tests {
    use rootcause_topology::{Service, ServiceKind};

    use super::*;
    use crate::store::tests::sqlite_store;

    /// A replica's live topology on `store`, started on `configured` (none: the stored or
    /// default one).
    async fn replica(store: &Store, configured: Option<&TopologySpec>) -> LiveTopology {
        LiveTopology::start(store.clone(), configured, Clock::system())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_empty_store_starts_on_the_default_example_and_keeps_changes() {
        let (store, _dir) = sqlite_store().await;
        let live = replica(&store, None).await;
        let first = live.current();
        assert_eq!(first.version.id, 1);
        assert_eq!(first.version.source, "builtin:online-boutique");

        let (_, outcome) = live
            .modify(None, "api", "add a service", |t| {
                t.add_service(Service::new("fraud-check", ServiceKind::Service))
            })
            .await
            .unwrap();
        let Outcome::Stored { previous, current } = outcome else {
            panic!("a new service is a change")
        };
        assert_eq!(previous.version.id, 1);
        assert_eq!(current.version.parent_id, Some(1));
        assert_eq!(live.current().version.id, current.version.id);

        // Restarting without a configured topology continues from the newest stored version.
        let restarted = replica(&store, None).await;
        assert_eq!(restarted.current().version.id, current.version.id);
        assert!(
            restarted
                .current()
                .topology
                .service("fraud-check")
                .is_some()
        );
    }

    #[tokio::test]
    async fn refused_and_empty_changes_store_nothing() {
        let (store, _dir) = sqlite_store().await;
        let live = replica(&store, None).await;
        let error = live
            .modify(None, "api", "", |t| t.remove_service("nope"))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ChangeError::Invalid(TopologyError::UnknownService(_))
        ));
        let (_, outcome) = live.modify(Some(1), "api", "", |_| Ok(())).await.unwrap();
        assert!(matches!(outcome, Outcome::Unchanged(_)));
        let stale = live
            .modify(Some(7), "api", "", |t| {
                *t = Topology::new();
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(
            stale,
            ChangeError::VersionMismatch {
                expected: 7,
                current: 1
            }
        ));
        assert_eq!(store.topology_versions(None, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_configured_topology_wins_at_start_but_is_not_stored_twice() {
        let (store, _dir) = sqlite_store().await;
        replica(&store, None).await;
        let sock_shop = TopologySpec::parse("sock-shop").unwrap();
        let live = replica(&store, Some(&sock_shop)).await;
        assert_eq!(live.current().version.id, 2);
        assert_eq!(live.current().version.source, "builtin:sock-shop");
        let again = replica(&store, Some(&sock_shop)).await;
        assert_eq!(
            again.current().version.id,
            2,
            "same content: no new version"
        );
    }

    #[tokio::test]
    async fn a_replica_that_lost_a_race_retries_on_the_newer_version() {
        let (store, _dir) = sqlite_store().await;
        let replica_a = replica(&store, None).await;
        let replica_b = replica(&store, None).await;
        replica_a
            .modify(None, "api", "", |t| {
                t.add_service(Service::new("from-a", ServiceKind::Service))
            })
            .await
            .unwrap();
        // B still holds version 1 in memory; its change must land on top of A's, not replace it.
        let (_, outcome) = replica_b
            .modify(None, "api", "", |t| {
                t.add_service(Service::new("from-b", ServiceKind::Service))
            })
            .await
            .unwrap();
        let current = outcome.current();
        assert_eq!(current.version.id, 3);
        assert!(current.topology.service("from-a").is_some());
        assert!(current.topology.service("from-b").is_some());
        // With an expected version the change is refused once the newer version is seen, never
        // applied on top of it.
        let error = replica_a
            .modify(Some(2), "api", "", |t| t.remove_service("from-a").map(drop))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ChangeError::VersionMismatch {
                    expected: 2,
                    current: 3
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn topology_settings_name_files_or_examples() {
        assert!(matches!(
            TopologySpec::parse("builtin:train-ticket").unwrap(),
            TopologySpec::Example(e) if e.name == "train-ticket"
        ));
        assert!(matches!(
            TopologySpec::parse("sock-shop").unwrap(),
            TopologySpec::Example(_)
        ));
        let error = TopologySpec::parse("no-such-thing")
            .unwrap_err()
            .to_string();
        assert!(error.contains("online-boutique"), "{error}");
    }
}
