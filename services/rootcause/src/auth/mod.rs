//! Who may call the API: tokens with scopes, the scope every route needs, and the checks every
//! request passes ([`guard`]) before a handler runs.
//!
//! A token is a random secret shown once at creation; the store keeps its SHA-256 digest. The
//! service holds every active token's digest in memory ([`Tokens`], reloaded every
//! `auth.reload_secs` and after each change made through the API), so checking one costs a hash
//! and a map lookup, never a query. Scopes nest: `admin` grants everything, `respond` grants
//! `read`; `ingest` grants only the intake routes, so a monitoring system's token cannot read
//! incidents.

mod guard;
mod rate;
mod routes;
mod session;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::store::{Store, StoreError, StoredToken};

pub use guard::{Guard, bearer, guard};
pub use rate::RateLimiter;
pub use routes::{Access, required_access};
pub use session::{SessionLimits, session_cookie};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send alerts, changes, traces and metric windows.
    Ingest,
    /// Read incidents, hypotheses, topology, history, models and the audit log.
    Read,
    /// Decide: approve or reject actions, confirm hypotheses, record resolutions (and read).
    Respond,
    /// Change the topology, runbooks, models and tokens (and everything else).
    Admin,
}

impl Scope {
    /// Every scope, in order of power.
    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Read, Scope::Respond, Scope::Admin];

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Respond => "respond",
            Scope::Admin => "admin",
        }
    }

    /// Whether holding `self` allows what `needed` allows.
    pub fn grants(self, needed: Scope) -> bool {
        self == needed || self == Scope::Admin || (self == Scope::Respond && needed == Scope::Read)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| {
                format!("unknown scope {text:?}; scopes are ingest, read, respond, admin")
            })
    }
}

/// Parses a comma-separated scope list (`read,respond`); at least one scope.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, String> {
    let mut scopes = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let scope: Scope = part.parse()?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    format_scopes(&scopes)?;
    Ok(scopes)
}

/// The stored form of a scope list: each scope once, in order of power, comma-separated; an
/// empty list is an error.
pub fn format_scopes(scopes: &[Scope]) -> Result<String, String> {
    let names: Vec<&str> = Scope::ALL
        .into_iter()
        .filter(|s| scopes.contains(s))
        .map(Scope::as_str)
        .collect();
    if names.is_empty() {
        return Err("a token needs at least one scope (ingest, read, respond, admin)".to_owned());
    }
    Ok(names.join(","))
}

/// The caller of a request, authenticated by its token: its name is the actor recorded for
/// everything it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// Epoch ms after which it is refused.
    pub expires_at: Option<i64>,
}

impl Principal {
    /// Whether the principal may do what `needed` allows.
    pub fn may(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|s| s.grants(needed))
    }
}

/// A new token's secret and the digest stored for it.
pub struct NewSecret {
    /// Shown once: `rc_` and 43 characters of base64url (256 random bits).
    pub secret: String,
    /// SHA-256 of the secret, hex.
    pub digest: String,
}

/// A fresh random secret from the operating system's generator.
pub fn new_secret() -> anyhow::Result<NewSecret> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the operating system gave no random bytes: {e}"))?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut secret = String::from("rc_");
    let mut bits = 0u32;
    let mut held = 0u32;
    for byte in bytes {
        held = (held << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            secret.push(ALPHABET[((held >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        secret.push(ALPHABET[((held << (6 - bits)) & 63) as usize] as char);
    }
    let digest = digest_of(&secret);
    Ok(NewSecret { secret, digest })
}

/// The stored digest of a secret: SHA-256, hex. A secret of 256 random bits needs no salt or
/// slow hash: nothing about it can be guessed.
pub fn digest_of(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A token name: 1 to 64 characters of letters, digits, `.`, `_`, `-` and `@`, since it is
/// written into the audit log as the actor.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a token name is 1 to 64 letters, digits, '.', '_', '-' or '@', got {name:?}"
        ))
    }
}

/// The active tokens by digest, as the guard reads them, and the browser sessions opened with
/// them (see [`session`]).
#[derive(Clone)]
pub struct Tokens {
    store: Store,
    clock: Clock,
    active: Arc<ArcSwap<HashMap<String, Principal>>>,
    sessions: Arc<Mutex<session::Sessions>>,
}

impl Tokens {
    /// Loads the active tokens of `store`; sessions opened with them follow `limits`.
    pub async fn load(
        store: Store,
        clock: Clock,
        limits: SessionLimits,
    ) -> Result<Tokens, StoreError> {
        let tokens = Tokens {
            store,
            clock,
            active: Arc::new(ArcSwap::from_pointee(HashMap::new())),
            sessions: Arc::new(Mutex::new(session::Sessions::new(limits))),
        };
        tokens.reload().await?;
        Ok(tokens)
    }

    /// Reads the tokens again (after a change, or one made by `rootcause tokens` directly in
    /// the database).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let now = self.clock.now_millis();
        let active = self
            .store
            .tokens()
            .await?
            .into_iter()
            .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now))
            .filter_map(|t| principal_of(&t).map(|p| (t.digest, p)))
            .collect();
        self.active.store(Arc::new(active));
        Ok(())
    }

    /// How many tokens are active.
    pub fn count(&self) -> usize {
        self.active.load().len()
    }

    /// The principal a presented secret belongs to, if it is active now.
    pub fn authenticate(&self, secret: &str) -> Option<Principal> {
        self.by_digest(&digest_of(secret))
    }

    fn by_digest(&self, digest: &str) -> Option<Principal> {
        let now = self.clock.now_millis();
        self.active
            .load()
            .get(digest)
            .filter(|p| p.expires_at.is_none_or(|e| e > now))
            .cloned()
    }

    /// Opens a browser session for the active token `secret`: the cookie value (a fresh random
    /// secret), the token's principal and when the session expires (epoch ms; never after the
    /// token does). `None` for a token that is not active.
    pub fn open_session(&self, secret: &str) -> anyhow::Result<Option<(String, Principal, i64)>> {
        let token_digest = digest_of(secret);
        let Some(principal) = self.by_digest(&token_digest) else {
            return Ok(None);
        };
        let cookie = new_secret()?.secret;
        let now = self.clock.now_millis();
        let expires_at = self.sessions().open(&cookie, &token_digest, now);
        let expires_at = principal
            .expires_at
            .map_or(expires_at, |e| e.min(expires_at));
        Ok(Some((cookie, principal, expires_at)))
    }

    /// The principal of the session whose cookie value is `cookie`, if the session is open and
    /// its token still active.
    pub fn session(&self, cookie: &str) -> Option<Principal> {
        let token = self.sessions().token_of(cookie, self.clock.now_millis())?;
        self.by_digest(&token)
    }

    /// Ends the session whose cookie value is `cookie`; whether one was open.
    pub fn close_session(&self, cookie: &str) -> bool {
        self.sessions().close(cookie)
    }

    /// The `Set-Cookie` value handing a browser the session `cookie` for `max_age_secs`, or
    /// removing it (an empty cookie and 0), `Secure` when `auth.secure_cookie` says so.
    pub fn set_cookie(&self, cookie: &str, max_age_secs: i64) -> String {
        session::set_cookie(cookie, max_age_secs, self.sessions().limits().secure)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, session::Sessions> {
        // A panic while the map was held cannot leave it half-changed in a way that matters:
        // every change is one insert or remove.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A stored token as a principal (`None` for scopes this version does not know).
fn principal_of(token: &StoredToken) -> Option<Principal> {
    Some(Principal {
        name: token.name.clone(),
        scopes: parse_scopes(&token.scopes).ok()?,
        expires_at: token.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_as_documented() {
        assert!(Scope::Admin.grants(Scope::Ingest));
        assert!(Scope::Respond.grants(Scope::Read));
        assert!(
            !Scope::Ingest.grants(Scope::Read),
            "an ingest token reads nothing"
        );
        assert!(!Scope::Read.grants(Scope::Respond));
        assert!(!Scope::Respond.grants(Scope::Admin));
        assert_eq!(
            parse_scopes("read, respond,read").unwrap(),
            [Scope::Read, Scope::Respond]
        );
        assert!(parse_scopes("").is_err());
        assert_eq!(
            format_scopes(&[Scope::Admin, Scope::Read, Scope::Admin]).unwrap(),
            "read,admin"
        );
        assert!(parse_scopes("root").is_err());
    }

    #[test]
    fn secrets_are_random_and_only_their_digest_matches() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 3 + 43);
        assert_eq!(a.digest, digest_of(&a.secret));
        assert_ne!(a.digest, digest_of(&b.secret));
        assert!(!a.digest.contains(&a.secret[3..]));
    }

    #[test]
    fn token_names_are_safe_to_record_as_actors() {
        assert!(check_name("alertmanager").is_ok());
        assert!(check_name("ciso@bank.example").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
