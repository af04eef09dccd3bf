//! Daemon mode (`-d`), done here rather than by Pingora: the command must return only once the
//! daemon is ready, with its pid file written, or a service manager reads a pid file that is not
//! there yet. Pingora's own daemon mode either returns at once (before the pid file is written)
//! or, with `daemon_wait_for_ready`, waits for a SIGUSR1 that can arrive before it listens for it
//! and then kills the waiting parent. Here the daemon reports readiness through a pipe instead,
//! which has no such race.
//!
//! The fork happens before any thread or Pingora server exists.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use pingora::server::configuration::ServerConf;

/// What the daemon writes on the pipe once it is ready.
const READY: &[u8] = b"ready\n";

/// The daemon's end of the readiness pipe.
pub struct Readiness(std::io::PipeWriter);

impl Readiness {
    /// Tells the waiting parent that the daemon is ready; the parent then exits 0.
    pub fn notify(mut self) {
        let _ = self.0.write_all(READY);
    }
}

/// Forks into the background. Returns in the daemon (with its end of the readiness pipe); the
/// parent waits for readiness and exits (0 once ready, 1 if the daemon died or took longer than
/// `daemon_ready_timeout_seconds`).
pub fn daemonize(conf: &ServerConf) -> Result<Readiness, String> {
    let (reader, writer) =
        std::io::pipe().map_err(|e| format!("cannot create the readiness pipe: {e}"))?;
    let directory = match &conf.working_directory {
        Some(dir) => dir.into(),
        // Keep relative paths (router.data_dir: ./data) meaning what they meant when started.
        None => std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?,
    };
    let mut daemon = daemonix::Daemonize::new()
        .pid_file(&conf.pid_file)
        .working_directory(directory)
        .umask(0o007)
        .stdout(daemonix::Stdio::keep());
    daemon = match &conf.error_log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(|e| format!("error_log: cannot open {path}: {e}"))?;
            daemon.stderr(file)
        }
        None => daemon.stderr(daemonix::Stdio::keep()),
    };
    if let Some(user) = &conf.user {
        daemon = daemon.user(user.as_str());
    }
    if let Some(group) = &conf.group {
        daemon = daemon.group(group.as_str());
    }
    // The old process of a graceful upgrade still holds a lock on the pid file.
    let moved = move_old_pid_file(&conf.pid_file);
    match daemon.execute() {
        daemonix::Outcome::Parent(Ok(_)) => {
            drop(writer);
            let timeout = Duration::from_secs(
                conf.daemon_ready_timeout_seconds
                    .map(|n| n.get())
                    .unwrap_or(60),
            );
            std::process::exit(wait_for_ready(reader, timeout, &conf.pid_file));
        }
        daemonix::Outcome::Parent(Err(e)) => {
            if let Some(old) = moved {
                let _ = std::fs::rename(old, &conf.pid_file);
            }
            Err(format!("cannot start the daemon: {e}"))
        }
        daemonix::Outcome::Child(Ok(_)) => {
            drop(reader);
            Ok(Readiness(writer))
        }
        daemonix::Outcome::Child(Err(e)) => {
            // The parent sees the pipe close without "ready" and says so.
            eprintln!(
                "smarterrouter: the daemon could not start: {e} (pid_file {})",
                conf.pid_file
            );
            std::process::exit(1)
        }
    }
}

/// Exit status for the parent: 0 once the daemon said it is ready.
fn wait_for_ready(mut reader: std::io::PipeReader, timeout: Duration, pid_file: &str) -> i32 {
    let (tx, rx) = std::sync::mpsc::channel();
    // The parent is about to exit and never forks again, so a thread is fine here.
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        let _ = tx.send(got);
    });
    match rx.recv_timeout(timeout) {
        Ok(got) if got.starts_with(READY) => 0,
        Ok(_) => {
            eprintln!(
                "smarterrouter: the daemon exited while starting; see its log (error_log, or the journal)"
            );
            1
        }
        Err(_) => {
            let pid = std::fs::read_to_string(pid_file).unwrap_or_default();
            eprintln!(
                "smarterrouter: the daemon (pid {}, pid file {pid_file}) was not ready within {timeout:?} (daemon_ready_timeout_seconds); it may still be running: check its log, and stop it if needed",
                pid.trim()
            );
            1
        }
    }
}

/// Moves an existing pid file to `<pid_file>.old` (as Pingora does); returns where it went.
fn move_old_pid_file(path: &str) -> Option<String> {
    if !Path::new(path).exists() {
        return None;
    }
    let old = format!("{path}.old");
    match std::fs::rename(path, &old) {
        Ok(()) => Some(old),
        Err(e) => {
            eprintln!("smarterrouter: cannot move the old pid file {path} to {old}: {e}");
            None
        }
    }
}
