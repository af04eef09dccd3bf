//! The most recent routing decisions in memory, so feedback on a fresh response needs no disk
//! read. Each remembers whether it was queued for the store: those beyond the store's
//! per-second cap are written when the process hands the store over or exits.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::DecisionRecord;

/// A decision and whether it was queued for the store.
type Remembered = (DecisionRecord, bool);

pub struct RecentDecisions {
    capacity: usize,
    /// By request id; the ids oldest first.
    inner: Mutex<(HashMap<String, Remembered>, VecDeque<String>)>,
    /// Response ids that already received feedback (bounded like the decisions).
    rated: Mutex<(std::collections::HashSet<String>, VecDeque<String>)>,
}

impl RecentDecisions {
    pub fn new(capacity: usize) -> Self {
        RecentDecisions {
            capacity: capacity.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            rated: Mutex::new((Default::default(), VecDeque::new())),
        }
    }

    /// Remembers a decision; `stored` says whether it was queued for the store.
    pub fn insert(&self, record: DecisionRecord, stored: bool) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        let id = record.request_id.clone();
        if map.insert(id.clone(), (record, stored)).is_none() {
            order.push_back(id);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// Records that `response_id` was rated; false if it already was.
    pub fn mark_rated(&self, response_id: &str) -> bool {
        let Ok(mut guard) = self.rated.lock() else {
            return true;
        };
        let (set, order) = &mut *guard;
        if !set.insert(response_id.to_string()) {
            return false;
        }
        order.push_back(response_id.to_string());
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    /// Forgets that `response_id` was rated (its rating could not be stored).
    pub fn unmark_rated(&self, response_id: &str) {
        if let Ok(mut guard) = self.rated.lock() {
            let (set, order) = &mut *guard;
            set.remove(response_id);
            order.retain(|id| id != response_id);
        }
    }

    pub fn get(&self, request_id: &str) -> Option<DecisionRecord> {
        Some(self.inner.lock().ok()?.0.get(request_id)?.0.clone())
    }

    /// The decisions not yet queued for the store, oldest first; from now on they count as
    /// queued (the caller writes them).
    pub fn take_unstored(&self) -> Vec<DecisionRecord> {
        let Ok(mut guard) = self.inner.lock() else {
            return Vec::new();
        };
        let (map, order) = &mut *guard;
        order
            .iter()
            .filter_map(|id| match map.get_mut(id) {
                Some((record, stored)) if !*stored => {
                    *stored = true;
                    Some(record.clone())
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str) -> DecisionRecord {
        DecisionRecord {
            request_id: id.into(),
            model: "m".into(),
            category: None,
            unix_ms: 0,
            background: false,
            tenant: None,
        }
    }

    #[test]
    fn keeps_only_the_newest() {
        let recent = RecentDecisions::new(2);
        for id in ["a", "b", "c"] {
            recent.insert(decision(id), true);
        }
        assert!(recent.get("a").is_none());
        assert_eq!(recent.get("c").unwrap().model, "m");
    }

    #[test]
    fn unstored_decisions_are_taken_once_oldest_first() {
        let recent = RecentDecisions::new(3);
        for (id, stored) in [("a", false), ("b", true), ("c", false), ("d", false)] {
            recent.insert(decision(id), stored);
        }
        // "a" fell out of memory; "b" was queued already.
        let ids = |taken: Vec<DecisionRecord>| -> Vec<String> {
            taken.into_iter().map(|d| d.request_id).collect()
        };
        assert_eq!(ids(recent.take_unstored()), ["c", "d"]);
        assert!(recent.take_unstored().is_empty());
        assert!(
            recent.get("c").is_some(),
            "taken decisions stay for feedback"
        );
    }
}
