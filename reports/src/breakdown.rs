//! Where the online harm came from: per application, and per drawn fault target. With drawn
//! scenarios (`deathstarbench::drawn`) the seeds of a cell hit different services, so the
//! aggregate harm rate hides which services an agent's mistakes hurt; these tables show it.

use crate::summary::{Proportion, Results};
use crate::tables::Table;
use agents::PolicyId;
use std::collections::{BTreeMap, BTreeSet};

/// Harm and recoveries per application × policy, main matrix: harmful incidents with the 95 %
/// interval, and recovered / runs.
pub fn harm_by_app(r: &Results<'_>) -> Table {
    let mut harm: BTreeMap<(String, PolicyId), Proportion> = BTreeMap::new();
    let mut recovered: BTreeMap<(String, PolicyId), Proportion> = BTreeMap::new();
    let mut apps: Vec<String> = Vec::new();
    for x in r.online_main() {
        if !apps.contains(&x.app) {
            apps.push(x.app.clone());
        }
        harm.entry((x.app.clone(), x.policy))
            .or_default()
            .add(x.harmful);
        recovered
            .entry((x.app.clone(), x.policy))
            .or_default()
            .add(x.ttr_s.is_some());
    }
    let mut t = Table::new("harm_by_app", &["app", "policy", "harm", "recovered"]);
    for app in &apps {
        for p in r.policies() {
            let key = (app.clone(), p);
            let (Some(h), Some(rec)) = (harm.get(&key), recovered.get(&key)) else {
                continue;
            };
            t.rows.push(vec![
                app.clone(),
                p.to_string(),
                h.display(),
                format!("{}/{}", rec.k, rec.n),
            ]);
        }
    }
    t
}

/// Harmful incidents per drawn target (app, fault, target) for the agent policies: one row per
/// target that any agent harmed on, `harmful/runs` per policy; targets without harm are counted
/// in the last row.
pub fn harm_by_target(r: &Results<'_>) -> Table {
    let policies: Vec<PolicyId> = r.policies().into_iter().filter(|p| p.is_agent()).collect();
    let mut cells: BTreeMap<(String, String, String), BTreeMap<PolicyId, Proportion>> =
        BTreeMap::new();
    for x in r.online_main().filter(|x| policies.contains(&x.policy)) {
        // Lines written before scenarios were recorded group under one label.
        let target = x
            .scenario
            .as_ref()
            .map_or_else(|| "(not recorded)".to_string(), |s| s.target_label());
        cells
            .entry((x.app.clone(), x.fault.to_string(), target))
            .or_default()
            .entry(x.policy)
            .or_default()
            .add(x.harmful);
    }
    let mut header = vec!["app", "fault", "target"];
    header.extend(policies.iter().map(|p| p.as_str()));
    let mut t = Table::new("harm_by_target", &header);
    let mut quiet: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (key, by_policy) in &cells {
        if by_policy.values().all(|p| p.k == 0) {
            quiet.insert(key.clone());
            continue;
        }
        let mut row = vec![key.0.clone(), key.1.clone(), key.2.clone()];
        for p in &policies {
            row.push(
                by_policy
                    .get(p)
                    .map_or("—".into(), |x| format!("{}/{}", x.k, x.n)),
            );
        }
        t.rows.push(row);
    }
    if !quiet.is_empty() {
        let mut row = vec![
            "(others)".to_string(),
            "—".to_string(),
            format!("{} targets without harm", quiet.len()),
        ];
        row.extend(policies.iter().map(|_| "0".to_string()));
        t.rows.push(row);
    }
    t
}
