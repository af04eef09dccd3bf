//! Pools and nodes from the YAML, what each node offers (filled by [`discovery`]), its health,
//! and the choice of a node for a model.

pub mod client;
pub mod discovery;

pub use client::{NodeClient, UpstreamError};

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde_json::Value;

use crate::config::{NodeKind, ResolvedNode};
use crate::model::facts::ModelFacts;
use crate::routing::ModelCatalog;

/// One model as a node lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeModel {
    pub name: String,
    /// The node's own `/api/tags` entry (synthesised for OpenAI-kind nodes).
    pub tags_entry: Value,
    /// Size, capabilities and load state, for the scoring engine.
    pub facts: ModelFacts,
}

/// A model loaded on a node, as its `/api/ps` says.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedModel {
    pub name: String,
    /// `size`: the whole model in memory (GPU and CPU).
    pub size_bytes: u64,
    /// `size_vram`: the part in GPU memory.
    pub vram_bytes: u64,
    /// `expires_at`: when Ollama unloads it if nothing uses it.
    pub expires_at: Option<String>,
}

impl LoadedModel {
    /// One entry of `/api/ps`.
    pub fn from_ps(entry: &Value) -> Option<LoadedModel> {
        let name = entry
            .get("name")
            .or_else(|| entry.get("model"))
            .and_then(Value::as_str)?;
        let bytes = |key: &str| entry.get(key).and_then(Value::as_u64).unwrap_or(0);
        Some(LoadedModel {
            name: name.to_string(),
            size_bytes: bytes("size"),
            vram_bytes: bytes("size_vram"),
            expires_at: entry
                .get("expires_at")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// What discovery last learned about a node.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub healthy: bool,
    pub last_error: Option<String>,
    pub last_check: Option<SystemTime>,
    pub models: Arc<Vec<NodeModel>>,
    /// `/api/version` of an Ollama node.
    pub version: Option<String>,
    /// The models loaded now (`/api/ps` of an Ollama node; `None` for other nodes or when it
    /// did not answer).
    pub loaded: Option<Arc<Vec<LoadedModel>>>,
    /// The latest `/api/ps` entries as the node sent them, and when they were read (by
    /// discovery or the VRAM monitor): what the router's own `/api/ps` answers.
    pub ps: Option<(Arc<Vec<Value>>, SystemTime)>,
}

/// A backend server in a pool: its configuration (`node.url`, `node.kind`, ... through
/// `Deref`) and what is live about it.
#[derive(Debug)]
pub struct Node {
    pub id: usize,
    spec: ResolvedNode,
    in_flight: AtomicU32,
    state: RwLock<NodeState>,
    /// Degraded for cold loads: a load that did not start in time (why, and until when).
    degraded: RwLock<Option<(String, std::time::Instant)>>,
    /// Set when a request's connection failed: the node is tried again from then on (a
    /// half-open retry), without waiting for the next discovery pass.
    retry_at: RwLock<Option<std::time::Instant>>,
    /// Loads and unloads this router made, which an `/api/ps` reading taken before them may not
    /// show yet: applied to every reading until one confirms them, or for [`OVERRIDE_FOR`].
    overrides: std::sync::Mutex<Vec<(Override, std::time::Instant)>>,
}

/// Sets the loaded models of a node's view, and each listed model's `loaded` fact with them.
fn set_loaded_models(state: &mut NodeState, loaded: Vec<LoadedModel>) {
    let mut models: Vec<NodeModel> = state.models.as_ref().clone();
    for model in &mut models {
        model.facts.loaded = loaded.iter().any(|l| l.name == model.name);
    }
    state.models = Arc::new(models);
    state.loaded = Some(Arc::new(loaded));
}

/// After a failed connection marks a node down, requests try it again after this long (and mark
/// it down again if it still fails), until discovery says either way.
pub const RETRY_DOWN_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a load or unload the router made outweighs `/api/ps` readings that do not show it.
pub const OVERRIDE_FOR: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Override {
    Loaded(LoadedModel),
    Unloaded(String),
}

impl std::ops::Deref for Node {
    type Target = ResolvedNode;

    fn deref(&self) -> &ResolvedNode {
        &self.spec
    }
}

impl Node {
    pub fn state(&self) -> NodeState {
        match self.state.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&NodeState) -> T) -> T {
        match self.state.read() {
            Ok(state) => f(&state),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    pub fn set_state(&self, mut new: NodeState) {
        self.apply_overrides(&mut new);
        // Discovery's verdict replaces a request's: no more half-open retries.
        if let Ok(mut retry) = self.retry_at.write() {
            *retry = None;
        }
        self.replace_state(new);
    }

    /// Whether `model` is loaded on this node now (its last `/api/ps`).
    pub fn has_loaded(&self, model: &str) -> bool {
        self.with_state(|s| s.models.iter().any(|m| m.name == model && m.facts.loaded))
    }

    /// Avoids this node for cold loads until `until` (Ollama's scheduler can hang on loads while
    /// `/api/tags` and `/api/ps` still answer).
    pub fn mark_degraded(&self, why: String, until: std::time::Instant) {
        if let Ok(mut slot) = self.degraded.write() {
            *slot = Some((why, until));
        }
    }

    /// A cold load started in time: the node is fine again.
    pub fn clear_degraded(&self) {
        if let Ok(mut slot) = self.degraded.write() {
            *slot = None;
        }
    }

    /// Why the node is avoided for cold loads now, if it is.
    pub fn degraded(&self) -> Option<String> {
        let slot = self.degraded.read().ok()?;
        slot.as_ref()
            .filter(|(_, until)| *until > std::time::Instant::now())
            .map(|(why, _)| why.clone())
    }

    /// Records a fresh `/api/ps` reading (from the VRAM monitor, between discovery passes): the
    /// loaded models, and the entries as the node sent them for the router's own `/api/ps`.
    pub fn set_loaded(&self, loaded: Vec<LoadedModel>, entries: Vec<Value>) {
        let mut state = self.state();
        state.loaded = Some(Arc::new(loaded));
        state.ps = Some((Arc::new(entries), SystemTime::now()));
        self.apply_overrides(&mut state);
        self.replace_state(state);
    }

    /// Changes the current view in place: no reading is applied, so the router's own loads and
    /// unloads stay as they are.
    fn update_state(&self, change: impl FnOnce(&mut NodeState)) {
        match self.state.write() {
            Ok(mut state) => change(&mut state),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }

    fn replace_state(&self, new: NodeState) {
        match self.state.write() {
            Ok(mut state) => *state = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// The router made room for and sent `model`: it counts as loaded from now on.
    pub fn admitted(&self, model: LoadedModel) {
        self.add_override(Override::Loaded(model));
    }

    /// The load of `model` is done (its request answered): readings from now on show the truth,
    /// including an eviction right after.
    pub fn settle(&self, model: &str) {
        if let Ok(mut overrides) = self.overrides.lock() {
            overrides
                .retain(|(change, _)| !matches!(change, Override::Loaded(m) if m.name == model));
        }
    }

    /// The router unloaded `model`.
    pub fn unloaded(&self, model: &str) {
        self.add_override(Override::Unloaded(model.to_string()));
    }

    fn add_override(&self, change: Override) {
        // Applied to the current view directly: re-applying every override to a view that
        // already has them would count them as confirmed by a reading.
        let mut state = self.state();
        let mut loaded: Vec<LoadedModel> = state.loaded.as_deref().cloned().unwrap_or_default();
        match &change {
            Override::Loaded(model) => {
                if !loaded.iter().any(|l| l.name == model.name) {
                    loaded.push(model.clone());
                }
            }
            Override::Unloaded(name) => loaded.retain(|l| &l.name != name),
        }
        set_loaded_models(&mut state, loaded);
        if let Ok(mut overrides) = self.overrides.lock() {
            overrides.push((change, std::time::Instant::now() + OVERRIDE_FOR));
        }
        match self.state.write() {
            Ok(mut slot) => *slot = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    /// Applies the router's own recent loads and unloads to a reading; drops the ones the
    /// reading confirms or that are too old. Keeps each model's `loaded` fact in step.
    fn apply_overrides(&self, state: &mut NodeState) {
        let Some(reading) = state.loaded.as_ref() else {
            return;
        };
        let mut loaded: Vec<LoadedModel> = reading.as_ref().clone();
        if let Ok(mut overrides) = self.overrides.lock() {
            let now = std::time::Instant::now();
            overrides.retain(|(change, until)| {
                if *until <= now {
                    return false;
                }
                match change {
                    Override::Loaded(model) => {
                        let shown = loaded.iter().any(|l| l.name == model.name);
                        if !shown {
                            loaded.push(model.clone());
                        }
                        !shown
                    }
                    Override::Unloaded(name) => {
                        let shown = loaded.iter().any(|l| &l.name == name);
                        loaded.retain(|l| &l.name != name);
                        shown
                    }
                }
            });
        }
        set_loaded_models(state, loaded);
    }

    /// Marks the node down after a failed connection, until discovery reaches it again.
    pub fn mark_down(&self, why: String) {
        self.update_state(|state| {
            state.healthy = false;
            state.last_error = Some(why);
        });
        // One failed connection does not cost a one-node pool a whole discovery interval of 503s.
        if let Ok(mut retry) = self.retry_at.write() {
            *retry = Some(std::time::Instant::now() + RETRY_DOWN_AFTER);
        }
    }

    /// Up by discovery, or marked down by a failed request long enough ago to be tried again.
    pub fn is_healthy(&self) -> bool {
        self.with_state(|s| s.healthy)
            || self
                .retry_at
                .read()
                .ok()
                .and_then(|r| *r)
                .is_some_and(|at| std::time::Instant::now() >= at)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn lists(&self, model: &str) -> bool {
        self.with_state(|s| s.models.iter().any(|m| m.name == model))
    }

    fn at_capacity(&self) -> bool {
        self.max_concurrency
            .is_some_and(|max| self.in_flight() >= max)
    }

    /// Counts a request as in flight on this node until the guard drops; `None` when the node is
    /// at `max_concurrency`.
    pub fn try_acquire(self: &Arc<Self>) -> Option<InFlight> {
        let max = self.max_concurrency.unwrap_or(u32::MAX);
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlight(Arc::clone(self)))
    }
}

/// A request in flight on a node; dropping it ends the count.
#[derive(Debug)]
pub struct InFlight(Arc<Node>);

impl InFlight {
    pub fn node(&self) -> &Arc<Node> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why no node can take a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// Each node's reason (down, busy, tried, lacks the model).
    #[error("{0}")]
    NoNode(String),
    /// An Ollama-API request for a model only OpenAI-kind nodes have.
    #[error("model {model:?} is only on OpenAI-compatible nodes ({}); {explanation}", .nodes.join(", "))]
    OnlyOpenAiNodes {
        model: String,
        nodes: Vec<String>,
        explanation: String,
    },
}

impl From<PickError> for crate::error::RequestError {
    fn from(e: PickError) -> Self {
        match e {
            PickError::NoNode(why) => crate::error::RequestError::NoNode(why),
            PickError::OnlyOpenAiNodes { model, nodes, .. } => {
                crate::error::RequestError::NeedsOllamaNode {
                    model,
                    nodes: nodes.join(", "),
                }
            }
        }
    }
}

/// Every node of every pool.
#[derive(Debug)]
pub struct Registry {
    nodes: Vec<Arc<Node>>,
    /// Rotates among equally loaded nodes.
    rotation: AtomicUsize,
}

/// Which nodes can take a request.
#[derive(Debug, Clone, Copy)]
pub struct NodeFilter<'a> {
    pub model: &'a str,
    /// Ollama-dialect requests need an Ollama node; OpenAI requests go to either kind.
    pub ollama_only: bool,
    pub exclude: &'a [usize],
}

impl Registry {
    pub fn new(resolved: &[ResolvedNode]) -> Self {
        let nodes = resolved
            .iter()
            .enumerate()
            .map(|(id, n)| {
                Arc::new(Node {
                    id,
                    spec: ResolvedNode {
                        weight: n.weight.max(1),
                        ..n.clone()
                    },
                    in_flight: AtomicU32::new(0),
                    degraded: RwLock::new(None),
                    retry_at: RwLock::new(None),
                    overrides: std::sync::Mutex::new(Vec::new()),
                    state: RwLock::new(NodeState {
                        last_error: Some("not checked yet".to_string()),
                        ..NodeState::default()
                    }),
                })
            })
            .collect();
        Registry {
            nodes,
            rotation: AtomicUsize::new(0),
        }
    }

    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    pub fn any_healthy(&self) -> bool {
        self.nodes.iter().any(|n| n.is_healthy())
    }

    /// Why no node is up, naming each node's pool and last error.
    pub fn explain_all_down(&self) -> String {
        let reasons: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                let state = node.state();
                format!(
                    "pool {:?} node {} is down ({})",
                    node.pool,
                    node.url,
                    state.last_error.as_deref().unwrap_or("no answer")
                )
            })
            .collect();
        format!("no node is up: {} (see GET /health)", reasons.join("; "))
    }

    /// Takes a slot on a healthy node with the model: one where the model is loaded if any, and
    /// among those the one with the fewest requests in flight per unit of weight; ties rotate so
    /// sequential traffic spreads over equal nodes.
    pub fn pick(&self, filter: NodeFilter<'_>) -> Result<InFlight, PickError> {
        // A node can fill up between the choice and the slot (another thread); choose again.
        for _ in 0..self.nodes.len().max(1) * 2 {
            let Some(node) = self.choose(filter) else {
                break;
            };
            if let Some(slot) = node.try_acquire() {
                return Ok(slot);
            }
        }
        // Only the first pick can blame the dialect; a retry just lacks a node.
        let openai_nodes = self.openai_nodes_with(filter.model);
        if filter.ollama_only && filter.exclude.is_empty() && !openai_nodes.is_empty() {
            return Err(PickError::OnlyOpenAiNodes {
                model: filter.model.to_string(),
                nodes: openai_nodes,
                explanation: self.explain_no_node(filter),
            });
        }
        Err(PickError::NoNode(self.explain_no_node(filter)))
    }

    fn choose(&self, filter: NodeFilter<'_>) -> Option<&Arc<Node>> {
        let mut best_load = u64::MAX;
        let mut ties: Vec<&Arc<Node>> = Vec::new();
        for node in &self.nodes {
            if filter.exclude.contains(&node.id)
                || (filter.ollama_only && node.kind != NodeKind::Ollama)
                || !node.is_healthy()
                || !node.lists(filter.model)
                || node.at_capacity()
            {
                continue;
            }
            // A node where the model is loaded first (no load time, no memory taken elsewhere),
            // then in_flight / weight without floats.
            let cold = !node.has_loaded(filter.model);
            // A node degraded for cold loads takes a cold model only when no other node can.
            let avoid = u64::from(cold && node.degraded().is_some()) << 63;
            let cold = avoid | (u64::from(cold) << 62);
            let load = cold | (u64::from(node.in_flight()) * 1_000_000 / u64::from(node.weight));
            if load < best_load {
                best_load = load;
                ties.clear();
            }
            if load == best_load {
                ties.push(node);
            }
        }
        if ties.is_empty() {
            return None;
        }
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
        ties.get(turn % ties.len()).copied()
    }

    fn explain_no_node(&self, filter: NodeFilter<'_>) -> String {
        let mut reasons = Vec::new();
        for node in &self.nodes {
            let state = node.state();
            let why = if !state.healthy {
                format!(
                    "is down ({})",
                    state.last_error.as_deref().unwrap_or("no answer")
                )
            } else if filter.ollama_only && node.kind != NodeKind::Ollama {
                "is an OpenAI-kind node and cannot serve the Ollama API".to_string()
            } else if filter.exclude.contains(&node.id) {
                "failed earlier in this request".to_string()
            } else if !node.lists(filter.model) {
                "does not have the model".to_string()
            } else {
                format!(
                    "is at max_concurrency ({})",
                    node.max_concurrency.unwrap_or_default()
                )
            };
            reasons.push(format!("pool {:?} node {} {why}", node.pool, node.url));
        }
        format!(
            "no node can serve model {:?} now: {}",
            filter.model,
            reasons.join("; ")
        )
    }

    /// Nodes (URLs) listing `model` that are OpenAI-kind only, for the wrong-dialect message.
    fn openai_nodes_with(&self, model: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Openai && n.lists(model))
            .map(|n| n.url.clone())
            .collect()
    }

    fn healthy_models(&self, keep: impl Fn(&NodeModel) -> bool) -> Vec<String> {
        let mut names = BTreeSet::new();
        for node in &self.nodes {
            let up = node.is_healthy();
            node.with_state(|s| {
                if up {
                    for m in s.models.iter().filter(|m| keep(m)) {
                        names.insert(m.name.clone());
                    }
                }
            });
        }
        names.into_iter().collect()
    }

    /// Models on healthy nodes with their tags entries, first node's entry winning.
    pub fn tags_entries(&self) -> Vec<(NodeModel, String)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for node in &self.nodes {
            let state = node.state();
            if !node.is_healthy() {
                continue;
            }
            for m in state.models.iter() {
                if seen.insert(m.name.clone()) {
                    out.push((m.clone(), node.pool.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }
}

impl ModelCatalog for Registry {
    fn resolve(&self, requested: &str) -> Option<String> {
        let tagged = format!("{requested}:latest");
        let mut found = None;
        // Down nodes count too: a model known on a node that is down now is "unavailable"
        // (503 from the node choice), not "not found".
        for node in &self.nodes {
            node.with_state(|s| {
                for m in s.models.iter() {
                    let exact = m.name == requested;
                    if exact || (found.is_none() && m.name == tagged) {
                        found = Some(m.name.clone());
                    }
                }
            });
            if found.as_deref() == Some(requested) {
                break;
            }
        }
        found
    }

    fn generation_models(&self) -> Vec<String> {
        self.healthy_models(|m| m.facts.can_chat())
    }

    fn all_models(&self) -> Vec<String> {
        self.healthy_models(|_| true)
    }

    fn candidate_facts(&self, ollama_only: bool) -> Vec<ModelFacts> {
        let mut merged: std::collections::BTreeMap<String, ModelFacts> = Default::default();
        for node in &self.nodes {
            if ollama_only && node.kind != NodeKind::Ollama {
                continue;
            }
            // Loaded counts only where the request could go now.
            let free = !node.at_capacity();
            let up = node.is_healthy();
            node.with_state(|s| {
                if !up {
                    return;
                }
                for m in s.models.iter() {
                    let loaded = m.facts.loaded && free;
                    merged
                        .entry(m.name.clone())
                        .and_modify(|f| f.loaded |= loaded)
                        .or_insert_with(|| ModelFacts {
                            loaded,
                            ..m.facts.clone()
                        });
                }
            });
        }
        merged.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(kinds: &[NodeKind]) -> Registry {
        let resolved: Vec<ResolvedNode> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| ResolvedNode {
                pool: "p".into(),
                url: format!("http://127.0.0.1:{}", 1000 + i),
                addr: format!("127.0.0.1:{}", 1000 + i).parse().unwrap(),
                host_header: format!("127.0.0.1:{}", 1000 + i),
                kind: *kind,
                weight: 1,
                max_concurrency: Some(1),
                vram_total_bytes: None,
                local: true,
            })
            .collect();
        let reg = Registry::new(&resolved);
        for node in reg.nodes() {
            node.set_state(NodeState {
                healthy: true,
                models: Arc::new(vec![NodeModel {
                    name: "m:latest".into(),
                    tags_entry: Value::Null,
                    facts: ModelFacts::from_tags_entry("m:latest", &Value::Null),
                }]),
                ..NodeState::default()
            });
        }
        reg
    }

    #[test]
    fn picks_least_loaded_then_respects_capacity_and_exclusions() {
        let reg = registry(&[NodeKind::Ollama, NodeKind::Ollama]);
        let filter = NodeFilter {
            model: "m:latest",
            ollama_only: false,
            exclude: &[],
        };
        let first = reg.pick(filter).unwrap();
        let second = reg.pick(filter).unwrap();
        assert_ne!(first.node().id, second.node().id, "the idle node is chosen");
        let err = reg.pick(filter).unwrap_err();
        assert!(err.to_string().contains("max_concurrency"), "{err}");
        let freed = first.node().id;
        drop(first);
        assert_eq!(reg.pick(filter).unwrap().node().id, freed);
        drop(second);
        let excluded = NodeFilter {
            exclude: &[0],
            ..filter
        };
        let held = reg.pick(excluded).unwrap();
        assert_eq!(held.node().id, 1);
        assert!(reg
            .pick(excluded)
            .unwrap_err()
            .to_string()
            .contains("failed earlier"));
    }

    #[test]
    fn the_loaded_node_is_preferred_and_loaded_counts_only_where_a_request_fits() {
        let reg = registry(&[NodeKind::Ollama, NodeKind::Ollama]);
        let loaded = |name: &str| LoadedModel {
            name: name.into(),
            size_bytes: 1,
            vram_bytes: 1,
            expires_at: None,
        };
        reg.nodes()[1].set_loaded(vec![loaded("m:latest")], Vec::new());
        let filter = NodeFilter {
            model: "m:latest",
            ollama_only: false,
            exclude: &[],
        };
        assert!(reg.candidate_facts(false)[0].loaded);
        let held = reg.pick(filter).unwrap();
        assert_eq!(held.node().id, 1, "where it is loaded, not in turn");
        // Node 1 is now full (max_concurrency 1): the model counts as cold for scoring, and the
        // next request goes to the cold node rather than waiting.
        assert!(!reg.candidate_facts(false)[0].loaded);
        assert_eq!(reg.pick(filter).unwrap().node().id, 0);
    }

    #[test]
    fn the_routers_own_loads_and_unloads_outweigh_stale_readings() {
        let reg = registry(&[NodeKind::Ollama]);
        let node = &reg.nodes()[0];
        let model = |name: &str| LoadedModel {
            name: name.into(),
            size_bytes: 1,
            vram_bytes: 1,
            expires_at: None,
        };
        node.set_loaded(vec![model("old")], Vec::new());
        node.unloaded("old");
        node.admitted(model("m:latest"));
        assert!(node.has_loaded("m:latest"));
        // A reading taken before either shows: the router's view stands; so does a failed
        // connection, which changes only the node's health.
        node.set_loaded(vec![model("old")], Vec::new());
        assert!(node.has_loaded("m:latest"));
        node.mark_down("connection failed".into());
        node.set_loaded(vec![model("old")], Vec::new());
        assert!(node.has_loaded("m:latest") && !node.has_loaded("old"));
        assert!(
            node.retry_at.read().unwrap().is_some(),
            "a reading keeps the half-open retry"
        );
        let names = |n: &Node| -> Vec<String> {
            n.state()
                .loaded
                .unwrap()
                .iter()
                .map(|l| l.name.clone())
                .collect()
        };
        assert_eq!(names(node), ["m:latest"]);
        // Once the load is done, readings tell the truth again (an eviction right after).
        node.settle("m:latest");
        node.set_loaded(Vec::new(), Vec::new());
        assert!(!node.has_loaded("m:latest"));
    }

    #[test]
    fn equal_nodes_take_turns() {
        let reg = registry(&[NodeKind::Ollama, NodeKind::Ollama]);
        let filter = NodeFilter {
            model: "m:latest",
            ollama_only: false,
            exclude: &[],
        };
        let ids: Vec<usize> = (0..4)
            .map(|_| reg.pick(filter).unwrap().node().id)
            .collect();
        assert_eq!(
            ids,
            [0, 1, 0, 1],
            "sequential requests alternate between idle nodes"
        );
    }

    #[test]
    fn ollama_dialect_skips_openai_nodes_and_down_nodes_explain_why() {
        let reg = registry(&[NodeKind::Openai, NodeKind::Ollama]);
        reg.nodes()[1].mark_down("connection refused".into());
        let filter = NodeFilter {
            model: "m:latest",
            ollama_only: true,
            exclude: &[],
        };
        let err = reg.pick(filter).unwrap_err();
        assert!(err.to_string().contains("OpenAI-kind"), "{err}");
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert_eq!(reg.resolve("m").as_deref(), Some("m:latest"));
    }
}
