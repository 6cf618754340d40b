//! `rootcause train`: a model file from labelled datasets, or a training job of a running
//! service.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rootcause_models::evaluation::{Withheld, withhold};
use rootcause_models::evidence::Settings;
use rootcause_models::learned::{self, TrainParams};

use crate::cases::{FormatArg, GraphArgs, examples, extract_all, load, progress_bar};

/// `rootcause train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Format of the dataset at PATH.
    #[arg(long, value_enum, requires = "path")]
    format: Option<FormatArg>,
    /// Dataset directory of labelled cases: train a model file from it. Without it, a running
    /// service trains on its fault history (see --url).
    #[arg(requires_all = ["format", "out"])]
    path: Option<PathBuf>,
    /// More labelled datasets to train on, as FORMAT:PATH (repeatable).
    #[arg(long, value_name = "FORMAT:PATH", requires = "path")]
    also: Vec<String>,
    /// Where to write the model file (JSON).
    #[arg(long, value_name = "FILE", requires = "path")]
    out: Option<PathBuf>,
    /// L2 penalty of the logistic regressions (fault type, actions).
    #[arg(long, default_value_t = TrainParams::default().alpha)]
    alpha: f64,
    /// L2 penalty of the ranking scorer's corrections to its cold-start prior (default: for
    /// learning from one system's own history; the bundled model, meant for systems it never
    /// saw, is trained with 10000).
    #[arg(long, default_value_t = TrainParams::default().prior_alpha)]
    prior_alpha: f64,
    /// Folds of the cross-validation by case whose figures are recorded in the model file
    /// (0: skip), or of the training job.
    #[arg(long, default_value_t = 5)]
    cv: usize,
    #[command(flatten)]
    graph: GraphArgs,
    /// Training job: promote the new model even if it is worse on the held-out cases.
    #[arg(long, conflicts_with = "path")]
    force: bool,
    #[command(flatten)]
    service: crate::learning::ServiceArgs,
}

/// Runs `rootcause train`.
pub fn train(args: &TrainArgs) -> anyhow::Result<()> {
    for (name, value) in [("--alpha", args.alpha), ("--prior-alpha", args.prior_alpha)] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{name} must be a number ≥ 0, got {value}");
        }
    }
    let (Some(format), Some(path), Some(out)) = (args.format, &args.path, &args.out) else {
        return crate::learning::train(
            args.force,
            args.cv,
            (args.alpha, args.prior_alpha),
            &args.service,
        );
    };
    let mut sources = vec![(format, path.clone())];
    for extra in &args.also {
        let (format, path) = extra.split_once(':').with_context(|| {
            format!("--also takes FORMAT:PATH (nezha:DIR, rcaeval:DIR, sim:DIR), got {extra:?}")
        })?;
        let format = FormatArg::from_str(format, true)
            .map_err(|e| anyhow::anyhow!("--also {extra:?}: {e}"))?;
        sources.push((format, PathBuf::from(path)));
    }
    let settings = Settings::default();
    let options = args.graph.load_options()?;
    let mut all = Vec::new();
    let mut names = Vec::new();
    for (format, path) in &sources {
        let (mut cases, _) = load(*format, path, &options)?;
        let withheld: Vec<Withheld> = cases
            .iter_mut()
            .enumerate()
            .map(|(i, c)| withhold(c, i))
            .collect();
        let labelled = withheld.iter().filter(|w| w.label.is_some()).count();
        if labelled == 0 {
            bail!("none of the cases in {} is labelled", path.display());
        }
        let (evidence, _) = extract_all(&cases, &settings);
        all.extend(examples(evidence, &withheld));
        // The absolute path, so that `eval --model` can refuse this model on these cases from
        // whatever directory it runs in.
        let absolute = path.canonicalize().unwrap_or_else(|_| path.clone());
        names.push(format!(
            "{}:{} ({labelled} cases)",
            format!("{format:?}").to_lowercase(),
            absolute.display()
        ));
    }
    let params = TrainParams {
        alpha: args.alpha,
        prior_alpha: args.prior_alpha,
        ..TrainParams::default()
    };
    let model = if args.cv >= 2 {
        // One pass: the fold models give the figures and the temperature, then the final fit.
        let bar = progress_bar(args.cv + 1, "training with cross-validation");
        let validated =
            learned::train_validated(&all, args.cv, &params, settings, names, |stage| {
                if let learned::Stage::Fitted { done, .. } = stage {
                    bar.set_position(done as u64)
                }
            })?;
        bar.finish_and_clear();
        let mut accuracy = rootcause_models::accuracy::Accuracy::new();
        for (example, diagnosis) in all.iter().zip(&validated.out_of_fold) {
            match example.truth {
                Some(truth) => {
                    let service = &example.evidence.candidates[truth].service;
                    let rank = diagnosis
                        .hypotheses
                        .iter()
                        .position(|h| &h.service == service)
                        .map(|p| p + 1);
                    accuracy.add(rank, diagnosis.hypotheses.len());
                }
                None => accuracy.add_absent(),
            }
        }
        let figures = accuracy.figures();
        let chance = accuracy.chance_figures();
        let mut model = validated.model;
        for (key, value) in [
            ("cv_ac1", figures.ac1),
            ("cv_ac3", figures.ac3),
            ("cv_avg5", figures.avg5),
            ("chance_ac1", chance.ac1),
            ("cv_folds", args.cv as f64),
        ] {
            model.provenance.figures.insert(key.to_string(), value);
        }
        model
    } else {
        learned::train(&all, &params, settings, names)?
    };
    std::fs::write(out, model.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "model learned@{} trained on {} cases ({} candidate rows) from {}; temperature {:.3}; written to {}",
        model.version,
        model.provenance.cases,
        model.provenance.rows,
        model.provenance.sources.join(", "),
        model.temperature,
        out.display()
    );
    if let Some(ac1) = model.provenance.figures.get("cv_ac1") {
        println!(
            "{}-fold cross-validation by case on the training data: AC@1 {:.3}, AC@3 {:.3}, Avg@5 {:.3} (chance AC@1 {:.3})",
            args.cv,
            ac1,
            model.provenance.figures["cv_ac3"],
            model.provenance.figures["cv_avg5"],
            model.provenance.figures["chance_ac1"]
        );
    }
    Ok(())
}
