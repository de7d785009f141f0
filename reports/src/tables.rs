//! The report's tables, rendered as Markdown and CSV from [`Results`].

use crate::summary::{Results, censored_percentile};
use crate::timings::Timings;
use agents::{PolicyId, PolicyKind};
use experiments::offline::IndustrialGraph;
use faults::FaultType;
use std::fmt::Write as _;

/// A named table.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// File stem of its CSV (`harm_online` → `harm_online.csv`).
    pub name: &'static str,
    /// Column headers.
    pub header: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(name: &'static str, header: &[&str]) -> Self {
        Table {
            name,
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// As a Markdown table.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| {} |", self.header.join(" | "));
        let _ = writeln!(s, "|{}", "---|".repeat(self.header.len()));
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        s
    }

    /// As CSV.
    pub fn csv(&self) -> Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8(bytes).expect("we wrote UTF-8"))
    }
}

/// The paper's reported harm rates, where it reports one.
pub fn paper_harm(policy: PolicyId, online: bool) -> &'static str {
    match (policy.builtin(), online) {
        (Some(PolicyKind::Unconstrained), true) => "90%",
        (Some(PolicyKind::Constrained), true) => "0%",
        (Some(PolicyKind::Unconstrained), false) => "77%",
        (Some(PolicyKind::Constrained), false) => "4%",
        _ => "—",
    }
}

/// The fault columns of a table, then the "all" column.
fn with_all(faults: &[FaultType]) -> impl Iterator<Item = String> {
    faults
        .iter()
        .map(|f| f.to_string())
        .chain(["all".to_string()])
}

fn fmt_s(x: Option<f64>) -> String {
    x.map_or("not recovered".to_string(), |v| format!("{v:.0} s"))
}

/// Online harm rate per policy × fault, with 95 % CIs, beside the paper's.
pub fn harm_online(r: &Results<'_>) -> Table {
    let faults = r.faults();
    let mut header = vec!["policy"];
    header.extend(faults.iter().map(|f| f.as_str()));
    header.extend(["all", "worse than noop", "paper"]);
    let mut t = Table::new("harm_online", &header);
    let harm = r.online_harm();
    let cf = r.online_counterfactual();
    for p in r.policies() {
        if !harm.contains_key(&(p, "all".to_string())) {
            continue;
        }
        let mut row = vec![p.to_string()];
        for f in with_all(&faults) {
            row.push(harm.get(&(p, f)).map_or("—".into(), |x| x.display()));
        }
        row.push(cf.get(&p).map_or("—".into(), |x| x.display()));
        row.push(paper_harm(p, true).into());
        t.rows.push(row);
    }
    t
}

/// Offline harm rate per graph × policy × fault.
pub fn harm_offline(r: &Results<'_>) -> Table {
    let faults = r.faults();
    let mut header = vec!["graph", "policy"];
    header.extend(faults.iter().map(|f| f.as_str()));
    header.extend(["all", "paper"]);
    let mut t = Table::new("harm_offline", &header);
    let harm = r.offline_harm();
    for g in IndustrialGraph::ALL {
        for p in r.policies() {
            if !harm.contains_key(&(g, p, "all".to_string())) {
                continue;
            }
            let mut row = vec![g.as_str().to_string(), p.to_string()];
            for f in with_all(&faults) {
                row.push(harm.get(&(g, p, f)).map_or("—".into(), |x| x.display()));
            }
            row.push(paper_harm(p, false).into());
            t.rows.push(row);
        }
    }
    t
}

/// TTR median and P90 per policy × fault, and how many runs recovered.
pub fn ttr(r: &Results<'_>) -> Table {
    let faults = r.faults();
    let mut header = vec!["policy"];
    header.extend(faults.iter().map(|f| f.as_str()));
    header.push("all");
    let mut t = Table::new("ttr", &header);
    let ttr = r.ttr();
    for p in r.policies() {
        if !ttr.contains_key(&(p, "all".to_string())) {
            continue;
        }
        let mut row = vec![p.to_string()];
        for f in with_all(&faults) {
            row.push(ttr.get(&(p, f)).map_or("—".into(), |v| {
                let recovered = v.iter().filter(|x| x.is_some()).count();
                format!(
                    "{} / {} ({recovered}/{})",
                    fmt_s(censored_percentile(v, 0.5)),
                    fmt_s(censored_percentile(v, 0.9)),
                    v.len()
                )
            }));
        }
        t.rows.push(row);
    }
    t
}

/// The guard ablation, the headline comparison: the same simulated agent behind the kernel with
/// no guard, each guard alone and every guard, beside the unconstrained agent and the oracle —
/// on the same seeds. Online harm with its interval, harm worse than noop, recovered runs,
/// median and P90 TTR, escalations, the action kinds that harmed, and offline harm per graph.
pub fn guard_ablation(r: &Results<'_>) -> Table {
    let mut header = vec![
        "policy",
        "online harm",
        "worse than noop",
        "recovered",
        "median TTR",
        "P90 TTR",
        "escalations",
        "harmful actions",
    ];
    header.extend(IndustrialGraph::ALL.map(IndustrialGraph::as_str));
    let mut t = Table::new("guard_ablation", &header);
    let harm = r.online_harm();
    let cf = r.online_counterfactual();
    let ttr = r.ttr();
    let off = r.offline_harm();
    let by_action = r.harm_by_action();
    // External agents sit beside the built-in agents they compete with.
    let ablation = |p: PolicyId| {
        p.is_constrained_llm()
            || p.is_external()
            || matches!(
                p.builtin(),
                Some(PolicyKind::Unconstrained | PolicyKind::Oracle)
            )
    };
    for p in r.policies().into_iter().filter(|&p| ablation(p)) {
        let all = (p, "all".to_string());
        let Some(h) = harm.get(&all) else { continue };
        let runs = ttr.get(&all).cloned().unwrap_or_default();
        let recovered = runs.iter().filter(|x| x.is_some()).count();
        let escalations: u32 = r
            .online_main()
            .filter(|x| x.policy == p)
            .map(|x| x.escalations)
            .sum();
        let harmful: Vec<String> = by_action
            .iter()
            .filter(|((_, q), x)| *q == p && x.k > 0)
            .map(|((kind, _), x)| format!("{kind} {}", x.k))
            .collect();
        let mut row = vec![
            p.to_string(),
            h.display(),
            cf.get(&p).map_or("—".into(), |x| x.display()),
            format!("{recovered}/{}", runs.len()),
            fmt_s(censored_percentile(&runs, 0.5)),
            fmt_s(censored_percentile(&runs, 0.9)),
            escalations.to_string(),
            if harmful.is_empty() {
                "—".into()
            } else {
                harmful.join(", ")
            },
        ];
        for g in IndustrialGraph::ALL {
            row.push(
                off.get(&(g, p, "all".to_string()))
                    .map_or("—".into(), |x| x.display()),
            );
        }
        t.rows.push(row);
    }
    t
}

/// Concurrent recovery, parallel against serial, per mix and number of incidents: speed-ups
/// are per (app, seed) pair, reported as the median with its 95 % order-statistic interval.
pub fn parallel(r: &Results<'_>) -> Table {
    let mut t = Table::new(
        "parallel",
        &[
            "mix",
            "incidents",
            "pairs",
            "same incidents resolved",
            "median makespan serial / parallel",
            "makespan speed-up [95% CI]",
            "TTR speed-up [95% CI]",
            "max concurrent plans",
            "overlapping concurrent plans",
            "R13 lock conflicts",
        ],
    );
    let speedup = |v: &[f64]| match crate::stats::median_interval(v, 0.95) {
        Some(m) if m.coverage >= 0.95 => format!("{:.2}× [{:.2}, {:.2}]", m.median, m.lo, m.hi),
        Some(m) => format!(
            "{:.2}× [{:.2}, {:.2}] ({:.0}% coverage)",
            m.median,
            m.lo,
            m.hi,
            100.0 * m.coverage
        ),
        None => "—".into(),
    };
    let median_s = |v: &[f64]| {
        crate::stats::median_interval(v, 0.95)
            .map_or("—".into(), |m| format!("{:.0} s", m.median))
    };
    for ((mix, count), c) in r.parallel_cells() {
        t.rows.push(vec![
            mix.as_str().to_string(),
            count.to_string(),
            format!(
                "{} ({} app{})",
                c.pairs,
                c.apps.len(),
                if c.apps.len() == 1 { "" } else { "s" }
            ),
            format!("{}/{}", c.same_resolved, c.pairs),
            format!(
                "{} / {}",
                median_s(&c.serial_makespans),
                median_s(&c.parallel_makespans)
            ),
            speedup(&c.makespan_speedups),
            speedup(&c.ttr_speedups),
            c.max_concurrent.to_string(),
            c.overlap_violations.to_string(),
            c.lock_conflicts.to_string(),
        ]);
    }
    t
}

/// Kernel rejections by rule.
pub fn rejections(r: &Results<'_>) -> Table {
    let mut t = Table::new(
        "rejections",
        &[
            "rule",
            "online, constrained",
            "offline, constrained",
            "all experiments",
        ],
    );
    for (rule, (on, off, all)) in r.rejections_by_rule() {
        t.rows.push(vec![
            rule.id().to_string(),
            on.to_string(),
            off.to_string(),
            all.to_string(),
        ]);
    }
    t
}

/// Harmful agent actions per action kind and policy, online.
pub fn harm_by_action(r: &Results<'_>) -> Table {
    let by_action = r.harm_by_action();
    let policies: Vec<PolicyId> = r
        .policies()
        .into_iter()
        .filter(|p| by_action.keys().any(|(_, q)| q == p))
        .collect();
    let mut header = vec!["action"];
    header.extend(policies.iter().map(|p| p.as_str()));
    let mut t = Table::new("harm_by_action", &header);
    let kinds: std::collections::BTreeSet<&String> = by_action.keys().map(|(k, _)| k).collect();
    for kind in kinds {
        let mut row = vec![kind.clone()];
        for &p in &policies {
            row.push(
                by_action
                    .get(&(kind.clone(), p))
                    .map_or("—".into(), |x| format!("{}/{}", x.k, x.n)),
            );
        }
        t.rows.push(row);
    }
    t
}

/// Harm against the LLM error-rate factor.
pub fn sensitivity(r: &Results<'_>) -> Table {
    let mut t = Table::new(
        "sensitivity",
        &["experiment", "error factor", "unconstrained", "constrained"],
    );
    let s = r.sensitivity();
    let keys: std::collections::BTreeSet<(String, u64)> =
        s.keys().map(|(e, f, _)| (e.clone(), *f)).collect();
    for (exp, f) in keys {
        let cell = |p: PolicyKind| {
            s.get(&(exp.clone(), f, p.into()))
                .map_or("—".into(), |x: &crate::summary::Proportion| x.display())
        };
        t.rows.push(vec![
            exp.clone(),
            format!("{:.2}", f as f64 / 1000.0),
            cell(PolicyKind::Unconstrained),
            cell(PolicyKind::Constrained),
        ]);
    }
    t
}

/// Blast radius of the industrial graphs against the paper's.
pub fn blast_radius(r: &Results<'_>) -> Table {
    let mut t = Table::new(
        "blast_radius",
        &[
            "graph",
            "services",
            "edges",
            "hubs",
            "P50",
            "P90",
            "P99",
            "max",
            "paper (Alibaba v2021)",
        ],
    );
    for g in &r.graphs {
        t.rows.push(vec![
            g.graph.as_str().into(),
            g.services.to_string(),
            g.edges.to_string(),
            g.hubs.to_string(),
            format!("{:.0}", g.blast_p50),
            format!("{:.0}", g.blast_p90),
            format!("{:.0}", g.blast_p99),
            format!("{:.0}", g.blast_max),
            if g.graph == IndustrialGraph::AlibabaLike {
                "median 8, P99 59, max 177"
            } else {
                "—"
            }
            .into(),
        ]);
    }
    t
}

/// Recovery-group inference latency (wall clock, from `timings.json`).
pub fn inference(timings: &Timings) -> Table {
    let mut t = Table::new(
        "inference_latency",
        &[
            "graph",
            "services",
            "what",
            "queries",
            "P50",
            "P99",
            "max",
            "paper P99",
        ],
    );
    for f in &timings.inference {
        let ms = |ns: u64| format!("{:.3} ms", ns as f64 / 1e6);
        t.rows.push(vec![
            f.graph.clone(),
            f.services.to_string(),
            f.what.clone(),
            f.samples_ns.len().to_string(),
            ms(f.percentile_ns(0.5)),
            ms(f.percentile_ns(0.99)),
            ms(f.samples_ns.last().copied().unwrap_or(0)),
            f.paper_p99.clone(),
        ]);
    }
    t
}

/// Coverage of rules, rollbacks and remedies.
pub fn coverage(r: &Results<'_>) -> (Table, Table) {
    let c = r.coverage();
    let mut t = Table::new("coverage", &["what", "count"]);
    for (rule, n) in &c.rules {
        t.rows
            .push(vec![format!("rule {} fired", rule.id()), n.to_string()]);
    }
    t.rows.push(vec![
        "undo/compensation operations".into(),
        c.rollbacks.to_string(),
    ]);
    for (what, n) in [
        ("leases expired and reverted", c.lease_expiries),
        ("leases renewed (the failure persisted)", c.lease_renewals),
        ("watchdog undos (steps taken back)", c.watchdog_undos),
        ("half-open breakers closed", c.breakers_closed),
    ] {
        t.rows.push(vec![what.into(), n.to_string()]);
    }
    t.rows
        .push(vec!["plans aborted".into(), c.aborted_plans.to_string()]);
    for (b, n) in &c.behaviours {
        t.rows
            .push(vec![format!("behaviour {b} (runs)"), n.to_string()]);
    }
    // By name, as the committed coverage tables have always listed them.
    let mut injected: Vec<(&FaultType, &u32)> = c.faults.iter().collect();
    injected.sort_by_key(|(f, _)| f.as_str());
    for (f, n) in injected {
        t.rows.push(vec![
            format!("fault {f} injected (runs + offline incidents)"),
            n.to_string(),
        ]);
    }
    let kinds: std::collections::BTreeSet<&String> = c.remedies.keys().map(|(_, k)| k).collect();
    let mut header = vec!["fault"];
    header.extend(kinds.iter().map(|k| k.as_str()));
    let mut m = Table::new("remedies", &header);
    for f in r.faults() {
        let mut row = vec![f.to_string()];
        for k in &kinds {
            row.push(
                c.remedies
                    .get(&(f, (*k).clone()))
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            );
        }
        m.rows.push(row);
    }
    (t, m)
}

/// External agents' online runs and the incidents each ended as an *agent failure* (crashed,
/// timed out, sent a malformed or oversized message), with the reasons and their counts; `None`
/// when no external agent ran.
pub fn external_agents(r: &Results<'_>) -> Option<Table> {
    let mut t = Table::new(
        "external_agents",
        &["policy", "runs", "agent failures", "reasons"],
    );
    for p in r.policies().into_iter().filter(|p| p.is_external()) {
        let runs: Vec<_> = r.online_main().filter(|x| x.policy == p).collect();
        let mut reasons: std::collections::BTreeMap<&str, u32> = Default::default();
        for reason in runs.iter().filter_map(|x| x.agent_failure.as_deref()) {
            *reasons.entry(reason).or_default() += 1;
        }
        let failures: u32 = reasons.values().sum();
        let listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{n}× {r}")).collect();
        t.rows.push(vec![
            p.to_string(),
            runs.len().to_string(),
            failures.to_string(),
            if listed.is_empty() {
                "—".into()
            } else {
                listed.join("; ")
            },
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}

/// Every table computed from result lines alone (not timings), in report order (the external
/// agents' table only when one ran).
pub fn all(r: &Results<'_>) -> Vec<Table> {
    let (cov, rem) = coverage(r);
    let external = external_agents(r);
    let mut tables = vec![
        guard_ablation(r),
        harm_online(r),
        crate::breakdown::harm_by_app(r),
        crate::breakdown::harm_by_target(r),
        harm_offline(r),
        harm_by_action(r),
        ttr(r),
        parallel(r),
        rejections(r),
        sensitivity(r),
        blast_radius(r),
        cov,
        rem,
    ];
    if let Some(t) = external {
        tables.insert(1, t);
    }
    tables
}
