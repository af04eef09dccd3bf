//! Routing decisions on disk in a fixed-size ring file (`decisions.ring` in the store's
//! directory), so feedback can name a request answered before a restart. The file never grows
//! past `slots × SLOT_BYTES` (50,000 × 512 B = 25.6 MB by default) however long the router runs:
//! the newest decision overwrites the oldest. An in-memory index (request id hash → slot, about
//! 1 MB) makes a lookup one read of one slot; it is rebuilt by reading the file once at open.
//!
//! Why not sled: every decision written to a sled tree grows sled's log and page cache until
//! it compacts (the store grew by tens of MB a minute under load, and so did the router's RSS),
//! and dropping the oldest decision is itself a write. A ring slot is overwritten in place.
//!
//! Layout: slot 0 is the header (magic, version, slot size, slot count); each other slot holds
//! `seq: u64 LE | len: u16 LE | crc32: u32 LE | JSON of the record`, the CRC over seq, len and the
//! JSON. Seq 0 marks an empty slot; a torn write fails its CRC and reads as empty.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use super::{DecisionRecord, StoreError};

pub const FILE_NAME: &str = "decisions.ring";
/// Bytes per slot; a record whose JSON does not fit in one is not stored (it stays in memory
/// for feedback). Request ids are at most 128 bytes, so only absurd model names come near.
pub const SLOT_BYTES: usize = 512;
const SLOT_HEAD: usize = 8 + 2 + 4;
const MAX_PAYLOAD: usize = SLOT_BYTES - SLOT_HEAD;
const MAGIC: &[u8; 8] = b"SRDECRNG";
const VERSION: u32 = 1;
/// A header asking for more slots than this is damage, not a configuration.
const MAX_SLOTS: u32 = 10_000_000;
/// Slots read per `read_at` while rebuilding the index (64 KiB).
const SCAN_SLOTS: usize = 128;

pub struct DecisionRing {
    path: String,
    hasher: RandomState,
    ring: Mutex<Ring>,
}

struct Ring {
    file: File,
    /// Record slots (the header is not counted).
    slots: u32,
    /// The slot the next record goes to (0-based among the record slots).
    next_slot: u32,
    next_seq: u64,
    /// Hash of a request id → the slot holding its newest record.
    index: HashMap<u64, u32>,
    /// Hash of the request id each slot holds, so overwriting a slot can drop it from the index.
    slot_ids: Vec<u64>,
}

impl DecisionRing {
    /// Opens (or creates) `dir/decisions.ring`; a new file gets `slots` record slots, an existing
    /// one keeps its own count.
    pub fn open(dir: &Path, slots: u32) -> Result<Self, StoreError> {
        let file_path = dir.join(FILE_NAME);
        let path = file_path.display().to_string();
        let io = |e: std::io::Error| StoreError::Io(format!("{path}: {e}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&file_path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let slots = if len == 0 {
            let mut header = vec![0u8; SLOT_BYTES];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&VERSION.to_le_bytes());
            header[12..16].copy_from_slice(&(SLOT_BYTES as u32).to_le_bytes());
            header[16..20].copy_from_slice(&slots.max(1).to_le_bytes());
            file.write_all_at(&header, 0).map_err(io)?;
            file.sync_data().map_err(io)?;
            slots.max(1)
        } else {
            read_header(&file, &path)?
        };
        let mut ring = Ring {
            file,
            slots,
            next_slot: 0,
            next_seq: 1,
            index: HashMap::new(),
            slot_ids: vec![0; slots as usize],
        };
        let hasher = RandomState::new();
        rebuild_index(&mut ring, &hasher).map_err(io)?;
        Ok(DecisionRing {
            path,
            hasher,
            ring: Mutex::new(ring),
        })
    }

    /// Writes the records in order into the next slots (one write per contiguous run); returns
    /// how many were too large to store.
    pub fn record(&self, records: &[DecisionRecord]) -> Result<usize, StoreError> {
        let mut ring = self.lock()?;
        let mut too_large = 0;
        let mut run = Vec::with_capacity(records.len().min(ring.slots as usize) * SLOT_BYTES);
        let mut run_start = ring.next_slot;
        for record in records {
            let payload = serde_json::to_vec(record).map_err(|e| self.io(e))?;
            if payload.len() > MAX_PAYLOAD {
                too_large += 1;
                continue;
            }
            let slot = ring.next_slot;
            let seq = ring.next_seq;
            let start = run.len();
            run.resize(start + SLOT_BYTES, 0);
            encode_slot(&mut run[start..], seq, &payload);
            let id = self.hash(&record.request_id);
            let old = ring.slot_ids[slot as usize];
            if ring.index.get(&old) == Some(&slot) {
                ring.index.remove(&old);
            }
            ring.slot_ids[slot as usize] = id;
            ring.index.insert(id, slot);
            ring.next_seq += 1;
            ring.next_slot = (slot + 1) % ring.slots;
            if ring.next_slot == 0 {
                ring.write_run(run_start, &run).map_err(|e| self.io(e))?;
                run.clear();
                run_start = 0;
            }
        }
        ring.write_run(run_start, &run).map_err(|e| self.io(e))?;
        Ok(too_large)
    }

    /// The newest record for `request_id`, if the ring still holds it.
    pub fn get(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        let ring = self.lock()?;
        let Some(&slot) = ring.index.get(&self.hash(request_id)) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; SLOT_BYTES];
        ring.file
            .read_exact_at(&mut buf, slot_offset(slot))
            .map_err(|e| self.io(e))?;
        // Another id with the same hash, or a slot that no longer reads back: not this one.
        Ok(decode_slot(&buf)
            .map(|(_, record)| record)
            .filter(|record| record.request_id == request_id))
    }

    /// Records held (at most the slot count).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map(|ring| ring.index.len()).unwrap_or(0)
    }

    /// Waits until every record written is on disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.lock()?.file.sync_data().map_err(|e| self.io(e))
    }

    fn hash(&self, request_id: &str) -> u64 {
        self.hasher.hash_one(request_id)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Ring>, StoreError> {
        self.ring
            .lock()
            .map_err(|_| StoreError::Io(format!("{}: a writer panicked", self.path)))
    }

    fn io(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io(format!("{}: {e}", self.path))
    }
}

impl Ring {
    fn write_run(&self, first_slot: u32, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(bytes, slot_offset(first_slot))
    }
}

/// Byte offset of record slot `slot` (slot 0 of the file is the header).
fn slot_offset(slot: u32) -> u64 {
    (u64::from(slot) + 1) * SLOT_BYTES as u64
}

fn read_header(file: &File, path: &str) -> Result<u32, StoreError> {
    let corrupt = |reason: &str| {
        StoreError::Corrupt {
        path: path.to_string(),
        reason: format!("the decision ring file {reason}; delete {FILE_NAME} to start it afresh (only past routing decisions, used to accept feedback, are lost)"),
    }
    };
    let mut header = [0u8; 20];
    file.read_exact_at(&mut header, 0)
        .map_err(|_| corrupt("has no complete header"))?;
    if &header[..8] != MAGIC {
        return Err(corrupt("does not start with its magic bytes"));
    }
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (version, slot_bytes, slots) = (word(8), word(12), word(16));
    if version > VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_string(),
            found: version,
            supported: VERSION,
        });
    }
    if slot_bytes as usize != SLOT_BYTES || slots == 0 || slots > MAX_SLOTS {
        return Err(corrupt(&format!(
            "has an impossible header (slot size {slot_bytes}, {slots} slots)"
        )));
    }
    Ok(slots)
}

/// Reads every slot once: the index, and where the next record goes (after the newest).
fn rebuild_index(ring: &mut Ring, hasher: &RandomState) -> std::io::Result<()> {
    let mut newest: Option<(u64, u32)> = None;
    let mut seqs: HashMap<u64, u64> = HashMap::new();
    let mut buf = vec![0u8; SCAN_SLOTS * SLOT_BYTES];
    let mut slot = 0u32;
    while slot < ring.slots {
        let count = (SCAN_SLOTS as u32).min(ring.slots - slot) as usize;
        let chunk = &mut buf[..count * SLOT_BYTES];
        let read = read_up_to(&ring.file, chunk, slot_offset(slot))?;
        for (i, raw) in chunk[..read].chunks_exact(SLOT_BYTES).enumerate() {
            let at = slot + i as u32;
            let Some((seq, record)) = decode_slot(raw) else {
                continue;
            };
            let id = hasher.hash_one(&record.request_id);
            ring.slot_ids[at as usize] = id;
            if seqs.get(&id).is_none_or(|&seen| seen < seq) {
                seqs.insert(id, seq);
                ring.index.insert(id, at);
            }
            if newest.is_none_or(|(best, _)| best < seq) {
                newest = Some((seq, at));
            }
        }
        if read < chunk.len() {
            break; // the file ends here: the ring has not wrapped yet
        }
        slot += count as u32;
    }
    if let Some((seq, at)) = newest {
        ring.next_seq = seq + 1;
        ring.next_slot = (at + 1) % ring.slots;
    }
    Ok(())
}

/// Fills `buf` from `offset` until it is full or the file ends; returns the bytes read.
fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn slot_crc(seq: u64, len: u16, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&len.to_le_bytes());
    crc.update(payload);
    crc.finalize()
}

/// Writes one record into `slot` (SLOT_BYTES long, zeroed); `payload` fits (checked by the caller).
fn encode_slot(slot: &mut [u8], seq: u64, payload: &[u8]) {
    let len = payload.len() as u16;
    slot[..8].copy_from_slice(&seq.to_le_bytes());
    slot[8..10].copy_from_slice(&len.to_le_bytes());
    slot[10..14].copy_from_slice(&slot_crc(seq, len, payload).to_le_bytes());
    slot[SLOT_HEAD..SLOT_HEAD + payload.len()].copy_from_slice(payload);
}

/// The record in a slot, or None for an empty, torn or unreadable one.
fn decode_slot(slot: &[u8]) -> Option<(u64, DecisionRecord)> {
    let seq = u64::from_le_bytes(slot.get(..8)?.try_into().ok()?);
    let len = u16::from_le_bytes(slot.get(8..10)?.try_into().ok()?);
    let crc = u32::from_le_bytes(slot.get(10..14)?.try_into().ok()?);
    let payload = slot.get(SLOT_HEAD..SLOT_HEAD + usize::from(len))?;
    if seq == 0 || slot_crc(seq, len, payload) != crc {
        return None;
    }
    Some((seq, serde_json::from_slice(payload).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, model: &str) -> DecisionRecord {
        DecisionRecord {
            request_id: id.into(),
            model: model.into(),
            category: Some("coding".into()),
            unix_ms: 1,
            background: false,
            tenant: Some("team-a".into()),
        }
    }

    #[test]
    fn records_are_found_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ring = DecisionRing::open(dir.path(), 8).unwrap();
            ring.record(&[decision("r1", "a"), decision("r2", "b")])
                .unwrap();
            ring.record(&[decision("r1", "c")]).unwrap();
            assert_eq!(ring.get("r1").unwrap().unwrap().model, "c", "the newest");
            assert_eq!(ring.get("nope").unwrap(), None);
        }
        let ring = DecisionRing::open(dir.path(), 8).unwrap();
        assert_eq!(ring.get("r1").unwrap().unwrap().model, "c");
        assert_eq!(ring.get("r2").unwrap().unwrap(), decision("r2", "b"));
        assert_eq!(ring.len(), 2);
        // Written after the reopen, it goes after the newest, not over it.
        ring.record(&[decision("r3", "d")]).unwrap();
        assert_eq!(ring.get("r1").unwrap().unwrap().model, "c");
    }

    #[test]
    fn the_file_stays_the_same_size_and_the_oldest_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let ring = DecisionRing::open(dir.path(), 10).unwrap();
        let batch: Vec<DecisionRecord> = (0..25).map(|i| decision(&format!("r{i}"), "a")).collect();
        ring.record(&batch[..7]).unwrap();
        ring.record(&batch[7..]).unwrap();
        let size = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert_eq!(size, 11 * SLOT_BYTES as u64, "header + 10 slots");
        assert_eq!(ring.len(), 10);
        assert_eq!(ring.get("r14").unwrap(), None);
        assert!(ring.get("r15").unwrap().is_some());
        drop(ring);
        let ring = DecisionRing::open(dir.path(), 10).unwrap();
        assert_eq!(ring.len(), 10);
        ring.record(&[decision("next", "b")]).unwrap();
        assert_eq!(ring.get("r15").unwrap(), None, "the oldest was overwritten");
        assert!(ring.get("r16").unwrap().is_some());
        assert_eq!(ring.get("next").unwrap().unwrap().model, "b");
    }

    #[test]
    fn a_torn_slot_reads_as_empty_and_a_record_too_large_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ring = DecisionRing::open(dir.path(), 4).unwrap();
            let huge = decision("big", &"m".repeat(SLOT_BYTES));
            assert_eq!(
                ring.record(&[decision("a", "x"), huge, decision("b", "y")])
                    .unwrap(),
                1
            );
            assert_eq!(ring.get("big").unwrap(), None);
        }
        // Damage the second record's JSON (as a write cut off by a crash would).
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        file.write_all_at(b"XX", slot_offset(1) + SLOT_HEAD as u64 + 3)
            .unwrap();
        let ring = DecisionRing::open(dir.path(), 4).unwrap();
        assert_eq!(ring.get("a").unwrap().unwrap().model, "x");
        assert_eq!(ring.get("b").unwrap(), None);
    }

    #[test]
    fn a_file_that_is_not_a_ring_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            b"something else entirely, not a ring",
        )
        .unwrap();
        let err = DecisionRing::open(dir.path(), 4).err().unwrap();
        assert!(err.to_string().contains("delete decisions.ring"), "{err}");
        let mut header = vec![0u8; SLOT_BYTES];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
        std::fs::write(dir.path().join(FILE_NAME), &header).unwrap();
        let err = DecisionRing::open(dir.path(), 4).err().unwrap();
        assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
    }
}
