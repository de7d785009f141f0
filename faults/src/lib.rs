//! The five fault types (DESIGN §7), their injection into a simulation and their retraction.
//!
//! | type | Chaos Mesh analogue | effect in the simulator | remedy | retraction |
//! |---|---|---|---|---|
//! | `crash` | PodChaos pod-kill / container-kill | replicas hang (accept, never answer) or die (refuse) | Restart | the orchestrator replaces them: they restart |
//! | `latency` | NetworkChaos delay | every message to or from the replicas is delayed | CircuitBreak, Drain | delay removed |
//! | `resource` | StressChaos cpu / memory | service times × factor (or growing, for a leak) | Scale, Restart, RateLimit | stressor removed |
//! | `partition` | NetworkChaos partition | messages between the replicas and one dependency are lost | Drain + RestoreTraffic, CircuitBreak | link repaired |
//! | `misconfig` | a bad config push | a new config version that fails a fraction of requests | RollbackConfig | the bad push is reverted (if still running) |
//!
//! A restart does not cure a partition or a latency fault (they are outside the process) nor a
//! misconfig (the config is read again at start); it does cure a crash and a resource fault of
//! the restarted replicas. Every injected fault has an id; failures it causes carry
//! `Cause::Fault(id)`, and [`FaultInjector::retract_all`] ends every fault so that a run never
//! ends with one still active.
//!
//! Schedules are serde data (TOML or JSON; every key and an example in `docs/faults.md`):
//!
//! ```toml
//! [[faults]]
//! target = "post-storage-service"
//! start_s = 60
//! duration_s = 120
//! fault = { type = "crash", mode = "hang" }
//! ```

use kernel::VirtualTime;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim::{Cause, Network, Sim, SimError};
use std::fmt;

/// How a crash fault takes replicas out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashMode {
    /// The process hangs: it accepts connections and never answers, until readiness probes
    /// take it out of load balancing (a deadlock, a stuck GC).
    #[default]
    Hang,
    /// The process dies: connections are refused at once.
    Kill,
}

/// The five fault types and their parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Process crash or hang.
    Crash {
        /// Hang or kill.
        #[serde(default)]
        mode: CrashMode,
    },
    /// Extra delay on every message to or from the replicas.
    Latency {
        /// Added one-way delay, milliseconds.
        delay_ms: f64,
    },
    /// CPU hog or memory leak.
    Resource {
        /// Service-time multiplier (for a leak: the multiplier it grows to).
        cpu_factor: f64,
        /// Grow the slowdown over the fault's duration instead of applying it at once.
        #[serde(default)]
        leak: bool,
    },
    /// Loss of every message between the replicas and one dependency.
    Partition {
        /// The dependency cut off.
        dependency: String,
    },
    /// A bad configuration push.
    Misconfig {
        /// Fraction of requests the bad config fails.
        fail_fraction: f64,
    },
}

impl FaultKind {
    /// The type of this fault, without its parameters: what a diagnosis names, what the
    /// evaluation matrix and the records list.
    pub fn fault_type(&self) -> FaultType {
        match self {
            FaultKind::Crash { .. } => FaultType::Crash,
            FaultKind::Latency { .. } => FaultType::Latency,
            FaultKind::Resource { .. } => FaultType::Resource,
            FaultKind::Partition { .. } => FaultType::Partition,
            FaultKind::Misconfig { .. } => FaultType::Misconfig,
        }
    }
}

/// A fault type without its parameters — the one vocabulary of fault types in the workspace.
///
/// The scenario rules (`deathstarbench`), the LLM's diagnosis and remedy (`agents`), the
/// evaluation matrix, its records and the offline draws (`experiments`), the tables (`reports`)
/// and the command line all use this enum, so that a new fault type is added here (and in
/// [`FaultKind`], with its mechanism) and every consumer that must handle it fails to compile
/// until it does. Names are lowercase everywhere — serde, [`fmt::Display`], [`str::FromStr`] —
/// and they are the strings committed results carry, so they never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultType {
    /// Crash or hang.
    Crash,
    /// Network delay.
    Latency,
    /// CPU or memory pressure.
    Resource,
    /// Network partition from a dependency.
    Partition,
    /// Bad configuration.
    Misconfig,
}

impl FaultType {
    /// Every type, in DESIGN order. Offline draws index this array, so a new type goes last:
    /// the draws of the existing types then stay as they are for the earlier indices.
    pub const ALL: [FaultType; 5] = [
        FaultType::Crash,
        FaultType::Latency,
        FaultType::Resource,
        FaultType::Partition,
        FaultType::Misconfig,
    ];

    /// The name (`crash`, `latency`, `resource`, `partition`, `misconfig`).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultType::Crash => "crash",
            FaultType::Latency => "latency",
            FaultType::Resource => "resource",
            FaultType::Partition => "partition",
            FaultType::Misconfig => "misconfig",
        }
    }

    /// The type called `name`, if any (see [`str::FromStr`] for an error listing the choices).
    pub fn from_name(name: &str) -> Option<FaultType> {
        FaultType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether restarting the hit replicas cures this type (module docs: a crash and a resource
    /// fault live in the process; a latency or partition fault is outside it, and a misconfig
    /// is read again at start). The offline effect model reads this; online, the simulator's
    /// mechanism decides. A match with no catch-all, so a new type must answer.
    pub fn cured_by_restart(self) -> bool {
        match self {
            FaultType::Crash | FaultType::Resource => true,
            FaultType::Latency | FaultType::Partition | FaultType::Misconfig => false,
        }
    }

    /// The names, comma-separated, for messages listing the choices.
    pub fn choices() -> String {
        FaultType::ALL.map(FaultType::as_str).join(", ")
    }
}

impl fmt::Display for FaultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown fault type name; its message lists the valid ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFaultType(pub String);

impl fmt::Display for UnknownFaultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown fault `{}`; choose from: {}",
            self.0,
            FaultType::choices()
        )
    }
}

impl std::error::Error for UnknownFaultType {}

impl std::str::FromStr for FaultType {
    type Err = UnknownFaultType;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        FaultType::from_name(name).ok_or_else(|| UnknownFaultType(name.to_string()))
    }
}

impl Serialize for FaultType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Hand-written (not derived) so that a configuration or an LLM response naming an unknown
/// type gets the same message, listing the choices, as the command line.
impl<'de> Deserialize<'de> for FaultType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Which replicas a fault hits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaPick {
    /// Every replica.
    #[default]
    All,
    /// One replica, chosen by the fault stream.
    One,
    /// These ordinals.
    Ids(Vec<u32>),
}

/// One fault in a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Service hit.
    pub target: String,
    /// Replicas hit (default all).
    #[serde(default)]
    pub replicas: ReplicaPick,
    /// Injection time, seconds from the start of the run.
    pub start_s: f64,
    /// How long it lasts, seconds.
    pub duration_s: f64,
    /// Type and parameters.
    #[serde(rename = "fault")]
    pub kind: FaultKind,
}

impl FaultSpec {
    /// Injection time.
    pub fn start(&self) -> VirtualTime {
        VirtualTime((self.start_s * 1e6) as u64)
    }

    /// Retraction time.
    pub fn end(&self) -> VirtualTime {
        VirtualTime(((self.start_s + self.duration_s) * 1e6) as u64)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.kind.fault_type(), self.target)?;
        match &self.kind {
            FaultKind::Crash { mode } => write!(f, " ({mode:?})")?,
            FaultKind::Latency { delay_ms } => write!(f, " (+{delay_ms} ms)")?,
            FaultKind::Resource { cpu_factor, leak } => {
                write!(f, " ({}x{})", cpu_factor, if *leak { ", leak" } else { "" })?
            }
            FaultKind::Partition { dependency } => write!(f, " (from {dependency})")?,
            FaultKind::Misconfig { fail_fraction } => {
                write!(f, " ({}% failing)", fail_fraction * 100.0)?
            }
        }
        write!(f, " at {}s for {}s", self.start_s, self.duration_s)
    }
}

/// A fault schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSchedule {
    /// The faults; the `i`-th has id `i + 1`.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

impl FaultSchedule {
    /// Parses a TOML schedule.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks the schedule against `sim`'s application: targets exist, times and parameters are
    /// sane.
    pub fn check<N: Network>(&self, sim: &Sim<N>) -> Result<(), String> {
        for (i, f) in self.faults.iter().enumerate() {
            let at = |m: String| format!("faults[{i}] ({}): {m}", f.kind.fault_type());
            let replicas = sim
                .replica_count(&f.target)
                .map_err(|e| at(e.to_string()))?;
            if !(f.start_s.is_finite()
                && f.start_s >= 0.0
                && f.duration_s.is_finite()
                && f.duration_s > 0.0)
            {
                return Err(at("start_s must be >= 0 and duration_s > 0".into()));
            }
            if let ReplicaPick::Ids(ids) = &f.replicas
                && let Some(bad) = ids.iter().find(|&&r| r >= replicas)
            {
                return Err(at(format!("`{}` has no replica {bad}", f.target)));
            }
            match &f.kind {
                FaultKind::Latency { delay_ms } if !(delay_ms.is_finite() && *delay_ms > 0.0) => {
                    return Err(at("delay_ms must be positive".into()));
                }
                FaultKind::Resource { cpu_factor, .. }
                    if !(cpu_factor.is_finite() && *cpu_factor > 1.0) =>
                {
                    return Err(at("cpu_factor must exceed 1".into()));
                }
                FaultKind::Partition { dependency } => {
                    sim.replica_count(dependency)
                        .map_err(|e| at(e.to_string()))?;
                }
                FaultKind::Misconfig { fail_fraction }
                    if !(*fail_fraction > 0.0 && *fail_fraction <= 1.0) =>
                {
                    return Err(at("fail_fraction must be in (0, 1]".into()));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Pending,
    Active {
        replicas: Vec<u32>,
        bad_version: Option<String>,
        previous_version: Option<String>,
    },
    Retracted,
}

/// What the injector did, for logs and reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultEvent {
    /// When.
    pub at: VirtualTime,
    /// Fault id.
    pub fault: u32,
    /// `inject` or `retract`.
    pub what: &'static str,
    /// Replicas affected.
    pub replicas: Vec<u32>,
}

/// Injects and retracts a schedule's faults as simulated time passes.
pub struct FaultInjector {
    schedule: FaultSchedule,
    phases: Vec<Phase>,
    rng: ChaCha8Rng,
    log: Vec<FaultEvent>,
    /// Bad config versions of retracted misconfig faults: `(target, bad, version it replaced)`.
    /// A later bad push can replace an earlier one; when it is retracted, rolling back to an
    /// already-retracted bad version would leave that fault in force, so the rollback goes on
    /// back to what the earlier fault replaced.
    reverted: Vec<(String, String, String)>,
}

impl FaultInjector {
    /// An injector for `schedule`, choosing replicas with `rng` (the run's fault stream).
    pub fn new(schedule: FaultSchedule, rng: ChaCha8Rng) -> Self {
        FaultInjector {
            phases: vec![Phase::Pending; schedule.faults.len()],
            schedule,
            rng,
            log: Vec::new(),
            reverted: Vec::new(),
        }
    }

    /// The schedule.
    pub fn schedule(&self) -> &FaultSchedule {
        &self.schedule
    }

    /// What has been injected and retracted so far.
    pub fn log(&self) -> &[FaultEvent] {
        &self.log
    }

    /// The next time a fault starts or ends, if any remains.
    pub fn next_change(&self) -> Option<VirtualTime> {
        self.schedule
            .faults
            .iter()
            .zip(&self.phases)
            .filter_map(|(f, p)| match p {
                Phase::Pending => Some(f.start()),
                Phase::Active { .. } => Some(f.end()),
                Phase::Retracted => None,
            })
            .min()
    }

    /// Faults active now, with their ids and the replicas they hit (ground truth, e.g. for the
    /// oracle policy and the monitoring side's incident detection).
    pub fn active(&self) -> Vec<(u32, &FaultSpec, &[u32])> {
        self.schedule
            .faults
            .iter()
            .zip(&self.phases)
            .enumerate()
            .filter_map(|(i, (f, p))| match p {
                Phase::Active { replicas, .. } => Some((i as u32 + 1, f, replicas.as_slice())),
                _ => None,
            })
            .collect()
    }

    /// Injects every fault due by `sim.now()` and retracts every one that has ended.
    pub fn apply_due<N: Network>(&mut self, sim: &mut Sim<N>) -> Result<(), SimError> {
        let now = sim.now();
        for i in 0..self.schedule.faults.len() {
            let f = &self.schedule.faults[i];
            match &self.phases[i] {
                Phase::Pending if f.start() <= now => self.inject(i, sim)?,
                Phase::Active { .. } if f.end() <= now => self.retract(i, sim)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Retracts every fault still active (the end of a run).
    pub fn retract_all<N: Network>(&mut self, sim: &mut Sim<N>) -> Result<(), SimError> {
        for i in 0..self.phases.len() {
            match self.phases[i] {
                Phase::Active { .. } => self.retract(i, sim)?,
                Phase::Pending => self.phases[i] = Phase::Retracted,
                Phase::Retracted => {}
            }
        }
        Ok(())
    }

    /// Whether every fault has been retracted (or never injected).
    pub fn all_retracted(&self) -> bool {
        self.phases.iter().all(|p| *p == Phase::Retracted)
    }

    fn inject<N: Network>(&mut self, i: usize, sim: &mut Sim<N>) -> Result<(), SimError> {
        let f = self.schedule.faults[i].clone();
        let cause = Cause::Fault(i as u32 + 1);
        let n = sim.replica_count(&f.target)?;
        let replicas: Vec<u32> = match &f.replicas {
            ReplicaPick::All => (0..n).collect(),
            ReplicaPick::One if n > 0 => vec![self.rng.random_range(0..n)],
            ReplicaPick::One => Vec::new(),
            // Replicas may have been scaled away since the schedule was checked.
            ReplicaPick::Ids(ids) => ids.iter().copied().filter(|&r| r < n).collect(),
        };
        let (mut bad_version, mut previous_version) = (None, None);
        match &f.kind {
            FaultKind::Crash {
                mode: CrashMode::Hang,
            } => sim.hang(&f.target, &replicas, cause)?,
            FaultKind::Crash {
                mode: CrashMode::Kill,
            } => sim.kill(&f.target, &replicas, cause)?,
            FaultKind::Latency { delay_ms } => {
                sim.set_net_delay(&f.target, &replicas, (delay_ms * 1000.0) as u64, cause)?
            }
            FaultKind::Resource { cpu_factor, leak } => {
                let per_s = leak.then(|| (cpu_factor - 1.0) / f.duration_s.max(1.0));
                sim.set_slowdown(&f.target, &replicas, *cpu_factor, per_s, cause)?
            }
            FaultKind::Partition { dependency } => {
                sim.set_partition(&f.target, &replicas, dependency, true, cause)?
            }
            FaultKind::Misconfig { fail_fraction } => {
                previous_version = Some(sim.config_versions(&f.target)?.1);
                bad_version = Some(sim.push_bad_config(&f.target, *fail_fraction, cause)?);
            }
        }
        self.log.push(FaultEvent {
            at: sim.now(),
            fault: i as u32 + 1,
            what: "inject",
            replicas: replicas.clone(),
        });
        self.phases[i] = Phase::Active {
            replicas,
            bad_version,
            previous_version,
        };
        Ok(())
    }

    fn retract<N: Network>(&mut self, i: usize, sim: &mut Sim<N>) -> Result<(), SimError> {
        let f = self.schedule.faults[i].clone();
        let cause = Cause::Fault(i as u32 + 1);
        let Phase::Active {
            replicas,
            bad_version,
            previous_version,
        } = std::mem::replace(&mut self.phases[i], Phase::Retracted)
        else {
            return Ok(());
        };
        // Replicas may have been scaled away meanwhile; retract on those that remain.
        let n = sim.replica_count(&f.target)?;
        let present: Vec<u32> = replicas.iter().copied().filter(|&r| r < n).collect();
        match &f.kind {
            FaultKind::Crash { .. } => sim.recover(&f.target, &present, cause)?,
            FaultKind::Latency { .. } => sim.set_net_delay(&f.target, &present, 0, cause)?,
            FaultKind::Resource { .. } => {
                sim.set_slowdown(&f.target, &present, 1.0, None, cause)?
            }
            FaultKind::Partition { dependency } => {
                sim.set_partition(&f.target, &present, dependency, false, cause)?
            }
            FaultKind::Misconfig { .. } => {
                if let (Some(bad), Some(mut previous)) = (bad_version, previous_version) {
                    while let Some((_, _, earlier)) = self
                        .reverted
                        .iter()
                        .find(|(t, b, _)| *t == f.target && *b == previous)
                    {
                        previous = earlier.clone();
                    }
                    let running = sim.config_versions(&f.target)?.1;
                    if running == bad {
                        sim.set_config(&f.target, &previous, cause)?;
                    }
                    self.reverted.push((f.target.clone(), bad, previous));
                }
            }
        }
        self.log.push(FaultEvent {
            at: sim.now(),
            fault: i as u32 + 1,
            what: "retract",
            replicas: present,
        });
        Ok(())
    }
}

/// Runs `sim` to `end`, injecting and retracting `faults` on schedule, and retracts whatever
/// is still active at the end. Returns the injector (its log and final state).
pub fn run_with_faults<N: Network>(
    sim: &mut Sim<N>,
    mut faults: FaultInjector,
    end: VirtualTime,
) -> Result<FaultInjector, SimError> {
    loop {
        faults.apply_due(sim)?;
        match faults.next_change() {
            Some(t) if t < end => sim.run_until(t)?,
            _ => break,
        }
    }
    sim.run_until(end)?;
    faults.retract_all(sim)?;
    debug_assert!(faults.all_retracted());
    Ok(faults)
}
