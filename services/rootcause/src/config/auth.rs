//! `[auth]`: who may call the API, and browser sessions.

use serde::{Deserialize, Serialize};

use super::every_problem;

/// When requests need a bearer token (`auth.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// On whenever `listen` is not a loopback address (then `serve` refuses to start without
    /// an active token); off on loopback.
    Auto,
    /// On, on loopback too.
    Always,
}

/// Who may call the API (`[auth]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `auto` (on off loopback) or `always`.
    pub mode: AuthMode,
    /// Seconds between re-reads of the token table, so that a token created or revoked with
    /// `rootcause tokens` while the service runs takes effect.
    pub reload_secs: u64,
    /// Requests per second each token may make (sustained; 0: no limit); more get 429 with
    /// `Retry-After`.
    pub rate_limit_per_sec: f64,
    /// Requests a token may make at once above its rate.
    pub rate_limit_burst: f64,
    /// Seconds a browser session (`POST /api/v1/session`) lasts.
    pub session_ttl_secs: u64,
    /// Browser sessions held at most; opening one more ends the oldest.
    pub max_sessions: usize,
    /// Mark the session cookie `Secure` (sent over HTTPS only): turn on behind a TLS proxy.
    pub secure_cookie: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Auto,
            reload_secs: 5,
            rate_limit_per_sec: 500.0,
            rate_limit_burst: 1000.0,
            session_ttl_secs: 12 * 3600,
            max_sessions: 10_000,
            secure_cookie: false,
        }
    }
}

impl AuthConfig {
    /// Session settings that parse but cannot work: every problem, joined by `; `.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(60..=30 * 86_400).contains(&self.session_ttl_secs) {
            problems.push(format!(
                "auth.session_ttl_secs must be 60 to 2592000 (30 days), got {}",
                self.session_ttl_secs
            ));
        }
        if self.max_sessions == 0 {
            problems.push("auth.max_sessions must be at least 1".to_owned());
        }
        every_problem(problems)
    }
}
