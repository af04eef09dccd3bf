//! Admission: before a request goes to an Ollama node where its model is not loaded, the model
//! must fit in the node's budget. If it does not, loaded models are unloaded by strategy
//! (`POST /api/generate {"model", "keep_alive": 0}`) until it does; the pinned model and models
//! with requests in flight on that node are never unloaded. If even that cannot make room, the
//! request gets 503 `vram_exhausted` naming what holds the memory, instead of the node running
//! out of memory. The plan is pure ([`plan`]); [`admit`] does the calls.
//!
//! A model's size is its measured `size_vram` (the profiler's), else its file size from the
//! node's listing, else `router.vram.default_estimate_gb`. A node with no known budget (no
//! declared total, no NVML for it) or no `/api/ps` reading is not admitted against anything.

use super::events::{EventKind, VramEvent};
use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use crate::config::{NodeKind, UnloadStrategy};
use crate::upstream::{LoadedModel, Node};

/// What this router knows of a model's use on a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub in_flight: u32,
    pub last_used_ms: u64,
    /// When this router last admitted (loaded) the model on the node; 0 if never.
    pub admitted_ms: u64,
}

/// Requests in flight and last use, per node and model (from this router's requests).
#[derive(Default)]
pub struct UsageBook {
    map: Mutex<HashMap<(usize, String), Usage>>,
}

impl UsageBook {
    pub fn begin(&self, node: usize, model: &str, now_ms: u64) {
        if let Ok(mut map) = self.map.lock() {
            let usage = map.entry((node, model.to_string())).or_default();
            usage.in_flight += 1;
            usage.last_used_ms = now_ms;
        }
    }

    /// `key` is the `(node, model)` the request counted under (`RequestCtx::vram_use`).
    pub fn end(&self, key: &(usize, String), now_ms: u64) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(usage) = map.get_mut(key) {
                usage.in_flight = usage.in_flight.saturating_sub(1);
                usage.last_used_ms = now_ms;
            }
        }
    }

    pub fn admitted(&self, node: usize, model: &str, now_ms: u64) {
        if let Ok(mut map) = self.map.lock() {
            map.entry((node, model.to_string()))
                .or_default()
                .admitted_ms = now_ms;
        }
    }

    pub fn of(&self, node: usize, model: &str) -> Usage {
        self.map
            .lock()
            .ok()
            .and_then(|m| m.get(&(node, model.to_string())).copied())
            .unwrap_or_default()
    }
}

/// A loaded model as the plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub name: String,
    pub vram_bytes: u64,
    pub usage: Usage,
    pub expires_at: Option<String>,
    pub pinned: bool,
    /// Loaded less than `router.vram.min_residency_secs` ago: unloaded only if nothing else
    /// makes room (so two models do not push each other out back and forth).
    pub fresh: bool,
}

/// What to do for a cold model.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Fits,
    /// Unload these, in this order.
    Unload(Vec<String>),
    /// Cannot fit: what holds the memory, and why each stays.
    Exhausted(String),
}

/// Which models to unload so `needed` more bytes fit under `budget`.
pub fn plan(needed: u64, budget: u64, loaded: &[Loaded], strategy: UnloadStrategy) -> Plan {
    let used: u64 = loaded.iter().map(|l| l.vram_bytes).sum();
    let Some(excess) = (used + needed).checked_sub(budget).filter(|e| *e > 0) else {
        return Plan::Fits;
    };
    let mut movable: Vec<&Loaded> = loaded
        .iter()
        .filter(|l| !l.pinned && l.usage.in_flight == 0)
        .collect();
    match strategy {
        UnloadStrategy::Lru => movable.sort_by_key(|l| (l.usage.last_used_ms, l.name.clone())),
        UnloadStrategy::Largest => {
            movable.sort_by(|a, b| b.vram_bytes.cmp(&a.vram_bytes).then(a.name.cmp(&b.name)))
        }
        UnloadStrategy::Idle => {
            movable.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then(a.name.cmp(&b.name)))
        }
    }
    // Stable: the strategy's order within each group, models loaded a moment ago last.
    movable.sort_by_key(|l| l.fresh);
    let mut freed = 0;
    let mut victims = Vec::new();
    for l in movable {
        if freed >= excess {
            break;
        }
        freed += l.vram_bytes;
        victims.push(l.name.clone());
    }
    if freed >= excess {
        return Plan::Unload(victims);
    }
    let holders: Vec<String> = loaded
        .iter()
        .map(|l| {
            let why = if l.pinned {
                " pinned"
            } else if l.usage.in_flight > 0 {
                " in use"
            } else {
                ""
            };
            format!("{} {:.1} GB{why}", l.name, l.vram_bytes as f64 / 1e9)
        })
        .collect();
    Plan::Exhausted(format!(
        "the model needs {:.1} GB but the node's budget is {:.1} GB and {} hold {:.1} GB that cannot all be freed",
        needed as f64 / 1e9,
        budget as f64 / 1e9,
        if holders.is_empty() { "no models".to_string() } else { holders.join(", ") },
        used as f64 / 1e9
    ))
}

/// What admission needs besides the node.
pub struct AdmitContext<'a> {
    pub budget: Option<u64>,
    pub needed: u64,
    pub pinned: Option<&'a str>,
    pub strategy: UnloadStrategy,
    pub usage: &'a UsageBook,
    /// Where the loads and unloads are recorded with their reasons (`/admin/vram`'s `events`).
    pub events: &'a super::events::VramEvents,
    /// The monitor's reload of the pinned model, rather than a request.
    pub keeping_pinned: bool,
    pub client: &'a reqwest::Client,
    /// Longest wait for busy models to finish before refusing.
    pub group_wait: std::time::Duration,
    /// `router.vram.min_residency_secs`.
    pub min_residency: std::time::Duration,
    /// Cluster mode: loads reserve their memory in Redis, so instances cannot overcommit a node.
    pub cluster: Option<&'a crate::cluster::Cluster>,
}

/// How long a reservation holds without the model showing in the node's `/api/ps` (Ollama's
/// default keep-alive); after that the node's own readings count.
pub const RESERVATION_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Makes room for `model` on `node` (unloading by strategy), or says why it cannot. When only
/// models with requests in flight stand in the way, it waits for them to finish, up to
/// `cx.group_wait`: requests for a cold model then follow the busy model's as a group instead of
/// failing, and the node switches models once rather than back and forth.
pub async fn admit(node: &Node, model: &str, cx: AdmitContext<'_>) -> Result<(), String> {
    let started = std::time::Instant::now();
    let (victims, budget_seen) = loop {
        if node.kind != NodeKind::Ollama || node.has_loaded(model) {
            return Ok(());
        }
        let (Some(budget), Some(loaded)) = (cx.budget, node.state().loaded) else {
            return Ok(());
        };
        let view: Vec<Loaded> = loaded
            .iter()
            .map(|l| Loaded {
                name: l.name.clone(),
                vram_bytes: l.vram_bytes,
                usage: cx.usage.of(node.id, &l.name),
                expires_at: l.expires_at.clone(),
                pinned: cx.pinned == Some(l.name.as_str()),
                fresh: {
                    let admitted = cx.usage.of(node.id, &l.name).admitted_ms;
                    admitted > 0
                        && crate::store::now_unix_ms().saturating_sub(admitted)
                            < cx.min_residency.as_millis() as u64
                },
            })
            .collect();
        match plan(cx.needed, budget, &view, cx.strategy) {
            Plan::Fits => break (Vec::new(), budget),
            Plan::Unload(victims) => break (victims, budget),
            Plan::Exhausted(why) => {
                let idle: Vec<Loaded> = view
                    .iter()
                    .map(|l| Loaded {
                        usage: Usage::default(),
                        ..l.clone()
                    })
                    .collect();
                let drains = !matches!(
                    plan(cx.needed, budget, &idle, cx.strategy),
                    Plan::Exhausted(_)
                );
                if !drains || started.elapsed() >= cx.group_wait {
                    return Err(format!(
                        "not enough GPU memory on {} for {model}: {why} (router.vram.max_total_gb, ROUTER_VRAM_MAX_TOTAL_GB{})",
                        node.url,
                        if drains { "; waited router.vram.group_wait_ms for busy models" } else { "" }
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    // The cluster's reservation first, so a refusal unloads nothing.
    if let Some(cluster) = cx.cluster.filter(|c| c.is_up()) {
        let loaded: Vec<(String, u64)> = node
            .state()
            .loaded
            .unwrap_or_default()
            .iter()
            .filter(|l| !victims.contains(&l.name))
            .map(|l| (l.name.clone(), l.vram_bytes))
            .collect();
        let reserved = cluster
            .reserve_vram(
                &node.url,
                model,
                cx.needed,
                budget_seen,
                &loaded,
                RESERVATION_TTL,
            )
            .await;
        if let Some(Err(held)) = reserved {
            const GB: f64 = 1e9;
            return Err(format!(
                "not enough GPU memory on {} for {model}: it needs {:.1} GB and the cluster's instances hold {:.1} GB of the {:.1} GB budget (loaded or being loaded by another router; router.vram.max_total_gb, ROUTER_VRAM_MAX_TOTAL_GB)",
                node.url,
                cx.needed as f64 / GB,
                held as f64 / GB,
                budget_seen as f64 / GB
            ));
        }
    }
    for victim in victims {
        unload(node, &victim, cx.client)
            .await
            .map_err(|why| format!("could not make room on {} for {model}: {why}", node.url))?;
        // Gone from the node's view at once (the victims before a failed unload too), and
        // recorded before any other await, so a sample taken meanwhile does not record it as
        // an unload of its own.
        node.unloaded(&victim);
        cx.events.record(VramEvent {
            unix_ms: crate::store::now_unix_ms(),
            node: node.url.clone(),
            reason: format!(
                "to fit {model} in the node's budget ({} first)",
                cx.strategy.as_str()
            ),
            model: victim.clone(),
            kind: EventKind::Unload,
        });
        if let Some(cluster) = cx.cluster {
            cluster.release_vram(&node.url, &victim).await;
        }
        tracing::info!(node = %node.url, model = %victim, for_model = %model, strategy = cx.strategy.as_str(), "unloaded a model to fit another in the VRAM budget");
        crate::metrics::model_unloaded("budget");
    }
    // Counted as loaded from now on (even by readings taken before the load shows), so
    // concurrent admissions see its memory taken.
    node.admitted(LoadedModel {
        name: model.to_string(),
        size_bytes: cx.needed,
        vram_bytes: cx.needed,
        expires_at: None,
    });
    cx.usage
        .admitted(node.id, model, crate::store::now_unix_ms());
    cx.events.record(VramEvent {
        unix_ms: crate::store::now_unix_ms(),
        node: node.url.clone(),
        model: model.to_string(),
        kind: EventKind::Load,
        reason: if cx.keeping_pinned {
            "the pinned model (router.routing.pinned_model) was not loaded".to_string()
        } else {
            format!(
                "a request for it ({:.1} GB reserved)",
                cx.needed as f64 / 1e9
            )
        },
    });
    crate::metrics::model_loaded();
    Ok(())
}

/// A model's size for admission: measured (`size_vram` from the profiler), else its size in
/// the node's listing, else the default estimate.
pub fn estimate(node: &Node, model: &str, measured: Option<u64>, default: u64) -> u64 {
    let listed = node
        .state()
        .models
        .iter()
        .find(|m| m.name == model)
        .map(|m| m.facts.size_bytes)
        .filter(|size| *size > 0);
    measured.or(listed).unwrap_or(default)
}

/// Ollama's load request for a model that must stay: no prompt, `keep_alive: -1`.
pub async fn load_pinned(
    node: &Node,
    model: &str,
    client: &reqwest::Client,
    timeout: std::time::Duration,
) -> Result<(), String> {
    keep_alive(node, model, -1, client, Some(timeout), "loading").await
}

/// Ollama's unload: a generate request with no prompt and `keep_alive: 0`.
async fn unload(node: &Node, model: &str, client: &reqwest::Client) -> Result<(), String> {
    keep_alive(node, model, 0, client, None, "unloading").await
}

/// `POST /api/generate {"model", "keep_alive"}` with no prompt: Ollama's load (`-1`: for good)
/// and unload (`0`) request.
async fn keep_alive(
    node: &Node,
    model: &str,
    keep_alive: i64,
    client: &reqwest::Client,
    timeout: Option<std::time::Duration>,
    doing: &str,
) -> Result<(), String> {
    let url = format!("{}/api/generate", node.url);
    let mut request = client
        .post(&url)
        .json(&json!({"model": model, "keep_alive": keep_alive}));
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", crate::upstream::client::describe(&e)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "POST {url} {doing} {model}: HTTP {}",
            response.status()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(name: &str, gb: u64, last_used_ms: u64) -> Loaded {
        Loaded {
            name: name.into(),
            vram_bytes: gb * 1_000_000_000,
            usage: Usage {
                in_flight: 0,
                last_used_ms,
                admitted_ms: 0,
            },
            expires_at: Some(format!("2026-12-02T10:0{last_used_ms}:00Z")),
            pinned: false,
            fresh: false,
        }
    }

    const GB: u64 = 1_000_000_000;

    #[test]
    fn each_strategy_unloads_in_its_order_and_only_as_much_as_needed() {
        let models = [loaded("a", 2, 3), loaded("b", 5, 1), loaded("c", 3, 2)];
        // 10 GB used, budget 12, 4 more needed: 2 GB must go.
        assert_eq!(
            plan(2 * GB, 12 * GB, &models, UnloadStrategy::Lru),
            Plan::Fits
        );
        assert_eq!(
            plan(4 * GB, 12 * GB, &models, UnloadStrategy::Lru),
            Plan::Unload(vec!["b".into()]),
            "least recently used first"
        );
        assert_eq!(
            plan(4 * GB, 12 * GB, &models, UnloadStrategy::Largest),
            Plan::Unload(vec!["b".into()])
        );
        assert_eq!(
            plan(7 * GB, 12 * GB, &models, UnloadStrategy::Lru),
            Plan::Unload(vec!["b".into()]),
        );
        assert_eq!(
            plan(8 * GB, 12 * GB, &models, UnloadStrategy::Lru),
            Plan::Unload(vec!["b".into(), "c".into()]),
        );
        assert_eq!(
            plan(3 * GB, 9 * GB, &models, UnloadStrategy::Idle),
            Plan::Unload(vec!["b".into()]),
            "earliest expires_at first"
        );
        assert_eq!(
            plan(3 * GB, 6 * GB, &models, UnloadStrategy::Idle),
            Plan::Unload(vec!["b".into(), "c".into()]),
        );
        assert_eq!(
            plan(3 * GB, 10 * GB, &models, UnloadStrategy::Largest),
            Plan::Unload(vec!["b".into()]),
        );
    }

    #[test]
    fn pinned_and_busy_models_stay_and_exhaustion_names_the_holders() {
        let mut models = vec![loaded("a", 4, 1), loaded("b", 4, 2)];
        models[0].pinned = true;
        models[1].usage.in_flight = 1;
        match plan(4 * GB, 9 * GB, &models, UnloadStrategy::Lru) {
            Plan::Exhausted(why) => {
                assert!(why.contains("a 4.0 GB pinned"), "{why}");
                assert!(why.contains("b 4.0 GB in use"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        models[1].usage.in_flight = 0;
        assert_eq!(
            plan(4 * GB, 9 * GB, &models, UnloadStrategy::Lru),
            Plan::Unload(vec!["b".into()]),
            "the pinned one is skipped even though it was used longest ago"
        );
    }

    #[test]
    fn a_model_loaded_a_moment_ago_goes_last() {
        let mut models = vec![loaded("a", 4, 1), loaded("b", 4, 2)];
        models[0].fresh = true;
        assert_eq!(
            plan(4 * GB, 9 * GB, &models, UnloadStrategy::Lru),
            Plan::Unload(vec!["b".into()]),
            "a is least recently used but was just loaded"
        );
        assert_eq!(
            plan(8 * GB, 9 * GB, &models, UnloadStrategy::Lru),
            Plan::Unload(vec!["b".into(), "a".into()]),
            "unless the budget forces it"
        );
    }

    #[test]
    fn usage_counts_in_flight_and_last_use() {
        let book = UsageBook::default();
        book.begin(0, "m", 10);
        book.begin(0, "m", 20);
        assert_eq!(
            book.of(0, "m"),
            Usage {
                in_flight: 2,
                last_used_ms: 20,
                admitted_ms: 0
            }
        );
        book.end(&(0, "m".to_string()), 30);
        assert_eq!(
            book.of(0, "m"),
            Usage {
                in_flight: 1,
                last_used_ms: 30,
                admitted_ms: 0
            }
        );
        assert_eq!(book.of(1, "m"), Usage::default());
        book.admitted(0, "m", 40);
        assert_eq!(book.of(0, "m").admitted_ms, 40);
    }
}
