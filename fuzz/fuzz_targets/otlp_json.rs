//! cargo-fuzz entry for `targets::otlp_json` (see `fuzz/targets.rs` for what it checks).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, body) = targets::TARGETS
        .iter()
        .find(|(name, _)| *name == "otlp_json")
        .expect("listed in TARGETS");
    body(data)
});
