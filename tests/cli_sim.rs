//! `microreboot sim` end to end: output files, determinism, bad options.

mod common;
use common::microreboot;

fn run_sim(dir: &std::path::Path, seed: &str) -> Vec<u8> {
    let out = dir.join(format!("run-{seed}-{}", dir.read_dir().unwrap().count()));
    let (code, stdout, stderr) = microreboot(&[
        "sim",
        "--app",
        "hotelReservation",
        "--fault",
        "partition",
        "--fault-start",
        "5",
        "--fault-duration",
        "10",
        "--duration",
        "25",
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("partition on search"), "{stdout}");
    for f in ["metrics.csv", "metrics.jsonl", "faults.jsonl"] {
        assert!(out.join(f).exists(), "{f}");
    }
    std::fs::read(out.join("metrics.csv")).unwrap()
}

#[test]
fn the_same_seed_writes_byte_identical_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_sim(dir.path(), "3");
    let b = run_sim(dir.path(), "3");
    let c = run_sim(dir.path(), "4");
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other bytes");
    let text = String::from_utf8(a).unwrap();
    assert!(text.starts_with("second,kind,name,count,errors"));
    assert!(text.lines().count() > 25 * 20, "a row per second per scope");
}

#[test]
fn bad_options_list_the_valid_choices() {
    let (code, _, err) = microreboot(&["sim", "--app", "sockShop", "--duration", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("socialNetwork, hotelReservation, mediaMicroservices"),
        "{err}"
    );
    let (code, _, err) = microreboot(&["sim", "--fault", "flood", "--duration", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("crash, latency, resource, partition, misconfig"),
        "{err}"
    );
    let (code, _, err) = microreboot(&[
        "sim",
        "--fault",
        "crash",
        "--target",
        "nope",
        "--duration",
        "100",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`nope` is not a service of socialNetwork; choose from: nginx-thrift"),
        "{err}"
    );
    let (code, _, err) = microreboot(&["sim", "--fault", "crash", "--fault-start", "500"]);
    assert_eq!(code, 2);
    assert!(err.contains("the fault would never be injected"), "{err}");
    let (code, _, err) = microreboot(&["sim", "--duration", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--duration"), "{err}");
    let (code, _, err) = microreboot(&["sim", "--duration", "1", "--out", "/proc/forbidden/out"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot create output directory"), "{err}");
}
