//! `microreboot compare BASELINE CURRENT`: whether an evaluation got significantly worse than
//! another, cell by cell, and which seeded incidents changed verdict (reports::compare).
//!
//! Each side is a report directory (its `results.jsonl` or `results.jsonl.gz`, and its
//! `config.toml`) or a results file (with the `config.toml` beside it, if any). Runs of
//! different configurations are refused unless `--allow-differ` names every key that differs.

use super::read_text;
use experiments::eval::EvalConfig;
use experiments::record::{ResultLine, read_results};
use reports::compare::{Thresholds, allowed, compare, config_differences};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The baseline: a report directory or a results.jsonl[.gz] file.
    baseline: PathBuf,
    /// The run to check against it.
    current: PathBuf,
    /// Family-wise error rate over all the comparison's tests (Bonferroni-corrected).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// A harm regression is an increase whose whole interval exceeds this (percentage points).
    #[arg(long, default_value_t = 0.0)]
    harm_threshold_pp: f64,
    /// A recovery regression is a decrease whose whole interval exceeds this (percentage
    /// points).
    #[arg(long, default_value_t = 0.0)]
    recovery_threshold_pp: f64,
    /// A TTR regression is a significant rank test with the median later by more than this.
    #[arg(long, default_value_t = 0.0)]
    ttr_threshold_s: f64,
    /// Configuration keys that may differ (dotted, comma-separated; a table name covers its
    /// keys, `*` any key — needed when a side has no config.toml and the hashes differ).
    #[arg(long, value_delimiter = ',')]
    allow_differ: Vec<String>,
    /// Also write the Markdown to this file (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// One side of the comparison.
struct Side {
    path: PathBuf,
    lines: Vec<ResultLine>,
    config_hash: String,
    commit: String,
    /// `config.toml` and where it was read from.
    config: Option<(PathBuf, toml::Table)>,
}

fn read_results_file(path: &Path) -> anyhow::Result<Vec<ResultLine>> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .map_err(|e| {
                anyhow::anyhow!("{}: not gzip-compressed UTF-8 text: {e}", path.display())
            })?;
        s
    } else {
        String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text: {e}", path.display()))?
    };
    read_results(&text, &path.display().to_string()).map_err(|e| anyhow::anyhow!(e))
}

fn load(path: &Path) -> anyhow::Result<Side> {
    let (file, dir) = if path.is_dir() {
        let file = ["results.jsonl", "results.jsonl.gz"]
            .iter()
            .map(|n| path.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no results.jsonl or results.jsonl.gz in this directory",
                    path.display()
                )
            })?;
        (file, path.to_path_buf())
    } else {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (path.to_path_buf(), dir.to_path_buf())
    };
    let lines = read_results_file(&file)?;
    let mut hashes: Vec<(&str, &str)> = lines.iter().map(provenance).collect();
    hashes.sort();
    hashes.dedup();
    let [(config_hash, commit)] = hashes[..] else {
        anyhow::bail!(
            "{}: {} — one run's results are needed",
            file.display(),
            if hashes.is_empty() {
                "no result lines".to_string()
            } else {
                format!(
                    "lines of {} runs (commit/config hash pairs: {})",
                    hashes.len(),
                    hashes
                        .iter()
                        .map(|(h, c)| format!("{c}/{h}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )
    };
    let (config_hash, commit) = (config_hash.to_string(), commit.to_string());
    // A report directory's manifest names its configuration hash (written by the same build as
    // its lines, so this holds across versions whose configurations hash differently).
    if let Ok(Some(m)) = reports::run_dir::read_manifest(&dir)
        && m.config_hash != config_hash
    {
        anyhow::bail!(
            "{}: the manifest of {} names configuration {}, its results {config_hash}: the \
             directory mixes two runs",
            file.display(),
            dir.display(),
            m.config_hash
        );
    }
    let config_path = dir.join("config.toml");
    let config = if config_path.is_file() {
        let table: toml::Table = read_text(&config_path)?
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
        Some((config_path, table))
    } else {
        None
    };
    Ok(Side {
        path: path.to_path_buf(),
        lines,
        config_hash,
        commit,
        config,
    })
}

fn provenance(line: &ResultLine) -> (&str, &str) {
    let p = match line {
        ResultLine::Online(x) => &x.provenance,
        ResultLine::Offline(x) => &x.provenance,
        ResultLine::Parallel(x) => &x.provenance,
        ResultLine::Graph(x) => &x.provenance,
    };
    (&p.config_hash, &p.commit)
}

/// Refuses configurations that differ outside `allow`; says how they relate.
fn check_configs(base: &Side, cur: &Side, allow: &[String]) -> anyhow::Result<String> {
    if base.config_hash == cur.config_hash {
        return Ok(format!("identical (hash {})", base.config_hash));
    }
    let any = allow.iter().any(|a| a == "*");
    let (Some((_, a)), Some((_, b))) = (&base.config, &cur.config) else {
        anyhow::ensure!(
            any,
            "the configurations differ (hash {} in {}, {} in {}) and {} has no config.toml to \
             say which keys: compare report directories, or pass --allow-differ '*'",
            base.config_hash,
            base.path.display(),
            cur.config_hash,
            cur.path.display(),
            if base.config.is_none() {
                base.path.display()
            } else {
                cur.path.display()
            }
        );
        return Ok(format!(
            "differ (hash {} → {}), allowed by --allow-differ '*'",
            base.config_hash, cur.config_hash
        ));
    };
    let diffs = config_differences(a, b);
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
    let refused: Vec<String> = diffs
        .iter()
        .filter(|(k, _, _)| !any && !allowed(k, allow))
        .map(|(k, x, y)| format!("{k}: {} → {}", show(x), show(y)))
        .collect();
    anyhow::ensure!(
        refused.is_empty(),
        "the runs' configurations differ in keys not allowed by --allow-differ: {}",
        refused.join("; ")
    );
    Ok(format!(
        "differ in allowed keys: {}",
        diffs
            .iter()
            .map(|(k, x, y)| format!("`{k}` {} → {}", show(x), show(y)))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.alpha > 0.0 && args.alpha < 1.0,
        "--alpha {}: must be in (0, 1)",
        args.alpha
    );
    for (flag, v) in [
        ("--harm-threshold-pp", args.harm_threshold_pp),
        ("--recovery-threshold-pp", args.recovery_threshold_pp),
        ("--ttr-threshold-s", args.ttr_threshold_s),
    ] {
        anyhow::ensure!(v >= 0.0, "{flag} {v}: must be a non-negative number");
    }
    let base = load(&args.baseline)?;
    let cur = load(&args.current)?;
    let config_note = check_configs(&base, &cur, &args.allow_differ)?;
    // The replay commands run the current code on the current configuration.
    let extra = cur
        .config
        .as_ref()
        .and_then(|(path, _)| {
            let text = std::fs::read_to_string(path).ok()?;
            let cfg = EvalConfig::from_toml(&text, "").ok()?;
            Some(reports::replay_extra(&cfg, path.parent()?))
        })
        .unwrap_or_default();
    let thresholds = Thresholds {
        alpha: args.alpha,
        harm: args.harm_threshold_pp / 100.0,
        recovery: args.recovery_threshold_pp / 100.0,
        ttr_s: args.ttr_threshold_s,
    };
    let comparison = compare(&base.lines, &cur.lines, thresholds, &extra);
    let describe = |s: &Side| {
        format!(
            "`{}` (commit {}, config {}, {} result lines)",
            s.path.display(),
            s.commit,
            s.config_hash,
            s.lines.len()
        )
    };
    let md = comparison.markdown(&describe(&base), &describe(&cur), &config_note);
    outln!("{md}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &md)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let regressions = comparison.regressions();
    if regressions.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "compare: {} cell(s) regressed significantly: {}",
            regressions.len(),
            regressions
                .iter()
                .map(|c| c.cell.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(ExitCode::from(1))
    }
}
