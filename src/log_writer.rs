//! Log lines leave the proxy threads through a bounded queue to one writer thread, so a request
//! never waits on stderr (a slow journal, a full pipe, a slow disk under `error_log`). When the
//! queue is full the line is dropped and counted (`smarterrouter_log_lines_dropped_total`); the
//! writer then logs how many were lost. The thread is started after daemonising (a fork keeps
//! no threads); until then lines are written directly, so start-up warnings reach the terminal.
//! ERROR lines are always written directly (after what is queued): they are rare, and Pingora
//! may exit the process right after logging one.

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
pub struct QueuedStderr {
    direct: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueuedStderr {
    type Writer = QueuedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedStderr::default()
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        QueuedStderr {
            direct: *meta.level() == tracing::Level::ERROR,
        }
    }
}

impl Write for QueuedStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let queue = QUEUE.get().filter(|_| !self.direct);
        let Some(queue) = queue else {
            if self.direct {
                // After what is queued, so the log stays in order.
                flush(Duration::from_millis(200));
            }
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

/// Starts the writer thread; later lines are queued. Call once, after daemonising. If the
/// thread cannot start, lines go on being written directly.
pub fn start() {
    let (sender, receiver) = sync_channel(QUEUE_LINES);
    let spawned = std::thread::Builder::new()
        .name("log-writer".to_string())
        .spawn(move || write_lines(receiver));
    match spawned {
        Ok(_) => {
            let _ = QUEUE.set(sender);
        }
        Err(e) => eprintln!(
            "smarterrouter: the log writer thread could not start ({e}); log lines are written directly"
        ),
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
