//! The simulated LLM pipeline: diagnosis → planning → verification, with explicit, named
//! error rates.
//!
//! One incident gets one RNG stream (derived from the run seed and the incident's number), and
//! the pipeline draws from it in a fixed order. The constrained and the unconstrained agent run
//! the *same* pipeline on the same stream, so they receive identical diagnoses and identical
//! draft plans; they differ only in what they can express (typed ISA vs raw commands) and in what
//! happens next (the kernel's verdict and re-planning vs direct execution).
//!
//! # Parameters and their sources
//!
//! | parameter | default | source |
//! |---|---|---|
//! | `decision_latency_s` | 13 s (± 3 s uniform) | paper: "LLM inference overhead ~13 s" |
//! | `replan_latency_s` | 6 s | assumption: one more planning + verification round |
//! | `localization_accuracy` | 0.6 | assumption within the ranges LLM agents reach on AIOpsLab/ITBench localisation tasks (roughly 30–70 %; not re-verified offline) |
//! | `fault_type_accuracy` | 0.8 | assumption: symptoms of the five faults are distinctive |
//! | `verification_catch` | 0.3 | assumption: self-review catches a minority of plan errors |
//! | `fix_on_feedback` | 0.7 | assumption: a named rule violation is usually fixed on re-plan |
//! | `reassess_after_s` | 60 s | assumption: time for a remedy to show (a restart, then 30 s of healthy SLOs) |
//! | `max_rounds` | 3 | assumption: diagnosis rounds before paging a human |
//! | mistake rates | see [`MistakeRates`] | assumptions; the sensitivity sweep scales them all |
//! | `raw` | see [`RawAgentConfig`] | the raw-command agent's behaviours, each with its source or marked an assumption; the sweep scales their rates too |
//!
//! Every rate is a parameter, none is tuned to reproduce the paper's harm numbers; the
//! evaluation's sensitivity sweep shows how the results move with them.

use crate::raw_agent::RawAgentConfig;
use serde::{Deserialize, Serialize};

/// Probabilities of the planner's mistakes, each drawn independently per plan where it applies.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MistakeRates {
    /// Restart the root cause's callers (or the symptom) as well: too broad a scope.
    pub too_broad: f64,
    /// Restart the root cause's cache or database along with it ("restart the stack").
    pub collateral_restart: f64,
    /// Restart a replicated or hub service without draining it first.
    pub skip_drain: f64,
    /// Put restarts in the wrong order (dependents before their dependencies).
    pub wrong_order: f64,
    /// Drain without restoring traffic or setting a lease.
    pub forget_restore: f64,
    /// A destructive command instead of a targeted one (delete, scale to zero, restart all).
    pub destructive: f64,
    /// A rate limit far below the baseline (10 %).
    pub aggressive_rate_limit: f64,
    /// Roll back to a version the service never had.
    pub wrong_config_version: f64,
    /// A remedy that does not fit the fault (a restart for a partition or a misconfig, a
    /// breaker on an edge the service needs).
    pub wrong_remedy: f64,
    /// A circuit break on an edge that does not exist.
    pub hallucinated_edge: f64,
    /// Act on a service that does not exist (a plausible but invented name).
    pub hallucinated_service: f64,
    /// Scale outside the allowed bounds.
    pub scale_out_of_bounds: f64,
    /// Answer a different (stale) incident id.
    pub stale_incident: f64,
    /// Return a plan with no step.
    pub empty_plan: f64,
    /// Put two actions on one service in the same parallel stage.
    pub stage_conflict: f64,
    /// Put a lease on a restart.
    pub lease_on_restart: f64,
    /// Enumerate far more steps than the kernel allows.
    pub oversized_plan: f64,
    /// Drain failing replicas without scaling up first, while healthy ones remain (the rest
    /// then carry the drained replicas' load).
    pub skip_surge: f64,
}

impl Default for MistakeRates {
    fn default() -> Self {
        MistakeRates {
            too_broad: 0.15,
            collateral_restart: 0.15,
            skip_drain: 0.4,
            wrong_order: 0.25,
            forget_restore: 0.25,
            destructive: 0.08,
            aggressive_rate_limit: 0.25,
            wrong_config_version: 0.2,
            wrong_remedy: 0.25,
            hallucinated_edge: 0.05,
            hallucinated_service: 0.03,
            scale_out_of_bounds: 0.05,
            stale_incident: 0.02,
            empty_plan: 0.02,
            stage_conflict: 0.03,
            lease_on_restart: 0.03,
            oversized_plan: 0.02,
            skip_surge: 0.4,
        }
    }
}

impl MistakeRates {
    /// Every rate multiplied by `factor` (capped at 1): the sensitivity sweep's knob.
    pub fn scaled(&self, factor: f64) -> Self {
        let f = |x: f64| (x * factor).clamp(0.0, 1.0);
        MistakeRates {
            too_broad: f(self.too_broad),
            collateral_restart: f(self.collateral_restart),
            skip_drain: f(self.skip_drain),
            wrong_order: f(self.wrong_order),
            forget_restore: f(self.forget_restore),
            destructive: f(self.destructive),
            aggressive_rate_limit: f(self.aggressive_rate_limit),
            wrong_config_version: f(self.wrong_config_version),
            wrong_remedy: f(self.wrong_remedy),
            hallucinated_edge: f(self.hallucinated_edge),
            hallucinated_service: f(self.hallucinated_service),
            scale_out_of_bounds: f(self.scale_out_of_bounds),
            stale_incident: f(self.stale_incident),
            empty_plan: f(self.empty_plan),
            stage_conflict: f(self.stage_conflict),
            lease_on_restart: f(self.lease_on_restart),
            oversized_plan: f(self.oversized_plan),
            skip_surge: f(self.skip_surge),
        }
    }
}

/// The simulated LLM's configuration. See the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// Seconds from an incident to the first plan.
    pub decision_latency_s: f64,
    /// Uniform jitter on the decision latency, ± seconds.
    pub latency_jitter_s: f64,
    /// Seconds for each re-plan after a rejection.
    pub replan_latency_s: f64,
    /// Probability the diagnosis names the true root cause.
    pub localization_accuracy: f64,
    /// Probability the diagnosis names the true fault type.
    pub fault_type_accuracy: f64,
    /// Probability the verification step catches each mistake in a draft.
    pub verification_catch: f64,
    /// Probability a re-plan fixes each mistake the kernel's rule ids point at.
    pub fix_on_feedback: f64,
    /// Seconds after acting before the agent checks whether the incident is resolved and, if
    /// not, starts a new round of diagnosis.
    pub reassess_after_s: f64,
    /// Diagnosis rounds before the agent escalates an unresolved incident to a human.
    pub max_rounds: u32,
    /// Mistake rates.
    pub mistakes: MistakeRates,
    /// The raw-command (`unconstrained`) agent's behaviours.
    pub raw: RawAgentConfig,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            decision_latency_s: 13.0,
            latency_jitter_s: 3.0,
            replan_latency_s: 6.0,
            localization_accuracy: 0.6,
            fault_type_accuracy: 0.8,
            verification_catch: 0.3,
            fix_on_feedback: 0.7,
            reassess_after_s: 60.0,
            max_rounds: 3,
            mistakes: MistakeRates::default(),
            raw: RawAgentConfig::default(),
        }
    }
}

impl LlmConfig {
    /// The sensitivity sweep's knob: mistake rates and the raw agent's behaviour rates ×
    /// `factor`, and the diagnosis error rates (1 − accuracy) × `factor`.
    pub fn with_error_factor(&self, factor: f64) -> Self {
        let acc = |a: f64| (1.0 - (1.0 - a) * factor).clamp(0.0, 1.0);
        LlmConfig {
            localization_accuracy: acc(self.localization_accuracy),
            fault_type_accuracy: acc(self.fault_type_accuracy),
            mistakes: self.mistakes.scaled(factor),
            raw: self.raw.scaled(factor),
            ..*self
        }
    }
}
