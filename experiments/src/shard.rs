//! Sharded evaluation: `eval --shard I/N` runs the jobs of the matrix whose position in the
//! fixed job order is I modulo N, and writes their outputs, tagged with those positions, as a
//! partial result; `eval merge` puts the parts of all N shards back in job order, which gives
//! exactly the [`EvalOutput`] of a single-machine run (the jobs are independent and each is
//! seeded by its own coordinates, never by the thread or machine that runs it).
//!
//! Round-robin rather than contiguous slices: the jobs are ordered online cells first, then the
//! cheaper offline batches, so contiguous slices would give one shard all the simulation.

use crate::eval::EvalOutput;
use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u32,
    /// How many.
    pub count: u32,
}

impl Shard {
    /// The whole matrix.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether the job at `position` of the job order belongs to this shard.
    pub fn contains(self, position: usize) -> bool {
        position % self.count as usize == self.index as usize
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with 0 ≤ I < N (Kubernetes' `JOB_COMPLETION_INDEX` and Slurm's
    /// `SLURM_ARRAY_TASK_ID` of an array `0-(N-1)` count from 0).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard `{s}`: expected I/N with 0 ≤ I < N, e.g. 0/3");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The output of one job, at its position in the job order.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobOutput {
    /// Position in the job order.
    pub position: usize,
    /// What it produced.
    pub output: EvalOutput,
}

/// What a shard ran, out of how many jobs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Part {
    /// The shard.
    pub shard: Shard,
    /// Jobs in the whole matrix.
    pub total_jobs: usize,
    /// Its jobs' outputs, in job order.
    pub jobs: Vec<JobOutput>,
}

/// Concatenates job outputs in the order given.
pub fn concat(jobs: impl IntoIterator<Item = JobOutput>) -> EvalOutput {
    let mut out = EvalOutput::default();
    for j in jobs {
        out.lines.extend(j.output.lines);
        out.timelines.extend(j.output.timelines);
        out.details.extend(j.output.details);
    }
    out
}

/// Why parts do not make a whole.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// No parts.
    #[error("no shards to merge")]
    Empty,
    /// Parts of differently split or differently sized matrices.
    #[error(
        "shard {a} is one of {a_count} shards of {a_jobs} jobs, shard {b} one of {b_count} of {b_jobs}"
    )]
    Mismatch {
        /// One shard.
        a: Shard,
        /// Its count.
        a_count: u32,
        /// Its matrix size.
        a_jobs: usize,
        /// Another.
        b: Shard,
        /// Its count.
        b_count: u32,
        /// Its matrix size.
        b_jobs: usize,
    },
    /// The same shard twice.
    #[error("shard {0} is given twice")]
    Duplicate(Shard),
    /// Shards missing (the sweep was interrupted): rerun these.
    #[error("missing shards: {}", .0.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "))]
    Missing(Vec<Shard>),
    /// A part that does not hold exactly its shard's jobs.
    #[error("shard {shard} holds jobs {found:?}, expected {expected} jobs at positions ≡ {} mod {}", .shard.index, .shard.count)]
    WrongJobs {
        /// The shard.
        shard: Shard,
        /// How many it should hold.
        expected: usize,
        /// The first positions it holds that it should not (or all, when short).
        found: Vec<usize>,
    },
}

/// Puts the parts of all shards of one matrix back together, in job order.
pub fn merge(parts: Vec<Part>) -> Result<EvalOutput, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let (count, total) = (first.shard.count, first.total_jobs);
    let mut seen = vec![false; count as usize];
    for p in &parts {
        if p.shard.count != count || p.total_jobs != total {
            return Err(MergeError::Mismatch {
                a: first.shard,
                a_count: count,
                a_jobs: total,
                b: p.shard,
                b_count: p.shard.count,
                b_jobs: p.total_jobs,
            });
        }
        if std::mem::replace(&mut seen[p.shard.index as usize], true) {
            return Err(MergeError::Duplicate(p.shard));
        }
        let expected: Vec<usize> = (0..total).filter(|&i| p.shard.contains(i)).collect();
        let found: Vec<usize> = p.jobs.iter().map(|j| j.position).collect();
        if found != expected {
            return Err(MergeError::WrongJobs {
                shard: p.shard,
                expected: expected.len(),
                found: found
                    .into_iter()
                    .filter(|i| !p.shard.contains(*i))
                    .take(5)
                    .collect(),
            });
        }
    }
    let missing: Vec<Shard> = (0..count)
        .filter(|&i| !seen[i as usize])
        .map(|index| Shard { index, count })
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing(missing));
    }
    let mut jobs: Vec<JobOutput> = parts.into_iter().flat_map(|p| p.jobs).collect();
    jobs.sort_by_key(|j| j.position);
    Ok(concat(jobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(shard: Shard, total: usize) -> Part {
        Part {
            shard,
            total_jobs: total,
            jobs: (0..total)
                .filter(|&i| shard.contains(i))
                .map(|position| JobOutput {
                    position,
                    output: EvalOutput {
                        timelines: vec![crate::eval::TimelinePoint {
                            app: "a".into(),
                            fault: faults::FaultType::Crash,
                            policy: agents::PolicyKind::Noop.into(),
                            second: position as u32,
                            error_rate: 0.0,
                            p99_ms: 0.0,
                        }],
                        ..EvalOutput::default()
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn shards_parse_from_zero_and_partition_the_jobs() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2", "1/"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        for n in 1..5u32 {
            for pos in 0..20 {
                let owners = (0..n)
                    .filter(|&i| Shard { index: i, count: n }.contains(pos))
                    .count();
                assert_eq!(owners, 1);
            }
        }
    }

    #[test]
    fn merge_restores_job_order_and_names_what_is_missing() {
        let shard = |index| Shard { index, count: 3 };
        let parts = vec![part(shard(2), 10), part(shard(0), 10), part(shard(1), 10)];
        let seconds: Vec<u32> = merge(parts)
            .unwrap()
            .timelines
            .iter()
            .map(|p| p.second)
            .collect();
        assert_eq!(seconds, (0..10).collect::<Vec<_>>());
        assert_eq!(
            merge(vec![part(shard(0), 10), part(shard(2), 10)]).err(),
            Some(MergeError::Missing(vec![shard(1)]))
        );
        assert_eq!(
            merge(vec![part(shard(0), 10), part(shard(0), 10)]).err(),
            Some(MergeError::Duplicate(shard(0)))
        );
        assert!(matches!(
            merge(vec![part(shard(0), 10), part(shard(1), 11)]),
            Err(MergeError::Mismatch { .. })
        ));
        let mut short = part(shard(1), 10);
        short.jobs.pop();
        assert!(matches!(
            merge(vec![part(shard(0), 10), short, part(shard(2), 10)]),
            Err(MergeError::WrongJobs { .. })
        ));
        assert_eq!(merge(vec![]).err(), Some(MergeError::Empty));
    }
}
