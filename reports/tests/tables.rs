//! The report's tables are a pure function of `results.jsonl`: regenerate them from a small
//! committed results file and compare with the committed expectation, and check that
//! `REPORT.md` contains exactly those tables.
//!
//! After an intended change to the tables, regenerate the expectation with
//! `UPDATE_GOLDEN=1 cargo test -p reports --test tables`.

use experiments::eval::EvalConfig;
use experiments::record::{Provenance, read_results};
use reports::summary::Results;
use reports::tables;
use reports::timings::Timings;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn rendered() -> (Vec<experiments::record::ResultLine>, String) {
    let text = std::fs::read_to_string(data("results-small.jsonl")).unwrap();
    let lines = read_results(&text, "results-small.jsonl").unwrap();
    let md: String = tables::all(&Results::new(&lines))
        .iter()
        .map(|t| format!("## {}\n\n{}\n", t.name, t.markdown()))
        .collect();
    (lines, md)
}

#[test]
fn tables_regenerate_from_results() {
    let (_, md) = rendered();
    let golden = data("tables-small.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &md).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        md, expected,
        "tables changed; if intended, rerun with UPDATE_GOLDEN=1"
    );
}

#[test]
fn the_report_shows_exactly_the_tables_of_the_results() {
    let (lines, _) = rendered();
    let results = Results::new(&lines);
    let provenance = Provenance {
        commit: "test".into(),
        config_hash: "test".into(),
    };
    let report = reports::report::render(
        &EvalConfig::default(),
        &provenance,
        &results,
        &Timings::default(),
        &[],
    );
    for t in tables::all(&results) {
        assert!(
            report.contains(&t.markdown()),
            "REPORT.md lacks the {} table",
            t.name
        );
        assert!(!t.rows.is_empty(), "{} has rows", t.name);
    }
}

#[test]
fn csv_tables_parse_back_with_the_same_cells() {
    let (lines, _) = rendered();
    let results = Results::new(&lines);
    for t in tables::all(&results) {
        let csv = t.csv().unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(header, t.header);
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(rows, t.rows, "{}", t.name);
    }
}

#[test]
fn a_bad_results_line_is_located() {
    let err = read_results("{\"experiment\": \"online\"}\n", "r.jsonl").unwrap_err();
    assert!(err.starts_with("r.jsonl:1:"), "{err}");
}

#[test]
fn plots_render_with_the_embedded_font() {
    let (lines, _) = rendered();
    let results = Results::new(&lines);
    let dir = tempfile::tempdir().unwrap();
    let (mut out, _) =
        reports::run_dir::RunDir::open(dir.path(), "test", "abc", "0", false).unwrap();
    let files =
        reports::plots::write_all(&mut out, &results, &[], &Timings::default(), (90.0, 900.0))
            .unwrap();
    let png = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "png"))
        .expect("a PNG");
    let bytes = std::fs::read(png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let svg = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "svg"))
        .expect("an SVG");
    assert!(
        std::fs::read_to_string(svg).unwrap().contains("<text"),
        "SVG carries its text"
    );
}
