//! Topologies as data: `sim`, `scenario` and `eval` on a topology file that is not built in,
//! with fault targets from the fault-target rule; and `sim --target` for any app.

mod common;
use common::microreboot;
use std::path::Path;

/// A small shop, written by the test: nothing of it is built in.
const SHOP: &str = r#"{"apps": [{
  "name": "shop",
  "services": [
    {"name": "web", "kind": "frontend"},
    {"name": "api", "kind": "stateless"},
    {"name": "cart", "kind": "stateless", "config_versions": ["v1", "v2"]},
    {"name": "catalog", "kind": "stateless"},
    {"name": "cart-redis", "kind": "cache", "tech": "redis"},
    {"name": "catalog-db", "kind": "db", "tech": "mongodb"}
  ],
  "edges": [
    {"from": "web", "to": "api", "kind": "rpc"},
    {"from": "api", "to": "cart", "kind": "rpc"},
    {"from": "api", "to": "catalog", "kind": "rpc"},
    {"from": "cart", "to": "cart-redis", "kind": "cache"},
    {"from": "catalog", "to": "catalog-db", "kind": "db"}
  ],
  "workloads": [
    {"name": "browse", "weight": 0.7, "entry": "web", "calls": [
      {"from": "client", "to": "web", "op": "GET /", "stage": 0},
      {"from": "web", "to": "api", "op": "browse", "stage": 1},
      {"from": "api", "to": "catalog", "op": "list", "stage": 1},
      {"from": "catalog", "to": "catalog-db", "op": "find", "stage": 1}
    ]},
    {"name": "checkout", "weight": 0.3, "entry": "web", "calls": [
      {"from": "client", "to": "web", "op": "POST /checkout", "stage": 0},
      {"from": "web", "to": "api", "op": "checkout", "stage": 1},
      {"from": "api", "to": "cart", "op": "get", "stage": 1},
      {"from": "cart", "to": "cart-redis", "op": "GET", "stage": 1},
      {"from": "api", "to": "catalog", "op": "price", "stage": 1}
    ]}
  ]
}]}"#;

/// An evaluation small enough for a debug test: no industrial graphs, no sensitivity sweep.
pub const SMALL_EVAL: &str = "graphs = []\n[sensitivity]\nfactors = []\n[parallel]\nseeds = 1\n";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sim_scenario_and_eval_run_on_a_topology_of_ones_own() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("shop.json");
    std::fs::write(&topo, SHOP).unwrap();

    // Default targets come from the rule: the busiest inner stateless service (api, on
    // both workloads), the busiest edge between two of them, the service with a config history.
    for (fault, expected) in [
        ("crash", "crash on api"),
        ("partition", "partition on api (from catalog)"),
        ("misconfig", "misconfig on cart"),
    ] {
        let out = dir.path().join(format!("sim-{fault}"));
        let (code, stdout, stderr) = microreboot(&[
            "sim",
            "--topology",
            s(&topo),
            "--app",
            "shop",
            "--fault",
            fault,
            "--fault-start",
            "5",
            "--duration",
            "15",
            "--out",
            s(&out),
        ]);
        assert_eq!(code, 0, "{fault}: {stderr}");
        assert!(stdout.contains(expected), "{fault}: {stdout}");
    }

    let out = dir.path().join("scenario");
    let (code, stdout, stderr) = microreboot(&[
        "scenario",
        "--topology",
        s(&topo),
        "--app",
        "shop",
        "--fault",
        "crash",
        "--scenarios",
        "fixed",
        "--policy",
        "constrained",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("shop / crash / constrained / seed 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("crash on api (Hang)") && stdout.contains("fault-target rule"),
        "{stdout}"
    );
    assert!(out.join("record.json").exists());

    let config = dir.path().join("small.toml");
    std::fs::write(&config, SMALL_EVAL).unwrap();
    let out = dir.path().join("eval");
    let (code, stdout, stderr) = microreboot(&[
        "eval",
        "--quick",
        "--config",
        s(&config),
        "--topology",
        s(&topo),
        "--faults",
        "crash,misconfig",
        "--policies",
        "noop,constrained",
        "--seeds",
        "1",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("constrained"), "{stdout}");
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert!(results.contains(r#""app":"shop""#), "{results}");
    assert!(!results.contains("socialNetwork"));

    // The same topology named in the configuration file, relative to it.
    let config = dir.path().join("with-topology.toml");
    std::fs::write(&config, format!("topology = \"shop.json\"\n{SMALL_EVAL}")).unwrap();
    let (code, toml, stderr) = microreboot(&["eval", "--config", s(&config), "--print-config"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(toml.contains(r#"apps = ["shop"]"#), "{toml}");
}

#[test]
fn sim_target_works_without_a_default_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("shop.json");
    // No stateless service off the entry: the rule finds no crash target ...
    let bare = SHOP.replace(r#""kind": "stateless""#, r#""kind": "frontend""#);
    std::fs::write(&topo, bare).unwrap();
    let out = dir.path().join("out");
    let args = |target: Option<&str>| {
        let mut a = vec![
            "sim",
            "--topology",
            s(&topo),
            "--app",
            "shop",
            "--fault",
            "crash",
            "--fault-start",
            "2",
            "--duration",
            "5",
            "--out",
            s(&out),
        ];
        if let Some(t) = target {
            a.extend(["--target", t]);
        }
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| microreboot(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (code, _, err) = run(args(None));
    assert_eq!(code, 2);
    assert!(
        err.contains("the crash rule finds no target; give one"),
        "{err}"
    );
    // ... and --target is all it needs (the default lookup no longer runs first).
    let (code, stdout, err) = run(args(Some("cart")));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("crash on cart"), "{stdout}");
    // A built-in app too.
    let (code, stdout, err) = microreboot(&[
        "sim",
        "--app",
        "hotelReservation",
        "--fault",
        "partition",
        "--target",
        "frontend",
        "--fault-start",
        "2",
        "--duration",
        "5",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("partition on frontend (from"), "{stdout}");
}

#[test]
fn a_topology_that_lacks_the_app_lists_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("shop.json");
    std::fs::write(&topo, SHOP).unwrap();
    let (code, _, err) = microreboot(&[
        "scenario",
        "--topology",
        s(&topo),
        "--app",
        "sockShop",
        "--fault",
        "crash",
        "--policy",
        "noop",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no application `sockShop`") && err.contains("it has: shop"),
        "{err}"
    );
    let (code, _, err) = microreboot(&[
        "eval",
        "--quick",
        "--topology",
        s(&topo),
        "--apps",
        "sockShop",
        "--print-config",
    ]);
    // --print-config does not read the topology; a run does.
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = microreboot(&[
        "eval",
        "--quick",
        "--topology",
        s(&topo),
        "--apps",
        "sockShop",
        "--out",
        s(&dir.path().join("o")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no application `sockShop`"), "{err}");
}
