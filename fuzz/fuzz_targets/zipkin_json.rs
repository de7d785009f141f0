//! Fuzz the Zipkin reader in strict and lenient mode: any input must give a summary or an
//! error, never a panic, and a lenient read must account for every record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{BufReader, Cursor};
use traces::{Format, IngestOptions, ingest};

fuzz_target!(|data: &[u8]| {
    for lenient in [false, true] {
        let input = Box::new(BufReader::new(Cursor::new(data.to_vec())));
        let mut calls = 0u64;
        if let Ok((_, summary)) = ingest(input, "fuzz", Some(Format::Zipkin), IngestOptions { lenient }, &mut |_| calls += 1) {
            assert_eq!(summary.calls, calls);
        }
    }
});
