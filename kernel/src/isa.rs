//! The remediation ISA: seven typed actions and the plans built from them (DESIGN §4).
//!
//! | action | parameters | rollback class | inverse |
//! |---|---|---|---|
//! | `restart` | service, replicas | restartable (no undo) | none |
//! | `drain` | service, replicas | reversible | `restore_traffic` |
//! | `restore_traffic` | service | reversible | `drain` |
//! | `circuit_break` | caller, callee, optional duration | reversible | close the breaker |
//! | `rate_limit` | service, rps | reversible | previous limit |
//! | `scale` | service, replicas ≥ 1 | reversible up, compensatable down | previous count |
//! | `rollback_config` | service, version | compensatable | roll forward |
//!
//! The types make some harm inexpressible: there is no delete, no scale-to-zero
//! ([`ReplicaCount`] is at least 1), no namespace-wide verb (every action names its targets),
//! no negative or non-finite rate ([`Rate`]), no unbounded lease ([`LeaseSeconds`]).
//!
//! A [`Plan`] is a list of **stages** executed in order; the actions of one stage run in
//! parallel. Steps are numbered from 0 across stages in reading order; a [`Lease`] gives a
//! reversible step a time-to-live after which the kernel reverts it.
//!
//! # JSON form
//!
//! ```json
//! {
//!   "incident": "inc-7",
//!   "stages": [
//!     [{"drain": {"service": "user-service", "replicas": [1]}}],
//!     [{"restart": {"service": "user-service", "replicas": [1]}}],
//!     [{"restore_traffic": {"service": "user-service"}}],
//!     [{"rate_limit": {"service": "frontend", "rps": 250.0}}]
//!   ],
//!   "leases": [{"step": 3, "ttl_s": 120}]
//! }
//! ```
//!
//! Each action is an object with one key, the action's name, whose value holds its parameters.
//! `replicas` is `"all"` (the default), a count (`2`: the kernel's actuator picks which, highest
//! ordinal first), or explicit replica ordinals (`[0, 2]`). Unknown fields are errors, and so are
//! plans over [`MAX_PLAN_JSON_BYTES`] or [`MAX_PARSED_STEPS`]; `kernel/examples/` holds a
//! documented example set.

use crate::input::{InputError, parse_json};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Largest plan document the parser reads, in bytes.
pub const MAX_PLAN_JSON_BYTES: usize = 256 << 10;
/// Most steps a parsed plan may contain. The kernel accepts far fewer
/// ([`MAX_PLAN_STEPS`](crate::MAX_PLAN_STEPS)); this bound only keeps hostile input cheap.
pub const MAX_PARSED_STEPS: usize = 1024;
/// Longest service name or config version accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 253;
/// Most replica ordinals a selector may list.
pub const MAX_REPLICA_IDS: usize = 1024;

/// A service name: non-empty, at most [`MAX_NAME_BYTES`] bytes, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(String);

impl ServiceName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_name(value: &str, what: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what} is {} bytes, longer than {MAX_NAME_BYTES}",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains a control character"));
    }
    Ok(())
}

impl TryFrom<String> for ServiceName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        check_name(&value, "service name")?;
        Ok(ServiceName(value))
    }
}

impl TryFrom<&str> for ServiceName {
    type Error = String;
    fn try_from(value: &str) -> Result<Self, String> {
        ServiceName::try_from(value.to_string())
    }
}

impl From<ServiceName> for String {
    fn from(value: ServiceName) -> String {
        value.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A configuration version id: non-empty, at most [`MAX_NAME_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigVersion(String);

impl ConfigVersion {
    /// The version id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConfigVersion {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        check_name(&value, "config version")?;
        Ok(ConfigVersion(value))
    }
}

impl TryFrom<&str> for ConfigVersion {
    type Error = String;
    fn try_from(value: &str) -> Result<Self, String> {
        ConfigVersion::try_from(value.to_string())
    }
}

impl From<ConfigVersion> for String {
    fn from(value: ConfigVersion) -> String {
        value.0
    }
}

/// A replica count for `scale`: 1 to 10 000. Zero is not expressible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct ReplicaCount(u32);

impl ReplicaCount {
    /// Largest count accepted.
    pub const MAX: u32 = 10_000;

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u64> for ReplicaCount {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        match value {
            0 => Err("replica count must be at least 1 (there is no scale-to-zero)".into()),
            v if v > u64::from(Self::MAX) => {
                Err(format!("replica count {v} is larger than {}", Self::MAX))
            }
            v => Ok(ReplicaCount(v as u32)),
        }
    }
}

impl From<ReplicaCount> for u32 {
    fn from(value: ReplicaCount) -> u32 {
        value.0
    }
}

/// A request rate in requests per second: finite and strictly positive, at most 10⁹.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Rate(f64);

impl Rate {
    /// The rate in requests per second.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Rate {
    type Error = String;
    fn try_from(value: f64) -> Result<Self, String> {
        if value.is_finite() && value > 0.0 && value <= 1e9 {
            Ok(Rate(value))
        } else {
            Err(format!(
                "rate must be a finite number of requests per second in (0, 1e9], got {value}"
            ))
        }
    }
}

impl From<Rate> for f64 {
    fn from(value: Rate) -> f64 {
        value.0
    }
}

/// A lease or breaker duration in whole seconds: 1 s to 24 h.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct LeaseSeconds(u32);

impl LeaseSeconds {
    /// Longest lease accepted.
    pub const MAX: u32 = 86_400;

    /// The lease planners give a degradation by default: a minute, so that a degradation nobody
    /// needs any more lapses soon; the kernel renews it while the failure it contains persists
    /// (its revert regresses, see [`crate::watchdog`]).
    pub const DEFAULT: LeaseSeconds = LeaseSeconds(60);

    /// The duration in seconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// As a [`std::time::Duration`].
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.0))
    }
}

impl TryFrom<u64> for LeaseSeconds {
    type Error = String;
    fn try_from(value: u64) -> Result<Self, String> {
        if (1..=u64::from(Self::MAX)).contains(&value) {
            Ok(LeaseSeconds(value as u32))
        } else {
            Err(format!(
                "duration must be 1 to {} seconds, got {value}",
                Self::MAX
            ))
        }
    }
}

impl From<LeaseSeconds> for u64 {
    fn from(value: LeaseSeconds) -> u64 {
        u64::from(value.0)
    }
}

/// Which replicas of a service an action applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReplicaSelector {
    /// Every replica (JSON `"all"`).
    #[default]
    All,
    /// Some number of replicas, chosen by the actuator (JSON number ≥ 1).
    Count(u32),
    /// Replicas by ordinal (JSON array of distinct ordinals, at least one).
    Ids(Vec<u32>),
}

impl ReplicaSelector {
    /// The concrete ordinals this selects out of `replicas` replicas, or `None` if it names more
    /// replicas or higher ordinals than exist. `Count(k)` picks the highest ordinals first, so
    /// that it matches what a scale-down would remove.
    pub fn resolve(&self, replicas: u32) -> Option<Vec<u32>> {
        match self {
            ReplicaSelector::All => Some((0..replicas).collect()),
            ReplicaSelector::Count(k) => {
                (*k <= replicas).then(|| (replicas - k..replicas).collect())
            }
            ReplicaSelector::Ids(ids) => ids.iter().all(|&i| i < replicas).then(|| {
                let mut v = ids.clone();
                v.sort_unstable();
                v
            }),
        }
    }
}

impl ReplicaSelector {
    /// Whether the selector names only replicas that exist among `replicas` (no allocation).
    pub fn fits(&self, replicas: u32) -> bool {
        match self {
            ReplicaSelector::All => true,
            ReplicaSelector::Count(k) => *k <= replicas,
            ReplicaSelector::Ids(ids) => ids.iter().all(|&i| i < replicas),
        }
    }
}

impl fmt::Display for ReplicaSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaSelector::All => f.write_str("all replicas"),
            ReplicaSelector::Count(k) => write!(f, "{k} replica(s)"),
            ReplicaSelector::Ids(ids) => write!(f, "replicas {ids:?}"),
        }
    }
}

impl Serialize for ReplicaSelector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ReplicaSelector::All => s.serialize_str("all"),
            ReplicaSelector::Count(k) => s.serialize_u32(*k),
            ReplicaSelector::Ids(ids) => ids.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ReplicaSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SelectorVisitor;
        impl<'de> Visitor<'de> for SelectorVisitor {
            type Value = ReplicaSelector;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    r#""all", a replica count >= 1, or a non-empty list of replica ordinals"#,
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "all" {
                    Ok(ReplicaSelector::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match v {
                    1..=10_000 => Ok(ReplicaSelector::Count(v as u32)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut ids: Vec<u32> = Vec::new();
                while let Some(id) = seq.next_element::<u32>()? {
                    if ids.len() == MAX_REPLICA_IDS {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_REPLICA_IDS} replica ordinals"
                        )));
                    }
                    if ids.contains(&id) {
                        return Err(de::Error::custom(format!(
                            "replica ordinal {id} is listed twice"
                        )));
                    }
                    ids.push(id);
                }
                if ids.is_empty() {
                    return Err(de::Error::custom("replica list must not be empty"));
                }
                Ok(ReplicaSelector::Ids(ids))
            }
        }
        d.deserialize_any(SelectorVisitor)
    }
}

/// One typed remediation action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Stop the replicas and start them again: in-memory state is lost and they serve again
    /// after their start-up time. Idempotent, cannot be undone.
    Restart {
        /// Target service.
        service: ServiceName,
        /// Which replicas (default all).
        #[serde(default)]
        replicas: ReplicaSelector,
    },
    /// Take replicas out of load balancing; requests already in flight finish.
    Drain {
        /// Target service.
        service: ServiceName,
        /// Which replicas (default all).
        #[serde(default)]
        replicas: ReplicaSelector,
    },
    /// Put every drained replica of the service back into load balancing.
    RestoreTraffic {
        /// Target service.
        service: ServiceName,
    },
    /// Open the breaker on `caller → callee`: the caller fails fast (or uses its fallback)
    /// instead of calling. With `duration_s` the breaker closes by itself after that long.
    CircuitBreak {
        /// Calling service (may lie upstream of the incident's scope).
        caller: ServiceName,
        /// Called service (must lie in scope).
        callee: ServiceName,
        /// How long the breaker stays open before the kernel closes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<LeaseSeconds>,
    },
    /// Reject requests above `rps` at the service's ingress.
    RateLimit {
        /// Target service.
        service: ServiceName,
        /// Admitted requests per second.
        rps: Rate,
    },
    /// Change the replica count; new replicas need start-up time.
    Scale {
        /// Target service.
        service: ServiceName,
        /// New replica count (≥ 1).
        replicas: ReplicaCount,
    },
    /// Revert the configuration to an older version; replicas reload it.
    RollbackConfig {
        /// Target service.
        service: ServiceName,
        /// Version to run.
        version: ConfigVersion,
    },
}

/// The seven action kinds, without parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// [`Action::Restart`]
    Restart,
    /// [`Action::Drain`]
    Drain,
    /// [`Action::RestoreTraffic`]
    RestoreTraffic,
    /// [`Action::CircuitBreak`]
    CircuitBreak,
    /// [`Action::RateLimit`]
    RateLimit,
    /// [`Action::Scale`]
    Scale,
    /// [`Action::RollbackConfig`]
    RollbackConfig,
}

impl ActionKind {
    /// All seven, in ISA order.
    pub const ALL: [ActionKind; 7] = [
        ActionKind::Restart,
        ActionKind::Drain,
        ActionKind::RestoreTraffic,
        ActionKind::CircuitBreak,
        ActionKind::RateLimit,
        ActionKind::Scale,
        ActionKind::RollbackConfig,
    ];

    /// Snake-case name as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Restart => "restart",
            ActionKind::Drain => "drain",
            ActionKind::RestoreTraffic => "restore_traffic",
            ActionKind::CircuitBreak => "circuit_break",
            ActionKind::RateLimit => "rate_limit",
            ActionKind::Scale => "scale",
            ActionKind::RollbackConfig => "rollback_config",
        }
    }

    /// What executing an action of this kind does besides its purpose.
    pub fn side_effects(self) -> &'static [SideEffect] {
        use SideEffect::*;
        match self {
            ActionKind::Restart => &[Unavailability, InFlightLoss, StateLoss, TrafficShift],
            ActionKind::Drain => &[CapacityLoss, TrafficShift],
            ActionKind::RestoreTraffic => &[CapacityGain, TrafficShift],
            ActionKind::CircuitBreak => &[FailFast],
            ActionKind::RateLimit => &[LoadShedding],
            ActionKind::Scale => &[CapacityLoss, CapacityGain, InFlightLoss, TrafficShift],
            ActionKind::RollbackConfig => &[ConfigReload],
        }
    }

    /// The operation that undoes an action of this kind.
    pub fn inverse(self) -> Inverse {
        match self {
            ActionKind::Restart => Inverse::None,
            ActionKind::Drain => Inverse::RestoreTraffic,
            ActionKind::RestoreTraffic => Inverse::Drain,
            ActionKind::CircuitBreak => Inverse::CloseBreaker,
            ActionKind::RateLimit => Inverse::PreviousLimit,
            ActionKind::Scale => Inverse::PreviousReplicaCount,
            ActionKind::RollbackConfig => Inverse::RollForward,
        }
    }

    /// Whether a plan must close an action of this kind (by its inverse later in the plan or by
    /// a lease): these leave the system degraded on purpose (rule `R9-unclosed-reversible`).
    pub fn must_be_closed(self) -> bool {
        matches!(
            self,
            ActionKind::Drain | ActionKind::CircuitBreak | ActionKind::RateLimit
        )
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an executed action can be taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackClass {
    /// Idempotent and safe to repeat, but cannot be undone (restart). Runs last in its group.
    Restartable,
    /// Its inverse restores the exact previous state.
    Reversible,
    /// A compensating action restores the previous settings but not every effect (a scaled-down
    /// replica comes back cold; a rolled-back config is rolled forward).
    Compensatable,
}

/// A side effect an action declares (DESIGN §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideEffect {
    /// Replicas stop serving for their start-up time.
    Unavailability,
    /// Requests in flight on stopped replicas fail (unless the replicas were drained first).
    InFlightLoss,
    /// In-memory state (cache contents, sessions) is lost.
    StateLoss,
    /// Fewer replicas serve.
    CapacityLoss,
    /// More replicas serve (after start-up).
    CapacityGain,
    /// Load moves onto the remaining replicas.
    TrafficShift,
    /// Calls on an edge fail fast or take the caller's fallback.
    FailFast,
    /// Requests above a rate are rejected.
    LoadShedding,
    /// Replicas reload their configuration.
    ConfigReload,
}

/// The inverse an action kind declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inverse {
    /// Nothing undoes it.
    None,
    /// `restore_traffic` of the drained replicas.
    RestoreTraffic,
    /// `drain` the replicas again.
    Drain,
    /// Close the breaker.
    CloseBreaker,
    /// Reinstate the previous limit (or none).
    PreviousLimit,
    /// Scale back to the previous count.
    PreviousReplicaCount,
    /// Roll forward to the version that ran before.
    RollForward,
}

impl Action {
    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Restart { .. } => ActionKind::Restart,
            Action::Drain { .. } => ActionKind::Drain,
            Action::RestoreTraffic { .. } => ActionKind::RestoreTraffic,
            Action::CircuitBreak { .. } => ActionKind::CircuitBreak,
            Action::RateLimit { .. } => ActionKind::RateLimit,
            Action::Scale { .. } => ActionKind::Scale,
            Action::RollbackConfig { .. } => ActionKind::RollbackConfig,
        }
    }

    /// The service whose state the action changes (the caller, for a circuit break).
    pub fn service(&self) -> &ServiceName {
        match self {
            Action::Restart { service, .. }
            | Action::Drain { service, .. }
            | Action::RestoreTraffic { service }
            | Action::RateLimit { service, .. }
            | Action::Scale { service, .. }
            | Action::RollbackConfig { service, .. } => service,
            Action::CircuitBreak { caller, .. } => caller,
        }
    }

    /// Every service the action touches: its service, and the callee of a circuit break.
    pub fn targets(&self) -> impl Iterator<Item = &ServiceName> {
        let callee = match self {
            Action::CircuitBreak { callee, .. } => Some(callee),
            _ => None,
        };
        std::iter::once(self.service()).chain(callee)
    }

    /// The rollback class. `scale` is reversible when it adds replicas and compensatable when
    /// it removes them; pass the replica count before the action (unknown counts as a
    /// scale-down, the conservative reading).
    pub fn rollback_class(&self, replicas_before: Option<u32>) -> RollbackClass {
        match self {
            Action::Restart { .. } => RollbackClass::Restartable,
            Action::Drain { .. }
            | Action::RestoreTraffic { .. }
            | Action::CircuitBreak { .. }
            | Action::RateLimit { .. } => RollbackClass::Reversible,
            Action::Scale { replicas, .. } => match replicas_before {
                Some(before) if replicas.get() >= before => RollbackClass::Reversible,
                _ => RollbackClass::Compensatable,
            },
            Action::RollbackConfig { .. } => RollbackClass::Compensatable,
        }
    }

    /// Declared side effects (see [`ActionKind::side_effects`]).
    pub fn side_effects(&self) -> &'static [SideEffect] {
        self.kind().side_effects()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Restart { service, replicas } => write!(f, "restart {service} ({replicas})"),
            Action::Drain { service, replicas } => write!(f, "drain {service} ({replicas})"),
            Action::RestoreTraffic { service } => write!(f, "restore traffic to {service}"),
            Action::CircuitBreak {
                caller,
                callee,
                duration_s,
            } => {
                write!(f, "circuit-break {caller} -> {callee}")?;
                if let Some(d) = duration_s {
                    write!(f, " for {}s", d.get())?;
                }
                Ok(())
            }
            Action::RateLimit { service, rps } => {
                write!(f, "rate-limit {service} to {} rps", rps.get())
            }
            Action::Scale { service, replicas } => {
                write!(f, "scale {service} to {} replicas", replicas.get())
            }
            Action::RollbackConfig { service, version } => {
                write!(f, "roll {service} config back to {}", version.as_str())
            }
        }
    }
}

/// A time-to-live on one reversible step: the kernel reverts the step when it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    /// The step, numbered from 0 across stages.
    pub step: usize,
    /// Seconds after the plan commits.
    pub ttl_s: LeaseSeconds,
}

/// Identifier of the incident a plan answers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IncidentId(String);

impl IncidentId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IncidentId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        check_name(&value, "incident id")?;
        Ok(IncidentId(value))
    }
}

impl TryFrom<&str> for IncidentId {
    type Error = String;
    fn try_from(value: &str) -> Result<Self, String> {
        IncidentId::try_from(value.to_string())
    }
}

impl From<IncidentId> for String {
    fn from(value: IncidentId) -> String {
        value.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A remediation plan: stages run in order, the actions of a stage in parallel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The incident the plan answers; must match the scope the kernel holds for it.
    pub incident: IncidentId,
    /// Ordered stages of parallel actions.
    pub stages: Vec<Vec<Action>>,
    /// Optional leases on reversible steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<Lease>,
}

/// Where a step sits in its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepRef {
    /// Step number, from 0 across stages.
    pub step: usize,
    /// Stage number, from 0.
    pub stage: usize,
}

impl Plan {
    /// A plan with no leases.
    pub fn new(incident: IncidentId, stages: Vec<Vec<Action>>) -> Self {
        Plan {
            incident,
            stages,
            leases: Vec::new(),
        }
    }

    /// Parses and bounds-checks a plan (see the [module documentation](self)).
    pub fn from_json_str(text: &str, source_name: &str) -> Result<Plan, InputError> {
        let plan: Plan = parse_json(text, source_name, "plan", MAX_PLAN_JSON_BYTES)?;
        let steps = plan.step_count();
        if steps > MAX_PARSED_STEPS {
            return Err(InputError::invalid(
                source_name,
                "stages",
                format!(
                    "plan has {steps} steps; the parser reads at most {MAX_PARSED_STEPS} \
                     (the kernel accepts at most {})",
                    crate::MAX_PLAN_STEPS
                ),
            ));
        }
        if plan.leases.len() > MAX_PARSED_STEPS {
            return Err(InputError::invalid(
                source_name,
                "leases",
                format!("more than {MAX_PARSED_STEPS} leases"),
            ));
        }
        Ok(plan)
    }

    /// Number of steps over all stages.
    pub fn step_count(&self) -> usize {
        self.stages.iter().map(Vec::len).sum()
    }

    /// Every step with its position, in execution order.
    pub fn steps(&self) -> impl Iterator<Item = (StepRef, &Action)> + '_ {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(stage, actions)| actions.iter().map(move |a| (stage, a)))
            .enumerate()
            .map(|(step, (stage, action))| (StepRef { step, stage }, action))
    }

    /// The lease on `step`, if the plan gives one.
    pub fn lease(&self, step: usize) -> Option<LeaseSeconds> {
        self.leases.iter().find(|l| l.step == step).map(|l| l.ttl_s)
    }

    /// The plan as pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("plans always serialise")
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plan for {}:", self.incident)?;
        for (i, stage) in self.stages.iter().enumerate() {
            write!(f, " [{i}:")?;
            for (j, a) in stage.iter().enumerate() {
                write!(f, "{}{a}", if j == 0 { " " } else { "; " })?;
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Plan, InputError> {
        Plan::from_json_str(text, "p.json")
    }

    #[test]
    fn parses_every_action_and_selector_form() {
        let plan = parse(
            r#"{"incident": "i", "stages": [[
                {"restart": {"service": "a"}},
                {"drain": {"service": "a", "replicas": 2}},
                {"restore_traffic": {"service": "a"}},
                {"circuit_break": {"caller": "b", "callee": "a", "duration_s": 30}},
                {"rate_limit": {"service": "a", "rps": 12.5}},
                {"scale": {"service": "a", "replicas": 4}},
                {"rollback_config": {"service": "a", "version": "v1"}},
                {"restart": {"service": "a", "replicas": [0, 2]}}
            ]], "leases": [{"step": 1, "ttl_s": 60}]}"#,
        )
        .unwrap();
        assert_eq!(plan.step_count(), 8);
        let kinds: Vec<_> = plan.steps().map(|(_, a)| a.kind()).collect();
        assert_eq!(&kinds[..7], &ActionKind::ALL);
        assert_eq!(plan.lease(1).map(LeaseSeconds::get), Some(60));
        let again = parse(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn hostile_values_are_rejected_with_the_field() {
        let cases = [
            (r#"{"rate_limit": {"service": "a", "rps": -1}}"#, "rps"),
            (r#"{"rate_limit": {"service": "a", "rps": 0}}"#, "rps"),
            (r#"{"rate_limit": {"service": "a", "rps": 1e300}}"#, "rps"),
            (r#"{"scale": {"service": "a", "replicas": 0}}"#, "replicas"),
            (r#"{"scale": {"service": "a", "replicas": -3}}"#, "replicas"),
            (r#"{"restart": {"service": ""}}"#, "service"),
            (
                r#"{"restart": {"service": "a", "replicas": "some"}}"#,
                "replicas",
            ),
            (
                r#"{"restart": {"service": "a", "replicas": []}}"#,
                "replicas",
            ),
            (
                r#"{"restart": {"service": "a", "replicas": [1, 1]}}"#,
                "replicas",
            ),
            (r#"{"restart": {"service": "a", "force": true}}"#, ""),
            (r#"{"delete": {"service": "a"}}"#, ""),
            (r#"{"restart": {"service": 7}}"#, "service"),
            (
                r#"{"circuit_break": {"caller": "a", "callee": "b", "duration_s": 0}}"#,
                "duration_s",
            ),
        ];
        for (action, field) in cases {
            let text = format!(r#"{{"incident": "i", "stages": [[{action}]]}}"#);
            let err = parse(&text).unwrap_err();
            assert!(
                err.path.starts_with("stages[0][0]") && err.path.ends_with(field),
                "{action}: {err}"
            );
        }
    }

    #[test]
    fn nan_is_not_json_and_huge_plans_are_refused() {
        assert!(
            parse(
                r#"{"incident": "i", "stages": [[{"rate_limit": {"service": "a", "rps": NaN}}]]}"#
            )
            .is_err()
        );
        let step = r#"{"restart":{"service":"a"}},"#;
        let many = format!(
            r#"{{"incident":"i","stages":[[{}]]}}"#,
            step.repeat(2000).trim_end_matches(',')
        );
        let err = parse(&many).unwrap_err();
        assert!(err.message.contains("at most 1024"), "{err}");
        let huge = format!(
            r#"{{"incident":"i","stages":[[{}]]}}"#,
            step.repeat(10_000).trim_end_matches(',')
        );
        let err = parse(&huge).unwrap_err();
        assert!(err.message.contains("limit"), "{err}");
    }

    #[test]
    fn selectors_resolve_within_bounds() {
        assert_eq!(ReplicaSelector::All.resolve(3), Some(vec![0, 1, 2]));
        assert_eq!(ReplicaSelector::Count(2).resolve(3), Some(vec![1, 2]));
        assert_eq!(ReplicaSelector::Count(4).resolve(3), None);
        assert_eq!(
            ReplicaSelector::Ids(vec![2, 0]).resolve(3),
            Some(vec![0, 2])
        );
        assert_eq!(ReplicaSelector::Ids(vec![3]).resolve(3), None);
    }

    #[test]
    fn classes_and_inverses_follow_the_design_table() {
        let svc = || ServiceName::try_from("s").unwrap();
        let up = Action::Scale {
            service: svc(),
            replicas: ReplicaCount(5),
        };
        assert_eq!(up.rollback_class(Some(3)), RollbackClass::Reversible);
        assert_eq!(up.rollback_class(Some(6)), RollbackClass::Compensatable);
        assert_eq!(ActionKind::Restart.inverse(), Inverse::None);
        assert_eq!(ActionKind::Drain.inverse(), Inverse::RestoreTraffic);
        assert!(
            ActionKind::Restart
                .side_effects()
                .contains(&SideEffect::StateLoss)
        );
        let restart = Action::Restart {
            service: svc(),
            replicas: ReplicaSelector::All,
        };
        assert_eq!(restart.rollback_class(None), RollbackClass::Restartable);
    }
}
