//! The README's quick tour, run as written: the first shell block under "## Quick tour", command
//! by command in one shell, against the real binary on a fresh store, each response checked
//! against what the README shows.
//!
//! The commands are not edited. A `curl` function in the shell sends them to the test's server
//! instead of `localhost:8080` and appends the status code to each answer. A comment that starts
//! with a status (`# 202 ...`) or a JSON object checks the command before it: the status must be
//! that one, and the object's fields must be in the answer (objects by key, arrays element by
//! element from the first, values equal). A command without such a check must answer below 400.

use std::process::Command;

use rootcause_e2e::{Server, ServerOptions, workspace_root};
use serde_json::Value;

/// One command of the tour and what the README says it answers.
#[derive(Debug)]
struct Step {
    command: String,
    status: Option<u16>,
    body: Option<Value>,
}

/// The first ```sh block after the "## Quick tour" heading.
fn quick_tour(readme: &str) -> &str {
    let section = &readme[readme.find("## Quick tour").expect("a Quick tour section")..];
    let start = section.find("```sh\n").expect("a shell block in the tour") + "```sh\n".len();
    let end = section[start..].find("\n```").expect("the block ends");
    &section[start..start + end]
}

/// Where an unquoted ` #` starts a comment in `text`, if it does; `quote` carries the quoting
/// state from the lines before.
fn comment_start(text: &str, quote: &mut Option<char>) -> Option<usize> {
    let mut previous = ' ';
    for (at, c) in text.char_indices() {
        match (*quote, c) {
            (None, '\'' | '"') => *quote = Some(c),
            (Some(open), _) if c == open => *quote = None,
            (None, '#') if previous.is_whitespace() => return Some(at),
            _ => {}
        }
        previous = c;
    }
    None
}

/// A status and a JSON object from the text of a comment (`202 {...}`, `{...}`, `201, ...`).
fn expectation(comment: &str) -> (Option<u16>, Option<String>) {
    let comment = comment.trim();
    let digits: String = comment.chars().take_while(char::is_ascii_digit).collect();
    let status = (digits.len() == 3).then(|| digits.parse().expect("three digits"));
    let rest = comment[digits.len()..].trim_start_matches([',', ' ']);
    let json = (rest.starts_with('{') && (status.is_some() || comment.starts_with('{')))
        .then(|| rest.to_owned());
    (status, json)
}

/// The commands of the block, with their checks.
fn steps(block: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut pending_json: Option<String> = None;
    let mut command = String::new();
    let mut quote = None;
    let finish = |steps: &mut Vec<Step>, json: &mut Option<String>| {
        if let (Some(text), Some(step)) = (json.take(), steps.last_mut()) {
            step.body = Some(
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("the README shows invalid JSON ({e}): {text}")),
            );
        }
    };
    for line in block.lines() {
        let trimmed = line.trim_start();
        if command.is_empty() && quote.is_none() {
            if trimmed.is_empty() {
                finish(&mut steps, &mut pending_json);
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                // A check below a command, or the continuation of one (`#      "problems":...`).
                if let Some(json) = pending_json.as_mut()
                    && comment.starts_with("  ")
                {
                    json.push_str(comment.trim());
                    continue;
                }
                finish(&mut steps, &mut pending_json);
                let (status, json) = expectation(comment);
                if let Some(step) = steps.last_mut()
                    && (status.is_some() || json.is_some())
                    && step.status.is_none()
                {
                    step.status = status;
                    pending_json = json;
                }
                continue;
            }
            finish(&mut steps, &mut pending_json);
        }
        let comment = comment_start(line, &mut quote);
        let code = comment.map_or(line, |at| &line[..at]);
        command.push_str(code.trim_end());
        command.push('\n');
        let continued = code.trim_end().ends_with('\\') || quote.is_some();
        if !continued {
            let (status, json) = comment.map_or((None, None), |at| expectation(&line[at + 1..]));
            steps.push(Step {
                command: std::mem::take(&mut command),
                status,
                body: None,
            });
            pending_json = json;
        }
    }
    finish(&mut steps, &mut pending_json);
    steps
}

/// Whether `actual` holds everything `expected` shows.
fn holds(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|found| holds(value, found))),
        (Value::Array(want), Value::Array(have)) => {
            want.len() <= have.len() && want.iter().zip(have).all(|(w, h)| holds(w, h))
        }
        _ => expected == actual,
    }
}

#[tokio::test]
async fn the_readme_quick_tour_runs_as_written_and_answers_what_it_shows() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let steps = steps(quick_tour(&readme));
    assert!(
        steps.len() >= 20,
        "the tour has {} commands: {steps:#?}",
        steps.len()
    );
    assert!(
        steps.iter().filter(|s| s.body.is_some()).count() >= 5,
        "the tour shows few responses: {steps:#?}"
    );
    let server = Server::start(ServerOptions::default()).await;
    let address = server.url.trim_start_matches("http://").to_owned();
    // One shell for the whole tour, as a reader's terminal: variables carry over.
    let mut script = String::from(
        "curl() { command curl -w '\\n%{http_code}' \"${@//localhost:8080/$RC_ADDRESS}\"; }\n",
    );
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&format!(
            "printf '\\n::step {i}\\n'\n{}printf '\\n::exit %s\\n' \"$?\"\n",
            step.command
        ));
    }
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env("RC_ADDRESS", &address)
            .current_dir(workspace_root())
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut failures = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let marker = format!("\n::step {i}\n");
        let start = stdout.find(&marker).map(|at| at + marker.len());
        let Some(start) = start else {
            failures.push(format!("step {i} never ran: {}", step.command));
            continue;
        };
        let end = stdout[start..]
            .find("\n::exit ")
            .map_or(stdout.len(), |at| start + at);
        let answer = stdout[start..end].trim_end();
        let exit: i32 = stdout[end..]
            .strip_prefix("\n::exit ")
            .and_then(|rest| rest.lines().next())
            .and_then(|code| code.trim().parse().ok())
            .unwrap_or(-1);
        if !step.command.contains("curl") {
            if exit != 0 {
                failures.push(format!("step {i} exited {exit}: {}", step.command));
            }
            continue;
        }
        // --max-time on a live stream ends it with curl's timeout status, 28.
        let streaming = step.command.contains("--max-time") && exit == 28;
        let (body, status) = answer.rsplit_once('\n').unwrap_or(("", answer));
        let status: u16 = status.trim().parse().unwrap_or(0);
        let problem = if exit != 0 && !streaming {
            Some(format!("curl exited {exit}"))
        } else if let Some(want) = step.status
            && status != want
        {
            Some(format!("answered {status}, the README shows {want}"))
        } else if step.status.is_none() && !(200..400).contains(&status) {
            Some(format!("answered {status}"))
        } else if let Some(want) = &step.body {
            match serde_json::from_str::<Value>(body) {
                Ok(have) if holds(want, &have) => None,
                Ok(_) => Some(format!("the answer lacks what the README shows: {want}")),
                Err(e) => Some(format!("the answer is not JSON ({e})")),
            }
        } else {
            None
        };
        if let Some(problem) = problem {
            let shown: String = body.chars().take(600).collect();
            failures.push(format!(
                "step {i}: {problem}\n  {}  -> {shown}",
                step.command
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the quick tour does not run as written:\n{}\nstderr: {}\nserver log: {}",
        failures.join("\n"),
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

#[test]
fn the_tour_reader_splits_commands_and_reads_their_checks() {
    let block = "curl -s a   # {\"status\":\"ready\"}\n\
                 curl -s b -d '{\"x\": [\n  1]}'\n\
                 # 202 {\"received\":3,\n\
                 #      \"new\":3}\n\
                 now=$(date +%s)\n\
                 curl -s c \\\n     -d 'y'  # 201, a version\n\
                 curl -s d                   # prose only\n";
    let steps = steps(block);
    assert_eq!(steps.len(), 5, "{steps:#?}");
    assert_eq!(steps[0].body, Some(serde_json::json!({"status": "ready"})));
    assert_eq!(steps[1].status, Some(202));
    assert_eq!(
        steps[1].body,
        Some(serde_json::json!({"received": 3, "new": 3}))
    );
    assert!(steps[1].command.contains("1]}'"));
    assert_eq!(steps[2].command, "now=$(date +%s)\n");
    assert_eq!(steps[3].status, Some(201));
    assert!(steps[3].body.is_none());
    assert!(steps[4].status.is_none() && steps[4].body.is_none());
    assert!(holds(
        &serde_json::json!({"a": [{"b": 1}]}),
        &serde_json::json!({"a": [{"b": 1, "c": 2}, {"b": 3}], "d": 4})
    ));
    assert!(!holds(
        &serde_json::json!({"a": [1, 2]}),
        &serde_json::json!({"a": [1]})
    ));
}
