//! Drawn fault scenarios reach the result lines: every online line names the target, the
//! replicas the injection hit and the intensity; the same seed draws the same scenario in every
//! policy's run, and different seeds draw different targets.

use agents::{PolicyId, PolicyKind};
use deathstarbench::ScenarioSet;
use experiments::eval::{EvalConfig, SensitivityConfig, run_eval};
use experiments::offline::OfflineConfig;
use experiments::online::OnlineConfig;
use experiments::parallel::ParallelConfig;
use experiments::record::{Provenance, ResultLine};
use faults::{FaultKind, FaultType};
use std::collections::{BTreeMap, BTreeSet};

fn config(scenarios: ScenarioSet) -> EvalConfig {
    EvalConfig {
        seeds: 4,
        apps: vec!["socialNetwork".into()],
        faults: vec![FaultType::Latency],
        scenarios,
        policies: vec![PolicyKind::Noop.into(), PolicyKind::Oracle.into()],
        graphs: vec![],
        online: OnlineConfig {
            fault_start_s: 30.0,
            run_s: 90.0,
            ..OnlineConfig::default()
        },
        offline: OfflineConfig {
            incidents: 0,
            ..OfflineConfig::default()
        },
        parallel: ParallelConfig {
            seeds: 0,
            ..ParallelConfig::default()
        },
        sensitivity: SensitivityConfig {
            factors: vec![],
            online_seeds: 0,
            offline_incidents: 0,
        },
        ..EvalConfig::default()
    }
}

fn scenarios(set: ScenarioSet) -> BTreeMap<(u64, PolicyId), experiments::record::Scenario> {
    let cfg = config(set);
    let provenance = Provenance {
        commit: "test".into(),
        config_hash: cfg.hash(),
    };
    let out = run_eval(&cfg, &provenance, 1, false).unwrap();
    out.lines
        .iter()
        .filter_map(|l| match l {
            ResultLine::Online(r) => Some((
                (r.seed, r.policy),
                r.scenario
                    .clone()
                    .expect("every online line records its scenario"),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn every_online_line_names_what_its_seed_drew() {
    let drawn = scenarios(ScenarioSet::Drawn);
    assert_eq!(drawn.len(), 8);
    for ((seed, _), s) in &drawn {
        assert_eq!(s.set, ScenarioSet::Drawn);
        // Latency hits one replica, with a delay within the declared range.
        assert_eq!(s.replicas.len(), 1, "seed {seed}: {s:?}");
        let FaultKind::Latency { delay_ms } = s.intensity else {
            panic!("seed {seed}: {s:?}")
        };
        assert!((100.0..=400.0).contains(&delay_ms), "{s:?}");
        // Both policies of a seed ran the same incident.
        assert_eq!(&drawn[&(*seed, PolicyKind::Noop.into())], s);
    }
    let targets: BTreeSet<&str> = drawn.values().map(|s| s.target.as_str()).collect();
    assert!(targets.len() > 1, "four seeds drew one target: {targets:?}");

    // The fixed set hits the table's target whatever the seed.
    let fixed = scenarios(ScenarioSet::Fixed);
    let targets: BTreeSet<&str> = fixed.values().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        BTreeSet::from(["post-storage-service"]),
        "{fixed:?}"
    );
}
