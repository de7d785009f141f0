//! Simulator knobs, each with its unit and default, serde-readable (TOML or JSON).

use serde::{Deserialize, Serialize};

/// Per-hop network latency of the event-driven backend.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Fixed part of a one-way hop, microseconds (default 60: same-rack RPC).
    pub base_latency_us: f64,
    /// Mean of the exponential jitter added to each hop, microseconds (default 30).
    pub jitter_mean_us: f64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            base_latency_us: 60.0,
            jitter_mean_us: 30.0,
        }
    }
}

/// Caller-side timeouts by edge kind, milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Service-to-service RPC (default 1000).
    pub rpc_ms: u64,
    /// Cache access (default 250).
    pub cache_ms: u64,
    /// Database access (default 1000).
    pub db_ms: u64,
    /// The user's client (wrk2) per request (default 10 000).
    pub client_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            rpc_ms: 1000,
            cache_ms: 250,
            db_ms: 1000,
            client_ms: 10_000,
        }
    }
}

/// Caller-side retries (Finagle/gRPC style: exponential back-off and a retry budget).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retries {
    /// Retries after the first attempt (default 2).
    pub max_retries: u32,
    /// Back-off before retry k is `base × 2^k` plus up to 50 % jitter, milliseconds (default 20).
    pub backoff_base_ms: f64,
    /// Retry budget: each first attempt deposits this many tokens, each retry spends one
    /// (default 0.2, i.e. retries add at most ~20 % load).
    pub budget_ratio: f64,
    /// Most tokens a caller can save up (default 20).
    pub budget_cap: f64,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max_retries: 2,
            backoff_base_ms: 20.0,
            budget_ratio: 0.2,
            budget_cap: 20.0,
        }
    }
}

/// Readiness/liveness probing (Kubernetes `periodSeconds`, `failureThreshold`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Probes {
    /// Probe period, seconds (default 5).
    pub period_s: f64,
    /// Consecutive failures before a replica is taken out of load balancing (default 2).
    pub failure_threshold: u32,
}

impl Default for Probes {
    fn default() -> Self {
        Probes {
            period_s: 5.0,
            failure_threshold: 2,
        }
    }
}

/// Everything the simulator needs besides the application.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// The run's seed; every random stream derives from it.
    pub seed: u64,
    /// Offered load, user requests per second (open loop, Poisson; default 300).
    pub rate_rps: f64,
    /// Network latency model.
    pub network: NetworkConfig,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Retries.
    pub retries: Retries,
    /// Probes.
    pub probes: Probes,
    /// Most events a run may process before it stops with an error (default 200 million).
    pub max_events: u64,
    /// Most user requests in flight; beyond it the client sheds load (default 200 000).
    pub max_requests_in_flight: usize,
    /// Run [`crate::Sim::check_invariants`] after every this many events and stop the run with
    /// [`crate::SimError::Invariant`] at the first violation (default off: tests turn it on).
    /// Checking reads the state and changes nothing, so results are the same with it on or off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_invariants_every: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            rate_rps: 300.0,
            network: NetworkConfig::default(),
            timeouts: Timeouts::default(),
            retries: Retries::default(),
            probes: Probes::default(),
            max_events: 200_000_000,
            max_requests_in_flight: 200_000,
            check_invariants_every: None,
        }
    }
}
