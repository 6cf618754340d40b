//! Errors: what is wrong with a change to the graph, and where in a document it is.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// Why a change to a [`Topology`](crate::Topology) was refused. The graph is unchanged.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TopologyError {
    /// A service or alias name is empty.
    #[error("name is empty")]
    EmptyName,
    /// A name has surrounding whitespace or control characters, or is too long.
    #[error(
        "name {0:?} is not allowed: names must not have surrounding whitespace or control characters and must be at most {max} bytes",
        max = crate::model::MAX_NAME_LEN
    )]
    InvalidName(String),
    /// A service with this name already exists.
    #[error("duplicate service {0:?}")]
    DuplicateService(String),
    /// No service has this name.
    #[error("unknown service {0:?}")]
    UnknownService(String),
    /// A dependency from a service to itself.
    #[error("service {0:?} cannot depend on itself")]
    SelfDependency(String),
    /// The same caller → callee edge twice.
    #[error("duplicate dependency {caller:?} -> {callee:?}")]
    DuplicateDependency {
        /// The caller.
        caller: String,
        /// The callee.
        callee: String,
    },
    /// No such caller → callee edge.
    #[error("unknown dependency {caller:?} -> {callee:?}")]
    UnknownDependency {
        /// The caller.
        caller: String,
        /// The callee.
        callee: String,
    },
    /// An alias that is another service's name or alias.
    #[error("alias {alias:?} is already used by service {owner:?}")]
    AliasConflict {
        /// The alias.
        alias: String,
        /// The service that already has this name or alias.
        owner: String,
    },
    /// A numeric attribute outside its range.
    #[error("{field} must be {expected}, got {value}")]
    InvalidAttribute {
        /// The attribute's field name.
        field: &'static str,
        /// The allowed range, in words.
        expected: &'static str,
        /// The value given.
        value: f64,
    },
}

/// One thing wrong with a document, and where.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the document, as a path: `dependencies[3].callee`. Empty for the whole document.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
    /// 1-based line in the source text, when the parser knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column in the source text, when the parser knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Problem {
    /// A problem at `path`, with no source position.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// A document that could not be read or is not a valid topology: every problem found.
///
/// Syntax and type errors stop the parser at the first one; semantic checks (duplicates, unknown
/// services, conflicting aliases) report all of them at once so a large file is fixed in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct DocumentError {
    /// At least one problem.
    pub problems: Vec<Problem>,
    /// True when the text is not YAML/JSON at all (as opposed to a document of the wrong shape
    /// or one that breaks a graph rule).
    pub syntax: bool,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid topology: {one}"),
            many => {
                write!(f, "invalid topology: {} problems", many.len())?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl DocumentError {
    /// The text could not be read as YAML/JSON.
    pub fn syntax(problem: Problem) -> Self {
        DocumentError {
            problems: vec![problem],
            syntax: true,
        }
    }

    /// The document breaks the schema or a graph rule.
    pub fn invalid(problems: Vec<Problem>) -> Self {
        DocumentError {
            problems,
            syntax: false,
        }
    }
}
