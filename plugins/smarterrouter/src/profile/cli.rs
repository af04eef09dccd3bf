//! `smarterrouter profile`: asks every node for its models once, profiles each chat model (or
//! the one named with `--model`), saves each profile to the store as soon as it is complete, and
//! prints a summary table.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::run::{self, ProfileError, ProfileRun, Saver};
use super::runner::Progress;
use crate::config::ProfilingConfig;
use crate::model::{ModelProfile, ProfileBook};
use crate::store::Store;
use crate::upstream::discovery::Discovery;
use crate::upstream::{NodeClient, Registry};

const CATEGORIES: &[&str] = &[
    "coding",
    "reasoning",
    "math",
    "factual",
    "instruction",
    "creativity",
];

/// The CLI's own view of the router it would run as.
pub struct CliContext<'a> {
    pub registry: &'a Arc<Registry>,
    pub client: &'a NodeClient,
    pub profiles: &'a ProfileBook,
    pub config: &'a ProfilingConfig,
}

/// Runs the profiles against `store` (which the CLI owns); `Err` explains what stopped it.
pub async fn run(
    cli: CliContext<'_>,
    store: Arc<dyn Store>,
    only: Option<String>,
) -> Result<Vec<ModelProfile>, ProfileError> {
    Discovery {
        registry: Arc::clone(cli.registry),
        client: cli.client.clone(),
        interval: Duration::from_secs(1),
    }
    .refresh_all()
    .await;
    let (targets, skipped) = run::targets(cli.registry, only.as_deref());
    for line in &skipped {
        eprintln!("{line}");
    }
    if targets.is_empty() {
        return Err(run::no_target(cli.registry, only.as_deref()));
    }
    let config = cli.config;
    eprintln!(
        "profiling {} model{} ({} prompts per category, {} at a time)",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        config.prompts_per_category,
        config.concurrency
    );
    if config.judge.enabled {
        eprintln!(
            "creativity answers are graded by the judge model {}",
            config.judge.model
        );
    }
    let saver = Saver::Direct(store);
    let results = run::run_and_save(
        ProfileRun {
            client: cli.client,
            config,
            saver: &saver,
            profiles: cli.profiles,
        },
        targets,
        &|p: Progress| eprintln!("{}", progress_line(&p)),
        &|p: &ModelProfile, took: Duration| {
            eprintln!(
                "[{}] profile saved after {:.1} s",
                p.model,
                took.as_secs_f32()
            )
        },
    )
    .await?;
    let mut profiles = Vec::new();
    for result in results {
        profiles.push(result?);
    }
    profiles.sort_by(|a, b| a.model.cmp(&b.model));
    Ok(profiles)
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
