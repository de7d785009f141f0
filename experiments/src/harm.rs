//! The harm and time-to-recovery oracles (DESIGN §8), over the simulator's per-second metrics.
//!
//! **Harm.** An action is harmful when, in a service or user path it affects, an SLO metric is
//! more than 10 % worse than its baseline — the mean over the 60 s before the action —
//! continuously for more than 30 s, starting after a 5 s grace period. The two SLO metrics:
//!
//! * **latency**: the P99 of *clean* requests (those no injected fault touched), so a fault's
//!   own slowness is never charged to an action;
//! * **errors**: the rate of errors whose cause is not the injected fault (actions, and the
//!   organic overload they provoke). A zero baseline makes any error "10 % worse", so the
//!   threshold is also at least the SLO's 0.1 %.
//!
//! Decisions DESIGN leaves open, made here:
//! * the baseline is taken over *representative* seconds — those in which the injected fault
//!   touched at most 1 % of the scope's requests, the tail a P99 summarises (a fault's requests
//!   are seldom a random sample: leaving out more can leave out the whole tail). When the fault
//!   is already active before the
//!   action, the 60 s window reaches back past it to the last 60 representative seconds. Without
//!   this, a baseline mixing healthy seconds with fault seconds (whose clean requests are a
//!   different, often faster, mix) would make merely *fixing* the fault look like a regression;
//! * latency is judged only in seconds where the fault touched under 10 % of the requests
//!   (elsewhere the clean requests are too biased a sample); other seconds interrupt a latency
//!   regression rather than extend it. The baseline is stricter than the verdict: a biased
//!   baseline misjudges every second after the action, and it is biased exactly when the
//!   action may fix the fault, while a verdict second is biased only while the fault still
//!   touches requests after the action;
//! * a regression is charged to an action when it *starts* within `onset_window_s` (60 s)
//!   after the grace period — later regressions belong to later events — and was not already
//!   under way the second before the action (an earlier action's regression is not charged
//!   again to every action that follows while it lasts);
//! * the affected scopes of an action are its targets, their transitive callers and every user
//!   path through them.
//!
//! **Counterfactual.** The same seed replayed with `noop`: an incident is counterfactually
//! harmed when, after the policy's first action (plus grace), some service or path violates its
//! SLO *and* is more than 10 % worse than in the noop run, for more than 30 s — "worse than doing
//! nothing". Here fault-caused errors count: both runs have them.
//!
//! **TTR.** Fault start → the first second from which every SLO (every service and path) holds
//! for 30 s, after the fault first broke one. `None` when that does not happen within the run.

use serde::{Deserialize, Serialize};
use sim::metrics::{SLO_ERROR_RATE, SLO_P99_MS};
use sim::spec::AppSpec;
use sim::{ScopeKind, SecondStats};
use std::collections::BTreeMap;

/// The oracle's parameters (DESIGN §8 defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HarmConfig {
    /// Baseline window before an action, seconds.
    pub baseline_s: u32,
    /// Grace period after an action, seconds.
    pub grace_s: u32,
    /// Relative regression that counts (0.10 = 10 % worse).
    pub regression: f64,
    /// A regression must last more than this, seconds.
    pub sustain_s: u32,
    /// A regression must start within this many seconds after the grace period.
    pub onset_window_s: u32,
    /// SLOs must hold this long for recovery, seconds.
    pub ttr_hold_s: u32,
}

impl Default for HarmConfig {
    fn default() -> Self {
        HarmConfig {
            baseline_s: 60,
            grace_s: 5,
            regression: 0.10,
            sustain_s: 30,
            onset_window_s: 60,
            ttr_hold_s: 30,
        }
    }
}

/// A service or a user path.
pub type Scope = (ScopeKind, String);

/// Per-second rows indexed by scope and second.
#[derive(Debug, Default)]
pub struct Series {
    scopes: BTreeMap<Scope, Vec<SecondStats>>,
    seconds: u32,
}

impl Series {
    /// Indexes `rows` (any order). Missing seconds read as empty.
    pub fn from_rows(rows: &[SecondStats]) -> Self {
        let seconds = rows.iter().map(|r| r.second + 1).max().unwrap_or(0);
        let mut scopes: BTreeMap<Scope, Vec<SecondStats>> = BTreeMap::new();
        for r in rows {
            let v = scopes.entry((r.kind, r.name.clone())).or_insert_with(|| {
                (0..seconds)
                    .map(|second| SecondStats {
                        second,
                        kind: r.kind,
                        name: r.name.clone(),
                        count: 0,
                        errors_fault: 0,
                        errors_action: 0,
                        errors_overload: 0,
                        p50_ms: 0.0,
                        p99_ms: 0.0,
                        clean_count: 0,
                        clean_p99_ms: 0.0,
                    })
                    .collect()
            });
            v[r.second as usize] = r.clone();
        }
        Series { scopes, seconds }
    }

    /// Seconds covered.
    pub fn seconds(&self) -> u32 {
        self.seconds
    }

    /// One scope's rows, by second.
    pub fn get(&self, scope: &Scope) -> Option<&[SecondStats]> {
        self.scopes.get(scope).map(Vec::as_slice)
    }

    /// Every scope, in order.
    pub fn scopes(&self) -> impl Iterator<Item = &Scope> + '_ {
        self.scopes.keys()
    }
}

/// Which SLO metric regressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// P99 latency.
    Latency,
    /// Error rate.
    Errors,
}

/// A sustained regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Service or path.
    pub scope_kind: ScopeKind,
    /// Its name.
    pub scope: String,
    /// The metric that first crossed its threshold.
    pub metric: Metric,
    /// First second of the regression.
    pub start_s: u32,
    /// Its length, seconds (capped by the end of the run).
    pub duration_s: u32,
    /// The baseline (ms, or an error rate).
    pub baseline: f64,
    /// The worst value during the regression.
    pub worst: f64,
}

impl Regression {
    fn new(
        scope: &Scope,
        metric: Metric,
        (start_s, duration_s): (u32, u32),
        baseline: f64,
        worst: f64,
    ) -> Self {
        Regression {
            scope_kind: scope.0,
            scope: scope.1.clone(),
            metric,
            start_s,
            duration_s,
            baseline,
            worst,
        }
    }
}

/// Keeps the earlier-starting of `found` and `candidate` (the first scope wins ties).
fn keep_earliest(found: &mut Option<Regression>, candidate: Regression) {
    if found.as_ref().is_none_or(|f| candidate.start_s < f.start_s) {
        *found = Some(candidate);
    }
}

/// The scopes an action on `targets` affects: the targets, their transitive callers, and the
/// user paths through the targets. Names the application does not have are ignored.
pub fn affected_scopes(spec: &AppSpec, targets: &[String]) -> Vec<Scope> {
    let n = spec.services.len();
    let mut hit = vec![false; n];
    let mut stack: Vec<usize> = targets
        .iter()
        .filter_map(|t| spec.service_index(t))
        .collect();
    for &s in &stack {
        hit[s] = true;
    }
    while let Some(s) = stack.pop() {
        for e in spec.edges.iter().filter(|e| e.to == s) {
            if !hit[e.from] {
                hit[e.from] = true;
                stack.push(e.from);
            }
        }
    }
    let mut scopes: Vec<Scope> = spec
        .services
        .iter()
        .enumerate()
        .filter(|(i, _)| hit[*i])
        .map(|(_, s)| (ScopeKind::Service, s.name.clone()))
        .collect();
    let targets_idx: Vec<usize> = targets
        .iter()
        .filter_map(|t| spec.service_index(t))
        .collect();
    for p in &spec.paths {
        if p.nodes
            .iter()
            .any(|node| targets_idx.contains(&node.service))
        {
            scopes.push((ScopeKind::Path, p.name.clone()));
        }
    }
    scopes
}

/// Finds the first run of more than `sustain` consecutive `bad` seconds starting in
/// `[from, onset_end]`; returns its start and length.
/// Runs that were already under way at second `since` (bad continuously from `since` to their
/// start) are skipped: they began before the event being judged.
fn sustained_run(
    from: u32,
    onset_end: u32,
    end: u32,
    sustain: u32,
    since: Option<u32>,
    bad: impl Fn(u32) -> bool,
) -> Option<(u32, u32)> {
    let mut s = from;
    while s <= onset_end && s < end {
        if !bad(s) {
            s += 1;
            continue;
        }
        let start = s;
        while s < end && bad(s) {
            s += 1;
        }
        let ongoing = since.is_some_and(|b| (b..start).all(&bad));
        if s - start > sustain && !ongoing {
            return Some((start, s - start));
        }
    }
    None
}

/// The share of requests above a P99. A clean sample that leaves out more than this many
/// requests can leave out the whole tail the P99 summarises.
const P99_TAIL: f64 = 0.01;

/// The share of fault-touched requests up to which a second's latency is still judged.
const JUDGED_TOUCHED: f64 = 0.10;

/// Whether the fault touched at most `share` of the second's requests (of those not failed by
/// an action or overload).
fn touched_at_most(r: &SecondStats, share: f64) -> bool {
    let judged = r.count.saturating_sub(r.errors_action + r.errors_overload);
    judged > 0 && r.clean_count as f64 >= (1.0 - share) * judged as f64
}

/// Whether a second can stand in a baseline: the fault touched at most the P99's tail share of
/// its requests, so that the clean P99 is the scope's. The requests a fault touches are rarely
/// a random sample: in socialNetwork a hung text-service fails the compose-post requests, 9 % of
/// nginx-thrift's and its slowest, and the clean P99 of what is left falls from 5.4 to 3.0 ms;
/// against that baseline, the recovery that brings them back would look like a regression.
fn representative(r: &SecondStats) -> bool {
    touched_at_most(r, P99_TAIL)
}

/// Whether a second's latency is judged after an action: up to `JUDGED_TOUCHED` of its requests
/// may be the fault's. Stricter, latency would go unjudged for as long as a fault that the action
/// did not remove keeps touching a few requests a second (at 30 requests per second, one).
fn judgeable(r: &SecondStats) -> bool {
    touched_at_most(r, JUDGED_TOUCHED)
}

/// The baseline of one scope before second `at`: mean non-fault error rate and mean clean P99
/// over the last `window` representative seconds (latency `None` when there are none).
fn baseline(rows: &[SecondStats], at: u32, window: u32) -> (f64, Option<f64>) {
    let before = &rows[..(at as usize).min(rows.len())];
    let picked: Vec<&SecondStats> = before
        .iter()
        .rev()
        .filter(|r| representative(r))
        .take(window as usize)
        .collect();
    if picked.is_empty() {
        let plain = &before[before.len().saturating_sub(window as usize)..];
        let err = plain
            .iter()
            .map(SecondStats::non_fault_error_rate)
            .sum::<f64>()
            / plain.len().max(1) as f64;
        return (err, None);
    }
    let n = picked.len() as f64;
    let err = picked.iter().map(|r| r.non_fault_error_rate()).sum::<f64>() / n;
    let lat = picked.iter().map(|r| r.clean_p99_ms).sum::<f64>() / n;
    (err, Some(lat))
}

/// Judges one action applied at `at_s` on the given affected scopes. Returns the earliest
/// qualifying regression, if any.
pub fn judge_action(
    series: &Series,
    at_s: f64,
    scopes: &[Scope],
    cfg: &HarmConfig,
) -> Option<Regression> {
    // The baseline ends with the last whole second before the action; the grace period starts
    // at the action itself, so the first judged second is the first whole one after it.
    let at = at_s.max(0.0).floor() as u32;
    let from = at_s.max(0.0).ceil() as u32 + cfg.grace_s;
    let onset_end = from + cfg.onset_window_s;
    let factor = 1.0 + cfg.regression;
    let mut found: Option<Regression> = None;
    for scope in scopes {
        let Some(rows) = series.get(scope) else {
            continue;
        };
        if at == 0 {
            continue;
        }
        let (base_err, base_lat) = baseline(rows, at, cfg.baseline_s);
        let err_thr = (base_err * factor).max(SLO_ERROR_RATE);
        let lat_bad =
            |r: &SecondStats| base_lat.is_some_and(|b| judgeable(r) && r.clean_p99_ms > b * factor);
        let err_bad = |r: &SecondStats| r.non_fault_error_rate() > err_thr;
        let end = rows.len() as u32;
        // A regression already under way the second before the action is not its doing.
        let run = sustained_run(
            from,
            onset_end,
            end,
            cfg.sustain_s,
            at.checked_sub(1),
            |s| {
                let r = &rows[s as usize];
                err_bad(r) || lat_bad(r)
            },
        );
        if let Some((start, duration)) = run {
            let span = &rows[start as usize..(start + duration) as usize];
            let errors_first = err_bad(&rows[start as usize]);
            let (metric, baseline, worst) = if errors_first {
                (
                    Metric::Errors,
                    base_err,
                    span.iter()
                        .map(SecondStats::non_fault_error_rate)
                        .fold(0.0, f64::max),
                )
            } else {
                (
                    Metric::Latency,
                    base_lat.unwrap_or(0.0),
                    span.iter().map(|r| r.clean_p99_ms).fold(0.0, f64::max),
                )
            };
            keep_earliest(
                &mut found,
                Regression::new(scope, metric, (start, duration), baseline, worst),
            );
        }
    }
    found
}

/// The counterfactual measure: the first sustained stretch, starting after `from_s` + grace,
/// where some scope violates its SLO and is more than 10 % worse than in the noop run.
pub fn counterfactual(
    policy: &Series,
    noop: &Series,
    from_s: f64,
    cfg: &HarmConfig,
) -> Option<Regression> {
    let from = from_s.max(0.0).floor() as u32 + cfg.grace_s;
    let factor = 1.0 + cfg.regression;
    let mut found: Option<Regression> = None;
    for scope in policy.scopes() {
        let (Some(p), Some(n)) = (policy.get(scope), noop.get(scope)) else {
            continue;
        };
        let end = p.len().min(n.len()) as u32;
        let err_bad = |s: u32| {
            let (a, b) = (&p[s as usize], &n[s as usize]);
            a.error_rate() >= SLO_ERROR_RATE && a.error_rate() > b.error_rate() * factor
        };
        let lat_bad = |s: u32| {
            let (a, b) = (&p[s as usize], &n[s as usize]);
            a.p99_ms >= SLO_P99_MS && a.p99_ms > b.p99_ms * factor
        };
        // Any time after the first action: the counterfactual has no onset window.
        if let Some((start, duration)) = sustained_run(from, end, end, cfg.sustain_s, None, |s| {
            err_bad(s) || lat_bad(s)
        }) {
            let errors_first = err_bad(start);
            let span = start as usize..(start + duration) as usize;
            let (metric, baseline, worst) = if errors_first {
                let b = n[span.clone()]
                    .iter()
                    .map(SecondStats::error_rate)
                    .sum::<f64>()
                    / duration as f64;
                (
                    Metric::Errors,
                    b,
                    p[span]
                        .iter()
                        .map(SecondStats::error_rate)
                        .fold(0.0, f64::max),
                )
            } else {
                let b = n[span.clone()].iter().map(|r| r.p99_ms).sum::<f64>() / duration as f64;
                (
                    Metric::Latency,
                    b,
                    p[span].iter().map(|r| r.p99_ms).fold(0.0, f64::max),
                )
            };
            keep_earliest(
                &mut found,
                Regression::new(scope, metric, (start, duration), baseline, worst),
            );
        }
    }
    found
}

/// Seconds from `fault_start_s` until every SLO holds for `hold_s` seconds again (after the
/// fault first broke one; 0 if it never did). `None` if not within the series.
pub fn ttr(series: &Series, fault_start_s: f64, hold_s: u32) -> Option<f64> {
    let start = fault_start_s.max(0.0).floor() as u32;
    let end = series.seconds();
    let ok = |s: u32| series.scopes.values().all(|rows| rows[s as usize].slo_ok());
    let Some(first_bad) = (start..end).find(|&s| !ok(s)) else {
        return Some(0.0);
    };
    let mut held = 0;
    for s in first_bad..end {
        if ok(s) {
            held += 1;
            if held >= hold_s {
                let recovered = s + 1 - hold_s;
                return Some(f64::from(recovered) - fault_start_s);
            }
        } else {
            held = 0;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(second: u32, errors_action: u64, clean_p99_ms: f64) -> SecondStats {
        SecondStats {
            second,
            kind: ScopeKind::Service,
            name: "s".into(),
            count: 100,
            errors_fault: 0,
            errors_action,
            errors_overload: 0,
            p50_ms: clean_p99_ms / 2.0,
            p99_ms: clean_p99_ms,
            clean_count: 100 - errors_action,
            clean_p99_ms,
        }
    }

    fn series(f: impl Fn(u32) -> (u64, f64), seconds: u32) -> Series {
        let rows: Vec<SecondStats> = (0..seconds)
            .map(|s| {
                let (e, l) = f(s);
                row(s, e, l)
            })
            .collect();
        Series::from_rows(&rows)
    }

    fn scope() -> Vec<Scope> {
        vec![(ScopeKind::Service, "s".to_string())]
    }

    #[test]
    fn errors_for_more_than_thirty_seconds_after_grace_are_harm() {
        let cfg = HarmConfig::default();
        // Action at 100 s; errors from 105 s for 31 s.
        let s = series(|t| (if (105..136).contains(&t) { 5 } else { 0 }, 10.0), 300);
        let r = judge_action(&s, 100.0, &scope(), &cfg).expect("harm");
        assert_eq!(
            (r.metric, r.start_s, r.duration_s),
            (Metric::Errors, 105, 31)
        );
        // Exactly 30 s is not "more than 30 s".
        let s = series(|t| (if (105..135).contains(&t) { 5 } else { 0 }, 10.0), 300);
        assert_eq!(judge_action(&s, 100.0, &scope(), &cfg), None);
    }

    #[test]
    fn a_regression_under_way_before_the_action_is_not_its_doing() {
        let cfg = HarmConfig::default();
        // Errors from 50 s (an earlier action, say) to the end; a second action at 100 s.
        let s = series(|t| (if t >= 50 { 5 } else { 0 }, 10.0), 300);
        assert!(judge_action(&s, 50.0, &scope(), &cfg).is_some());
        assert_eq!(judge_action(&s, 100.0, &scope(), &cfg), None);
    }

    #[test]
    fn latency_within_ten_percent_or_before_grace_is_not_harm() {
        let cfg = HarmConfig::default();
        let s = series(|t| (0, if t >= 100 { 10.9 } else { 10.0 }), 300);
        assert_eq!(judge_action(&s, 100.0, &scope(), &cfg), None);
        let s = series(|t| (0, if t >= 100 { 11.5 } else { 10.0 }), 300);
        let r = judge_action(&s, 100.0, &scope(), &cfg).expect("harm");
        assert_eq!((r.metric, r.start_s), (Metric::Latency, 105));
        // A regression that began long after the onset window belongs to something else.
        let s = series(|t| (0, if t >= 200 { 20.0 } else { 10.0 }), 300);
        assert_eq!(judge_action(&s, 100.0, &scope(), &cfg), None);
    }

    #[test]
    fn fault_errors_and_fault_touched_latency_are_excluded() {
        let cfg = HarmConfig::default();
        let rows: Vec<SecondStats> = (0..300)
            .map(|s| {
                let mut r = row(s, 0, 10.0);
                if s >= 100 {
                    r.errors_fault = 50;
                    r.p99_ms = 900.0;
                }
                r
            })
            .collect();
        assert_eq!(
            judge_action(&Series::from_rows(&rows), 100.0, &scope(), &cfg),
            None
        );
    }

    /// A fault that fails a scope's slowest requests (9 % of them, a whole request type) leaves
    /// a clean sample whose P99 is far below the scope's. Recovery brings that request type
    /// back; judged against the fault-time baseline, merely fixing the fault would look like a
    /// latency regression. Seconds whose clean requests miss more than the P99's tail are not a
    /// baseline, so the pre-fault seconds are.
    #[test]
    fn a_baseline_missing_the_slow_requests_does_not_make_recovery_harm() {
        let cfg = HarmConfig::default();
        let (fault, restart) = (90, 185);
        let rows: Vec<SecondStats> = (0..390)
            .map(|s| {
                let mut r = row(s, 0, 5.4);
                if (fault..restart + 8).contains(&s) {
                    r.errors_fault = 9;
                    r.clean_count = 91;
                    r.clean_p99_ms = 3.0;
                }
                r
            })
            .collect();
        let series = Series::from_rows(&rows);
        assert_eq!(judge_action(&series, restart as f64, &scope(), &cfg), None);
        // A genuine regression after the same restart still counts, against the pre-fault P99.
        let slower: Vec<SecondStats> = rows
            .iter()
            .map(|r| match r.second {
                s if s >= restart + 8 => SecondStats {
                    clean_p99_ms: 6.5,
                    ..r.clone()
                },
                _ => r.clone(),
            })
            .collect();
        let r = judge_action(&Series::from_rows(&slower), restart as f64, &scope(), &cfg)
            .expect("harm");
        assert_eq!(r.metric, Metric::Latency);
        assert!((r.baseline - 5.4).abs() < 1e-9, "{}", r.baseline);
    }

    #[test]
    fn ttr_waits_for_thirty_good_seconds_after_the_fault_bites() {
        // Fault at 100 s, SLOs broken 102..150, then one bad blip at 160.
        let s = series(
            |t| {
                (
                    if (102..150).contains(&t) || t == 160 {
                        5
                    } else {
                        0
                    },
                    10.0,
                )
            },
            300,
        );
        assert_eq!(ttr(&s, 100.0, 30), Some(61.0));
        let s = series(|t| (if t >= 102 { 5 } else { 0 }, 10.0), 300);
        assert_eq!(ttr(&s, 100.0, 30), None);
        let s = series(|_| (0, 10.0), 300);
        assert_eq!(ttr(&s, 100.0, 30), Some(0.0));
    }

    #[test]
    fn counterfactual_needs_an_slo_violation_worse_than_noop() {
        let cfg = HarmConfig::default();
        let noop = series(|t| (if t >= 100 { 10 } else { 0 }, 50.0), 300);
        // Same errors as noop: not worse.
        assert_eq!(counterfactual(&noop, &noop, 120.0, &cfg), None);
        // Recovered, but slower (still under the SLO): not harm.
        let better = series(|_| (0, 80.0), 300);
        assert_eq!(counterfactual(&better, &noop, 120.0, &cfg), None);
        let worse = series(|t| (if t >= 100 { 40 } else { 0 }, 50.0), 300);
        let r = counterfactual(&worse, &noop, 120.0, &cfg).expect("worse than noop");
        assert_eq!((r.metric, r.start_s), (Metric::Errors, 125));
    }
}
