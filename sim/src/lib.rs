//! A seeded, deterministic simulation of a microservice deployment under real request traffic:
//! the testbed's world.
//!
//! The core ([`Sim`]) is event-driven — a time-ordered queue with microsecond resolution, no
//! fixed tick — so that a socialNetwork run of ten virtual minutes takes about a second. It
//! models what makes recovery actions harmful: bounded worker pools and CPU queues, caller
//! timeouts and retries with budgets (retry storms), caches that go cold on restart, start-up
//! time, readiness probes, load balancing over ready and undrained replicas, configuration
//! versions, per-edge circuit breakers and ingress rate limits. Every failed request carries its
//! [`Cause`] (fault, action or overload) so that harm can be attributed.
//!
//! Messages between services go through a [`Network`]: [`DesNetwork`] computes arrival times
//! from a latency model; [`turmoil_net::TurmoilNetwork`] carries them as UDP datagrams between
//! turmoil hosts, one per service — a second backend used to check the first.
//!
//! Faults and actions change the world only through [`Sim`]'s control methods
//! ([`Sim::restart`], [`Sim::set_drained`], [`Sim::kill`], [`Sim::set_partition`], …);
//! [`actuator::SimActuator`] exposes them to the kernel as an [`kernel::Actuator`], and
//! [`actuator::RawActuator`] exposes the unsafe raw commands an unconstrained agent uses.
//!
//! Determinism: one seed, one ChaCha stream per component ([`rng`]), ties broken by insertion
//! order, no wall clock, no hash-order iteration.

pub mod actuator;
pub mod cause;
pub mod config;
pub mod metrics;
pub mod net;
pub mod radix;
pub mod rng;
pub mod slab;
pub mod spec;
pub mod turmoil_net;
pub mod world;

pub use cause::{Cause, ErrorKind};
pub use config::SimConfig;
pub use metrics::{Metrics, ScopeKind, SecondStats};
pub use net::{DesNetwork, Network};
pub use spec::AppSpec;
pub use world::{
    CallCounters, InvariantViolation, ReplicaState, ReplicaStatus, Sim, SimError, SpanRecord,
};
