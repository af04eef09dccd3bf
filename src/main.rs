//! `smarterrouter`: the ready-to-run edge proxy around the SmarterRouter Pingora plugin.
//! Reads one YAML file (Pingora's server keys plus `router:`), applies `ROUTER_*` environment
//! overrides, sets up logging, and runs the proxy, admin and discovery services.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pingora::server::configuration::Opt;
use pingora::server::Server;
use smarterrouter::config::{self, LogFormat};
use tracing_subscriber::EnvFilter;

// Every proxied request allocates header maps and buffers; mimalloc is markedly cheaper than
// glibc malloc for that pattern (measured with benches/load.py).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// LLM router for self-hosted Ollama and llama.cpp servers.
///
/// Listens on router.host:router.port (default 0.0.0.0:11436) for OpenAI (/v1/*) and Ollama
/// (/api/*) clients and forwards each request to a healthy node that has the chosen model.
/// ROUTER_* environment variables (ROUTER_OLLAMA_URL, ROUTER_HOST, ROUTER_PORT,
/// ROUTER_LOG_LEVEL, ROUTER_LOG_FORMAT, ROUTER_DEFAULT_MODEL, ROUTER_MAX_REQUEST_BODY_BYTES)
/// override the file.
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
    /// Run in the background (Pingora daemon mode; set pid_file in the file).
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Take over the listening sockets of a running instance (graceful upgrade; see systemd/).
    #[arg(short = 'u', long)]
    upgrade: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Measure every chat model on the configured nodes (or one, with --model): quality per
    /// category from prompt suites with checked answers, time to first token, tokens/s and, on
    /// Ollama nodes, load time and VRAM. Saves the profiles in router.data_dir (the router uses
    /// them for routing) and prints a summary table. Settings: router.profiling.
    Profile {
        /// Profile only this model.
        #[arg(long)]
        model: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match config::load_file(&cli.conf) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.validate {
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

    let state = match smarterrouter::RouterState::new(&loaded) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("smarterrouter: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Profile { model }) = cli.command {
        return profile(state, model);
    }
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, loaded.server);
    server.bootstrap();
    let services = smarterrouter::services(&state, &server.configuration);
    server.add_services(services);
    tracing::info!(
        listen = %format!("{}:{}", state.config.host, state.config.port),
        admin = %state.config.admin.listen,
        nodes = state.registry.nodes().len(),
        "smarterrouter starting"
    );
    server.run_forever()
}

fn profile(state: std::sync::Arc<smarterrouter::RouterState>, model: Option<String>) -> ExitCode {
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
    match runtime.block_on(smarterrouter::profile::cli::run(state, model)) {
        Ok(profiles) => {
            let mut out = std::io::stdout();
            if let Err(e) = smarterrouter::profile::cli::print_summary(&profiles, &mut out) {
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
    let directives = format!("warn,smarterrouter={0},access={0},pingora=warn", log.level);
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
