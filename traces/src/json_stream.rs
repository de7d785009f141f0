//! Reading a stream of JSON documents (one document, or JSON lines) with positions that refer to
//! the whole file, and JSON paths for errors.

use crate::{IngestOptions, IngestSummary, Location, TraceError, io_error};
use serde::de::DeserializeSeed;
use std::io::{BufRead, Read};

/// Walks the documents of a JSON input one at a time.
pub(crate) struct Documents<R: BufRead> {
    inner: R,
    /// Newlines consumed so far (the next document starts on line `lines + 1` or later).
    lines: u64,
    source: String,
}

impl<R: BufRead> Documents<R> {
    pub(crate) fn new(inner: R, source: &str) -> Self {
        Documents {
            inner,
            lines: 0,
            source: source.to_string(),
        }
    }

    /// Skips whitespace and byte-order marks; returns whether another document follows.
    pub(crate) fn next_document(&mut self) -> Result<bool, TraceError> {
        loop {
            let buf = self
                .inner
                .fill_buf()
                .map_err(|e| io_error(&self.source, &e))?;
            if buf.is_empty() {
                return Ok(false);
            }
            let skip = buf
                .iter()
                .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0xef | 0xbb | 0xbf))
                .count();
            self.lines += buf[..skip].iter().filter(|&&b| b == b'\n').count() as u64;
            let rest = skip < buf.len();
            self.inner.consume(skip);
            if rest {
                return Ok(true);
            }
        }
    }

    /// The line the next document starts on.
    pub(crate) fn line(&self) -> u64 {
        self.lines + 1
    }

    /// Deserializes one document through `seed`. Syntax and type errors carry the file line,
    /// column and the JSON path (prefixed with `prefix`).
    pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        let start = self.lines;
        let mut counting = CountingRead {
            inner: &mut self.inner,
            newlines: 0,
        };
        let mut de = serde_json::Deserializer::from_reader(&mut counting);
        let mut track = serde_path_to_error::Track::new();
        let result = seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
        let newlines = counting.newlines;
        self.lines = start + newlines;
        result.map_err(|e: serde_json::Error| {
            let location = if e.line() > 0 {
                Location::LineColumn(start + e.line() as u64, e.column() as u64)
            } else {
                Location::Line(start + 1)
            };
            let full = e.to_string();
            let message = match full.rfind(" at line ") {
                Some(cut) => full[..cut].to_string(),
                None => full,
            };
            let reason = if e.is_io() {
                "unreadable"
            } else {
                "unparsable document"
            };
            TraceError::new(
                &self.source,
                location,
                track.path().to_string(),
                reason,
                message,
            )
        })
    }

    /// After a broken document in lenient mode: skip to the next line, where a JSON-lines
    /// input's next document starts.
    pub(crate) fn skip_line(&mut self) -> Result<(), TraceError> {
        let mut junk = Vec::new();
        self.inner
            .read_until(b'\n', &mut junk)
            .map_err(|e| io_error(&self.source, &e))?;
        if junk.ends_with(b"\n") {
            self.lines += 1;
        }
        Ok(())
    }
}

struct CountingRead<'a, R> {
    inner: &'a mut R,
    newlines: u64,
}

impl<R: Read> Read for CountingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(n)
    }
}

/// Runs `parse_one` on every document; a broken document is an error in strict mode and, in
/// lenient mode, a counted skip after which reading resumes on the next line.
pub(crate) fn each_document<R: BufRead>(
    docs: &mut Documents<R>,
    options: IngestOptions,
    summary: &mut IngestSummary,
    mut parse_one: impl FnMut(&mut Documents<R>, &mut IngestSummary) -> Result<(), TraceError>,
) -> Result<(), TraceError> {
    let mut any = false;
    while docs.next_document()? {
        any = true;
        if let Err(e) = parse_one(docs, summary) {
            if e.reason == "unreadable" {
                return Err(e);
            }
            summary.malformed(options, e)?;
            docs.skip_line()?;
        }
    }
    if !any {
        return Err(TraceError::new(
            &docs.source,
            Location::Input,
            ".",
            "empty input",
            "the input is empty",
        ));
    }
    Ok(())
}
