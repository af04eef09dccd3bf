//! Persistent state: feedback, routing decisions (bounded), model profiles and VRAM history.
//! `trait Store` with a sled implementation in `router.data_dir`. Request phases never touch it
//! directly: they send [`Record`]s through [`writer`] to [`service`], the background service
//! that opens the store (after the daemon fork), applies writes, and hands the store over to the
//! next process during a graceful upgrade ([`handle`], [`owner`], [`handover`]).

mod decision_ring;
pub mod handle;
pub mod handover;
pub mod owner;
pub mod recent;
pub mod service;
mod sled_store;
pub mod writer;

use serde::{Deserialize, Serialize};

pub use handle::{StoreHandle, StoreStatus};
pub use sled_store::SledStore;

/// Schema of the data written by this version; a store written by a newer one is refused.
pub const SCHEMA_VERSION: u32 = 1;
/// Routing decisions kept for feedback lookups (oldest overwritten first; the ring file holds
/// this many slots of [`decision_ring::SLOT_BYTES`]).
pub const DECISIONS_KEPT: u64 = 50_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} cannot be opened: {reason}. Move the directory aside (the router then starts with an empty store) or point router.data_dir / ROUTER_DATA_DIR elsewhere")]
    Open { path: String, reason: String },
    #[error("the store at {path} was written by a newer SmarterRouter (schema {found}, this version reads up to {supported}); upgrade, or point router.data_dir elsewhere")]
    NewerSchema {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("the store at {path} is damaged: {reason}. Move the directory aside to start with an empty store")]
    Corrupt { path: String, reason: String },
    #[error(
        "the store at {path} is in use by another process (a router, or `smarterrouter profile`)"
    )]
    Locked { path: String },
    #[error("store I/O failed: {0}")]
    Io(String),
}

/// One piece of user feedback on a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: u64,
    pub response_id: Option<String>,
    pub model: String,
    pub category: Option<String>,
    /// −1 (bad) .. 1 (good).
    pub score: f32,
    pub comment: Option<String>,
    pub unix_ms: u64,
}

/// Which model answered a request, kept so feedback can name the request only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub request_id: String,
    pub model: String,
    pub category: Option<String>,
    pub unix_ms: u64,
    /// A client app's background request (a chat title, tags), not an answer to rate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// The API key's tenant that made the request (only it may rate the response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// VRAM use of one node at one moment, from Ollama's `/api/ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VramSample {
    pub node: String,
    pub unix_ms: u64,
    /// Sum of `size_vram` over the loaded models.
    pub used_bytes: u64,
    /// (model, size_vram) of each loaded model.
    pub models: Vec<(String, u64)>,
}

/// One write to the store, as queued by the router and as written to a handover file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum Record {
    Feedback(Feedback),
    Decision(DecisionRecord),
    Vram(VramSample),
    Profile(crate::model::ModelProfile),
}

/// VRAM samples kept (oldest dropped first): a day at one sample per node every 30 s for 10 nodes.
pub const VRAM_SAMPLES_KEPT: u64 = 30_000;

/// What the router keeps on disk.
pub trait Store: Send + Sync {
    /// Adds feedback under its id, or under the next free id if that one is taken (two
    /// processes can pick the same id during an upgrade); returns the id used.
    fn add_feedback(&self, feedback: &Feedback) -> Result<u64, StoreError>;
    fn feedback(&self) -> Result<Vec<Feedback>, StoreError>;
    /// Records a batch of decisions (one write for the batch: a busy router makes thousands a
    /// second).
    fn record_decisions(&self, decisions: &[DecisionRecord]) -> Result<(), StoreError>;
    fn decision(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError>;
    /// Saves a model's profile, replacing the previous one, and flushes it to disk.
    fn put_profile(&self, profile: &crate::model::ModelProfile) -> Result<(), StoreError>;
    fn profiles(&self) -> Result<Vec<crate::model::ModelProfile>, StoreError>;
    fn record_vram(&self, sample: &VramSample) -> Result<(), StoreError>;
    /// Samples at or after `since_unix_ms`, oldest first.
    fn vram_history(&self, since_unix_ms: u64) -> Result<Vec<VramSample>, StoreError>;
    /// Waits until everything written so far is on disk.
    fn flush(&self) -> Result<(), StoreError>;
}

pub use crate::model::now_unix_ms;
