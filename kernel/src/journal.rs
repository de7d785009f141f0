//! The kernel's append-only journal (DESIGN §6).
//!
//! Every proposal, verdict, applied step, post-condition check, undo, compensation, commit,
//! abort and lease expiry is one [`Record`] with a strictly increasing sequence number and the
//! host's timestamp. Records serialise as JSON lines. The journal alone lets an auditor replay
//! what happened: [`replay`] folds the recorded [`ControlOp`]s over the initial control-plane
//! state and must arrive at the actuator's final state.
//!
//! One line looks like
//! `{"seq":4,"t_us":13000000,"plan":1,"event":"step_applied","step":0,"action":{…},"op":{…},"class":"reversible"}`.

use crate::input::InputError;
use crate::isa::{Action, IncidentId, Plan, RollbackClass};
use crate::state::{ApplyError, ControlOp, ControlState};
use crate::time::VirtualTime;
use crate::txn::PlanId;
use crate::validate::Violation;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// Longest journal line the reader accepts, in bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The plan id of records about replies that never became a submitted plan; the kernel numbers
/// its submissions from 1.
pub const UNSUBMITTED: PlanId = PlanId(0);

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An agent proposed a plan.
    Proposal {
        /// Incident it answers.
        incident: IncidentId,
        /// The plan as proposed (`proposed` in JSON: `plan` is the record's plan id).
        #[serde(rename = "proposed")]
        plan: Plan,
    },
    /// The validator's verdict on the proposal.
    Verdict {
        /// Whether it may execute.
        accepted: bool,
        /// Every violation.
        violations: Vec<Violation>,
    },
    /// A step's operation was applied.
    StepApplied {
        /// Step number.
        step: usize,
        /// The typed action.
        action: Action,
        /// The concrete operation it was lowered to.
        op: ControlOp,
        /// Its rollback class, given the state before it.
        class: RollbackClass,
    },
    /// The actuator refused a step's operation (nothing changed).
    StepFailed {
        /// Step number.
        step: usize,
        /// The typed action.
        action: Action,
        /// The operation, when lowering succeeded.
        op: Option<ControlOp>,
        /// Why.
        error: String,
    },
    /// A step's post-condition holds.
    CheckPassed {
        /// Step number.
        step: usize,
    },
    /// A step's post-condition failed or timed out.
    CheckFailed {
        /// Step number.
        step: usize,
        /// Why.
        reason: String,
    },
    /// A reversible step was undone by this operation.
    Undo {
        /// Step number.
        step: usize,
        /// The inverse operation applied.
        op: ControlOp,
    },
    /// A compensatable step was compensated by this operation.
    Compensate {
        /// Step number.
        step: usize,
        /// The compensating operation applied.
        op: ControlOp,
    },
    /// A restart cannot be undone; recorded so the audit shows it.
    NotUndoable {
        /// Step number.
        step: usize,
        /// The restart that stays.
        op: ControlOp,
    },
    /// An undo or compensation failed (the plan aborts dirty).
    UndoFailed {
        /// Step number.
        step: usize,
        /// The operation that failed.
        op: ControlOp,
        /// Why.
        error: String,
    },
    /// Every step's post-condition held; locks released.
    Commit,
    /// The plan aborted; undo finished; locks released.
    Abort {
        /// The failure that caused it.
        reason: String,
        /// True when every undo and compensation succeeded.
        clean: bool,
    },
    /// A lease ran out and the kernel reverted its step (see `kernel::lease` for what reverting
    /// means when leases overlap).
    LeaseExpired {
        /// Step number.
        step: usize,
        /// The reverting operation applied; absent when other leases or later steps keep the
        /// control where it is, so nothing had to change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<ControlOp>,
    },
    /// An agent's reply was refused before it became a plan (a real model answered with
    /// something that is not a typed plan), so nothing reached the validator. The agent's runner
    /// journals it through `Kernel::refuse`, under [`UNSUBMITTED`], so that the journal shows every answer, not only the
    /// readable ones.
    ProposalRefused {
        /// Incident the reply answered.
        incident: IncidentId,
        /// Why it was refused (the parser's error).
        reason: String,
        /// The start of the reply (bounded; the full reply is in the agent's recording).
        reply_excerpt: String,
    },
    /// Reverting a lease failed; the lease stays held and the revert is retried.
    LeaseFailed {
        /// Step number.
        step: usize,
        /// The operation that failed, if the service could be observed at all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<ControlOp>,
        /// Why.
        error: String,
        /// Failed reverts of this lease so far.
        failures: u32,
        /// When the kernel tries again.
        retry_at: VirtualTime,
    },
    /// A lease's revert failed repeatedly; a human should look (the kernel keeps retrying).
    LeaseEscalated {
        /// Step number.
        step: usize,
        /// Failed reverts so far.
        failures: u32,
    },
    /// The SLO watchdog saw `service` regress after this step of an executing plan; the plan
    /// aborts and its undo follows.
    WatchdogTripped {
        /// Step number.
        step: usize,
        /// The service that regressed.
        service: String,
    },
    /// A breaker a lease held open closed early: its callee showed no failure for the
    /// half-open period.
    BreakerClosed {
        /// Step number of the circuit break.
        step: usize,
        /// The callee that recovered.
        callee: String,
        /// The closing operation (absent when another hold keeps the breaker open).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<ControlOp>,
    },
    /// The SLO watchdog took back a committed step whose affected `service` regressed.
    WatchdogUndo {
        /// Step number.
        step: usize,
        /// The service that regressed.
        service: String,
        /// The reverting operation applied (absent when nothing had to change).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<ControlOp>,
    },
    /// A lease's revert made the step's affected `service` regress while the watchdog watched
    /// it (the degradation is still needed: the evidence persists), so the kernel re-imposed the
    /// step and renewed its lease for `ttl_s` seconds.
    LeaseRenewed {
        /// Step number.
        step: usize,
        /// The service that regressed when the lease lapsed.
        service: String,
        /// The re-imposing operation (absent when nothing had to change).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<ControlOp>,
        /// The renewed lease's length, seconds.
        ttl_s: u64,
    },
    /// A later permanent step (e.g. a `restore_traffic`) removed what this lease held, so there
    /// is nothing left for it to revert.
    LeaseSuperseded {
        /// Step number of the lease.
        step: usize,
        /// The plan whose step superseded it.
        by_plan: PlanId,
        /// That plan's step.
        by_step: usize,
    },
}

impl Event {
    /// The operation this event applied to the control plane, if any.
    pub fn applied_op(&self) -> Option<&ControlOp> {
        match self {
            Event::StepApplied { op, .. }
            | Event::Undo { op, .. }
            | Event::Compensate { op, .. }
            | Event::LeaseExpired { op: Some(op), .. }
            | Event::WatchdogUndo { op: Some(op), .. }
            | Event::LeaseRenewed { op: Some(op), .. }
            | Event::BreakerClosed { op: Some(op), .. } => Some(op),
            _ => None,
        }
    }

    /// Short snake-case name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Proposal { .. } => "proposal",
            Event::Verdict { .. } => "verdict",
            Event::StepApplied { .. } => "step_applied",
            Event::StepFailed { .. } => "step_failed",
            Event::CheckPassed { .. } => "check_passed",
            Event::CheckFailed { .. } => "check_failed",
            Event::Undo { .. } => "undo",
            Event::Compensate { .. } => "compensate",
            Event::NotUndoable { .. } => "not_undoable",
            Event::UndoFailed { .. } => "undo_failed",
            Event::Commit => "commit",
            Event::Abort { .. } => "abort",
            Event::LeaseExpired { .. } => "lease_expired",
            Event::LeaseFailed { .. } => "lease_failed",
            Event::LeaseEscalated { .. } => "lease_escalated",
            Event::LeaseSuperseded { .. } => "lease_superseded",
            Event::LeaseRenewed { .. } => "lease_renewed",
            Event::ProposalRefused { .. } => "proposal_refused",
            Event::WatchdogTripped { .. } => "watchdog_tripped",
            Event::WatchdogUndo { .. } => "watchdog_undo",
            Event::BreakerClosed { .. } => "breaker_closed",
        }
    }
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Sequence number, strictly increasing from 1.
    pub seq: u64,
    /// Host time.
    pub t_us: VirtualTime,
    /// The plan the record is about.
    pub plan: PlanId,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// An append-only, in-memory journal.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    records: Vec<Record>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event and returns its sequence number. Every record is also a `tracing`
    /// event (target `kernel::journal`, debug level; verdicts that reject at info) with the
    /// virtual time as a field, so `RUST_LOG=kernel=debug` shows what the kernel did; it goes to
    /// the subscriber only and never into results.
    pub fn append(&mut self, t: VirtualTime, plan: PlanId, event: Event) -> u64 {
        let seq = self.records.len() as u64 + 1;
        trace_event(seq, t, plan, &event);
        self.records.push(Record {
            seq,
            t_us: t,
            plan,
            event,
        });
        seq
    }

    /// All records in order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing has been journaled.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Writes every record as one JSON line.
    pub fn write_jsonl(&self, mut w: impl Write) -> std::io::Result<()> {
        for r in &self.records {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The journal as JSON lines.
    pub fn to_jsonl(&self) -> String {
        let mut buf = Vec::new();
        self.write_jsonl(&mut buf).expect("writing to memory");
        String::from_utf8(buf).expect("serde_json writes UTF-8")
    }
}

/// The distinct rule ids of `violations`, in id order, comma-separated.
fn distinct_rules(violations: &[Violation]) -> String {
    let ids: std::collections::BTreeSet<&str> = violations.iter().map(|v| v.rule.id()).collect();
    ids.into_iter().collect::<Vec<_>>().join(",")
}

/// Emits the `tracing` event of one journal record (fields are computed only when enabled).
fn trace_event(seq: u64, t: VirtualTime, plan: PlanId, event: &Event) {
    let t_us = t.as_micros();
    let plan = plan.0;
    match event {
        Event::Verdict {
            accepted: false,
            violations,
        } => tracing::info!(
            target: "kernel::journal",
            seq, t_us, plan,
            rules = %distinct_rules(violations),
            "plan rejected"
        ),
        Event::StepApplied {
            step, op, class, ..
        } => tracing::debug!(
            target: "kernel::journal",
            seq, t_us, plan, step, op = %op, class = ?class,
            "step applied"
        ),
        Event::CheckFailed { step, reason }
        | Event::StepFailed {
            step,
            error: reason,
            ..
        } => {
            tracing::info!(target: "kernel::journal", seq, t_us, plan, step, reason = %reason, "{}", event.name())
        }
        Event::Undo { step, op }
        | Event::Compensate { step, op }
        | Event::LeaseExpired { step, op: Some(op) } => tracing::debug!(
            target: "kernel::journal",
            seq, t_us, plan, step, op = %op,
            "{}", event.name()
        ),
        Event::LeaseFailed {
            step,
            error,
            failures,
            ..
        } => tracing::warn!(
            target: "kernel::journal",
            seq, t_us, plan, step, failures, error = %error,
            "lease revert failed"
        ),
        Event::Abort { reason, clean } => tracing::info!(
            target: "kernel::journal",
            seq, t_us, plan, clean, reason = %reason,
            "plan aborted"
        ),
        _ => tracing::debug!(target: "kernel::journal", seq, t_us, plan, "{}", event.name()),
    }
}

/// Reads JSON-lines records, checking that sequence numbers strictly increase.
pub fn read_jsonl(reader: impl BufRead, source_name: &str) -> Result<Vec<Record>, InputError> {
    let mut out: Vec<Record> = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let lineno = i + 1;
        let at = |message: String| InputError {
            source_name: source_name.to_string(),
            position: Some((lineno, 1)),
            path: ".".into(),
            message,
        };
        let line = line.map_err(|e| at(format!("read error: {e}")))?;
        if line.len() > MAX_RECORD_BYTES {
            return Err(at(format!("line longer than {MAX_RECORD_BYTES} bytes")));
        }
        let text = std::str::from_utf8(&line).map_err(|e| at(format!("not UTF-8: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        let record: Record =
            crate::input::parse_json(text, source_name, "record", MAX_RECORD_BYTES).map_err(
                |mut e| {
                    e.position = Some((lineno, e.position.map_or(1, |p| p.1)));
                    e
                },
            )?;
        if let Some(prev) = out.last()
            && record.seq <= prev.seq
        {
            return Err(at(format!(
                "sequence number {} does not follow {}",
                record.seq, prev.seq
            )));
        }
        out.push(record);
    }
    Ok(out)
}

/// Why a journal does not replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {seq}: {error}")]
pub struct ReplayError {
    /// Sequence number of the record that did not apply.
    pub seq: u64,
    /// Why.
    pub error: ApplyError,
}

/// Replays `records` over `initial`: applies every operation the journal says was applied, in
/// order, and returns the resulting control-plane state.
pub fn replay(initial: &ControlState, records: &[Record]) -> Result<ControlState, ReplayError> {
    let mut state = initial.clone();
    for r in records {
        if let Some(op) = r.event.applied_op() {
            state
                .apply(op)
                .map_err(|error| ReplayError { seq: r.seq, error })?;
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServiceControl;

    #[test]
    fn round_trips_and_replays() {
        let mut j = Journal::new();
        let op = ControlOp::SetRateLimit {
            service: "a".into(),
            rps: Some(5.0),
        };
        let plan = Plan::from_json_str(
            r#"{"incident": "inc-1", "stages": [[{"restart": {"service": "a"}}]]}"#,
            "plan",
        )
        .unwrap();
        j.append(
            VirtualTime(0),
            PlanId(1),
            Event::Proposal {
                incident: plan.incident.clone(),
                plan,
            },
        );
        j.append(VirtualTime(1), PlanId(1), Event::Commit);
        j.append(
            VirtualTime(1),
            UNSUBMITTED,
            Event::ProposalRefused {
                incident: IncidentId::try_from("inc-1").unwrap(),
                reason: "the answer is not a typed plan: no JSON object".into(),
                reply_excerpt: "restart geo please".into(),
            },
        );
        j.append(
            VirtualTime(2),
            PlanId(1),
            Event::LeaseExpired {
                step: 0,
                op: Some(op),
            },
        );
        let text = j.to_jsonl();
        assert!(
            text.lines().nth(1).unwrap().contains(r#""event":"commit""#),
            "{text}"
        );
        assert!(
            text.lines()
                .nth(2)
                .unwrap()
                .contains(r#""plan":0,"event":"proposal_refused","incident":"inc-1""#),
            "{text}"
        );
        let back = read_jsonl(text.as_bytes(), "j").unwrap();
        assert_eq!(back, j.records());
        let mut initial = ControlState::default();
        initial
            .services
            .insert("a".into(), ServiceControl::new(1, "v1"));
        let end = replay(&initial, &back).unwrap();
        assert_eq!(end.get("a").unwrap().rate_limit, Some(5.0));
    }

    #[test]
    fn reader_rejects_disorder_and_garbage_with_line_numbers() {
        let err = read_jsonl(
            "{\"seq\":2,\"t_us\":0,\"plan\":1,\"event\":\"commit\"}\n{\"seq\":1,\"t_us\":0,\"plan\":1,\"event\":\"commit\"}\n".as_bytes(),
            "j",
        )
        .unwrap_err();
        assert_eq!(err.position, Some((2, 1)));
        let err = read_jsonl("\n\n{\"seq\":1}\n".as_bytes(), "j").unwrap_err();
        assert_eq!(err.position.unwrap().0, 3, "{err}");
        let err = read_jsonl(&b"\xff\xfe\n"[..], "j").unwrap_err();
        assert!(err.message.contains("UTF-8"));
    }
}
