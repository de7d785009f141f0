//! Tables computed from result lines — and only from them, so every number in the report can be
//! traced to `results.jsonl`.

use agents::{PolicyId, PolicyKind};
use experiments::offline::IndustrialGraph;
use experiments::online::{Actor, Execution};
use experiments::parallel::Mix;
use experiments::record::{GraphRecord, OfflineRecord, OnlineRecord, ParallelRecord, ResultLine};
use faults::FaultType;
use kernel::Rule;
use std::collections::{BTreeMap, BTreeSet};

/// A proportion with its 95 % Wilson score interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Proportion {
    /// Successes.
    pub k: u32,
    /// Trials.
    pub n: u32,
}

impl Proportion {
    /// The point estimate (0 with no trials).
    pub fn rate(self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            f64::from(self.k) / f64::from(self.n)
        }
    }

    /// The 95 % Wilson score interval.
    pub fn wilson(self) -> (f64, f64) {
        if self.n == 0 {
            return (0.0, 1.0);
        }
        let z = 1.959_963_984_540_054_f64;
        let n = f64::from(self.n);
        let p = self.rate();
        let denom = 1.0 + z * z / n;
        let centre = (p + z * z / (2.0 * n)) / denom;
        let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
        ((centre - half).max(0.0), (centre + half).min(1.0))
    }

    /// `12.5% [8.1, 18.7] (10/80)`.
    pub fn display(self) -> String {
        let (lo, hi) = self.wilson();
        format!(
            "{:.1}% [{:.1}, {:.1}] ({}/{})",
            100.0 * self.rate(),
            100.0 * lo,
            100.0 * hi,
            self.k,
            self.n
        )
    }

    pub(crate) fn add(&mut self, hit: bool) {
        self.n += 1;
        self.k += u32::from(hit);
    }
}

/// Nearest-rank percentile of values where `None` is "not within the run" (sorts last).
/// Returns `None` when the percentile falls on such a value.
pub fn censored_percentile(values: &[Option<f64>], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values.iter().map(|x| x.unwrap_or(f64::INFINITY)).collect();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    let x = v[rank.clamp(1, v.len()) - 1];
    x.is_finite().then_some(x)
}

/// The result lines, split by experiment.
#[derive(Debug, Default)]
pub struct Results<'a> {
    /// Online runs.
    pub online: Vec<&'a OnlineRecord>,
    /// Offline incidents × policies.
    pub offline: Vec<&'a OfflineRecord>,
    /// Concurrent-recovery runs.
    pub parallel: Vec<&'a ParallelRecord>,
    /// Graph shapes.
    pub graphs: Vec<&'a GraphRecord>,
}

impl<'a> Results<'a> {
    /// Splits `lines`.
    pub fn new(lines: &'a [ResultLine]) -> Self {
        let mut r = Results::default();
        for line in lines {
            match line {
                ResultLine::Online(x) => r.online.push(x),
                ResultLine::Offline(x) => r.offline.push(x),
                ResultLine::Parallel(x) => r.parallel.push(x),
                ResultLine::Graph(x) => r.graphs.push(x),
            }
        }
        r
    }

    /// Online runs of the main matrix (error factor 1).
    pub fn online_main(&self) -> impl Iterator<Item = &'a OnlineRecord> + '_ {
        self.online
            .iter()
            .copied()
            .filter(|r| r.error_factor == 1.0)
    }

    /// Offline outcomes of the main matrix.
    pub fn offline_main(&self) -> impl Iterator<Item = &'a OfflineRecord> + '_ {
        self.offline
            .iter()
            .copied()
            .filter(|r| r.error_factor == 1.0)
    }

    /// Policies present, in report order (external agents after the built-ins).
    pub fn policies(&self) -> Vec<PolicyId> {
        let present: BTreeSet<PolicyId> = self
            .online_main()
            .map(|r| r.policy)
            .chain(self.offline_main().map(|r| r.outcome.policy.into()))
            .collect();
        // `PolicyId`'s order is report order: the built-ins', then external agents by name.
        present.into_iter().collect()
    }

    /// Fault types present, in DESIGN order.
    pub fn faults(&self) -> Vec<FaultType> {
        let present: BTreeSet<FaultType> = self
            .online
            .iter()
            .map(|r| r.fault)
            .chain(self.offline.iter().map(|r| r.outcome.fault))
            .collect();
        FaultType::ALL
            .into_iter()
            .filter(|f| present.contains(f))
            .collect()
    }

    /// Online harm per policy × fault (and `all`), main matrix.
    pub fn online_harm(&self) -> BTreeMap<(PolicyId, String), Proportion> {
        let mut t: BTreeMap<(PolicyId, String), Proportion> = BTreeMap::new();
        for r in self.online_main() {
            for key in [r.fault.to_string(), "all".to_string()] {
                t.entry((r.policy, key)).or_default().add(r.harmful);
            }
        }
        t
    }

    /// Online counterfactual harm (worse than noop) per policy, main matrix.
    pub fn online_counterfactual(&self) -> BTreeMap<PolicyId, Proportion> {
        let mut t: BTreeMap<PolicyId, Proportion> = BTreeMap::new();
        for r in self.online_main() {
            t.entry(r.policy)
                .or_default()
                .add(r.counterfactual.is_some());
        }
        t
    }

    /// Offline harm per graph × policy × fault (and `all`), main matrix.
    pub fn offline_harm(&self) -> BTreeMap<(IndustrialGraph, PolicyId, String), Proportion> {
        let mut t: BTreeMap<(IndustrialGraph, PolicyId, String), Proportion> = BTreeMap::new();
        for r in self.offline_main() {
            for key in [r.outcome.fault.to_string(), "all".to_string()] {
                t.entry((r.graph, r.outcome.policy.into(), key))
                    .or_default()
                    .add(r.harmful());
            }
        }
        t
    }

    /// TTR values per policy × fault (and `all`), main matrix.
    pub fn ttr(&self) -> BTreeMap<(PolicyId, String), Vec<Option<f64>>> {
        let mut t: BTreeMap<(PolicyId, String), Vec<Option<f64>>> = BTreeMap::new();
        for r in self.online_main() {
            for key in [r.fault.to_string(), "all".to_string()] {
                t.entry((r.policy, key)).or_default().push(r.ttr_s);
            }
        }
        t
    }

    /// Online agent actions per (action kind, policy): how many were harmful out of how many
    /// took effect (DESIGN §8's per-action harm).
    pub fn harm_by_action(&self) -> BTreeMap<(String, PolicyId), Proportion> {
        let mut t: BTreeMap<(String, PolicyId), Proportion> = BTreeMap::new();
        for r in self.online_main() {
            for a in r.actions.iter().filter(|a| a.actor == Actor::Agent) {
                t.entry((a.kind.clone(), r.policy))
                    .or_default()
                    .add(a.harm.is_some());
            }
        }
        t
    }

    /// Kernel rejections by rule id: (online constrained runs, offline constrained incidents, all
    /// experiments including sweeps, the oracle and concurrent recovery).
    pub fn rejections_by_rule(&self) -> BTreeMap<Rule, (u32, u32, u32)> {
        let mut t: BTreeMap<Rule, (u32, u32, u32)> =
            Rule::ALL.iter().map(|&r| (r, (0, 0, 0))).collect();
        for r in &self.online {
            for (id, n) in &r.rejected_rules {
                if let Some(rule) = Rule::from_id(id) {
                    let e = t.get_mut(&rule).expect("every rule");
                    if r.error_factor == 1.0 && r.policy == PolicyKind::Constrained {
                        e.0 += n;
                    }
                    e.2 += n;
                }
            }
        }
        for r in &self.offline {
            for rule in r.outcome.rejections.iter().flatten() {
                let e = t.get_mut(rule).expect("every rule");
                if r.error_factor == 1.0 && r.outcome.policy == PolicyKind::Constrained {
                    e.1 += 1;
                }
                e.2 += 1;
            }
        }
        for r in &self.parallel {
            t.get_mut(&Rule::LockConflict).expect("every rule").2 += r.lock_conflicts;
        }
        t
    }

    /// Sensitivity: harm per (experiment, factor, policy), for the two LLM policies. The online
    /// rows use only the seeds the sweep ran, at every factor including 1.
    pub fn sensitivity(&self) -> BTreeMap<(String, u64, PolicyId), Proportion> {
        let swept_seeds: BTreeSet<u64> = self
            .online
            .iter()
            .filter(|r| r.error_factor != 1.0)
            .map(|r| r.seed)
            .collect();
        let llm = |p: PolicyId| {
            matches!(
                p.builtin(),
                Some(PolicyKind::Unconstrained | PolicyKind::Constrained)
            )
        };
        let mut t: BTreeMap<(String, u64, PolicyId), Proportion> = BTreeMap::new();
        let key = |f: f64| (f * 1000.0).round() as u64;
        for r in self
            .online
            .iter()
            .filter(|r| llm(r.policy) && swept_seeds.contains(&r.seed))
        {
            t.entry(("online".into(), key(r.error_factor), r.policy))
                .or_default()
                .add(r.harmful);
        }
        let swept_incidents: BTreeSet<(IndustrialGraph, u32)> = self
            .offline
            .iter()
            .filter(|r| r.error_factor != 1.0)
            .map(|r| (r.graph, r.incident))
            .collect();
        for r in self.offline.iter().filter(|r| {
            llm(r.outcome.policy.into()) && swept_incidents.contains(&(r.graph, r.incident))
        }) {
            t.entry((
                format!("offline {}", r.graph.as_str()),
                key(r.error_factor),
                r.outcome.policy.into(),
            ))
            .or_default()
            .add(r.harmful());
        }
        t
    }

    /// Concurrent recovery per cell (mix × incidents), pooled over apps and seeds: each
    /// (app, seed) with both a parallel and a serial run is one pair.
    pub fn parallel_cells(&self) -> BTreeMap<(Mix, u32), ParallelCell> {
        type Pair<'r> = [Option<&'r ParallelRecord>; 2];
        let mut pairs: BTreeMap<(Mix, u32, &str, u64), Pair<'_>> = BTreeMap::new();
        for r in &self.parallel {
            let slot = usize::from(r.execution == Execution::Serial);
            pairs
                .entry((r.mix, r.count, r.app.as_str(), r.seed))
                .or_default()[slot] = Some(r);
        }
        let mut cells: BTreeMap<(Mix, u32), ParallelCell> = BTreeMap::new();
        for ((mix, count, app, _), pair) in pairs {
            let [Some(par), Some(ser)] = pair else {
                continue;
            };
            let c = cells.entry((mix, count)).or_default();
            c.pairs += 1;
            c.apps.insert(app.to_string());
            c.same_resolved += u32::from(par.resolved == ser.resolved);
            let ratio = |s: Option<f64>, p: Option<f64>| match (s, p) {
                (Some(s), Some(p)) if p > 0.0 => Some(s / p),
                _ => None,
            };
            c.makespan_speedups
                .extend(ratio(ser.makespan_s, par.makespan_s));
            c.ttr_speedups.extend(ratio(ser.ttr_s, par.ttr_s));
            for r in [par, ser] {
                c.overlap_violations += r.overlap_violations;
                c.lock_conflicts += r.lock_conflicts;
            }
            c.serial_makespans.extend(ser.makespan_s);
            c.parallel_makespans.extend(par.makespan_s);
            c.max_concurrent = c.max_concurrent.max(par.max_concurrent_plans);
        }
        cells
    }

    /// Coverage: how often each rule fired, each rollback kind happened, and which action kinds
    /// were applied in runs that recovered from each fault type.
    pub fn coverage(&self) -> Coverage {
        // Every behaviour of the raw-command agent is listed once it ran, occurred or not.
        let raw_agent_ran = self
            .online
            .iter()
            .any(|r| r.policy == PolicyKind::Unconstrained);
        let mut c = Coverage {
            behaviours: agents::Behaviour::ALL
                .into_iter()
                .filter(|_| raw_agent_ran)
                .map(|b| (b.as_str().to_string(), 0))
                .collect(),
            ..Coverage::default()
        };
        for (rule, (_, _, all)) in self.rejections_by_rule() {
            c.rules.insert(rule, all);
        }
        for r in &self.online {
            c.rollbacks += r.rollbacks;
            c.lease_expiries += r.lease_expiries;
            c.lease_renewals += r.lease_renewals;
            c.watchdog_undos += r.watchdog_undos;
            c.breakers_closed += r.breakers_closed;
            c.aborted_plans += r.plans_aborted;
            *c.faults.entry(r.fault).or_default() += 1;
            for (b, n) in &r.behaviours {
                *c.behaviours.entry(b.clone()).or_default() += u32::from(*n > 0);
            }
            if r.ttr_s.is_some() {
                for a in &r.actions {
                    *c.remedies.entry((r.fault, a.kind.clone())).or_default() += 1;
                }
            }
        }
        for r in &self.offline {
            *c.faults.entry(r.outcome.fault).or_default() += 1;
        }
        c
    }
}

/// The concurrent-recovery pairs of one cell (mix × incidents).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParallelCell {
    /// (app, seed) pairs with both executions.
    pub pairs: u32,
    /// The apps they came from.
    pub apps: BTreeSet<String>,
    /// Pairs whose two runs resolved the same incidents.
    pub same_resolved: u32,
    /// Serial ÷ parallel makespan, per pair with both.
    pub makespan_speedups: Vec<f64>,
    /// Serial ÷ parallel TTR, per pair where both recovered.
    pub ttr_speedups: Vec<f64>,
    /// Serial makespans, seconds.
    pub serial_makespans: Vec<f64>,
    /// Parallel makespans, seconds.
    pub parallel_makespans: Vec<f64>,
    /// Most plans executing at once in a parallel run.
    pub max_concurrent: u32,
    /// Overlapping concurrent plans, both executions (must be 0).
    pub overlap_violations: u32,
    /// R13 rejections, both executions.
    pub lock_conflicts: u32,
}

/// What the experiments exercised ("sometimes" assertions).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Coverage {
    /// Rejections per rule, all experiments.
    pub rules: BTreeMap<Rule, u32>,
    /// Undo and compensation operations.
    pub rollbacks: u32,
    /// Leases reverted.
    pub lease_expiries: u32,
    /// Leases renewed on evidence.
    pub lease_renewals: u32,
    /// Steps the watchdog took back.
    pub watchdog_undos: u32,
    /// Half-open breakers closed early.
    pub breakers_closed: u32,
    /// Aborted plans.
    pub aborted_plans: u32,
    /// Runs or incidents per fault type.
    pub faults: BTreeMap<FaultType, u32>,
    /// Actions applied in recovered online runs, per fault type × action kind.
    pub remedies: BTreeMap<(FaultType, String), u32>,
    /// Online runs in which each named behaviour of the raw-command agent occurred (every
    /// behaviour when the agent ran; empty otherwise).
    pub behaviours: BTreeMap<String, u32>,
}

impl Coverage {
    /// What was never exercised: rules that never fired and fault types never injected.
    pub fn gaps(&self) -> Vec<String> {
        let mut gaps: Vec<String> = self
            .rules
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(r, _)| format!("rule {} never fired", r.id()))
            .collect();
        for f in FaultType::ALL {
            if self.faults.get(&f).copied().unwrap_or(0) == 0 {
                gaps.push(format!("fault type {f} never injected"));
            }
        }
        for (b, n) in &self.behaviours {
            if *n == 0 {
                gaps.push(format!(
                    "behaviour {b} of the raw-command agent never occurred"
                ));
            }
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_a_known_value() {
        // 10/100: Wilson 95% interval is [0.0552, 0.1744].
        let (lo, hi) = Proportion { k: 10, n: 100 }.wilson();
        assert!(
            (lo - 0.0552).abs() < 1e-3 && (hi - 0.1744).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (lo, hi) = Proportion { k: 0, n: 20 }.wilson();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.161).abs() < 1e-3, "{hi}");
    }

    #[test]
    fn censored_percentiles_sort_unrecovered_last() {
        let v = [Some(10.0), None, Some(30.0), Some(20.0)];
        assert_eq!(censored_percentile(&v, 0.5), Some(20.0));
        assert_eq!(censored_percentile(&v, 0.9), None);
        assert_eq!(censored_percentile(&[], 0.5), None);
    }
}
