//! `microreboot bench …`: tail-latency measurements that criterion's means do not show.
//! Run them from a release build (`cargo run --release -- bench …`).

use clap::Subcommand;
use kernel::validate::{KernelView, validate};
use microreboot_benches::{percentiles, validate_fixture};
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
}

pub fn run(bench: Bench) -> anyhow::Result<ExitCode> {
    match bench {
        Bench::Validate { services, calls } => {
            anyhow::ensure!(services >= 64, "--services must be at least 64");
            anyhow::ensure!(calls > 0, "--calls must be positive");
            let f = validate_fixture(services, 7);
            let view = KernelView::idle();
            let p = percentiles(calls, || {
                black_box(validate(black_box(&f.plan), &f.graph, &f.scope, &view));
            });
            println!(
                "validate: {}-step plan, {services}-service graph, {}-service scope: {p}",
                f.plan.step_count(),
                f.scope.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
