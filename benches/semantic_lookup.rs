//! Criterion bench of the semantic cache's lookup: 10,000 stored 384-dimension vectors (the
//! size of all-MiniLM-L6-v2's), all in one context (the worst case: every entry is compared),
//! one query. Run with `cargo bench --bench semantic_lookup`. Target: under 1 ms median.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use smarterrouter_plugin::cache::semantic::SemanticIndex;

/// A deterministic pseudo-random vector.
fn vector(seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..384)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let context = [7u8; 16];
    let index = SemanticIndex::new(10_000);
    for i in 0..10_000u64 {
        let mut hash = [0u8; 16];
        hash[..8].copy_from_slice(&i.to_be_bytes());
        index.insert(
            context,
            hash,
            &format!("stored question number {i}"),
            vector(i),
        );
    }
    assert_eq!(index.len(), 10_000);
    let query = vector(123_456);
    c.bench_function("semantic lookup, 10k entries in one context", |b| {
        b.iter(|| {
            black_box(index.lookup(
                black_box(&context),
                "what is the stored question",
                black_box(&query),
                0.85,
                true,
            ))
        })
    });
}

criterion_group!(benches, lookup);
criterion_main!(benches);
