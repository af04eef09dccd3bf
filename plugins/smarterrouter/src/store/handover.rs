//! Handover files: the fallback by which a router that has released the store (it is being
//! replaced by a graceful upgrade) keeps writes it could not hand to the new owner through the
//! owner socket ([`super::owner`]) before it exited. Each batch becomes one file in
//! `<data_dir>/handover/`, written to a temporary name, synced and renamed, so a reader sees
//! whole files only. The owner of the store imports the files (at open and about once a second)
//! and deletes each one once its records are on disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Record;

const DIR: &str = "handover";
const SUFFIX: &str = ".jsonl";

/// The handover directory of a store directory.
pub fn dir_of(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// Writes `records` as one new handover file and syncs it; the error says what failed.
pub fn write(data_dir: &Path, records: &[Record]) -> Result<PathBuf, String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "{:013}-{}-{}",
        super::now_unix_ms(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let done = dir_of(data_dir).join(format!("{name}{SUFFIX}"));
    write_atomically(&done, &lines_of(records)?)?;
    Ok(done)
}

/// Replaces a handover file with only `records` (those that could not be imported yet).
pub fn rewrite(path: &Path, records: &[Record]) -> Result<(), String> {
    write_atomically(path, &lines_of(records)?)
}

/// Moves lines this version cannot read to `<file>.rejected` (kept for a later version or a
/// human; never offered again), and returns that file.
pub fn reject(path: &Path, lines: &[String]) -> Result<PathBuf, String> {
    let kept = path.with_extension("rejected");
    let mut text = lines.join("\n").into_bytes();
    text.push(b'\n');
    write_atomically(&kept, &text)?;
    Ok(kept)
}

fn lines_of(records: &[Record]) -> Result<Vec<u8>, String> {
    let mut text = Vec::new();
    for record in records {
        serde_json::to_writer(&mut text, record).map_err(|e| e.to_string())?;
        text.push(b'\n');
    }
    Ok(text)
}

/// Writes to a temporary name, syncs, renames, and syncs the directory: a reader (or a crash)
/// sees the old file or the whole new one.
fn write_atomically(target: &Path, text: &[u8]) -> Result<(), String> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text)?;
        file.sync_all()?;
        std::fs::rename(&temporary, target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| format!("cannot write {}: {e}", target.display()))
}

/// Complete handover files, oldest first.
pub fn pending(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir_of(data_dir)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// The records of one handover file, and the lines this version cannot read.
pub fn read(path: &Path) -> Result<(Vec<Record>, Vec<String>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(_) => rejected.push(line.to_string()),
        }
    }
    Ok((records, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DecisionRecord;

    #[test]
    fn written_files_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let decision = |id: &str| {
            Record::Decision(DecisionRecord {
                request_id: id.into(),
                model: "m".into(),
                category: None,
                unix_ms: 1,
                background: false,
                tenant: None,
            })
        };
        write(dir.path(), &[decision("a"), decision("b")]).unwrap();
        write(dir.path(), &[decision("c")]).unwrap();
        let files = pending(dir.path());
        assert_eq!(files.len(), 2);
        let (first, rejected) = read(&files[0]).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(first, vec![decision("a"), decision("b")]);
        assert_eq!(read(&files[1]).unwrap().0, vec![decision("c")]);
        // A half-written file (still under its temporary name) is never offered.
        std::fs::write(dir_of(dir.path()).join(".x.tmp"), b"{").unwrap();
        assert_eq!(pending(dir.path()).len(), 2);
        // Lines a version cannot read are set aside, not lost, and not offered again.
        std::fs::write(&files[1], b"{\"kind\":\"future\",\"record\":1}\n").unwrap();
        let (records, rejected) = read(&files[1]).unwrap();
        assert!(records.is_empty());
        let kept = reject(&files[1], &rejected).unwrap();
        assert!(std::fs::read_to_string(kept).unwrap().contains("future"));
        rewrite(&files[1], &[]).unwrap();
        assert_eq!(pending(dir.path()).len(), 2);
    }
}
