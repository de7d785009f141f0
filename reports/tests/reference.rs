//! The committed reference run (`reports/reference/`) is traceable to its own results: every CSV
//! table regenerates byte for byte from `results.jsonl.gz` and `timings.json`, and `REPORT.md`
//! contains exactly the tables those results give. A change to the tables that is not followed
//! by regenerating the reference (see the README) fails here.

use experiments::record::{ResultLine, read_results};
use reports::summary::Results;
use reports::tables;
use reports::timings::Timings;
use std::io::Read;
use std::path::PathBuf;

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("reference")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(reference(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The reference's result lines (from `results.jsonl.gz`) and timings.
fn load() -> (Vec<ResultLine>, Timings) {
    let gz = std::fs::File::open(reference("results.jsonl.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .unwrap();
    let lines = read_results(&text, "results.jsonl.gz").unwrap();
    let timings = serde_json::from_str(&read("timings.json")).unwrap();
    (lines, timings)
}

#[test]
fn reference_tables_and_report_regenerate_from_its_results() {
    let (lines, timings) = load();
    let results = Results::new(&lines);

    let csvs = reports::report::csv_tables(&results, &timings).unwrap();
    assert!(csvs.len() >= 10, "only {} tables", csvs.len());
    for (name, csv) in &csvs {
        assert_eq!(
            csv,
            &read(&format!("tables/{name}")),
            "tables/{name} differs from what results.jsonl.gz gives"
        );
    }

    let report = read("REPORT.md");
    for t in tables::all(&results) {
        assert!(
            report.contains(&t.markdown()),
            "REPORT.md lacks the {} table as results.jsonl.gz gives it",
            t.name
        );
    }
}

/// The report's prose about the paper is computed from the results too: the committed
/// "Where we differ" section is exactly what the current code writes from the committed results,
/// so a change to that text is followed by the reference.
#[test]
fn reference_differences_from_the_paper_regenerate_from_its_results() {
    let (lines, timings) = load();
    let results = Results::new(&lines);
    let cfg =
        experiments::eval::EvalConfig::from_toml(&read("config.toml"), "config.toml").unwrap();
    let provenance = experiments::record::Provenance {
        commit: "reference".into(),
        config_hash: cfg.hash(),
    };
    let section = |report: &str| {
        let start = report
            .find("## Where we differ from the paper")
            .expect("the section");
        let end = report[start + 3..]
            .find("\n## ")
            .map_or(report.len(), |e| start + 3 + e);
        report[start..end].to_string()
    };
    let rendered = reports::report::render(&cfg, &provenance, &results, &timings, &[]);
    let committed = read("REPORT.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // After a change to the section's prose only: rewrite it in place, nothing else.
        let updated = committed.replace(&section(&committed), &section(&rendered));
        std::fs::write(reference("REPORT.md"), updated).unwrap();
        return;
    }
    assert_eq!(
        section(&rendered),
        section(&committed),
        "the section changed; if intended, rerun with UPDATE_GOLDEN=1"
    );
}
