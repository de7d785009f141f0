//! A policy backed by a real model over an OpenAI-compatible chat API, with record/replay.
//!
//! The agent builds a prompt from what the simulated agents see (incident id, symptom, the
//! recovery scope, the graph around it, and the kernel's feedback on earlier attempts), asks the
//! model through a [`Transport`], and parses the answer into a typed [`Plan`] — the same path the
//! constrained simulated agent takes. Nothing the model says reaches actuation except through the
//! kernel.
//!
//! Transports:
//! * [`ReplayTransport`] answers from a recording (JSON lines, one exchange each), so a recorded
//!   run replays deterministically without a model or a network;
//! * [`Recorder`] wraps any transport and appends every exchange to a recording;
//! * `HttpTransport` (cargo feature `http`) posts to `{base_url}/chat/completions`.
//!
//! Every answer is on the record: a reply that is not a plan becomes a [`Proposal::Refused`]
//! (the runner journals it and adds it to the incident's log), and a plan goes to the kernel,
//! which journals it with its verdict. What is fed back to the model is bounded — a rejection is
//! summarised (rule ids with counts, the first few violations), each attempt's feedback is cut
//! at [`FEEDBACK_MESSAGE_CAP`] bytes and all of it at [`FEEDBACK_TOTAL_CAP`] — so that a
//! runaway reply (a 1,000-step plan) cannot make every later prompt larger.
//!
//! Virtual time is not wall time: the agent's decision latency is the configured one, whatever
//! the model took, so that a replayed run is byte-identical to the recorded one.

use crate::policy::{IncidentInfo, Observation, Policy, PolicyKind, Proposal};
use kernel::isa::Plan;
use kernel::{DependencyGraph, RecoveryScope, Rule, Verdict, VirtualTime};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
}

/// A chat-completion request (the subset of the OpenAI schema we send).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model name.
    pub model: String,
    /// Conversation so far.
    pub messages: Vec<Message>,
    /// Sampling temperature (0 for the most repeatable answers).
    pub temperature: f64,
}

/// Errors talking to, or understanding, the model.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The transport failed (network, HTTP status, malformed envelope).
    #[error("transport: {0}")]
    Transport(String),
    /// A replay found no recorded answer for a request.
    #[error("no recorded response for this request in {path} (exchange {index}); record it first")]
    NotRecorded {
        /// Recording.
        path: String,
        /// How many exchanges had been replayed.
        index: usize,
    },
    /// A recording could not be opened or appended to.
    #[error("{path}: {message}")]
    RecordingFile {
        /// File.
        path: String,
        /// Why.
        message: String,
    },
    /// A line of a recording could not be read.
    #[error("{path}:{line}: {message}")]
    Recording {
        /// File.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The answer held no plan the ISA accepts.
    #[error("the answer is not a typed plan: {0}")]
    Unparsable(String),
}

/// Something that answers chat requests.
pub trait Transport {
    /// The assistant's reply to `request`.
    fn complete(&mut self, request: &ChatRequest) -> Result<String, LlmError>;
}

/// One recorded exchange (a line of a recording).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// The request, verbatim.
    pub request: ChatRequest,
    /// The reply.
    pub response: String,
}

/// Replays a recording: each request is answered by the next recorded reply to an identical
/// request.
#[derive(Debug)]
pub struct ReplayTransport {
    path: String,
    answers: BTreeMap<String, VecDeque<String>>,
    served: usize,
}

/// The key a request is recorded under: its canonical JSON.
fn request_key(request: &ChatRequest) -> String {
    serde_json::to_string(request).expect("requests serialise")
}

impl ReplayTransport {
    /// Loads the recording at `path`.
    pub fn open(path: &Path) -> Result<Self, LlmError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| LlmError::RecordingFile {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Self::from_reader(std::io::BufReader::new(file), &shown)
    }

    /// Loads a recording from `reader` (`name` is used in errors).
    pub fn from_reader(reader: impl BufRead, name: &str) -> Result<Self, LlmError> {
        let mut answers: BTreeMap<String, VecDeque<String>> = BTreeMap::new();
        for (i, line) in reader.lines().enumerate() {
            let err = |message: String| LlmError::Recording {
                path: name.to_string(),
                line: i + 1,
                message,
            };
            let line = line.map_err(|e| err(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let exchange: Exchange = serde_json::from_str(&line).map_err(|e| err(e.to_string()))?;
            answers
                .entry(request_key(&exchange.request))
                .or_default()
                .push_back(exchange.response);
        }
        Ok(ReplayTransport {
            path: name.to_string(),
            answers,
            served: 0,
        })
    }
}

impl Transport for ReplayTransport {
    fn complete(&mut self, request: &ChatRequest) -> Result<String, LlmError> {
        let answer = self
            .answers
            .get_mut(&request_key(request))
            .and_then(VecDeque::pop_front);
        let index = self.served;
        self.served += 1;
        answer.ok_or_else(|| LlmError::NotRecorded {
            path: self.path.clone(),
            index,
        })
    }
}

/// Wraps a transport and appends every exchange to a recording.
pub struct Recorder<T> {
    inner: T,
    path: PathBuf,
}

impl<T: Transport> Recorder<T> {
    /// Records `inner`'s exchanges to `path` (appending).
    pub fn new(inner: T, path: impl Into<PathBuf>) -> Self {
        Recorder {
            inner,
            path: path.into(),
        }
    }
}

impl<T: Transport> Transport for Recorder<T> {
    fn complete(&mut self, request: &ChatRequest) -> Result<String, LlmError> {
        let response = self.inner.complete(request)?;
        let line = serde_json::to_string(&Exchange {
            request: request.clone(),
            response: response.clone(),
        })
        .expect("exchanges serialise");
        let io = |e: std::io::Error| LlmError::RecordingFile {
            path: self.path.display().to_string(),
            message: e.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        writeln!(file, "{line}").map_err(io)?;
        Ok(response)
    }
}

#[cfg(feature = "http")]
pub use http::HttpTransport;

#[cfg(feature = "http")]
mod http {
    use super::{ChatRequest, LlmError, Transport};

    /// Posts to an OpenAI-compatible `{base_url}/chat/completions` endpoint.
    pub struct HttpTransport {
        base_url: String,
        api_key: Option<String>,
        agent: ureq::Agent,
    }

    impl HttpTransport {
        /// A transport for `base_url` (e.g. `http://localhost:8000/v1`), authenticating with
        /// `api_key` if given.
        pub fn new(base_url: &str, api_key: Option<String>) -> Self {
            HttpTransport {
                base_url: base_url.trim_end_matches('/').to_string(),
                api_key,
                agent: ureq::Agent::new_with_defaults(),
            }
        }
    }

    impl Transport for HttpTransport {
        fn complete(&mut self, request: &ChatRequest) -> Result<String, LlmError> {
            let url = format!("{}/chat/completions", self.base_url);
            let mut call = self.agent.post(&url);
            if let Some(key) = &self.api_key {
                call = call.header("Authorization", &format!("Bearer {key}"));
            }
            let mut response = call
                .send_json(request)
                .map_err(|e| LlmError::Transport(format!("{url}: {e}")))?;
            let body: serde_json::Value = response
                .body_mut()
                .read_json()
                .map_err(|e| LlmError::Transport(format!("{url}: {e}")))?;
            body.pointer("/choices/0/message/content")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    LlmError::Transport(format!(
                        "{url}: no choices[0].message.content in the reply"
                    ))
                })
        }
    }
}

const SYSTEM_PROMPT: &str = "You are an SRE agent. You cannot run commands. You propose a remediation plan in a typed \
instruction set; a kernel validates it against the dependency graph and executes it transactionally.\n\
Answer with one JSON object and nothing else:\n\
{\"incident\": \"<id>\", \"stages\": [[<action>, ...], ...], \"leases\": [{\"step\": <flat step index>, \"ttl_s\": <seconds>}]}\n\
Stages run in order; actions within a stage run in parallel. Actions:\n\
{\"restart\": {\"service\": S, \"replicas\": \"all\" | [ordinals]}}\n\
{\"drain\": {\"service\": S, \"replicas\": \"all\" | [ordinals]}}\n\
{\"restore_traffic\": {\"service\": S}}\n\
{\"circuit_break\": {\"caller\": S, \"callee\": S, \"duration_s\": seconds}}\n\
{\"rate_limit\": {\"service\": S, \"rps\": number}}\n\
{\"scale\": {\"service\": S, \"replicas\": n}}\n\
{\"rollback_config\": {\"service\": S, \"version\": V}}\n\
Rules: act only inside the recovery scope; restart callees before callers; drain hubs before restarting them \
and restore traffic after; close every drain, rate limit or breaker with restore_traffic or a lease; before \
a drain that a lease closes, scale the service up by as many replicas in an earlier stage; keep \
rate limits at or above 50% of baseline; roll back only to a listed config version.";

/// Most bytes one attempt's feedback takes in a prompt.
pub const FEEDBACK_MESSAGE_CAP: usize = 1024;

/// Most bytes all attempts' feedback takes in one prompt; the oldest attempts give way first.
pub const FEEDBACK_TOTAL_CAP: usize = 4096;

/// Most bytes of a refused reply kept on the record (the recording has all of it).
pub const REPLY_EXCERPT_CAP: usize = 512;

/// Violations quoted in a rejection's summary; the rest are counted.
const QUOTED_VIOLATIONS: usize = 3;

/// Most bytes of one quoted violation.
const QUOTED_VIOLATION_CAP: usize = 200;

/// `text` cut to at most `cap` bytes at a character boundary, with a marker when cut.
pub fn bounded(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    const MARK: &str = " … [cut]";
    let mut end = cap.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

/// A rejection as feedback for the model: how many violations of which rules, and the first
/// few in full — enough to fix the plan, and small whatever the plan's size.
pub fn summarise_rejection(verdict: &Verdict) -> String {
    let mut counts: BTreeMap<Rule, usize> = BTreeMap::new();
    for v in &verdict.violations {
        *counts.entry(v.rule).or_default() += 1;
    }
    let by_rule: Vec<String> = counts
        .iter()
        .map(|(rule, n)| format!("{} ×{n}", rule.id()))
        .collect();
    let mut out = format!(
        "kernel rejected it: {} violation(s): {}",
        verdict.violations.len(),
        by_rule.join(", ")
    );
    for v in verdict.violations.iter().take(QUOTED_VIOLATIONS) {
        let _ = write!(
            out,
            "\n  - {}",
            bounded(&v.to_string(), QUOTED_VIOLATION_CAP)
        );
    }
    let rest = verdict.violations.len().saturating_sub(QUOTED_VIOLATIONS);
    if rest > 0 {
        let _ = write!(out, "\n  (and {rest} more)");
    }
    bounded(&out, FEEDBACK_MESSAGE_CAP)
}

/// The prompt for `info`, given what the kernel said about earlier attempts (newest last). The
/// feedback is bounded: each attempt's at [`FEEDBACK_MESSAGE_CAP`], all of it at
/// [`FEEDBACK_TOTAL_CAP`], older attempts left out first.
pub fn prompt(
    model: &str,
    info: &IncidentInfo,
    graph: &DependencyGraph,
    feedback: &[String],
) -> ChatRequest {
    let mut user = String::new();
    let _ = writeln!(
        user,
        "Incident {}: service {} violates its SLO.",
        info.id, info.symptom
    );
    let _ = writeln!(user, "{}", describe_scope(&info.scope, graph));
    let mut budget = FEEDBACK_TOTAL_CAP;
    let mut kept = Vec::new();
    let mut omitted = 0;
    for (i, f) in feedback.iter().enumerate().rev() {
        let line = format!(
            "Attempt {} was rejected or unreadable: {}\n",
            i + 1,
            bounded(f, FEEDBACK_MESSAGE_CAP)
        );
        if line.len() > budget {
            omitted = i + 1;
            break;
        }
        budget -= line.len();
        kept.push(line);
    }
    if omitted > 0 {
        let _ = writeln!(
            user,
            "Attempts 1 to {omitted} were rejected or unreadable too (left out for length)."
        );
    }
    for line in kept.iter().rev() {
        user.push_str(line);
    }
    ChatRequest {
        model: model.to_string(),
        messages: vec![
            Message {
                role: "system".into(),
                content: SYSTEM_PROMPT.into(),
            },
            Message {
                role: "user".into(),
                content: user,
            },
        ],
        temperature: 0.0,
    }
}

/// The scope and its part of the graph, as text.
fn describe_scope(scope: &RecoveryScope, graph: &DependencyGraph) -> String {
    let mut out = String::from("Recovery scope (restart groups, callee-first):\n");
    for (i, group) in scope.groups().iter().enumerate() {
        let _ = writeln!(out, "  group {i}: {}", group.members.join(", "));
    }
    if !scope.hubs().is_empty() {
        let _ = writeln!(
            out,
            "Hubs (drain before restart): {}",
            scope.hubs().join(", ")
        );
    }
    out.push_str("Services:\n");
    for name in scope.services() {
        let Some(id) = graph.id(name) else { continue };
        let s = graph.service(id);
        let callees: Vec<&str> = graph
            .callees(id)
            .map(|(c, _)| graph.service(c).name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  {name} ({:?}, {} replicas, configs {:?}, baseline {:.0} rps) calls [{}]",
            s.kind,
            s.replicas,
            s.config_versions,
            graph.baseline_rps(id).unwrap_or(0.0),
            callees.join(", ")
        );
    }
    out
}

/// Extracts the plan from a model's reply: the reply itself, or the first fenced block, or the
/// outermost `{…}`; then the ISA's own parser.
pub fn parse_plan(reply: &str) -> Result<Plan, LlmError> {
    let fenced = reply
        .split("```")
        .nth(1)
        .map(|block| block.trim_start_matches("json").trim());
    let braces = match (reply.find('{'), reply.rfind('}')) {
        (Some(a), Some(b)) if a < b => Some(&reply[a..=b]),
        _ => None,
    };
    let mut last_error = String::from("no JSON object in the reply");
    for candidate in [Some(reply.trim()), fenced, braces].into_iter().flatten() {
        match Plan::from_json_str(candidate, "reply") {
            Ok(plan) => return Ok(plan),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(LlmError::Unparsable(last_error))
}

struct Attempts {
    feedback: Vec<String>,
    ready_at: VirtualTime,
    awaiting: bool,
    done: bool,
}

/// The constrained agent with a real model as its planner.
pub struct RealLlmAgent<T> {
    transport: T,
    model: String,
    latency: Duration,
    max_attempts: usize,
    incidents: BTreeMap<u64, Attempts>,
    failure: Option<String>,
}

impl<T: Transport> RealLlmAgent<T> {
    /// An agent asking `model` through `transport`; each answer counts `latency_s` of virtual
    /// time.
    pub fn new(transport: T, model: &str, latency_s: f64) -> Self {
        RealLlmAgent {
            transport,
            model: model.to_string(),
            latency: Duration::from_secs_f64(latency_s.max(0.0)),
            max_attempts: 3,
            incidents: BTreeMap::new(),
            failure: None,
        }
    }

    /// The transport (to inspect a test double or a recorder).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Asks for a plan: the reply, and the plan in it or why there is none. `Err` is a failure
    /// to get any reply.
    fn ask(
        &mut self,
        info: &IncidentInfo,
        graph: &DependencyGraph,
        feedback: &[String],
    ) -> Result<(String, Result<Plan, LlmError>), LlmError> {
        let request = prompt(&self.model, info, graph, feedback);
        let reply = self.transport.complete(&request)?;
        let plan = parse_plan(&reply);
        Ok((reply, plan))
    }
}

impl<T: Transport> Policy for RealLlmAgent<T> {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Constrained
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }

    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal> {
        let mut out = Vec::new();
        for (number, verdict) in obs.verdicts {
            let Some(a) = self.incidents.get_mut(number) else {
                continue;
            };
            if !a.awaiting {
                continue;
            }
            a.awaiting = false;
            if verdict.accepted() {
                a.done = true;
            } else {
                a.feedback.push(summarise_rejection(verdict));
                a.ready_at = obs.now.saturating_add(self.latency);
            }
        }
        for info in obs.incidents {
            let latency = self.latency;
            let a = self
                .incidents
                .entry(info.number)
                .or_insert_with(|| Attempts {
                    feedback: Vec::new(),
                    ready_at: info.opened_at.saturating_add(latency),
                    awaiting: false,
                    done: false,
                });
            if a.done || a.awaiting || obs.now < a.ready_at {
                continue;
            }
            if a.feedback.len() >= self.max_attempts {
                a.done = true;
                let last = a.feedback.last().cloned().unwrap_or_default();
                out.push(Proposal::Escalate {
                    incident: info.number,
                    reason: format!("{} failed attempts; last: {last}", self.max_attempts),
                });
                continue;
            }
            let feedback = a.feedback.clone();
            match self.ask(info, obs.graph, &feedback) {
                Ok((_, Ok(plan))) => {
                    let a = self
                        .incidents
                        .get_mut(&info.number)
                        .expect("inserted above");
                    a.awaiting = true;
                    out.push(Proposal::Typed {
                        incident: info.number,
                        plan,
                    });
                }
                // An answer that is not a plan is the model's mistake: put it on the record, tell
                // the model and ask again.
                Ok((reply, Err(e))) => {
                    let reason = bounded(&e.to_string(), FEEDBACK_MESSAGE_CAP);
                    out.push(Proposal::Refused {
                        incident: info.number,
                        reason: reason.clone(),
                        reply_excerpt: bounded(&reply, REPLY_EXCERPT_CAP),
                    });
                    let a = self
                        .incidents
                        .get_mut(&info.number)
                        .expect("inserted above");
                    a.feedback.push(reason);
                    a.ready_at = obs.now.saturating_add(latency);
                }
                // No answer at all (network, recording) is not: stop.
                Err(e) => {
                    self.failure.get_or_insert(e.to_string());
                    return out;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_fenced_and_chatty_replies() {
        let plan = r#"{"incident": "inc-1", "stages": [[{"restart": {"service": "geo"}}]]}"#;
        for reply in [
            plan.to_string(),
            format!("Here is the plan:\n```json\n{plan}\n```\nLet me know."),
            format!("I would restart geo. {plan} That should fix it."),
        ] {
            let parsed = parse_plan(&reply).unwrap_or_else(|e| panic!("{reply}: {e}"));
            assert_eq!(parsed.incident.as_str(), "inc-1");
            assert_eq!(parsed.step_count(), 1);
        }
    }

    #[test]
    fn bounded_cuts_at_a_character_boundary_and_says_so() {
        assert_eq!(bounded("short", 10), "short");
        let cut = bounded(&"é".repeat(100), 51);
        assert!(cut.len() <= 51 && cut.ends_with("[cut]"), "{cut}");
    }

    #[test]
    fn feedback_in_a_prompt_is_capped_oldest_first() {
        let graph = DependencyGraph::new();
        let info = IncidentInfo {
            id: kernel::isa::IncidentId::try_from("inc-1").unwrap(),
            number: 1,
            opened_at: VirtualTime::from_secs(0),
            symptom: "a".into(),
            scope: RecoveryScope::from_json_str(
                r#"{"incident": "inc-1", "symptom": "a", "groups": [{"members": ["a"]}]}"#,
                "scope",
            )
            .unwrap(),
            truth: crate::GroundTruth {
                root_cause: "a".into(),
                fault: crate::FaultType::Crash,
                replicas: vec![],
                dependency: None,
            },
        };
        let base = prompt("m", &info, &graph, &[]).messages[1].content.len();
        let feedback: Vec<String> = (0..20)
            .map(|i| format!("{i}:{}", "x".repeat(5000)))
            .collect();
        let user = prompt("m", &info, &graph, &feedback).messages[1]
            .content
            .clone();
        assert!(
            user.len() <= base + FEEDBACK_TOTAL_CAP + 100,
            "{}",
            user.len()
        );
        assert!(
            user.contains("Attempt 20 was rejected"),
            "the newest is kept"
        );
        assert!(!user.contains("Attempt 1 was"), "the oldest gives way");
        assert!(user.contains("left out for length"));
    }

    #[test]
    fn unparsable_reply_names_the_problem() {
        let err = parse_plan("restart geo please").unwrap_err().to_string();
        assert!(err.contains("not a typed plan"), "{err}");
        let err =
            parse_plan(r#"{"incident": "inc-1", "stages": [[{"reboot": {"service": "geo"}}]]}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("reboot"), "{err}");
    }

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message {
                role: "user".into(),
                content: text.into(),
            }],
            temperature: 0.0,
        }
    }

    #[test]
    fn replay_answers_identical_requests_in_recorded_order() {
        let lines: String = [("a", "first"), ("b", "other"), ("a", "second")]
            .iter()
            .map(|(q, r)| {
                serde_json::to_string(&Exchange {
                    request: request(q),
                    response: r.to_string(),
                })
                .unwrap()
                    + "\n"
            })
            .collect();
        let mut replay = ReplayTransport::from_reader(lines.as_bytes(), "rec.jsonl").unwrap();
        assert_eq!(replay.complete(&request("a")).unwrap(), "first");
        assert_eq!(replay.complete(&request("a")).unwrap(), "second");
        assert_eq!(replay.complete(&request("b")).unwrap(), "other");
        let err = replay.complete(&request("a")).unwrap_err().to_string();
        assert!(
            err.contains("rec.jsonl") && err.contains("exchange 3"),
            "{err}"
        );
    }

    #[test]
    fn bad_recording_line_is_located() {
        let text = format!(
            "{}\nnot json\n",
            serde_json::to_string(&Exchange {
                request: request("a"),
                response: "x".into()
            })
            .unwrap()
        );
        let err = ReplayTransport::from_reader(text.as_bytes(), "rec.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("rec.jsonl:2:"), "{err}");
    }

    struct Canned(Vec<String>);
    impl Transport for Canned {
        fn complete(&mut self, _: &ChatRequest) -> Result<String, LlmError> {
            Ok(self.0.remove(0))
        }
    }

    #[test]
    fn recorder_then_replay_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("rec.jsonl");
        let mut rec = Recorder::new(Canned(vec!["one".into(), "two".into()]), &path);
        assert_eq!(rec.complete(&request("q1")).unwrap(), "one");
        assert_eq!(rec.complete(&request("q2")).unwrap(), "two");
        let mut replay = ReplayTransport::open(&path).unwrap();
        assert_eq!(replay.complete(&request("q2")).unwrap(), "two");
        assert_eq!(replay.complete(&request("q1")).unwrap(), "one");
    }
}
