//! One fault vocabulary (issue 13, item 6): every consumer of `faults::FaultType` knows every
//! type. A new type added to `FaultType::ALL` fails here until each consumer handles it — the
//! ones the compiler cannot catch (names, tables, draws) as well as those it does.

use agents::{GroundTruth, Remedy};
use deathstarbench::{BUILTIN_TARGETS, Deployment, TargetSource, fault_for, load, rule_target};
use experiments::eval::EvalConfig;
use experiments::harm::HarmConfig;
use experiments::offline::{IndustrialGraph, OfflineConfig, OfflineSetup, run_graph};
use faults::FaultType;
use std::collections::BTreeSet;

#[test]
fn every_type_round_trips_through_its_name_serde_and_display() {
    for t in FaultType::ALL {
        let name = t.as_str();
        assert_eq!(name.parse::<FaultType>(), Ok(t));
        assert_eq!(FaultType::from_name(name), Some(t));
        assert_eq!(t.to_string(), name);
        // The strings committed results carry.
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<FaultType>(&json).unwrap(), t);
        let truth = GroundTruth {
            root_cause: "a".into(),
            fault: t,
            replicas: vec![0],
            dependency: None,
        };
        let back: GroundTruth =
            serde_json::from_str(&serde_json::to_string(&truth).unwrap()).unwrap();
        assert_eq!(back.fault, t);
    }
    let names: BTreeSet<&str> = FaultType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(names.len(), FaultType::ALL.len(), "names are distinct");
}

#[test]
fn an_unknown_name_is_refused_listing_every_type() {
    let err = "flood".parse::<FaultType>().unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown fault `flood`; choose from: crash, latency, resource, partition, misconfig"
    );
    for t in FaultType::ALL {
        assert!(err.contains(t.as_str()), "{err}");
    }
    let err = serde_json::from_str::<FaultType>("\"flood\"").unwrap_err();
    assert!(err.to_string().contains("choose from: crash"), "{err}");
    let err = EvalConfig::from_toml("faults = [\"crash\", \"flood\"]", "t.toml").unwrap_err();
    assert!(
        err.contains("unknown fault `flood`; choose from: crash"),
        "{err}"
    );
}

#[test]
fn the_evaluation_matrix_runs_every_type_by_default_and_names_them_in_toml() {
    assert_eq!(EvalConfig::default().faults, FaultType::ALL.to_vec());
    let names: Vec<String> = FaultType::ALL.iter().map(|t| format!("\"{t}\"")).collect();
    let cfg = EvalConfig::from_toml(&format!("faults = [{}]", names.join(", ")), "t.toml").unwrap();
    assert_eq!(cfg.faults, FaultType::ALL.to_vec());
}

#[test]
fn every_type_has_a_scenario_target_rule_and_a_table_entry() {
    for row in BUILTIN_TARGETS {
        let spec = load(row.app, &Deployment::default()).unwrap();
        for t in FaultType::ALL {
            let (target, dependency) = row.target(t);
            assert!(spec.service_index(target).is_some(), "{} {t}", row.app);
            assert_eq!(
                dependency.is_some(),
                t == FaultType::Partition,
                "{} {t}",
                row.app
            );
            rule_target(&spec, t).unwrap_or_else(|e| panic!("{} {t}: {e}", row.app));
            let choice = fault_for(&spec, t, None, 1.0, 2.0).unwrap();
            assert_eq!(choice.source, TargetSource::Table);
            assert_eq!(
                choice.spec.kind.fault_type(),
                t,
                "the injectable fault says its type"
            );
            assert_eq!(choice.spec.target, target);
        }
    }
}

#[test]
fn every_type_has_an_llm_remedy() {
    for t in FaultType::ALL {
        // Every pick of a remedy family, for the types that have several.
        for pick in [0.0, 0.25, 0.5, 0.75, 0.8, 0.99] {
            let remedy = Remedy::for_fault(t, pick);
            if t.cured_by_restart() && t != FaultType::Resource {
                assert_eq!(remedy, Remedy::Restart, "{t}");
            }
        }
    }
}

#[test]
fn the_offline_draws_reach_every_type() {
    let graph = IndustrialGraph::AlibabaLike.build(1);
    let cfg = OfflineConfig::default();
    let harm = HarmConfig::default();
    let setup = OfflineSetup {
        which: IndustrialGraph::AlibabaLike,
        graph: &graph,
        seed: 1,
        llm: agents::LlmConfig::default(),
        cfg: &cfg,
        harm: &harm,
    };
    let drawn: BTreeSet<FaultType> = run_graph(&setup, &[agents::PolicyKind::Oracle], 0..200)
        .into_iter()
        .map(|(_, o)| o.fault)
        .collect();
    assert_eq!(
        drawn.into_iter().collect::<Vec<_>>(),
        FaultType::ALL.to_vec(),
        "offline incidents of every type"
    );
}
