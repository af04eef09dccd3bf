//! The sled implementation of [`Store`]: one database directory, a `meta` tree with the schema
//! version, and one tree per kind of record, values as JSON; routing decisions go to a
//! fixed-size ring file next to it ([`super::decision_ring`]), so the store does not grow with
//! the number of requests.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::decision_ring::DecisionRing;
use super::{
    DecisionRecord, Feedback, Store, StoreError, VramSample, DECISIONS_KEPT, SCHEMA_VERSION,
    VRAM_SAMPLES_KEPT,
};

const SCHEMA_KEY: &[u8] = b"schema_version";

pub struct SledStore {
    path: String,
    db: sled::Db,
    meta: sled::Tree,
    feedback: sled::Tree,
    decisions: DecisionRing,
    profiles: sled::Tree,
    /// Keyed by big-endian timestamp then a sequence, so iteration is oldest first.
    vram: sled::Tree,
    /// Entry count, kept by hand: sled's `len()` walks the whole tree.
    vram_len: AtomicU64,
}

/// sled's page cache (`cache_capacity`).
pub const STORE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl SledStore {
    /// Opens (or creates) the store, checking its schema version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let open_err = |reason: String| StoreError::Open {
            path: path.clone(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let db = sled::Config::new()
            .path(dir)
            // No background flusher thread (it would not survive Pingora's daemon fork); the
            // writer task flushes after each batch.
            .flush_every_ms(None)
            // sled's default page cache is 1 GiB, which it fills as the store is used; what the
            // router reads back (profiles, feedback at open, a rare decision) needs little.
            .cache_capacity(STORE_CACHE_BYTES)
            // Reclaim space eagerly rather than write fast (sled's default, stated): what sled
            // holds now changes rarely, and the data directory should not grow with uptime.
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|e| {
                // sled holds an exclusive lock on the directory while it is open.
                if e.to_string().contains("could not acquire lock") {
                    StoreError::Locked { path: path.clone() }
                } else {
                    open_err(e.to_string())
                }
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| open_err(e.to_string()));
        let vram = tree("vram")?;
        let store = SledStore {
            vram_len: AtomicU64::new(vram.len() as u64),
            meta: tree("meta")?,
            feedback: tree("feedback")?,
            // Opened after sled: sled's directory lock makes the ring this process's alone too.
            decisions: DecisionRing::open(dir, DECISIONS_KEPT as u32)?,
            profiles: tree("profiles")?,
            vram,
            path: path.clone(),
            db,
        };
        store.check_schema()?;
        store.move_decisions_out_of_sled()?;
        Ok(store)
    }

    /// A store written before the ring file kept its decisions in two sled trees (chunks of
    /// records, and an index): copy them into the ring, oldest first, and drop the trees.
    fn move_decisions_out_of_sled(&self) -> Result<(), StoreError> {
        let names = self.db.tree_names();
        if !names
            .iter()
            .any(|n| n.as_ref() == LEGACY_DECISIONS.as_bytes())
        {
            return Ok(());
        }
        let chunks = self
            .db
            .open_tree(LEGACY_DECISIONS)
            .map_err(|e| self.io(e))?;
        let mut moved = 0usize;
        for chunk in chunks.iter().values() {
            let raw = chunk.map_err(|e| self.io(e))?;
            let records: Vec<DecisionRecord> = self.decode(&raw)?;
            self.decisions.record(&records)?;
            moved += records.len();
        }
        self.decisions.sync()?;
        for name in [LEGACY_DECISIONS, LEGACY_DECISION_INDEX] {
            self.db.drop_tree(name).map_err(|e| self.io(e))?;
        }
        self.flush()?;
        if moved > 0 {
            tracing::info!(moved, path = %self.path, "moved the stored routing decisions into the decision ring file");
        }
        Ok(())
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let found = self.meta.get(SCHEMA_KEY).map_err(|e| self.io(e))?;
        match found {
            None => {
                self.meta
                    .insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())
                    .map_err(|e| self.io(e))?;
                self.db.flush().map_err(|e| self.io(e))?;
                Ok(())
            }
            Some(raw) => {
                let found = std::str::from_utf8(&raw)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        path: self.path.clone(),
                        reason: "its schema version is unreadable".to_string(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: self.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
        }
    }

    fn io(&self, e: sled::Error) -> StoreError {
        StoreError::Io(format!("{}: {e}", self.path))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, raw: &[u8]) -> Result<T, StoreError> {
        serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            reason: format!("a record does not parse ({e})"),
        })
    }

    fn encode<T: serde::Serialize>(&self, value: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value).map_err(|e| StoreError::Io(e.to_string()))
    }
}

/// The sled trees that held decisions before the ring file (moved out at open).
const LEGACY_DECISIONS: &str = "decisions";
const LEGACY_DECISION_INDEX: &str = "decision_index";

impl Store for SledStore {
    fn add_feedback(&self, feedback: &Feedback) -> Result<u64, StoreError> {
        let mut record = feedback.clone();
        // Never overwrite: a taken id moves the new record to the next free one, unless it
        // holds this very record (written before, e.g. by a handover imported twice).
        for _ in 0..1000 {
            let value = self.encode(&record)?;
            let outcome = self
                .feedback
                .compare_and_swap(record.id.to_be_bytes(), None::<&[u8]>, Some(value))
                .map_err(|e| self.io(e))?;
            match outcome {
                Ok(()) => return Ok(record.id),
                Err(taken) => {
                    let existing: Option<Feedback> = taken
                        .current
                        .as_deref()
                        .and_then(|raw| serde_json::from_slice(raw).ok());
                    if existing.as_ref() == Some(&record) {
                        return Ok(record.id);
                    }
                }
            }
            record.id += 1;
        }
        Err(StoreError::Io(format!(
            "{}: no free feedback id near {}",
            self.path, feedback.id
        )))
    }

    fn feedback(&self) -> Result<Vec<Feedback>, StoreError> {
        self.feedback
            .iter()
            .values()
            .map(|v| v.map_err(|e| self.io(e)).and_then(|raw| self.decode(&raw)))
            .collect()
    }

    fn record_decisions(&self, decisions: &[DecisionRecord]) -> Result<(), StoreError> {
        let too_large = self.decisions.record(decisions)?;
        if too_large > 0 {
            tracing::debug!(
                too_large,
                "routing decisions too large for a ring slot, kept in memory only"
            );
        }
        Ok(())
    }

    fn decision(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        self.decisions.get(request_id)
    }

    fn put_profile(&self, profile: &crate::model::ModelProfile) -> Result<(), StoreError> {
        let value = self.encode(profile)?;
        self.profiles
            .insert(profile.model.as_bytes(), value)
            .map_err(|e| self.io(e))?;
        self.flush()
    }

    fn profiles(&self) -> Result<Vec<crate::model::ModelProfile>, StoreError> {
        self.profiles
            .iter()
            .values()
            .map(|v| v.map_err(|e| self.io(e)).and_then(|raw| self.decode(&raw)))
            .collect()
    }

    fn record_vram(&self, sample: &VramSample) -> Result<(), StoreError> {
        let seq = self.db.generate_id().map_err(|e| self.io(e))?;
        let mut key = sample.unix_ms.to_be_bytes().to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        let value = self.encode(sample)?;
        self.vram.insert(key, value).map_err(|e| self.io(e))?;
        self.vram_len.fetch_add(1, Ordering::Relaxed);
        while self.vram_len.load(Ordering::Relaxed) > VRAM_SAMPLES_KEPT {
            if self.vram.pop_min().map_err(|e| self.io(e))?.is_none() {
                break;
            }
            self.vram_len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn vram_history(&self, since_unix_ms: u64) -> Result<Vec<VramSample>, StoreError> {
        self.vram
            .range(since_unix_ms.to_be_bytes().to_vec()..)
            .values()
            .map(|v| v.map_err(|e| self.io(e)).and_then(|raw| self.decode(&raw)))
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.decisions.sync()?;
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feedback(id: u64, model: &str, score: f32) -> Feedback {
        Feedback {
            id,
            response_id: None,
            model: model.to_string(),
            category: None,
            score,
            comment: None,
            unix_ms: 1,
        }
    }

    #[test]
    fn feedback_and_decisions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.add_feedback(&feedback(7, "a", 0.5)).unwrap();
            store
                .record_decisions(&[DecisionRecord {
                    request_id: "r1".into(),
                    model: "a".into(),
                    category: Some("coding".into()),
                    unix_ms: 2,
                    background: false,
                    tenant: None,
                }])
                .unwrap();
            store.flush().unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.feedback().unwrap(), vec![feedback(7, "a", 0.5)]);
        // Another record with a taken id is kept under the next free one; the same one again
        // is not stored twice.
        assert_eq!(store.add_feedback(&feedback(7, "b", 1.0)).unwrap(), 8);
        assert_eq!(store.add_feedback(&feedback(7, "a", 0.5)).unwrap(), 7);
        assert_eq!(store.feedback().unwrap().len(), 2);
        assert_eq!(store.decision("r1").unwrap().unwrap().model, "a");
        assert_eq!(store.decision("nope").unwrap(), None);
    }

    /// Opens a store just closed in this process: sled releases its directory lock a moment
    /// after the last handle drops (the store service retries the same way).
    fn reopen(dir: &Path) -> SledStore {
        open_unlocked(dir).unwrap()
    }

    fn open_unlocked(dir: &Path) -> Result<SledStore, StoreError> {
        for _ in 0..100 {
            match SledStore::open(dir) {
                Err(StoreError::Locked { .. }) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                other => return other,
            }
        }
        SledStore::open(dir)
    }

    fn decision(id: &str, model: &str) -> DecisionRecord {
        DecisionRecord {
            request_id: id.into(),
            model: model.into(),
            category: None,
            unix_ms: 1,
            background: false,
            tenant: None,
        }
    }

    #[test]
    fn decisions_go_to_the_ring_file_and_the_store_does_not_grow_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let chunk: Vec<DecisionRecord> = (0..DECISIONS_KEPT + 10)
            .map(|i| decision(&format!("r{i}"), "a"))
            .collect();
        store.record_decisions(&chunk).unwrap();
        store.record_decisions(&[decision("r50", "b")]).unwrap();
        store.flush().unwrap();
        assert_eq!(
            store.decision("r50").unwrap().unwrap().model,
            "b",
            "the newer one"
        );
        assert_eq!(
            store.decision("r7").unwrap(),
            None,
            "beyond the cap, the oldest went"
        );
        assert!(store.decision("r11").unwrap().is_some());
        assert_eq!(
            store.decision("r10").unwrap(),
            None,
            "r50's second record took its slot"
        );
        // Every slot holds a record; r50's first one is no longer the one looked up.
        assert_eq!(store.decisions.len() as u64, DECISIONS_KEPT - 1);
        let ring = std::fs::metadata(dir.path().join(super::super::decision_ring::FILE_NAME))
            .unwrap()
            .len();
        assert_eq!(
            ring,
            (DECISIONS_KEPT + 1) * super::super::decision_ring::SLOT_BYTES as u64
        );
        assert!(!store
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == LEGACY_DECISIONS.as_bytes()));
    }

    #[test]
    fn decisions_kept_in_sled_by_an_older_version_move_to_the_ring_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            // What the previous version wrote: chunks of records under a sequence key.
            let chunks = store.db.open_tree(LEGACY_DECISIONS).unwrap();
            let old = serde_json::to_vec(&[decision("old", "a"), decision("older", "b")]).unwrap();
            chunks.insert(1u64.to_be_bytes(), old).unwrap();
            let newer = serde_json::to_vec(&[decision("old", "c")]).unwrap();
            chunks.insert(2u64.to_be_bytes(), newer).unwrap();
            store.db.open_tree(LEGACY_DECISION_INDEX).unwrap();
            store.flush().unwrap();
        }
        {
            let store = reopen(dir.path());
            assert_eq!(store.decision("old").unwrap().unwrap().model, "c");
            assert_eq!(store.decision("older").unwrap().unwrap().model, "b");
            let names = store.db.tree_names();
            for legacy in [LEGACY_DECISIONS, LEGACY_DECISION_INDEX] {
                assert!(
                    !names.iter().any(|n| n.as_ref() == legacy.as_bytes()),
                    "{legacy}"
                );
            }
        }
        // Moved once: the next open finds them in the ring only.
        let store = reopen(dir.path());
        assert_eq!(store.decision("older").unwrap().unwrap().model, "b");
        assert_eq!(store.decisions.len(), 2);
    }

    #[test]
    fn a_second_open_is_refused_as_locked_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledStore::open(dir.path()).unwrap();
        first.add_feedback(&feedback(1, "a", 0.5)).unwrap();
        first.flush().unwrap();
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        drop(first);
        let second = reopen(dir.path());
        assert_eq!(second.feedback().unwrap().len(), 1);
    }

    #[test]
    fn vram_history_is_ordered_and_filtered_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for (t, used) in [(3000u64, 30u64), (1000, 10), (2000, 20)] {
            store
                .record_vram(&VramSample {
                    node: "n".into(),
                    unix_ms: t,
                    used_bytes: used,
                    models: vec![("m".into(), used)],
                })
                .unwrap();
        }
        let used: Vec<u64> = store
            .vram_history(1500)
            .unwrap()
            .iter()
            .map(|s| s.used_bytes)
            .collect();
        assert_eq!(used, [20, 30]);
    }

    #[test]
    fn newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.meta.insert(SCHEMA_KEY, b"99".as_slice()).unwrap();
            store.flush().unwrap();
        }
        let err = open_unlocked(dir.path()).err().unwrap();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("newer SmarterRouter"));
    }

    #[test]
    fn garbage_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("conf"), b"\\xff\\xfe not sled").unwrap();
        std::fs::write(dir.path().join("db"), vec![0xAB; 4096]).unwrap();
        match SledStore::open(dir.path()) {
            Err(err) => assert!(
                err.to_string().contains("Move the directory aside"),
                "{err}"
            ),
            Ok(store) => panic!("a damaged store opened: {:?}", store.feedback()),
        }
    }
}
