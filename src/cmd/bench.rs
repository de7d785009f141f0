//! `microreboot bench …`: tail-latency measurements that criterion's means do not show.
//! Run them from a release build (`cargo run --release -- bench …`).

use clap::Subcommand;
use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use kernel::validate::validate;
use microreboot_benches::flat::FlatGraph;
use microreboot_benches::{
    WINDOW_US, alibaba_csv, infer_fixtures, percentiles, rebuild, rebuild_target, replay,
    validate_fixture,
};
use std::hint::black_box;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Plan validation: a 32-step plan against a graph of `--services` services.
    Validate {
        /// Services in the graph.
        #[arg(long, default_value_t = 5000)]
        services: usize,
        /// Validations to time, each on its own.
        #[arg(long, default_value_t = 100_000)]
        calls: u64,
    },
    /// Recovery-group inference on the Alibaba-like (5,459) and Meta-like (392) graphs: queries
    /// on the maintained graph, rebuild-from-window-spans then query, and Alibaba CSV
    /// ingestion throughput.
    Infer {
        /// Queries on the maintained graph, per graph.
        #[arg(long, default_value_t = 10_000)]
        queries: u64,
        /// Rebuild-then-query rounds, per graph.
        #[arg(long, default_value_t = 10_000)]
        rebuilds: u64,
        /// Calls in one window (spread over the edges by weight, at least one per edge).
        #[arg(long, default_value_t = 50_000)]
        window_calls: usize,
        /// Rows of synthetic Alibaba CSV for the ingestion measurement.
        #[arg(long, default_value_t = 1_000_000)]
        ingest_rows: usize,
        /// Write the inputs (graphs, symptoms, the kernel's scopes, windows, the CSV) into
        /// this directory for the peers in benches/peers/, instead of measuring.
        #[arg(long, value_name = "DIR")]
        export: Option<std::path::PathBuf>,
    },
    /// Simulator speed: socialNetwork at `--rate` for `--duration` virtual seconds.
    Sim {
        /// Network backend.
        #[arg(long, value_enum, default_value_t = super::sim::Backend::Des)]
        backend: super::sim::Backend,
        /// Virtual seconds.
        #[arg(long, default_value_t = 600.0)]
        duration: f64,
        /// Requests per second.
        #[arg(long, default_value_t = 300.0)]
        rate: f64,
        /// Runs (the best and worst are reported).
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
    /// Deterministic performance gate: instruction counts of six small workloads under
    /// valgrind's callgrind against a committed baseline (exit 1 past the threshold).
    Gate(super::gate::GateArgs),
    /// One gate workload, once (what `bench gate` runs under callgrind).
    #[command(hide = true)]
    Workload {
        /// Which.
        #[arg(value_enum)]
        workload: super::gate::Workload,
    },
    /// MCP protocol overhead per tool call: a `tools/call` round trip through the message
    /// guard, rmcp and the session channel (answer precomputed), beside building the answer.
    Mcp {
        /// Round trips to time, each on its own.
        #[arg(long, default_value_t = 20_000)]
        calls: u64,
    },
}

pub fn run(bench: Bench) -> anyhow::Result<ExitCode> {
    match bench {
        Bench::Gate(args) => return super::gate::run_gate(args),
        Bench::Workload { workload } => return super::gate::run_workload(workload),
        Bench::Validate { services, calls } => {
            anyhow::ensure!(services >= 64, "--services must be at least 64");
            anyhow::ensure!(calls > 0, "--calls must be positive");
            let f = validate_fixture(services, 7);
            let view = f.view();
            let p = percentiles(calls, || {
                black_box(validate(black_box(&f.plan), &f.graph, &f.scope, &view));
            });
            outln!(
                "validate: {}-step plan, {services}-service graph, {}-service scope: {p}",
                f.plan.step_count(),
                f.scope.len()
            );
        }
        Bench::Mcp { calls } => {
            anyhow::ensure!(calls > 0, "--calls must be positive");
            let mut client = agent_mcp::bench::RoundTrip::new()?;
            let mut failed = None;
            let p = percentiles(calls, || {
                if let Err(e) = client.call() {
                    failed = Some(e);
                }
            });
            if let Some(e) = failed {
                anyhow::bail!("an MCP round trip failed: {e}");
            }
            let direct = percentiles(calls, || {
                black_box(agent_mcp::bench::answer_text());
            });
            outln!("mcp: tools/call round trip (isa, answer precomputed): {p}");
            outln!("mcp: building the same answer in-process (the peer): {direct}");
        }
        Bench::Infer {
            queries,
            window_calls,
            ingest_rows,
            export: Some(dir),
            ..
        } => {
            let fixtures = infer_fixtures(queries as usize, window_calls);
            let csv = alibaba_csv(&traces::synth::alibaba_like(1), ingest_rows, 3);
            for path in microreboot_benches::export::export(&dir, &fixtures, &csv)? {
                outln!("wrote {path}");
            }
        }
        Bench::Infer {
            queries,
            rebuilds,
            window_calls,
            ingest_rows,
            export: None,
        } => bench_infer(queries, rebuilds, window_calls, ingest_rows)?,
        Bench::Sim {
            backend,
            duration,
            rate,
            runs,
        } => bench_sim(backend, duration, rate, runs)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Spans per timed batch of incremental window updates (one span alone is below the clock's
/// resolution).
const UPDATE_BATCH: usize = 256;

fn bench_infer(
    queries: u64,
    rebuilds: u64,
    window_calls: usize,
    ingest_rows: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        queries > 0 && rebuilds > 0,
        "--queries and --rebuilds must be positive"
    );
    let incident = IncidentId::try_from("bench").expect("valid id");
    for f in infer_fixtures(queries as usize, window_calls) {
        let mut inference = Inference::new();
        let mut i = 0;
        let mut scope_total = 0usize;
        let query = percentiles(queries, || {
            let r = inference.infer(
                &f.graph,
                f.symptoms[i % f.symptoms.len()],
                incident.clone(),
                GroupConfig::default(),
            );
            scope_total += r.scope.len();
            i += 1;
        });
        outln!(
            "{} ({}): query on the maintained graph: {query}; mean scope {:.1} services",
            f.name,
            f.graph,
            scope_total as f64 / i.max(1) as f64
        );
        // The peer: the same scopes by a flat-array traversal; first checked to find what the
        // inference finds, then timed.
        let mut flat = FlatGraph::new(&f.graph);
        let cap = GroupConfig::default().max_group_size;
        for &s in f.symptoms.iter().take(queries as usize) {
            let scope = inference
                .infer(&f.graph, s, incident.clone(), GroupConfig::default())
                .scope
                .to_file();
            let members = scope.groups.iter().map(|g| g.members.len()).sum::<usize>();
            let (m, _, cut) = flat.scope(s, cap);
            anyhow::ensure!(
                (m, cut) == (members, scope.truncated_total.unwrap_or(0)),
                "{}: at {}, the flat-array traversal finds {m} members and {cut} callees left \
                 out, the inference {members} and {:?}: they no longer traverse the same scope",
                f.name,
                scope.symptom,
                scope.truncated_total
            );
        }
        let mut i = 0;
        let flat_query = percentiles(queries, || {
            black_box(flat.scope(f.symptoms[i % f.symptoms.len()], cap));
            i += 1;
        });
        outln!(
            "{}: flat-array traversal of the same scopes (peer): {flat_query}; query P50 is {:.1}x the peer's",
            f.name,
            query.p50_ns as f64 / flat_query.p50_ns.max(1) as f64
        );
        let mut j = 0;
        let mut w = rebuild_target(&f.graph);
        let rebuild_query = percentiles(rebuilds, || {
            rebuild(&mut w, &f.window);
            let name = &f.graph.service(f.symptoms[j % f.symptoms.len()]).name;
            if let Some(s) = w.graph().id(name) {
                black_box(inference.infer(w.graph(), s, incident.clone(), GroupConfig::default()));
            }
            j += 1;
        });
        outln!(
            "{}: rebuild from a {}-call window, then query: {rebuild_query}",
            f.name,
            f.window.len()
        );
        // No rebuild at all: the window maintained span by span, in steady state (each span
        // arrives as its copy one window earlier expires), timed in batches of spans.
        let (n, batch) = (f.window.len(), UPDATE_BATCH.min(f.window.len()));
        let mut next = 0usize;
        let update = percentiles(rebuilds.max(10), || {
            // Always `batch` spans, so that dividing by it gives the per-span time: a batch
            // that reaches the window's end goes on with the next window's first spans.
            let round = (next / n) as u64 + 1;
            let from = next % n;
            let first = (n - from).min(batch);
            replay(&mut w, &f.window, round * WINDOW_US, from..from + first);
            if first < batch {
                replay(&mut w, &f.window, (round + 1) * WINDOW_US, 0..batch - first);
            }
            next += batch;
        });
        outln!(
            "{}: incremental window update, per span (batches of {batch}): p50={:.1} ns p99={:.1} ns",
            f.name,
            update.p50_ns as f64 / batch as f64,
            update.p99_ns as f64 / batch as f64
        );
    }
    let graph = traces::synth::alibaba_like(1);
    let csv = alibaba_csv(&graph, ingest_rows, 3);
    let mut best = f64::INFINITY;
    let mut calls = 0;
    for _ in 0..3 {
        let mut w = traces::WindowedGraph::new(Some(WINDOW_US));
        let elapsed = wall_clock(|| {
            traces::alibaba::read(
                &csv[..],
                "synthetic",
                traces::IngestOptions::default(),
                &mut |c| w.ingest(c),
            )
            .map(|s| calls = s.calls)
        })?;
        best = best.min(elapsed);
    }
    outln!(
        "ingest: {ingest_rows} Alibaba v2022 CSV rows ({:.0} MB, 20% duplicate rows) parsed and windowed \
         on one core in {:.3} s: {:.2} M rows/s ({calls} calls)",
        csv.len() as f64 / 1e6,
        best,
        ingest_rows as f64 / best / 1e6
    );
    Ok(())
}

fn bench_sim(
    backend: super::sim::Backend,
    duration: f64,
    rate: f64,
    runs: u32,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        duration > 0.0 && runs > 0,
        "--duration and --runs must be positive"
    );
    let spec = deathstarbench::load("socialNetwork", &deathstarbench::Deployment::default())?;
    let cfg = sim::SimConfig {
        rate_rps: rate,
        ..sim::SimConfig::default()
    };
    let end = kernel::VirtualTime((duration * 1e6) as u64);
    let mut times = Vec::new();
    let mut events = 0;
    for _ in 0..runs {
        let spec = spec.clone();
        let elapsed = match backend {
            super::sim::Backend::Des => {
                let mut s = sim::Sim::new(spec, cfg)?;
                let t = wall_clock(|| s.run_until(end))?;
                events = s.events_processed();
                t
            }
            super::sim::Backend::Turmoil => {
                let nodes = spec.services.len() + 1;
                let net = sim::turmoil_net::TurmoilNetwork::new(
                    nodes,
                    cfg.seed,
                    std::time::Duration::from_micros(500),
                    std::time::Duration::ZERO,
                    std::time::Duration::from_micros(1),
                );
                let mut s = sim::Sim::with_network(spec, cfg, net)?;
                let t = wall_clock(|| s.run_until(end))?;
                events = s.events_processed();
                t
            }
        };
        times.push(elapsed);
    }
    times.sort_by(f64::total_cmp);
    outln!(
        "sim ({backend:?}): socialNetwork, {rate} rps, {duration} virtual s, {events} events: \
         {:.3}-{:.3} s wall over {runs} run(s), {:.0}x real time at best",
        times[0],
        times[times.len() - 1],
        duration / times[0]
    );
    Ok(())
}

/// Seconds `f` takes by the wall clock (best of the caller's repetitions is taken outside).
#[allow(clippy::disallowed_methods)]
pub fn wall_clock<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<f64, E> {
    let start = std::time::Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}
