//! The two call sources: a live agent behind the MCP server ([`Link`]) and a cassette being
//! replayed ([`Replay`]).

use crate::cassette::{Cassette, Exchange};
use crate::session::{Call, CallSource, Ended};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A tool call the MCP server hands to the session, with where its answer goes.
pub struct Request {
    /// The call.
    pub call: Call,
    /// The answer: whether it is an error, and its text.
    pub reply: tokio::sync::oneshot::Sender<(bool, String)>,
}

/// Why the connection to the agent broke, set by the transport guard (an oversized or
/// malformed message) before it ends the connection.
pub type Breakage = Arc<Mutex<Option<String>>>;

/// A live agent: calls arrive from the MCP server over a channel.
pub struct Link {
    rx: Receiver<Request>,
    pending: Option<tokio::sync::oneshot::Sender<(bool, String)>>,
    breakage: Breakage,
    timeout: Option<Duration>,
    started: Option<Instant>,
    answered: Option<Instant>,
}

// Wall-clock reads here bound a live agent (its timeout) and, with `clock = wall` only, price
// its calls; neither reaches results of a run under the default virtual clock.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

impl Link {
    /// Calls from `rx`; the agent fails when it has not finished within `timeout` of its first
    /// call being awaited (wall clock).
    pub fn new(rx: Receiver<Request>, breakage: Breakage, timeout: Option<Duration>) -> Self {
        Link {
            rx,
            pending: None,
            breakage,
            timeout,
            started: None,
            answered: None,
        }
    }
}

impl CallSource for Link {
    fn next(&mut self) -> Result<Call, Ended> {
        let now = wall_now();
        let started = *self.started.get_or_insert(now);
        let received = match self.timeout {
            Some(t) => self
                .rx
                .recv_timeout((started + t).saturating_duration_since(now)),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(request) => {
                let wall_s = self
                    .answered
                    .map_or(0.0, |a| wall_now().duration_since(a).as_secs_f64());
                self.pending = Some(request.reply);
                Ok(Call {
                    wall_s,
                    ..request.call
                })
            }
            Err(RecvTimeoutError::Timeout) => Err(Ended {
                reason: format!(
                    "the agent did not finish within its timeout of {} s (wall clock)",
                    self.timeout.unwrap_or_default().as_secs_f64()
                ),
                agent_failure: true,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(Ended {
                reason: self
                    .breakage
                    .lock()
                    .expect("breakage lock")
                    .take()
                    .unwrap_or_else(|| "the agent closed the connection".into()),
                agent_failure: true,
            }),
        }
    }

    fn answer(&mut self, exchange: &Exchange) {
        if let Some(reply) = self.pending.take() {
            // The agent may be gone already; its next call (none) will tell.
            let _ = reply.send((exchange.is_error, exchange.result.clone()));
        }
        self.answered = Some(wall_now());
    }
}

/// A cassette replayed: its calls in order, each answer checked against the recorded one.
pub struct Replay {
    cassette: Cassette,
    next: usize,
    diverged: Option<String>,
}

impl Replay {
    /// Replays `cassette`.
    pub fn new(cassette: Cassette) -> Self {
        Replay {
            cassette,
            next: 0,
            diverged: None,
        }
    }
}

impl CallSource for Replay {
    fn next(&mut self) -> Result<Call, Ended> {
        match self.cassette.exchanges.get(self.next) {
            Some(x) => {
                self.next += 1;
                Ok(Call {
                    tool: x.tool.clone(),
                    arguments: x.arguments.clone(),
                    wall_s: x.cost_s,
                })
            }
            None => Err(match &self.cassette.closed {
                Some(c) => Ended {
                    reason: c.reason.clone(),
                    agent_failure: c.agent_failure,
                },
                None => Ended {
                    reason: "the cassette ends without a `closed` line".into(),
                    agent_failure: true,
                },
            }),
        }
    }

    fn answer(&mut self, exchange: &Exchange) {
        if self.diverged.is_some() {
            return;
        }
        let recorded = self.cassette.exchanges.get(exchange.n as usize - 1);
        if recorded != Some(exchange) {
            self.diverged = Some(format!(
                "replay diverged at exchange {}: recorded {}, replayed {}",
                exchange.n,
                recorded.map_or("nothing".into(), |r| format!(
                    "t={} s {} -> {}",
                    r.t_s, r.tool, r.result
                )),
                format_args!(
                    "t={} s {} -> {}",
                    exchange.t_s, exchange.tool, exchange.result
                )
            ));
        }
    }

    fn diverged(&self) -> Option<String> {
        self.diverged.clone()
    }

    fn recorded_costs(&self) -> bool {
        true
    }
}
