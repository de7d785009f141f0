//! `microreboot graph …`: shape statistics and export of dependency graphs.

use super::source::{Generated, GraphSource};
use std::path::PathBuf;
use std::process::ExitCode;
use traces::stats::graph_stats;

#[derive(Debug, clap::Subcommand)]
pub enum Graph {
    /// Services, edges, degree and blast-radius percentiles (compare with the paper's numbers).
    Stats {
        #[command(flatten)]
        source: GraphSource,
    },
    /// Write the graph as kernel JSON (for `validate` or `infer --graph`).
    Export {
        #[command(flatten)]
        source: GraphSource,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: Graph) -> anyhow::Result<ExitCode> {
    match cmd {
        Graph::Stats { source } => {
            let loaded = source.load()?;
            let s = graph_stats(&loaded.graph);
            outln!("{}", loaded.description);
            outln!("services        {}", s.services);
            outln!("edges           {}", s.edges);
            outln!("fan-in          {}", s.fan_in);
            outln!("fan-out         {}", s.fan_out);
            outln!("blast radius    {}", s.blast_radius);
            outln!("hubs (> {} callers) {}", kernel::HUB_FAN_IN, s.hubs);
            if source.generate == Some(Generated::Alibaba) {
                let (m, p99, max) = traces::synth::ALIBABA_BLAST_TARGET;
                outln!(
                    "paper (Alibaba, 5,459 services / 11,690 edges): blast radius median {m}, P99 {p99}, max {max}"
                );
            }
        }
        Graph::Export { source, out } => {
            let loaded = source.load()?;
            let text = serde_json::to_string_pretty(&loaded.graph.to_file())?;
            std::fs::write(&out, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            outln!("wrote {} ({})", out.display(), loaded.graph);
        }
    }
    Ok(ExitCode::SUCCESS)
}
