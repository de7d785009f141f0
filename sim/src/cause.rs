//! Why a request failed or was degraded.
//!
//! Every failure the simulator produces carries a [`Cause`], so that the harm oracle can
//! exclude what the injected fault did and count what actions did (DESIGN §8). Causes are
//! assigned where the failure happens:
//!
//! - a replica that is down, hung or starting, a bad config, a dropped or delayed link, a
//!   slowed replica: the fault or action that put it in that state;
//! - a rate-limit rejection or an open breaker: the action that set it;
//! - a timeout, a full queue, no endpoint: the **blame** of the service that failed to answer —
//!   a fault anywhere in it or downstream of it, else an action anywhere there, else organic
//!   overload;
//! - a failed dependency: its own cause, propagated.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The origin of a failure or degradation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// An injected fault (its id in the run's fault schedule).
    Fault(u32),
    /// A remediation action (an id chosen by whoever actuated it).
    Action(u32),
    /// Load the system could not carry, with no fault or action behind it.
    Overload,
}

impl Cause {
    /// Whether an injected fault is the origin.
    pub fn is_fault(self) -> bool {
        matches!(self, Cause::Fault(_))
    }

    /// Whether an action is the origin.
    pub fn is_action(self) -> bool {
        matches!(self, Cause::Action(_))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Fault(id) => write!(f, "fault#{id}"),
            Cause::Action(id) => write!(f, "action#{id}"),
            Cause::Overload => f.write_str("overload"),
        }
    }
}

/// How a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No replica to send to, or the replica refused the connection.
    Unavailable,
    /// The replica's worker pool was full.
    Rejected,
    /// The service's ingress rate limit rejected it.
    RateLimited,
    /// The caller's circuit breaker was open.
    BreakerOpen,
    /// No answer before the caller's timeout.
    Timeout,
    /// The service's configuration made it fail.
    BadConfig,
    /// A dependency failed.
    Dependency,
    /// The user's client shed the request (too many in flight).
    Shed,
}
