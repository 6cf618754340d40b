//! Reading and writing topology documents (YAML and JSON) with errors that say where.

use std::path::Path;

use crate::error::{DocumentError, Problem};
use crate::model::TopologyDocument;

/// The two document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
}

impl Format {
    /// The format a file name implies: `.json` is JSON, anything else is read as YAML (which also
    /// accepts most JSON).
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Parses a document without checking it against the graph rules (see
/// [`Topology::from_document`](crate::Topology::from_document) for those).
pub fn parse(text: &str, format: Format) -> Result<TopologyDocument, DocumentError> {
    let document = match format {
        Format::Json => parse_json(text)?,
        Format::Yaml => parse_yaml(text)?,
    };
    let value = serde_json::to_value(&document).expect("a topology document always serializes");
    match nul_path(&value) {
        Some(path) => Err(DocumentError::invalid(vec![Problem::at(
            path,
            "must not contain NUL characters",
        )])),
        None => Ok(document),
    }
}

/// The path (`services[2].name`, `labels.team`) of the first string or key holding a NUL
/// character, if any. PostgreSQL's text type cannot store NUL, so no document, alert or event
/// with one is accepted on either engine.
pub fn nul_path(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &mut String) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(fields) => fields.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\0"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then_some(path)
}

fn parse_json(text: &str) -> Result<TopologyDocument, DocumentError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let document: TopologyDocument =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = display_path(error.path());
            let inner = error.into_inner();
            let message = strip_suffix_owned(
                inner.to_string(),
                &format!(" at line {} column {}", inner.line(), inner.column()),
            );
            let problem = Problem {
                path,
                message,
                line: Some(inner.line()),
                column: Some(inner.column()),
            };
            match inner.classify() {
                serde_json::error::Category::Data => DocumentError::invalid(vec![problem]),
                _ => DocumentError::syntax(problem),
            }
        })?;
    deserializer.end().map_err(|inner| {
        DocumentError::syntax(Problem {
            path: String::new(),
            message: "trailing characters after the document".to_owned(),
            line: Some(inner.line()),
            column: Some(inner.column()),
        })
    })?;
    Ok(document)
}

fn parse_yaml(text: &str) -> Result<TopologyDocument, DocumentError> {
    if text.trim().is_empty() {
        return Err(DocumentError::syntax(Problem::at("", "document is empty")));
    }
    let deserializer = yaml_serde::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = display_path(error.path());
        let inner = error.into_inner();
        let location = inner.location();
        // The YAML library puts the path in front and the position behind its message; we report
        // both separately, so take them out of the words.
        let mut message = inner.to_string();
        if let Some(location) = &location {
            message = strip_suffix_owned(
                message,
                &format!(" at line {} column {}", location.line(), location.column()),
            );
        }
        if let Some(rest) = message.strip_prefix(&format!("{path}: ")) {
            message = rest.to_owned();
        }
        let problem = Problem {
            path,
            message,
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
        };
        // Text that is valid YAML but the wrong shape is a document error, not a syntax error.
        if yaml_serde::from_str::<yaml_serde::Value>(text).is_ok() {
            DocumentError::invalid(vec![problem])
        } else {
            DocumentError::syntax(problem)
        }
    })
}

/// Serializes a document as YAML.
pub fn to_yaml(document: &TopologyDocument) -> String {
    yaml_serde::to_string(document).expect("a topology document always serializes")
}

/// Serializes a document as pretty-printed JSON.
pub fn to_json(document: &TopologyDocument) -> String {
    serde_json::to_string_pretty(document).expect("a topology document always serializes")
}

/// `serde_path_to_error` writes `.` for the root; we write nothing.
fn display_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." { String::new() } else { text }
}

fn strip_suffix_owned(text: String, suffix: &str) -> String {
    match text.strip_suffix(suffix) {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_problem(result: Result<TopologyDocument, DocumentError>) -> Problem {
        let mut problems = result.expect_err("document should be rejected").problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.remove(0)
    }

    #[test]
    fn unknown_kind_in_yaml_names_the_path_and_line() {
        let text = "services:\n  - name: a\n    kind: service\n  - name: b\n    kind: db\n";
        let problem = only_problem(parse(text, Format::Yaml));
        assert_eq!(problem.path, "services[1].kind");
        assert!(
            problem.message.contains("unknown variant `db`"),
            "{problem}"
        );
        assert!(
            problem.message.contains("database"),
            "lists the kinds: {problem}"
        );
        assert_eq!(problem.line, Some(5));
    }

    #[test]
    fn a_nul_character_anywhere_is_refused_with_its_path() {
        // PostgreSQL answered 500 to a note with NUL in it; SQLite stored it silently.
        let yaml =
            "services:\n  - name: a\n    kind: service\n    labels:\n      note: \"x\\0y\"\n";
        let problem = only_problem(parse(yaml, Format::Yaml));
        assert_eq!(problem.path, "services[0].labels.note", "{problem}");
        let json =
            r#"{"services":[{"name":"a","kind":"service"},{"name":"b\u0000","kind":"service"}]}"#;
        assert_eq!(
            only_problem(parse(json, Format::Json)).path,
            "services[1].name"
        );
        assert!(
            parse(
                r#"{"services":[{"name":"a","kind":"service"}]}"#,
                Format::Json
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_kind_in_json_names_the_path() {
        let text = r#"{"services":[{"name":"a","kind":"cloud"}]}"#;
        let problem = only_problem(parse(text, Format::Json));
        assert_eq!(problem.path, "services[0].kind");
        assert!(
            problem.message.contains("unknown variant `cloud`"),
            "{problem}"
        );
        assert_eq!(problem.line, Some(1));
    }

    #[test]
    fn misspelt_field_is_rejected_with_its_path() {
        let text = "services:\n  - name: a\n    kind: service\n    criticallity: high\n";
        let problem = only_problem(parse(text, Format::Yaml));
        assert_eq!(problem.path, "services[0].criticallity");
        assert!(
            problem.message.contains("unknown field `criticallity`"),
            "{problem}"
        );
    }

    #[test]
    fn missing_name_is_reported() {
        let problem = only_problem(parse(r#"{"services":[{"kind":"cache"}]}"#, Format::Json));
        assert_eq!(problem.path, "services[0]");
        assert!(
            problem.message.contains("missing field `name`"),
            "{problem}"
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let error = parse("{\"services\": [", Format::Json).unwrap_err();
        assert!(error.syntax);
        assert_eq!(error.problems[0].line, Some(1));
        let error = parse("services: [a, b\n", Format::Yaml).unwrap_err();
        assert!(error.syntax);
        assert!(error.problems[0].line.is_some(), "{error}");
        let error = parse("{} {}", Format::Json).unwrap_err();
        assert!(error.syntax);
        assert!(error.problems[0].message.contains("trailing"), "{error}");
        // Well-formed text of the wrong shape is not a syntax error.
        assert!(!parse("services: 3\n", Format::Yaml).unwrap_err().syntax);
        assert!(!parse("{\"services\": 3}", Format::Json).unwrap_err().syntax);
    }

    #[test]
    fn empty_yaml_is_an_error_not_an_empty_topology() {
        let problem = only_problem(parse("  \n", Format::Yaml));
        assert!(problem.message.contains("empty"));
    }

    #[test]
    fn yaml_and_json_round_trip() {
        let text = "services:\n  - name: api\n    kind: gateway\n    team: edge\n    criticality: critical\n    aliases: [api-gw]\n    labels: {app: api}\n  - name: db\n    kind: database\ndependencies:\n  - caller: api\n    callee: db\n    protocol: sql\n    error_rate: 0.01\n    first_seen: 2026-01-02T03:04:05Z\n";
        let document = parse(text, Format::Yaml).unwrap();
        assert_eq!(parse(&to_yaml(&document), Format::Yaml).unwrap(), document);
        assert_eq!(parse(&to_json(&document), Format::Json).unwrap(), document);
        assert_eq!(document.dependencies[0].error_rate, Some(0.01));
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.JSON")), Format::Json);
        assert_eq!(Format::from_path(Path::new("a/b.yml")), Format::Yaml);
        assert_eq!(Format::from_path(Path::new("topology")), Format::Yaml);
    }
}
