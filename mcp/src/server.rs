//! The MCP server (rmcp) that forwards an agent's tool calls to its session, over stdio or an
//! agent process's pipes, behind a guard that bounds every incoming message.
//!
//! The guard withholds each incoming line until it is whole, then checks it: more than
//! `max_message_bytes`, or not JSON (serde_json's nesting limit included), breaks the
//! connection with the reason recorded, and the session ends the incident as an agent failure.
//! rmcp's own line limit would drop such a message and carry on; an agent that sends one is
//! broken, and the evaluation must say so rather than wait for it.

use crate::session::{Call, SessionConfig};
use crate::source::{Breakage, Request};
use crate::tools;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest message an agent may send, by default (a plan is at most 256 KiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

const INSTRUCTIONS: &str = "You are on call for one incident in a simulated microservice system. \
Call `incident` first, then read `metrics`, `replicas`, `traces`, `graph` and `scope` to find the \
root cause; `isa` lists the plan format and the rules. Act with `propose_plan` (typed mode: the \
kernel validates and executes) or `kubectl` (raw mode), `wait` to see the effect, `escalate` if \
stuck, `resolve` when done. The simulation is paused while you think; every tool call costs \
virtual time.";

/// The rmcp handler: lists the tools and hands each call to the session.
pub struct Gateway {
    tx: Mutex<Option<Sender<Request>>>,
    tools: Vec<Tool>,
}

impl Gateway {
    /// A gateway for a session in `cfg.mode`, sending calls to `tx`.
    pub fn new(cfg: &SessionConfig, tx: Sender<Request>) -> Self {
        let tools = tools::catalogue(cfg.mode)
            .into_iter()
            .map(|t| {
                let schema = match t.schema {
                    serde_json::Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                Tool::new(t.name, t.description, schema)
            })
            .collect();
        Gateway {
            tx: Mutex::new(Some(tx)),
            tools,
        }
    }
}

fn text_result(is_error: bool, text: String) -> CallToolResponse {
    let content = vec![ContentBlock::text(text)];
    if is_error {
        CallToolResult::error(content).into()
    } else {
        CallToolResult::success(content).into()
    }
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let call = Call {
            tool: request.name.to_string(),
            arguments: request.arguments.unwrap_or_default(),
            wall_s: 0.0,
        };
        let sent = {
            let tx = self.tx.lock().expect("gateway lock");
            tx.as_ref()
                .is_some_and(|tx| tx.send(Request { call, reply }).is_ok())
        };
        if !sent {
            return Ok(text_result(
                true,
                "the session is over: the incident is no longer served".into(),
            ));
        }
        Ok(match answer.await {
            Ok((is_error, text)) => text_result(is_error, text),
            Err(_) => text_result(true, "the session ended before answering".into()),
        })
    }
}

/// An `AsyncRead` that passes whole, bounded, well-formed JSON lines only.
pub struct Guard<R> {
    inner: R,
    max: usize,
    line: Vec<u8>,
    ready: Vec<u8>,
    pos: usize,
    broken: bool,
    breakage: Breakage,
}

impl<R> Guard<R> {
    /// Guards `inner`; a violation is written to `breakage` and ends the stream.
    pub fn new(inner: R, max_message_bytes: usize, breakage: Breakage) -> Self {
        Guard {
            inner,
            max: max_message_bytes,
            line: Vec::new(),
            ready: Vec::new(),
            pos: 0,
            broken: false,
            breakage,
        }
    }

    fn fail(&mut self, reason: String) {
        tracing::warn!(%reason, "agent connection broken");
        *self.breakage.lock().expect("breakage lock") = Some(reason);
        self.broken = true;
        self.line.clear();
    }

    /// Moves complete lines from `line` to `ready`, checking each (parsed into a `Value`, which
    /// enforces serde_json's nesting limit; skipping with `IgnoredAny` would not).
    fn take_lines(&mut self) {
        while let Some(end) = self.line.iter().position(|b| *b == b'\n') {
            let rest = self.line.split_off(end + 1);
            let line = std::mem::replace(&mut self.line, rest);
            let body = line[..line.len() - 1].trim_ascii();
            if !body.is_empty()
                && let Err(e) = serde_json::from_slice::<serde_json::Value>(body)
            {
                self.fail(format!("malformed message from the agent: {e}"));
                return;
            }
            self.ready.extend_from_slice(&line);
        }
        if self.line.len() > self.max {
            self.fail(format!(
                "message from the agent over {} bytes (the limit)",
                self.max
            ));
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Guard<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.pos);
                buf.put_slice(&this.ready[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.ready.len() {
                    this.ready.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.broken {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    // End of stream: a last line without a newline still counts.
                    if !this.line.is_empty() {
                        this.line.push(b'\n');
                        this.take_lines();
                        continue;
                    }
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => {
                    this.line.extend_from_slice(rb.filled());
                    this.take_lines();
                }
            }
        }
    }
}

/// Serves `gateway` over `read`/`write` until the peer leaves; returns why it stopped.
pub async fn serve<R, W>(gateway: Gateway, read: R, write: W, breakage: Breakage, max: usize)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let guarded = Guard::new(read, max, breakage.clone());
    match gateway.serve((guarded, write)).await {
        Ok(running) => {
            let _ = running.waiting().await;
        }
        Err(e) => {
            let mut b = breakage.lock().expect("breakage lock");
            if b.is_none() {
                *b = Some(format!("the agent's MCP handshake failed: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    fn read_all(input: &[u8], max: usize) -> (Vec<u8>, Option<String>) {
        let breakage: Breakage = Arc::new(Mutex::new(None));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let mut g = Guard::new(input, max, breakage.clone());
            let mut out = Vec::new();
            g.read_to_end(&mut out).await.unwrap();
            out
        });
        let reason = breakage.lock().unwrap().take();
        (out, reason)
    }

    #[test]
    fn passes_whole_json_lines() {
        let (out, reason) = read_all(b"{\"a\":1}\n[2]\n", 100);
        assert_eq!(out, b"{\"a\":1}\n[2]\n");
        assert_eq!(reason, None);
    }

    #[test]
    fn breaks_on_oversized_malformed_and_deeply_nested() {
        let big = vec![b'x'; 1000];
        let (out, reason) = read_all(&big, 100);
        assert!(out.is_empty());
        assert!(reason.unwrap().contains("over 100 bytes"));
        let (out, reason) = read_all(b"[1]\n{nope\n[2]\n", 100);
        assert_eq!(out, b"[1]\n");
        assert!(reason.unwrap().contains("malformed"));
        let deep = format!("{}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        let (_, reason) = read_all(deep.as_bytes(), 1 << 20);
        assert!(reason.unwrap().contains("recursion limit"));
    }
}
