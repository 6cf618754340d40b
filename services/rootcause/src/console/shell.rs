//! What every console page shares: the document around its content, the navigation, and the
//! small pieces pages are built from (times, status badges, confidence meters).

use crate::risk::priority::Priority;
use maud::{DOCTYPE, Markup, html};

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Incidents,
    Topology,
    Models,
    Risks,
    Reports,
    None,
}

/// A whole page: `title` in the tab and the heading's place, `live` the event stream its
/// script follows (if any), `main` the content.
pub(super) fn page(title: &str, section: Section, live: Option<&str>, main: Markup) -> Markup {
    let nav = [
        ("/", "Incidents", Section::Incidents),
        ("/topology", "Topology", Section::Topology),
        ("/risks", "Risks", Section::Risks),
        ("/reports", "Report", Section::Reports),
        ("/models", "Models", Section::Models),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · rootcause" }
                link rel="stylesheet" href="/console/assets/console.css";
                script type="module" src="/console/assets/console.js" {}
            }
            body data-live=[live] {
                a.skip href="#main" { "Skip to content" }
                header.bar {
                    a.brand href="/" { "rootcause" }
                    nav aria-label="Console" {
                        ul {
                            @for (href, label, this) in nav {
                                li {
                                    @if this == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                div #notice role="status" aria-live="polite" {}
                main #main tabindex="-1" { (main) }
            }
        }
    }
}

/// A page that only says what went wrong.
pub(super) fn problem(title: &str, message: &str) -> Markup {
    page(
        title,
        Section::None,
        None,
        html! {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Back to the incidents" } }
        },
    )
}

/// `2026-12-07 04:10:05Z` for a time in milliseconds since the epoch.
pub(super) fn time(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// A time as a `<time>` element: the UTC time, the age beside it.
pub(super) fn when(millis: i64, now: i64) -> Markup {
    let iso = chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    html! { time datetime=(iso) title=(time(millis)) { (age(now - millis)) } }
}

/// `45 s ago`, `12 min ago`, `3 h ago`, `2 d ago`.
pub(super) fn age(elapsed_millis: i64) -> String {
    let s = (elapsed_millis / 1000).max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A status as a badge (`open`, `resolved`, `merged`, `approved`, ...).
pub(super) fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (css_token(status)) } { (status) } }
}

/// An incident's priority; when a critical window raised it, marked with an arrow and the window
/// named on hover (named too when it is open but the incident is already P1).
pub(super) fn priority(priority: &Priority) -> Markup {
    let level = priority.level;
    html! {
        @match &priority.window {
            Some(w) if level < priority.base => span class={ "priority raised p" (level) }
                title=(format!("P{} raised from P{} during the {}", level, priority.base, w.name)) {
                "P" (level) " ↑" }
            Some(w) => span class={ "priority p" (level) } title=(format!("during the {}", w.name)) { "P" (level) },
            None => span class={ "priority p" (level) } { "P" (level) },
        }
    }
}

/// A probability as a labelled meter with its percentage.
pub(super) fn confidence(value: Option<f64>, label: &str) -> Markup {
    match value {
        Some(p) => {
            let percent = format!("{:.0} %", p * 100.0);
            html! {
                span.confidence {
                    meter min="0" max="1" low="0.3" high="0.6" optimum="1" value=(format!("{p:.3}"))
                        aria-label={ (label) " " (percent) } {}
                    span.figure { (percent) }
                }
            }
        }
        None => html! { span.figure { "—" } },
    }
}

/// A button that POSTs `body` as JSON to `url` (the page's script does it with the session
/// cookie, then fetches the page again).
pub(super) fn post_button(label: &str, url: &str, body: &serde_json::Value) -> Markup {
    html! { button type="button" data-post=(url) data-body=(body.to_string()) { (label) } }
}

/// A word safe to use as a CSS class: letters, digits and `-` only.
pub(super) fn css_token(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_largest_whole_unit() {
        assert_eq!(age(-5), "0 s ago");
        assert_eq!(age(59_999), "59 s ago");
        assert_eq!(age(60_000), "1 min ago");
        assert_eq!(age(3 * 3_600_000 + 1), "3 h ago");
        assert_eq!(age(2 * 86_400_000), "2 d ago");
    }

    #[test]
    fn text_from_alerts_is_escaped_wherever_a_page_puts_it() {
        let markup = page(
            "<script>alert(1)</script>",
            Section::None,
            Some("/x\"onload=\"y"),
            html! { p { ("<img src=x onerror=alert(1)>") } (badge("\"><script>")) },
        )
        .into_string();
        assert!(!markup.contains("<script>alert"), "{markup}");
        assert!(!markup.contains("<img"), "{markup}");
        assert!(markup.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(markup.contains("data-live=\"/x&quot;onload=&quot;y\""));
        assert!(markup.contains("class=\"badge ---script-\""));
    }
}
