//! Time as the kernel sees it: whatever clock its host passes in.
//!
//! The kernel never reads a clock itself. In the testbed the host is the simulator and time is
//! virtual; in a deployment it would be the controller's monotonic clock. Either way the kernel's
//! behaviour is a pure function of the timestamps it is given, which is what makes runs
//! reproducible.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A point in time on the host's clock, in microseconds since the host's epoch (the start of a
/// simulation run in the testbed).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct VirtualTime(pub u64);

impl VirtualTime {
    /// The host's epoch.
    pub const ZERO: VirtualTime = VirtualTime(0);

    /// From whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        VirtualTime(secs * 1_000_000)
    }

    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        VirtualTime(ms * 1_000)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch, as a float (for reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// `self + d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        VirtualTime(self.0.saturating_add(micros))
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: VirtualTime) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for VirtualTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_displays_seconds() {
        let t = VirtualTime::from_secs(3);
        assert_eq!(t.saturating_add(Duration::from_millis(250)).0, 3_250_000);
        assert_eq!(
            VirtualTime(u64::MAX)
                .saturating_add(Duration::from_secs(1))
                .0,
            u64::MAX
        );
        assert_eq!(t.since(VirtualTime::from_secs(5)), Duration::ZERO);
        assert_eq!(t.to_string(), "3.000000s");
    }
}
