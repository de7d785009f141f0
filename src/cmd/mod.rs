//! Subcommand definitions and dispatch.

/// `println!` that reports a closed stdout (`microreboot … | head`) as an error instead of
/// panicking; `main` turns a broken pipe into a quiet exit.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

mod bench;
mod compare;
mod eval;
mod gate;
mod graph;
mod infer;
mod mcp;
mod scenario;
mod shard;
mod sim;
mod source;
mod topology;
mod validate;

use clap::{Parser, Subcommand};
use std::path::Path;
use std::process::ExitCode;

/// Safe, typed, transactional incident recovery for microservices — and the deterministic
/// testbed that measures it.
#[derive(Debug, Parser)]
#[command(name = "microreboot", version, about, long_about = None)]
pub struct Cli {
    /// Structured log on stderr, as a `tracing` filter (`info`, `kernel=debug,sim=debug`, …);
    /// overrides `RUST_LOG`. Logs carry virtual time and never reach results.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a remediation plan against a dependency graph and an incident's recovery scope.
    ///
    /// Exit status: 0 accepted, 1 rejected (every violated rule is listed), 2 bad input.
    Validate(validate::Args),
    /// Infer recovery groups (scope, restart order, hubs) from traces or a graph.
    Infer(infer::Args),
    /// Dependency-graph statistics and export.
    #[command(subcommand)]
    Graph(graph::Graph),
    /// Simulate an application under load with an optional fault; write per-second metrics.
    Sim(sim::Args),
    /// Measure tail latencies (run with --release).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Run the evaluation (online, offline, concurrent recovery, sensitivity) and write the
    /// report, plots, tables and results to reports/out/.
    Eval(eval::Args),
    /// Compare two evaluations cell by cell (harm, recovery, TTR, with statistics) and list the
    /// seeded incidents whose verdict changed.
    ///
    /// Exit status: 0 no significant regression, 1 a regression, 2 bad input or configurations
    /// that differ outside --allow-differ.
    Compare(compare::Args),
    /// Run one incident (app, fault, policy, seed) and write its timeline, metrics and journal.
    Scenario(scenario::Args),
    /// Serve one incident to an agent of your own over MCP (stdio); record or replay a cassette.
    Mcp(mcp::Args),
    /// Topology files for --topology: build one from your traces.
    #[command(subcommand)]
    Topology(topology::Topology),
}

/// Installs the stderr log subscriber: `--log`, else `RUST_LOG`, else warnings only. No wall-clock
/// timestamps: events carry the virtual time as a field.
fn init_logging(filter: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).map_err(|e| anyhow::anyhow!("--log {f:?}: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_logging(cli.log.as_deref())?;
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Bench(b) => bench::run(b),
        Command::Infer(args) => infer::run(args),
        Command::Graph(g) => graph::run(g),
        Command::Sim(args) => sim::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Scenario(args) => scenario::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::Topology(t) => topology::run(t),
    }
}

/// Reads a UTF-8 text file, naming the file in any error.
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}
