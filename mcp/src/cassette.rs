//! Cassettes: every exchange between an external agent and the testbed, as JSON lines.
//!
//! ```text
//! {"cassette":{"format":"microreboot-cassette/1","app":…,"fault":…,"seed":…,"mode":…,"clock":…,"tool_call_s":…,"config_hash":…}}
//! {"exchange":{"n":1,"t_s":100.0,"tool":"incident","arguments":{},"cost_s":6.0,"is_error":false,"result":"{…}"}}
//! {"closed":{"t_s":160.0,"reason":"resolved by the agent"}}
//! ```
//!
//! The header names the run; each exchange is one tool call with the virtual time it was
//! answered at and the answer's exact text; `closed` says how the session ended (an agent
//! failure included). Replaying feeds the recorded calls back in order and checks every answer
//! against the recorded one, so a replayed run is byte-identical or fails saying where it
//! diverged. The real-model policy's recordings (`agents::real_llm`) are a different, older
//! format: one chat exchange per line.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufRead, Write};
use std::path::Path;

/// The format string of this version.
pub const FORMAT: &str = "microreboot-cassette/1";

/// What run a cassette belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`FORMAT`].
    pub format: String,
    /// Application.
    pub app: String,
    /// Fault type (the run's, kept for replay; never shown to the agent).
    pub fault: String,
    /// Fault target override, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Seed.
    pub seed: u64,
    /// `typed` or `raw`.
    pub mode: crate::Mode,
    /// `virtual`, or `wall` when each call cost the agent's measured time.
    pub clock: crate::Clock,
    /// Virtual seconds one tool call costs (virtual clock).
    pub tool_call_s: f64,
    /// Hash of the evaluation configuration the run used.
    pub config_hash: String,
}

/// One tool call and its answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// Sequence number, from 1.
    pub n: u64,
    /// Virtual time the call was answered at, seconds.
    pub t_s: f64,
    /// Tool name as the agent sent it.
    pub tool: String,
    /// Arguments as the agent sent them.
    pub arguments: Map<String, Value>,
    /// Virtual seconds the call cost.
    pub cost_s: f64,
    /// Whether the answer is an error.
    pub is_error: bool,
    /// The answer's text.
    pub result: String,
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Closed {
    /// Virtual time, seconds.
    pub t_s: f64,
    /// Why.
    pub reason: String,
    /// Whether it is an agent failure (crash, hang, malformed or oversized message).
    pub agent_failure: bool,
}

/// One line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The first line.
    Cassette(Header),
    /// A tool call.
    Exchange(Exchange),
    /// The end.
    Closed(Closed),
}

/// A whole cassette in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Cassette {
    /// The header.
    pub header: Header,
    /// Exchanges in order.
    pub exchanges: Vec<Exchange>,
    /// How it ended, if it did.
    pub closed: Option<Closed>,
}

/// A cassette that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CassetteError {
    file: String,
    line: usize,
    message: String,
}

impl Cassette {
    /// An empty cassette for `header`.
    pub fn new(header: Header) -> Self {
        Cassette {
            header,
            exchanges: Vec::new(),
            closed: None,
        }
    }

    /// Reads a cassette file.
    pub fn open(path: &Path) -> Result<Self, CassetteError> {
        let file = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|e| CassetteError {
            file: file.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        Self::from_reader(std::io::BufReader::new(f), &file)
    }

    /// Reads a cassette from `reader`, naming it `file` in errors.
    pub fn from_reader(reader: impl BufRead, file: &str) -> Result<Self, CassetteError> {
        let err = |line: usize, message: String| CassetteError {
            file: file.to_string(),
            line,
            message,
        };
        let mut header = None;
        let mut exchanges = Vec::new();
        let mut closed = None;
        for (i, text) in reader.lines().enumerate() {
            let n = i + 1;
            let text = text.map_err(|e| err(n, e.to_string()))?;
            if text.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(&text).map_err(|e| err(n, e.to_string()))?;
            match (line, &header, &closed) {
                (_, _, Some(_)) => return Err(err(n, "a line after `closed`".into())),
                (Line::Cassette(h), None, _) => {
                    if h.format != FORMAT {
                        return Err(err(
                            n,
                            format!("format `{}`; this build reads `{FORMAT}`", h.format),
                        ));
                    }
                    header = Some(h)
                }
                (Line::Cassette(_), Some(_), _) => {
                    return Err(err(n, "a second header".into()));
                }
                (_, None, _) => return Err(err(n, "the first line must be the header".into())),
                (Line::Exchange(x), Some(_), _) => {
                    if x.n != exchanges.len() as u64 + 1 {
                        return Err(err(n, format!("exchange {} out of order", x.n)));
                    }
                    exchanges.push(x)
                }
                (Line::Closed(c), Some(_), _) => closed = Some(c),
            }
        }
        let header = header.ok_or_else(|| err(0, "empty cassette".into()))?;
        Ok(Cassette {
            header,
            exchanges,
            closed,
        })
    }

    /// Writes it as JSON lines.
    pub fn write(&self, mut out: impl Write) -> std::io::Result<()> {
        let mut line = |l: &Line| -> std::io::Result<()> {
            serde_json::to_writer(&mut out, l)?;
            out.write_all(b"\n")
        };
        line(&Line::Cassette(self.header.clone()))?;
        for x in &self.exchanges {
            line(&Line::Exchange(x.clone()))?;
        }
        if let Some(c) = &self.closed {
            line(&Line::Closed(c.clone()))?;
        }
        Ok(())
    }

    /// Its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out).expect("writing to memory");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            app: "socialNetwork".into(),
            fault: "crash".into(),
            target: None,
            seed: 1,
            mode: crate::Mode::Typed,
            clock: crate::Clock::Virtual,
            tool_call_s: 2.0,
            config_hash: "h".into(),
        }
    }

    #[test]
    fn round_trips() {
        let mut c = Cassette::new(header());
        c.exchanges.push(Exchange {
            n: 1,
            t_s: 100.0,
            tool: "incident".into(),
            arguments: Map::new(),
            cost_s: 2.0,
            is_error: false,
            result: "{}".into(),
        });
        c.closed = Some(Closed {
            t_s: 101.0,
            reason: "done".into(),
            agent_failure: false,
        });
        let bytes = c.to_bytes();
        let back = Cassette::from_reader(&bytes[..], "mem").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn errors_name_the_line() {
        let text = "{\"exchange\":{}}\n";
        let e = Cassette::from_reader(text.as_bytes(), "c.jsonl").unwrap_err();
        assert!(e.to_string().starts_with("c.jsonl:1:"), "{e}");
    }
}
