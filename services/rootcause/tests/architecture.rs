//! The layout rules of the workspace, checked from the source text:
//!
//! - **no import cycles**: within each crate, the modules that name each other through
//!   `crate::` or `super::` paths form no cycle, both module by module (file by file) and
//!   between top-level modules (`config`, `store`, `ranking`, ...), so every part can be read,
//!   tested and replaced from the bottom up;
//! - **files of one job**: no source file outside tests is over 800 lines;
//! - **one test convention**: an inline `#[cfg(test)] mod tests { ... }` over 300 lines moves to
//!   `<module>/tests.rs`.
//!
//! Tests are left out of the import graph: a test module may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates of the workspace, by source directory.
const CRATES: [&str; 7] = [
    "topology/src",
    "models/src",
    "datasets/src",
    "services/correlation/src",
    "services/rootcause/src",
    "tools/src",
    "tests/src",
];

const MAX_LINES: usize = 800;
const MAX_INLINE_TEST_LINES: usize = 300;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, with its module path (`ranking::worker`; `` for the root).
fn modules(dir: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(dir).expect("under the directory");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts.len() == 1 && matches!(parts[0].as_str(), "lib" | "main") {
                parts.clear();
            }
            (parts.join("::"), path)
        })
        .collect()
}

/// Whether a module is test code: `tests`, `*_tests`, `proptests`, the `testing` helpers.
fn is_test_module(module: &str) -> bool {
    module.split("::").any(|part| {
        part == "tests" || part.ends_with("_tests") || part == "proptests" || part == "testing"
    })
}

/// The source before its first `#[cfg(test)]` module, without comments.
fn production_code(source: &str) -> String {
    let mut code = String::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| {
                let next = next.trim_start();
                next.starts_with("mod ") || next.contains(" mod ")
            })
        {
            break;
        }
        let without_comment = match line.find("//") {
            // `//` inside a string (a URL) is rare in paths of interest and harmless here.
            Some(at) => &line[..at],
            None => line,
        };
        code.push_str(without_comment);
        code.push('\n');
    }
    code
}

/// The paths a piece of code names after `crate::` or `super::`, with brace groups expanded
/// (`crate::{a::B, c}` names `a::B` and `c`); `super::` paths are made absolute from `module`.
fn named_paths(code: &str, module: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let (prefix, skip) = if rest.starts_with("crate::") {
            (Vec::new(), "crate::".len())
        } else if rest.starts_with("super::") {
            let mut base: Vec<String> = module
                .split("::")
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            let mut skip = 0;
            while code[at + skip..].starts_with("super::") {
                base.pop();
                skip += "super::".len();
            }
            (base, skip)
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        // Only where the keyword starts an identifier path.
        let starts_path =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        at += skip;
        if starts_path {
            let consumed = expand(&code[at..], prefix, &mut paths);
            at += consumed;
        }
    }
    paths
}

/// Reads one path (or brace group) at the start of `text` below `prefix`; returns the bytes read.
fn expand(text: &str, prefix: Vec<String>, paths: &mut Vec<Vec<String>>) -> usize {
    let mut segments = prefix;
    let mut at = 0;
    loop {
        let rest = &text[at..];
        if rest.starts_with('{') {
            // A group: split at top-level commas and expand each item.
            let mut depth = 0;
            let mut start = at + 1;
            for (offset, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let item = text[start..at + offset].trim();
                        if !item.is_empty() && item != "self" {
                            expand(item, segments.clone(), paths);
                        } else if item == "self" {
                            paths.push(segments.clone());
                        }
                        start = at + offset + 1;
                        if c == '}' {
                            return at + offset + 1;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            return text.len();
        }
        let identifier: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if identifier.is_empty() {
            paths.push(segments);
            return at;
        }
        at += identifier.len();
        segments.push(identifier);
        if text[at..].starts_with("::") {
            at += 2;
        } else {
            paths.push(segments);
            return at;
        }
    }
}

/// The module a path lands in: its longest prefix that is a module of the crate.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// A cycle of `graph`, if any, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let from = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if !marks.contains_key(node)
            && let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// The import graph of one crate: module by module, and between top-level modules.
fn import_graphs(
    dir: &Path,
) -> (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let modules = modules(dir);
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut by_module: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in &modules {
        if is_test_module(module) {
            continue;
        }
        let source = std::fs::read_to_string(path).expect("readable source file");
        for named in named_paths(&production_code(&source), module) {
            let Some(target) = resolve(&named, &names) else {
                continue;
            };
            if is_test_module(&target) || &target == module {
                continue;
            }
            // A module naming its own ancestor (`super::Item`) is how children share their
            // parent's types; the parent declares them, it does not import them.
            let ancestor = module.starts_with(&format!("{target}::")) || target.is_empty();
            if !ancestor {
                by_module
                    .entry(module.clone())
                    .or_default()
                    .insert(target.clone());
            }
            let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
            let (from, to) = (top(module), top(&target));
            if !from.is_empty() && !to.is_empty() && from != to {
                by_top.entry(from).or_default().insert(to);
            }
        }
    }
    (by_module, by_top)
}

#[test]
fn no_crate_has_an_import_cycle() {
    let mut problems = Vec::new();
    for krate in CRATES {
        let (by_module, by_top) = import_graphs(&workspace().join(krate));
        if let Some(cycle) = find_cycle(&by_top) {
            problems.push(format!("{krate}: top-level modules {}", cycle.join(" -> ")));
        }
        if let Some(cycle) = find_cycle(&by_module) {
            problems.push(format!("{krate}: modules {}", cycle.join(" -> ")));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_production_file_is_over_800_lines_and_no_inline_test_module_over_300() {
    let mut problems = Vec::new();
    for krate in CRATES {
        for (module, path) in modules(&workspace().join(krate)) {
            if is_test_module(&module) {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("readable source file");
            let lines: Vec<&str> = source.lines().collect();
            let tests_start = lines
                .iter()
                .position(|l| l.trim_start().starts_with("#[cfg(test)]") && !l.contains(';'));
            let inline_tests = tests_start
                .filter(|&at| {
                    lines
                        .get(at + 1)
                        .is_some_and(|next| next.trim_end().ends_with('{'))
                })
                .map_or(0, |at| lines.len() - at);
            let code = lines.len() - inline_tests;
            if code > MAX_LINES {
                problems.push(format!(
                    "{}: {code} lines of code (at most {MAX_LINES})",
                    path.display()
                ));
            }
            if inline_tests > MAX_INLINE_TEST_LINES {
                problems.push(format!(
                    "{}: an inline test module of {inline_tests} lines (over {MAX_INLINE_TEST_LINES}: \
                     move it to {module}/tests.rs)",
                    path.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "files over the limits:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_paths_groups_and_cycles() {
    let paths = named_paths(
        "use crate::{a::B, c::{d, e::F}};\nlet x = super::g::h();\nmy_crate::z();",
        "m::n",
    );
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(shown, ["a::B", "c::d", "c::e::F", "m::g::h"]);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["c".to_owned()].into()),
        ("c".to_owned(), ["a".to_owned()].into()),
    ]
    .into();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let acyclic: BTreeMap<String, BTreeSet<String>> =
        [("a".to_owned(), ["b".to_owned()].into())].into();
    assert!(find_cycle(&acyclic).is_none());
    assert_eq!(
        production_code("use crate::a; // crate::b\n#[cfg(test)]\nmod tests {\n crate::c\n}\n"),
        "use crate::a; \n"
    );
}
