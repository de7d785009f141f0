//! Wall-clock measurements (recovery-group inference latency). They vary from run to run, so
//! they live in `timings.json`, apart from the deterministic `results.jsonl`.

use serde::{Deserialize, Serialize};

/// Latency samples of one kind of query on one graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferenceTiming {
    /// Graph label.
    pub graph: String,
    /// Its services.
    pub services: usize,
    /// What was timed.
    pub what: String,
    /// Samples, nanoseconds, sorted ascending.
    pub samples_ns: Vec<u64>,
    /// The paper's P99 for this graph.
    pub paper_p99: String,
}

impl InferenceTiming {
    /// Nearest-rank percentile, nanoseconds (0 with no samples).
    pub fn percentile_ns(&self, q: f64) -> u64 {
        if self.samples_ns.is_empty() {
            return 0;
        }
        let rank = (q * self.samples_ns.len() as f64).ceil() as usize;
        self.samples_ns[rank.clamp(1, self.samples_ns.len()) - 1]
    }
}

/// Everything timed during an evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Inference latency per graph.
    pub inference: Vec<InferenceTiming>,
    /// Wall-clock seconds the evaluation took.
    pub eval_wall_s: Option<f64>,
    /// Worker threads.
    pub threads: usize,
}
