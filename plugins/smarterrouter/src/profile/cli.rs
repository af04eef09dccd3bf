//! `smarterrouter profile`: asks every node for its models once, profiles each chat model (or
//! the one named with `--model`), saves each profile to the store as soon as it is complete, and
//! prints a summary table.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::runner::{profile_model, Progress, RunSettings, Target};
use super::{suites, ModelProfile};
use crate::routing::ModelCatalog;
use crate::upstream::discovery::Discovery;
use crate::RouterState;

const CATEGORIES: &[&str] = &[
    "coding",
    "reasoning",
    "math",
    "factual",
    "instruction",
    "creativity",
];

/// Runs the profiles; `Err` explains what stopped it.
pub async fn run(
    state: Arc<RouterState>,
    only: Option<String>,
) -> Result<Vec<ModelProfile>, String> {
    let suites = suites::all()?;
    Discovery {
        registry: Arc::clone(&state.registry),
        client: state.http.clone(),
        interval: Duration::from_secs(1),
        vram_history: None,
    }
    .refresh_all()
    .await;
    let (targets, skipped) = targets(&state, only.as_deref());
    for line in &skipped {
        eprintln!("{line}");
    }
    if targets.is_empty() {
        return Err(match only.as_deref() {
            Some(name) => format!(
                "no healthy node has model {name:?} (available: {})",
                state.registry.all_models().join(", ")
            ),
            None => "no healthy node offers a chat model".to_string(),
        });
    }
    let config = &state.config.profiling;
    let settings = RunSettings {
        prompts_per_category: config.prompts_per_category,
        timeout: Duration::from_secs(config.timeout_secs),
        max_tokens: config.max_tokens,
    };
    // No client-wide timeout: each prompt has its own.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
    eprintln!(
        "profiling {} model{} ({} prompts per category, {} at a time)",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        settings.prompts_per_category,
        config.concurrency
    );
    let report = |p: Progress| eprintln!("{}", progress_line(&p));
    let judge = match config.judge.enabled {
        true => Some(super::judge::Judge::new(config.judge.clone())?),
        false => None,
    };
    if judge.is_some() {
        eprintln!(
            "creativity answers are graded by the judge model {}",
            config.judge.model
        );
    }
    let results: Vec<Result<ModelProfile, String>> = futures_util::stream::iter(targets)
        .map(|target| {
            let (client, suites, settings, state, judge) =
                (&client, &suites, &settings, &state, judge.as_ref());
            async move {
                let started = std::time::Instant::now();
                let profile =
                    profile_model(client, &target, suites, settings, judge, &report).await;
                if !profile.is_usable() {
                    return Err(format!(
                        "{}: {} of the prompts got no answer (see the lines above); the profile was not saved",
                        target.model, profile.errors
                    ));
                }
                let store = state
                    .store
                    .get()
                    .ok_or_else(|| "the store is not open".to_string())?;
                let saved = profile.clone();
                tokio::task::spawn_blocking(move || store.put_profile(&saved))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                eprintln!(
                    "[{}] profile saved after {:.1} s",
                    target.model,
                    started.elapsed().as_secs_f32()
                );
                state.profiles.insert(profile.clone());
                Ok(profile)
            }
        })
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    let mut profiles = Vec::new();
    for result in results {
        profiles.push(result?);
    }
    profiles.sort_by(|a, b| a.model.cmp(&b.model));
    Ok(profiles)
}

/// The models to profile on healthy nodes (one node per model), and a line per skipped node.
pub fn targets(state: &RouterState, only: Option<&str>) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for node in state.registry.nodes() {
        let node_state = node.state();
        if !node_state.healthy {
            skipped.push(format!(
                "skipping node {} (down: {})",
                node.url,
                node_state.last_error.as_deref().unwrap_or("no answer")
            ));
            continue;
        }
        for model in node_state.models.iter() {
            let wanted = match only {
                Some(name) => model.name == name || model.name == format!("{name}:latest"),
                None => model.facts.can_chat(),
            };
            if wanted && !targets.iter().any(|t: &Target| t.model == model.name) {
                targets.push(Target {
                    model: model.name.clone(),
                    node_url: node.url.clone(),
                    node_kind: node.kind,
                    digest: model
                        .tags_entry
                        .get("digest")
                        .and_then(|d| d.as_str())
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                });
            }
        }
    }
    (targets, skipped)
}

/// One progress line: `[model] [#####.....]  3/18 coding/c2 pass`.
pub fn progress_line(p: &Progress) -> String {
    let mark = if p.passed { "pass" } else { "fail" };
    let error = p
        .error
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    format!(
        "[{}] {} {:>3}/{} {}/{} {mark}{error}",
        p.model,
        bar(p.done, p.total),
        p.done,
        p.total,
        p.category,
        p.prompt_id
    )
}

/// A 20-character progress bar: `[#####...............]`.
fn bar(done: usize, total: usize) -> String {
    let filled = (done * 20).checked_div(total).unwrap_or(20).min(20);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(20 - filled))
}

/// The summary table: one row per model, score per category, speed and memory.
pub fn print_summary(profiles: &[ModelProfile], out: &mut dyn Write) -> std::io::Result<()> {
    write!(out, "{:<28}", "model")?;
    for c in CATEGORIES {
        write!(out, " {c:>11}")?;
    }
    writeln!(
        out,
        " {:>8} {:>7} {:>8} {:>9}",
        "ttft_ms", "tok/s", "load_ms", "vram_mb"
    )?;
    for p in profiles {
        write!(out, "{:<28}", p.model)?;
        for c in CATEGORIES {
            let cell = p
                .categories
                .get(*c)
                .map(|r| format!("{}/{} {:.2}", r.correct, r.total, r.score))
                .unwrap_or_else(|| "-".to_string());
            write!(out, " {cell:>11}")?;
        }
        let num = |v: Option<f32>| {
            v.map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".to_string())
        };
        let vram = p
            .vram_bytes
            .map(|b| format!("{}", b / 1_000_000))
            .unwrap_or_else(|| "-".to_string());
        writeln!(
            out,
            " {:>8} {:>7} {:>8} {:>9}",
            num(p.ttft_ms),
            p.tokens_per_sec
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "-".to_string()),
            num(p.load_ms),
            vram
        )?;
    }
    Ok(())
}
