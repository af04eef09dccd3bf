//! `smarterrouter`: the ready-to-run edge proxy around the SmarterRouter Pingora plugin.
//! Reads one YAML file (Pingora's server keys plus `router:`), applies `ROUTER_*` environment
//! overrides, sets up logging, and runs the proxy, admin and discovery services.

use std::path::PathBuf;
use std::process::ExitCode;

mod allocator;
mod daemon;
mod log_writer;

use clap::Parser;
use pingora::server::configuration::Opt;
use pingora::server::{RunArgs, Server};
use smarterrouter_plugin::config::{self, LogFormat};
use tracing_subscriber::EnvFilter;

// Every proxied request allocates header maps and buffers; mimalloc is markedly cheaper than
// glibc malloc for that pattern (measured with benches/load.py).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// LLM router for self-hosted Ollama and llama.cpp servers.
///
/// Listens on router.host:router.port (default 0.0.0.0:11436) for OpenAI (/v1/*) and Ollama
/// (/api/*) clients and forwards each request to a healthy node that has the chosen model.
/// SmarterRouter's ROUTER_* environment variables (ROUTER_OLLAMA_URL, ROUTER_HOST,
/// ROUTER_PORT, ROUTER_LOG_LEVEL, ROUTER_QUALITY_PREFERENCE, ...; see conf/smarterrouter.yaml)
/// override the file; one that has no effect here gets a warning at start and from --validate.
#[derive(Parser, Debug)]
#[command(name = "smarterrouter", version)]
struct Cli {
    /// Configuration file (YAML).
    #[arg(
        short = 'c',
        long = "conf",
        default_value = "conf/smarterrouter.yaml",
        global = true
    )]
    conf: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
    /// Check the configuration, print every problem with its key path, and exit
    /// (status 0 if valid, 1 if not).
    #[arg(long)]
    validate: bool,
    /// Run in the background (set pid_file in the file). The command returns once the daemon
    /// is ready: listening, or with -u waiting for the old process's sockets.
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Take over the listening sockets and the store of a running instance, which is then sent
    /// SIGQUIT (graceful upgrade; see systemd/smarterrouter.service).
    #[arg(short = 'u', long)]
    upgrade: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Measure every chat model on the configured nodes (or one, with --model): quality per
    /// category from prompt suites with checked answers, time to first token, tokens/s and, on
    /// Ollama nodes, load time and VRAM. Saves the profiles in router.data_dir (the router uses
    /// them for routing) and prints a summary table. Settings: router.profiling. While a router
    /// runs on the same data_dir, the CLI asks that router to profile (through its admin API)
    /// and prints the same progress and table.
    Profile {
        /// Profile only this model.
        #[arg(long)]
        model: Option<String>,
    },
    /// Internal: check that the store in DIR opens and reads (exit 0), is in use by another
    /// process (exit 2), or is damaged (exit 1). The router runs it before daemonising, in a
    /// child process, because opening the store starts threads a fork would lose.
    #[command(hide = true)]
    CheckStore {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `check-store` exit status for a store another process holds.
const STORE_LOCKED: u8 = 2;

fn main() -> ExitCode {
    // No transparent huge pages for this process (and the daemon it forks): mimalloc asks for
    // them on its 1 GiB arena, and each small thread heap then touched a whole 2 MiB page; that
    // was two thirds of the idle RSS (71 MiB; 24 MiB without, same throughput: see the README's
    // performance section). Where THP is off or unsupported this does nothing.
    let _ = nix::sys::prctl::set_thp_disable(true);
    allocator::return_freed_memory_sooner();
    let cli = Cli::parse();
    if let Some(Command::CheckStore { dir }) = &cli.command {
        return check_store(dir);
    }
    let loaded = match config::load_file(&cli.conf) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.validate {
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        if let Err(e) = smarterrouter_plugin::classifier_from_config(&loaded.router.routing) {
            eprintln!("{}: {e}", cli.conf.display());
            return ExitCode::FAILURE;
        }
        println!(
            "{}: configuration is valid ({} node{} in {} pool{})",
            cli.conf.display(),
            loaded.nodes.len(),
            if loaded.nodes.len() == 1 { "" } else { "s" },
            loaded.router.pools.len(),
            if loaded.router.pools.len() == 1 {
                ""
            } else {
                "s"
            },
        );
        return ExitCode::SUCCESS;
    }
    init_logging(&loaded.router.log);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let state = match smarterrouter_plugin::RouterState::new(&loaded) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("smarterrouter: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Profile { model }) = cli.command {
        return profile(&loaded, state, model);
    }
    let daemon = cli.daemon || loaded.server.daemon;
    if let Err(e) = check_server_paths(&loaded.server, daemon)
        .and_then(|()| check_listen_addresses(&loaded.router, cli.upgrade))
    {
        eprintln!("smarterrouter: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = precheck_store(&loaded.router.data_dir, cli.upgrade) {
        eprintln!("smarterrouter: {e}");
        return ExitCode::FAILURE;
    }
    let mut server_conf = loaded.server;
    // The host daemonises itself (see daemon.rs), before any thread exists; Pingora must not
    // fork again.
    server_conf.daemon = false;
    let readiness = if daemon {
        match daemon::daemonize(&server_conf) {
            Ok(readiness) => Some(readiness),
            Err(e) => {
                eprintln!("smarterrouter: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    // From here on no proxy thread writes to stderr itself.
    log_writer::start();
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: false,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf);
    // Bootstrap (taking over the old process's sockets with -u) runs as a service, so the
    // daemon's parent can return before it waits for them (the unit sends SIGQUIT after that).
    let bootstrap = server.bootstrap_as_a_service();
    let ready = readiness.map(|r| {
        let notify: smarterrouter_plugin::lifecycle::ReadyHook = Box::new(move || r.notify());
        notify
    });
    smarterrouter_plugin::lifecycle::add_services(
        &mut server,
        &state,
        Some(&bootstrap),
        cli.upgrade,
        ready,
    );
    tracing::info!(
        listen = %format!("{}:{}", state.config.host, state.config.port),
        admin = %state.config.admin.listen,
        nodes = state.registry.nodes().len(),
        daemon,
        upgrade = cli.upgrade,
        "smarterrouter starting"
    );
    server.run(RunArgs::default());
    smarterrouter_plugin::lifecycle::finish(&state);
    tracing::info!("smarterrouter stopped");
    log_writer::flush(std::time::Duration::from_secs(2));
    ExitCode::SUCCESS
}

/// Pingora panics when it cannot write its pid file, upgrade socket or error log; say which
/// directory is missing instead.
fn check_server_paths(
    server: &pingora::server::configuration::ServerConf,
    daemon: bool,
) -> Result<(), String> {
    let mut paths = vec![("upgrade_sock", server.upgrade_sock.as_str())];
    if daemon {
        paths.push(("pid_file", server.pid_file.as_str()));
        if let Some(log) = &server.error_log {
            paths.push(("error_log", log.as_str()));
        }
    }
    for (key, path) in paths {
        let dir = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir.filter(|d| !d.is_dir()) {
            return Err(format!(
                "{key}: the directory {} of {path} does not exist (create it, or set {key} elsewhere; under systemd, RuntimeDirectory=smarterrouter creates /run/smarterrouter)",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Binds each listening address once, here in the foreground, so a port in use or an address
/// this host does not have stops the start with a message (Pingora would bind later, inside a
/// service, and keep running without the listener). During an upgrade (`-u`) the old process
/// holds the ports, so "in use" is expected there.
fn check_listen_addresses(router: &config::RouterConfig, upgrade: bool) -> Result<(), String> {
    let proxy = smarterrouter_plugin::lifecycle::listen_address(&router.host, router.port);
    let mut addresses = vec![("router.host/router.port", proxy)];
    if !router.admin.listen.is_empty() {
        addresses.push(("router.admin.listen", router.admin.listen.clone()));
    }
    for (key, address) in addresses {
        match std::net::TcpListener::bind(&address) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && upgrade => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!(
                    "{key}: {address} is already in use (another router? stop it, pick another port, or take over from it with -u)"
                ))
            }
            Err(e) => return Err(format!("{key}: cannot listen on {address}: {e}")),
        }
    }
    Ok(())
}

/// Opens the store in a child process (`check-store`) so that a damaged store stops the router
/// here, in the foreground, with the reason, and this process starts no thread before Pingora
/// forks. A store in use by another process is expected during an upgrade (`-u`).
fn precheck_store(data_dir: &str, upgrade: bool) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this program's own path to check the store: {e}"))?;
    let output = std::process::Command::new(exe)
        .arg("check-store")
        .arg("--dir")
        .arg(data_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot check the store at {data_dir}: {e}"))?;
    match output.status.code() {
        Some(0) => Ok(()),
        Some(code) if code == i32::from(STORE_LOCKED) => {
            if !upgrade {
                tracing::warn!(
                    dir = data_dir,
                    "the store is in use by another process; the router starts and opens it as soon as that process lets go"
                );
            }
            Ok(())
        }
        _ => {
            let why = String::from_utf8_lossy(&output.stderr).trim().to_string();
            Err(if why.is_empty() {
                format!(
                    "checking the store at {data_dir} failed ({})",
                    output.status
                )
            } else {
                why
            })
        }
    }
}

fn check_store(dir: &std::path::Path) -> ExitCode {
    use smarterrouter_plugin::store::{SledStore, Store, StoreError};
    let store = match SledStore::open(dir) {
        Ok(store) => store,
        Err(StoreError::Locked { .. }) => return ExitCode::from(STORE_LOCKED),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = store.feedback().and(store.profiles()) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn profile(
    loaded: &config::LoadedConfig,
    state: std::sync::Arc<smarterrouter_plugin::RouterState>,
    model: Option<String>,
) -> ExitCode {
    use smarterrouter_plugin::store::{SledStore, StoreError};
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("smarterrouter profile: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::path::Path::new(&loaded.router.data_dir);
    let result = match SledStore::open(dir) {
        Ok(store) => {
            let cli = smarterrouter_plugin::profile::cli::CliContext {
                registry: &state.registry,
                client: &state.node_client,
                profiles: &state.profiles,
                config: &state.config.profiling,
            };
            runtime
                .block_on(smarterrouter_plugin::profile::cli::run(
                    cli,
                    std::sync::Arc::new(store),
                    model,
                ))
                .map_err(|e| e.to_string())
        }
        Err(StoreError::Locked { path }) => {
            match smarterrouter_plugin::profile::remote::admin_target(&loaded.router) {
                Ok(target) => {
                    eprintln!(
                        "another process holds the store at {path} (a running router?); asking the router to profile through {}",
                        target.base_url
                    );
                    runtime.block_on(smarterrouter_plugin::profile::remote::run(
                        &target,
                        model.as_deref(),
                        &|line| eprintln!("{line}"),
                    ))
                }
                Err(why) => Err(format!(
                    "the store at {path} is in use by another process (a running router?), and {why}"
                )),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(profiles) => {
            let mut out = std::io::stdout();
            if let Err(e) = smarterrouter_plugin::profile::cli::print_summary(&profiles, &mut out) {
                eprintln!("smarterrouter profile: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("smarterrouter profile: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &config::LogConfig) {
    // Pingora's own records are chatty at info about internals; keep them at warn unless asked.
    let directives = format!(
        "warn,smarterrouter={0},smarterrouter_plugin={0},access={0},pingora=warn",
        log.level
    );
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: a daemon's log goes to a file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(log_writer::QueuedStderr::default());
    let result = match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("smarterrouter: logging could not be set up: {e}");
    }
}
