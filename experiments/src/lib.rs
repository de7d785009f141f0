//! The **experiments**: everything that turns the simulator, the kernel and the agents into
//! measurements.
//!
//! * [`harm`] — the harm, counterfactual and time-to-recovery oracles (DESIGN §8);
//! * [`observe`] — what operators see: the trace-derived graph and SLO alerts;
//! * [`online`] — one policy against one fault on the simulator, end to end;
//! * [`offline`] — incidents on industrial-scale graphs with worst-case effect propagation;
//! * [`parallel`] — concurrent incidents, parallel vs one-plan-at-a-time execution;
//! * [`record`] — the result lines (`results.jsonl`) everything else is computed from;
//! * [`external`] — external agents' declarations and the seam the matrix runs them through;
//! * [`eval`] — the whole matrix, its configuration, and parallel execution across runs;
//! * [`shard`] — a deterministic slice of the matrix and the merge of all slices.

pub mod eval;
pub mod external;
pub mod harm;
pub mod hubs;
pub mod observe;
pub mod offline;
pub mod online;
pub mod parallel;
pub mod record;
pub mod shard;

/// 64-bit FNV-1a: a stable digest for seeds and config hashes (std's hashers are not stable
/// across releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
