//! Log lines leave the proxy threads through a bounded queue to one writer thread, so a request
//! never waits on stderr (a slow journal, a full pipe, a slow disk under `error_log`). When the
//! queue is full the line is dropped and counted (`smarterrouter_log_lines_dropped_total`); the
//! writer then logs how many were lost. The thread is started after daemonising (a fork keeps
//! no threads); until then lines are written directly, so start-up warnings reach the terminal.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lines the queue holds: about 8 MB of access lines, seconds of a burst at full speed.
pub const QUEUE_LINES: usize = 16_384;

static QUEUE: OnceLock<SyncSender<Vec<u8>>> = OnceLock::new();
/// Lines queued and not yet written.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Lines dropped since the writer last reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// `tracing_subscriber`'s writer: one `write` per formatted event.
#[derive(Clone, Copy, Default)]
pub struct QueuedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueuedStderr {
    type Writer = QueuedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedStderr
    }
}

impl Write for QueuedStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let Some(queue) = QUEUE.get() else {
            return std::io::stderr().write(line);
        };
        PENDING.fetch_add(1, Ordering::AcqRel);
        match queue.try_send(line.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                PENDING.fetch_sub(1, Ordering::AcqRel);
                DROPPED.fetch_add(1, Ordering::Relaxed);
                smarterrouter_plugin::metrics::log_lines_dropped(1);
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts the writer thread; later lines are queued. Call once, after daemonising.
pub fn start() {
    let (sender, receiver) = sync_channel(QUEUE_LINES);
    if QUEUE.set(sender).is_err() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("log-writer".to_string())
        .spawn(move || write_lines(receiver));
    if let Err(e) = spawned {
        eprintln!(
            "smarterrouter: the log writer thread could not start ({e}); log lines will be dropped"
        );
    }
}

fn write_lines(receiver: Receiver<Vec<u8>>) {
    let stderr = std::io::stderr();
    while let Ok(line) = receiver.recv() {
        let mut out = stderr.lock();
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "smarterrouter: {dropped} log lines were dropped: the log writer could not keep up (see smarterrouter_log_lines_dropped_total)"
            );
        }
        let _ = out.write_all(&line);
        PENDING.fetch_sub(1, Ordering::AcqRel);
        // Drain what else is queued under the same lock, then let the lines go out.
        while let Ok(line) = receiver.try_recv() {
            let _ = out.write_all(&line);
            PENDING.fetch_sub(1, Ordering::AcqRel);
        }
        let _ = out.flush();
    }
}

/// Waits (up to `within`) until every queued line is written: called before the process exits.
pub fn flush(within: Duration) {
    let deadline = Instant::now() + within;
    while PENDING.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}
