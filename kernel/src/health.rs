//! Failure evidence: what the monitoring side tells the kernel about each service.
//!
//! The kernel never sees the world's ground truth or a simulator's cause tags. It sees what a
//! monitoring system would hand an operator: per service, whether an SLO alert is firing, how
//! many replicas fail their probes, the recent error rate and P99 against the SLO, and whether
//! the running configuration changed recently (a rollout event). The evidence rule
//! (`R18-no-failure-evidence`, [`crate::validate`]) uses it: a plan may only act on services that
//! show failure, or that restart together with one that does.
//!
//! The snapshot is part of the kernel's state ([`crate::Kernel::observe_health`]), so validation
//! stays a pure function of (plan, graph, kernel state).

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

/// One service as monitoring sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceHealth {
    /// An SLO alert is firing.
    pub alerting: bool,
    /// Replicas failing their liveness or readiness probes.
    pub failing_replicas: u32,
    /// The recent window's error rate or P99 violates the SLO.
    pub slo_violated: bool,
    /// Error rate over the recent window.
    pub error_rate: f64,
    /// P99 latency over the recent window, ms.
    pub p99_ms: f64,
    /// The running configuration changed within the evidence window (a rollout event).
    pub config_changed: bool,
}

impl ServiceHealth {
    /// Whether the service shows failure: an alert, a failing probe, or a violated SLO.
    pub fn failing(&self) -> bool {
        self.alerting || self.failing_replicas > 0 || self.slo_violated
    }
}

/// A health snapshot of every service monitoring covers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    services: IndexMap<String, ServiceHealth, FxBuildHasher>,
}

impl Health {
    /// An empty snapshot: no service shows anything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what monitoring reports for `service`.
    pub fn set(&mut self, service: impl Into<String>, health: ServiceHealth) {
        self.services.insert(service.into(), health);
    }

    /// What monitoring reports for `service`; a service it does not cover shows nothing.
    pub fn get(&self, service: &str) -> Option<&ServiceHealth> {
        self.services.get(service)
    }

    /// Whether `service` shows failure.
    pub fn failing(&self, service: &str) -> bool {
        self.get(service).is_some_and(ServiceHealth::failing)
    }

    /// Whether `service`'s configuration changed within the evidence window.
    pub fn config_changed(&self, service: &str) -> bool {
        self.get(service).is_some_and(|h| h.config_changed)
    }

    /// Services in the snapshot, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ServiceHealth)> {
        self.services.iter().map(|(k, v)| (k.as_str(), v))
    }
}
