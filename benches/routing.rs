//! Criterion benches of the routing hot path: prompt analysis plus scoring over 20 models, for a
//! 2 KB prompt and a 1 MB prompt. Run with `cargo bench --bench routing`.

#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use smarterrouter_plugin::api::prompt::PromptView;
use smarterrouter_plugin::model::facts::ModelFacts;
use smarterrouter_plugin::routing::analysis::{analyse, analyse_with};
use smarterrouter_plugin::routing::score::ScoringSettings;
use smarterrouter_plugin::routing::score_facts;

fn twenty_models() -> Vec<ModelFacts> {
    let names = [
        "llama3.2:1b",
        "llama3.2:3b",
        "llama3.1:8b",
        "llama3.1:70b",
        "qwen2.5:0.5b",
        "qwen2.5:7b",
        "qwen2.5:14b",
        "qwen2.5:32b",
        "qwen2.5-coder:7b",
        "qwen2.5-coder:14b",
        "deepseek-r1:7b",
        "deepseek-r1:14b",
        "mistral:7b",
        "mistral-nemo:12b",
        "gemma3:4b",
        "gemma3:12b",
        "phi3:mini",
        "llava:7b",
        "codellama:34b",
        "nomic-embed-text:latest",
    ];
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut facts = ModelFacts::from_tags_entry(name, &json!({"size": 4_000_000_000u64}));
            facts.loaded = i % 5 == 0;
            facts
        })
        .collect()
}

fn prompt_of(bytes: usize) -> String {
    let sentence = "Please write a Python function that parses a CSV file, explain the algorithm step by step, and add unit tests. ";
    sentence.repeat(bytes / sentence.len() + 1)[..bytes].to_string()
}

fn bench(c: &mut Criterion) {
    let models = twenty_models();
    let settings = ScoringSettings::default();
    let two_kb = prompt_of(2 * 1024);
    let learned = smarterrouter_plugin::routing::classifier::SHIPPED
        .as_ref()
        .expect("the shipped classifier weights load");
    c.bench_function("analyse 2KB prompt (keywords)", |b| {
        b.iter(|| black_box(analyse(&PromptView::from_prompt(black_box(&two_kb)))))
    });
    c.bench_function("analyse 2KB prompt (learned)", |b| {
        b.iter(|| {
            black_box(analyse_with(
                &PromptView::from_prompt(black_box(&two_kb)),
                Some(learned),
            ))
        })
    });
    let short = "Write a haiku about the ocean.";
    c.bench_function("analyse short prompt (keywords)", |b| {
        b.iter(|| black_box(analyse(&PromptView::from_prompt(black_box(short)))))
    });
    c.bench_function("analyse short prompt (learned)", |b| {
        b.iter(|| {
            black_box(analyse_with(
                &PromptView::from_prompt(black_box(short)),
                Some(learned),
            ))
        })
    });
    let analysis = analyse(&PromptView::from_prompt(&two_kb));
    c.bench_function("score 20 models", |b| {
        b.iter(|| black_box(score_facts(black_box(&analysis), &models, &settings)))
    });
    for (label, size) in [("2KB", 2 * 1024), ("1MB", 1024 * 1024)] {
        let prompt = prompt_of(size);
        c.bench_function(
            &format!("analyse+score {label} prompt, 20 models (keywords)"),
            |b| {
                b.iter(|| {
                    let analysis = analyse(&PromptView::from_prompt(black_box(&prompt)));
                    black_box(score_facts(&analysis, &models, &settings))
                })
            },
        );
        c.bench_function(
            &format!("analyse+score {label} prompt, 20 models (learned)"),
            |b| {
                b.iter(|| {
                    let view = PromptView::from_prompt(black_box(&prompt));
                    let analysis = analyse_with(&view, Some(learned));
                    black_box(score_facts(&analysis, &models, &settings))
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
