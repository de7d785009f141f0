//! The evaluation matrix: online (app × fault × policy × seed), the LLM error-rate sensitivity
//! sweep, the offline experiment on the industrial graphs, concurrent recovery, and the graphs'
//! shapes — run in parallel across jobs (each run single-threaded), in a fixed job order, so the
//! result lines are the same whatever the thread count.

use crate::external::{AgentConfig, AgentRunner, NoAgents};
use crate::harm::Series;
use crate::offline::{IndustrialGraph, OfflineConfig, OfflineSetup, run_graph};
use crate::online::{Detection, Execution, OnlineConfig, RunError, RunSpec, judge, run};
use crate::parallel::{ParallelConfig, run_pair};
use crate::record::{GraphRecord, OfflineRecord, OnlineRecord, Provenance, ResultLine, Scenario};
use crate::shard::{JobOutput, Part, Shard};
use agents::{LlmConfig, PolicyId, PolicyKind};
use faults::FaultType;
use indicatif::{ProgressBar, ProgressStyle};
use kernel::DependencyGraph;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim::ScopeKind;
use sim::spec::AppSpec;
use std::collections::BTreeMap;

/// The LLM error-rate sensitivity sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensitivityConfig {
    /// Error-rate factors besides 1 (which the main matrix covers): every mistake rate and
    /// every diagnosis error rate is multiplied by the factor.
    pub factors: Vec<f64>,
    /// Online seeds per factor (the first seeds of the main matrix, so their noop runs serve).
    pub online_seeds: u32,
    /// Offline incidents per graph per factor.
    pub offline_incidents: u32,
}

impl Default for SensitivityConfig {
    fn default() -> Self {
        SensitivityConfig {
            factors: vec![0.0, 0.5, 1.5, 2.0],
            online_seeds: 2,
            offline_incidents: 300,
        }
    }
}

/// Everything the evaluation runs. Every field has a documented default; a TOML file may set
/// any subset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// First seed; runs use `seed .. seed + seeds`.
    pub seed: u64,
    /// Online seeds per app × fault × policy.
    pub seeds: u32,
    /// Applications (DeathStarBench, or of `topology`).
    pub apps: Vec<String>,
    /// A topology file (the schema of `deathstarbench/data/deathstarbench.json`) to take the
    /// applications from instead of the embedded DeathStarBench one; a relative path is relative
    /// to the configuration file that names it. Omitted from the serialised configuration when
    /// unset, so that the configuration hash of the built-in evaluation does not change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    /// Fault types.
    pub faults: Vec<FaultType>,
    /// Fault scenarios: `drawn` (target, replicas and intensity drawn from each seed) or
    /// `fixed` (one per app and fault; docs/faults.md).
    pub scenarios: deathstarbench::ScenarioSet,
    /// Policies: built-in names, or external agents declared under `[agents.NAME]`.
    pub policies: Vec<PolicyId>,
    /// Industrial graphs for the offline experiment.
    pub graphs: Vec<IndustrialGraph>,
    /// The simulated LLM.
    pub llm: LlmConfig,
    /// Online runs.
    pub online: OnlineConfig,
    /// The offline experiment.
    pub offline: OfflineConfig,
    /// Concurrent recovery.
    pub parallel: ParallelConfig,
    /// The sensitivity sweep.
    pub sensitivity: SensitivityConfig,
    /// External agents (`[agents.NAME]`), by name. Omitted from the serialised configuration
    /// when none is declared, so that the built-in evaluation's configuration hash is unchanged.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, AgentConfig>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            seed: 1,
            seeds: 10,
            apps: deathstarbench::APPS.iter().map(|a| a.to_string()).collect(),
            topology: None,
            faults: FaultType::ALL.to_vec(),
            scenarios: deathstarbench::ScenarioSet::default(),
            policies: PolicyKind::ALL.into_iter().map(PolicyId::from).collect(),
            graphs: IndustrialGraph::ALL.to_vec(),
            llm: LlmConfig::default(),
            online: OnlineConfig::default(),
            offline: OfflineConfig::default(),
            parallel: ParallelConfig::default(),
            sensitivity: SensitivityConfig::default(),
            agents: BTreeMap::new(),
        }
    }
}

impl EvalConfig {
    /// The small matrix of `eval --quick`: two apps, all faults and policies, two seeds.
    pub fn quick() -> Self {
        EvalConfig {
            seeds: 2,
            apps: deathstarbench::APPS[..2]
                .iter()
                .map(|a| a.to_string())
                .collect(),
            offline: OfflineConfig {
                incidents: 200,
                ..OfflineConfig::default()
            },
            parallel: ParallelConfig {
                seeds: 1,
                counts: vec![1, 5],
                ..ParallelConfig::default()
            },
            sensitivity: SensitivityConfig {
                factors: vec![0.0, 2.0],
                online_seeds: 1,
                offline_incidents: 100,
            },
            ..EvalConfig::default()
        }
    }

    /// Parses a TOML configuration over the defaults (see [`EvalConfig::merge_toml`]).
    pub fn from_toml(text: &str, source: &str) -> Result<Self, String> {
        Self::merge_toml(EvalConfig::default(), text, source)
    }

    /// Overlays a TOML document on `base`: tables merge key by key.
    pub fn merge_toml(base: EvalConfig, text: &str, source: &str) -> Result<Self, String> {
        let cfg = Self::merge_toml_unchecked(base, text, source)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// [`EvalConfig::merge_toml`] without the final [`EvalConfig::check`], for a caller that
    /// still adjusts the result (command-line flags) and checks it afterwards.
    pub fn merge_toml_unchecked(
        base: EvalConfig,
        text: &str,
        source: &str,
    ) -> Result<Self, String> {
        crate::external::check_agents_in(text, source)?;
        let overlay: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("{source}: {e}"))?;
        let mut merged = toml::Table::try_from(&base).map_err(|e| format!("{source}: {e}"))?;
        merge(&mut merged, overlay);
        let cfg: EvalConfig = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| format!("{source}: {e}"))?;
        Ok(cfg)
    }

    /// Checks names and counts, listing the valid choices in errors.
    pub fn check(&self) -> Result<(), String> {
        if self.seeds == 0 {
            return Err("seeds must be at least 1".into());
        }
        // Names in a topology file are checked when it is read (`load_apps`).
        for app in self.apps.iter().filter(|_| self.topology.is_none()) {
            if !deathstarbench::APPS.contains(&app.as_str()) {
                return Err(format!(
                    "unknown app `{app}`; choose from: {}",
                    deathstarbench::APPS.join(", ")
                ));
            }
        }
        if self.apps.is_empty() || self.faults.is_empty() || self.policies.is_empty() {
            return Err("apps, faults and policies must each name at least one".into());
        }
        fn unique<T: PartialEq + std::fmt::Debug>(what: &str, xs: &[T]) -> Result<(), String> {
            match xs.iter().enumerate().find(|(i, x)| xs[..*i].contains(x)) {
                Some((_, x)) => Err(format!("{what} lists {x:?} twice")),
                None => Ok(()),
            }
        }
        unique("apps", &self.apps)?;
        // By name, so a repeat reads `"crash"` as it is written in the file.
        let fault_names: Vec<&str> = self.faults.iter().map(|f| f.as_str()).collect();
        unique("faults", &fault_names)?;
        unique("policies", &self.policies)?;
        crate::external::check_agents(&self.agents)?;
        for p in &self.policies {
            if let PolicyId::External(name) = p
                && !self.agents.contains_key(*name)
            {
                let builtin: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.as_str()).collect();
                let declared: Vec<&str> = self.agents.keys().map(String::as_str).collect();
                let declared = if declared.is_empty() {
                    "none declared".to_string()
                } else {
                    format!("declared: {}", declared.join(", "))
                };
                return Err(format!(
                    "unknown policy `{name}`; choose from: {}, or an external agent under [agents.NAME] ({declared})",
                    builtin.join(", "),
                ));
            }
        }
        unique("graphs", &self.graphs)?;
        unique("sensitivity.factors", &self.sensitivity.factors)?;
        if self.sensitivity.factors.contains(&1.0) {
            return Err(
                "sensitivity.factors must not contain 1.0: factor 1 is the main matrix, already run"
                    .into(),
            );
        }
        check_numbers(
            &serde_json::to_value(self).map_err(|e| e.to_string())?,
            &mut Vec::new(),
        )?;
        if self.online.rate_rps <= 0.0 {
            return Err("online.rate_rps must be positive: without traffic no SLO can fail".into());
        }
        if !(self.online.run_s > self.online.fault_start_s && self.online.fault_start_s >= 0.0) {
            return Err("online.run_s must exceed online.fault_start_s".into());
        }
        Ok(())
    }

    /// FNV-1a of the canonical JSON, hex: identifies the configuration in every result line.
    pub fn hash(&self) -> String {
        format!(
            "{:016x}",
            crate::fnv1a(
                serde_json::to_string(self)
                    .expect("serialisable")
                    .as_bytes()
            )
        )
    }

    /// The applications to run, from the embedded topology or from `topology`, with the default
    /// deployment.
    pub fn load_apps(&self) -> Result<Vec<AppSpec>, String> {
        let deployment = deathstarbench::Deployment::default();
        match &self.topology {
            None => self
                .apps
                .iter()
                .map(|a| deathstarbench::load(a, &deployment).map_err(|e| e.to_string()))
                .collect(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("topology = {path:?}: cannot read: {e}"))?;
                let file = deathstarbench::parse(&text, path).map_err(|e| e.to_string())?;
                self.apps
                    .iter()
                    .map(|a| {
                        deathstarbench::select(&file, a, path, &deployment)
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            }
        }
    }

    /// The seeds of the online matrix.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..u64::from(self.seeds)).map(|i| self.seed + i).collect()
    }
}

/// Every fractional number of the configuration is a duration, rate, factor or probability:
/// finite, non-negative and at most a billion (so that virtual durations stay representable);
/// the simulated LLM's accuracies and mistake rates are probabilities.
fn check_numbers(value: &serde_json::Value, path: &mut Vec<String>) -> Result<(), String> {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                check_numbers(v, path)?;
                path.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                check_numbers(v, path)?;
            }
        }
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let key = path.join(".");
            let probability = key.starts_with("llm.mistakes.")
                || [
                    "llm.localization_accuracy",
                    "llm.fault_type_accuracy",
                    "llm.verification_catch",
                    "llm.fix_on_feedback",
                    "llm.raw.restart_loop",
                    "llm.raw.symptom_fix",
                    "llm.raw.exploratory",
                    "llm.raw.early_success",
                    "llm.raw.stale_state",
                ]
                .contains(&key.as_str());
            let max = if probability { 1.0 } else { 1e9 };
            if !(0.0..=max).contains(&x) {
                return Err(format!("{key} = {x}: must be a number in [0, {max}]"));
            }
        }
        // NaN and infinities serialise as null.
        serde_json::Value::Null => {
            return Err(format!("{}: must be a finite number", path.join(".")));
        }
        _ => {}
    }
    Ok(())
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// One point of a timeline plot: the user-facing error rate and worst path P99 of a second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Application.
    pub app: String,
    /// Fault.
    pub fault: FaultType,
    /// Policy.
    pub policy: PolicyId,
    /// Second.
    pub second: u32,
    /// Failed user requests / user requests.
    pub error_rate: f64,
    /// Largest P99 over user paths, ms.
    pub p99_ms: f64,
}

/// Aggregates a run's path rows into timeline points.
pub fn timeline(
    app: &str,
    fault: FaultType,
    policy: PolicyId,
    rows: &[sim::SecondStats],
) -> Vec<TimelinePoint> {
    let seconds = rows.iter().map(|r| r.second + 1).max().unwrap_or(0);
    let mut count = vec![0u64; seconds as usize];
    let mut errors = vec![0u64; seconds as usize];
    let mut p99 = vec![0f64; seconds as usize];
    for r in rows.iter().filter(|r| r.kind == ScopeKind::Path) {
        let s = r.second as usize;
        count[s] += r.count;
        errors[s] += r.errors();
        p99[s] = p99[s].max(r.p99_ms);
    }
    (0..seconds as usize)
        .map(|s| TimelinePoint {
            app: app.to_string(),
            fault,
            policy,
            second: s as u32,
            error_rate: if count[s] == 0 {
                0.0
            } else {
                errors[s] as f64 / count[s] as f64
            },
            p99_ms: p99[s],
        })
        .collect()
}

/// What the evaluation produced.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EvalOutput {
    /// `results.jsonl`, in job order.
    pub lines: Vec<ResultLine>,
    /// Timelines of the first seed of the first app, every fault and policy.
    pub timelines: Vec<TimelinePoint>,
    /// What the incident explorer shows of each online run beyond its result line, in the
    /// order of the online lines (not part of `results.jsonl`).
    pub details: Vec<RunDetail>,
}

/// One online run as the incident explorer shows it: its result line, plus the fault's target,
/// its per-second timeline, the kernel journal, the incidents (with the kernel's verdicts) and
/// every action with its targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    /// The run's result line.
    pub record: OnlineRecord,
    /// The fault's target service.
    pub target: String,
    /// When the fault starts, seconds.
    pub fault_start_s: f64,
    /// How long it lasts, seconds.
    pub fault_duration_s: f64,
    /// Error rate and worst path P99 of every second.
    pub timeline: Vec<TimelinePoint>,
    /// The kernel journal.
    pub journal: Vec<kernel::journal::Record>,
    /// The incidents opened, with the rule ids of every rejection.
    pub incidents: Vec<crate::online::IncidentLog>,
    /// Every action that took effect, with its targets.
    pub actions: Vec<crate::online::ActionLog>,
}

#[derive(Debug)]
enum Job {
    Cell {
        app: usize,
        fault: FaultType,
        seed: u64,
        seed_index: u32,
    },
    Offline {
        graph: usize,
        factor: f64,
        from: u32,
        to: u32,
    },
    Parallel {
        app: usize,
        seed: u64,
        count: u32,
        mix: crate::parallel::Mix,
    },
    Graph {
        graph: usize,
    },
}

impl Job {
    /// Work units for the progress bar (runs, or offline incident batches of 100).
    fn weight(&self, cfg: &EvalConfig) -> u64 {
        match self {
            Job::Cell { seed_index, .. } => {
                let sweep = if *seed_index < cfg.sensitivity.online_seeds {
                    2 * cfg.sensitivity.factors.len()
                } else {
                    0
                };
                (cfg.policies.len() + 1 + sweep) as u64
            }
            Job::Offline { from, to, .. } => u64::from((to - from).div_ceil(100)),
            Job::Parallel { .. } => 2,
            Job::Graph { .. } => 1,
        }
    }
}

/// Runs the whole evaluation of built-in policies with `threads` worker threads (0: one per
/// core); see [`run_eval_with`] for external agents.
pub fn run_eval(
    cfg: &EvalConfig,
    provenance: &Provenance,
    threads: usize,
    progress: bool,
) -> Result<EvalOutput, String> {
    run_eval_with(cfg, provenance, threads, progress, &NoAgents)
}

/// Runs the whole evaluation, with `agents` running the external agents' incidents.
pub fn run_eval_with(
    cfg: &EvalConfig,
    provenance: &Provenance,
    threads: usize,
    progress: bool,
    runner: &dyn AgentRunner,
) -> Result<EvalOutput, String> {
    let part = run_eval_shard(cfg, provenance, threads, progress, Shard::WHOLE, runner)?;
    Ok(crate::shard::concat(part.jobs))
}

/// Runs the jobs of one shard of the evaluation (see [`crate::shard`]).
pub fn run_eval_shard(
    cfg: &EvalConfig,
    provenance: &Provenance,
    threads: usize,
    progress: bool,
    shard: Shard,
    runner: &dyn AgentRunner,
) -> Result<Part, String> {
    cfg.check()?;
    let apps = cfg.load_apps()?;
    let graphs: Vec<DependencyGraph> = cfg.graphs.iter().map(|g| g.build(cfg.seed)).collect();
    let mut jobs = Vec::new();
    for (a, _) in cfg.apps.iter().enumerate() {
        for fault in &cfg.faults {
            for (i, seed) in cfg.seed_list().into_iter().enumerate() {
                jobs.push(Job::Cell {
                    app: a,
                    fault: *fault,
                    seed,
                    seed_index: i as u32,
                });
            }
        }
    }
    for (g, _) in cfg.graphs.iter().enumerate() {
        jobs.push(Job::Graph { graph: g });
        let mut sweep = vec![(1.0, cfg.offline.incidents)];
        sweep.extend(
            cfg.sensitivity
                .factors
                .iter()
                .map(|&f| (f, cfg.sensitivity.offline_incidents)),
        );
        for (factor, incidents) in sweep {
            for from in (0..incidents).step_by(100) {
                jobs.push(Job::Offline {
                    graph: g,
                    factor,
                    from,
                    to: (from + 100).min(incidents),
                });
            }
        }
    }
    for (a, _) in cfg.apps.iter().enumerate() {
        for &mix in &cfg.parallel.mixes {
            for &count in &cfg.parallel.counts {
                for s in 0..u64::from(cfg.parallel.seeds) {
                    jobs.push(Job::Parallel {
                        app: a,
                        seed: cfg.seed + s,
                        count,
                        mix,
                    });
                }
            }
        }
    }
    let total_jobs = jobs.len();
    let jobs: Vec<(usize, Job)> = jobs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.contains(*i))
        .collect();
    let total: u64 = jobs.iter().map(|(_, j)| j.weight(cfg)).sum();
    let bar = if progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let results: Vec<Result<JobOutput, String>> = pool.install(|| {
        jobs.par_iter()
            .map(|(i, job)| {
                let out = run_job(job, cfg, &apps, &graphs, provenance, runner);
                bar.inc(job.weight(cfg));
                out.map(|output| JobOutput {
                    position: *i,
                    output,
                })
            })
            .collect()
    });
    bar.finish_and_clear();
    Ok(Part {
        shard,
        total_jobs,
        jobs: results.into_iter().collect::<Result<_, _>>()?,
    })
}

fn run_job(
    job: &Job,
    cfg: &EvalConfig,
    apps: &[AppSpec],
    graphs: &[DependencyGraph],
    provenance: &Provenance,
    runner: &dyn AgentRunner,
) -> Result<EvalOutput, String> {
    let _span = tracing::info_span!("eval_job", job = ?job).entered();
    let mut out = EvalOutput::default();
    match job {
        Job::Cell {
            app,
            fault,
            seed,
            seed_index,
        } => {
            let app_spec = &apps[*app];
            let fault_spec = deathstarbench::scenario_for(
                app_spec,
                *fault,
                cfg.scenarios,
                *seed,
                cfg.online.fault_start_s,
                cfg.online.fault_duration_s,
            )
            .map_err(|e| format!("{} {fault}: {e}", app_spec.name))?
            .spec;
            let target = fault_spec.target.clone();
            let schedule = faults::FaultSchedule {
                faults: vec![fault_spec],
            };
            let context = |policy: PolicyId, e: RunError| {
                format!("{} {fault} {policy} seed {seed}: {e}", app_spec.name)
            };
            let spec = |policy: PolicyKind, llm: LlmConfig| RunSpec {
                app: app_spec,
                faults: schedule.clone(),
                policy,
                seed: *seed,
                llm,
                config: &cfg.online,
                detection: Detection::Monitoring,
                execution: Execution::Parallel,
            };
            let one = |policy: PolicyKind, llm: LlmConfig| {
                run(&spec(policy, llm)).map_err(|e| context(policy.into(), e))
            };
            let noop = one(PolicyKind::Noop, cfg.llm)?;
            let noop_series = Series::from_rows(&noop.rows);
            let with_timeline = *app == 0 && *seed_index == 0;
            let record = |policy: PolicyId,
                          factor: f64,
                          result: &crate::online::OnlineRun,
                          agent_failure: Option<String>,
                          out: &mut EvalOutput| {
                let judgement = judge(result, app_spec, Some(&noop_series), &cfg.online);
                let record = OnlineRecord {
                    scenario: Some(Scenario::of(cfg.scenarios, &schedule.faults[0], result)),
                    agent_failure,
                    ..OnlineRecord::new(
                        provenance.clone(),
                        &app_spec.name,
                        *fault,
                        policy,
                        *seed,
                        factor,
                        result,
                        &judgement,
                    )
                };
                let points = timeline(&app_spec.name, *fault, policy, &result.rows);
                if with_timeline && factor == 1.0 {
                    out.timelines.extend(points.iter().cloned());
                }
                out.details.push(RunDetail {
                    record: record.clone(),
                    target: target.clone(),
                    fault_start_s: cfg.online.fault_start_s,
                    fault_duration_s: cfg.online.fault_duration_s,
                    timeline: points,
                    journal: result.journal.records().to_vec(),
                    incidents: result.incidents.clone(),
                    actions: result.actions.clone(),
                });
                out.lines.push(ResultLine::Online(record));
            };
            for &policy in &cfg.policies {
                match policy {
                    PolicyId::Builtin(PolicyKind::Noop) => {
                        record(policy, 1.0, &noop, None, &mut out)
                    }
                    PolicyId::Builtin(kind) => {
                        let result = one(kind, cfg.llm)?;
                        record(policy, 1.0, &result, None, &mut out);
                    }
                    // The same seed and drawn scenario as the built-ins; the agent's mode
                    // picks the kernel's guards.
                    PolicyId::External(name) => {
                        let agent = &cfg.agents[name];
                        let ext = runner
                            .run(name, agent, &spec(agent.mode.runs_as(), cfg.llm))
                            .map_err(|e| context(policy, e))?;
                        record(policy, 1.0, &ext.run, ext.agent_failure, &mut out);
                    }
                }
            }
            // External agents have no error rate to vary: the sweep is the simulated LLM's.
            if *seed_index < cfg.sensitivity.online_seeds {
                for &factor in &cfg.sensitivity.factors {
                    for policy in [PolicyKind::Unconstrained, PolicyKind::Constrained] {
                        let result = one(policy, cfg.llm.with_error_factor(factor))?;
                        record(policy.into(), factor, &result, None, &mut out);
                    }
                }
            }
        }
        Job::Offline {
            graph,
            factor,
            from,
            to,
        } => {
            let which = cfg.graphs[*graph];
            // External agents run online only: the offline experiment has no simulator to serve
            // their tool calls.
            let policies: Vec<PolicyKind> = if *factor == 1.0 {
                cfg.policies.iter().filter_map(|p| p.builtin()).collect()
            } else {
                vec![PolicyKind::Unconstrained, PolicyKind::Constrained]
            };
            let setup = OfflineSetup {
                which,
                graph: &graphs[*graph],
                seed: cfg.seed,
                llm: cfg.llm.with_error_factor(*factor),
                cfg: &cfg.offline,
                harm: &cfg.online.harm,
            };
            let outcomes = run_graph(&setup, &policies, *from..*to);
            out.lines
                .extend(outcomes.into_iter().map(|(incident, outcome)| {
                    ResultLine::Offline(OfflineRecord {
                        provenance: provenance.clone(),
                        graph: which,
                        incident,
                        seed: cfg.seed,
                        error_factor: *factor,
                        outcome,
                    })
                }));
        }
        Job::Parallel {
            app,
            seed,
            count,
            mix,
        } => {
            let records = run_pair(
                &apps[*app],
                *seed,
                *count,
                *mix,
                &cfg.online,
                cfg.llm,
                provenance,
            )
            .map_err(|e| {
                format!(
                    "{} concurrent recovery ({count} × {}), seed {seed}: {e}",
                    apps[*app].name,
                    mix.as_str()
                )
            })?;
            out.lines
                .extend(records.into_iter().map(ResultLine::Parallel));
        }
        Job::Graph { graph } => {
            let g = &graphs[*graph];
            let stats = traces::stats::graph_stats(g);
            out.lines.push(ResultLine::Graph(GraphRecord {
                provenance: provenance.clone(),
                graph: cfg.graphs[*graph],
                services: stats.services,
                edges: stats.edges,
                hubs: stats.hubs,
                blast_p50: stats.blast_radius.p50,
                blast_p90: stats.blast_radius.p90,
                blast_p99: stats.blast_radius.p99,
                blast_max: stats.blast_radius.max,
            }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::EvalConfig;

    #[test]
    fn configurations_with_unusable_numbers_or_repeats_are_refused_by_name() {
        for (toml, expected) in [
            ("[llm]\ndecision_latency_s = nan", "llm.decision_latency_s"),
            ("[llm]\nreplan_latency_s = -6.0", "llm.replan_latency_s"),
            ("[online]\nrun_s = inf", "online.run_s"),
            (
                "[llm.mistakes]\nskip_drain = 1.5",
                "llm.mistakes.skip_drain",
            ),
            (
                "[llm]\nlocalization_accuracy = 2.0",
                "llm.localization_accuracy",
            ),
            ("policies = [\"noop\", \"noop\"]", "policies lists"),
            ("faults = [\"crash\", \"crash\"]", "faults lists"),
            (
                "[sensitivity]\nfactors = [0.5, 1.0]",
                "factor 1 is the main matrix",
            ),
            ("seeds = 0", "seeds must be at least 1"),
            (
                "[online]\nrate_rps = 0.0",
                "online.rate_rps must be positive",
            ),
        ] {
            let err = EvalConfig::from_toml(toml, "t.toml").expect_err(toml);
            assert!(err.contains(expected), "{toml}: {err}");
        }
        assert!(EvalConfig::from_toml("[llm]\nreplan_latency_s = 0.0", "t.toml").is_ok());
        EvalConfig::default().check().unwrap();
        EvalConfig::quick().check().unwrap();
    }
}
