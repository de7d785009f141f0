//! `microreboot sim`: one simulated scenario — an application under load, optionally a fault —
//! written out as per-second metrics.

use super::read_text;
use faults::{FaultInjector, FaultSchedule, FaultType, run_with_faults};
use kernel::VirtualTime;
use sim::rng::{self, Stream};
use sim::spec::AppSpec;
use sim::turmoil_net::TurmoilNetwork;
use sim::{Network, ScopeKind, Sim, SimConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Network backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The event-driven core's network (µs resolution).
    Des,
    /// turmoil: real UDP datagrams between one host per service (0.5 ms ticks).
    Turmoil,
}

/// Where the application comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct AppArgs {
    /// Application: socialNetwork, hotelReservation or mediaMicroservices (or one in --topology).
    #[arg(long, default_value = "socialNetwork")]
    pub app: String,
    /// A topology file in the schema of deathstarbench/data/deathstarbench.json (the embedded default).
    #[arg(long)]
    pub topology: Option<PathBuf>,
}

impl AppArgs {
    /// Loads the application with the default deployment.
    pub fn load(&self) -> anyhow::Result<AppSpec> {
        let deployment = deathstarbench::Deployment::default();
        match &self.topology {
            Some(path) => {
                let name = path.display().to_string();
                let file = deathstarbench::parse(&read_text(path)?, &name)?;
                Ok(deathstarbench::select(
                    &file,
                    &self.app,
                    &name,
                    &deployment,
                )?)
            }
            None => {
                if !deathstarbench::APPS.contains(&self.app.as_str()) {
                    anyhow::bail!(
                        "unknown app `{}`; choose one of: {} (or give --topology FILE)",
                        self.app,
                        deathstarbench::APPS.join(", ")
                    );
                }
                Ok(deathstarbench::load(&self.app, &deployment)?)
            }
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    app: AppArgs,
    /// Fault to inject (`none`, or one of crash, latency, resource, partition, misconfig), with
    /// the scenario's default target and intensity (docs/faults.md: the built-in table or the
    /// fault-target rule).
    #[arg(long, default_value = "none")]
    fault: String,
    /// Override the fault's target service (for a partition: the caller; the dependency cut
    /// off is its busiest callee).
    #[arg(long)]
    target: Option<String>,
    /// Fault injection time, seconds.
    #[arg(long, default_value_t = 60.0)]
    fault_start: f64,
    /// Fault duration, seconds.
    #[arg(long, default_value_t = 120.0)]
    fault_duration: f64,
    /// A fault schedule (TOML, docs/faults.md) instead of --fault.
    #[arg(long, conflicts_with = "fault")]
    faults: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated seconds.
    #[arg(long, default_value_t = 300.0)]
    duration: f64,
    /// Offered load, requests per second.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// Network backend.
    #[arg(long, value_enum, default_value_t = Backend::Des)]
    backend: Backend,
    /// Output directory (metrics.csv, metrics.jsonl, faults.jsonl; written atomically, with a
    /// run manifest; a non-empty directory microreboot did not write is refused).
    #[arg(long, default_value = "reports/out/sim")]
    out: PathBuf,
    /// Delete the contents of an output directory microreboot did not write before writing.
    #[arg(long)]
    force: bool,
}

/// Builds the fault schedule the arguments ask for.
fn schedule(args: &Args, app_spec: &sim::spec::AppSpec) -> anyhow::Result<FaultSchedule> {
    if let Some(path) = &args.faults {
        return FaultSchedule::from_toml(&read_text(path)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    if args.fault == "none" {
        return Ok(FaultSchedule::default());
    }
    let fault: FaultType = args
        .fault
        .parse()
        .map_err(|e| anyhow::anyhow!("{e} (or none)"))?;
    // A given target needs no default: the default lookup only runs without one.
    let choice = deathstarbench::fault_for(
        app_spec,
        fault,
        args.target.as_deref(),
        args.fault_start,
        args.fault_duration,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let spec = choice.spec;
    anyhow::ensure!(
        args.fault_start < args.duration,
        "--fault-start {} s is not before the end of the run (--duration {} s): the fault would never be injected",
        args.fault_start,
        args.duration
    );
    Ok(FaultSchedule { faults: vec![spec] })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.duration > 0.0 && args.duration.is_finite(),
        "--duration must be positive"
    );
    anyhow::ensure!(
        args.rate >= 0.0 && args.rate.is_finite(),
        "--rate must be a non-negative number"
    );
    let spec = args.app.load()?;
    let cfg = SimConfig {
        seed: args.seed,
        rate_rps: args.rate,
        ..SimConfig::default()
    };
    let schedule = schedule(&args, &spec)?;
    match args.backend {
        Backend::Des => {
            let sim = Sim::new(spec, cfg)?;
            finish(sim, schedule, &args)
        }
        Backend::Turmoil => {
            let nodes = spec.services.len() + 1;
            let net = TurmoilNetwork::new(
                nodes,
                cfg.seed,
                Duration::from_micros(500),
                Duration::ZERO,
                Duration::from_micros(1),
            );
            let sim = Sim::with_network(spec, cfg, net)?;
            finish(sim, schedule, &args)
        }
    }
}

fn finish<N: Network>(
    mut sim: Sim<N>,
    schedule: FaultSchedule,
    args: &Args,
) -> anyhow::Result<ExitCode> {
    schedule
        .check(&sim)
        .map_err(|e| anyhow::anyhow!("fault schedule: {e}"))?;
    let faults = FaultInjector::new(schedule, rng::stream(args.seed, Stream::Faults));
    let end = VirtualTime((args.duration * 1e6) as u64);
    let faults = run_with_faults(&mut sim, faults, end)?;
    let settings = format!(
        "{} seed={} rate={} duration={} backend={:?}",
        sim.spec().name,
        args.seed,
        args.rate,
        args.duration,
        args.backend
    );
    let (mut out, notes) = reports::run_dir::RunDir::open(
        &args.out,
        "sim",
        &super::eval::commit(),
        &format!("{:016x}", experiments::fnv1a(settings.as_bytes())),
        args.force,
    )?;
    for note in notes {
        eprintln!("sim: {note}");
    }
    let mut write =
        |name: &str, f: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| -> anyhow::Result<()> {
            let mut buf = Vec::new();
            f(&mut buf)?;
            out.write(name, &buf)?;
            Ok(())
        };
    write("metrics.csv", &|b| sim.metrics().write_csv(b))?;
    write("metrics.jsonl", &|b| sim.metrics().write_jsonl(b))?;
    write("faults.jsonl", &|b| {
        for e in faults.log() {
            serde_json::to_writer(&mut *b, e)?;
            b.push(b'\n');
        }
        Ok(())
    })?;
    out.finish(None)?;
    outln!(
        "{} for {} s at {} rps, seed {}, {:?} backend: {} events",
        sim.spec().name,
        args.duration,
        args.rate,
        args.seed,
        args.backend,
        sim.events_processed()
    );
    for f in faults.schedule().faults.iter() {
        outln!("fault: {f}");
    }
    let paths: Vec<String> = sim.spec().paths.iter().map(|p| p.name.clone()).collect();
    for p in paths {
        let rows = sim.metrics().series(ScopeKind::Path, &p);
        let count: u64 = rows.iter().map(|r| r.count).sum();
        let errors: u64 = rows.iter().map(|r| r.errors()).sum();
        let violated = rows.iter().filter(|r| !r.slo_ok()).count();
        let p99s: Vec<f64> = rows
            .iter()
            .filter(|r| r.p99_ms > 0.0)
            .map(|r| r.p99_ms)
            .collect();
        // (A fold from +0.0: an empty f64 sum is -0.0.)
        let mean_p99 = p99s.iter().fold(0.0, |a, b| a + b) / p99s.len().max(1) as f64;
        outln!(
            "  {p:<22} {count:>8} requests, error rate {:.4}, mean per-second P99 {mean_p99:.2} ms, SLO violated in {violated} s",
            errors as f64 / count.max(1) as f64
        );
    }
    outln!(
        "wrote {}/metrics.csv, metrics.jsonl, faults.jsonl",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
