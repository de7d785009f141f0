//! `microreboot bench gate`: deterministic performance gates. Each workload — plan validation,
//! recovery-group queries, window rebuild + query, incremental window update, Alibaba CSV
//! ingestion, a short simulation —
//! runs once under `valgrind --tool=callgrind`, which counts the instructions executed inside
//! its measured function only (`--toggle-collect`; fixture construction is not counted). The
//! counts are compared with a committed baseline: more than `--threshold-pct` above it fails.
//!
//! Instruction counts do not swing with a shared machine's load as wall-clock percentiles do
//! (`bench validate|infer|sim` keep those, for humans); they move with the code, the compiler
//! and the valgrind version, which the baseline file records.

use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use kernel::validate::{KernelView, validate};
use microreboot_benches::{
    InferFixture, ValidateFixture, WINDOW_US, alibaba_csv, infer_fixtures, rebuild, rebuild_target,
    replay, validate_fixture,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The gated workloads: the same fixtures as `bench validate|infer|sim`, smaller, so that the
/// six fit in well under a minute of callgrind on two cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Workload {
    /// 2,000 validations of the 32-step plan against the 5,000-service graph.
    Validate,
    /// 2,000 recovery-group queries on each industrial graph.
    Query,
    /// Two rebuilds of each graph from a 50,000-call window, each followed by a query.
    Rebuild,
    /// The maintained window of each graph fed one more window of 50,000 calls, span by span,
    /// as the previous window's calls expire (no rebuild).
    Update,
    /// 100,000 Alibaba v2022 CSV rows (20 % duplicates) parsed and windowed.
    Ingest,
    /// socialNetwork at 300 requests/s for 20 virtual seconds.
    Sim,
}

impl Workload {
    const ALL: [Workload; 6] = [
        Workload::Validate,
        Workload::Query,
        Workload::Rebuild,
        Workload::Update,
        Workload::Ingest,
        Workload::Sim,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Validate => "validate",
            Workload::Query => "query",
            Workload::Rebuild => "rebuild",
            Workload::Update => "update",
            Workload::Ingest => "ingest",
            Workload::Sim => "sim",
        }
    }
}

/// The measured function of every workload: callgrind counts only while it runs.
const MEASURED: &str = "*gate::measured*";

#[inline(never)]
fn measured_validate(f: &ValidateFixture, view: &KernelView) {
    for _ in 0..2000 {
        black_box(validate(black_box(&f.plan), &f.graph, &f.scope, view));
    }
}

#[inline(never)]
fn measured_query(fixtures: &[InferFixture], inference: &mut Inference, incident: &IncidentId) {
    for f in fixtures {
        for &s in f.symptoms.iter().take(2000) {
            black_box(inference.infer(&f.graph, s, incident.clone(), GroupConfig::default()));
        }
    }
}

#[inline(never)]
fn measured_rebuild(
    fixtures: &[InferFixture],
    targets: &mut [traces::WindowedGraph],
    inference: &mut Inference,
    incident: &IncidentId,
) {
    for (f, w) in fixtures.iter().zip(targets) {
        for j in 0..2 {
            rebuild(w, &f.window);
            let name = &f.graph.service(f.symptoms[j]).name;
            if let Some(s) = w.graph().id(name) {
                black_box(inference.infer(w.graph(), s, incident.clone(), GroupConfig::default()));
            }
        }
    }
}

#[inline(never)]
fn measured_update(fixtures: &[InferFixture], targets: &mut [traces::WindowedGraph]) {
    for (f, w) in fixtures.iter().zip(targets) {
        replay(w, &f.window, WINDOW_US, 0..f.window.len());
    }
}

#[inline(never)]
fn measured_ingest(csv: &[u8]) -> anyhow::Result<u64> {
    let mut w = traces::WindowedGraph::new(Some(WINDOW_US));
    let stats = traces::alibaba::read(
        csv,
        "synthetic",
        traces::IngestOptions::default(),
        &mut |c| w.ingest(c),
    )?;
    black_box(&w);
    Ok(stats.calls)
}

#[inline(never)]
fn measured_sim(s: &mut sim::Sim, end: kernel::VirtualTime) -> anyhow::Result<()> {
    s.run_until(end)?;
    Ok(())
}

/// Builds a workload's fixture (not counted) and runs its measured function once.
pub fn run_workload(w: Workload) -> anyhow::Result<ExitCode> {
    let incident = IncidentId::try_from("gate").expect("valid id");
    match w {
        Workload::Validate => {
            let f = validate_fixture(5000, 7);
            measured_validate(&f, &KernelView::idle());
        }
        Workload::Query => {
            let fixtures = infer_fixtures(2000, 1000);
            measured_query(&fixtures, &mut Inference::new(), &incident);
        }
        Workload::Rebuild => {
            let fixtures = infer_fixtures(2, 50_000);
            let mut targets: Vec<_> = fixtures.iter().map(|f| rebuild_target(&f.graph)).collect();
            measured_rebuild(&fixtures, &mut targets, &mut Inference::new(), &incident);
        }
        Workload::Update => {
            let fixtures = infer_fixtures(2, 50_000);
            let mut targets: Vec<_> = fixtures.iter().map(|f| rebuild_target(&f.graph)).collect();
            for (f, w) in fixtures.iter().zip(&mut targets) {
                rebuild(w, &f.window);
            }
            measured_update(&fixtures, &mut targets);
            black_box(&targets);
        }
        Workload::Ingest => {
            let csv = alibaba_csv(&traces::synth::alibaba_like(1), 100_000, 3);
            black_box(measured_ingest(&csv)?);
        }
        Workload::Sim => {
            let spec =
                deathstarbench::load("socialNetwork", &deathstarbench::Deployment::default())?;
            let cfg = sim::SimConfig {
                rate_rps: 300.0,
                ..sim::SimConfig::default()
            };
            let mut s = sim::Sim::new(spec, cfg)?;
            measured_sim(&mut s, kernel::VirtualTime(20_000_000))?;
            black_box(s.events_processed());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The committed instruction counts.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// What produced them (`valgrind --version`; the counts also depend on the compiler).
    pub valgrind: String,
    /// Instructions per workload.
    pub instructions: BTreeMap<String, u64>,
}

#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// The committed baseline.
    #[arg(long, default_value = "benches/instructions.json")]
    baseline: PathBuf,
    /// Fail when a workload executes more than this many percent more instructions.
    #[arg(long, default_value_t = 5.0)]
    threshold_pct: f64,
    /// Write the measured counts as the new baseline instead of checking them.
    #[arg(long)]
    update: bool,
    /// Only these workloads (comma-separated; default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Workload>,
    /// The valgrind executable.
    #[arg(long, default_value = "valgrind")]
    valgrind: PathBuf,
}

/// Runs `bench workload W` of this very binary under callgrind; returns its instruction count.
fn count(valgrind: &Path, w: Workload) -> anyhow::Result<u64> {
    let exe = std::env::current_exe()?;
    let dir = tempfile_dir()?;
    let out_file = dir.join(format!("callgrind.{}.out", w.name()));
    let out = Command::new(valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={MEASURED}"))
        .arg(&exe)
        .args(["bench", "workload", w.name()])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", valgrind.display()))?;
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    anyhow::ensure!(
        out.status.success(),
        "{} on workload {}: {}\n{}",
        valgrind.display(),
        w.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The output file's `summary:` line (or `totals:`) holds the instructions collected.
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "callgrind wrote no instruction count for workload {} ({})",
                w.name(),
                out_file.display()
            )
        })?;
    anyhow::ensure!(
        total > 0,
        "callgrind counted no instructions in {MEASURED} for workload {}: was the measured \
         function inlined or renamed?",
        w.name()
    );
    Ok(total)
}

/// A private scratch directory for callgrind's output files.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("microreboot-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn valgrind_version(valgrind: &Path) -> anyhow::Result<String> {
    let out = Command::new(valgrind)
        .arg("--version")
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run {}: {e} (install valgrind: apt-get install valgrind)",
                valgrind.display()
            )
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `bench gate`.
pub fn run_gate(args: GateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.threshold_pct >= 0.0,
        "--threshold-pct {}: must be a non-negative number",
        args.threshold_pct
    );
    let version = valgrind_version(&args.valgrind)?;
    let workloads: Vec<Workload> = if args.only.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let baseline: Option<Baseline> = if args.update {
        None
    } else {
        let text = super::read_text(&args.baseline)?;
        Some(
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.baseline.display()))?,
        )
    };
    if let Some(b) = &baseline
        && b.valgrind != version
    {
        eprintln!(
            "bench gate: the baseline was counted with {}, this is {version}; counts may differ",
            b.valgrind
        );
    }
    let mut measured = BTreeMap::new();
    let mut failed = Vec::new();
    outln!("| workload | baseline | instructions | change |\n|---|---|---|---|");
    for w in workloads {
        let n = count(&args.valgrind, w)?;
        measured.insert(w.name().to_string(), n);
        let Some(b) = &baseline else {
            outln!("| {} | | {n} | |", w.name());
            continue;
        };
        let base = *b.instructions.get(w.name()).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no count for workload `{}` (rerun with --update)",
                args.baseline.display(),
                w.name()
            )
        })?;
        let change = 100.0 * (n as f64 / base as f64 - 1.0);
        let verdict = if change > args.threshold_pct {
            failed.push(format!("{} {change:+.2}%", w.name()));
            " **over the threshold**"
        } else {
            ""
        };
        outln!("| {} | {base} | {n} | {change:+.2}%{verdict} |", w.name());
    }
    let _ = std::fs::remove_dir_all(tempfile_dir()?);
    if args.update {
        let mut b = Baseline {
            valgrind: version,
            instructions: BTreeMap::new(),
        };
        // Keep the counts of workloads not measured this time.
        if let Ok(text) = std::fs::read_to_string(&args.baseline)
            && let Ok(old) = serde_json::from_str::<Baseline>(&text)
        {
            b.instructions = old.instructions;
        }
        b.instructions.extend(measured);
        let mut text = serde_json::to_string_pretty(&b).expect("serialisable");
        text.push('\n');
        std::fs::write(&args.baseline, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.baseline.display()))?;
        outln!("wrote {}", args.baseline.display());
        return Ok(ExitCode::SUCCESS);
    }
    if failed.is_empty() {
        outln!(
            "instruction counts within +{}% of {}",
            args.threshold_pct,
            args.baseline.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "bench gate: more than +{}% instructions against {}: {}",
            args.threshold_pct,
            args.baseline.display(),
            failed.join(", ")
        );
        Ok(ExitCode::from(1))
    }
}
