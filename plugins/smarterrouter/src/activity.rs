//! What the router has been doing, for the dashboard and `/admin/decisions` and
//! `/admin/activity`: the last routing decisions (the newest ones with the engine's breakdown,
//! so a click shows why), and counts per 10-second bucket over the last hour (requests per
//! model and per category, cache hits, rate-limited requests, errors). Bounded, in memory,
//! never persisted, and no prompt text is kept. Pure: the caller passes the time.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use serde_json::{json, Map, Value};

use crate::routing::analysis::Category;
use crate::routing::score::Scoring;
use crate::routing::RoutingDecision;

/// Decisions kept (`/admin/decisions?limit=` at most).
pub const DECISIONS_KEPT: usize = 500;
/// Of those, the newest this many keep their breakdown (a few KiB each with many models).
pub const BREAKDOWNS_KEPT: usize = 100;
/// Width of one activity bucket.
pub const BUCKET_MS: u64 = 10_000;
/// Buckets kept: one hour.
pub const BUCKETS_KEPT: usize = 360;

/// Why the engine chose as it did: the prompt's category probabilities and the scoring.
#[derive(Debug, Clone)]
pub struct Breakdown {
    pub categories: [f32; 4],
    pub complexity: f32,
    /// `None` when the client named the model (nothing was scored).
    pub scoring: Option<Scoring>,
}

/// One finished request, as the access log saw it.
pub struct Finished {
    pub unix_ms: u64,
    pub request_id: String,
    pub endpoint: &'static str,
    /// A model request (forwarded or answered from cache), not one of the router's own endpoints.
    pub model_request: bool,
    pub status: u16,
    /// Refused by the router's own rate limit (a node's 429 is an error like any other).
    pub rate_limited: bool,
    pub latency_ms: f64,
    /// `exact`/`semantic` (hit), `miss`, a bypass reason, or empty when the cache never applied.
    pub cache: &'static str,
    pub node: Option<String>,
    pub stream: bool,
    pub decision: Option<RoutingDecision>,
    pub breakdown: Option<Box<Breakdown>>,
}

struct Entry {
    unix_ms: u64,
    request_id: String,
    endpoint: &'static str,
    model: String,
    chosen_by_router: bool,
    category: Option<Category>,
    confidence: f32,
    runner_up: Option<String>,
    reason: String,
    cache: &'static str,
    latency_ms: f64,
    status: u16,
    node: Option<String>,
    stream: bool,
    breakdown: Option<Box<Breakdown>>,
}

#[derive(Default)]
struct Bucket {
    start_ms: u64,
    requests: u32,
    per_model: Vec<(String, u32)>,
    per_category: [u32; 4],
    cache_lookups: u32,
    cache_hits: u32,
    rate_limited: u32,
    errors: u32,
}

#[derive(Default)]
struct Inner {
    decisions: VecDeque<Entry>,
    buckets: VecDeque<Bucket>,
}

/// The recent activity (one short lock per request; JSON is built outside the request path).
#[derive(Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

impl Activity {
    /// Takes the request's strings rather than copying them (the request is over).
    pub fn record(&self, finished: Finished) {
        let counted = finished.model_request || finished.rate_limited;
        if !counted && finished.decision.is_none() {
            return;
        }
        let entry = finished.decision.map(|d| Entry {
            unix_ms: finished.unix_ms,
            request_id: finished.request_id,
            endpoint: finished.endpoint,
            model: d.model,
            chosen_by_router: d.by_router,
            category: d.category,
            confidence: d.confidence,
            runner_up: d.runner_up,
            reason: d.reason,
            cache: finished.cache,
            latency_ms: finished.latency_ms,
            status: finished.status,
            node: finished.node,
            stream: finished.stream,
            breakdown: finished.breakdown,
        });
        // What leaves the log is dropped after the lock is released.
        let mut dropped: (Option<Entry>, Option<Box<Breakdown>>) = (None, None);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if counted {
            let bucket = inner.bucket(finished.unix_ms);
            if finished.rate_limited {
                bucket.rate_limited += 1;
            } else if finished.status == 0 || finished.status >= 400 {
                bucket.errors += 1;
            }
            if finished.model_request && !finished.rate_limited {
                bucket.requests += 1;
                if let Some(d) = &entry {
                    match bucket.per_model.iter_mut().find(|(m, _)| *m == d.model) {
                        Some((_, n)) => *n += 1,
                        None => bucket.per_model.push((d.model.clone(), 1)),
                    }
                    if let Some(c) = d.category.filter(|_| d.chosen_by_router) {
                        bucket.per_category[c.index()] += 1;
                    }
                }
                let hit = is_hit(finished.cache);
                if hit || finished.cache == "miss" {
                    bucket.cache_lookups += 1;
                }
                if hit {
                    bucket.cache_hits += 1;
                }
            }
        }
        if let Some(entry) = entry {
            if inner.decisions.len() >= DECISIONS_KEPT {
                dropped.0 = inner.decisions.pop_front();
            }
            inner.decisions.push_back(entry);
            let len = inner.decisions.len();
            if len > BREAKDOWNS_KEPT {
                dropped.1 = inner.decisions[len - BREAKDOWNS_KEPT - 1].breakdown.take();
            }
        }
        drop(inner);
        drop(dropped);
    }

    /// The newest `limit` decisions, newest first (`GET /admin/decisions`).
    pub fn decisions(&self, limit: usize) -> Vec<Value> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .decisions
            .iter()
            .rev()
            .take(limit)
            .map(Entry::to_json)
            .collect()
    }

    /// One decision with its breakdown (`GET /admin/decisions/{request_id}`).
    pub fn decision(&self, request_id: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = inner
            .decisions
            .iter()
            .rev()
            .find(|e| e.request_id == request_id)?;
        let mut value = entry.to_json();
        value["breakdown"] = match &entry.breakdown {
            None => Value::Null,
            Some(b) => json!({
                "analysis": {
                    "categories": category_map(|c| json!(b.categories[c.index()])),
                    "complexity": b.complexity,
                },
                "scoring": b.scoring.as_ref().map(Scoring::to_json),
            }),
        };
        Some(value)
    }

    /// The buckets from `since_ms` on, oldest first; buckets with nothing in them are left out.
    pub fn series(&self, since_ms: u64) -> Value {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let buckets: Vec<Value> = inner
            .buckets
            .iter()
            .filter(|b| b.start_ms + BUCKET_MS > since_ms)
            .map(|b| {
                let per_model: Map<String, Value> = b
                    .per_model
                    .iter()
                    .map(|(m, n)| (m.clone(), json!(n)))
                    .collect();
                json!({
                    "start_unix_ms": b.start_ms,
                    "requests": b.requests,
                    "per_model": per_model,
                    "per_category": category_map(|c| json!(b.per_category[c.index()])),
                    "cache_lookups": b.cache_lookups,
                    "cache_hits": b.cache_hits,
                    "rate_limited": b.rate_limited,
                    "errors": b.errors,
                })
            })
            .collect();
        json!({"bucket_seconds": BUCKET_MS / 1000, "buckets": buckets})
    }
}

impl Inner {
    /// The bucket `unix_ms` falls in, opened if new; buckets older than an hour are dropped.
    fn bucket(&mut self, unix_ms: u64) -> &mut Bucket {
        let start_ms = unix_ms - unix_ms % BUCKET_MS;
        let oldest = start_ms.saturating_sub(BUCKET_MS * (BUCKETS_KEPT as u64 - 1));
        while self.buckets.front().is_some_and(|b| b.start_ms < oldest) {
            self.buckets.pop_front();
        }
        // A clock step back lands in the newest bucket rather than reordering the series.
        let newest = self.buckets.back().map(|b| b.start_ms);
        if newest.is_none_or(|n| n < start_ms) {
            self.buckets.push_back(Bucket {
                start_ms,
                ..Bucket::default()
            });
        }
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }
}

impl Entry {
    fn to_json(&self) -> Value {
        json!({
            "unix_ms": self.unix_ms,
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "model": self.model,
            "chosen_by": if self.chosen_by_router { "router" } else { "client" },
            "category": self.category.map(Category::as_str),
            "confidence": (self.confidence * 1000.0).round() / 1000.0,
            "runner_up": self.runner_up,
            "reason": self.reason,
            "cache": match (is_hit(self.cache), self.cache) {
                (true, _) => "HIT",
                (false, "miss") => "MISS",
                (false, "") => "",
                (false, _) => "BYPASS",
            },
            "cache_detail": self.cache,
            "latency_ms": (self.latency_ms * 1000.0).round() / 1000.0,
            "status": self.status,
            "node": self.node,
            "stream": self.stream,
            "has_breakdown": self.breakdown.is_some(),
        })
    }
}

/// A cache outcome that is a hit (the answer came from the cache).
fn is_hit(cache: &str) -> bool {
    matches!(cache, "exact" | "semantic")
}

fn category_map(value: impl Fn(Category) -> Value) -> Map<String, Value> {
    Category::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), value(*c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(model: &str, category: Category) -> RoutingDecision {
        RoutingDecision {
            model: model.to_string(),
            reason: "scored".to_string(),
            confidence: 0.8,
            category: Some(category),
            runner_up: Some("other".to_string()),
            by_router: true,
        }
    }

    fn finished(unix_ms: u64, id: &str, status: u16, d: Option<&RoutingDecision>) -> Finished {
        Finished {
            unix_ms,
            request_id: id.to_string(),
            endpoint: "/api/chat",
            model_request: true,
            status,
            rate_limited: status == 429,
            latency_ms: 1.5,
            cache: "miss",
            node: Some("http://n".to_string()),
            stream: false,
            decision: d.cloned(),
            breakdown: Some(Box::new(Breakdown {
                categories: [0.7, 0.1, 0.1, 0.1],
                complexity: 0.2,
                scoring: None,
            })),
        }
    }

    #[test]
    fn buckets_count_models_categories_cache_limits_and_errors() {
        let activity = Activity::default();
        let coder = decision("coder", Category::Coding);
        let writer = decision("writer", Category::Creativity);
        let t = 1_000_000_000;
        activity.record(finished(t, "1", 200, Some(&coder)));
        activity.record(Finished {
            cache: "exact",
            ..finished(t + 1, "2", 200, Some(&coder))
        });
        activity.record(finished(t + 2, "3", 502, Some(&writer)));
        activity.record(finished(t + 3, "4", 429, None));
        activity.record(Finished {
            rate_limited: false,
            ..finished(t + 4, "6", 429, Some(&writer))
        });
        activity.record(finished(t + BUCKET_MS, "5", 200, Some(&writer)));
        let series = activity.series(0);
        let buckets = series["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 2);
        let first = &buckets[0];
        assert_eq!(
            first["requests"], 4,
            "the router's 429 is counted apart; a node's is a request"
        );
        assert_eq!(first["per_model"]["coder"], 2);
        assert_eq!(first["per_model"]["writer"], 2);
        assert_eq!(first["per_category"]["coding"], 2);
        assert_eq!(first["cache_lookups"], 4);
        assert_eq!(first["cache_hits"], 1);
        assert_eq!(first["rate_limited"], 1);
        assert_eq!(first["errors"], 2, "the 502 and the node's 429");
        assert_eq!(buckets[1]["requests"], 1);
        assert_eq!(
            activity.series(t + BUCKET_MS)["buckets"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn decisions_are_bounded_newest_first_and_only_the_newest_keep_breakdowns() {
        let activity = Activity::default();
        let d = decision("coder", Category::Coding);
        let ids: Vec<String> = (0..DECISIONS_KEPT + 10).map(|i| format!("r{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            activity.record(finished(i as u64 * 100, id, 200, Some(&d)));
        }
        let all = activity.decisions(usize::MAX);
        assert_eq!(all.len(), DECISIONS_KEPT);
        assert_eq!(all[0]["request_id"], format!("r{}", DECISIONS_KEPT + 9));
        assert_eq!(all[0]["cache"], "MISS");
        assert_eq!(all[0]["chosen_by"], "router");
        assert!(activity.decision("r0").is_none(), "dropped: the oldest");
        let newest = activity
            .decision(&format!("r{}", DECISIONS_KEPT + 9))
            .unwrap();
        assert_eq!(
            newest["breakdown"]["analysis"]["categories"]["coding"],
            0.7f32 as f64
        );
        let older = activity
            .decision(&ids[ids.len() - BREAKDOWNS_KEPT - 1])
            .unwrap();
        assert_eq!(older["has_breakdown"], false);
        assert!(older["breakdown"].is_null());
        let kept = activity
            .decision(&ids[ids.len() - BREAKDOWNS_KEPT])
            .unwrap();
        assert_eq!(kept["has_breakdown"], true);
    }

    #[test]
    fn buckets_older_than_an_hour_go() {
        let activity = Activity::default();
        let d = decision("coder", Category::Coding);
        activity.record(finished(0, "a", 200, Some(&d)));
        let later = BUCKET_MS * BUCKETS_KEPT as u64;
        activity.record(finished(later, "b", 200, Some(&d)));
        let buckets = activity.series(0)["buckets"].as_array().unwrap().clone();
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0]["start_unix_ms"], later);
    }
}
