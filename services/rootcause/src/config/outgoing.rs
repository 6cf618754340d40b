//! The allow-list every outgoing call must pass (`actions.allowed_hosts`), checked when the
//! configuration loads and again before each call.
//!
//! The service calls out only to hosts an operator listed: a runbook catalogue is edited over
//! the API, and without the list anyone who can edit it could make the service call any host
//! its network reaches (cloud metadata endpoints, internal admin pages).

use reqwest::Url;

/// An `allowed_hosts` entry: a host (DNS name or IP address) or `*.domain`, with an optional
/// `:port` that then must match too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// Lower case, without a trailing dot or IPv6 brackets.
    host: String,
    /// `*.domain`: any subdomain of `host`, never `host` itself.
    wildcard: bool,
    port: Option<u16>,
}

impl Allowed {
    fn parse(entry: &str) -> Result<Allowed, String> {
        let bad = || {
            format!(
                "{entry:?} is not a host name, an IP address or `*.domain`, optionally with \
                 `:port`"
            )
        };
        let (wildcard, rest) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(bad)?),
            };
            (host, port)
        } else if rest.matches(':').count() > 1 {
            // A bare IPv6 address.
            (rest, None)
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| bad()))
            .transpose()?;
        let ip = host.parse::<std::net::IpAddr>().is_ok();
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
        // A wildcard over addresses (`*.1`) would allow whole address ranges.
        let numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !(ip || name_ok) || (wildcard && (ip || numeric)) {
            return Err(bad());
        }
        Ok(Allowed {
            host,
            wildcard,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = if self.wildcard {
            // Only names have subdomains; `10.0.0.1` is not one of `*.0.1`.
            host.parse::<std::net::IpAddr>().is_err()
                && host
                    .strip_suffix(self.host.as_str())
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// What is wrong with an `allowed_hosts` entry, if anything.
pub fn check_host_pattern(pattern: &str) -> Result<(), String> {
    Allowed::parse(pattern).map(|_| ())
}

/// Whether `host` (any case, trailing dot or not) at `port` is on the allow-list: equal to an
/// entry, or a subdomain of a `*.domain` entry, and on the entry's port when it names one.
pub fn host_allowed(allowed: &[String], host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    allowed
        .iter()
        .filter_map(|entry| Allowed::parse(entry).ok())
        .any(|entry| entry.matches(&host, port))
}

/// The scheme, host and port of a URL: what logs and the audit log show of a webhook target,
/// whose path or query may carry a token (chat webhooks do).
pub fn origin(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => "(not a URL)".to_owned(),
    }
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
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{}: credentials in the URL would be logged; use a header",
            origin(url)
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} names no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    if !host_allowed(allowed, host, port) {
        return Err(format!(
            "host {host:?} (port {port}) is not in actions.allowed_hosts ({}): the service \
             calls out only to hosts an operator allowed",
            if allowed.is_empty() {
                "empty".to_owned()
            } else {
                allowed.join(", ")
            }
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_exact_hosts_and_subdomains_only() {
        let allowed = vec![
            "hooks.example.com".to_owned(),
            "*.corp.net".to_owned(),
            "Relay.Local.:8080".to_owned(),
            "[::1]:9000".to_owned(),
        ];
        assert!(host_allowed(&allowed, "hooks.example.com", 80));
        assert!(host_allowed(&allowed, "HOOKS.example.com.", 443));
        assert!(host_allowed(&allowed, "chat.corp.net", 80));
        assert!(host_allowed(&allowed, "a.b.corp.net", 80));
        assert!(
            !host_allowed(&allowed, "corp.net", 80),
            "the apex is not a subdomain"
        );
        assert!(!host_allowed(&allowed, "evilcorp.net", 80));
        assert!(!host_allowed(&allowed, "hooks.example.com.evil.io", 80));
        assert!(!host_allowed(&allowed, "169.254.169.254", 80));
        assert!(!host_allowed(&[], "localhost", 80));
        assert!(host_allowed(&allowed, "relay.local", 8080));
        assert!(
            !host_allowed(&allowed, "relay.local", 8081),
            "the port is part of it"
        );
        assert!(host_allowed(&allowed, "[::1]", 9000));
        assert!(!host_allowed(&allowed, "::1", 9001));
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
        assert!(check_host_pattern("10.0.0.1:8080").is_ok());
        assert!(check_host_pattern("exa mple").is_err());
        assert!(check_host_pattern("*.").is_err());
        assert!(
            check_host_pattern("*.1").is_err(),
            "no wildcard over addresses"
        );
        assert!(check_host_pattern("host:99999").is_err());
        let secret = check_outgoing_url("http://user:pw@127.0.0.1/hook", &allowed).unwrap_err();
        assert!(!secret.contains("pw"), "{secret}");
        assert_eq!(
            origin("http://hooks.example.com:8080/T0/B1/secret?token=x"),
            "http://hooks.example.com:8080"
        );
    }
}
