//! Observation: what probes, operators and the kernel can read of the simulation.

use super::{CallCounters, ReplicaState, ReplicaStatus, Sim, SimError};
use crate::net::Network;
use kernel::ServiceKind;

impl<N: Network> Sim<N> {
    // ---------------------------------------------------------------------------------------
    // Observation.
    // ---------------------------------------------------------------------------------------

    /// What probes and operators see of `service`'s replicas.
    pub fn replicas(&self, service: &str) -> Result<Vec<ReplicaStatus>, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize]
            .replicas
            .iter()
            .map(|r| ReplicaStatus {
                state: r.state,
                serving: r.serving(),
                drained: r.drained,
                inflight: r.inflight,
                live: r.state == ReplicaState::Running,
                probe_failures: r.probe_failures,
                restarts: r.restarts,
            })
            .collect())
    }

    /// The control-plane state of `service` as the kernel models it.
    pub fn service_control(&self, service: &str) -> Result<kernel::ServiceControl, SimError> {
        let s = self.service_index(service)?;
        let rt = &self.services[s as usize];
        let mut c = kernel::ServiceControl::new(
            rt.replicas.len() as u32,
            rt.configs[rt.current_config].name.clone(),
        );
        c.drained = rt
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| r.drained)
            .map(|(i, _)| i as u32)
            .collect();
        c.rate_limit = rt.limiter.as_ref().map(|l| l.rps);
        c.open_breakers = rt
            .breakers
            .keys()
            .map(|&b| self.spec.services[b as usize].name.clone())
            .collect();
        c.restarts = rt
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| r.restarts > 0)
            .map(|(i, r)| (i as u32, r.restarts))
            .collect();
        Ok(c)
    }

    /// The configuration versions `service` knows, oldest first, and the running one.
    pub fn config_versions(&self, service: &str) -> Result<(Vec<String>, String), SimError> {
        let s = self.service_index(service)?;
        let rt = &self.services[s as usize];
        Ok((
            rt.configs.iter().map(|c| c.name.clone()).collect(),
            rt.configs[rt.current_config].name.clone(),
        ))
    }

    /// Whether `service`'s running configuration is one that fails requests.
    pub fn config_is_bad(&self, service: &str) -> Result<bool, SimError> {
        let s = self.service_index(service)?;
        let rt = &self.services[s as usize];
        Ok(rt.configs[rt.current_config].fail_fraction > 0.0)
    }

    /// `service`'s CPU limit relative to the spec's (1: as specified).
    pub fn cpu_limit(&self, service: &str) -> Result<f64, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize].cpu_limit.map_or(1.0, |(l, _)| l))
    }

    /// Whether a rate limit is in force on `service`, and at what rate.
    pub fn rate_limit(&self, service: &str) -> Result<Option<f64>, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize].limiter.as_ref().map(|l| l.rps))
    }

    /// The kernel's dependency graph of the application as it runs now: the spec's graph with
    /// the current replica counts and config histories.
    pub fn dependency_graph(&self) -> kernel::DependencyGraph {
        let mut g = self.spec.dependency_graph(self.cfg.rate_rps);
        for (i, rt) in self.services.iter().enumerate() {
            let id = g
                .id(&self.spec.services[i].name)
                .expect("built from the spec");
            let svc = g.service_mut(id);
            svc.replicas = rt.replicas.len().max(1) as u32;
            svc.max_replicas = svc.max_replicas.max(svc.replicas);
            svc.min_replicas = svc.min_replicas.min(svc.replicas);
            let mut versions: Vec<String> = rt.configs.iter().map(|c| c.name.clone()).collect();
            // The running version is the last of the history (`current_config` in the kernel).
            let running = versions.remove(rt.current_config);
            versions.push(running);
            svc.config_versions = versions;
        }
        g
    }

    /// Calls sent to `service` so far.
    pub fn call_counters(&self, service: &str) -> Result<CallCounters, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize].counters)
    }

    /// Kind of `service`.
    pub fn service_kind(&self, service: &str) -> Result<ServiceKind, SimError> {
        let s = self.service_index(service)?;
        Ok(self.spec.services[s as usize].kind)
    }
}
