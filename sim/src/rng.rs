//! Random streams: one ChaCha8 stream per component, all derived from the run's seed, so that
//! an extra draw in one component (say, a fault) never shifts another (say, arrivals).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The components that draw random numbers. Their discriminants are stream numbers: never
/// reorder them, or every seed's results change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Request inter-arrival times and path choice.
    Arrivals = 1,
    /// Service times.
    Work = 2,
    /// Cache hits, content-dependent branches, config failures.
    Branches = 3,
    /// Retry back-off jitter.
    Retries = 4,
    /// Network latency (event-driven backend).
    Network = 5,
    /// Fault parameters (chosen replicas and the like).
    Faults = 6,
    /// The simulated LLM's draws.
    Agent = 7,
    /// Workload and scenario sampling outside the simulator.
    Scenario = 8,
}

/// The stream `which` of the run seeded with `seed`.
pub fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}

/// A standard normal draw (Box–Muller; explicit so results do not depend on a distribution
/// crate's version).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Standard normal draws from one stream, two per Box–Muller transform (the sine half is kept
/// for the next call).
#[derive(Debug)]
pub struct Normals {
    rng: ChaCha8Rng,
    spare: Option<f64>,
}

impl Normals {
    /// Normal draws from `rng`.
    pub fn new(rng: ChaCha8Rng) -> Self {
        Normals { rng, spare: None }
    }

    /// The next standard normal draw.
    pub fn draw(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random();
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * sin);
        r * cos
    }
}

/// An exponential draw with mean `mean`.
pub fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    -mean * u.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: u64 = stream(7, Stream::Arrivals).random();
        let b: u64 = stream(7, Stream::Work).random();
        assert_ne!(a, b);
        assert_eq!(a, stream(7, Stream::Arrivals).random::<u64>());
        assert_ne!(a, stream(8, Stream::Arrivals).random::<u64>());
        let mut r = stream(1, Stream::Work);
        let mean = (0..20_000).map(|_| exponential(&mut r, 3.0)).sum::<f64>() / 20_000.0;
        assert!((mean - 3.0).abs() < 0.1, "{mean}");
    }
}
