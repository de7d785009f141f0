//! **Reports**: the evaluation's tables (Markdown and CSV), plots (PNG and SVG, with an embedded
//! font) and `REPORT.md`, all computed from the result lines of `results.jsonl` — plus the
//! wall-clock inference timings, which are kept apart because they are not deterministic.
//!
//! * [`summary`] — aggregation: harm rates with Wilson intervals, TTR percentiles, rejections
//!   by rule, sensitivity, concurrent recovery, coverage;
//! * [`tables`] — those aggregates as tables;
//! * [`plots`] — timelines, harm bars, TTR and latency CDFs, sensitivity curves;
//! * [`report`] — `REPORT.md`;
//! * [`timings`] — the wall-clock measurements;
//! * [`explorer`] — the incident explorer, a static site (`explorer/index.html`);
//! * [`compare`] — two evaluations cell by cell, with the statistics of [`stats`] and the
//!   incidents whose verdict changed (`microreboot compare`);
//! * [`run_dir`] — crash-safe, self-describing output directories (temporary files renamed into
//!   place, a manifest naming the run, `REPORT.md` only for a complete run).

pub mod breakdown;
pub mod compare;
pub mod explorer;
pub mod plots;
pub mod report;
pub mod run_dir;
pub mod stats;
pub mod summary;
pub mod tables;
pub mod timings;

use experiments::eval::{EvalConfig, EvalOutput, TimelinePoint};
use experiments::record::{Provenance, write_results};
use run_dir::{OutputError, RunDir};
use std::path::PathBuf;
use summary::Results;
use timings::Timings;

/// Writing the report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written (the error names it).
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The tables could not be computed.
    #[error("computing the tables: {0}")]
    Tables(String),
    /// A plot could not be drawn.
    #[error("plotting {what}: {message}")]
    Plot {
        /// Which plot.
        what: String,
        /// Why.
        message: String,
    },
}

/// Writes the timelines as CSV.
pub fn timelines_csv(points: &[TimelinePoint]) -> String {
    let mut s = String::from("app,fault,policy,second,error_rate,p99_ms\n");
    for p in points {
        s.push_str(&format!(
            "{},{},{},{},{:.6},{:.3}\n",
            p.app, p.fault, p.policy, p.second, p.error_rate, p.p99_ms
        ));
    }
    s
}

/// Writes everything into the run directory `out`: `results.jsonl`, `timelines.csv`,
/// `tables/*.csv`, `timings.json`, `config.toml`, the plots, the incident explorer
/// (`explorer/`) and — last, and only once everything
/// else is in place — `REPORT.md`, which completes the run. Returns the files.
pub fn write(
    mut out: RunDir,
    cfg: &EvalConfig,
    provenance: &Provenance,
    output: &EvalOutput,
    timings: &Timings,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    let mut jsonl = Vec::new();
    write_results(&output.lines, &mut jsonl).expect("writing to memory");
    files.push(out.write("results.jsonl", &jsonl)?);
    files.push(out.write("timelines.csv", timelines_csv(&output.timelines).as_bytes())?);
    let results = Results::new(&output.lines);
    let csvs =
        report::csv_tables(&results, timings).map_err(|e| ReportError::Tables(e.to_string()))?;
    for (name, text) in csvs {
        files.push(out.write(&format!("tables/{name}"), text.as_bytes())?);
    }
    files.push(
        out.write(
            "timings.json",
            serde_json::to_string_pretty(timings)
                .expect("serialisable")
                .as_bytes(),
        )?,
    );
    files.push(out.write("config.toml", toml_text(cfg).as_bytes())?);
    let plots = plots::write_all(
        &mut out,
        &results,
        &output.timelines,
        timings,
        (cfg.online.fault_start_s, cfg.online.fault_duration_s),
    )
    .map_err(|e| ReportError::Plot {
        what: "the summary plots".into(),
        message: e.to_string(),
    })?;
    let names: Vec<String> = plots
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    files.extend(plots);
    let extra = replay_extra(cfg, out.dir());
    files.extend(explorer::write(&mut out, &output.details, &extra)?);
    let report = report::render(cfg, provenance, &results, timings, &names);
    files.extend(out.finish(Some(("REPORT.md", report.as_bytes())))?);
    Ok(files)
}

/// The configuration as TOML (what `--config` accepts).
pub fn toml_text(cfg: &EvalConfig) -> String {
    toml::to_string_pretty(cfg).unwrap_or_else(|e| format!("# not representable as TOML: {e}\n"))
}

/// What a replay command needs beyond `--app --fault --policy --seed`: the run's configuration
/// (`dir/config.toml`) when the evaluation's run or LLM parameters are not the defaults
/// `scenario` uses, and the topology file, if any.
pub fn replay_extra(cfg: &EvalConfig, dir: &std::path::Path) -> String {
    let base = EvalConfig::default();
    let differs = |a: serde_json::Result<serde_json::Value>, b| a.ok() != b;
    let mut extra = String::new();
    if differs(
        serde_json::to_value(&cfg.online),
        serde_json::to_value(&base.online).ok(),
    ) || differs(
        serde_json::to_value(cfg.llm),
        serde_json::to_value(base.llm).ok(),
    ) {
        extra.push_str(&format!(" --config {}", dir.join("config.toml").display()));
    }
    if cfg.scenarios != base.scenarios {
        extra.push_str(&format!(" --scenarios {}", cfg.scenarios.as_str()));
    }
    if let Some(t) = &cfg.topology {
        extra.push_str(&format!(" --topology {t}"));
    }
    extra
}
