//! Recent model loads and unloads with their reasons, for `/admin/vram`'s `events` and the
//! dashboard: the router's own (an admission's unloads to fit a model in the budget, its loads
//! for a request or for the pinned model) and those only seen in the nodes' `/api/ps` between
//! two samples (Ollama's keep-alive expiring, a load by another client). Bounded, in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::Sample;

/// Events kept.
pub const EVENTS_KEPT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Load,
    Unload,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Load => "load",
            EventKind::Unload => "unload",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VramEvent {
    pub unix_ms: u64,
    pub node: String,
    pub model: String,
    pub kind: EventKind,
    pub reason: String,
}

#[derive(Default)]
pub struct VramEvents {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    events: VecDeque<VramEvent>,
    /// Each node's loaded models at its last answered sample (a node that misses a sample is
    /// compared with what it had before the gap).
    last_seen: HashMap<String, Vec<String>>,
}

impl Inner {
    fn push(&mut self, event: VramEvent) {
        while self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

impl VramEvents {
    pub fn record(&self, event: VramEvent) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.push(event);
        }
    }

    /// Records what changed in each answering node's loaded models since its last answered
    /// sample that the router has not already recorded (its own latest event for that model on
    /// that node is of the same kind). A node's first sample is the baseline, not a change.
    pub fn observe(&self, sample: &Sample) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for node in sample.nodes.iter().filter(|n| n.used_bytes.is_some()) {
            let now: Vec<String> = node.models.iter().map(|m| m.name.clone()).collect();
            let Some(before) = inner.last_seen.insert(node.url.clone(), now.clone()) else {
                continue;
            };
            let loads = now.iter().filter(|m| !before.contains(m));
            let unloads = before.iter().filter(|m| !now.contains(m));
            let changes: Vec<(String, EventKind)> = loads
                .map(|m| (m.clone(), EventKind::Load))
                .chain(unloads.map(|m| (m.clone(), EventKind::Unload)))
                .collect();
            for (model, kind) in changes {
                let known = inner
                    .events
                    .iter()
                    .rev()
                    .find(|e| e.node == node.url && e.model == model)
                    .is_some_and(|e| e.kind == kind);
                if known {
                    continue;
                }
                let reason = match kind {
                    EventKind::Load => {
                        "appeared in the node's /api/ps without this router's admission (another client or router, or profiling)"
                    }
                    EventKind::Unload => {
                        "left the node's /api/ps (its keep_alive expired, or another client unloaded it)"
                    }
                };
                inner.push(VramEvent {
                    unix_ms: sample.unix_ms,
                    node: node.url.clone(),
                    model,
                    kind,
                    reason: reason.to_string(),
                });
            }
        }
    }

    /// The events from `since_unix_ms` on, newest first.
    pub fn since_json(&self, since_unix_ms: u64) -> Vec<Value> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        inner
            .events
            .iter()
            .rev()
            .filter(|e| e.unix_ms >= since_unix_ms)
            .map(|e| {
                json!({
                    "timestamp": e.unix_ms as f64 / 1000.0,
                    "node": e.node,
                    "model": e.model,
                    "event": e.kind.as_str(),
                    "reason": e.reason,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::NodeSample;
    use super::*;
    use crate::upstream::LoadedModel;

    fn sample(unix_ms: u64, models: &[&str]) -> Sample {
        Sample {
            unix_ms,
            gpus: Vec::new(),
            nodes: vec![NodeSample {
                url: "http://n".into(),
                total_bytes: None,
                budget_bytes: None,
                used_bytes: Some(models.len() as u64),
                models: models
                    .iter()
                    .map(|m| LoadedModel {
                        name: m.to_string(),
                        size_bytes: 1,
                        vram_bytes: 1,
                        expires_at: None,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn changes_the_router_did_not_make_are_recorded_once_with_their_reason() {
        let events = VramEvents::default();
        events.record(VramEvent {
            unix_ms: 1,
            node: "http://n".into(),
            model: "b".into(),
            kind: EventKind::Unload,
            reason: "to fit c".into(),
        });
        events.record(VramEvent {
            unix_ms: 2,
            node: "http://n".into(),
            model: "c".into(),
            kind: EventKind::Load,
            reason: "a request".into(),
        });
        events.observe(&sample(1000, &["a", "b"]));
        assert!(
            events.since_json(1000).is_empty(),
            "the first sample is the baseline"
        );
        events.observe(&sample(2000, &["c"]));
        let listed = events.since_json(0);
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert_eq!(listed[0]["model"], "a");
        assert_eq!(listed[0]["event"], "unload");
        assert!(listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("keep_alive expired"));
        assert_eq!(listed[1]["reason"], "a request", "c: the router's own");
        // A node that misses a sample: the change across the gap still counts, once.
        let mut silent = sample(3000, &[]);
        silent.nodes[0].used_bytes = None;
        events.observe(&silent);
        assert_eq!(events.since_json(0).len(), 3);
        events.observe(&sample(4000, &["c", "d"]));
        let listed = events.since_json(4000);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["model"], "d");
        assert!(listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("without this router's admission"));
    }
}
