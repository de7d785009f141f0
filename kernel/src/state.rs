//! Control-plane state and the concrete operations that change it.
//!
//! The kernel lowers each typed [`Action`](crate::Action) to a [`ControlOp`] against the state it
//! observes just before the step (a drain of `"all"` becomes "drained set = {0, 1, 2}"), and
//! derives the exact undo operation from the same observation. Actuators apply `ControlOp`s; the
//! journal records them; [`ControlState::apply`] is their reference semantics, used by the
//! in-memory actuator and by journal replay.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Control-plane state of one service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceControl {
    /// Replica count.
    pub replicas: u32,
    /// Ordinals of replicas out of load balancing.
    #[serde(default)]
    pub drained: BTreeSet<u32>,
    /// Ingress rate limit in requests per second, if any.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Running configuration version.
    pub config: String,
    /// Callees whose breaker (on this service's side) is open.
    #[serde(default)]
    pub open_breakers: BTreeSet<String>,
    /// Restarts per replica ordinal so far (a restart has no other control-plane trace).
    #[serde(default)]
    pub restarts: BTreeMap<u32, u64>,
}

impl ServiceControl {
    /// A service with `replicas` replicas running `config`, nothing drained, limited or broken.
    pub fn new(replicas: u32, config: impl Into<String>) -> Self {
        ServiceControl {
            replicas,
            drained: BTreeSet::new(),
            rate_limit: None,
            config: config.into(),
            open_breakers: BTreeSet::new(),
            restarts: BTreeMap::new(),
        }
    }
}

/// A concrete control-plane operation, fully determined (no "all", no "previous").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlOp {
    /// Restart these replicas.
    Restart {
        /// Service.
        service: String,
        /// Replica ordinals.
        replicas: Vec<u32>,
    },
    /// Make the drained set exactly this.
    SetDrained {
        /// Service.
        service: String,
        /// Replica ordinals out of load balancing.
        drained: BTreeSet<u32>,
    },
    /// Open or close the breaker on `caller → callee`.
    SetBreaker {
        /// Caller.
        caller: String,
        /// Callee.
        callee: String,
        /// Open?
        open: bool,
    },
    /// Set or clear the ingress rate limit.
    SetRateLimit {
        /// Service.
        service: String,
        /// Limit in requests per second; `None` removes it.
        rps: Option<f64>,
    },
    /// Set the replica count.
    SetReplicas {
        /// Service.
        service: String,
        /// New count.
        replicas: u32,
    },
    /// Run this configuration version.
    SetConfig {
        /// Service.
        service: String,
        /// Version.
        version: String,
    },
}

impl ControlOp {
    /// The service whose state the operation changes.
    pub fn service(&self) -> &str {
        match self {
            ControlOp::Restart { service, .. }
            | ControlOp::SetDrained { service, .. }
            | ControlOp::SetRateLimit { service, .. }
            | ControlOp::SetReplicas { service, .. }
            | ControlOp::SetConfig { service, .. } => service,
            ControlOp::SetBreaker { caller, .. } => caller,
        }
    }

    /// The operation that puts back what `self` changes, given the state before it.
    /// `None` for restarts, which cannot be undone.
    pub fn undo(&self, before: &ServiceControl) -> Option<ControlOp> {
        let service = self.service().to_string();
        Some(match self {
            ControlOp::Restart { .. } => return None,
            ControlOp::SetDrained { .. } => ControlOp::SetDrained {
                service,
                drained: before.drained.clone(),
            },
            ControlOp::SetBreaker { caller, callee, .. } => ControlOp::SetBreaker {
                caller: caller.clone(),
                callee: callee.clone(),
                open: before.open_breakers.contains(callee),
            },
            ControlOp::SetRateLimit { .. } => ControlOp::SetRateLimit {
                service,
                rps: before.rate_limit,
            },
            ControlOp::SetReplicas { .. } => ControlOp::SetReplicas {
                service,
                replicas: before.replicas,
            },
            ControlOp::SetConfig { .. } => ControlOp::SetConfig {
                service,
                version: before.config.clone(),
            },
        })
    }
}

impl fmt::Display for ControlOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlOp::Restart { service, replicas } => {
                write!(f, "restart {service} replicas {replicas:?}")
            }
            ControlOp::SetDrained { service, drained } => {
                write!(f, "set {service} drained = {drained:?}")
            }
            ControlOp::SetBreaker {
                caller,
                callee,
                open,
            } => write!(
                f,
                "{} breaker {caller} -> {callee}",
                if *open { "open" } else { "close" }
            ),
            ControlOp::SetRateLimit { service, rps } => match rps {
                Some(r) => write!(f, "limit {service} to {r} rps"),
                None => write!(f, "remove {service} rate limit"),
            },
            ControlOp::SetReplicas { service, replicas } => {
                write!(f, "set {service} replicas = {replicas}")
            }
            ControlOp::SetConfig { service, version } => {
                write!(f, "set {service} config = {version}")
            }
        }
    }
}

/// Why a [`ControlOp`] cannot apply to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The service is unknown.
    #[error("unknown service `{0}`")]
    UnknownService(String),
    /// A replica ordinal out of range.
    #[error("`{service}` has no replica {replica}")]
    NoSuchReplica {
        /// Service.
        service: String,
        /// Ordinal.
        replica: u32,
    },
    /// Zero replicas.
    #[error("`{0}` cannot have zero replicas")]
    ZeroReplicas(String),
}

/// Control-plane state of a set of services.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ControlState {
    /// Per service.
    pub services: BTreeMap<String, ServiceControl>,
}

impl ControlState {
    /// The state of every service of `graph` as the graph describes it.
    pub fn from_graph(graph: &crate::DependencyGraph) -> Self {
        ControlState {
            services: graph
                .services()
                .map(|(_, s)| {
                    (
                        s.name.clone(),
                        ServiceControl::new(s.replicas, s.current_config().unwrap_or("v1")),
                    )
                })
                .collect(),
        }
    }

    /// The state of `service`.
    pub fn get(&self, service: &str) -> Option<&ServiceControl> {
        self.services.get(service)
    }

    /// Applies `op` (the reference semantics of every operation). Atomic: on error nothing
    /// changes.
    pub fn apply(&mut self, op: &ControlOp) -> Result<(), ApplyError> {
        let name = op.service();
        let svc = self
            .services
            .get_mut(name)
            .ok_or_else(|| ApplyError::UnknownService(name.to_string()))?;
        let check_replica = |svc: &ServiceControl, r: u32| {
            if r < svc.replicas {
                Ok(())
            } else {
                Err(ApplyError::NoSuchReplica {
                    service: name.to_string(),
                    replica: r,
                })
            }
        };
        match op {
            ControlOp::Restart { replicas, .. } => {
                for &r in replicas {
                    check_replica(svc, r)?;
                }
                for &r in replicas {
                    *svc.restarts.entry(r).or_default() += 1;
                }
            }
            ControlOp::SetDrained { drained, .. } => {
                for &r in drained {
                    check_replica(svc, r)?;
                }
                svc.drained = drained.clone();
            }
            ControlOp::SetBreaker { callee, open, .. } => {
                if *open {
                    svc.open_breakers.insert(callee.clone());
                } else {
                    svc.open_breakers.remove(callee);
                }
            }
            ControlOp::SetRateLimit { rps, .. } => svc.rate_limit = *rps,
            ControlOp::SetReplicas { replicas, .. } => {
                if *replicas == 0 {
                    return Err(ApplyError::ZeroReplicas(name.to_string()));
                }
                svc.replicas = *replicas;
                // Scale-down removes the highest ordinals, and with them their drain marks.
                svc.drained.retain(|&r| r < *replicas);
            }
            ControlOp::SetConfig { version, .. } => svc.config = version.clone(),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ControlState {
        let mut s = ControlState::default();
        s.services.insert("a".into(), ServiceControl::new(3, "v2"));
        s
    }

    #[test]
    fn every_op_has_an_exact_undo_except_restart() {
        let ops = [
            ControlOp::SetDrained {
                service: "a".into(),
                drained: [0, 2].into(),
            },
            ControlOp::SetBreaker {
                caller: "a".into(),
                callee: "b".into(),
                open: true,
            },
            ControlOp::SetRateLimit {
                service: "a".into(),
                rps: Some(10.0),
            },
            ControlOp::SetReplicas {
                service: "a".into(),
                replicas: 5,
            },
            ControlOp::SetConfig {
                service: "a".into(),
                version: "v1".into(),
            },
        ];
        for op in ops {
            let mut s = state();
            let before = s.get("a").unwrap().clone();
            s.apply(&op).unwrap();
            assert_ne!(s.get("a").unwrap(), &before, "{op} changes state");
            s.apply(&op.undo(&before).unwrap()).unwrap();
            assert_eq!(s.get("a").unwrap(), &before, "{op} undone exactly");
        }
        let restart = ControlOp::Restart {
            service: "a".into(),
            replicas: vec![1],
        };
        assert!(restart.undo(&state().services["a"]).is_none());
    }

    #[test]
    fn invalid_ops_change_nothing() {
        let mut s = state();
        let before = s.clone();
        for op in [
            ControlOp::Restart {
                service: "a".into(),
                replicas: vec![0, 7],
            },
            ControlOp::SetDrained {
                service: "a".into(),
                drained: [3].into(),
            },
            ControlOp::SetReplicas {
                service: "a".into(),
                replicas: 0,
            },
            ControlOp::SetConfig {
                service: "zz".into(),
                version: "v".into(),
            },
        ] {
            assert!(s.apply(&op).is_err(), "{op}");
            assert_eq!(s, before);
        }
    }

    #[test]
    fn scale_down_forgets_drains_of_removed_replicas() {
        let mut s = state();
        s.apply(&ControlOp::SetDrained {
            service: "a".into(),
            drained: [2].into(),
        })
        .unwrap();
        s.apply(&ControlOp::SetReplicas {
            service: "a".into(),
            replicas: 2,
        })
        .unwrap();
        assert!(s.get("a").unwrap().drained.is_empty());
    }
}
