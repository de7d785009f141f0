//! Fault scenarios drawn from the seed: each fault type declares which targets it may take and
//! the range of its intensity ([`FAULT_CLASSES`]); a seed draws one target, the replicas hit
//! and the intensity (swarm style: the seeds of an evaluation cell vary the incident, not only
//! the noise). Any topology gets scenarios this way without code; the fixed table of
//! [`crate::scenarios`] stays as the named set [`ScenarioSet::Fixed`] for comparison.
//!
//! Eligible targets come from the expected traffic of the user paths ([`Traffic`]); workload
//! entries (frontends) are excluded, as in the fault-target rule, because a fault there is the
//! user-facing symptom itself and no recovery scope is needed to find it:
//!
//! | fault | eligible | replicas | intensity |
//! |---|---|---|---|
//! | crash | every service with traffic (stateless, cache, database) | 1 ..= all, drawn | hang or kill |
//! | resource | every service with traffic | 1 ..= all, drawn | CPU × 20 ..= 60 |
//! | latency | every service with traffic (a replica on a user path) | one, drawn | + 100 ..= 400 ms |
//! | partition | every request edge with traffic whose caller is not an entry | one replica of the caller, drawn | total loss |
//! | misconfig | the services with a config history (`config_versions` of two or more); without any, every stateless service with traffic (the fault's push makes the history) | all (a push reaches the whole deployment) | 50 ..= 100 % of requests fail |
//!
//! The ranges are assumptions, not measurements: they bracket the fixed table's intensities
//! (hang, + 200 ms, CPU × 40, 100 %) by a factor of two either side where a factor applies, so
//! that the fixed scenarios are inside the drawn space. Draws are uniform over targets and
//! within ranges, from the seed's [`Stream::Scenario`] stream salted with the fault type.

use crate::scenarios::{FaultChoice, TargetSource, Traffic, fault_for};
use faults::{CrashMode, FaultKind, FaultSpec, FaultType, ReplicaPick};
use kernel::ServiceKind;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim::rng::{Stream, stream};
use sim::spec::AppSpec;

/// Which scenarios an evaluation runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioSet {
    /// Target, replicas and intensity drawn from the seed ([`FAULT_CLASSES`]).
    #[default]
    Drawn,
    /// One target and intensity per (app, fault): the built-in table or the fault-target rule
    /// (`scenarios` module), whatever the seed.
    Fixed,
}

impl ScenarioSet {
    /// Both sets.
    pub const ALL: [ScenarioSet; 2] = [ScenarioSet::Drawn, ScenarioSet::Fixed];

    /// The name (`drawn`, `fixed`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioSet::Drawn => "drawn",
            ScenarioSet::Fixed => "fixed",
        }
    }
}

impl std::str::FromStr for ScenarioSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ScenarioSet::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown scenario set `{s}`; choose from: drawn, fixed"))
    }
}

/// What a fault type may hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eligible {
    /// Any service with traffic that is not a workload entry.
    ServiceWithTraffic,
    /// Any request edge with traffic whose caller is not a workload entry (target: the caller).
    EdgeOnUserPath,
    /// Services with a config history; without any, stateless services with traffic.
    ConfigHistory,
}

/// How many replicas a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaRule {
    /// A drawn number in 1 ..= all, a drawn subset of that size.
    SomeOrAll,
    /// One drawn replica.
    One,
    /// Every replica.
    All,
}

/// The intensity range of a fault type (inclusive bounds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Intensity {
    /// Hang or kill, even odds.
    CrashMode,
    /// Added one-way delay, ms.
    DelayMs(f64, f64),
    /// Service-time multiplier.
    CpuFactor(f64, f64),
    /// Every message lost: no parameter.
    TotalLoss,
    /// Fraction of requests the bad config fails.
    FailFraction(f64, f64),
}

/// One fault type's scenario space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultClass {
    /// The fault type.
    pub fault: FaultType,
    /// Its eligible targets.
    pub eligible: Eligible,
    /// Replicas hit.
    pub replicas: ReplicaRule,
    /// Intensity range.
    pub intensity: Intensity,
}

/// The scenario space of every fault type (module docs), in [`FaultType::ALL`] order.
pub const FAULT_CLASSES: [FaultClass; 5] = [
    FaultClass {
        fault: FaultType::Crash,
        eligible: Eligible::ServiceWithTraffic,
        replicas: ReplicaRule::SomeOrAll,
        intensity: Intensity::CrashMode,
    },
    FaultClass {
        fault: FaultType::Latency,
        eligible: Eligible::ServiceWithTraffic,
        replicas: ReplicaRule::One,
        intensity: Intensity::DelayMs(100.0, 400.0),
    },
    FaultClass {
        fault: FaultType::Resource,
        eligible: Eligible::ServiceWithTraffic,
        replicas: ReplicaRule::SomeOrAll,
        intensity: Intensity::CpuFactor(20.0, 60.0),
    },
    FaultClass {
        fault: FaultType::Partition,
        eligible: Eligible::EdgeOnUserPath,
        replicas: ReplicaRule::One,
        intensity: Intensity::TotalLoss,
    },
    FaultClass {
        fault: FaultType::Misconfig,
        eligible: Eligible::ConfigHistory,
        replicas: ReplicaRule::All,
        intensity: Intensity::FailFraction(0.5, 1.0),
    },
];

/// The scenario space of `fault`.
pub fn class_of(fault: FaultType) -> &'static FaultClass {
    FAULT_CLASSES
        .iter()
        .find(|c| c.fault == fault)
        .expect("every fault type has a class")
}

/// One eligible target: a service, and for a partition the dependency cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Service index in the spec.
    pub service: usize,
    /// Dependency index (partitions).
    pub dependency: Option<usize>,
}

/// The eligible targets of `fault` in `spec`, in topology order.
pub fn eligible(spec: &AppSpec, fault: FaultType) -> Vec<Candidate> {
    let t = Traffic::of(spec);
    let with_traffic =
        |i: usize| t.service[i] > 0.0 && !t.entry[i] && spec.services[i].kind != ServiceKind::Infra;
    let service = |i| Candidate {
        service: i,
        dependency: None,
    };
    match class_of(fault).eligible {
        Eligible::ServiceWithTraffic => (0..spec.services.len())
            .filter(|&i| with_traffic(i))
            .map(service)
            .collect(),
        Eligible::EdgeOnUserPath => (0..spec.edges.len())
            .filter(|&e| t.edge[e] > 0.0 && with_traffic(spec.edges[e].from))
            .map(|e| Candidate {
                service: spec.edges[e].from,
                dependency: Some(spec.edges[e].to),
            })
            .collect(),
        Eligible::ConfigHistory => {
            let stateless =
                |i: usize| with_traffic(i) && spec.services[i].kind == ServiceKind::Stateless;
            let history: Vec<usize> = (0..spec.services.len())
                .filter(|&i| stateless(i) && spec.services[i].config_versions.len() >= 2)
                .collect();
            if history.is_empty() {
                (0..spec.services.len())
                    .filter(|&i| stateless(i))
                    .map(service)
                    .collect()
            } else {
                history.into_iter().map(service).collect()
            }
        }
    }
}

/// The stream a scenario draw uses: the seed's scenario stream, salted with the fault type so
/// that the five faults of one seed do not draw in lockstep.
fn draw_rng(seed: u64, fault: FaultType) -> ChaCha8Rng {
    let index = FaultType::ALL.iter().position(|f| *f == fault).unwrap_or(0) as u64;
    stream(
        seed ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        Stream::Scenario,
    )
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Draws the scenario of `fault` for `spec` and `seed` (module docs).
pub fn draw(
    spec: &AppSpec,
    fault: FaultType,
    seed: u64,
    start_s: f64,
    duration_s: f64,
) -> Result<FaultSpec, String> {
    let candidates = eligible(spec, fault);
    if candidates.is_empty() {
        return Err(format!(
            "application `{}` has no eligible {fault} target (module `drawn`: services or \
             edges with traffic on a user path, other than workload entries); give one \
             (--target, or a --faults schedule)",
            spec.name
        ));
    }
    let class = class_of(fault);
    let mut rng = draw_rng(seed, fault);
    let c = &candidates[rng.random_range(0..candidates.len())];
    let n = spec.services[c.service].replicas.max(1);
    let replicas = match class.replicas {
        ReplicaRule::All => ReplicaPick::All,
        ReplicaRule::One => ReplicaPick::Ids(vec![rng.random_range(0..n)]),
        ReplicaRule::SomeOrAll => {
            let k = rng.random_range(1..=n);
            if k == n {
                ReplicaPick::All
            } else {
                // A uniform subset of size k: a partial Fisher–Yates shuffle.
                let mut ids: Vec<u32> = (0..n).collect();
                for i in 0..k as usize {
                    let j = rng.random_range(i..n as usize);
                    ids.swap(i, j);
                }
                let mut ids = ids[..k as usize].to_vec();
                ids.sort_unstable();
                ReplicaPick::Ids(ids)
            }
        }
    };
    let kind = match class.intensity {
        Intensity::CrashMode => FaultKind::Crash {
            mode: if rng.random::<bool>() {
                CrashMode::Hang
            } else {
                CrashMode::Kill
            },
        },
        Intensity::DelayMs(lo, hi) => FaultKind::Latency {
            delay_ms: uniform(&mut rng, lo, hi).round(),
        },
        Intensity::CpuFactor(lo, hi) => FaultKind::Resource {
            cpu_factor: uniform(&mut rng, lo, hi).round(),
            leak: false,
        },
        Intensity::TotalLoss => FaultKind::Partition {
            dependency: spec.services[c.dependency.expect("an edge candidate")]
                .name
                .clone(),
        },
        Intensity::FailFraction(lo, hi) => FaultKind::Misconfig {
            fail_fraction: (uniform(&mut rng, lo, hi) * 100.0).round() / 100.0,
        },
    };
    Ok(FaultSpec {
        target: spec.services[c.service].name.clone(),
        replicas,
        start_s,
        duration_s,
        kind,
    })
}

/// The scenario of `fault` in the set `set` for `spec` and `seed`: drawn, or the fixed table's
/// (or rule's) whatever the seed.
pub fn scenario_for(
    spec: &AppSpec,
    fault: FaultType,
    set: ScenarioSet,
    seed: u64,
    start_s: f64,
    duration_s: f64,
) -> Result<FaultChoice, String> {
    match set {
        ScenarioSet::Fixed => fault_for(spec, fault, None, start_s, duration_s),
        ScenarioSet::Drawn => Ok(FaultChoice {
            spec: draw(spec, fault, seed, start_s, duration_s)?,
            source: TargetSource::Drawn,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{APPS, Deployment, load};

    #[test]
    fn the_same_seed_draws_the_same_scenario_and_every_draw_is_eligible() {
        for app in APPS {
            let spec = load(app, &Deployment::default()).unwrap();
            for fault in FaultType::ALL {
                let ok = eligible(&spec, fault);
                assert!(!ok.is_empty(), "{app}/{fault}");
                for seed in 1..=20 {
                    let a = draw(&spec, fault, seed, 10.0, 20.0).unwrap();
                    assert_eq!(a, draw(&spec, fault, seed, 10.0, 20.0).unwrap());
                    let i = spec.service_index(&a.target).unwrap();
                    assert!(ok.iter().any(|c| c.service == i), "{app}/{fault}: {a}");
                    let n = spec.services[i].replicas;
                    if let ReplicaPick::Ids(ids) = &a.replicas {
                        assert!(!ids.is_empty() && ids.iter().all(|&r| r < n), "{a}");
                    }
                    check_intensity(&a, fault);
                }
            }
        }
    }

    fn check_intensity(f: &FaultSpec, fault: FaultType) {
        {
            let within = |x: f64, lo: f64, hi: f64| assert!((lo..=hi).contains(&x), "{f}");
            match (&f.kind, class_of(fault).intensity) {
                (FaultKind::Latency { delay_ms }, Intensity::DelayMs(lo, hi)) => {
                    within(*delay_ms, lo, hi)
                }
                (FaultKind::Resource { cpu_factor, .. }, Intensity::CpuFactor(lo, hi)) => {
                    within(*cpu_factor, lo, hi)
                }
                (FaultKind::Misconfig { fail_fraction }, Intensity::FailFraction(lo, hi)) => {
                    within(*fail_fraction, lo, hi)
                }
                (FaultKind::Crash { .. }, Intensity::CrashMode)
                | (FaultKind::Partition { .. }, Intensity::TotalLoss) => {}
                (kind, intensity) => panic!("{fault}: {kind:?} against {intensity:?}"),
            }
        }
    }

    #[test]
    fn two_seeds_draw_different_targets_and_seeds_cover_many_services() {
        for app in APPS {
            let spec = load(app, &Deployment::default()).unwrap();
            for fault in FaultType::ALL {
                let targets: std::collections::BTreeSet<String> = (1..=10)
                    .map(|s| {
                        let f = draw(&spec, fault, s, 0.0, 1.0).unwrap();
                        match f.kind {
                            FaultKind::Partition { dependency } => {
                                format!("{}->{dependency}", f.target)
                            }
                            _ => f.target,
                        }
                    })
                    .collect();
                // Ten seeds over at least five eligible targets: one target for all ten would
                // mean the seed does not reach the draw.
                assert!(targets.len() >= 3, "{app}/{fault}: {targets:?}");
            }
        }
        let spec = load("socialNetwork", &Deployment::default()).unwrap();
        let a = draw(&spec, FaultType::Crash, 1, 0.0, 1.0).unwrap();
        let b = (2..10)
            .map(|s| draw(&spec, FaultType::Crash, s, 0.0, 1.0).unwrap())
            .find(|b| b.target != a.target)
            .expect("another seed draws another target");
        assert_ne!(a.target, b.target);
    }

    #[test]
    fn the_fixed_set_is_the_table_and_a_user_topology_gets_drawn_scenarios() {
        let spec = load("hotelReservation", &Deployment::default()).unwrap();
        for seed in [1, 2] {
            let f =
                scenario_for(&spec, FaultType::Crash, ScenarioSet::Fixed, seed, 1.0, 2.0).unwrap();
            assert_eq!(
                (f.spec.target.as_str(), f.source),
                ("rate", TargetSource::Table)
            );
        }
        let mut renamed = spec.clone();
        renamed.name = "myHotel".into();
        let f = scenario_for(
            &renamed,
            FaultType::Partition,
            ScenarioSet::Drawn,
            3,
            1.0,
            2.0,
        )
        .unwrap();
        assert_eq!(f.source, TargetSource::Drawn);
        assert_eq!("drawn".parse::<ScenarioSet>(), Ok(ScenarioSet::Drawn));
        assert!(
            "x".parse::<ScenarioSet>()
                .unwrap_err()
                .contains("drawn, fixed")
        );
    }

    #[test]
    fn an_app_with_config_history_draws_its_misconfig_there() {
        let mut spec = load("socialNetwork", &Deployment::default()).unwrap();
        let i = spec.service_index("text-service").unwrap();
        spec.services[i].config_versions = vec!["v1".into(), "v2".into()];
        for seed in 1..=5 {
            let f = draw(&spec, FaultType::Misconfig, seed, 0.0, 1.0).unwrap();
            assert_eq!(f.target, "text-service");
        }
    }
}
