//! Criterion benches of recovery-group inference and trace ingestion.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use microreboot_benches::{alibaba_csv, infer_fixtures, rebuild, rebuild_target};
use std::hint::black_box;
use traces::IngestOptions;

fn bench_infer(c: &mut Criterion) {
    let fixtures = infer_fixtures(1024, 50_000);
    let incident = IncidentId::try_from("bench").expect("valid");
    for f in &fixtures {
        let mut group = c.benchmark_group(format!("infer/{}", f.name));
        let mut inference = Inference::new();
        let mut i = 0;
        group.bench_function("query", |b| {
            b.iter(|| {
                i = (i + 1) % f.symptoms.len();
                inference.infer(
                    &f.graph,
                    f.symptoms[i],
                    incident.clone(),
                    GroupConfig::default(),
                )
            })
        });
        group.sample_size(10);
        let mut w = rebuild_target(&f.graph);
        group.bench_function("rebuild-window+query", |b| {
            b.iter(|| {
                rebuild(&mut w, &f.window);
                let id = w.graph().id(&f.graph.service(f.symptoms[0]).name);
                id.map(|s| inference.infer(w.graph(), s, incident.clone(), GroupConfig::default()))
            })
        });
        group.finish();
    }
}

fn bench_ingest(c: &mut Criterion) {
    let graph = traces::synth::alibaba_like(1);
    let rows = 200_000;
    let csv = alibaba_csv(&graph, rows, 3);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    group.bench_function("alibaba-csv", |b| {
        b.iter_batched(
            || traces::WindowedGraph::new(Some(60_000_000)),
            |mut w| {
                traces::alibaba::read(
                    black_box(&csv[..]),
                    "bench",
                    IngestOptions::default(),
                    &mut |call| w.ingest(call),
                )
                .expect("synthetic CSV is well formed");
                w
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_infer, bench_ingest
}
criterion_main!(benches);
