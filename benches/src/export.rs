//! Writes the benchmark inputs out as plain files, so that the peers in `benches/peers/`
//! (networkx, polars) measure the very same graphs, symptoms, windows and CSV rows.
//!
//! Per industrial graph `NAME`: `NAME.services.txt` (service names, one per line, in id
//! order: the inference breaks weight ties by id), `NAME.edges.csv` (`caller,callee,kind,weight`, the maintained
//! graph), `NAME.symptoms.txt` (one query symptom per line, in query order),
//! `NAME.window.csv` (`time_us,caller,callee,kind`, the rebuild window in arrival order) and
//! `NAME.scopes.txt` (the kernel's answer per symptom: groups in restart order separated by
//! ` | `, members by spaces, so a peer can check it computes the same scopes). Plus
//! `alibaba.csv`, the ingestion input.

use crate::InferFixture;
use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use std::fmt::Write as _;
use std::path::Path;

/// Writes `fixtures` and the ingestion `csv` into `dir` (created if missing); returns the
/// files written.
pub fn export(dir: &Path, fixtures: &[InferFixture], csv: &[u8]) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |name: String, text: &[u8]| -> std::io::Result<()> {
        let path = dir.join(&name);
        std::fs::write(&path, text).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
        written.push(path.display().to_string());
        Ok(())
    };
    let incident = IncidentId::try_from("export").expect("valid id");
    for f in fixtures {
        let name = |id| f.graph.service(id).name.as_str();
        let mut services = String::new();
        for (_, s) in f.graph.services() {
            let _ = writeln!(services, "{}", s.name);
        }
        write(format!("{}.services.txt", f.name), services.as_bytes())?;
        let mut edges = String::from("caller,callee,kind,weight\n");
        for (a, b, d) in f.graph.edges() {
            let _ = writeln!(
                edges,
                "{},{},{},{}",
                name(a),
                name(b),
                d.kind.as_str(),
                d.weight
            );
        }
        write(format!("{}.edges.csv", f.name), edges.as_bytes())?;
        let mut symptoms = String::new();
        let mut scopes = String::new();
        let mut inference = Inference::new();
        for &s in &f.symptoms {
            let _ = writeln!(symptoms, "{}", name(s));
            let r = inference.infer(&f.graph, s, incident.clone(), GroupConfig::default());
            let groups: Vec<String> = r
                .scope
                .groups()
                .iter()
                .map(|g| g.members.join(" "))
                .collect();
            let _ = writeln!(scopes, "{}", groups.join(" | "));
        }
        write(format!("{}.symptoms.txt", f.name), symptoms.as_bytes())?;
        write(format!("{}.scopes.txt", f.name), scopes.as_bytes())?;
        let mut window = String::from("time_us,caller,callee,kind\n");
        for c in &f.window.calls {
            let _ = writeln!(
                window,
                "{},{},{},{}",
                c.time_us,
                &f.window.names[c.caller.0 as usize..c.caller.1 as usize],
                &f.window.names[c.callee.0 as usize..c.callee.1 as usize],
                c.kind.as_str()
            );
        }
        write(format!("{}.window.csv", f.name), window.as_bytes())?;
    }
    write("alibaba.csv".into(), csv)?;
    Ok(written)
}
