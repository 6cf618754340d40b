//! `rootcause risks`: the structural risks of a topology (a file or a bundled example), as a
//! table or JSON: what `GET /api/v1/risks` serves for the service's current topology; and
//! `rootcause report`: a running service's stability report (`GET /api/v1/reports/stability`).

use rootcause::live_topology::TopologySpec;
use rootcause_topology::bundled;
use rootcause_topology::risks::StructuralRisk;

/// Options of `rootcause risks`.
#[derive(Debug, clap::Args)]
pub struct RisksArgs {
    /// Topology: a YAML/JSON file or a bundled example name.
    #[arg(long, value_name = "FILE|NAME", default_value = bundled::DEFAULT)]
    pub topology: String,
    /// Print JSON (`{"items": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `rootcause risks`.
pub fn risks(args: &RisksArgs) -> anyhow::Result<()> {
    let topology = TopologySpec::parse(&args.topology)?.load()?;
    let risks = topology.structural_risks(&topology.single_points_of_failure());
    if args.json {
        println!("{}", serde_json::json!({ "items": risks }));
    } else {
        print!("{}", table(&risks));
    }
    Ok(())
}

fn table(risks: &[StructuralRisk]) -> String {
    let mut out = format!(
        "{:<24} {:<9} {:>5}  {}\n",
        "KIND", "SEVERITY", "SCORE", "WHY"
    );
    for r in risks {
        let kind = serde_json::to_value(r.kind).unwrap_or_default();
        let severity = serde_json::to_value(r.severity).unwrap_or_default();
        out.push_str(&format!(
            "{:<24} {:<9} {:>5.2}  {}\n",
            kind.as_str().unwrap_or_default(),
            severity.as_str().unwrap_or_default(),
            r.score,
            r.why
        ));
    }
    if risks.is_empty() {
        out.push_str("(none)\n");
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
