//! Actuation into the simulated world.
//!
//! [`SimActuator`] is the kernel's [`Actuator`] over a [`Sim`]: the only way typed plans take
//! effect. Post-conditions are read from the simulation: a restart holds when the replicas run
//! again (after their start-up time), a drain when the drained replicas have no request left in
//! flight, a scale when the new replica count is running.
//!
//! [`RawActuator`] models today's unsafe practice — raw commands straight to the orchestrator,
//! with no validation: delete a deployment, scale to zero, restart everything in the namespace,
//! restart without a drain, push an arbitrary config, patch CPU limits, set an environment
//! variable (a rollout), lift rate limits and close breakers by hand. Only the unconstrained
//! baseline uses it; the kernel never does.

use crate::cause::Cause;
use crate::net::Network;
use crate::world::{ReplicaState, Sim, SimError};
use kernel::{Actuator, Check, ControlOp, ServiceControl};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kernel's actuator over a simulation. Failures its operations cause are tagged `cause`.
pub struct SimActuator<'a, N: Network> {
    sim: &'a mut Sim<N>,
    cause: Cause,
}

impl<'a, N: Network> SimActuator<'a, N> {
    /// An actuator over `sim` tagging what it does with `cause`.
    pub fn new(sim: &'a mut Sim<N>, cause: Cause) -> Self {
        SimActuator { sim, cause }
    }
}

impl<N: Network> Actuator for SimActuator<'_, N> {
    fn observe(&self, service: &str) -> Option<ServiceControl> {
        self.sim.service_control(service).ok()
    }

    fn apply(&mut self, op: &ControlOp) -> Result<(), String> {
        let cause = self.cause;
        let result = match op {
            ControlOp::Restart { service, replicas } => self.sim.restart(service, replicas, cause),
            ControlOp::SetDrained { service, drained } => {
                self.sim.set_drained(service, drained, cause)
            }
            ControlOp::SetBreaker {
                caller,
                callee,
                open,
            } => self.sim.set_breaker(caller, callee, *open, cause),
            ControlOp::SetRateLimit { service, rps } => {
                self.sim.set_rate_limit(service, *rps, cause)
            }
            ControlOp::SetReplicas { service, replicas } => {
                if *replicas == 0 {
                    Err(SimError::BadControl("zero replicas".into()))
                } else {
                    self.sim.set_replicas(service, *replicas, cause)
                }
            }
            ControlOp::SetConfig { service, version } => {
                self.sim.set_config(service, version, cause)
            }
        };
        result.map_err(|e| e.to_string())
    }

    fn check(&self, op: &ControlOp, before: &ServiceControl) -> Check {
        let replicas = |service: &str| self.sim.replicas(service).map_err(|e| e.to_string());
        let result: Result<Check, String> = (|| {
            Ok(match op {
                ControlOp::Restart {
                    service,
                    replicas: which,
                } => {
                    let all = replicas(service)?;
                    let mut check = Check::Holds;
                    for &r in which {
                        match all.get(r as usize).map(|s| s.state) {
                            Some(ReplicaState::Running) => {}
                            Some(ReplicaState::Starting) => check = Check::Pending,
                            Some(state) => {
                                return Ok(Check::Failed(format!(
                                    "replica {r} is {state:?} after the restart"
                                )));
                            }
                            None => {
                                return Ok(Check::Failed(format!("replica {r} no longer exists")));
                            }
                        }
                    }
                    check
                }
                ControlOp::SetDrained { service, drained } => {
                    let all = replicas(service)?;
                    let busy = drained
                        .iter()
                        .any(|&r| all.get(r as usize).is_some_and(|s| s.inflight > 0));
                    if busy { Check::Pending } else { Check::Holds }
                }
                ControlOp::SetBreaker {
                    caller,
                    callee,
                    open,
                } => {
                    let c = self
                        .sim
                        .service_control(caller)
                        .map_err(|e| e.to_string())?;
                    if c.open_breakers.contains(callee) == *open {
                        Check::Holds
                    } else {
                        Check::Failed("breaker state differs".into())
                    }
                }
                ControlOp::SetRateLimit { service, rps } => {
                    if self.sim.rate_limit(service).map_err(|e| e.to_string())? == *rps {
                        Check::Holds
                    } else {
                        Check::Failed("rate limit not in force".into())
                    }
                }
                ControlOp::SetReplicas {
                    service,
                    replicas: n,
                } => {
                    // Only what the step changed: the replicas it added must start; a scale-down
                    // holds once they are gone. Replicas a fault hung are not the step's doing,
                    // and must not stop a scale (the remedy for a hang) from committing.
                    let all = replicas(service)?;
                    let added = all.get(before.replicas as usize..).unwrap_or_default();
                    if all.len() as u32 != *n {
                        Check::Failed(format!("{} replicas instead of {n}", all.len()))
                    } else if added.iter().all(|s| s.state == ReplicaState::Running) {
                        Check::Holds
                    } else if added.iter().any(|s| s.state == ReplicaState::Starting) {
                        Check::Pending
                    } else {
                        let (r, s) = added
                            .iter()
                            .enumerate()
                            .find(|(_, s)| s.state != ReplicaState::Running)
                            .expect("not all running");
                        Check::Failed(format!(
                            "added replica {} is {:?}",
                            before.replicas as usize + r,
                            s.state
                        ))
                    }
                }
                ControlOp::SetConfig { service, version } => {
                    let (_, running) = self
                        .sim
                        .config_versions(service)
                        .map_err(|e| e.to_string())?;
                    if running == *version {
                        Check::Holds
                    } else {
                        Check::Failed(format!("running {running}, not {version}"))
                    }
                }
            })
        })();
        result.unwrap_or_else(Check::Failed)
    }
}

/// A raw orchestrator command, unvalidated (the unsafe status quo).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum RawCommand {
    /// `kubectl delete deployment S`: every replica gone, nothing brings it back.
    DeleteDeployment {
        /// Service.
        service: String,
    },
    /// `kubectl scale deployment S --replicas=N`, zero included.
    Scale {
        /// Service.
        service: String,
        /// New count.
        replicas: u32,
    },
    /// `kubectl rollout restart deployment --all` done the blunt way: every replica of every
    /// service restarts at once.
    RestartAll,
    /// `kubectl delete pods -l app=S`: every replica restarts at once, with no drain.
    Restart {
        /// Service.
        service: String,
    },
    /// `kubectl delete pod S-r …`: these replicas restart, with no drain (also what the kubelet
    /// does after failed liveness probes).
    RestartReplicas {
        /// Service.
        service: String,
        /// Ordinals.
        replicas: Vec<u32>,
    },
    /// Push a configuration version by hand, known or not.
    SetConfig {
        /// Service.
        service: String,
        /// Version.
        version: String,
    },
    /// Take replicas out of load balancing (nothing puts them back).
    Drain {
        /// Service.
        service: String,
        /// Ordinals.
        replicas: Vec<u32>,
    },
    /// Put every replica back into load balancing.
    Undrain {
        /// Service.
        service: String,
    },
    /// Limit ingress to `rps` (nothing lifts it).
    RateLimit {
        /// Service.
        service: String,
        /// Admitted requests per second.
        rps: f64,
    },
    /// Open the breaker `caller → callee` (nothing closes it).
    CircuitBreak {
        /// Caller.
        caller: String,
        /// Callee.
        callee: String,
    },
    /// Close the breaker `caller → callee` by hand: traffic flows again, healthy callee or not.
    CloseBreaker {
        /// Caller.
        caller: String,
        /// Callee.
        callee: String,
    },
    /// Remove a service's ingress rate limit by hand.
    LiftRateLimit {
        /// Service.
        service: String,
    },
    /// `kubectl set resources deployment S --limits=cpu=…`: the CPU limit becomes `cpu` times
    /// the spec's, up or down, applied in place (see `Sim::set_cpu_limit`).
    PatchLimits {
        /// Service.
        service: String,
        /// New limit relative to the spec's.
        cpu: f64,
    },
    /// `kubectl set env deployment/S NAME=VALUE`: a pod-template change, so a rollout of every
    /// replica at once (see `Sim::set_env`).
    SetEnv {
        /// Service.
        service: String,
        /// Variable.
        name: String,
        /// Value.
        value: String,
    },
}

impl RawCommand {
    /// The command's kind, snake case (`delete_deployment`, `restart`, …).
    pub fn name(&self) -> &'static str {
        match self {
            RawCommand::DeleteDeployment { .. } => "delete_deployment",
            RawCommand::Scale { .. } => "scale",
            RawCommand::RestartAll => "restart_all",
            RawCommand::Restart { .. } => "restart",
            RawCommand::RestartReplicas { .. } => "restart_replicas",
            RawCommand::SetConfig { .. } => "set_config",
            RawCommand::Drain { .. } => "drain",
            RawCommand::Undrain { .. } => "undrain",
            RawCommand::RateLimit { .. } => "rate_limit",
            RawCommand::CircuitBreak { .. } => "circuit_break",
            RawCommand::CloseBreaker { .. } => "close_breaker",
            RawCommand::LiftRateLimit { .. } => "lift_rate_limit",
            RawCommand::PatchLimits { .. } => "patch_limits",
            RawCommand::SetEnv { .. } => "set_env",
        }
    }

    /// The services it acts on, as the typed ISA counts them (a breaker: caller and callee);
    /// `None` for `RestartAll`, which acts on every service.
    pub fn targets(&self) -> Option<Vec<&str>> {
        match self {
            RawCommand::RestartAll => None,
            RawCommand::DeleteDeployment { service }
            | RawCommand::Scale { service, .. }
            | RawCommand::Restart { service }
            | RawCommand::RestartReplicas { service, .. }
            | RawCommand::SetConfig { service, .. }
            | RawCommand::Drain { service, .. }
            | RawCommand::Undrain { service }
            | RawCommand::RateLimit { service, .. }
            | RawCommand::LiftRateLimit { service }
            | RawCommand::PatchLimits { service, .. }
            | RawCommand::SetEnv { service, .. } => Some(vec![service]),
            RawCommand::CircuitBreak { caller, callee }
            | RawCommand::CloseBreaker { caller, callee } => Some(vec![caller, callee]),
        }
    }
}

impl fmt::Display for RawCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawCommand::DeleteDeployment { service } => {
                write!(f, "kubectl delete deployment {service}")
            }
            RawCommand::Scale { service, replicas } => {
                write!(
                    f,
                    "kubectl scale deployment {service} --replicas={replicas}"
                )
            }
            RawCommand::RestartAll => write!(f, "kubectl delete pods --all"),
            RawCommand::Restart { service } => write!(f, "kubectl delete pods -l app={service}"),
            RawCommand::RestartReplicas { service, replicas } => {
                write!(f, "kubectl delete pod {service}{replicas:?}")
            }
            RawCommand::SetConfig { service, version } => {
                write!(f, "kubectl apply -f {service}-config-{version}.yaml")
            }
            RawCommand::Drain { service, replicas } => {
                write!(f, "kubectl label pods {service}{replicas:?} serving=false")
            }
            RawCommand::Undrain { service } => {
                write!(f, "kubectl label pods -l app={service} serving=true")
            }
            RawCommand::RateLimit { service, rps } => {
                write!(f, "istioctl ratelimit {service} {rps:.1}/s")
            }
            RawCommand::CircuitBreak { caller, callee } => {
                write!(f, "istioctl circuit-break {caller} -> {callee}")
            }
            RawCommand::CloseBreaker { caller, callee } => {
                write!(f, "istioctl circuit-close {caller} -> {callee}")
            }
            RawCommand::LiftRateLimit { service } => {
                write!(f, "istioctl ratelimit {service} --remove")
            }
            RawCommand::PatchLimits { service, cpu } => {
                write!(
                    f,
                    "kubectl set resources deployment {service} --limits=cpu=x{cpu:.2}"
                )
            }
            RawCommand::SetEnv {
                service,
                name,
                value,
            } => write!(f, "kubectl set env deployment/{service} {name}={value}"),
        }
    }
}

/// Executes raw commands with no validation at all.
pub struct RawActuator;

impl RawActuator {
    /// Runs `command` against `sim`, tagging what it causes with `cause`.
    pub fn execute<N: Network>(
        sim: &mut Sim<N>,
        command: &RawCommand,
        cause: Cause,
    ) -> Result<(), SimError> {
        match command {
            RawCommand::DeleteDeployment { service } => sim.set_replicas(service, 0, cause),
            RawCommand::Scale { service, replicas } => sim.set_replicas(service, *replicas, cause),
            RawCommand::RestartAll => {
                let names: Vec<String> =
                    sim.spec().services.iter().map(|s| s.name.clone()).collect();
                for name in names {
                    let n = sim.replica_count(&name)?;
                    let all: Vec<u32> = (0..n).collect();
                    sim.restart(&name, &all, cause)?;
                }
                Ok(())
            }
            RawCommand::Restart { service } => {
                let all: Vec<u32> = (0..sim.replica_count(service)?).collect();
                sim.restart(service, &all, cause)
            }
            RawCommand::RestartReplicas { service, replicas } => {
                let n = sim.replica_count(service)?;
                let present: Vec<u32> = replicas.iter().copied().filter(|&r| r < n).collect();
                sim.restart(service, &present, cause)
            }
            RawCommand::SetConfig { service, version } => sim.set_config(service, version, cause),
            RawCommand::Drain { service, replicas } => {
                let mut drained = sim.service_control(service)?.drained;
                let n = sim.replica_count(service)?;
                drained.extend(replicas.iter().copied().filter(|&r| r < n));
                sim.set_drained(service, &drained, cause)
            }
            RawCommand::Undrain { service } => sim.set_drained(service, &Default::default(), cause),
            RawCommand::RateLimit { service, rps } => {
                sim.set_rate_limit(service, Some(*rps), cause)
            }
            RawCommand::CircuitBreak { caller, callee } => {
                sim.set_breaker(caller, callee, true, cause)
            }
            RawCommand::CloseBreaker { caller, callee } => {
                sim.set_breaker(caller, callee, false, cause)
            }
            RawCommand::LiftRateLimit { service } => sim.set_rate_limit(service, None, cause),
            RawCommand::PatchLimits { service, cpu } => sim.set_cpu_limit(service, *cpu, cause),
            RawCommand::SetEnv { service, .. } => sim.set_env(service, cause),
        }
    }
}
