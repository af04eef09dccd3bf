//! The owner socket: while a process owns the store it answers on `<data_dir>/owner.sock`, so a
//! process that has released the store (the old router during a graceful upgrade, still
//! finishing requests) can go on writing and reading through the new owner: its writes are
//! acknowledged only once the owner has them on disk, and a feedback it receives for a response
//! the new process served still finds that response.
//!
//! Protocol: one JSON request per line, one JSON answer per line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::writer::{StoreListener, StoreSender};
use super::{DecisionRecord, Record, StoreHandle};

const SOCKET: &str = "owner.sock";
/// How long the owner waits for a durable write it was handed.
const WRITE_WAIT: Duration = Duration::from_secs(10);
/// How long it waits for room in its queue for any other record.
const QUEUE_WAIT: Duration = Duration::from_secs(2);

pub fn path_of(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    /// Write these records; durable ones (feedback, profiles) are answered once flushed. Each
    /// is read on its own, so one this version cannot read fails alone.
    Write { records: Vec<serde_json::Value> },
    /// The routing decision of a response, from memory or disk.
    Decision { request_id: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Answer {
    /// `Write`: for each record, the id it was stored under or why it failed.
    #[serde(default)]
    written: Vec<Result<u64, String>>,
    /// `Decision`: the record, if any.
    #[serde(default)]
    decision: Option<DecisionRecord>,
    #[serde(default)]
    error: Option<String>,
}

/// Serves the owner socket until the process stops owning the store.
pub async fn serve(handle: Arc<StoreHandle>, tx: StoreSender, listener: Arc<dyn StoreListener>) {
    let path = path_of(handle.dir());
    // A socket file left by an earlier owner (it has released the store, or it crashed).
    let _ = tokio::fs::remove_file(&path).await;
    let socket = match UnixListener::bind(&path) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "the owner socket cannot be opened; an old process being replaced will write through handover files instead");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = socket.accept().await else {
            continue;
        };
        let (handle, tx, listener) = (Arc::clone(&handle), tx.clone(), Arc::clone(&listener));
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &handle, &tx, listener.as_ref()).await {
                tracing::debug!(error = %e, "owner socket connection ended");
            }
        });
    }
}

async fn answer(
    stream: UnixStream,
    handle: &StoreHandle,
    tx: &StoreSender,
    listener: &dyn StoreListener,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Write { records }) => {
                handle.note_handover();
                // Durable writes wait for the owner's flush; in one batch they share it.
                let writes = records.into_iter().map(|raw| async move {
                    let record: Record = serde_json::from_value(raw)
                        .map_err(|e| format!("a record this version cannot read ({e})"))?;
                    if !matches!(record, Record::Feedback(_) | Record::Profile(_)) {
                        if let Record::Decision(_) = &record {
                            listener.imported(&record);
                        }
                        return if tx.send_waiting(record, QUEUE_WAIT).await {
                            Ok(0)
                        } else {
                            Err("the store owner's write queue is full".to_string())
                        };
                    }
                    let result = tx.send_durable(record.clone(), WRITE_WAIT).await;
                    if let Ok(id) = &result {
                        let mut record = record;
                        if let Record::Feedback(f) = &mut record {
                            f.id = *id;
                        }
                        listener.imported(&record);
                    }
                    result
                });
                Answer {
                    written: futures_util::future::join_all(writes).await,
                    ..Answer::default()
                }
            }
            Ok(Request::Decision { request_id }) => {
                match lookup(handle, listener, &request_id).await {
                    Ok(decision) => Answer {
                        decision,
                        ..Answer::default()
                    },
                    Err(e) => Answer {
                        error: Some(e),
                        ..Answer::default()
                    },
                }
            }
            Err(e) => Answer {
                error: Some(format!("bad request: {e}")),
                ..Answer::default()
            },
        };
        let mut text = serde_json::to_vec(&answer).unwrap_or_default();
        text.push(b'\n');
        write.write_all(&text).await?;
    }
    Ok(())
}

async fn lookup(
    handle: &StoreHandle,
    listener: &dyn StoreListener,
    request_id: &str,
) -> Result<Option<DecisionRecord>, String> {
    if let Some(found) = listener.recent_decision(request_id) {
        return Ok(Some(found));
    }
    let store = handle.get().ok_or("the store is not open here")?;
    let wanted = request_id.to_string();
    tokio::task::spawn_blocking(move || store.decision(&wanted))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn call(data_dir: &Path, request: &Request, timeout: Duration) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = UnixStream::connect(path_of(data_dir))
            .await
            .map_err(|e| format!("no store owner to hand over to yet ({e})"))?;
        let mut text = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        text.push(b'\n');
        stream.write_all(&text).await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_str::<Answer>(&line)
            .map_err(|e| format!("the store owner answered {line:?}: {e}"))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "the store owner did not answer in time".to_string())?
}

/// Hands `records` to the process that owns the store now; per record, its stored id or why not.
pub async fn write(
    data_dir: &Path,
    records: Vec<Record>,
) -> Result<Vec<Result<u64, String>>, String> {
    let count = records.len();
    let records = records
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let answer = call(
        data_dir,
        &Request::Write { records },
        WRITE_WAIT + Duration::from_secs(2),
    )
    .await?;
    if let Some(error) = answer.error {
        return Err(error);
    }
    if answer.written.len() != count {
        return Err(format!(
            "the store owner answered for {} of {count} records",
            answer.written.len()
        ));
    }
    Ok(answer.written)
}

/// The decision of `request_id`, asked of the process that owns the store now.
pub async fn decision(data_dir: &Path, request_id: &str) -> Result<Option<DecisionRecord>, String> {
    let request = Request::Decision {
        request_id: request_id.to_string(),
    };
    let answer = call(data_dir, &request, Duration::from_secs(5)).await?;
    match answer.error {
        Some(error) => Err(error),
        None => Ok(answer.decision),
    }
}
