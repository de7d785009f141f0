//! CSV records from a byte stream, with a fast path for the common line.
//!
//! A line without a quote or a carriage return is split at its commas in place: no copy, no
//! state machine. Anything else — quoted fields (which may span lines), `\r` terminators — is
//! read by the `csv-core` state machine, which the `csv` crate itself is built on, so both
//! paths give the records the `csv` crate would (comma delimiter, `"` quotes with doubled `""`
//! escapes, `\n`, `\r\n` or `\r` terminators, empty lines skipped, records of any length).
//! Records remember the physical line they start on.

use std::io::Read;

/// Bytes read from the input at a time.
const CHUNK: usize = 1 << 16;

/// The bytes the fast path stops at: delimiter, line feed, and the two it leaves to the state
/// machine (quote, carriage return). One table load per byte keeps the common byte cheap.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

/// A record: its fields as byte ranges of [`Record::data`].
pub struct Record<'a> {
    /// The record's bytes (for the slow path, the unescaped fields back to back).
    pub data: &'a [u8],
    /// Field `i` is `data[bounds[i].0..bounds[i].1]`.
    pub bounds: &'a [(usize, usize)],
    /// The physical line (1-based) the record starts on.
    pub line: u64,
}

impl Record<'_> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    /// Field `i`'s bytes.
    pub fn field(&self, i: usize) -> &[u8] {
        let (a, b) = self.bounds[i];
        &self.data[a..b]
    }

    /// Bytes of all fields together (without delimiters and quotes).
    pub fn field_bytes(&self) -> usize {
        self.bounds.iter().map(|&(a, b)| b - a).sum()
    }
}

/// Reads [`Record`]s from `R`.
pub struct Rows<R> {
    input: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Line of `buf[start]`.
    line: u64,
    bounds: Vec<(usize, usize)>,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: Read> Rows<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        Rows {
            input,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            line: 1,
            bounds: Vec::new(),
            core: csv_core::Reader::new(),
            out: vec![0; 1024],
            ends: vec![0; 64],
        }
    }

    /// The first record, always through the state machine (which strips a leading UTF-8 byte
    /// order mark, as the `csv` crate does for the first record only).
    pub fn header(&mut self) -> std::io::Result<Option<Record<'_>>> {
        self.slow()
    }

    /// The next record, or `None` at the end of the input.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record<'_>>> {
        'line: loop {
            // One pass over the line: field bounds, its end, or a byte that needs the state
            // machine.
            self.bounds.clear();
            let mut field = 0;
            let pending = &self.buf[self.start..self.end];
            let mut line_len = None;
            for (i, &b) in pending.iter().enumerate() {
                if !SPECIAL[b as usize] {
                    continue;
                }
                match b {
                    b',' => {
                        self.bounds.push((field, i));
                        field = i + 1;
                    }
                    b'\n' => {
                        line_len = Some(i);
                        break;
                    }
                    _ => return self.slow(),
                }
            }
            let (len, newline) = match line_len {
                Some(i) => (i, 1),
                None if !self.eof => {
                    self.fill()?;
                    continue 'line;
                }
                None if pending.is_empty() => return Ok(None),
                None => (pending.len(), 0),
            };
            let from = self.start;
            let line = self.line;
            self.start += len + newline;
            self.line += 1;
            if len == 0 {
                continue;
            }
            self.bounds.push((field, len));
            return Ok(Some(Record {
                data: &self.buf[from..from + len],
                bounds: &self.bounds,
                line,
            }));
        }
    }

    /// Reads one record with the state machine from `buf[start..]`.
    fn slow(&mut self) -> std::io::Result<Option<Record<'_>>> {
        let (mut nout, mut nend) = (0, 0);
        let mut line = None;
        loop {
            if self.start == self.end && !self.eof {
                // An empty input would tell the state machine the input has ended.
                self.fill()?;
                continue;
            }
            let input = &self.buf[self.start..self.end];
            let (res, nin, o, e) =
                self.core
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            let consumed = &input[..nin];
            if line.is_none() {
                // Empty lines before the record are skipped: it starts after them.
                let skipped = consumed
                    .iter()
                    .take_while(|&&b| b == b'\n' || b == b'\r')
                    .count();
                if skipped < nin || matches!(res, csv_core::ReadRecordResult::Record) {
                    let before = consumed[..skipped].iter().filter(|&&b| b == b'\n');
                    line = Some(self.line + before.count() as u64);
                }
            }
            self.line += consumed.iter().filter(|&&b| b == b'\n').count() as u64;
            self.start += nin;
            nout += o;
            nend += e;
            match res {
                // Refilled above; at the end of the input the next call passes an empty
                // input, which tells the state machine so.
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    let n = self.out.len();
                    self.out.resize(n * 2, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len();
                    self.ends.resize(n * 2, 0);
                }
                csv_core::ReadRecordResult::Record => break,
                csv_core::ReadRecordResult::End => return Ok(None),
            }
        }
        self.bounds.clear();
        let mut from = 0;
        for &end in &self.ends[..nend] {
            self.bounds.push((from, end));
            from = end;
        }
        Ok(Some(Record {
            data: &self.out[..nout],
            bounds: &self.bounds,
            line: line.unwrap_or(self.line),
        }))
    }

    /// Moves the pending bytes to the front and reads more (growing the buffer for a long
    /// line); sets `eof` at the end of the input.
    fn fill(&mut self) -> std::io::Result<()> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.end == self.buf.len() {
            let n = self.buf.len();
            self.buf.resize(n * 2, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
