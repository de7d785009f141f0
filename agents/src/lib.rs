//! Remediation **agents**: the policies the evaluation compares, and the simulated LLM they
//! share.
//!
//! * [`policy`] — the [`Policy`] trait (observe → propose) and its six implementations: `noop`,
//!   `auto-restart`, `naive-microreboot`, `unconstrained`, `constrained` and `oracle`.
//! * [`policy_id`] — [`PolicyId`], a policy's name in results: a built-in or an external agent.
//! * [`llm`] — the simulated LLM's parameters (decision latency, localisation accuracy, named
//!   mistake rates) and their sources.
//! * [`raw_agent`] — the `unconstrained` agent: the same diagnoses with kubectl's command space
//!   and five named behaviours (restart loops, symptom fixes, exploration, early success, stale
//!   state).
//! * [`pipeline`] — one incident through diagnosis → planning → verification, rendered as a
//!   typed plan (for the kernel) or as raw commands (for the unsafe baseline), from the same
//!   random draws.
//! * [`real_llm`] — an optional policy backend that asks a real model over an OpenAI-compatible
//!   API and parses its answer into a typed plan, with record/replay for deterministic reruns.
//!
//! Agents never actuate. A [`Proposal`] is either a typed plan, which the experiment runner hands
//! to the kernel, or raw commands, which it hands to `sim`'s clearly named `RawActuator` — the
//! status quo the project argues against.

pub mod llm;
pub mod pipeline;
pub mod policy;
pub mod policy_id;
pub mod raw_agent;
pub mod real_llm;

pub use llm::{LlmConfig, MistakeRates};
pub use pipeline::{Diagnosis, FaultType, GroundTruth, IncidentLlm, Mistake, Remedy, View};
pub use policy::{
    ClusterView, IncidentInfo, Observation, Policy, PolicyKind, Proposal, make, oracle_plan,
    oracle_plan_in,
};
pub use policy_id::PolicyId;
pub use raw_agent::{Behaviour, RawAgentConfig};
