//! The background task that owns all store writes. Request phases hand it [`StoreOp`]s through a
//! bounded channel with `try_send`, so a slow disk never holds up a request; if the channel is
//! full the record is dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::sync::{mpsc, oneshot};

use super::{DecisionRecord, Feedback, Store, VramSample};

const QUEUE: usize = 10_000;
/// Longest time unflushed decisions and VRAM samples wait for the disk.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
pub enum StoreOp {
    /// Feedback, and who to tell once it is on disk.
    Feedback(Feedback, Option<oneshot::Sender<bool>>),
    Decision(DecisionRecord),
    Vram(VramSample),
}

/// The sending side, cloned into the proxy.
#[derive(Clone)]
pub struct StoreSender {
    tx: mpsc::Sender<StoreOp>,
    pub dropped: Arc<AtomicU64>,
}

impl StoreSender {
    /// Queues a write; never waits.
    pub fn send(&self, op: StoreOp) {
        if self.tx.try_send(op).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues feedback and waits (asynchronously) until it is on disk; false if it could not be
    /// written.
    pub async fn send_durable(&self, feedback: Feedback) -> bool {
        let (done, wait) = oneshot::channel();
        if self
            .tx
            .try_send(StoreOp::Feedback(feedback, Some(done)))
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // Never hold a client for long on a slow disk.
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false)
    }
}

/// The Pingora background service applying queued writes.
pub struct StoreWriter {
    store: Arc<dyn Store>,
    rx: Mutex<Option<mpsc::Receiver<StoreOp>>>,
}

pub fn channel(store: Arc<dyn Store>) -> (StoreSender, StoreWriter) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        StoreSender {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        StoreWriter {
            store,
            rx: Mutex::new(Some(rx)),
        },
    )
}

impl StoreWriter {
    /// Writes a batch. Flushes (fsync) when it holds acknowledged feedback or `flush_due`:
    /// decisions and VRAM samples may lose the last second on a crash, feedback never.
    fn apply(store: &dyn Store, batch: Vec<StoreOp>, flush_due: bool) {
        let mut waiting = Vec::new();
        let mut decisions = Vec::new();
        for op in batch {
            let result = match op {
                StoreOp::Feedback(f, done) => {
                    let result = store.add_feedback(&f);
                    waiting.extend(done.map(|d| (d, result.is_ok())));
                    result
                }
                StoreOp::Decision(d) => {
                    decisions.push(d);
                    Ok(())
                }
                StoreOp::Vram(v) => store.record_vram(&v),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "store write failed");
            }
        }
        if let Err(e) = store.record_decisions(&decisions) {
            tracing::error!(error = %e, "store write of {} decisions failed", decisions.len());
        }
        if waiting.is_empty() && !flush_due {
            return;
        }
        // Acknowledged feedback must survive a crash: flush before answering.
        let flushed = match store.flush() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "store flush failed");
                false
            }
        };
        for (done, written) in waiting {
            let _ = done.send(written && flushed);
        }
    }

    /// Applies queued writes until shutdown, then drains what is left.
    pub async fn run(&self, mut shutdown: Option<ShutdownWatch>) {
        let taken = self.rx.lock().ok().and_then(|mut rx| rx.take());
        let Some(mut rx) = taken else {
            return;
        };
        let mut last_flush = std::time::Instant::now();
        loop {
            let first = match shutdown.as_mut() {
                Some(watch) => tokio::select! {
                    op = rx.recv() => op,
                    _ = watch.changed() => None,
                },
                None => rx.recv().await,
            };
            let Some(first) = first else {
                break;
            };
            let mut batch = vec![first];
            while let Ok(op) = rx.try_recv() {
                batch.push(op);
                if batch.len() >= 512 {
                    break;
                }
            }
            let store = Arc::clone(&self.store);
            let flush_due = last_flush.elapsed() >= FLUSH_EVERY;
            if flush_due {
                last_flush = std::time::Instant::now();
            }
            if tokio::task::spawn_blocking(move || Self::apply(store.as_ref(), batch, flush_due))
                .await
                .is_err()
            {
                tracing::error!("store writer task failed");
            }
        }
        let mut rest = Vec::new();
        while let Ok(op) = rx.try_recv() {
            rest.push(op);
        }
        Self::apply(self.store.as_ref(), rest, true);
    }
}

#[async_trait]
impl BackgroundService for StoreWriter {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.run(Some(shutdown)).await;
    }
}
