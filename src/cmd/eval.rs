//! `microreboot eval`: the whole evaluation, written to `reports/out/` as `REPORT.md`, plots,
//! tables and `results.jsonl`.

use super::read_text;
use agents::{PolicyId, PolicyKind};
use experiments::eval::{EvalConfig, run_eval_with};
use experiments::record::Provenance;
use faults::FaultType;
use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use reports::summary::Results;
use reports::timings::{InferenceTiming, Timings};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A built-in policy's name (`scenario` runs built-ins only).
pub fn parse_builtin_policy(name: &str) -> Result<PolicyKind, String> {
    PolicyKind::from_name(name).ok_or_else(|| {
        let valid: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.as_str()).collect();
        format!("unknown policy `{name}`; choose from: {}", valid.join(", "))
    })
}

/// A policy name: a built-in's, or an external agent's (checked against the configuration's
/// `[agents.NAME]` tables once it is read).
pub fn parse_policy(name: &str) -> Result<PolicyId, String> {
    if PolicyKind::from_name(name).is_none() {
        PolicyId::check_external_name(name).map_err(|e| {
            let valid: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.as_str()).collect();
            format!(
                "unknown policy `{name}` ({e}); built-in policies: {}, or an agent declared under [agents.NAME]",
                valid.join(", ")
            )
        })?;
    }
    Ok(PolicyId::from_name(name))
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<super::shard::EvalCommand>,
    /// A small matrix (two apps, all faults and policies, two seeds) in about a minute; no
    /// timing measurements.
    #[arg(long)]
    quick: bool,
    /// Evaluation configuration (TOML); see `--print-config` for every key and its default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Online seeds per app × fault × policy.
    #[arg(long)]
    seeds: Option<u32>,
    /// Applications, comma-separated (socialNetwork, hotelReservation, mediaMicroservices, or
    /// those of --topology; with a topology and no apps set anywhere: all of the file's).
    #[arg(long, value_delimiter = ',')]
    apps: Option<Vec<String>>,
    /// A topology file (schema of deathstarbench/data/deathstarbench.json) instead of the
    /// embedded DeathStarBench one; overrides the configuration's `topology` key.
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Fault types, comma-separated (crash, latency, resource, partition, misconfig).
    #[arg(long, value_delimiter = ',')]
    faults: Option<Vec<FaultType>>,
    /// Policies, comma-separated: built-in (noop, auto-restart, naive-microreboot, unconstrained,
    /// constrained-structural, constrained-evidence, constrained-watchdog, constrained, oracle)
    /// or external agents declared under `[agents.NAME]` in --config (docs/AGENTS.md).
    #[arg(long, value_delimiter = ',', value_parser = parse_policy)]
    policies: Option<Vec<PolicyId>>,
    /// Fault scenarios: drawn (target, replicas and intensity from each seed) or fixed (one per
    /// app × fault; docs/faults.md).
    #[arg(long)]
    scenarios: Option<deathstarbench::ScenarioSet>,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Output directory. A rerun replaces the previous run there (its manifest,
    /// `.microreboot-run.json`, lists its files); a non-empty directory without one is refused.
    #[arg(long, default_value = "reports/out")]
    out: PathBuf,
    /// Delete the contents of an output directory microreboot did not write (or whose manifest
    /// is unreadable) before writing into it.
    #[arg(long)]
    force: bool,
    /// Run only shard I of N (I from 0) of the matrix and write its partial results to --out;
    /// `eval merge` joins all N. A complete shard of the same build and configuration already
    /// in --out is kept, so rerunning an interrupted sweep runs only the missing shards.
    #[arg(long, value_name = "I/N")]
    shard: Option<experiments::shard::Shard>,
}

/// The commit of the source tree this binary was built from (`+dirty` if it has changes).
pub(crate) fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}+dirty") } else { head }
        }
        None => "unknown".into(),
    }
}

/// Builds the configuration: defaults (or the quick preset), then the file, then the flags.
fn config(args: &Args) -> anyhow::Result<EvalConfig> {
    let base = if args.quick {
        EvalConfig::quick()
    } else {
        EvalConfig::default()
    };
    let default_apps = base.apps.clone();
    let mut cfg = match &args.config {
        Some(path) => {
            let mut cfg = EvalConfig::merge_toml_unchecked(
                base,
                &read_text(path)?,
                &path.display().to_string(),
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            // A topology named in a configuration file is relative to that file.
            if let (Some(t), Some(dir)) = (&cfg.topology, path.parent())
                && Path::new(t).is_relative()
                && !dir.as_os_str().is_empty()
            {
                cfg.topology = Some(dir.join(t).display().to_string());
            }
            cfg
        }
        None => base,
    };
    if let Some(t) = &args.topology {
        cfg.topology = Some(t.display().to_string());
    }
    if let Some(s) = args.seeds {
        cfg.seeds = s;
    }
    if let Some(a) = &args.apps {
        cfg.apps = a.clone();
    } else if let Some(t) = &cfg.topology
        && cfg.apps == default_apps
    {
        // A topology of one's own rarely names its apps like DeathStarBench's: run them all.
        let name = t.clone();
        let file = deathstarbench::parse(&read_text(Path::new(t))?, &name)?;
        cfg.apps = file.apps.iter().map(|a| a.name.clone()).collect();
    }
    if let Some(f) = &args.faults {
        cfg.faults = f.clone();
    }
    if let Some(p) = &args.policies {
        cfg.policies = p.clone();
    }
    if let Some(s) = args.scenarios {
        cfg.scenarios = s;
    }
    cfg.check().map_err(|e| anyhow::anyhow!(e))?;
    Ok(cfg)
}

/// Recovery-group inference latency on both industrial graphs (wall clock).
fn inference_timings() -> Vec<InferenceTiming> {
    let incident = IncidentId::try_from("eval").expect("valid id");
    let mut out = Vec::new();
    // The same fixtures as `bench infer` (a 50,000-call window), fewer repetitions.
    for f in microreboot_benches::infer_fixtures(2000, 50_000) {
        let paper = if f.graph.service_count() > 1000 {
            "21 ms"
        } else {
            "0.15 ms"
        };
        let mut inference = Inference::new();
        let mut i = 0;
        let query = microreboot_benches::samples_ns(2000, || {
            let r = inference.infer(
                &f.graph,
                f.symptoms[i % f.symptoms.len()],
                incident.clone(),
                GroupConfig::default(),
            );
            std::hint::black_box(r);
            i += 1;
        });
        out.push(InferenceTiming {
            graph: f.name.to_string(),
            services: f.graph.service_count(),
            what: "query on the maintained graph".into(),
            samples_ns: query,
            paper_p99: paper.into(),
        });
        let mut w = microreboot_benches::rebuild_target(&f.graph);
        let mut j = 0;
        let rebuild = microreboot_benches::samples_ns(500, || {
            microreboot_benches::rebuild(&mut w, &f.window);
            let name = &f.graph.service(f.symptoms[j % f.symptoms.len()]).name;
            if let Some(s) = w.graph().id(name) {
                std::hint::black_box(inference.infer(
                    w.graph(),
                    s,
                    incident.clone(),
                    GroupConfig::default(),
                ));
            }
            j += 1;
        });
        out.push(InferenceTiming {
            graph: f.name.to_string(),
            services: f.graph.service_count(),
            what: format!("rebuild from a {}-call window, then query", f.window.len()),
            samples_ns: rebuild,
            paper_p99: paper.into(),
        });
    }
    out
}

/// Takes the output directory for a run of `command` (reports::run_dir), printing its notes (an
/// interrupted previous run, what was removed).
pub(super) fn open_out(
    dir: &Path,
    command: &str,
    provenance: &Provenance,
    force: bool,
) -> anyhow::Result<reports::run_dir::RunDir> {
    let (out, notes) = reports::run_dir::RunDir::open(
        dir,
        command,
        &provenance.commit,
        &provenance.config_hash,
        force,
    )?;
    for note in notes {
        eprintln!("eval: {note}");
    }
    Ok(out)
}

/// Worker threads for `--jobs` (0: one per core).
pub(super) fn threads(jobs: usize) -> usize {
    if jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        jobs
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(super::shard::EvalCommand::Merge(merge)) = args.command {
        return super::shard::merge(merge);
    }
    let cfg = config(&args)?;
    if args.print_config {
        outln!("{}", reports::toml_text(&cfg));
        return Ok(ExitCode::SUCCESS);
    }
    let provenance = Provenance {
        commit: commit(),
        config_hash: cfg.hash(),
    };
    if let Some(shard) = args.shard {
        return super::shard::run_shard(
            &cfg,
            &provenance,
            shard,
            &args.out,
            args.force,
            threads(args.jobs),
        );
    }
    // Taken before the experiments: a directory that cannot be used is refused at once, and an
    // interrupted run is recorded as such in the manifest.
    let out = open_out(&args.out, "eval", &provenance, args.force)?;
    let threads = threads(args.jobs);
    let online = cfg.apps.len() * cfg.faults.len() * cfg.seeds as usize * cfg.policies.len();
    eprintln!(
        "eval: {online} online runs ({} apps × {} faults × {} policies × {} seeds) plus sweeps, offline and \
         concurrent-recovery experiments, on {threads} threads",
        cfg.apps.len(),
        cfg.faults.len(),
        cfg.policies.len(),
        cfg.seeds
    );
    let mut output = None;
    let wall = super::bench::wall_clock(|| {
        output = Some(run_eval_with(
            &cfg,
            &provenance,
            threads,
            true,
            &agent_runner(&cfg, &provenance),
        )?);
        Ok::<(), String>(())
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    let output = output.expect("set above");
    let timings = Timings {
        eval_wall_s: Some(wall),
        threads,
        ..Timings::default()
    };
    report(out, &cfg, &provenance, &output, timings, !args.quick, wall)
}

/// The runner of the configuration's external agents: each incident starts the agent's command
/// as an MCP client of a fresh session.
pub(super) fn agent_runner(
    cfg: &EvalConfig,
    provenance: &Provenance,
) -> agent_mcp::eval::McpRunner {
    agent_mcp::eval::McpRunner::new(
        &cfg.agents,
        cfg.llm.replan_latency_s,
        provenance.config_hash.clone(),
    )
}

/// Times inference (when `measure`), writes the report into `out`, prints the summary, and
/// checks coverage: what `eval` and `eval merge` do once they have the matrix's output.
pub(super) fn report(
    mut out: reports::run_dir::RunDir,
    cfg: &EvalConfig,
    provenance: &Provenance,
    output: &experiments::eval::EvalOutput,
    mut timings: Timings,
    measure: bool,
    wall: f64,
) -> anyhow::Result<ExitCode> {
    if measure {
        eprintln!("eval: timing recovery-group inference on the industrial graphs");
        out.stage("timing recovery-group inference")?;
        timings.inference = inference_timings();
    }
    let dir = out.dir().to_path_buf();
    let files = reports::write(out, cfg, provenance, output, &timings)?;
    summary(&output.lines, &dir, files.len(), wall)?;
    // Coverage is a property of the whole matrix: a run narrowed to some faults or policies
    // cannot exercise everything, so there a gap is only reported.
    let gaps = Results::new(&output.lines).coverage().gaps();
    let full_matrix = FaultType::ALL.iter().all(|f| cfg.faults.contains(f))
        && PolicyKind::ALL
            .iter()
            .all(|&p| cfg.policies.contains(&p.into()));
    if gaps.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else if full_matrix {
        eprintln!("coverage check failed: {}", gaps.join("; "));
        Ok(ExitCode::from(1))
    } else {
        eprintln!(
            "coverage (not enforced on a narrowed matrix): {}",
            gaps.join("; ")
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The summary table on stdout.
fn summary(
    lines: &[experiments::record::ResultLine],
    out: &Path,
    files: usize,
    wall: f64,
) -> anyhow::Result<()> {
    let r = Results::new(lines);
    let harm = r.online_harm();
    let off = r.offline_harm();
    let ttr = r.ttr();
    outln!(
        "{:<18} {:>29} {:>29} {:>29} {:>12}",
        "policy",
        "online harm",
        "offline alibaba-like",
        "offline meta-like",
        "median TTR"
    );
    for p in r.policies() {
        let all = "all".to_string();
        let cell =
            |x: Option<&reports::summary::Proportion>| x.map_or("—".to_string(), |x| x.display());
        let g = |g| cell(off.get(&(g, p, all.clone())));
        let median = ttr
            .get(&(p, all.clone()))
            .and_then(|v| reports::summary::censored_percentile(v, 0.5));
        outln!(
            "{:<18} {:>29} {:>29} {:>29} {:>12}",
            p.as_str(),
            cell(harm.get(&(p, all.clone()))),
            g(experiments::offline::IndustrialGraph::AlibabaLike),
            g(experiments::offline::IndustrialGraph::MetaLike),
            median.map_or("not reached".to_string(), |m| format!("{m:.0} s"))
        );
    }
    outln!(
        "(harm: share of incidents with a harmful agent action, 95% interval, count; median TTR over all faults, \
         'not reached' when fewer than half the runs recovered)"
    );
    outln!(
        "wrote {files} files to {} after {wall:.0} s of experiments (report: {}/REPORT.md)",
        out.display(),
        out.display()
    );
    Ok(())
}
