//! Outgoing calls: one delivery attempt to a webhook, its backoff, and errors on one line.
//!
//! Every target has passed the allow-list of [`crate::config::outgoing`] first.

use std::collections::BTreeMap;
use std::time::Duration;

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
        // Without the URL: its path or query may hold a token, and this text is stored.
        Err(error) => Delivery::Retry(None, error_chain(&error.without_url())),
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

/// An error and its causes on one line: reqwest's own message ("error sending request") says
/// nothing until its sources ("Connection refused") are added.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
