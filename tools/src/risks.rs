//! `rootcause risks`: the structural risks of a topology (a file or a bundled example), as a
//! table or JSON: what `GET /api/v1/risks` serves for the service's current topology.

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
    let risks = topology.structural_risks();
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
