//! The microreboot **microkernel**: the small trusted core that is the only path from an agent's
//! remediation plan to actuation.
//!
//! Agents (LLM-driven or scripted) are untrusted. They *propose* [`Plan`]s written in a typed ISA
//! of seven actions ([`Action`]). The kernel
//!
//! 1. **validates** a plan against the current [`DependencyGraph`], the incident's
//!    [`RecoveryScope`] and its own state (locks, restart budget) — see [`validate`]. Validation is
//!    structural, not predictive: it checks scope, ordering, drains around hub restarts, replica
//!    bounds, rate-limit floors, lease coverage, surge before a lasting drain and size limits,
//!    and names *every* violated rule
//!    with a stable id ([`Rule`]). With a health snapshot from the monitoring side
//!    ([`Kernel::observe_health`], [`health`]) it also refuses actions on services that show no
//!    failure (`R18-no-failure-evidence`);
//! 2. **executes** an accepted plan as a transaction ([`txn::Kernel`]) through an [`Actuator`],
//!    stage by stage, checking each step's post-condition before moving on, and on any failure
//!    undoing reversible steps and compensating compensatable ones in reverse order. While a
//!    step's effect lasts, the SLO [`watchdog`] takes it back if the services it affects regress,
//!    and a breaker held open closes once its callee recovers (half-open);
//! 3. **journals** every proposal, verdict, step, check, undo and commit/abort as append-only JSON
//!    lines ([`journal`]), from which an auditor can replay the control-plane state.
//!
//! Recovery scopes come from distributed traces: [`groups`] infers them (downstream scope,
//! restart-coupled groups, callee-first restart order, hubs that need a drain) in time linear in
//! the scope.
//!
//! The crate is deliberately independent of the simulator and the agents: nothing here knows how
//! an action takes effect, only what it means. Semantics follow `DESIGN.md` §2–§6; the decisions
//! this crate adds are written next to the code that implements them and summarised in
//! `kernel/README.md`.
//!
//! # Example
//!
//! ```
//! use kernel::{DependencyGraph, Plan, RecoveryScope, validate::{validate, KernelView}};
//!
//! let graph = DependencyGraph::from_json_str(r#"{
//!   "services": [
//!     {"name": "frontend", "kind": "frontend", "replicas": 2},
//!     {"name": "api", "kind": "stateless", "replicas": 3},
//!     {"name": "cache", "kind": "cache"}
//!   ],
//!   "edges": [
//!     {"from": "frontend", "to": "api", "kind": "rpc", "weight": 600},
//!     {"from": "api", "to": "cache", "kind": "cache", "weight": 600}
//!   ]
//! }"#, "graph.json").unwrap();
//! let scope = RecoveryScope::from_json_str(r#"{
//!   "incident": "inc-1", "symptom": "api",
//!   "groups": [{"members": ["cache"]}, {"members": ["api"]}],
//!   "order": [[0, 1]]
//! }"#, "scope.json").unwrap();
//! let plan = Plan::from_json_str(r#"{
//!   "incident": "inc-1",
//!   "stages": [[{"restart": {"service": "cache"}}],
//!              [{"restart": {"service": "api", "replicas": "all"}}]]
//! }"#, "plan.json").unwrap();
//! let verdict = validate(&plan, &graph, &scope, &KernelView::idle());
//! assert!(verdict.accepted(), "{verdict}");
//! ```

pub mod graph;
pub mod groups;
pub mod health;
pub mod input;
pub mod isa;
pub mod journal;
pub mod lease;
pub mod scope;
pub mod state;
pub mod time;
pub mod txn;
pub mod validate;
pub mod watchdog;

pub use graph::{DependencyGraph, EdgeKind, Service, ServiceId, ServiceKind};
pub use health::{Health, ServiceHealth};
pub use input::InputError;
pub use isa::{Action, Plan, ReplicaSelector, RollbackClass};
pub use scope::RecoveryScope;
pub use state::{ControlOp, ControlState, ServiceControl};
pub use time::VirtualTime;
pub use txn::{Actuator, Check, Kernel, KernelConfig};
pub use validate::{Rule, Verdict, Violation};

/// Largest recovery scope, in services (DESIGN §3). A downstream scope larger than this is cut in
/// breadth-first order and the rest is reported as truncated; a plan may restart at most this many
/// services (rule `R10-group-size`).
pub const MAX_GROUP_SIZE: usize = 30;

/// A service with more distinct callers than this is a hub: restarting it requires a drain before
/// and a traffic restore after, in the same plan (DESIGN §3, rule `R3-drain-before-restart`).
pub const HUB_FAN_IN: usize = 20;

/// Longest plan the kernel accepts, in steps (rule `R12-plan-length`).
pub const MAX_PLAN_STEPS: usize = 32;
