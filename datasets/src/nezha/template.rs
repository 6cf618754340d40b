//! A small log template miner: turns one log message into a stable key, so that lines printed by
//! the same statement count as one template whatever ids, numbers or payloads they carry.
//!
//! The key is the level plus the source location when the line names one (`INFO
//! t.s.TravelServiceImpl#372`, `WARN main.go:42`): a location is the most precise template a
//! logger gives away, and it survives message text that varies by request. Lines without a
//! location are keyed on the level plus their first [`MESSAGE_TOKENS`] tokens, with numbers, hex
//! ids, UUIDs, dates and quoted strings masked as [`MASK`]. Nothing here knows any system's class
//! or logger names.

use std::fmt;

/// How many message tokens key a line that names no source location: enough to tell statements
/// apart, few enough that free text later in the line does not split a template.
pub const MESSAGE_TOKENS: usize = 5;

/// What a masked token becomes.
pub const MASK: &str = "<*>";

/// How many leading tokens may precede the level (timestamps, dates, thread or process ids).
const LEVEL_SEARCH_TOKENS: usize = 4;

/// A log level, as far as a line states one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO` (also `NOTICE`).
    Info,
    /// `WARN` or `WARNING`.
    Warn,
    /// `ERROR` or `ERR`.
    Error,
    /// `FATAL`, `CRITICAL`, `PANIC` or `SEVERE`.
    Fatal,
}

impl Level {
    /// The canonical upper-case name, as used in template keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// Whether a line of this level reports a failure (`ERROR` or worse).
    pub fn is_error(self) -> bool {
        self >= Level::Error
    }

    fn from_word(word: &str) -> Option<Level> {
        let level = match word.to_ascii_uppercase().as_str() {
            "TRACE" => Level::Trace,
            "DEBUG" => Level::Debug,
            "INFO" | "NOTICE" => Level::Info,
            "WARN" | "WARNING" => Level::Warn,
            "ERROR" | "ERR" => Level::Error,
            "FATAL" | "CRITICAL" | "PANIC" | "SEVERE" => Level::Fatal,
            _ => return None,
        };
        Some(level)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The template of one log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    /// The level the line states, if any.
    pub level: Option<Level>,
    /// The source location (`t.s.TravelServiceImpl#372`), if the line names one right after its
    /// level.
    pub location: Option<String>,
    /// The key: level and location, or level and the first masked message tokens.
    pub key: String,
}

/// Mines the template of one message.
pub fn mine(message: &str) -> Template {
    let tokens: Vec<&str> = message.split_whitespace().collect();
    let found = tokens
        .iter()
        .take(LEVEL_SEARCH_TOKENS)
        .enumerate()
        .find_map(|(i, token)| level_of_token(token).map(|level| (i, level)));
    let (rest, level) = match found {
        Some((i, level)) => (&tokens[i + 1..], Some(level)),
        None => (&tokens[..], None),
    };
    let location = if level.is_some() {
        location_after_level(rest)
    } else {
        None
    };
    let body = match &location {
        Some(location) => location.clone(),
        None => masked_prefix(rest),
    };
    let key = match level {
        Some(level) if body.is_empty() => level.as_str().to_string(),
        Some(level) => format!("{level} {body}"),
        None => body,
    };
    Template {
        level,
        location,
        key,
    }
}

/// A level word alone (`INFO`), bracketed (`[info]`), with a colon (`ERROR:`) or as a `level=`
/// field. A bare word must be upper case: lower-case `info` is too common in prose.
fn level_of_token(token: &str) -> Option<Level> {
    if let Some(value) = token.strip_prefix("level=") {
        return Level::from_word(value.trim_matches('"'));
    }
    let bracketed = token.starts_with('[') || token.ends_with(':');
    let word = token.trim_matches(|c| matches!(c, '[' | ']' | ':'));
    if !bracketed && word.chars().any(|c| c.is_ascii_lowercase()) {
        return None;
    }
    Level::from_word(word)
}

/// The source location right after the level, allowing one bracketed token (a thread name) in
/// between.
fn location_after_level(rest: &[&str]) -> Option<String> {
    let mut candidates = rest.iter().take(2);
    let first = candidates.next()?;
    if let Some(location) = as_location(first) {
        return Some(location.to_string());
    }
    let thread = first.starts_with('[') && first.ends_with(']');
    if !thread {
        return None;
    }
    candidates
        .next()
        .and_then(|token| as_location(token))
        .map(str::to_string)
}

/// `name#123` or `name:123` (optionally in parentheses or brackets): a name with at least one
/// letter, no path or URL separator, then a line number.
fn as_location(token: &str) -> Option<&str> {
    let token = if token.starts_with('(') || token.starts_with('[') {
        token.trim_matches(|c| matches!(c, '(' | ')' | '[' | ']'))
    } else {
        token
    };
    let token = token.trim_end_matches(':');
    let split = token.rfind(['#', ':'])?;
    let (name, line) = (&token[..split], &token[split + 1..]);
    let is_line = !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit());
    let is_name = name.bytes().any(|b| b.is_ascii_alphabetic())
        && !name.contains('/')
        && !name.contains("://");
    (is_line && is_name).then_some(token)
}

/// The first [`MESSAGE_TOKENS`] tokens, quoted strings and variable tokens masked.
fn masked_prefix(tokens: &[&str]) -> String {
    let text = tokens.join(" ");
    let unquoted = mask_quoted(&text);
    unquoted
        .split_whitespace()
        .take(MESSAGE_TOKENS)
        .map(mask_token)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces `"..."` and `'...'` spans by [`MASK`]. A quote right after a letter or digit is an
/// apostrophe (`don't`), not an opening quote; an unclosed quote masks nothing.
fn mask_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let opens = matches!(c, '"' | '\'') && !previous.is_some_and(char::is_alphanumeric);
        if opens && let Some(end) = rest[1..].find(c) {
            out.push_str(MASK);
            rest = &rest[end + 2..];
            previous = Some(c);
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        previous = Some(c);
    }
    out
}

/// Masks a token that varies between lines of one statement: anything holding a digit
/// (numbers, times, dates, UUIDs, most hex ids, addresses) or a long hex run. In `key=value`
/// only the value is masked, since the key names what varies.
fn mask_token(token: &str) -> String {
    if token == MASK {
        return token.to_string();
    }
    if let Some((key, value)) = token.split_once('=')
        && !key.is_empty()
        && !is_variable(key)
    {
        return if is_variable(value) {
            format!("{key}={MASK}")
        } else {
            token.to_string()
        };
    }
    if is_variable(token) {
        MASK.to_string()
    } else {
        token.to_string()
    }
}

fn is_variable(token: &str) -> bool {
    let core = token.trim_matches(|c: char| !c.is_alphanumeric());
    core.bytes().any(|b| b.is_ascii_digit())
        || (core.len() >= 8 && core.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nezha_template_keys_on_level_and_location() {
        let line = "16:44:10.485 INFO  t.s.TravelServiceImpl#372 TraceID: 3f2a SpanID: 9c1d \
                    [getTickets][Get tickets][Trip: D1345]";
        let template = mine(line);
        assert_eq!(template.level, Some(Level::Info));
        assert_eq!(
            template.location.as_deref(),
            Some("t.s.TravelServiceImpl#372")
        );
        assert_eq!(template.key, "INFO t.s.TravelServiceImpl#372");
    }

    #[test]
    fn location_with_brackets_in_the_logger_name_is_kept_whole() {
        let line = "17:20:29.299 ERROR o.a.c.c.C.[.[.[.[dispatcherServlet]#175 TraceID: x \
                    Servlet.service() threw exception";
        assert_eq!(
            mine(line).key,
            "ERROR o.a.c.c.C.[.[.[.[dispatcherServlet]#175"
        );
    }

    #[test]
    fn other_location_styles_are_recognised() {
        assert_eq!(
            mine("2024-01-01T00:00:00Z WARN main.go:42 slow request").key,
            "WARN main.go:42"
        );
        assert_eq!(
            mine("12:00:01 ERROR [worker-3] (Handler.java:88) boom").key,
            "ERROR Handler.java:88"
        );
        assert_eq!(
            mine("[ERROR] app.py:17: failed").location.as_deref(),
            Some("app.py:17")
        );
    }

    #[test]
    fn lines_without_location_key_on_masked_leading_tokens() {
        let a = mine("10:00:00 WARN retry 3 of 5 for order 8f14e45f-ceea-467f-a0e6-1f0b3c9c2d1e");
        let b = mine("10:00:09 WARN retry 1 of 5 for order 0c9d2a11-0000-4000-8000-00000000000a");
        assert_eq!(a.location, None);
        assert_eq!(a.key, "WARN retry <*> of <*> for");
        assert_eq!(a.key, b.key);
    }

    #[test]
    fn masking_covers_numbers_hex_uuids_dates_and_quotes() {
        let template = mine(
            "INFO user \"Jane Doe\" id=42 at 2023-01-29 deadbeefcafe 8f14e45f-ceea-467f-a0e6-1f0b3c9c2d1e",
        );
        assert_eq!(template.key, "INFO user <*> id=<*> at <*>");
        assert_eq!(
            mine("INFO cache deadbeefcafe miss").key,
            "INFO cache <*> miss"
        );
        assert_eq!(mine("INFO can't connect").key, "INFO can't connect");
        assert_eq!(
            mine("INFO order 'A-17' placed").key,
            "INFO order <*> placed"
        );
    }

    #[test]
    fn levels_are_read_in_their_common_spellings() {
        assert_eq!(mine("ERROR: disk full").level, Some(Level::Error));
        assert_eq!(mine("[warning] low memory").level, Some(Level::Warn));
        assert_eq!(
            mine("time=1 level=error msg=\"boom\"").level,
            Some(Level::Error)
        );
        assert_eq!(mine("FATAL out of memory").level, Some(Level::Fatal));
        assert!(Level::Fatal.is_error() && Level::Error.is_error());
        assert!(!Level::Warn.is_error());
    }

    #[test]
    fn lower_case_words_are_not_levels_and_unlevelled_lines_still_get_a_key() {
        let template = mine("info about 12 items");
        assert_eq!(template.level, None);
        assert_eq!(template.key, "info about <*> items");
        assert_eq!(mine("").key, "");
        assert_eq!(mine("ERROR").key, "ERROR");
    }

    #[test]
    fn urls_and_addresses_are_not_locations() {
        assert_eq!(mine("INFO http://svc:8080 up").location, None);
        assert_eq!(mine("INFO 10.0.0.1:8080 up").location, None);
        assert_eq!(mine("INFO 10.0.0.1:8080 up").key, "INFO <*> up");
    }
}
