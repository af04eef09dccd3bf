//! The store as the router process holds it. It is opened by the store service once the
//! services run (after the daemon fork: sled starts threads, which a fork would lose), with
//! retries while another process holds it (the old router during a graceful upgrade, or
//! `smarterrouter profile`), and released early when this process is replaced by a new one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::Store;

/// Where the store stands in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreStatus {
    /// Not open yet (the service is starting or another process holds the lock).
    Opening,
    Open,
    /// Handed over to the process that replaces this one; writes go to it (owner socket).
    Released,
    /// It cannot be opened (damaged, newer schema); the log says why.
    Failed,
}

pub struct StoreHandle {
    dir: PathBuf,
    store: RwLock<Option<Arc<dyn Store>>>,
    status: watch::Sender<StoreStatus>,
    /// Until when (ms since epoch) an old process may still hand writes over.
    handover_until_ms: AtomicU64,
}

impl StoreHandle {
    pub fn new(dir: &Path) -> Self {
        StoreHandle {
            dir: dir.to_path_buf(),
            store: RwLock::new(None),
            status: watch::Sender::new(StoreStatus::Opening),
            handover_until_ms: AtomicU64::new(0),
        }
    }

    /// Notes that an old process handed writes over just now (it may hand over more).
    pub fn note_handover(&self) {
        self.expect_handover(Duration::from_secs(10));
    }

    /// Expects writes from an old process for the next `window` (this process opened the store
    /// after waiting for it).
    pub fn expect_handover(&self, window: Duration) {
        let until = super::now_unix_ms().saturating_add(window.as_millis() as u64);
        self.handover_until_ms.fetch_max(until, Ordering::Relaxed);
    }

    /// Whether an old process may be handing writes over now (a record it made may be on its
    /// way here).
    pub fn handover_active(&self) -> bool {
        super::now_unix_ms() < self.handover_until_ms.load(Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn status(&self) -> StoreStatus {
        *self.status.borrow()
    }

    /// The open store, if it is open now.
    pub fn get(&self) -> Option<Arc<dyn Store>> {
        self.store.read().ok()?.clone()
    }

    /// The open store, waiting up to `timeout` for it to open; `None` if it did not (or was
    /// released, or failed).
    pub async fn wait_open(&self, timeout: Duration) -> Option<Arc<dyn Store>> {
        let mut status = self.status.subscribe();
        let opened =
            tokio::time::timeout(timeout, status.wait_for(|s| *s != StoreStatus::Opening)).await;
        match opened {
            Ok(Ok(s)) if *s == StoreStatus::Open => self.get(),
            _ => None,
        }
    }

    /// Resolves once the store is no longer opening (open, released or failed).
    pub async fn settled(&self) -> StoreStatus {
        let mut status = self.status.subscribe();
        let settled = status.wait_for(|s| *s != StoreStatus::Opening).await;
        settled.map(|s| *s).unwrap_or(StoreStatus::Failed)
    }

    /// Puts an open store in the handle. The store service does this; a process without it
    /// (the `profile` CLI, tests) may too.
    pub fn set_open(&self, store: Arc<dyn Store>) {
        if let Ok(mut slot) = self.store.write() {
            *slot = Some(store);
        }
        self.status.send_replace(StoreStatus::Open);
    }

    pub(super) fn set_failed(&self) {
        self.status.send_replace(StoreStatus::Failed);
    }

    /// Takes the store out of the handle; callers then see `Released`.
    pub(super) fn release(&self) -> Option<Arc<dyn Store>> {
        let taken = self.store.write().ok().and_then(|mut slot| slot.take());
        self.status.send_replace(StoreStatus::Released);
        taken
    }
}
