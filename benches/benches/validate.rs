//! Criterion bench `validate`: a 32-step plan against a 5,000-service graph.

use criterion::{Criterion, criterion_group, criterion_main};
use kernel::validate::validate;
use microreboot_benches::validate_fixture;
use std::hint::black_box;

fn bench_validate(c: &mut Criterion) {
    let f = validate_fixture(5000, 7);
    let view = f.view();
    c.bench_function("validate/32-steps/5000-services", |b| {
        b.iter(|| {
            validate(
                black_box(&f.plan),
                black_box(&f.graph),
                black_box(&f.scope),
                &view,
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_validate
}
criterion_main!(benches);
