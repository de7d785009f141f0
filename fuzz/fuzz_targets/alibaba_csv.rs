//! cargo-fuzz entry for `targets::alibaba_csv` (see `fuzz/targets.rs` for what it checks).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, body) = targets::TARGETS
        .iter()
        .find(|(name, _)| *name == "alibaba_csv")
        .expect("listed in TARGETS");
    body(data)
});
