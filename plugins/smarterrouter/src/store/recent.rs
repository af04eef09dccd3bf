//! The most recent routing decisions in memory, so feedback on a fresh response needs no disk
//! read.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::DecisionRecord;

pub struct RecentDecisions {
    capacity: usize,
    inner: Mutex<(HashMap<String, DecisionRecord>, VecDeque<String>)>,
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

    pub fn insert(&self, record: DecisionRecord) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        let id = record.request_id.clone();
        if map.insert(id.clone(), record).is_none() {
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
        self.inner.lock().ok()?.0.get(request_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest() {
        let recent = RecentDecisions::new(2);
        for id in ["a", "b", "c"] {
            recent.insert(DecisionRecord {
                request_id: id.into(),
                model: "m".into(),
                category: None,
                unix_ms: 0,
                background: false,
                tenant: None,
            });
        }
        assert!(recent.get("a").is_none());
        assert_eq!(recent.get("c").unwrap().model, "m");
    }
}
