//! The store service: the Pingora background service that owns the store, the one place that
//! writes it. Its life, in the process that runs it:
//! 1. It opens the store once Pingora has started services (after daemonising), retrying while
//!    another process holds it; writes queue in the channel meanwhile.
//! 2. It loads what the process keeps in memory ([`StoreListener::opened`]), imports handover
//!    files an old process left, and signals ready (the proxy starts serving then).
//! 3. It applies writes in batches, answers on the owner socket ([`super::owner`]), and imports
//!    handover files about once a second.
//! 4. When this process is being replaced (SIGQUIT, graceful upgrade), it writes what is queued
//!    and the decisions the per-second cap kept in memory only, flushes and releases the store
//!    at once so the new process can open it. From then on it hands each batch to the new owner through its owner socket (durable writes are answered
//!    once the owner has them on disk); a batch no owner takes within 2 s goes to a synced
//!    handover file instead.
//! 5. On SIGTERM it keeps writing until the runtime stops; [`StoreService::finish`], called
//!    after the server has stopped, writes what is left (decisions kept in memory only too) and
//!    flushes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::{ExecutionPhase, ShutdownWatch};
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use tokio::sync::{broadcast, mpsc};

use super::writer::{self, StoreListener, StoreOp, StoreSender};
use super::{handover, Record, SledStore, Store, StoreError, StoreHandle, StoreStatus};

const QUEUE: usize = 10_000;
/// Largest batch applied at once.
const BATCH: usize = 512;
/// Longest time unflushed decisions and VRAM samples wait for the disk.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often handover files are looked for (and a due flush is done).
const TICK: Duration = Duration::from_secs(1);
/// Between two attempts to open a store another process holds, or to reach a new owner.
const RETRY: Duration = Duration::from_millis(100);
/// After this long with no owner to hand a batch to, it goes to a handover file.
const OWNER_PATIENCE: Duration = Duration::from_secs(2);
/// A store that opened after waiting for another process expects that process's writes for
/// this long (its drain: Pingora's 5 s plus the grace period).
const HANDOVER_WINDOW: Duration = Duration::from_secs(60);

pub struct StoreService {
    handle: Arc<StoreHandle>,
    /// For the owner socket, which queues the writes it is handed.
    tx: StoreSender,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<StoreOp>>>,
    /// After the release: writes not yet taken by the new owner, including the batch being
    /// handed over (kept here, not in the task, so `finish` still finds them when the runtime
    /// has gone; removed only once handed over).
    pending: Mutex<Vec<StoreOp>>,
    listener: Arc<dyn StoreListener>,
    phases: Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
    dropped: Arc<AtomicU64>,
    /// Longest wait for the store before dependent services start anyway.
    ready_within: Duration,
}

/// The store service and the sender that feeds it.
pub fn start(
    handle: Arc<StoreHandle>,
    listener: Arc<dyn StoreListener>,
    ready_within: Duration,
) -> (StoreSender, Arc<StoreService>) {
    let (sender, rx) = writer::channel(QUEUE);
    let service = StoreService {
        handle,
        tx: sender.clone(),
        rx: Arc::new(tokio::sync::Mutex::new(rx)),
        pending: Mutex::new(Vec::new()),
        listener,
        phases: Mutex::new(None),
        dropped: Arc::clone(&sender.dropped),
        ready_within,
    };
    (sender, Arc::new(service))
}

/// Whether a phase means this process is being replaced by a new one.
fn is_upgrade(phase: &ExecutionPhase) -> bool {
    matches!(
        phase,
        ExecutionPhase::GracefulUpgradeTransferringFds
            | ExecutionPhase::GracefulUpgradeCloseTimeout
    )
}

/// Waits for the next phase change that means an upgrade; never resolves without phases.
async fn upgrade_started(phases: &mut Option<broadcast::Receiver<ExecutionPhase>>) {
    let Some(rx) = phases.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(phase) if is_upgrade(&phase) => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => {
                return std::future::pending().await;
            }
        }
    }
}

#[async_trait]
impl BackgroundService for StoreService {
    async fn start_with_ready_notifier(
        &self,
        _shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        // Shutdown is deliberately not watched: writes continue through the grace period, and
        // `finish` writes the rest once the runtime has stopped.
        let Ok(mut rx) = self.rx.try_lock() else {
            tracing::error!("the store service was started twice");
            return;
        };
        let mut phases = self.phases.lock().ok().and_then(|mut p| p.take());
        let mut ready = Some(ready);
        self.open(&mut phases, &mut ready).await;
        if let Some(ready) = ready.take() {
            ready.notify_ready();
        }
        if self.handle.status() == StoreStatus::Open {
            self.serve_open(&mut rx, &mut phases).await;
        }
        if self.handle.status() == StoreStatus::Released {
            self.serve_released(&mut rx).await;
        } else {
            // The store failed to open: keep answering writers so none waits in vain.
            while let Some(StoreOp::Write(_, durable)) = rx.recv().await {
                if let Some(durable) = durable.filter(|d| d.claim()) {
                    durable.answer(Err(
                        "the store could not be opened; see the router's log".to_string()
                    ));
                }
            }
        }
    }
}

impl StoreService {
    /// Lets the service see the server's phases (it releases the store on a graceful upgrade).
    pub fn watch_phases(&self, phases: broadcast::Receiver<ExecutionPhase>) {
        if let Ok(mut slot) = self.phases.lock() {
            *slot = Some(phases);
        }
    }

    /// Opens the store, retrying while another process holds it, until it opens, fails, or
    /// this process starts being replaced (then it never owns it: status Released).
    async fn open(
        &self,
        phases: &mut Option<broadcast::Receiver<ExecutionPhase>>,
        ready: &mut Option<ServiceReadyNotifier>,
    ) {
        let started = Instant::now();
        let mut next_report = started + Duration::from_secs(2);
        let mut waited_for_lock = false;
        loop {
            let dir = self.handle.dir().to_path_buf();
            let opened = tokio::task::spawn_blocking(move || SledStore::open(&dir)).await;
            match opened {
                Ok(Ok(store)) => {
                    self.opened(Arc::new(store), started, waited_for_lock).await;
                    return;
                }
                Ok(Err(StoreError::Locked { path })) => {
                    waited_for_lock = true;
                    if Instant::now() >= next_report {
                        tracing::warn!(
                            dir = %path,
                            waited_s = started.elapsed().as_secs(),
                            "another process holds the store (the previous router during an upgrade, or `smarterrouter profile`); writes wait in the queue until it lets go"
                        );
                        next_report = Instant::now() + Duration::from_secs(30);
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "the store cannot be opened; feedback and profiles will not be saved");
                    self.handle.set_failed();
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "opening the store failed");
                    self.handle.set_failed();
                    return;
                }
            }
            if ready.is_some() && started.elapsed() >= self.ready_within {
                tracing::warn!(
                    waited_s = started.elapsed().as_secs(),
                    "serving before the store is open: routing uses size priors until profiles load"
                );
                if let Some(ready) = ready.take() {
                    ready.notify_ready();
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = upgrade_started(phases) => {
                    tracing::info!("replaced before the store opened; writes go to the new owner");
                    self.tx.stop_capping_decisions();
                    self.handle.release();
                    return;
                }
            }
        }
    }

    /// Loads the in-memory views from a store that just opened, and imports handover files.
    async fn opened(&self, store: Arc<dyn Store>, started: Instant, waited_for_lock: bool) {
        let listener = Arc::clone(&self.listener);
        let loading = Arc::clone(&store);
        let loaded = tokio::task::spawn_blocking(move || listener.opened(loading.as_ref())).await;
        if let Ok(Err(e)) = &loaded {
            tracing::error!(error = %e, "the store opened but its records could not be loaded");
        }
        if waited_for_lock {
            // The process that held it is probably draining and will hand writes over.
            self.handle.expect_handover(HANDOVER_WINDOW);
        }
        self.handle.set_open(Arc::clone(&store));
        let imported = self.import(&store).await;
        tracing::info!(
            dir = %self.handle.dir().display(),
            waited_ms = started.elapsed().as_millis() as u64,
            handed_over = imported,
            "store open"
        );
    }

    /// Applies writes while this process owns the store; returns once it has released it.
    async fn serve_open(
        &self,
        rx: &mut mpsc::Receiver<StoreOp>,
        phases: &mut Option<broadcast::Receiver<ExecutionPhase>>,
    ) {
        let owner = tokio::spawn(super::owner::serve(
            Arc::clone(&self.handle),
            self.tx.clone(),
            Arc::clone(&self.listener),
        ));
        let mut last_flush = Instant::now();
        let mut dirty = false;
        let mut ticks = tokio::time::interval(TICK);
        let mut dropped_reported = 0;
        let mut unsaved_warned = false;
        loop {
            let Some(store) = self.handle.get() else {
                break;
            };
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { break };
                    let batch = take_batch(vec![first], rx);
                    let flush_due = last_flush.elapsed() >= FLUSH_EVERY;
                    if self.apply_batch(&store, batch, flush_due).await {
                        last_flush = Instant::now();
                        dirty = false;
                    } else {
                        dirty = true;
                    }
                }
                _ = ticks.tick() => {
                    if dirty && last_flush.elapsed() >= FLUSH_EVERY {
                        self.apply_batch(&store, Vec::new(), true).await;
                        last_flush = Instant::now();
                        dirty = false;
                    }
                    self.import(&store).await;
                    dropped_reported = self.report_dropped(dropped_reported);
                    if !unsaved_warned && self.tx.unsaved_decisions.load(Ordering::Relaxed) > 0 {
                        unsaved_warned = true;
                        tracing::warn!(
                            "more than {} routing decisions a second: the surplus is kept in memory for feedback (the newest 10000), not shared with other instances, and stored only at a reload or stop; smarterrouter_store_decisions_not_persisted_total counts them",
                            writer::DECISIONS_PER_SEC
                        );
                    }
                }
                _ = upgrade_started(phases) => {
                    owner.abort();
                    self.release(store, rx).await;
                    return;
                }
            }
        }
        owner.abort();
    }

    /// Writes what is queued and the decisions kept in memory only, flushes, and lets go of the
    /// store so the new process can open it.
    async fn release(&self, store: Arc<dyn Store>, rx: &mut mpsc::Receiver<StoreOp>) {
        let mut batch = Vec::new();
        // Decisions made from here on go to the new owner as they are made.
        self.tx.stop_capping_decisions();
        while let Ok(op) = rx.try_recv() {
            batch.push(op);
        }
        let queued = batch.len();
        batch.extend(self.unstored_decisions());
        let from_memory = batch.len() - queued;
        self.apply_batch(&store, batch, true).await;
        self.handle.release();
        // sled lets go of its lock once the last reference is dropped; a reader may still
        // hold one for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&store) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if Arc::strong_count(&store) > 1 {
            tracing::warn!("a reader still holds the store; the new process may wait for it");
        }
        // Dropping sled's last reference does file work: off the async workers.
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
        tracing::info!(
            written = queued,
            decisions_from_memory = from_memory,
            "store flushed and released for the new process; further writes go to it through the owner socket"
        );
    }

    /// After the release: every batch goes to the new owner through its owner socket; a batch
    /// no owner takes within `OWNER_PATIENCE` goes to a synced handover file instead.
    async fn serve_released(&self, rx: &mut mpsc::Receiver<StoreOp>) {
        // Replaced before the store opened: the decisions the cap kept in memory go first.
        let unstored: Vec<StoreOp> = self.unstored_decisions().collect();
        self.with_pending(|pending| pending.extend(unstored));
        let mut waiting_since: Option<Instant> = None;
        loop {
            let empty = self.pending.lock().map(|p| p.is_empty()).unwrap_or(true);
            if empty {
                let Some(first) = rx.recv().await else { return };
                self.with_pending(|pending| pending.push(first));
            }
            // The batch stays in `pending` until it is handed over.
            let records = self.with_pending(|pending| {
                let mut ops = std::mem::take(pending);
                ops = take_batch(ops, rx);
                ops.retain(|StoreOp::Write(_, durable)| durable.as_ref().is_none_or(|d| d.claim()));
                let records: Vec<Record> = ops
                    .iter()
                    .map(|StoreOp::Write(record, _)| record.clone())
                    .collect();
                *pending = ops;
                records
            });
            let Some(records) = records.filter(|r| !r.is_empty()) else {
                continue;
            };
            match super::owner::write(self.handle.dir(), records).await {
                Ok(results) => {
                    waiting_since = None;
                    let ops = self.with_pending(std::mem::take).unwrap_or_default();
                    let mut refused = Vec::new();
                    for (StoreOp::Write(record, durable), result) in ops.into_iter().zip(results) {
                        match (durable, result) {
                            (Some(durable), Ok(id)) => durable.answer(Ok(id)),
                            (None, Ok(_)) => {}
                            // The owner could not take it (too slow, or a record it cannot
                            // read): keep it on disk for the next owner instead.
                            (durable, Err(why)) => {
                                tracing::warn!(error = %why, "the new store owner refused a record; it goes to a handover file");
                                refused.push(StoreOp::Write(record, durable));
                            }
                        }
                    }
                    self.to_handover_file(refused).await;
                }
                Err(why) => {
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= OWNER_PATIENCE {
                        tracing::warn!(error = %why, "no store owner to hand writes to; they go to a handover file");
                        let ops = self.with_pending(std::mem::take).unwrap_or_default();
                        self.to_handover_file(ops).await;
                        waiting_since = None;
                    } else {
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        }
    }

    /// The decisions the per-second cap kept in memory only, as writes (handed out once).
    fn unstored_decisions(&self) -> impl Iterator<Item = StoreOp> {
        self.listener
            .take_unstored_decisions()
            .into_iter()
            .map(|d| StoreOp::Write(Record::Decision(d), None))
    }

    fn with_pending<T>(&self, change: impl FnOnce(&mut Vec<StoreOp>) -> T) -> Option<T> {
        self.pending
            .lock()
            .ok()
            .map(|mut pending| change(&mut pending))
    }

    async fn to_handover_file(&self, ops: Vec<StoreOp>) {
        if ops.is_empty() {
            return;
        }
        let dir = self.handle.dir().to_path_buf();
        if tokio::task::spawn_blocking(move || writer::write_handover(&dir, ops))
            .await
            .is_err()
        {
            tracing::error!("writing a handover file failed");
        }
    }

    /// Applies a batch off the async workers; returns whether it flushed.
    async fn apply_batch(
        &self,
        store: &Arc<dyn Store>,
        batch: Vec<StoreOp>,
        flush_due: bool,
    ) -> bool {
        let store = Arc::clone(store);
        match tokio::task::spawn_blocking(move || writer::apply(store.as_ref(), batch, flush_due))
            .await
        {
            Ok(flushed) => flushed,
            Err(_) => {
                tracing::error!("a store write task failed");
                false
            }
        }
    }

    /// Imports pending handover files into the open store; returns how many records.
    async fn import(&self, store: &Arc<dyn Store>) -> usize {
        let dir = self.handle.dir().to_path_buf();
        let (store, listener) = (Arc::clone(store), Arc::clone(&self.listener));
        tokio::task::spawn_blocking(move || {
            if handover::pending(&dir).is_empty() {
                return 0;
            }
            writer::import(&dir, store.as_ref(), listener.as_ref())
        })
        .await
        .unwrap_or(0)
    }

    fn report_dropped(&self, reported: u64) -> u64 {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            tracing::warn!(
                dropped = dropped - reported,
                total = dropped,
                "store writes dropped because the write queue was full (decisions and VRAM samples only; feedback waits)"
            );
        }
        dropped
    }

    /// Writes what is still queued once the server has stopped, then flushes. Call it after
    /// `Server::run` returns; the runtime that ran the service is gone by then.
    pub fn finish(&self) {
        let Ok(mut rx) = self.rx.try_lock() else {
            tracing::warn!("the store service is still running; nothing left to finish");
            return;
        };
        let mut rest = self.with_pending(std::mem::take).unwrap_or_default();
        while let Ok(op) = rx.try_recv() {
            rest.push(op);
        }
        // Decisions made since the release (or, on a plain stop, since the start) that the cap
        // kept in memory only: the next process answers feedback on them.
        rest.extend(self.unstored_decisions());
        let count = rest.len();
        match (self.handle.get(), self.handle.status()) {
            (Some(store), _) => {
                writer::apply(store.as_ref(), rest, true);
                tracing::info!(written = count, "store flushed at exit");
            }
            // Never owned it, or handed it over: the next owner imports the file.
            (None, StoreStatus::Released | StoreStatus::Opening) => {
                let kept = writer::write_handover(self.handle.dir(), rest);
                if kept > 0 {
                    tracing::info!(
                        records = kept,
                        "writes no store owner took are in a handover file for the next one"
                    );
                }
            }
            (None, StoreStatus::Failed | StoreStatus::Open) => {
                for StoreOp::Write(_, durable) in rest {
                    if let Some(durable) = durable.filter(|d| d.claim()) {
                        durable.answer(Err("the store was never opened".to_string()));
                    }
                }
            }
        }
    }
}

/// `first` plus whatever else is queued, up to a batch.
fn take_batch(mut batch: Vec<StoreOp>, rx: &mut mpsc::Receiver<StoreOp>) -> Vec<StoreOp> {
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
    batch
}
