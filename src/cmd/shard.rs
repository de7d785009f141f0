//! `eval --shard I/N` and `eval merge DIR…`: the evaluation split across machines
//! (experiments::shard), written as crash-safe run directories.
//!
//! A shard directory holds `part.json` (its jobs' outputs, tagged with their positions in the
//! job order), `config.toml` and `timings.json` (its wall clock), under a manifest whose
//! command is `eval-shard`. A complete shard of the same commit, configuration and split is
//! never rerun: a sweep that was interrupted reruns only its missing shards.

use super::eval::{open_out, report, threads};
use experiments::eval::{EvalConfig, run_eval_shard};
use experiments::record::Provenance;
use experiments::shard::{Part, Shard, merge as merge_parts};
use reports::run_dir::{Status, read_manifest};
use reports::timings::Timings;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The manifest command of a shard directory.
const SHARD_COMMAND: &str = "eval-shard";
const PART: &str = "part.json";

#[derive(Debug, clap::Subcommand)]
pub enum EvalCommand {
    /// Join the partial results of `eval --shard I/N` (all N directories) into the report a
    /// single-machine `eval` writes: the same results, tables, plots and explorer, byte for byte.
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shard directories (`eval --shard I/N --out DIR`), in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Output directory (as for `eval`).
    #[arg(long, default_value = "reports/out")]
    out: PathBuf,
    /// Delete the contents of an output directory microreboot did not write.
    #[arg(long)]
    force: bool,
    /// Skip the wall-clock inference timings (as `eval --quick` does).
    #[arg(long)]
    no_timings: bool,
}

/// A shard directory already holding this shard of this run, complete.
fn already_done(dir: &Path, provenance: &Provenance, shard: Shard) -> Option<Part> {
    let m = read_manifest(dir).ok()??;
    if m.command != SHARD_COMMAND
        || m.status != Status::Complete
        || m.commit != provenance.commit
        || m.config_hash != provenance.config_hash
    {
        return None;
    }
    let part: Part = serde_json::from_slice(&std::fs::read(dir.join(PART)).ok()?).ok()?;
    (part.shard == shard).then_some(part)
}

/// `eval --shard I/N`.
pub fn run_shard(
    cfg: &EvalConfig,
    provenance: &Provenance,
    shard: Shard,
    out: &Path,
    force: bool,
    threads: usize,
) -> anyhow::Result<ExitCode> {
    if let Some(part) = already_done(out, provenance, shard) {
        eprintln!(
            "eval: shard {shard} ({} jobs) is already complete in {} for this build and configuration; \
             not rerunning it",
            part.jobs.len(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut dir = open_out(out, SHARD_COMMAND, provenance, force)?;
    dir.stage(&format!("running shard {shard}"))?;
    let mut part = None;
    let wall = super::bench::wall_clock(|| {
        part = Some(run_eval_shard(
            cfg,
            provenance,
            threads,
            true,
            shard,
            &super::eval::agent_runner(cfg, provenance),
        )?);
        Ok::<(), String>(())
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    let part = part.expect("set above");
    dir.write(
        "timings.json",
        serde_json::to_string_pretty(&Timings {
            eval_wall_s: Some(wall),
            threads,
            ..Timings::default()
        })
        .expect("serialisable")
        .as_bytes(),
    )?;
    dir.write("config.toml", reports::toml_text(cfg).as_bytes())?;
    let bytes = serde_json::to_vec(&part).expect("serialisable");
    // part.json last: its presence under a complete manifest is what makes a shard done.
    dir.finish(Some((PART, &bytes)))?;
    outln!(
        "shard {shard}: {} of {} jobs, {} result lines, in {wall:.0} s; wrote {}",
        part.jobs.len(),
        part.total_jobs,
        part.jobs
            .iter()
            .map(|j| j.output.lines.len())
            .sum::<usize>(),
        out.join(PART).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One shard directory, read and checked.
struct ShardDir {
    provenance: Provenance,
    config: EvalConfig,
    wall_s: f64,
    part: Part,
}

fn read_shard(dir: &Path) -> anyhow::Result<ShardDir> {
    let shown = dir.display();
    let m = read_manifest(dir)
        .map_err(|e| anyhow::anyhow!(e))?
        .ok_or_else(|| anyhow::anyhow!("{shown}: not a shard directory (no manifest)"))?;
    anyhow::ensure!(
        m.command == SHARD_COMMAND,
        "{shown}: holds an `{}` run, not an `eval --shard` one",
        m.command
    );
    anyhow::ensure!(
        m.status == Status::Complete,
        "{shown}: the shard did not finish ({}; it was at: {}); rerun it with the same --shard and --out",
        m.describe(),
        m.stage
    );
    let config_path = dir.join("config.toml");
    let config = EvalConfig::from_toml(
        &super::read_text(&config_path)?,
        &config_path.display().to_string(),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    anyhow::ensure!(
        config.hash() == m.config_hash,
        "{}: configuration hash {} is not the manifest's {}",
        config_path.display(),
        config.hash(),
        m.config_hash
    );
    let part_path = dir.join(PART);
    let bytes = std::fs::read(&part_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", part_path.display()))?;
    let part: Part = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", part_path.display()))?;
    let timings: Option<Timings> = std::fs::read(dir.join("timings.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(ShardDir {
        provenance: Provenance {
            commit: m.commit,
            config_hash: m.config_hash,
        },
        config,
        wall_s: timings.and_then(|t| t.eval_wall_s).unwrap_or(0.0),
        part,
    })
}

/// `eval merge DIR…`.
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let shards = args
        .shards
        .iter()
        .map(|d| read_shard(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let first = &shards[0];
    for (s, dir) in shards.iter().zip(&args.shards).skip(1) {
        anyhow::ensure!(
            s.provenance == first.provenance,
            "{} is a shard of commit {} with configuration {}, {} one of commit {} with {}: \
             shards of one sweep come from one build and one configuration",
            dir.display(),
            s.provenance.commit,
            s.provenance.config_hash,
            args.shards[0].display(),
            first.provenance.commit,
            first.provenance.config_hash
        );
    }
    let (provenance, cfg) = (first.provenance.clone(), first.config.clone());
    let wall: f64 = shards.iter().map(|s| s.wall_s).sum();
    let threads = threads(0);
    let output = merge_parts(shards.into_iter().map(|s| s.part).collect()).map_err(|e| {
        let hint = match &e {
            experiments::shard::MergeError::Missing(_) => {
                " (run them with `eval --shard I/N` and the same configuration, then merge again)"
            }
            _ => "",
        };
        anyhow::anyhow!("{e}{hint}")
    })?;
    let out = open_out(&args.out, "eval", &provenance, args.force)?;
    // The report's wall clock would be a sum over machines, not the time anything took: left
    // out, as the shards' own timings.json keep theirs.
    let timings = Timings {
        eval_wall_s: None,
        threads,
        ..Timings::default()
    };
    report(
        out,
        &cfg,
        &provenance,
        &output,
        timings,
        !args.no_timings,
        wall,
    )
}
