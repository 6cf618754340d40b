//! Helpers for tests that need real components, shared by this crate's tests and the end-to-end
//! suite (feature `testing`).
//!
//! A test that needs PostgreSQL asks [`TestDatabase::create`] for a fresh database. When the
//! server cannot be reached the test fails if `ROOTCAUSE_REQUIRE_E2E=1` (as in CI), and otherwise
//! prints a notice straight to the terminal, past the test harness's output capture, and skips
//! that part: a skip is never silent.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::config::redact_url;

/// Set to `1` to turn every missing real component into a test failure instead of a skip.
pub const REQUIRE_E2E_VAR: &str = "ROOTCAUSE_REQUIRE_E2E";

/// Names the PostgreSQL server tests use: an admin URL of a database that exists.
pub const POSTGRES_URL_VAR: &str = "ROOTCAUSE_TEST_POSTGRES_URL";

/// The server on this machine (see the README): trust auth, user `postgres`, database `test`.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

const DATABASE_PREFIX: &str = "rootcause_test_";

/// Whether missing components must fail the run.
pub fn e2e_required() -> bool {
    std::env::var(REQUIRE_E2E_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// A component is missing: fail when [`e2e_required`], otherwise say so loudly and return.
pub fn missing_component(component: &str, why: &str) {
    if e2e_required() {
        panic!("{component} is required ({REQUIRE_E2E_VAR}=1) but unavailable: {why}");
    }
    // Written to the process's stderr directly, so `cargo test` shows it even for passing tests.
    let notice = format!(
        "\n*** SKIPPED: {component} unavailable ({why}).\n*** Tests that need it did not run; \
         set {REQUIRE_E2E_VAR}=1 to make this an error (CI does).\n"
    );
    let _ = std::io::stderr().write_all(notice.as_bytes());
}

/// A PostgreSQL database created for one test, dropped by [`TestDatabase::drop`].
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new, empty database.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database on the test server, or returns `None` after
    /// [`missing_component`] when the server cannot be reached. Databases left by test processes
    /// that no longer run (a panic skips the drop) are removed first.
    pub async fn create() -> Option<TestDatabase> {
        let admin_url =
            std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin =
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url))
                .await
            {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => {
                    let shown = redact_url(&admin_url);
                    missing_component("PostgreSQL", &format!("{shown}: {error}"));
                    return None;
                }
                Err(_) => {
                    let shown = redact_url(&admin_url);
                    missing_component("PostgreSQL", &format!("{shown}: no answer in 5 s"));
                    return None;
                }
            };
        remove_orphans(&mut admin).await;

        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{DATABASE_PREFIX}{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut admin)
        .await
        .expect("drop a leftover test database");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        let url = replace_database(&admin_url, &name);
        Some(TestDatabase {
            url,
            admin_url,
            name,
        })
    }

    /// Drops the database (all connections to it must be closed).
    pub async fn drop(self) {
        if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await;
            let _ = admin.close().await;
        }
    }
}

/// Drops test databases whose creating process is gone (on systems with `/proc` only: elsewhere
/// a live process cannot be told from a dead one, so nothing is dropped).
async fn remove_orphans(admin: &mut PgConnection) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(DATABASE_PREFIX)
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let Some(pid) = name
            .strip_prefix(DATABASE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue; // not one of ours after all
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

/// `postgres://u@h:5432/test?x=y` with the database name replaced.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

/// The text `field` of every object in the JSON array `items`, in order: what a test compares a
/// listing by. Panics, showing `items`, when it is not an array or an object lacks the text.
pub fn texts<'a>(items: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    let Some(array) = items.as_array() else {
        panic!("expected an array of objects with a text {field:?}, got {items}");
    };
    array
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("no text {field:?} in {item} (of {items})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_keeping_options() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}
