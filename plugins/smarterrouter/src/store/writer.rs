//! The write path: request phases hand [`Record`]s to the store service ([`super::service`])
//! through a bounded channel ([`StoreSender`]) and never wait on the disk; feedback and profiles
//! wait (asynchronously) for their own write. This module also holds the synchronous pieces
//! the service runs off the async workers: applying a batch, writing and importing handover
//! files.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{handover, DecisionRecord, Record, Store, StoreError};

/// What a durable write's requester learns: the id it was stored under, or why not.
pub type Outcome = Result<u64, String>;

const PENDING: u8 = 0;
const CLAIMED: u8 = 1;
const ABANDONED: u8 = 2;

/// A write somebody waits for. The writer claims it before writing; a requester that gives up
/// first abandons it, and then it is not written at all (so "not stored, try again" is true).
#[derive(Debug)]
pub struct Durable {
    answer: oneshot::Sender<Outcome>,
    state: Arc<AtomicU8>,
}

impl Durable {
    /// True if the write should go ahead (its requester still waits).
    pub fn claim(&self) -> bool {
        self.state
            .compare_exchange(PENDING, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || self.state.load(Ordering::Acquire) == CLAIMED
    }

    pub fn answer(self, outcome: Outcome) {
        let _ = self.answer.send(outcome);
    }
}

#[derive(Debug)]
pub enum StoreOp {
    Write(Record, Option<Durable>),
}

/// What the process keeps in memory from the store.
pub trait StoreListener: Send + Sync {
    /// The store was opened: load what is kept in memory.
    fn opened(&self, store: &dyn Store) -> Result<(), StoreError>;
    /// A record handed over by an old process was written: update what is kept in memory.
    fn imported(&self, record: &Record);
    /// A recent routing decision kept in memory, if any (the owner socket answers with it).
    fn recent_decision(&self, request_id: &str) -> Option<DecisionRecord>;
    /// The decisions kept in memory only (beyond [`DECISIONS_PER_SEC`]), each handed out once:
    /// the store service writes them when it hands the store over or the process exits, so
    /// feedback on them still finds them after a reload or restart.
    fn take_unstored_decisions(&self) -> Vec<DecisionRecord>;
}

/// What became of a routing decision sent to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionFate {
    /// Queued for the store.
    Queued,
    /// Within the cap, but the queue was full: dropped (and counted).
    QueueFull,
    /// Over [`DECISIONS_PER_SEC`]: kept in memory only, stored at a hand-over or stop.
    OverCap,
}

/// The sending side, cloned into the proxy and the background services.
#[derive(Clone)]
pub struct StoreSender {
    pub(super) tx: mpsc::Sender<StoreOp>,
    /// Writes dropped because the queue was full (the log says how many).
    pub dropped: Arc<AtomicU64>,
    decisions: Arc<DecisionWindow>,
    /// Decisions beyond [`DECISIONS_PER_SEC`], kept in memory only.
    pub unsaved_decisions: Arc<AtomicU64>,
}

impl StoreSender {
    /// Queues a write; never waits. A full queue drops it and counts it (then false).
    pub fn send(&self, record: Record) -> bool {
        let queued = self.tx.try_send(StoreOp::Write(record, None)).is_ok();
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Queues a routing decision, within [`DECISIONS_PER_SEC`] (copied only if it is queued).
    pub fn send_decision(&self, record: &DecisionRecord) -> DecisionFate {
        if !self.decisions.admit(crate::model::now_unix_ms() / 1000) {
            self.unsaved_decisions.fetch_add(1, Ordering::Relaxed);
            crate::metrics::decisions_not_persisted(1);
            DecisionFate::OverCap
        } else if self.send(Record::Decision(record.clone())) {
            DecisionFate::Queued
        } else {
            DecisionFate::QueueFull
        }
    }

    /// From now on every decision is queued (this process has handed the store over).
    pub fn stop_capping_decisions(&self) {
        self.decisions.uncapped.store(true, Ordering::Relaxed);
    }

    /// Queues a write, waiting up to `wait` for room in the queue; false if there was none.
    pub async fn send_waiting(&self, record: Record, wait: Duration) -> bool {
        let queued = tokio::time::timeout(wait, self.tx.send(StoreOp::Write(record, None))).await;
        matches!(queued, Ok(Ok(())))
    }

    /// Queues a write and waits, at most `wait`, until it is on disk (or in a synced handover
    /// file); returns the id it was stored under. On an error it was not written and will not
    /// be: sending it again stores it once.
    pub async fn send_durable(&self, record: Record, wait: Duration) -> Outcome {
        let deadline = tokio::time::Instant::now() + wait;
        let (answer, mut outcome) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(PENDING));
        let op = StoreOp::Write(
            record,
            Some(Durable {
                answer,
                state: Arc::clone(&state),
            }),
        );
        match tokio::time::timeout_at(deadline, self.tx.send(op)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("the store service is not running".to_string()),
            Err(_) => return Err(format!("the store queue stayed full for {wait:?}")),
        }
        let stopped = |_| "the store service stopped before writing it".to_string();
        match tokio::time::timeout_at(deadline, &mut outcome).await {
            Ok(result) => result.map_err(stopped)?,
            Err(_) => {
                let abandoned = state
                    .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if abandoned {
                    Err(format!("the store did not take the write within {wait:?}"))
                } else {
                    // Already being written: its outcome is the truth.
                    outcome.await.map_err(stopped)?
                }
            }
        }
    }
}

pub fn channel(queue: usize) -> (StoreSender, mpsc::Receiver<StoreOp>) {
    let (tx, rx) = mpsc::channel(queue);
    (
        StoreSender {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            decisions: Arc::default(),
            unsaved_decisions: Arc::default(),
        },
        rx,
    )
}

/// How many routing decisions a second the store persists. Far above what a fleet of LLM
/// nodes serves; beyond it (a benchmark, a flood of cache hits) the surplus stays in memory only
/// (the newest 10,000 are kept there for feedback) and is not queued, so the store's CPU and
/// disk writes stay bounded under any load; the store service writes those still in memory when
/// it hands the store over or the process stops.
pub const DECISIONS_PER_SEC: u64 = 100;

/// The decisions of the current second so far: one atomic word (second, count), so the check
/// on the request path is a load and a compare-exchange.
#[derive(Default)]
pub struct DecisionWindow {
    packed: AtomicU64,
    /// Set once the store is handed over: the old process's last decisions go to the new owner
    /// as they are made (its drain is short), so feedback on them finds them at once.
    uncapped: AtomicBool,
}

impl DecisionWindow {
    /// Whether one more decision fits in second `now_secs`'s budget (and counts it if so).
    pub fn admit(&self, now_secs: u64) -> bool {
        if self.uncapped.load(Ordering::Relaxed) {
            return true;
        }
        let second = now_secs & 0xffff_ffff;
        let mut current = self.packed.load(Ordering::Relaxed);
        loop {
            let (at, count) = (current >> 32, current & 0xffff_ffff);
            let next = if at == second {
                if count >= DECISIONS_PER_SEC {
                    return false;
                }
                current + 1
            } else {
                (second << 32) | 1
            };
            match self.packed.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

/// Writes a batch. Flushes (fsync) when it holds a durable write or `flush_due`: decisions and
/// VRAM samples may lose the last second on a crash, feedback and profiles never. Returns
/// whether it flushed.
pub(super) fn apply(store: &dyn Store, batch: Vec<StoreOp>, flush_due: bool) -> bool {
    let mut waiting = Vec::new();
    let mut decisions = Vec::new();
    for StoreOp::Write(record, durable) in batch {
        if durable.as_ref().is_some_and(|d| !d.claim()) {
            continue;
        }
        if let Record::Decision(d) = record {
            decisions.push(d);
            continue;
        }
        let result = write_one(store, &record);
        if let Err(e) = &result {
            tracing::error!(error = %e, "store write failed");
        }
        if let Some(durable) = durable {
            waiting.push((durable, result.map_err(|e| e.to_string())));
        }
    }
    if let Err(e) = store.record_decisions(&decisions) {
        tracing::error!(error = %e, "store write of {} decisions failed", decisions.len());
    }
    let flush = !waiting.is_empty() || flush_due;
    if flush {
        // Acknowledged writes must survive a crash: flush before answering.
        if let Err(e) = store.flush() {
            tracing::error!(error = %e, "store flush failed");
            for (_, result) in waiting.iter_mut() {
                *result = Err(format!("the store could not be flushed: {e}"));
            }
        }
    }
    for (durable, result) in waiting {
        durable.answer(result);
    }
    flush
}

pub(super) fn write_one(store: &dyn Store, record: &Record) -> Result<u64, StoreError> {
    match record {
        Record::Feedback(f) => store.add_feedback(f),
        Record::Decision(d) => store.record_decisions(std::slice::from_ref(d)).map(|_| 0),
        Record::Vram(v) => store.record_vram(v).map(|_| 0),
        Record::Profile(p) => store.put_profile(p).map(|_| 0),
    }
}

/// Writes a batch to one synced handover file and answers its durable writes; returns how many
/// records it kept.
pub(super) fn write_handover(dir: &Path, batch: Vec<StoreOp>) -> usize {
    let mut records = Vec::new();
    let mut waiting = Vec::new();
    for StoreOp::Write(record, durable) in batch {
        if durable.as_ref().is_some_and(|d| !d.claim()) {
            continue;
        }
        let id = match &record {
            Record::Feedback(f) => f.id,
            _ => 0,
        };
        records.push(record);
        waiting.extend(durable.map(|d| (d, id)));
    }
    if records.is_empty() {
        return 0;
    }
    let result = handover::write(dir, &records);
    if let Err(e) = &result {
        tracing::error!(error = %e, records = records.len(), "handover file not written; these records are lost");
    }
    for (durable, id) in waiting {
        durable.answer(result.as_ref().map(|_| id).map_err(Clone::clone));
    }
    if result.is_ok() {
        records.len()
    } else {
        0
    }
}

/// Imports every pending handover file, oldest first, removing each once it is on disk;
/// records that fail stay behind in the file. Returns how many records were imported.
pub(super) fn import(dir: &Path, store: &dyn Store, listener: &dyn StoreListener) -> usize {
    let mut count = 0;
    for path in handover::pending(dir) {
        let (records, rejected) = match handover::read(&path) {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "a handover file cannot be read; left in place");
                continue;
            }
        };
        if !rejected.is_empty() {
            match handover::reject(&path, &rejected) {
                Ok(kept) => tracing::warn!(
                    lines = rejected.len(),
                    kept = %kept.display(),
                    "handover lines this version cannot read were set aside"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable handover lines could not be set aside; file left in place");
                    continue;
                }
            }
        }
        let mut decisions = Vec::new();
        let mut failed = Vec::new();
        for record in records {
            if let Record::Decision(d) = &record {
                decisions.push(d.clone());
                continue;
            }
            match write_one(store, &record) {
                Ok(id) => {
                    let mut record = record;
                    if let Record::Feedback(f) = &mut record {
                        f.id = id;
                    }
                    listener.imported(&record);
                    count += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "a handed-over record could not be written");
                    failed.push(record);
                }
            }
        }
        if let Err(e) = store.record_decisions(&decisions) {
            tracing::error!(error = %e, "handed-over decisions could not be written");
            failed.extend(decisions.into_iter().map(Record::Decision));
        } else {
            count += decisions.len();
        }
        if let Err(e) = store.flush() {
            tracing::error!(error = %e, file = %path.display(), "handover file kept for the next attempt");
            continue;
        }
        let finished = if failed.is_empty() {
            std::fs::remove_file(&path).map_err(|e| e.to_string())
        } else {
            handover::rewrite(&path, &failed)
        };
        if let Err(e) = finished {
            tracing::warn!(error = %e, file = %path.display(), "imported handover file not updated");
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Feedback, SledStore};

    struct Counting(std::sync::atomic::AtomicUsize);

    impl StoreListener for Counting {
        fn opened(&self, _: &dyn Store) -> Result<(), StoreError> {
            Ok(())
        }
        fn imported(&self, _: &Record) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn take_unstored_decisions(&self) -> Vec<DecisionRecord> {
            Vec::new()
        }
        fn recent_decision(&self, _: &str) -> Option<DecisionRecord> {
            None
        }
    }

    pub(crate) fn feedback(id: u64) -> Record {
        Record::Feedback(Feedback {
            id,
            response_id: Some(format!("r{id}")),
            model: "m".into(),
            category: None,
            score: 1.0,
            comment: None,
            unix_ms: 1,
        })
    }

    #[test]
    fn decisions_beyond_the_seconds_budget_are_not_admitted() {
        let window = DecisionWindow::default();
        let admitted = (0..DECISIONS_PER_SEC + 10)
            .filter(|_| window.admit(1_000))
            .count() as u64;
        assert_eq!(admitted, DECISIONS_PER_SEC);
        assert!(window.admit(1_001), "a new second, a new budget");
        assert!(
            window.admit(1_000),
            "a clock step back starts a window of its own"
        );
    }

    #[test]
    fn a_process_that_handed_the_store_over_queues_every_decision() {
        let (sender, mut rx) = channel(1_000);
        let decision = DecisionRecord {
            request_id: "r".into(),
            model: "m".into(),
            category: None,
            unix_ms: 0,
            background: false,
            tenant: None,
        };
        let capped = (0..DECISIONS_PER_SEC * 3)
            .filter(|_| sender.send_decision(&decision) == DecisionFate::Queued)
            .count() as u64;
        assert!(capped <= DECISIONS_PER_SEC * 2, "{capped}");
        sender.stop_capping_decisions();
        assert!((0..DECISIONS_PER_SEC * 3)
            .all(|_| sender.send_decision(&decision) == DecisionFate::Queued));
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, capped + DECISIONS_PER_SEC * 3);
        // A full queue: not queued, and said so.
        let (full, _rx) = channel(1);
        full.stop_capping_decisions();
        assert_eq!(full.send_decision(&decision), DecisionFate::Queued);
        assert_eq!(full.send_decision(&decision), DecisionFate::QueueFull);
        assert_eq!(full.dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn handed_over_records_are_imported_once_and_the_files_removed() {
        let dir = tempfile::tempdir().unwrap();
        let decision = Record::Decision(DecisionRecord {
            request_id: "q1".into(),
            model: "m".into(),
            category: None,
            unix_ms: 1,
            background: false,
            tenant: None,
        });
        handover::write(dir.path(), &[feedback(5), decision]).unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let listener = Counting(Default::default());
        assert_eq!(import(dir.path(), &store, &listener), 2);
        assert_eq!(listener.0.load(Ordering::Relaxed), 1);
        assert!(handover::pending(dir.path()).is_empty());
        assert_eq!(store.feedback().unwrap().len(), 1);
        assert_eq!(store.decision("q1").unwrap().unwrap().model, "m");
        assert_eq!(import(dir.path(), &store, &listener), 0);
        // The same file imported again (a crash before it was removed) adds nothing.
        handover::write(dir.path(), &[feedback(5)]).unwrap();
        import(dir.path(), &store, &listener);
        assert_eq!(store.feedback().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn durable_writes_are_answered_after_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (tx, mut rx) = channel(8);
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send_durable(feedback(9), Duration::from_secs(5)).await }
        });
        let op = rx.recv().await.unwrap();
        apply(&store, vec![op], false);
        assert_eq!(waiting.await.unwrap(), Ok(9));
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send_durable(feedback(3), Duration::from_secs(5)).await }
        });
        let op = rx.recv().await.unwrap();
        write_handover(dir.path(), vec![op]);
        assert_eq!(waiting.await.unwrap(), Ok(3));
        assert_eq!(handover::pending(dir.path()).len(), 1);
    }

    #[tokio::test]
    async fn a_write_given_up_on_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (tx, mut rx) = channel(8);
        let outcome = tx
            .send_durable(feedback(4), Duration::from_millis(50))
            .await;
        assert!(outcome.is_err());
        let op = rx.recv().await.unwrap();
        apply(&store, vec![op], false);
        assert!(
            store.feedback().unwrap().is_empty(),
            "an abandoned write was stored"
        );
    }
}
