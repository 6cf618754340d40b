//! Outgoing calls: the allow-list every webhook target must pass, and one delivery attempt.
//!
//! The service calls out only to hosts an operator listed in `actions.allowed_hosts`: a
//! runbook catalogue is edited over the API, and without the list anyone who can edit it could
//! make the service call any host its network reaches (cloud metadata endpoints, internal
//! admin pages).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;

/// What is wrong with an `allowed_hosts` entry, if anything.
pub fn check_host_pattern(pattern: &str) -> Result<(), String> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{pattern:?} is not a host name, an IP address or `*.domain`"
        ))
    }
}

/// Whether `host` is on the allow-list: equal to an entry (ignoring case), or a subdomain of
/// a `*.domain` entry.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        match entry.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == entry,
        }
    })
}

/// Checks a webhook URL: absolute `http://` with a host on the allow-list.
pub fn check_outgoing_url(url: &str, allowed: &[String]) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "{url:?}: only http:// targets can be called (this build has no TLS client; \
             put a TLS-terminating relay on an allowed host in front of https targets)"
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} names no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !host_allowed(allowed, host) {
        return Err(format!(
            "host {host:?} is not in actions.allowed_hosts ({}): the service calls out only to \
             hosts an operator allowed",
            if allowed.is_empty() {
                "empty".to_owned()
            } else {
                allowed.join(", ")
            }
        ));
    }
    Ok(parsed)
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The target answered 2xx.
    Delivered(u16),
    /// Worth another attempt: no answer in time, a connection error, 5xx, 408 or 429.
    Retry(Option<u16>, String),
    /// The target refused it (another 4xx): another attempt would be refused too.
    Refused(u16, String),
}

/// POSTs a JSON `body` to `url` once, within `timeout`.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: String,
    headers: &BTreeMap<String, String>,
    timeout: Duration,
) -> Delivery {
    let mut request = client
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let code = status.as_u16();
            if status.is_success() {
                Delivery::Delivered(code)
            } else {
                let text = response.text().await.unwrap_or_default();
                let why = format!("HTTP {code}: {}", truncate(&text, 200));
                if status.is_server_error() || code == 408 || code == 429 {
                    Delivery::Retry(Some(code), why)
                } else {
                    Delivery::Refused(code, why)
                }
            }
        }
        Err(error) => Delivery::Retry(None, error_chain(&error)),
    }
}

/// Seconds to wait before attempt `attempt` (2, 3, ...): 1, 2, 4, ... capped at 30.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(2).min(5)).min(Duration::from_secs(30))
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// An error and its causes on one line (reqwest's own message hides "connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_exact_hosts_and_subdomains_only() {
        let allowed = vec!["hooks.example.com".to_owned(), "*.corp.net".to_owned()];
        assert!(host_allowed(&allowed, "hooks.example.com"));
        assert!(host_allowed(&allowed, "HOOKS.example.com"));
        assert!(host_allowed(&allowed, "chat.corp.net"));
        assert!(host_allowed(&allowed, "a.b.corp.net"));
        assert!(
            !host_allowed(&allowed, "corp.net"),
            "the apex is not a subdomain"
        );
        assert!(!host_allowed(&allowed, "evilcorp.net"));
        assert!(!host_allowed(&allowed, "hooks.example.com.evil.io"));
        assert!(!host_allowed(&allowed, "169.254.169.254"));
        assert!(!host_allowed(&[], "localhost"));
    }

    #[test]
    fn outgoing_urls_must_be_http_and_allowed() {
        let allowed = vec!["127.0.0.1".to_owned()];
        assert!(check_outgoing_url("http://127.0.0.1:9000/hook", &allowed).is_ok());
        let refused = check_outgoing_url("http://10.0.0.1/hook", &allowed).unwrap_err();
        assert!(
            refused.contains("not in actions.allowed_hosts"),
            "{refused}"
        );
        let tls = check_outgoing_url("https://127.0.0.1/hook", &allowed).unwrap_err();
        assert!(tls.contains("only http://"), "{tls}");
        assert!(check_outgoing_url("not a url", &allowed).is_err());
        assert!(check_host_pattern("*.example.com").is_ok());
        assert!(check_host_pattern("exa mple").is_err());
        assert!(check_host_pattern("*.").is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
