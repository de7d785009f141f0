//! The readers on the real trace files in `traces/testdata/` (copies with provenance, see its README) and the minimal format examples.

use kernel::{DependencyGraph, ServiceKind};
use std::path::PathBuf;
use traces::{Format, IngestOptions, IngestSummary, WindowedGraph, ingest_path};

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

fn load(rel: &str, lenient: bool) -> (Format, IngestSummary, DependencyGraph) {
    let mut window = WindowedGraph::new(None);
    let (format, summary) = ingest_path(&testdata(rel), None, IngestOptions { lenient }, &mut |c| {
        window.ingest(c)
    })
    .unwrap_or_else(|e| panic!("{rel}: {e}"));
    (format, summary, window.into_graph())
}

#[test]
fn alibaba_samples_parse_with_their_quirks() {
    for (file, lenient) in [
        ("alibaba/casper_2021_sample_small.csv.gz", false),
        ("alibaba/casper_2022_sample_small.csv.gz", false),
        ("alibaba/sjlgaga_2021_Callgraph.csv", false),
        (
            "alibaba/ceilmechanics_2022_casper_naive_accurate_rpc_only.csv",
            false,
        ),
    ] {
        let (format, summary, graph) = load(file, lenient);
        assert_eq!(format, Format::Alibaba, "{file}");
        assert!(summary.records > 900, "{file}: {summary}");
        assert!(summary.calls > 100, "{file}: {summary}");
        assert!(graph.service_count() > 20, "{file}: {graph}");
        println!("{file}: {summary}; graph {graph}");
    }
}

#[test]
fn v2021_duplicates_and_placeholders_are_handled() {
    let (_, summary, graph) = load("alibaba/sjlgaga_2021_Callgraph.csv", false);
    assert!(
        summary.dropped.get("duplicate").copied().unwrap_or(0) > 0,
        "{summary}"
    );
    // Placeholders stay distinct: no single node called `(?)`.
    assert!(graph.id("(?)").is_none());
    let unknown: Vec<_> = graph.services().filter(|(_, s)| s.unknown).collect();
    assert!(!unknown.is_empty());
    assert!(
        unknown
            .iter()
            .all(|(_, s)| s.name.contains(" (caller of ") || s.name.contains(" (callee of "))
    );
    // Memcached callees became caches.
    assert!(graph.services().any(|(_, s)| s.kind == ServiceKind::Cache));
}

#[test]
fn deathstarbench_jaeger_export_shows_services_and_backends() {
    let (format, summary, graph) = load(
        "jaeger/dsb_socialnetwork_read_home_timeline.jaeger.json",
        false,
    );
    assert_eq!(format, Format::Jaeger);
    assert_eq!(summary.records, 13, "{summary}");
    let mut names: Vec<(&str, ServiceKind)> = graph
        .services()
        .map(|(_, s)| (s.name.as_str(), s.kind))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("home-timeline-redis", ServiceKind::Cache),
            ("home-timeline-service", ServiceKind::Stateless),
            ("nginx-web-server", ServiceKind::Frontend),
            ("post-storage-memcached", ServiceKind::Cache),
            ("post-storage-service", ServiceKind::Stateless),
        ]
    );
    let id = |n: &str| graph.id(n).unwrap();
    assert_eq!(
        graph
            .edge(id("nginx-web-server"), id("home-timeline-service"))
            .unwrap()
            .weight,
        2
    );
    assert_eq!(
        graph
            .edge(id("home-timeline-service"), id("post-storage-service"))
            .unwrap()
            .weight,
        2
    );
    assert_eq!(
        graph
            .edge(id("home-timeline-service"), id("home-timeline-redis"))
            .unwrap()
            .weight,
        2
    );
    assert_eq!(
        graph
            .edge(id("post-storage-service"), id("post-storage-memcached"))
            .unwrap()
            .weight,
        1
    );
    assert_eq!(graph.edge_count(), 4);
}

#[test]
fn the_three_minimal_formats_give_the_same_graph() {
    let mut graphs = Vec::new();
    for (file, format) in [
        ("formats/jaeger_ui_export_minimal.json", Format::Jaeger),
        ("formats/zipkin_v2_minimal.json", Format::Zipkin),
        ("formats/otlp_minimal.json", Format::Otlp),
    ] {
        let (f, summary, graph) = load(file, false);
        assert_eq!(f, format, "{file}");
        assert_eq!(summary.skipped_total(), 0, "{file}: {summary}");
        let mut edges: Vec<(String, String, String)> = graph
            .edges()
            .map(|(a, b, d)| {
                (
                    graph.service(a).name.clone(),
                    graph.service(b).name.clone(),
                    d.kind.as_str().to_string(),
                )
            })
            .collect();
        edges.sort();
        graphs.push((file, edges));
    }
    assert!(!graphs[0].1.is_empty());
    assert_eq!(graphs[0].1, graphs[1].1, "jaeger vs zipkin");
    assert_eq!(graphs[0].1, graphs[2].1, "jaeger vs otlp");
    assert!(graphs[0].1.contains(&(
        "home-timeline-service".into(),
        "home-timeline-redis".into(),
        "cache".into()
    )));
}

#[test]
fn meta_tables_parse_and_match_the_embedded_degrees() {
    let text = std::fs::read_to_string(testdata("meta/service-characteristics.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (fin, fout, inst) = (
        col("num_fan_in_all"),
        col("num_fan_out_all"),
        col("num_instances"),
    );
    let embedded = traces::synth::meta_table();
    let mut rows = 0;
    for (record, row) in reader.records().zip(&embedded) {
        let record = record.unwrap();
        assert_eq!(record[fin].parse::<usize>().unwrap(), row.fan_in);
        assert_eq!(record[fout].parse::<usize>().unwrap(), row.fan_out);
        assert_eq!(record[inst].parse::<u64>().unwrap(), row.instances);
        rows += 1;
    }
    assert_eq!(rows, 18_571);
    for other in [
        "meta/service-endpoints.csv",
        "meta/service-history.csv",
        "meta/inferred-path-data.csv",
    ] {
        let text = std::fs::read_to_string(testdata(other)).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut n = 0;
        for record in reader.records() {
            assert!(
                record.unwrap().len() >= 3,
                "{other}: every row has its columns"
            );
            n += 1;
        }
        assert!(n > 30, "{other}: {n} rows");
    }
}
