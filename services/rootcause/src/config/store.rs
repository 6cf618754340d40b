//! `[store]`: how the service talks to its database.

use serde::{Deserialize, Serialize};

/// How SQLite commits reach the disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteDurability {
    /// fsync on every commit: a commit survives power loss.
    #[default]
    Full,
    /// fsync at WAL checkpoints: a commit survives a crash of the process, not of the machine.
    Normal,
}

/// Default of [`StoreOptions::sqlite_cache_mib`].
pub const SQLITE_CACHE_MIB: u32 = 8;

/// Connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreOptions {
    /// Largest number of open connections.
    pub max_connections: u32,
    /// SQLite only: how commits reach the disk.
    pub sqlite_synchronous: SqliteDurability,
    /// How long to wait for a connection (and, on SQLite, for a lock) before failing.
    pub acquire_timeout_secs: u64,
    /// SQLite only: page cache of each connection, MiB (heap memory, so up to
    /// `max_connections` times this). The database file is also mapped into memory, which
    /// serves reads of committed pages without this cache.
    pub sqlite_cache_mib: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            sqlite_synchronous: SqliteDurability::Full,
            acquire_timeout_secs: 10,
            sqlite_cache_mib: SQLITE_CACHE_MIB,
        }
    }
}
