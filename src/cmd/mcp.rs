//! `microreboot mcp`: one incident as an MCP server on stdio for an agent of your own, every
//! exchange recorded on a cassette; `--replay` reruns a cassette without the agent.
//!
//! stdout carries the protocol, so everything this command says goes to stderr; the cassette
//! and the run's result go to `--out`.

use super::read_text;
use super::sim::AppArgs;
use agent_mcp::{Clock, Endpoint, Header, Limits, Mode, SessionConfig, cassette};
use agents::PolicyKind;
use experiments::eval::EvalConfig;
use experiments::harm::Series;
use experiments::online::{Detection, Execution, RunSpec, judge, run as run_online};
use faults::FaultType;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    app: AppArgs,
    /// Fault type: crash, latency, resource, partition or misconfig (never shown to the agent).
    #[arg(long, required_unless_present = "replay")]
    fault: Option<FaultType>,
    /// Override the fault's target service.
    #[arg(long)]
    target: Option<String>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Evaluation configuration (TOML) for run, LLM and harm parameters.
    #[arg(long)]
    config: Option<PathBuf>,
    /// `typed`: plans through the kernel (`propose_plan`); `raw`: kubectl-like commands
    /// straight to the orchestrator (`kubectl`).
    #[arg(long, default_value = "typed")]
    mode: Mode,
    /// `virtual`: each tool call costs --tool-call-s virtual seconds (reproducible); `wall`:
    /// it costs the agent's measured wall time (not reproducible; marked in the results).
    #[arg(long, default_value = "virtual", value_parser = parse_clock)]
    clock: Clock,
    /// Virtual seconds per tool call (one model turn); default: the simulated LLM's re-plan
    /// latency (eval.toml [llm] replan_latency_s).
    #[arg(long)]
    tool_call_s: Option<f64>,
    /// Wall-clock seconds the agent has for the incident; past them it is an agent failure.
    #[arg(long)]
    timeout_s: Option<f64>,
    /// Largest message the agent may send, bytes.
    #[arg(long, default_value_t = agent_mcp::server::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Rerun a cassette without the agent (app, fault, seed, mode and costs come from it).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Output directory: cassette.jsonl and result.json.
    #[arg(long, default_value = "reports/out/mcp")]
    out: PathBuf,
    /// Delete the contents of an output directory microreboot did not write before writing.
    #[arg(long)]
    force: bool,
}

fn parse_clock(s: &str) -> Result<Clock, String> {
    match s {
        "virtual" => Ok(Clock::Virtual),
        "wall" => Ok(Clock::Wall),
        other => Err(format!(
            "unknown clock `{other}` (expected virtual or wall)"
        )),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(path) => EvalConfig::from_toml(&read_text(path)?, &path.display().to_string())
            .map_err(|e| anyhow::anyhow!(e))?,
        None => EvalConfig::default(),
    };
    let replay = match &args.replay {
        Some(path) => Some(cassette::Cassette::open(path)?),
        None => None,
    };
    let header = match &replay {
        Some(c) => {
            let h = c.header.clone();
            // A different hash may only be a new key elsewhere in the file; every answer is
            // checked against the recording, and a real difference stops the replay there.
            if h.config_hash != cfg.hash() {
                eprintln!(
                    "mcp: warning: {} was recorded with configuration {}, this run's is {}",
                    args.replay.as_ref().expect("replay").display(),
                    h.config_hash,
                    cfg.hash()
                );
            }
            h
        }
        None => {
            let tool_call_s = args.tool_call_s.unwrap_or(cfg.llm.replan_latency_s);
            anyhow::ensure!(
                tool_call_s.is_finite() && tool_call_s >= 0.0,
                "--tool-call-s must be a finite, non-negative number (got {tool_call_s})"
            );
            Header {
                format: cassette::FORMAT.into(),
                app: args.app.app.clone(),
                fault: args.fault.expect("required without --replay").to_string(),
                target: args.target.clone(),
                seed: args.seed,
                mode: args.mode,
                clock: args.clock,
                tool_call_s,
                config_hash: cfg.hash(),
            }
        }
    };
    let fault: FaultType = header
        .fault
        .parse()
        .map_err(|e| anyhow::anyhow!("cassette header: fault: {e}"))?;
    let app_args = AppArgs {
        app: header.app.clone(),
        topology: args.app.topology.clone(),
    };
    if let Some(path) = &app_args.topology {
        cfg.topology = Some(path.display().to_string());
    }
    cfg.apps = vec![header.app.clone()];
    cfg.faults = vec![fault];
    cfg.check().map_err(|e| anyhow::anyhow!(e))?;
    let app = app_args.load()?;
    let choice = deathstarbench::fault_for(
        &app,
        fault,
        header.target.as_deref(),
        cfg.online.fault_start_s,
        cfg.online.fault_duration_s,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let (mut out, notes) = reports::run_dir::RunDir::open(
        &args.out,
        "mcp",
        &super::eval::commit(),
        &cfg.hash(),
        args.force,
    )?;
    for note in notes {
        eprintln!("mcp: {note}");
    }
    let spec = |policy| RunSpec {
        app: &app,
        faults: faults::FaultSchedule {
            faults: vec![choice.spec.clone()],
        },
        policy,
        seed: header.seed,
        llm: cfg.llm,
        config: &cfg.online,
        detection: Detection::Monitoring,
        execution: Execution::Parallel,
    };
    let session = SessionConfig {
        mode: header.mode,
        clock: header.clock,
        tool_call_s: header.tool_call_s,
    };
    let label = header.mode.runs_as();
    let timeout = match args.timeout_s {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--timeout-s must be a positive number (got {s})"),
        None => None,
    };
    let endpoint = match replay {
        Some(c) => Endpoint::Replay(c),
        None => Endpoint::Stdio,
    };
    if matches!(endpoint, Endpoint::Stdio) {
        eprintln!(
            "mcp: serving one {} incident on {} (seed {}, {} mode) over stdio",
            fault,
            header.app,
            header.seed,
            header.mode.as_str()
        );
    }
    let limits = Limits {
        timeout,
        max_message_bytes: args.max_message_bytes,
    };
    // The noop counterfactual runs beside the agent, so that little is left to compute once the
    // agent is done (an MCP client gives a server a short grace period after it disconnects).
    let (agent_run, noop) = std::thread::scope(|s| {
        let noop = s.spawn(|| run_online(&spec(PolicyKind::Noop)));
        let agent =
            agent_mcp::run_incident(&spec(label), session, header.clone(), endpoint, limits);
        (agent, noop.join())
    });
    let agent_run = agent_run?;
    let noop = noop.map_err(|_| anyhow::anyhow!("the noop run panicked"))??;
    let judgement = judge(
        &agent_run.run,
        &app,
        Some(&Series::from_rows(&noop.rows)),
        &cfg.online,
    );
    let result = agent_mcp::result_json(&agent_run, &judgement);
    out.write("cassette.jsonl", &agent_run.cassette.to_bytes())?;
    out.write("result.json", &serde_json::to_vec_pretty(&result)?)?;
    out.finish(None)?;
    let closed = agent_run.cassette.closed.as_ref();
    eprintln!(
        "mcp: {} exchanges; session: {}; incident {}; harmful: {}; TTR: {}; wrote {}",
        agent_run.cassette.exchanges.len(),
        closed.map_or("open", |c| c.reason.as_str()),
        if agent_run
            .run
            .incidents
            .iter()
            .all(|i| i.resolved_at_s.is_some())
        {
            "resolved"
        } else {
            "not resolved"
        },
        judgement.harmful,
        judgement
            .ttr_s
            .map_or("not recovered".into(), |t| format!("{t:.0} s")),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
