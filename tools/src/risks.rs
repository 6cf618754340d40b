//! `rootcause risks`: the risks of an estate, as a table or JSON: from a running service
//! (`--url`: `GET /api/v1/risks`), or computed here from a topology and, optionally, a fault
//! history, its change events and a configuration's `[risk]` and `[calendar]` (the same pure
//! code the service runs); and `rootcause report`: a running service's stability report
//! (`GET /api/v1/reports/stability`).

use std::path::PathBuf;

use anyhow::Context;
use rootcause::config::{Config, Overrides};
use rootcause::live_topology::TopologySpec;
use rootcause::risk::calendar::Calendar;
use rootcause::risk::history::{ChangeRecord, Fault, analyse};
use rootcause::risk::overview::{HistorySnapshot, overview};
use rootcause_models::history::HistoryRecord;
use rootcause_topology::bundled;
use serde_json::Value;

/// Options of `rootcause risks`.
#[derive(Debug, clap::Args)]
pub struct RisksArgs {
    /// Ask a running service (its current topology, fault history and calendar) instead.
    #[arg(long, value_name = "URL", conflicts_with_all = ["topology", "history", "changes", "config"])]
    pub url: Option<String>,
    /// Topology: a YAML/JSON file or a bundled example name.
    #[arg(long, value_name = "FILE|NAME", default_value = bundled::DEFAULT)]
    pub topology: String,
    /// Fault history: `HistoryRecord` JSON lines (as `rootcause history import` takes; the
    /// outcome's root cause, fault type, action and start time are read).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Change events: a JSON array as `POST /api/v1/changes` takes (`service`, `at`).
    #[arg(long, value_name = "FILE")]
    pub changes: Option<PathBuf>,
    /// A configuration file whose `[risk]` and `[calendar]` apply (defaults otherwise).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// RFC 3339 time to read the risks at (default: now).
    #[arg(long)]
    pub at: Option<String>,
    /// Services listed by risk score at most.
    #[arg(long, default_value_t = 15)]
    pub limit: usize,
    /// Print JSON (what `GET /api/v1/risks` answers) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `rootcause risks`.
pub fn risks(args: &RisksArgs) -> anyhow::Result<()> {
    let overview = match &args.url {
        Some(url) => remote(args, url)?,
        None => local(args)?,
    };
    if args.json {
        println!("{overview:#}");
    } else {
        print!("{}", tables(&overview));
    }
    Ok(())
}

fn remote(args: &RisksArgs, url: &str) -> anyhow::Result<Value> {
    let client = crate::learning::client()?;
    let mut request = format!(
        "{}/api/v1/risks?limit={}",
        url.trim_end_matches('/'),
        args.limit.max(1)
    );
    if let Some(at) = &args.at {
        request.push_str(&format!("&at={}", at.replace('+', "%2B")));
    }
    crate::learning::runtime()?.block_on(async {
        crate::learning::json_of(client.get(request).send().await?, "the risks").await
    })
}

fn local(args: &RisksArgs) -> anyhow::Result<Value> {
    let config = Config::load(args.config.as_deref(), &Overrides::default())?;
    let at = match &args.at {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("--at {text:?} is not an RFC 3339 time"))?
            .timestamp_millis(),
        None => chrono::Utc::now().timestamp_millis(),
    };
    let topology = TopologySpec::parse(&args.topology)?.load()?;
    let structural = topology.structural_risks(&topology.single_points_of_failure());
    let faults = match &args.history {
        Some(path) => read_faults(path)?,
        None => Vec::new(),
    };
    let changes = match &args.changes {
        Some(path) => read_changes(path)?,
        None => Vec::new(),
    };
    let read = args.history.is_some() || args.changes.is_some();
    let history = HistorySnapshot {
        computed_at: read.then_some(at),
        analysis: analyse(&faults, &changes, at, &config.risk),
    };
    let calendar = Calendar::new(config.calendar.clone());
    let overview = overview(0, &structural, &history, &calendar, at, args.limit.max(1));
    Ok(serde_json::to_value(overview)?)
}

fn read_faults(path: &std::path::Path) -> anyhow::Result<Vec<Fault>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut faults = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: HistoryRecord = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", path.display(), index + 1))?;
        if matches!(record.outcome.root_cause.as_str(), "external" | "unknown") {
            continue;
        }
        faults.push(Fault {
            service: record.outcome.root_cause,
            fault_type: record.outcome.fault_type,
            at: record.started_at * 1000,
            action: record.outcome.action,
            worked: record.outcome.worked,
        });
    }
    Ok(faults)
}

fn read_changes(path: &std::path::Path) -> anyhow::Result<Vec<ChangeRecord>> {
    #[derive(serde::Deserialize)]
    struct Change {
        service: String,
        #[serde(alias = "time")]
        at: String,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let list: Vec<Change> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON array of change events", path.display()))?;
    list.into_iter()
        .enumerate()
        .map(|(i, c)| {
            let at = chrono::DateTime::parse_from_rfc3339(&c.at)
                .with_context(|| format!("{}: [{i}].at is not an RFC 3339 time", path.display()))?;
            Ok(ChangeRecord {
                service: c.service,
                at: at.timestamp_millis(),
            })
        })
        .collect()
}

/// The overview (the JSON of `GET /api/v1/risks`) as tables: every risk, services by score
/// with its parts, the windows.
fn tables(o: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let number = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut out = String::new();
    match o["history_read_at"].as_str() {
        Some(at) => out.push_str(&format!(
            "Fault history as of {at}: {} faults, {} changes, change failure rate {}\n\n",
            o["faults"],
            o["changes"],
            o["change_failure_rate"]
                .as_f64()
                .map_or("-".to_owned(), |r| format!("{r:.2}"))
        )),
        None => out.push_str("No fault history read: structural risks only.\n\n"),
    }
    out.push_str(&format!(
        "{:<9} {:<24} {:<9} {:>5}  {}\n",
        "SOURCE", "KIND", "SEVERITY", "SCORE", "WHY"
    ));
    let items = o["items"].as_array().cloned().unwrap_or_default();
    for r in &items {
        out.push_str(&format!(
            "{:<9} {:<24} {:<9} {:>5.2}  {}\n",
            text(&r["source"]),
            text(&r["kind"]),
            text(&r["severity"]),
            number(&r["score"]),
            text(&r["why"])
        ));
    }
    if items.is_empty() {
        out.push_str("(none)\n");
    }
    out.push_str(&format!(
        "\n{:<28} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6}  {}\n",
        "SERVICE", "SCORE", "STRUCT", "TREND", "RECUR", "CHANGE", "ACTION", "WHY"
    ));
    for s in o["services"].as_array().into_iter().flatten() {
        let p = &s["parts"];
        let reasons: Vec<String> = s["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(&text)
            .collect();
        out.push_str(&format!(
            "{:<28} {:>5.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2}  {}\n",
            text(&s["service"]),
            number(&s["score"]),
            number(&p["structural"]),
            number(&p["fault_trend"]),
            number(&p["recurrence"]),
            number(&p["change_failure"]),
            number(&p["failing_actions"]),
            reasons.join("; ")
        ));
    }
    for w in o["open_windows"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\nOpen now: {} ({}, from {} local)\n",
            text(&w["name"]),
            text(&w["kind"]),
            text(&w["local_start"])
        ));
    }
    match o["next_window"].as_object() {
        None => out.push_str("\nNo business calendar ([calendar] in the configuration).\n"),
        Some(next) => {
            let w = &next["window"];
            let start = chrono::DateTime::from_timestamp_millis(w["start"].as_i64().unwrap_or(0))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            out.push_str(&format!(
                "\nNext window: {} ({}) at {} local, {start}\n",
                text(&w["name"]),
                text(&w["kind"]),
                text(&w["local_start"])
            ));
            let exposed = next["services"].as_array().cloned().unwrap_or_default();
            for e in &exposed {
                out.push_str(&format!(
                    "  {:.2}  {}\n",
                    number(&e["score"]),
                    text(&e["why"])
                ));
            }
            if exposed.is_empty() {
                out.push_str("  no service it concerns carries a medium or higher risk\n");
            }
        }
    }
    out
}

/// Options of `rootcause report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Where the service runs.
    #[command(flatten)]
    pub service: crate::learning::ServiceArgs,
    /// RFC 3339 start of the period (default: 30 days before its end).
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339 end of the period (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Print the JSON the service answers instead of a table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (`section,name,value`).
    #[arg(long)]
    pub csv: bool,
}

/// Runs `rootcause report`: the service's stability report (`GET /api/v1/reports/stability`).
pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let client = crate::learning::client()?;
    let base = args.service.url.trim_end_matches('/').to_owned();
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(since) = &args.since {
        query.push(("since", since));
    }
    if let Some(until) = &args.until {
        query.push(("until", until));
    }
    if args.csv {
        query.push(("format", "csv"));
    }
    crate::learning::runtime()?.block_on(async {
        // RFC 3339 times and the format need only `+` (a zone offset) escaped.
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B")))
            .collect();
        let request = client.get(format!(
            "{base}/api/v1/reports/stability?{}",
            query.join("&")
        ));
        if args.csv {
            let response = request.send().await?.error_for_status()?;
            print!("{}", response.text().await?);
            return Ok(());
        }
        let report =
            crate::learning::json_of(request.send().await?, "the stability report").await?;
        if args.json {
            println!("{report:#}");
        } else {
            print!("{}", report_table(&report));
        }
        Ok(())
    })
}

fn report_table(r: &serde_json::Value) -> String {
    let number = |v: &serde_json::Value, digits: usize| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
    };
    let minutes = |v: &serde_json::Value| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |s| format!("{:.1} min", s / 60.0))
    };
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("{name:<30} {value}\n"));
    line("incidents", number(&r["incidents"], 0));
    line("alerts", number(&r["alerts"], 0));
    line("noise reduction", number(&r["noise_reduction"], 3));
    line(
        "MTTA (mean / median)",
        format!(
            "{} / {} ({} incidents)",
            minutes(&r["mtta"]["mean_s"]),
            minutes(&r["mtta"]["median_s"]),
            r["mtta"]["count"]
        ),
    );
    line(
        "MTTR (mean / median)",
        format!(
            "{} / {} ({} incidents)",
            minutes(&r["mttr"]["mean_s"]),
            minutes(&r["mttr"]["median_s"]),
            r["mttr"]["count"]
        ),
    );
    line(
        "changes (failed)",
        format!("{} ({})", r["changes"], r["failed_changes"]),
    );
    line("change failure rate", number(&r["change_failure_rate"], 3));
    line(
        "top hypothesis AC@1 / AC@5 / Avg@5",
        format!(
            "{} / {} / {} of {} resolutions",
            number(&r["ac1"], 3),
            number(&r["ac5"], 3),
            number(&r["avg5"], 3),
            r["judged"]
        ),
    );
    line(
        "action success rate",
        format!(
            "{} of {}",
            number(&r["action_success_rate"], 3),
            r["actions_judged"]
        ),
    );
    for (title, key) in [
        ("incidents by service", "by_service"),
        ("incidents by team", "by_team"),
    ] {
        let list: Vec<String> = r[key]
            .as_array()
            .into_iter()
            .flatten()
            .take(10)
            .map(|c| {
                format!(
                    "{} {}",
                    c["name"].as_str().unwrap_or_default(),
                    c["incidents"]
                )
            })
            .collect();
        line(
            title,
            if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(", ")
            },
        );
    }
    out
}

/// Options of `rootcause history simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateHistoryArgs {
    /// Topology: a YAML/JSON file or a bundled example name.
    #[arg(long, value_name = "FILE|NAME", default_value = bundled::DEFAULT)]
    pub topology: String,
    /// Days of history.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// RFC 3339 end of the history (default: now).
    #[arg(long)]
    pub end: Option<String>,
    /// Random seed: the same options give the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Faults per service per week at the flat rate.
    #[arg(long, default_value_t = 0.3)]
    pub faults_per_week: f64,
    /// Changes per service per week.
    #[arg(long, default_value_t = 1.0)]
    pub changes_per_week: f64,
    /// Services whose fault rate rises (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub rising: Vec<String>,
    /// Services whose changes often cause faults (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub risky_changes: Vec<String>,
    /// An action that mostly fails (`restart`, `failover`, `scale_out`, `rollback`).
    #[arg(long)]
    pub failing_action: Option<String>,
    /// Output directory: `history.jsonl` (for `rootcause history import` and `risks
    /// --history`) and `changes.json` (for `POST /api/v1/changes` and `risks --changes`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `rootcause history simulate`: months of faults and changes with planted risks.
pub fn simulate_history(args: &SimulateHistoryArgs) -> anyhow::Result<()> {
    use rootcause_datasets::simulator::history::{HistoryPlan, generate};
    let topology = TopologySpec::parse(&args.topology)?.load()?;
    for service in args.rising.iter().chain(&args.risky_changes) {
        anyhow::ensure!(
            topology.service(service).is_some(),
            "{service:?} is not a service of the topology {}",
            args.topology
        );
    }
    let end = match &args.end {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("--end {text:?} is not an RFC 3339 time"))?
            .timestamp(),
        None => chrono::Utc::now().timestamp(),
    };
    let history = generate(
        &topology,
        &HistoryPlan {
            days: args.days,
            end,
            seed: args.seed,
            faults_per_week: args.faults_per_week,
            changes_per_week: args.changes_per_week,
            rising: args.rising.clone(),
            risky_changes: args.risky_changes.clone(),
            failing_action: args.failing_action.clone(),
        },
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut lines = String::new();
    for record in &history.records {
        lines.push_str(&serde_json::to_string(record)?);
        lines.push('\n');
    }
    std::fs::write(args.out.join("history.jsonl"), lines)?;
    let changes: Vec<Value> = history
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "service": c.service,
                "kind": c.kind,
                "description": c.description,
                "at": chrono::DateTime::from_timestamp(c.at, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
        })
        .collect();
    std::fs::write(
        args.out.join("changes.json"),
        serde_json::to_string_pretty(&changes)?,
    )?;
    eprintln!(
        "{} faults and {} changes over {} days written to {}",
        history.records.len(),
        history.changes.len(),
        args.days,
        args.out.display()
    );
    Ok(())
}
