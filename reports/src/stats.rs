//! The statistics behind `microreboot compare` and the report: the normal distribution, Wilson
//! score intervals at any confidence, Newcombe's hybrid score interval for a difference of two
//! proportions, the Mann–Whitney rank test for times to recovery where "not recovered" ranks
//! last, and the distribution-free order-statistic interval of a median.
//!
//! Everything here is closed-form or a rank count: no resampling, so no seed is needed and the
//! same inputs always give the same bits.

/// The standard normal CDF, Φ(x), from the complementary error function (musl's, to double
/// precision, through the `libm` crate).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile, Φ⁻¹(p) for p in (0, 1), by bisection on [`normal_cdf`]
/// (100 halvings of [-40, 40]: as exact as the CDF; this runs once per comparison).
pub fn normal_quantile(p: f64) -> f64 {
    assert!(
        p > 0.0 && p < 1.0,
        "normal_quantile({p}): p must be in (0, 1)"
    );
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The Wilson score interval of `k` successes in `n` trials at normal quantile `z`
/// (`(0, 1)` for no trials).
pub fn wilson(k: u32, n: u32, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = f64::from(n);
    let p = f64::from(k) / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score interval (his method 10, 1998) for the difference `k2/n2 − k1/n1`
/// of two independent proportions, built from the two Wilson intervals at quantile `z`. Unlike
/// the Wald interval it stays inside [−1, 1] and behaves at 0/n and n/n, which is where harm
/// rates of a good policy live.
pub fn newcombe(k1: u32, n1: u32, k2: u32, n2: u32, z: f64) -> (f64, f64) {
    let rate = |k: u32, n: u32| {
        if n == 0 {
            0.0
        } else {
            f64::from(k) / f64::from(n)
        }
    };
    let (p1, p2) = (rate(k1, n1), rate(k2, n2));
    let (l1, u1) = wilson(k1, n1, z);
    let (l2, u2) = wilson(k2, n2, z);
    let d = p2 - p1;
    let lower = d - ((p2 - l2).powi(2) + (u1 - p1).powi(2)).sqrt();
    let upper = d + ((u2 - p2).powi(2) + (p1 - l1).powi(2)).sqrt();
    (lower, upper)
}

/// A Mann–Whitney U test of `current` against `baseline`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankTest {
    /// U of `current`: the number of (baseline, current) pairs where current is larger, ties
    /// counting one half.
    pub u: f64,
    /// U / (n1 · n2): the probability that a current value exceeds a baseline one (0.5: no
    /// shift).
    pub superiority: f64,
    /// Two-sided p-value, normal approximation with tie and continuity corrections (1 when
    /// every value ties).
    pub p_two_sided: f64,
}

/// The Mann–Whitney U test on values where `None` (not recovered within the run) is larger than
/// every number and ties with the other `None`s. `None` when a side is empty.
pub fn mann_whitney(baseline: &[Option<f64>], current: &[Option<f64>]) -> Option<RankTest> {
    let (n1, n2) = (baseline.len(), current.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let key = |x: &Option<f64>| x.unwrap_or(f64::INFINITY);
    let mut all: Vec<(f64, bool)> = baseline
        .iter()
        .map(|x| (key(x), false))
        .chain(current.iter().map(|x| (key(x), true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mid-ranks over runs of ties; the tie term Σ(t³ − t) corrects the variance.
    let (mut rank_sum_current, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_sum_current += mid_rank * all[i..=j].iter().filter(|(_, c)| *c).count() as f64;
        i = j + 1;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u = rank_sum_current - n2f * (n2f + 1.0) / 2.0;
    let mean = n1f * n2f / 2.0;
    let n = n1f + n2f;
    let variance = n1f * n2f / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    let p_two_sided = if variance <= 0.0 {
        1.0
    } else {
        let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
        (2.0 * (1.0 - normal_cdf(z))).min(1.0)
    };
    Some(RankTest {
        u,
        superiority: u / (n1f * n2f),
        p_two_sided,
    })
}

/// A median with its distribution-free confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MedianInterval {
    /// The sample median.
    pub median: f64,
    /// Lower bound: the `k`-th smallest value.
    pub lo: f64,
    /// Upper bound: the `k`-th largest value.
    pub hi: f64,
    /// The interval's exact coverage, `1 − 2·P(Bin(n, ½) < k)` (at least the asked confidence
    /// when the sample allows it; with fewer than six values, `[min, max]` covers less than 95 %).
    pub coverage: f64,
}

/// The median of `values` and the order-statistic interval `[x₍ₖ₎, x₍ₙ₋ₖ₊₁₎]` with the largest
/// `k` whose coverage is at least `confidence` (the sign-test interval: it assumes only that the
/// values are independent draws, not their distribution). `None` for no values.
pub fn median_interval(values: &[f64], confidence: f64) -> Option<MedianInterval> {
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        x[n / 2]
    } else {
        0.5 * (x[n / 2 - 1] + x[n / 2])
    };
    // [x₍ₖ₎, x₍ₙ₋ₖ₊₁₎] misses the median with probability 2·P(Bin(n, ½) ≤ k − 1); grow k while
    // the coverage stays at least `confidence` (k = 1, [min, max], when nothing reaches it).
    let half_n = 0.5_f64.powi(n as i32);
    let mut coefficient = 1.0_f64; // C(n, j)
    let mut tail = 0.0_f64; // P(Bin ≤ j)
    let (mut k, mut coverage) = (1, 1.0 - 2.0 * half_n);
    for j in 0..n / 2 {
        tail += coefficient * half_n;
        if 1.0 - 2.0 * tail < confidence {
            break;
        }
        (k, coverage) = (j + 1, 1.0 - 2.0 * tail);
        coefficient = coefficient * (n - j) as f64 / (j + 1) as f64;
    }
    Some(MedianInterval {
        median,
        lo: x[k - 1],
        hi: x[n - k],
        coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_intervals_are_the_sign_test_order_statistics() {
        // n = 9: P(Bin(9, ½) ≤ 1) = 10/512, so k = 2 covers 1 − 20/512 ≈ 96.1 %.
        let v: Vec<f64> = (1..=9).rev().map(f64::from).collect();
        let m = median_interval(&v, 0.95).unwrap();
        assert_eq!((m.median, m.lo, m.hi), (5.0, 2.0, 8.0));
        assert!((m.coverage - (1.0 - 20.0 / 512.0)).abs() < 1e-12);
        // n = 5 cannot reach 95 %: [min, max], covering 1 − 2/32.
        let m = median_interval(&[3.0, 1.0, 2.0, 5.0, 4.0], 0.95).unwrap();
        assert_eq!((m.median, m.lo, m.hi), (3.0, 1.0, 5.0));
        assert!((m.coverage - (1.0 - 2.0 / 32.0)).abs() < 1e-12);
        // n = 20: k = 6 (P(Bin(20, ½) ≤ 5) ≈ 0.0207).
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let m = median_interval(&v, 0.95).unwrap();
        assert_eq!((m.lo, m.hi), (6.0, 15.0));
        assert!(m.coverage >= 0.95);
        assert_eq!(median_interval(&[], 0.95), None);
        assert_eq!(median_interval(&[2.0, 4.0], 0.95).unwrap().median, 3.0);
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn the_normal_distribution_matches_its_tables() {
        assert_eq!(normal_cdf(0.0), 0.5);
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-7));
        assert!(close(normal_cdf(-1.0), 0.158_655_253_931_457, 1e-12));
        assert!(close(normal_cdf(3.0), 0.998_650_10, 1e-7));
        assert!(close(normal_quantile(0.975), 1.959_964, 1e-6));
        assert!(close(normal_quantile(0.995), 2.575_829, 1e-6));
        assert!(close(normal_quantile(0.5), 0.0, 1e-9));
    }

    #[test]
    fn newcombe_reproduces_the_worked_examples_of_his_1998_paper() {
        // Newcombe, Statistics in Medicine 17:873–890, Table II, method 10 (95 %). His
        // differences are p1 − p2; ours are current − baseline, so the first pair is the
        // "current" one.
        let z = normal_quantile(0.975);
        let cases = [
            ((56, 70), (48, 80), (0.0524, 0.3339)),
            ((9, 10), (3, 10), (0.1705, 0.8090)),
            ((0, 10), (0, 10), (-0.2775, 0.2775)),
        ];
        for ((k_cur, n_cur), (k_base, n_base), (lo, hi)) in cases {
            let (l, u) = newcombe(k_base, n_base, k_cur, n_cur, z);
            assert!(
                close(l, lo, 5e-5) && close(u, hi, 5e-5),
                "{k_cur}/{n_cur} vs {k_base}/{n_base}: ({l:.4}, {u:.4}), expected ({lo}, {hi})"
            );
        }
        // The interval at 95 % of Wilson's is the one the report prints.
        let (l, u) = wilson(1, 10, z);
        assert!(
            close(l, 0.0179, 5e-5) && close(u, 0.4042, 5e-5),
            "({l}, {u})"
        );
    }

    #[test]
    fn mann_whitney_counts_pairs_and_ranks_unrecovered_runs_last() {
        // Complete separation, 3 against 3: U = 9, mean 4.5, variance 3·3·7/12 = 5.25, z with
        // continuity correction (4.5 − 0.5)/√5.25 = 1.7457, two-sided p = 0.08086.
        let base = [Some(1.0), Some(2.0), Some(3.0)];
        let cur = [Some(4.0), Some(5.0), Some(6.0)];
        let t = mann_whitney(&base, &cur).unwrap();
        assert_eq!(t.u, 9.0);
        assert_eq!(t.superiority, 1.0);
        assert!(close(t.p_two_sided, 0.080_856, 1e-5), "{t:?}");
        // Reversed: U = 0, the same p.
        let r = mann_whitney(&cur, &base).unwrap();
        assert_eq!(r.u, 0.0);
        assert!(close(r.p_two_sided, t.p_two_sided, 1e-12));
        // Not recovered is larger than any time and ties with itself: {1, 2, ∞} vs {∞, ∞, 3}:
        // pairs where current is larger: 3 vs 1, 2 (2); ∞ vs 1, 2 (2 each), ∞ vs ∞ (½ each).
        let t = mann_whitney(&[Some(1.0), Some(2.0), None], &[None, None, Some(3.0)]).unwrap();
        assert_eq!(t.u, 2.0 + 2.0 * 2.5);
        // Tie-corrected variance: ranks 1,2,3 and a tie of three at 5; Σ(t³−t) = 24, so
        // var = 9/12 · (7 − 24/30) = 4.65; z = (7 − 4.5 − 0.5)/√4.65 = 0.92747, p = 0.35368.
        assert!(close(t.p_two_sided, 0.353_68, 1e-4), "{t:?}");
        // Identical samples: no evidence of a shift.
        let same = [Some(5.0), None, Some(7.0)];
        let t = mann_whitney(&same, &same).unwrap();
        assert_eq!(t.superiority, 0.5);
        assert_eq!(t.p_two_sided, 1.0);
        // All tied: variance 0, p = 1.
        assert_eq!(mann_whitney(&[None], &[None]).unwrap().p_two_sided, 1.0);
        assert!(mann_whitney(&[], &[Some(1.0)]).is_none());
    }
}
