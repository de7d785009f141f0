//! **Reports**: the evaluation's tables (Markdown and CSV), plots (PNG and SVG, with an embedded
//! font) and `REPORT.md`, all computed from the result lines of `results.jsonl` — plus the
//! wall-clock inference timings, which are kept apart because they are not deterministic.
//!
//! * [`summary`] — aggregation: harm rates with Wilson intervals, TTR percentiles, rejections
//!   by rule, sensitivity, concurrent recovery, coverage;
//! * [`tables`] — those aggregates as tables;
//! * [`plots`] — timelines, harm bars, TTR and latency CDFs, sensitivity curves;
//! * [`report`] — `REPORT.md`;
//! * [`timings`] — the wall-clock measurements.

pub mod plots;
pub mod report;
pub mod summary;
pub mod tables;
pub mod timings;

use experiments::eval::{EvalConfig, EvalOutput, TimelinePoint};
use experiments::record::{Provenance, write_results};
use std::path::{Path, PathBuf};
use summary::Results;
use timings::Timings;

/// Writing the report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plotting {what}: {message}")]
    Plot {
        /// Which plot.
        what: String,
        /// Why.
        message: String,
    },
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })
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

/// Writes everything into `dir` (which must exist): `results.jsonl`, `timelines.csv`,
/// `tables/*.csv`, `timings.json`, `config.toml`, the plots and `REPORT.md`. Returns the files.
pub fn write(
    dir: &Path,
    cfg: &EvalConfig,
    provenance: &Provenance,
    output: &EvalOutput,
    timings: &Timings,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    let mut jsonl = Vec::new();
    write_results(&output.lines, &mut jsonl).expect("writing to memory");
    let path = dir.join("results.jsonl");
    write_file(&path, &jsonl)?;
    files.push(path);
    let path = dir.join("timelines.csv");
    write_file(&path, timelines_csv(&output.timelines).as_bytes())?;
    files.push(path);
    let results = Results::new(&output.lines);
    let tables_dir = dir.join("tables");
    std::fs::create_dir_all(&tables_dir).map_err(|source| ReportError::Io {
        path: tables_dir.display().to_string(),
        source,
    })?;
    let csvs = report::csv_tables(&results, timings).map_err(|e| ReportError::Io {
        path: tables_dir.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    for (name, text) in csvs {
        let path = tables_dir.join(name);
        write_file(&path, text.as_bytes())?;
        files.push(path);
    }
    let path = dir.join("timings.json");
    write_file(
        &path,
        serde_json::to_string_pretty(timings)
            .expect("serialisable")
            .as_bytes(),
    )?;
    files.push(path);
    let path = dir.join("config.toml");
    let toml = toml_text(cfg);
    write_file(&path, toml.as_bytes())?;
    files.push(path);
    let plots = plots::write_all(
        dir,
        &results,
        &output.timelines,
        timings,
        cfg.online.fault_start_s,
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
    let path = dir.join("REPORT.md");
    write_file(
        &path,
        report::render(cfg, provenance, &results, timings, &names).as_bytes(),
    )?;
    files.push(path);
    Ok(files)
}

/// The configuration as TOML (what `--config` accepts).
pub fn toml_text(cfg: &EvalConfig) -> String {
    toml::to_string_pretty(cfg).unwrap_or_else(|e| format!("# not representable as TOML: {e}\n"))
}
