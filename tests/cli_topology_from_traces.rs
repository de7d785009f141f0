//! `topology from-traces`: a twin of DeathStarBench socialNetwork built from its real Jaeger
//! export (traces/testdata/jaeger, two read-home-timeline requests), compared with the built-in
//! socialNetwork, then recovered with `scenario` and evaluated with `eval --quick`.

mod common;
use common::microreboot;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const TRACE: &str = "traces/testdata/jaeger/dsb_socialnetwork_read_home_timeline.jaeger.json";
const DEPENDENCIES: &str = "traces/testdata/jaeger/jaeger_dependencies_dsb.json";
/// An evaluation small enough for a debug test: no industrial graphs, no sensitivity sweep.
const SMALL_EVAL: &str = "graphs = []\n[sensitivity]\nfactors = []\n[parallel]\nseeds = 1\n";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn path(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// The built-in socialNetwork application, as JSON.
fn builtin() -> Value {
    let file: Value = serde_json::from_str(deathstarbench::TOPOLOGY_JSON).unwrap();
    file["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "socialNetwork")
        .unwrap()
        .clone()
}

#[test]
fn a_twin_of_social_network_from_its_jaeger_export_recovers_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("twin.json");
    let (code, stdout, stderr) = microreboot(&[
        "topology",
        "from-traces",
        "--trace",
        &path(TRACE),
        "--app",
        "socialTwin",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("13 spans, 2 requests"), "{stdout}");
    assert!(
        stdout.contains("5 services, 4 edges, 1 workloads"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&out).unwrap();

    // Same input, same bytes.
    let again = dir.path().join("again.json");
    let (code, _, stderr) = microreboot(&[
        "topology",
        "from-traces",
        "--trace",
        &path(TRACE),
        "--app",
        "socialTwin",
        "--out",
        s(&again),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());

    // Structure against the built-in socialNetwork. Jaeger names nginx `nginx-web-server`; the
    // built-in topology calls it `nginx-thrift` and records the trace name.
    let builtin = builtin();
    let mut rename: BTreeMap<String, String> = BTreeMap::new();
    let mut builtin_kinds: BTreeMap<String, String> = BTreeMap::new();
    for svc in builtin["services"].as_array().unwrap() {
        let name = svc["name"].as_str().unwrap().to_string();
        if let Some(trace_name) = svc["trace_service_name"].as_str() {
            rename.insert(trace_name.to_string(), name.clone());
        }
        builtin_kinds.insert(name, svc["kind"].as_str().unwrap().to_string());
    }
    let canon = |n: &str| rename.get(n).cloned().unwrap_or_else(|| n.to_string());
    let twin: Value = serde_json::from_str(&text).unwrap();
    let app = &twin["apps"][0];
    assert_eq!(app["name"], "socialTwin");
    let services: BTreeMap<String, String> = app["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                canon(s["name"].as_str().unwrap()),
                s["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let path_services: BTreeSet<&str> = [
        "nginx-thrift",
        "home-timeline-service",
        "home-timeline-redis",
        "post-storage-service",
        "post-storage-memcached",
    ]
    .into();
    assert_eq!(
        services.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        path_services
    );
    for (name, kind) in &services {
        assert_eq!(Some(kind), builtin_kinds.get(name), "kind of {name}");
    }
    let edges =
        |app: &Value, only: Option<&BTreeSet<&str>>| -> BTreeSet<(String, String, String)> {
            app["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        canon(e["from"].as_str().unwrap()),
                        canon(e["to"].as_str().unwrap()),
                        e["kind"].as_str().unwrap().to_string(),
                    )
                })
                .filter(|(f, t, _)| {
                    only.is_none_or(|o| o.contains(f.as_str()) && o.contains(t.as_str()))
                })
                .collect()
        };
    let twin_edges = edges(app, None);
    let expected: BTreeSet<(String, String, String)> = [
        ("nginx-thrift", "home-timeline-service", "rpc"),
        ("home-timeline-service", "home-timeline-redis", "cache"),
        ("home-timeline-service", "post-storage-service", "rpc"),
        ("post-storage-service", "post-storage-memcached", "cache"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(twin_edges, expected);
    assert_eq!(edges(&builtin, Some(&path_services)), expected);

    // The call tree, as the simulator builds it, has the built-in's shape: nginx calls
    // home-timeline, which reads redis, then (sequentially) post-storage, which reads memcached.
    let shape = |spec: &sim::spec::AppSpec, workload: &str| -> Vec<Vec<String>> {
        let p = spec.paths.iter().find(|p| p.name == workload).unwrap();
        let name = |n: usize| canon(&spec.services[p.nodes[n].service].name);
        let mut out = Vec::new();
        let mut todo = vec![0];
        while let Some(n) = todo.pop() {
            let node = &p.nodes[n];
            for stage in &node.stages {
                let mut row = vec![name(n)];
                let mut kids: Vec<String> = stage.iter().map(|&c| name(c)).collect();
                kids.sort();
                kids.dedup();
                row.extend(kids);
                out.push(row);
            }
            todo.extend(node.stages.iter().flatten().rev());
        }
        out.sort();
        out.dedup();
        out
    };
    let file = deathstarbench::parse(&text, "twin.json").unwrap();
    let twin_spec =
        deathstarbench::select(&file, "socialTwin", "twin.json", &Default::default()).unwrap();
    let social = deathstarbench::load("socialNetwork", &Default::default()).unwrap();
    let twin_shape = shape(&twin_spec, "/wrk2-api/home-timeline/read");
    let mut social_shape = shape(&social, "read-home-timeline");
    // The built-in also models the cache-miss path (mongodb, then a memcached set), which the
    // two captured requests never took.
    social_shape.retain(|row| !row.contains(&"post-storage-mongodb".to_string()));
    assert_eq!(twin_shape, social_shape);
    let stages_of = |spec: &sim::spec::AppSpec, workload: &str, service: &str| {
        let p = spec.paths.iter().find(|p| p.name == workload).unwrap();
        let node = p
            .nodes
            .iter()
            .find(|n| canon(&spec.services[n.service].name) == service)
            .unwrap();
        node.stages
            .iter()
            .map(|st| {
                st.iter()
                    .map(|&c| canon(&spec.services[p.nodes[c].service].name))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stages_of(
            &twin_spec,
            "/wrk2-api/home-timeline/read",
            "home-timeline-service"
        ),
        stages_of(&social, "read-home-timeline", "home-timeline-service"),
        "redis, then post-storage, in sequence"
    );
    // Measured service times (median span self times) replace the per-kind defaults.
    let ht = twin_spec.service_index("home-timeline-service").unwrap();
    assert_eq!(twin_spec.services[ht].service_time.median_us, 222.5);

    // A dependency graph cannot give a topology: the error says what it lacks.
    let (code, _, stderr) = microreboot(&[
        "topology",
        "from-traces",
        "--trace",
        &path(DEPENDENCIES),
        "--out",
        s(&dir.path().join("deps.json")),
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("jaeger_dependencies_dsb.json")
            && stderr.contains("Jaeger dependencies JSON")
            && stderr.contains("no operations, span kinds, timings, call trees"),
        "{stderr}"
    );
    assert!(!dir.path().join("deps.json").exists());

    // Recovery on the twin.
    let scenario = dir.path().join("scenario");
    let (code, stdout, stderr) = microreboot(&[
        "scenario",
        "--topology",
        s(&out),
        "--app",
        "socialTwin",
        "--fault",
        "crash",
        "--policy",
        "constrained",
        "--seed",
        "1",
        "--out",
        s(&scenario),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("crash on home-timeline-service"),
        "{stdout}"
    );
    for f in [
        "metrics.csv",
        "journal.jsonl",
        "record.json",
        "incidents.json",
    ] {
        assert!(scenario.join(f).is_file(), "{f} missing; {stdout}");
    }

    // A narrowed quick evaluation on the twin.
    let config = dir.path().join("small.toml");
    std::fs::write(&config, SMALL_EVAL).unwrap();
    let eval = dir.path().join("eval");
    let (code, stdout, stderr) = microreboot(&[
        "eval",
        "--quick",
        "--config",
        s(&config),
        "--topology",
        s(&out),
        "--apps",
        "socialTwin",
        "--faults",
        "crash",
        "--policies",
        "noop,constrained",
        "--seeds",
        "1",
        "--out",
        s(&eval),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(eval.join("REPORT.md").is_file(), "{stdout}");
    let results = std::fs::read_to_string(eval.join("results.jsonl")).unwrap();
    assert!(results.contains("socialTwin"), "{results}");
}
