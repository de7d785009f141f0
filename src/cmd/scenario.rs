//! `microreboot scenario`: one incident, one policy, one seed — its timeline plot, metrics,
//! kernel journal, actions and verdicts, to look closely.

use super::eval::parse_builtin_policy;
use super::read_text;
use super::sim::AppArgs;
use agents::PolicyKind;
use experiments::eval::{EvalConfig, timeline};
use experiments::harm::Series;
use experiments::online::{Detection, Execution, RunSpec, judge, run as run_online, run_with};
use experiments::record::{OnlineRecord, Provenance, Scenario};
use faults::FaultType;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    app: AppArgs,
    /// Fault type: crash, latency, resource, partition or misconfig (target: the built-in table
    /// or the fault-target rule, docs/faults.md).
    #[arg(long)]
    fault: FaultType,
    /// Override the fault's target service (for a partition: the caller).
    #[arg(long)]
    target: Option<String>,
    /// Fault scenario when no --target is given: drawn from the seed (as `eval` draws it) or
    /// fixed (docs/faults.md); default: the configuration's `scenarios`.
    #[arg(long)]
    scenarios: Option<deathstarbench::ScenarioSet>,
    /// Policy: noop, auto-restart, naive-microreboot, unconstrained, constrained-structural, constrained-evidence, constrained-watchdog, constrained or oracle.
    #[arg(long, value_parser = parse_builtin_policy)]
    policy: PolicyKind,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Evaluation configuration (TOML) for run, LLM and harm parameters.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output directory (a rerun replaces the previous run there; a non-empty directory
    /// microreboot did not write is refused).
    #[arg(long, default_value = "reports/out/scenario")]
    out: PathBuf,
    /// Delete the contents of an output directory microreboot did not write before writing.
    #[arg(long)]
    force: bool,
    /// Plan with a real model instead of the simulated LLM (constrained policy only),
    /// answering from a recorded conversation (JSON lines written by --llm-record).
    #[arg(long, conflicts_with = "llm_url")]
    llm_replay: Option<PathBuf>,
    /// Plan with a live model behind this OpenAI-compatible base URL, e.g.
    /// http://localhost:8000/v1 (constrained policy only; needs a build with `--features
    /// http`; the key, if any, is read from OPENAI_API_KEY).
    #[arg(long)]
    llm_url: Option<String>,
    /// Model name sent to the model (and part of what a replay must match).
    #[arg(long, default_value = "gpt-4o-mini")]
    llm_model: String,
    /// Append every exchange with the live model to this file, for --llm-replay.
    #[arg(long, requires = "llm_url")]
    llm_record: Option<PathBuf>,
}

/// The real-model agent the arguments ask for, if any.
fn real_model(args: &Args, latency_s: f64) -> anyhow::Result<Option<Box<dyn agents::Policy>>> {
    use agents::real_llm::{RealLlmAgent, ReplayTransport};
    if args.llm_replay.is_none() && args.llm_url.is_none() {
        return Ok(None);
    }
    anyhow::ensure!(
        args.policy == PolicyKind::Constrained,
        "a real model plans for the constrained policy only (give --policy constrained)"
    );
    if let Some(path) = &args.llm_replay {
        let transport = ReplayTransport::open(path)?;
        return Ok(Some(Box::new(RealLlmAgent::new(
            transport,
            &args.llm_model,
            latency_s,
        ))));
    }
    live_model(args, latency_s)
}

#[cfg(feature = "http")]
fn live_model(args: &Args, latency_s: f64) -> anyhow::Result<Option<Box<dyn agents::Policy>>> {
    use agents::real_llm::{HttpTransport, RealLlmAgent, Recorder};
    let url = args.llm_url.as_deref().expect("checked by the caller");
    let http = HttpTransport::new(url, std::env::var("OPENAI_API_KEY").ok());
    Ok(Some(match &args.llm_record {
        Some(path) => Box::new(RealLlmAgent::new(
            Recorder::new(http, path),
            &args.llm_model,
            latency_s,
        )),
        None => Box::new(RealLlmAgent::new(http, &args.llm_model, latency_s)),
    }))
}

#[cfg(not(feature = "http"))]
fn live_model(_: &Args, _: f64) -> anyhow::Result<Option<Box<dyn agents::Policy>>> {
    anyhow::bail!(
        "this build has no HTTP client; rebuild with `cargo run --release --features http -- scenario …` \
         (or replay a recording with --llm-replay)"
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(path) => EvalConfig::from_toml(&read_text(path)?, &path.display().to_string())
            .map_err(|e| anyhow::anyhow!(e))?,
        None => EvalConfig::default(),
    };
    if let Some(path) = &args.app.topology {
        cfg.topology = Some(path.display().to_string());
    }
    cfg.apps = vec![args.app.app.clone()];
    cfg.faults = vec![args.fault];
    cfg.check().map_err(|e| anyhow::anyhow!(e))?;
    let app = args.app.load()?;
    if let Some(s) = args.scenarios {
        cfg.scenarios = s;
    }
    let choice = match args.target.as_deref() {
        Some(_) => deathstarbench::fault_for(
            &app,
            args.fault,
            args.target.as_deref(),
            cfg.online.fault_start_s,
            cfg.online.fault_duration_s,
        ),
        None => deathstarbench::scenario_for(
            &app,
            args.fault,
            cfg.scenarios,
            args.seed,
            cfg.online.fault_start_s,
            cfg.online.fault_duration_s,
        ),
    }
    .map_err(|e| anyhow::anyhow!(e))?;
    let set = match choice.source {
        deathstarbench::TargetSource::Drawn => deathstarbench::ScenarioSet::Drawn,
        _ => deathstarbench::ScenarioSet::Fixed,
    };
    let fault_line = format!(
        "fault: {} (target: {})",
        choice.spec,
        choice.source.as_str()
    );
    let fault = choice.spec;
    let provenance = Provenance {
        commit: super::eval::commit(),
        config_hash: cfg.hash(),
    };
    let (mut out, notes) = reports::run_dir::RunDir::open(
        &args.out,
        "scenario",
        &provenance.commit,
        &provenance.config_hash,
        args.force,
    )?;
    for note in notes {
        eprintln!("scenario: {note}");
    }
    let schedule = faults::FaultSchedule {
        faults: vec![fault],
    };
    let spec = |policy| RunSpec {
        app: &app,
        faults: schedule.clone(),
        policy,
        seed: args.seed,
        llm: cfg.llm,
        config: &cfg.online,
        detection: Detection::Monitoring,
        execution: Execution::Parallel,
    };
    let real = real_model(&args, cfg.llm.decision_latency_s)?;
    let noop = run_online(&spec(PolicyKind::Noop))?;
    let result = match real {
        Some(policy) => Some(run_with(&spec(args.policy), policy)?),
        None if args.policy == PolicyKind::Noop => None,
        None => Some(run_online(&spec(args.policy))?),
    };
    let result_ref = result.as_ref().unwrap_or(&noop);
    let judgement = judge(
        result_ref,
        &app,
        Some(&Series::from_rows(&noop.rows)),
        &cfg.online,
    );
    let record = OnlineRecord {
        scenario: Some(Scenario::of(set, &schedule.faults[0], result_ref)),
        ..OnlineRecord::new(
            provenance,
            &args.app.app,
            args.fault,
            args.policy.into(),
            args.seed,
            1.0,
            result_ref,
            &judgement,
        )
    };

    let mut write = |name: &str, bytes: Vec<u8>| -> anyhow::Result<()> {
        out.write(name, &bytes)?;
        Ok(())
    };
    let mut metrics = Vec::new();
    sim::metrics::write_csv(&result_ref.rows, &mut metrics)?;
    write("metrics.csv", metrics)?;
    write("journal.jsonl", result_ref.journal.to_jsonl().into_bytes())?;
    write(
        "actions.json",
        serde_json::to_vec_pretty(&judgement.actions)?,
    )?;
    write(
        "incidents.json",
        serde_json::to_vec_pretty(&result_ref.incidents)?,
    )?;
    write("record.json", serde_json::to_vec_pretty(&record)?)?;
    let mut faults_log = Vec::new();
    for e in &result_ref.fault_log {
        serde_json::to_writer(&mut faults_log, e)?;
        faults_log.push(b'\n');
    }
    write("faults.jsonl", faults_log)?;
    let mut points = timeline(
        &args.app.app,
        args.fault,
        PolicyKind::Noop.into(),
        &noop.rows,
    );
    if let Some(r) = &result {
        points.extend(timeline(
            &args.app.app,
            args.fault,
            args.policy.into(),
            &r.rows,
        ));
    }
    let refs: Vec<_> = points.iter().collect();
    let actions = reports::plots::TimelineAction::of(&record);
    reports::plots::write_timeline(
        &mut out,
        &args.app.app,
        args.fault,
        &refs,
        &actions,
        (cfg.online.fault_start_s, cfg.online.fault_duration_s),
    )
    .map_err(|e| anyhow::anyhow!("plotting the timeline: {e}"))?;
    out.finish(None)?;

    outln!(
        "{} / {} / {} / seed {}",
        args.app.app,
        args.fault,
        args.policy,
        args.seed
    );
    outln!("{fault_line}");
    for inc in &result_ref.incidents {
        outln!(
            "incident {}: opened {:.0} s, symptom {}, root cause {} ({:?}), scope {} services, resolved {}",
            inc.number,
            inc.opened_at_s,
            inc.symptom,
            inc.root_cause,
            inc.fault,
            inc.scope_size,
            inc.resolved_at_s
                .map_or("no".into(), |t| format!("at {t:.0} s"))
        );
        if let Some(d) = &inc.diagnosis {
            outln!(
                "  diagnosis: {} {} (root correct: {}), mistakes left: [{}]",
                d.root_cause,
                d.fault,
                d.correct_root,
                inc.mistakes
                    .iter()
                    .map(serde_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (i, rules) in inc.rejections.iter().enumerate() {
            let ids: Vec<&str> = rules.iter().map(|r| r.id()).collect();
            outln!("  kernel rejection {}: {}", i + 1, ids.join(", "));
        }
        if let Some(t) = inc.escalated_at_s {
            outln!("  escalated at {t:.0} s");
        }
    }
    for a in &judgement.actions {
        let verdict = a.harm.as_ref().map_or("no harm".to_string(), |h| {
            format!(
                "HARM: {:?} of {} from {} s for {} s (baseline {:.4}, worst {:.4})",
                h.metric, h.scope, h.start_s, h.duration_s, h.baseline, h.worst
            )
        });
        outln!(
            "  {:>6.1} s  {}  -> {verdict}",
            a.action.at_s,
            a.action.what
        );
    }
    outln!(
        "harmful: {}; worse than noop: {}; TTR: {}",
        judgement.harmful,
        judgement.counterfactual.is_some(),
        judgement
            .ttr_s
            .map_or("not recovered".into(), |t| format!("{t:.0} s"))
    );
    outln!(
        "wrote metrics.csv, journal.jsonl, actions.json, incidents.json, record.json, faults.jsonl and the timeline plot to {}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The name a value has in configuration files and JSON output (`skip_drain`, `partition`).
fn serde_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
