//! The floor under the router's cost: Pingora 0.9.1 proxying every request to one upstream and
//! doing nothing else (no routing, no body handling, no store, logs, metrics or admin port), with
//! the router's thread count and the same upstream timeouts the router gives each node. It is
//! what `benches/proxy_cost.py --bare-pingora` runs next to nginx and the router, so what the
//! router costs beyond it is the router's own code, and what it costs below nginx is Pingora's.
//!
//! Usage: `cargo run --release --example bare_pingora -- LISTEN UPSTREAM [THREADS]`, e.g.
//! `127.0.0.1:8080 127.0.0.1:11434 2`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

/// The router's per-node settings (`router.upstream` defaults, `proxy/peer.rs`).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(2000);
const READ_TIMEOUT: Duration = Duration::from_secs(300);
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

// The router's allocator, so the two differ only in what runs per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    /// Phase `upstream_peer`: reads nothing, writes nothing; always the one upstream.
    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        peer.options.connection_timeout = Some(CONNECT_TIMEOUT);
        peer.options.read_timeout = Some(READ_TIMEOUT);
        peer.options.idle_timeout = Some(IDLE_TIMEOUT);
        Ok(Box::new(peer))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, upstream) = match (args.first(), args.get(1).map(|a| a.parse::<SocketAddr>())) {
        (Some(listen), Some(Ok(upstream))) => (listen.clone(), upstream),
        _ => {
            eprintln!("usage: bare_pingora LISTEN UPSTREAM [THREADS] (UPSTREAM as IP:PORT)");
            return ExitCode::FAILURE;
        }
    };
    let threads = match args.get(2).map(|t| t.parse::<usize>()) {
        None => 2,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("bare_pingora: THREADS must be a positive number");
            return ExitCode::FAILURE;
        }
    };
    let conf = ServerConf {
        threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever()
}
