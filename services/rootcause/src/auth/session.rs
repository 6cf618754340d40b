//! Browser sessions: a console asks for a token once and trades it for a cookie, so the token
//! never sits in a URL, in a page's storage or within a script's reach.
//!
//! `POST /api/v1/session` with `Authorization: Bearer <token>` answers with the cookie
//! [`COOKIE`]: `HttpOnly` (no script reads it), `SameSite=Strict` (a browser sends it only with
//! requests the service's own pages start, so no page elsewhere can act with it), `Path=/`, and
//! `Secure` when `auth.secure_cookie` is on (behind TLS). The service keeps only the digest of
//! the cookie's value, with the digest of the token that opened it: a request carrying the
//! cookie acts as that token, with its name and scopes, while the token is active and the session
//! younger than `auth.session_ttl_secs`. Revoking the token ends its sessions at once. At most
//! `auth.max_sessions` are held (the oldest goes first); a restart ends them all.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

use super::digest_of;

/// The session cookie's name.
pub const COOKIE: &str = "rootcause_session";

/// How long sessions last, how many are held, and whether their cookie is `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Milliseconds a session lasts from its opening.
    pub ttl_ms: i64,
    /// Sessions held at most.
    pub max: usize,
    /// Mark the cookie `Secure` (HTTPS only).
    pub secure: bool,
}

/// One open session.
#[derive(Debug, Clone)]
struct Session {
    /// Digest of the token that opened it.
    token_digest: String,
    /// Epoch ms after which it is refused.
    expires_at: i64,
}

/// The open sessions, by digest of the cookie's value.
#[derive(Debug)]
pub(super) struct Sessions {
    limits: SessionLimits,
    open: HashMap<String, Session>,
}

impl Sessions {
    pub(super) fn new(limits: SessionLimits) -> Sessions {
        Sessions {
            limits,
            open: HashMap::new(),
        }
    }

    pub(super) fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Holds a session for the cookie value `secret`, opened by the token of digest
    /// `token_digest` at `now`; returns when it expires. Makes room first: expired sessions
    /// go, then the oldest (every session lasts as long, so the oldest expires first).
    pub(super) fn open(&mut self, secret: &str, token_digest: &str, now: i64) -> i64 {
        self.open.retain(|_, s| s.expires_at > now);
        while self.open.len() >= self.limits.max.max(1) {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(digest, _)| digest.clone());
            if let Some(oldest) = oldest {
                self.open.remove(&oldest);
            }
        }
        let expires_at = now + self.limits.ttl_ms;
        self.open.insert(
            digest_of(secret),
            Session {
                token_digest: token_digest.to_owned(),
                expires_at,
            },
        );
        expires_at
    }

    /// The digest of the token behind the cookie value `secret`, if its session is open at
    /// `now`.
    pub(super) fn token_of(&self, secret: &str, now: i64) -> Option<String> {
        self.open
            .get(&digest_of(secret))
            .filter(|s| s.expires_at > now)
            .map(|s| s.token_digest.clone())
    }

    /// Ends the session of the cookie value `secret`; whether one was open.
    pub(super) fn close(&mut self, secret: &str) -> bool {
        self.open.remove(&digest_of(secret)).is_some()
    }
}

/// The value of the session cookie among a request's `Cookie` headers.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value that hands a browser the session `secret` for `max_age_secs`, or that
/// removes it (an empty secret and 0).
pub(super) fn set_cookie(secret: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sessions(max: usize) -> Sessions {
        Sessions::new(SessionLimits {
            ttl_ms: 1_000,
            max,
            secure: false,
        })
    }

    #[test]
    fn a_session_names_its_token_until_it_expires_or_closes() {
        let mut held = sessions(10);
        assert_eq!(held.open("s1", "token-a", 0), 1_000);
        assert_eq!(held.token_of("s1", 999).as_deref(), Some("token-a"));
        assert_eq!(held.token_of("s1", 1_000), None, "expired");
        assert_eq!(held.token_of("other", 0), None);
        held.open("s2", "token-b", 0);
        assert!(held.close("s2"));
        assert!(!held.close("s2"));
        assert_eq!(held.token_of("s2", 0), None);
    }

    #[test]
    fn the_oldest_session_makes_room_and_only_digests_are_kept() {
        let mut held = sessions(2);
        held.open("s1", "t", 0);
        held.open("s2", "t", 1);
        held.open("s3", "t", 2);
        assert_eq!(held.token_of("s1", 3), None, "the oldest went");
        assert!(held.token_of("s2", 3).is_some() && held.token_of("s3", 3).is_some());
        assert!(held.open.len() <= 2);
        assert!(held.open.keys().all(|k| k != "s2" && k != "s3"));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_with_its_protections() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; rootcause_session=abc ; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
        let set = set_cookie("abc", 60, true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie("abc", 60, false).contains("Secure"));
    }
}
