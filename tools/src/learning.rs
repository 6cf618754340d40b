//! The learning commands of the CLI: `history import`, `train` against a running service, and
//! `models list|show|activate`.
//!
//! They talk to the service over its API (`--url`, default `http://127.0.0.1:8080`), so that the
//! service that ranks is the one whose registry changes. `history import` may also write into a
//! stopped service's database directly (without `--url`), which is how a new deployment is
//! seeded with past incidents before it first starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rootcause_models::history::HistoryRecord;
use serde_json::Value;

use crate::cases::FormatArg;
use rootcause::clock::Clock;
use rootcause::config::Config;
use rootcause::learning::import::{case_row, history_row, outcome_of};
use rootcause::live_topology::{LiveTopology, TopologySpec};
use rootcause::store::{NewHistory, Store};

/// Where the service runs, for commands that talk to it. With authentication on, put a token
/// in `ROOTCAUSE_TOKEN`.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// The rootcause service's base URL.
    #[arg(long, env = "ROOTCAUSE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// `rootcause history import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Format of PATH (jsonl: `HistoryRecord` lines, see `POST /api/v1/history`, posted or
    /// stored as they are; the dataset formats are converted to records first).
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// A JSON-lines file (`-`: standard input) or a dataset directory.
    pub path: PathBuf,
    /// Post to this running service instead of writing into the database directly
    /// [env: ROOTCAUSE_URL].
    #[arg(long, env = "ROOTCAUSE_URL")]
    pub url: Option<String>,
    /// Source name in the rows' keys (`import:<source>:<id>`); default: the format.
    #[arg(long)]
    pub source: Option<String>,
}

/// `rootcause models ...`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List every model version with its status and figures.
    List(ServiceArgs),
    /// Print one model version (JSON).
    Show {
        /// Registry id.
        id: i64,
        /// Where the service runs.
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Make a model version the active one (rollback: activate an older one).
    Activate {
        /// Registry id.
        id: i64,
        /// Recorded with the change.
        #[arg(long, default_value = "")]
        reason: String,
        /// Where the service runs.
        #[command(flatten)]
        service: ServiceArgs,
    },
}

/// Records per request when posting: well under the default body limit for simulated and
/// Nezha-sized records.
const RECORDS_PER_POST: usize = 50;

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// An HTTP client for the service; with `ROOTCAUSE_TOKEN` set, every request carries it as a
/// bearer token (an environment variable, not a flag: flags show in `ps`).
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("ROOTCAUSE_TOKEN")
        && !token.trim().is_empty()
    {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .context("ROOTCAUSE_TOKEN is not a valid header value")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .default_headers(headers)
        .build()?)
}

/// The JSON of a response, or an error quoting the service's error body.
pub(crate) async fn json_of(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or(text);
        bail!("{what}: HTTP {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: the answer is not JSON"))
}

/// `rootcause history import`.
pub fn import(args: &ImportArgs, config: &Config) -> anyhow::Result<()> {
    let source = args.source.clone().unwrap_or_else(|| args.format.name());
    match &args.url {
        Some(url) => import_remote(args, url, &source),
        None => import_local(args, config, &source),
    }
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_message(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// JSON lines of a file or standard input, numbered from 1.
fn read_lines(path: &Path) -> anyhow::Result<Vec<(usize, String)>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect())
}

/// The records of a dataset: its labelled cases, with their outcome.
fn dataset_records(format: FormatArg, path: &Path) -> anyhow::Result<Vec<HistoryRecord>> {
    let cases = load_dataset(format, path)?;
    Ok(cases
        .iter()
        .filter_map(|case| {
            Some(HistoryRecord::from_case(
                case,
                outcome_of(case.label.as_ref()?),
            ))
        })
        .collect())
}

fn load_dataset(
    format: FormatArg,
    path: &Path,
) -> anyhow::Result<Vec<rootcause_models::case::Case>> {
    let options = rootcause_datasets::LoadOptions::default();
    Ok(crate::cases::load(format, path, &options)?.0)
}

fn import_remote(args: &ImportArgs, url: &str, source: &str) -> anyhow::Result<()> {
    // Lines are posted as they are, so the service's errors name the file's own line numbers
    // within each batch; a dataset is converted to records first.
    let lines: Vec<String> = match args.format {
        FormatArg::Jsonl => read_lines(&args.path)?.into_iter().map(|l| l.1).collect(),
        format => dataset_records(format, &args.path)?
            .iter()
            .map(|r| serde_json::to_string(r).expect("records serialise"))
            .collect(),
    };
    if lines.is_empty() {
        bail!("no records in {}", args.path.display());
    }
    let client = client()?;
    // Source names are checked by the service: letters, digits, '-' and '_' need no escaping.
    let endpoint = format!(
        "{}/api/v1/history?source={source}",
        url.trim_end_matches('/')
    );
    let progress = bar(lines.len(), "importing");
    let (mut inserted, mut replaced) = (0, 0);
    runtime()?.block_on(async {
        for (batch, chunk) in lines.chunks(RECORDS_PER_POST).enumerate() {
            let body = chunk.join("\n");
            let response = client
                .post(&endpoint)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            let first = batch * RECORDS_PER_POST + 1;
            let receipt = json_of(response, &format!("records {first}.."))
                .await
                .with_context(|| format!("batch starting at record {first}"))?;
            inserted += receipt["inserted"].as_u64().unwrap_or(0);
            replaced += receipt["replaced"].as_u64().unwrap_or(0);
            progress.inc(chunk.len() as u64);
        }
        anyhow::Ok(())
    })?;
    progress.finish_and_clear();
    println!(
        "imported {} records into {url} (source {source}): {inserted} new, {replaced} replaced",
        lines.len()
    );
    Ok(())
}

fn import_local(args: &ImportArgs, config: &Config, source: &str) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let url = config.database_url();
        let store = Store::open(url.expose(), &config.store)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        let rows: Vec<NewHistory> = match args.format {
            FormatArg::Jsonl => {
                let configured = config
                    .topology
                    .as_deref()
                    .map(TopologySpec::parse)
                    .transpose()?;
                let live = LiveTopology::start(store.clone(), configured.as_ref(), Clock::system())
                    .await?;
                let graph = live.current().topology.clone();
                let lines = read_lines(&args.path)?;
                let progress = bar(lines.len(), "extracting evidence");
                let mut rows = Vec::with_capacity(lines.len());
                for (number, line) in lines {
                    let record: HistoryRecord = serde_json::from_str(&line)
                        .with_context(|| format!("{}:{number}", args.path.display()))?;
                    let row = history_row(record, source, Some(graph.clone()), config.ranking.hops)
                        .map_err(|e| anyhow::anyhow!("{}:{number}: {e}", args.path.display()))?;
                    rows.push(row);
                    progress.inc(1);
                }
                progress.finish_and_clear();
                rows
            }
            format => {
                let cases = load_dataset(format, &args.path)?;
                let progress = bar(cases.len(), "extracting evidence");
                let rows = cases
                    .iter()
                    .filter_map(|case| {
                        progress.inc(1);
                        case_row(case, source)
                    })
                    .collect();
                progress.finish_and_clear();
                rows
            }
        };
        if rows.is_empty() {
            bail!("no labelled records in {}", args.path.display());
        }
        let upsert = store
            .upsert_history(&rows, Clock::system().now_millis())
            .await?;
        store.close().await;
        println!(
            "imported {} records into {url} (source {source}): {} new, {} replaced",
            rows.len(),
            upsert.inserted,
            upsert.replaced
        );
        anyhow::Ok(())
    })
}

/// `rootcause train` against a running service: starts a job (`force`: promote whatever the
/// held-out comparison says; `folds` of its cross-validation; `alpha` its L2 penalty) and
/// follows it.
pub fn train(
    force: bool,
    folds: usize,
    (alpha, prior_alpha): (f64, f64),
    service: &ServiceArgs,
) -> anyhow::Result<()> {
    let base = service.url.trim_end_matches('/').to_owned();
    let client = client()?;
    runtime()?.block_on(async {
        let response = client
            .post(format!("{base}/api/v1/models/train"))
            .json(&serde_json::json!({
                "force": force,
                "folds": folds,
                "alpha": alpha,
                "prior_alpha": prior_alpha
            }))
            .send()
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        let job = json_of(response, "starting a training job").await?;
        let id = job["id"].as_i64().context("the job has no id")?;
        let progress = ProgressBar::new(100).with_message(format!("job {id}"));
        progress.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}% {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let job = loop {
            let response = client
                .get(format!("{base}/api/v1/models/jobs/{id}"))
                .send()
                .await?;
            let job = json_of(response, "reading the job").await?;
            progress.set_position((job["progress"].as_f64().unwrap_or(0.0) * 100.0) as u64);
            progress.set_message(format!(
                "job {id}: {}",
                job["stage"].as_str().unwrap_or_default()
            ));
            match job["status"].as_str() {
                Some("succeeded") | Some("failed") => break job,
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        };
        progress.finish_and_clear();
        if job["status"] == "failed" {
            bail!(
                "training job {id} failed: {}",
                job["error"].as_str().unwrap_or("no reason given")
            );
        }
        print_summary(id, &job["summary"]);
        anyhow::Ok(())
    })
}

fn figure(value: &Value, key: &str) -> String {
    value[key]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn print_summary(job: i64, summary: &Value) {
    let cv = &summary["cross_validation"];
    let chance = &summary["chance"];
    let history = &summary["history"];
    println!(
        "job {job}: model {} (version {}) {}: {}",
        summary["model"],
        summary["version"].as_str().unwrap_or("?"),
        if summary["promoted"] == true {
            "promoted"
        } else {
            "kept as a candidate"
        },
        summary["reason"].as_str().unwrap_or_default()
    );
    println!(
        "history: {} training cases, {} held out, {} unusable, {} stale rows",
        history["training_cases"],
        history["held_out_cases"],
        history["unusable_cases"],
        history["stale_rows"]
    );
    println!(
        "cross-validation by case: AC@1 {} AC@3 {} AC@5 {} Avg@5 {} (chance {} / {} / {} / {})",
        figure(cv, "ac1"),
        figure(cv, "ac3"),
        figure(cv, "ac5"),
        figure(cv, "avg5"),
        figure(chance, "ac1"),
        figure(chance, "ac3"),
        figure(chance, "ac5"),
        figure(chance, "avg5"),
    );
    let held = &summary["held_out"];
    if held.is_object() {
        println!(
            "held out ({} cases): candidate AC@1 {} Avg@5 {}; active {} AC@1 {} Avg@5 {}; chance AC@1 {}",
            held["cases"],
            figure(&held["candidate"], "ac1"),
            figure(&held["candidate"], "avg5"),
            held["active_model"].as_str().unwrap_or("?"),
            figure(&held["active"], "ac1"),
            figure(&held["active"], "avg5"),
            figure(&held["chance"], "ac1"),
        );
    }
}

/// `rootcause models ...`.
pub fn models(command: &ModelsCommand) -> anyhow::Result<()> {
    let client = client()?;
    runtime()?.block_on(async {
        match command {
            ModelsCommand::List(service) => {
                let base = service.url.trim_end_matches('/');
                let list = json_of(
                    client.get(format!("{base}/api/v1/models")).send().await?,
                    "listing models",
                )
                .await?;
                println!(
                    "{:>4}  {:<9}  {:<12}  {:<9}  {:>6}  {:>6}  {:>13}  REASON",
                    "ID", "STATUS", "VERSION", "SOURCE", "CV@1", "AVG@5", "HELD-OUT@1"
                );
                for m in list["models"].as_array().into_iter().flatten() {
                    let f = &m["figures"];
                    let cv = &f["cross_validation"]["overall"];
                    let held = &f["held_out"];
                    let held_text = if held.is_object() {
                        format!(
                            "{} vs {}",
                            figure(&held["candidate"], "ac1"),
                            figure(&held["active"], "ac1")
                        )
                    } else {
                        "-".to_owned()
                    };
                    println!(
                        "{:>4}  {:<9}  {:<12}  {:<9}  {:>6}  {:>6}  {:>13}  {}",
                        m["id"].as_i64().unwrap_or_default(),
                        m["status"].as_str().unwrap_or("?"),
                        m["version"].as_str().unwrap_or("?"),
                        m["source"].as_str().unwrap_or("?"),
                        figure(cv, "ac1"),
                        figure(cv, "avg5"),
                        held_text,
                        m["reason"].as_str().unwrap_or_default()
                    );
                }
            }
            ModelsCommand::Show { id, service } => {
                let base = service.url.trim_end_matches('/');
                let model = json_of(
                    client
                        .get(format!("{base}/api/v1/models/{id}"))
                        .send()
                        .await?,
                    "reading the model",
                )
                .await?;
                println!("{}", serde_json::to_string_pretty(&model)?);
            }
            ModelsCommand::Activate {
                id,
                reason,
                service,
            } => {
                let base = service.url.trim_end_matches('/');
                let model = json_of(
                    client
                        .post(format!("{base}/api/v1/models/{id}/activate"))
                        .json(&serde_json::json!({"reason": reason}))
                        .send()
                        .await?,
                    "activating the model",
                )
                .await?;
                println!(
                    "model {} (version {}) is active",
                    model["id"],
                    model["version"].as_str().unwrap_or("?")
                );
            }
        }
        anyhow::Ok(())
    })
}
