//! `microreboot compare`: two evaluations' result lines, cell by cell, with statistics — and,
//! because runs are seeded, the exact list of incidents whose verdict changed.
//!
//! A cell is a policy × fault × app of the online matrix (harm, recovery, TTR) or a policy ×
//! fault × graph of the offline experiment (harm), both at error factor 1. Per cell:
//!
//! * harm and recovery: Newcombe's hybrid score interval of current − baseline
//!   ([`crate::stats::newcombe`]); a regression is an interval wholly past the threshold (harm
//!   up by more than `harm_threshold`, recovery down by more than `recovery_threshold`);
//! * TTR: the Mann–Whitney U test with "not recovered" ranked last; a regression is a p-value
//!   below the per-test level with current slower and its median TTR later by more than
//!   `ttr_threshold_s`.
//!
//! The intervals and p-values are Bonferroni-corrected over every test of the comparison, so
//! `alpha` is the family-wise error rate: a run whose random streams merely shifted should not
//! fail a CI gate somewhere among seventy cells by chance.

use crate::stats::{RankTest, mann_whitney, newcombe, normal_quantile};
use crate::summary::Results;
use agents::PolicyId;
use experiments::offline::IndustrialGraph;
use faults::FaultType;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What counts as a significant regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Family-wise error rate over all tests of the comparison.
    pub alpha: f64,
    /// Harm-rate increase (absolute, 0–1) the interval's lower bound must exceed.
    pub harm: f64,
    /// Recovery-rate decrease (absolute, 0–1) the interval's upper bound must fall below.
    pub recovery: f64,
    /// Median-TTR increase, seconds, a significant rank test must also show.
    pub ttr_s: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            alpha: 0.05,
            harm: 0.0,
            recovery: 0.0,
            ttr_s: 0.0,
        }
    }
}

/// One cell of the comparison.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// An online cell.
    Online {
        /// Application.
        app: String,
        /// Fault.
        fault: FaultType,
        /// Policy.
        policy: PolicyId,
    },
    /// An offline cell.
    Offline {
        /// Graph.
        graph: IndustrialGraph,
        /// Fault.
        fault: FaultType,
        /// Policy.
        policy: PolicyId,
    },
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Online { app, fault, policy } => write!(f, "online {app} {fault} {policy}"),
            Cell::Offline {
                graph,
                fault,
                policy,
            } => write!(f, "offline {} {fault} {policy}", graph.as_str()),
        }
    }
}

/// One run of a cell: its seed (online) or incident number (offline) and its verdicts.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Outcome {
    harmful: bool,
    /// `None` offline, where there is no time to recovery.
    ttr_s: Option<Option<f64>>,
}

/// A proportion, `k` of `n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// Hits.
    pub k: u32,
    /// Runs.
    pub n: u32,
}

impl Count {
    fn rate(self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            f64::from(self.k) / f64::from(self.n)
        }
    }
}

/// A difference of two proportions, current − baseline, with its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Difference {
    /// Baseline.
    pub baseline: Count,
    /// Current.
    pub current: Count,
    /// Point estimate.
    pub diff: f64,
    /// Interval (Bonferroni-corrected level).
    pub interval: (f64, f64),
}

impl Difference {
    fn new(baseline: Count, current: Count, z: f64) -> Self {
        Difference {
            baseline,
            current,
            diff: current.rate() - baseline.rate(),
            interval: newcombe(baseline.k, baseline.n, current.k, current.n, z),
        }
    }
}

/// Which way a cell's metric moved, significantly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    /// No significant change past the threshold.
    Same,
    /// Significantly worse.
    Regressed,
    /// Significantly better.
    Improved,
}

/// The comparison of one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct CellComparison {
    /// The cell.
    pub cell: Cell,
    /// Harm, current − baseline.
    pub harm: Difference,
    /// Its verdict.
    pub harm_shift: Shift,
    /// Recovery (online only).
    pub recovery: Option<(Difference, Shift)>,
    /// Median TTRs (baseline, current; `None`: not reached) and the rank test (online only).
    pub ttr: Option<TtrComparison>,
}

/// Times to recovery of an online cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TtrComparison {
    /// Baseline median, seconds (`None`: fewer than half recovered).
    pub baseline_median: Option<f64>,
    /// Current median.
    pub current_median: Option<f64>,
    /// The rank test.
    pub test: RankTest,
    /// Its verdict.
    pub shift: Shift,
}

impl CellComparison {
    /// Whether any metric of the cell regressed.
    pub fn regressed(&self) -> bool {
        self.harm_shift == Shift::Regressed
            || self.recovery.is_some_and(|(_, s)| s == Shift::Regressed)
            || self.ttr.is_some_and(|t| t.shift == Shift::Regressed)
    }
}

/// An incident (same cell, same seed or incident number) whose verdict changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The cell.
    pub cell: Cell,
    /// Seed (online) or incident number (offline).
    pub run: u64,
    /// Harmful in baseline, current.
    pub harmful: (bool, bool),
    /// TTR in baseline, current (online).
    pub ttr_s: Option<(Option<f64>, Option<f64>)>,
    /// The command that replays the current run, when there is one.
    pub replay: Option<String>,
}

/// Everything `compare` found.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The thresholds used.
    pub thresholds: Thresholds,
    /// Statistical tests made (the Bonferroni divisor).
    pub tests: usize,
    /// The normal quantile of the corrected intervals.
    pub z: f64,
    /// Cells in both runs.
    pub cells: Vec<CellComparison>,
    /// Cells in only one of them (baseline-only first).
    pub unmatched: Vec<(Cell, &'static str)>,
    /// Incidents whose verdict changed.
    pub changes: Vec<Change>,
}

type Runs = BTreeMap<Cell, BTreeMap<u64, Outcome>>;

fn runs(lines: &[experiments::record::ResultLine]) -> Runs {
    let r = Results::new(lines);
    let mut out: Runs = BTreeMap::new();
    for x in r.online_main() {
        let cell = Cell::Online {
            app: x.app.clone(),
            fault: x.fault,
            policy: x.policy,
        };
        out.entry(cell).or_default().insert(
            x.seed,
            Outcome {
                harmful: x.harmful,
                ttr_s: Some(x.ttr_s),
            },
        );
    }
    for x in r.offline_main() {
        let cell = Cell::Offline {
            graph: x.graph,
            fault: x.outcome.fault,
            policy: x.outcome.policy.into(),
        };
        out.entry(cell).or_default().insert(
            u64::from(x.incident),
            Outcome {
                harmful: x.harmful(),
                ttr_s: None,
            },
        );
    }
    out
}

/// Compares `current` against `baseline`. `replay_extra` is appended to every replay command
/// (the `--config`/`--topology` the current run needs, see [`crate::replay_extra`]).
pub fn compare(
    baseline: &[experiments::record::ResultLine],
    current: &[experiments::record::ResultLine],
    thresholds: Thresholds,
    replay_extra: &str,
) -> Comparison {
    let (base, cur) = (runs(baseline), runs(current));
    let both: Vec<&Cell> = base.keys().filter(|c| cur.contains_key(*c)).collect();
    let tests: usize = both
        .iter()
        .map(|c| match c {
            Cell::Online { .. } => 3,
            Cell::Offline { .. } => 1,
        })
        .sum();
    let level = thresholds.alpha / tests.max(1) as f64;
    let z = normal_quantile(1.0 - level / 2.0);
    let mut cells = Vec::new();
    let mut changes = Vec::new();
    for cell in both {
        let (b, c) = (&base[cell], &cur[cell]);
        let count = |runs: &BTreeMap<u64, Outcome>, f: fn(&Outcome) -> bool| Count {
            k: runs.values().filter(|o| f(o)).count() as u32,
            n: runs.len() as u32,
        };
        let harm = Difference::new(count(b, |o| o.harmful), count(c, |o| o.harmful), z);
        let harm_shift = if harm.interval.0 > thresholds.harm {
            Shift::Regressed
        } else if harm.interval.1 < -thresholds.harm {
            Shift::Improved
        } else {
            Shift::Same
        };
        let online = matches!(cell, Cell::Online { .. });
        let recovered = |o: &Outcome| o.ttr_s.is_some_and(|t| t.is_some());
        let recovery = online.then(|| {
            let d = Difference::new(count(b, recovered), count(c, recovered), z);
            let shift = if d.interval.1 < -thresholds.recovery {
                Shift::Regressed
            } else if d.interval.0 > thresholds.recovery {
                Shift::Improved
            } else {
                Shift::Same
            };
            (d, shift)
        });
        let ttr = if online {
            let times = |runs: &BTreeMap<u64, Outcome>| -> Vec<Option<f64>> {
                runs.values().map(|o| o.ttr_s.flatten()).collect()
            };
            let (tb, tc) = (times(b), times(c));
            mann_whitney(&tb, &tc).map(|test| {
                let baseline_median = crate::summary::censored_percentile(&tb, 0.5);
                let current_median = crate::summary::censored_percentile(&tc, 0.5);
                let inf = f64::INFINITY;
                let later = current_median.unwrap_or(inf) - baseline_median.unwrap_or(inf);
                let earlier = baseline_median.unwrap_or(inf) - current_median.unwrap_or(inf);
                let significant = test.p_two_sided < level;
                // ∞ − ∞ is NaN: two medians "not reached" are no shift.
                let shift = if significant && test.superiority > 0.5 && later > thresholds.ttr_s {
                    Shift::Regressed
                } else if significant && test.superiority < 0.5 && earlier > thresholds.ttr_s {
                    Shift::Improved
                } else {
                    Shift::Same
                };
                TtrComparison {
                    baseline_median,
                    current_median,
                    test,
                    shift,
                }
            })
        } else {
            None
        };
        cells.push(CellComparison {
            cell: cell.clone(),
            harm,
            harm_shift,
            recovery,
            ttr,
        });
        for (run, ob) in b {
            let Some(oc) = c.get(run) else { continue };
            let verdict = |o: &Outcome| (o.harmful, o.ttr_s.map(|t| t.is_some()));
            if verdict(ob) == verdict(oc) {
                continue;
            }
            let replay = match cell {
                Cell::Online { app, fault, policy } => Some(format!(
                    "microreboot scenario --app {app} --fault {fault} --policy {policy} --seed {run}{replay_extra}"
                )),
                Cell::Offline { .. } => None,
            };
            changes.push(Change {
                cell: cell.clone(),
                run: *run,
                harmful: (ob.harmful, oc.harmful),
                ttr_s: ob.ttr_s.zip(oc.ttr_s),
                replay,
            });
        }
    }
    let mut unmatched: Vec<(Cell, &'static str)> = base
        .keys()
        .filter(|c| !cur.contains_key(*c))
        .map(|c| (c.clone(), "baseline only"))
        .collect();
    unmatched.extend(
        cur.keys()
            .filter(|c| !base.contains_key(*c))
            .map(|c| (c.clone(), "current only")),
    );
    Comparison {
        thresholds,
        tests,
        z,
        cells,
        unmatched,
        changes,
    }
}

impl Comparison {
    /// The cells with a significant regression.
    pub fn regressions(&self) -> Vec<&CellComparison> {
        self.cells.iter().filter(|c| c.regressed()).collect()
    }

    /// The comparison as Markdown (a CI job summary). `baseline` and `current` describe the
    /// two runs; `config_note` says how their configurations relate.
    pub fn markdown(&self, baseline: &str, current: &str, config_note: &str) -> String {
        let mut s = String::new();
        let t = self.thresholds;
        let regressions = self.regressions();
        let _ = writeln!(s, "# microreboot compare\n");
        let _ = writeln!(s, "- baseline: {baseline}\n- current: {current}");
        let _ = writeln!(s, "- configurations: {config_note}");
        let _ = writeln!(
            s,
            "- {} cells in both runs, {} tests; harm and recovery: Newcombe hybrid score intervals \
             of current − baseline; TTR: Mann–Whitney U with unrecovered runs ranked last; \
             Bonferroni-corrected to a family-wise α = {} (intervals at z = {:.3}, p < {:.2e})",
            self.cells.len(),
            self.tests,
            t.alpha,
            self.z,
            t.alpha / self.tests.max(1) as f64
        );
        let _ = writeln!(
            s,
            "- a regression: harm up by more than {:.1} pp, recovery down by more than {:.1} pp \
             (whole interval past it), or TTR significantly later with the median later by more \
             than {} s\n",
            100.0 * t.harm,
            100.0 * t.recovery,
            t.ttr_s
        );
        if regressions.is_empty() {
            let _ = writeln!(s, "**No significant regression.**\n");
        } else {
            let _ = writeln!(
                s,
                "**{} regressed cell{}:** {}\n",
                regressions.len(),
                if regressions.len() == 1 { "" } else { "s" },
                regressions
                    .iter()
                    .map(|c| format!("`{}`", c.cell))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(
            s,
            "| cell | runs | harm | Δ harm [interval] | recovered | Δ recovered [interval] | median TTR | TTR p | verdict |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for c in &self.cells {
            let count = |d: &Difference| {
                format!(
                    "{}/{} → {}/{}",
                    d.baseline.k, d.baseline.n, d.current.k, d.current.n
                )
            };
            let delta = |d: &Difference| {
                format!(
                    "{:+.1} pp [{:+.1}, {:+.1}]",
                    100.0 * d.diff,
                    100.0 * d.interval.0,
                    100.0 * d.interval.1
                )
            };
            let median = |m: Option<f64>| m.map_or("—".to_string(), |m| format!("{m:.0} s"));
            let (rec, rec_delta) = c
                .recovery
                .map_or(("".into(), "".into()), |(d, _)| (count(&d), delta(&d)));
            let (ttr, p) = c.ttr.map_or(("".into(), "".into()), |t| {
                (
                    format!(
                        "{} → {}",
                        median(t.baseline_median),
                        median(t.current_median)
                    ),
                    format!("{:.3}", t.test.p_two_sided),
                )
            });
            let mut verdict = Vec::new();
            let mut note = |what: &str, shift: Shift| match shift {
                Shift::Regressed => verdict.push(format!("**{what} regressed**")),
                Shift::Improved => verdict.push(format!("{what} improved")),
                Shift::Same => {}
            };
            note("harm", c.harm_shift);
            if let Some((_, shift)) = c.recovery {
                note("recovery", shift);
            }
            if let Some(t) = c.ttr {
                note("TTR", t.shift);
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.cell,
                c.harm.current.n,
                count(&c.harm),
                delta(&c.harm),
                rec,
                rec_delta,
                ttr,
                p,
                if verdict.is_empty() {
                    "same".to_string()
                } else {
                    verdict.join(", ")
                }
            );
        }
        if !self.unmatched.is_empty() {
            let _ = writeln!(s, "\nCells in one run only (not compared):\n");
            for (c, side) in &self.unmatched {
                let _ = writeln!(s, "- `{c}`: {side}");
            }
        }
        let _ = writeln!(
            s,
            "\n## Changed verdicts, paired by seed ({})\n",
            self.changes.len()
        );
        if self.changes.is_empty() {
            let _ = writeln!(
                s,
                "None: every incident in both runs has the same verdicts."
            );
            return s;
        }
        let _ = writeln!(s, "| cell | seed / incident | harmful | TTR | replay |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        let yes = |b: bool| if b { "yes" } else { "no" };
        for ch in &self.changes {
            let ttr =
                |t: Option<f64>| t.map_or("not recovered".to_string(), |t| format!("{t:.0} s"));
            let _ = writeln!(
                s,
                "| {} | {} | {} → {} | {} | {} |",
                ch.cell,
                ch.run,
                yes(ch.harmful.0),
                yes(ch.harmful.1),
                ch.ttr_s
                    .map_or(String::new(), |(a, b)| format!("{} → {}", ttr(a), ttr(b))),
                ch.replay
                    .as_ref()
                    .map_or("(offline: no replay command)".to_string(), |r| format!(
                        "`{r}`"
                    ))
            );
        }
        s
    }
}

/// Keys whose values differ between two configurations (dotted paths, with both values as
/// TOML; `None` where a side lacks the key), in key order.
pub fn config_differences(
    baseline: &toml::Table,
    current: &toml::Table,
) -> Vec<(String, Option<String>, Option<String>)> {
    fn flatten(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => flatten(&key, inner, out),
                v => {
                    out.insert(key, v.to_string());
                }
            }
        }
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", baseline, &mut a);
    flatten("", current, &mut b);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| (k.clone(), a.get(k).cloned(), b.get(k).cloned()))
        .collect()
}

/// Whether `key` is covered by one of the allowed names: the key itself or a table above it
/// (`llm` allows `llm.mistakes.skip_drain`).
pub fn allowed(key: &str, allow: &[String]) -> bool {
    allow.iter().any(|a| {
        key == a
            || key
                .strip_prefix(a.as_str())
                .is_some_and(|r| r.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use experiments::record::{OnlineRecord, Provenance, ResultLine};

    fn line(
        policy: agents::PolicyKind,
        seed: u64,
        harmful: bool,
        ttr_s: Option<f64>,
    ) -> ResultLine {
        ResultLine::Online(OnlineRecord {
            provenance: Provenance {
                commit: "c".into(),
                config_hash: "h".into(),
            },
            app: "socialNetwork".into(),
            fault: FaultType::Crash,
            policy: policy.into(),
            seed,
            error_factor: 1.0,
            harmful,
            counterfactual: None,
            ttr_s,
            actions: vec![],
            incidents: 1,
            rejections: 0,
            rejected_rules: Default::default(),
            escalations: 0,
            correct_root: None,
            mistakes: vec![],
            plans_committed: 0,
            plans_aborted: 0,
            rollbacks: 0,
            lease_expiries: 0,
            lease_renewals: 0,
            watchdog_undos: 0,
            breakers_closed: 0,
            refused_commands: 0,
            events: 0,
            scenario: None,
            behaviours: Default::default(),
            agent_failure: None,
        })
    }

    #[test]
    fn identical_runs_compare_equal_and_a_harm_jump_is_named_with_its_seeds() {
        let base: Vec<ResultLine> = (1..=20)
            .map(|s| line(agents::PolicyKind::Constrained, s, false, Some(30.0)))
            .collect();
        let same = compare(&base, &base, Thresholds::default(), "");
        assert!(same.regressions().is_empty());
        assert!(same.changes.is_empty());
        assert_eq!(same.tests, 3);
        // Fifteen of twenty seeds turn harmful and stop recovering.
        let cur: Vec<ResultLine> = (1..=20)
            .map(|s| {
                let bad = s <= 15;
                line(
                    agents::PolicyKind::Constrained,
                    s,
                    bad,
                    (!bad).then_some(30.0),
                )
            })
            .collect();
        let c = compare(&base, &cur, Thresholds::default(), " --config x.toml");
        let cell = &c.cells[0];
        assert_eq!(cell.harm_shift, Shift::Regressed);
        assert_eq!(cell.recovery.unwrap().1, Shift::Regressed);
        assert_eq!(cell.ttr.unwrap().shift, Shift::Regressed);
        assert_eq!(c.changes.len(), 15);
        assert_eq!(
            c.changes[0].replay.as_deref(),
            Some(
                "microreboot scenario --app socialNetwork --fault crash --policy constrained \
                 --seed 1 --config x.toml"
            )
        );
        // The same jump seen the other way round is an improvement, not a regression.
        let back = compare(&cur, &base, Thresholds::default(), "");
        assert!(back.regressions().is_empty());
        assert_eq!(back.cells[0].harm_shift, Shift::Improved);
        // A threshold above the whole interval accepts it.
        let lenient = Thresholds {
            harm: 0.99,
            recovery: 0.99,
            ttr_s: f64::INFINITY,
            ..Thresholds::default()
        };
        assert!(compare(&base, &cur, lenient, "").regressions().is_empty());
    }

    #[test]
    fn one_changed_seed_in_ten_is_listed_but_not_significant() {
        let base: Vec<ResultLine> = (1..=10)
            .map(|s| line(agents::PolicyKind::Unconstrained, s, false, Some(40.0)))
            .collect();
        let mut cur = base.clone();
        cur[3] = line(agents::PolicyKind::Unconstrained, 4, true, Some(40.0));
        let c = compare(&base, &cur, Thresholds::default(), "");
        assert!(c.regressions().is_empty(), "{:?}", c.cells);
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].run, 4);
        let md = c.markdown("a", "b", "identical");
        assert!(md.contains("No significant regression"), "{md}");
        assert!(md.contains("--seed 4"), "{md}");
    }

    #[test]
    fn configuration_differences_are_dotted_keys_and_tables_allow_their_keys() {
        let a: toml::Table = "seeds = 2\n[llm]\nx = 1\n[llm.mistakes]\ny = 0.1\n"
            .parse()
            .unwrap();
        let b: toml::Table = "seeds = 3\n[llm]\nx = 1\n[llm.mistakes]\ny = 0.2\nz = 1\n"
            .parse()
            .unwrap();
        let d = config_differences(&a, &b);
        let keys: Vec<&str> = d.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["llm.mistakes.y", "llm.mistakes.z", "seeds"]);
        assert_eq!(d[1].1, None);
        assert!(allowed("llm.mistakes.y", &["llm".into()]));
        assert!(!allowed("llmx", &["llm".into()]));
        assert!(allowed("seeds", &["seeds".into()]));
        assert!(config_differences(&a, &a).is_empty());
    }
}
