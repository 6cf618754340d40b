//! The command line.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rootcause_topology::bundled;
use rootcause_topology::{Criticality, Format, Topology, to_json, to_yaml};

use crate::bench;
use crate::traces_import;
use crate::{datasets, eval, train};
use rootcause::config::{Config, LogFormat, Overrides};
use rootcause::live_topology::TopologySpec;
use rootcause::telemetry;
use rootcause::{Application, shutdown_signal};

/// rootcause: correlates alert storms into incidents across a service-dependency graph and ranks
/// their likely root causes.
#[derive(Debug, Parser)]
#[command(name = "rootcause", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (embedded SQLite and a bundled topology unless told otherwise).
    Serve(ServeArgs),
    /// Print the configuration `serve` would use (defaults, file, environment and flags merged).
    Config(ServeArgs),
    /// Check and inspect topology documents.
    #[command(subcommand)]
    Topology(TopologyCommand),
    /// Measure the service under load.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Score a ranker on labelled cases: AC@1, AC@3, AC@5 and Avg@5 overall and per fault type,
    /// the chance level beside each, and the time per case.
    Eval(eval::EvalArgs),
    /// Train a model: from the fault history of a running service (a training job, promoted
    /// only if not worse than the active model), or, given a dataset PATH, into a model file.
    Train(train::TrainArgs),
    /// Generate labelled fault cases (alert storms, metric windows, changes) on a topology.
    Simulate(datasets::SimulateArgs),
    /// Work with dataset files.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Fault history: import past incidents (JSON lines or a dataset) for training.
    #[command(subcommand)]
    History(HistoryCommand),
    /// The model registry of a running service: list, show, activate (rollback).
    #[command(subcommand)]
    Models(crate::learning::ModelsCommand),
    /// Risks of an estate, highest first: structural (single points of failure, single
    /// replicas, blast radius, dependency cycles, fan-in hot spots) and, with a fault history,
    /// historical (rising fault rates, recurring root causes, failing actions, risky changes);
    /// per-service risk scores; what the business calendar's next window exposes. From a
    /// running service with --url.
    Risks(crate::risks::RisksArgs),
    /// The stability report of a running service over a period (MTTA, MTTR, noise reduction,
    /// change failure rate, production accuracy, action success rate), as a table, JSON or CSV.
    Report(crate::risks::ReportArgs),
    /// Accuracy after 0, 10, 50, 200 and 1,000 resolved incidents of a simulated estate, each
    /// step trained and gated as the service's training job does.
    LearningCurve(crate::learning_curve::CurveArgs),
    /// API tokens with scopes (ingest, read, respond, admin), in the service's database.
    #[command(subcommand)]
    Tokens(TokensCli),
}

#[derive(Debug, Subcommand)]
enum TokensCli {
    /// Create a token and print its secret (shown this once; only its digest is stored).
    Create {
        #[command(flatten)]
        token: crate::tokens::CreateArgs,
        #[command(flatten)]
        store: ServeArgs,
    },
    /// List tokens (names, scopes, dates; never secrets).
    List {
        #[command(flatten)]
        store: ServeArgs,
    },
    /// Revoke a token (a running service stops accepting it within `auth.reload_secs`).
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        store: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Import past incidents: into a running service with --url, else into the database of the
    /// configuration (data directory) directly.
    Import {
        #[command(flatten)]
        import: crate::learning::ImportArgs,
        #[command(flatten)]
        store: ServeArgs,
    },
    /// Simulate months of faults and changes on a topology with planted risks (a rising fault
    /// rate, risky changes, a failing action): files for `history import`, `POST
    /// /api/v1/changes` and `rootcause risks --history --changes`.
    Simulate(crate::risks::SimulateHistoryArgs),
}

#[derive(Debug, Subcommand)]
enum DatasetsCommand {
    /// Convert a dataset to another format (RCAEval's, to run its methods on the same cases).
    Convert(datasets::ConvertArgs),
    /// Print the topology a dataset's cases run on (learned from traces for Nezha).
    Topology(datasets::DatasetTopologyArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Server time to render the console's pages for one incident of 10,000 alerts over a
    /// generated topology of 100 services (the incident spans 82 of them).
    Console(crate::bench::console::ConsoleOptions),
    /// Alert intake throughput and latency of rootcause on SQLite (and on PostgreSQL with
    /// --postgres-url), next to a real Alertmanager given the same load.
    Ingest(bench::ingest::IngestOptions),
    /// Resident memory of the server on a generated topology of 10,000 services with 100,000
    /// and 1,000,000 retained firing alerts, and after they resolve.
    Memory(bench::memory::MemoryOptions),
    /// Time from an alert's 202 to the incident's hypotheses covering it, on generated
    /// topologies of 1,000 and 10,000 services.
    Ranking(crate::bench::ranking::RankingOptions),
    /// Time of a training job on a large simulated fault history (10,000 incidents).
    Training(crate::bench::training::TrainingOptions),
}

/// Where settings come from besides defaults: flags here, `ROOTCAUSE_*` variables, a TOML file.
#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE", env = "ROOTCAUSE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [env: ROOTCAUSE_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the SQLite database [env: ROOTCAUSE_DATA_DIR] [default: rootcause-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [env: ROOTCAUSE_DATABASE_URL]
    /// [default: sqlite://DATA_DIR/rootcause.db].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Topology file (YAML/JSON) or bundled example name [env: ROOTCAUSE_TOPOLOGY] [default: the
    /// newest stored version, else online-boutique].
    #[arg(long, value_name = "FILE|NAME")]
    topology: Option<String>,
    /// Log format [env: ROOTCAUSE_LOG_FORMAT] [default: pretty].
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

impl ServeArgs {
    fn load(&self) -> Result<Config, rootcause::config::ConfigError> {
        let overrides = Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            topology: self.topology.clone(),
            log_format: self.log_format,
        };
        Config::load(self.config.as_deref(), &overrides)
    }
}

#[derive(Debug, Subcommand)]
enum TopologyCommand {
    /// Check a topology file; print every problem with its path and line. Exit 1 if invalid.
    Validate {
        /// YAML or JSON file.
        file: PathBuf,
    },
    /// Print a topology: services with callers, callees, blast radius and single points of
    /// failure, or the normalised document.
    Show {
        /// YAML or JSON file, or the name of a bundled example.
        topology: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
    /// List the bundled example topologies.
    Examples,
    /// Learn a topology from OpenTelemetry traces (OTLP/JSON files: one request per file or one
    /// per line, `-` for standard input) and print it, over an optional base topology.
    ImportTraces {
        /// OTLP/JSON files; all are matched together, so traces split across files still count.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Topology to extend: a YAML/JSON file or a bundled example name. Without it, the
        /// topology holds only what the traces show.
        #[arg(long, value_name = "FILE|NAME")]
        base: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DocumentFormat::Yaml)]
        format: DocumentFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DocumentFormat {
    /// YAML, ready for `serve --topology` or `topology validate`.
    Yaml,
    /// JSON.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShowFormat {
    /// A table of services and a summary.
    Table,
    /// The normalised YAML document.
    Yaml,
    /// The normalised JSON document.
    Json,
}

impl Cli {
    /// Runs the command and returns the process exit code.
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Serve(args) => serve(&args),
            Command::Config(args) => args.load().map_err(Into::into).map(|config| {
                print!("{}", config.to_toml());
            }),
            Command::Topology(TopologyCommand::Validate { file }) => return validate(&file),
            Command::Topology(TopologyCommand::Show { topology, format }) => {
                show(&topology, format)
            }
            Command::Topology(TopologyCommand::ImportTraces {
                files,
                base,
                format,
            }) => traces_import::import_traces(&files, base.as_deref()).map(|document| {
                eprintln!(
                    "learned {} services and {} dependencies",
                    document.services.len(),
                    document.dependencies.len()
                );
                match format {
                    DocumentFormat::Yaml => print!("{}", to_yaml(&document)),
                    DocumentFormat::Json => println!("{}", to_json(&document)),
                }
            }),
            Command::Topology(TopologyCommand::Examples) => {
                for example in &bundled::ALL {
                    println!("{:<16} {}", example.name, example.description);
                }
                Ok(())
            }
            Command::Risks(args) => crate::risks::risks(&args),
            Command::Report(args) => crate::risks::report(&args),
            Command::Bench(BenchCommand::Console(options)) => bench::console::console(&options),
            Command::Bench(BenchCommand::Ingest(options)) => bench::ingest::ingest(&options),
            Command::Bench(BenchCommand::Memory(options)) => bench::memory::memory(&options),
            Command::Bench(BenchCommand::Ranking(options)) => {
                crate::bench::ranking::ranking(&options)
            }
            Command::Bench(BenchCommand::Training(options)) => {
                crate::bench::training::training(&options)
            }
            Command::History(HistoryCommand::Import { import, store }) => store
                .load()
                .map_err(Into::into)
                .and_then(|config| crate::learning::import(&import, &config)),
            Command::History(HistoryCommand::Simulate(args)) => {
                crate::risks::simulate_history(&args)
            }
            Command::Models(command) => crate::learning::models(&command),
            Command::Tokens(command) => {
                use crate::tokens::TokensCommand;
                let (command, store) = match &command {
                    TokensCli::Create { token, store } => (TokensCommand::Create(token), store),
                    TokensCli::List { store } => (TokensCommand::List, store),
                    TokensCli::Revoke { name, store } => (TokensCommand::Revoke(name), store),
                };
                store
                    .load()
                    .map_err(Into::into)
                    .and_then(|config| crate::tokens::tokens(&command, &config))
            }
            Command::LearningCurve(args) => crate::learning_curve::run(&args),
            Command::Eval(args) => eval::eval(&args),
            Command::Train(args) => train::train(&args),
            Command::Simulate(args) => datasets::simulate(&args),
            Command::Datasets(DatasetsCommand::Convert(args)) => datasets::convert(&args),
            Command::Datasets(DatasetsCommand::Topology(args)) => datasets::dataset_topology(&args),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    telemetry::init_tracing(config.log_format, &config.log_filter)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        tokio::spawn(crate::allocator::publish());
        let application = Application::build(&config).await?;
        application.run_until_stopped(shutdown_signal()).await
    });
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "rootcause stopped with an error"
        );
    }
    result
}

fn validate(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match Topology::parse(&text, Format::from_path(file)) {
        Ok(topology) => {
            println!(
                "ok: {}: {} services, {} dependencies, {} entry points, digest {}",
                file.display(),
                topology.service_count(),
                topology.dependency_count(),
                topology.entry_points().len(),
                &topology.digest()[..12]
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}: {error}", file.display());
            ExitCode::FAILURE
        }
    }
}

fn show(spec: &str, format: ShowFormat) -> anyhow::Result<()> {
    let topology = TopologySpec::parse(spec)?.load()?;
    match format {
        ShowFormat::Yaml => print!("{}", to_yaml(&topology.to_document())),
        ShowFormat::Json => println!("{}", to_json(&topology.to_document())),
        ShowFormat::Table => print!("{}", table(&topology)),
    }
    Ok(())
}

/// The services of a topology as a text table, then entry points and single points of failure.
fn table(topology: &Topology) -> String {
    let spofs = topology.single_points_of_failure();
    let spof_names: HashSet<&str> = spofs.iter().map(|s| s.service.as_str()).collect();
    let document = topology.to_document();
    let width = document
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:<8}  {:<12}  {:<11}  {:>7}  {:>7}  {:>5}  {}\n",
        "NAME", "KIND", "TEAM", "CRITICALITY", "CALLERS", "CALLEES", "BLAST", "SPOF"
    );
    for service in &document.services {
        let count = |result: Result<Vec<_>, _>| result.map_or(0, |v: Vec<_>| v.len());
        let row = format!(
            "{:<width$}  {:<8}  {:<12}  {:<11}  {:>7}  {:>7}  {:>5}  {}",
            service.name,
            service.kind.as_str(),
            service.team.as_deref().unwrap_or("-"),
            service.criticality.map_or("-", Criticality::as_str),
            count(topology.callers(&service.name, 1)),
            count(topology.callees(&service.name, 1)),
            count(topology.blast_radius(&service.name)),
            if spof_names.contains(service.name.as_str()) {
                "yes"
            } else {
                ""
            },
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} services, {} dependencies\nentry points: {}\n",
        topology.service_count(),
        topology.dependency_count(),
        topology.entry_points().join(", ")
    ));
    out.push_str("single points of failure:\n");
    if spofs.is_empty() {
        out.push_str("  none\n");
    }
    for spof in &spofs {
        out.push_str(&format!(
            "  {}: cuts off {} service(s){}\n",
            spof.service,
            spof.cut_off,
            if spof.articulation_point {
                "; splits the graph"
            } else {
                ""
            }
        ));
    }
    out
}
