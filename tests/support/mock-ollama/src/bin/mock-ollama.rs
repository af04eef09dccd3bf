//! `mock-ollama`: runs the SIMULATED Ollama server standalone, for demos and load benchmarks.
//!
//! Usage: mock-ollama [--port N] [--models a,b] [--embedding-models e] [--latency-ms N]
//!                    [--tokens N] [--token-interval-ms N] [--number-answers] [--word-embeddings]
//!                    [--vram-sim a,b] [--sizes-gb a=4,b=2.5] [--parameter-sizes a=7.6B]

use std::time::Duration;

use mock_ollama::{MockConfig, MockModel, MockOllama};

fn main() -> std::process::ExitCode {
    let mut config = MockConfig::default();
    let mut port: u16 = 11434;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let number = || value.parse::<u64>().ok();
        match args[i].as_str() {
            "--port" => port = value.parse().unwrap_or(port),
            "--models" => {
                let embeddings: Vec<MockModel> = config
                    .models
                    .iter()
                    .filter(|m| m.is_embedding())
                    .cloned()
                    .collect();
                config.models = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(MockModel::chat)
                    .collect();
                config.models.extend(embeddings);
            }
            "--embedding-models" => {
                config.models.retain(|m| !m.is_embedding());
                config.models.extend(
                    value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(MockModel::embedding),
                );
            }
            "--vram-sim" => {
                config.vram_sim = Some(
                    value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
            "--sizes-gb" => {
                for pair in value.split(',') {
                    let Some((name, gb)) = pair.split_once('=') else {
                        eprintln!("mock-ollama: --sizes-gb takes name=GB,name=GB (got {pair:?})");
                        return std::process::ExitCode::FAILURE;
                    };
                    let Ok(gb) = gb.parse::<f64>() else {
                        eprintln!("mock-ollama: --sizes-gb: {gb:?} is not a number of GB");
                        return std::process::ExitCode::FAILURE;
                    };
                    let bytes = (gb * 1e9) as u64;
                    for model in config.models.iter_mut().filter(|m| m.name == name) {
                        model.size = bytes;
                    }
                }
            }
            "--parameter-sizes" => {
                for pair in value.split(',') {
                    let Some((name, size)) = pair.split_once('=') else {
                        eprintln!(
                            "mock-ollama: --parameter-sizes takes name=7.6B,name=8B (got {pair:?})"
                        );
                        return std::process::ExitCode::FAILURE;
                    };
                    for model in config.models.iter_mut().filter(|m| m.name == name) {
                        model.parameter_size = size.to_string();
                    }
                }
            }
            "--latency-ms" => config.latency = Duration::from_millis(number().unwrap_or(0)),
            "--tokens" => config.tokens = number().unwrap_or(5) as usize,
            "--token-interval-ms" => {
                config.token_interval = Duration::from_millis(number().unwrap_or(0))
            }
            "--number-answers" => {
                config.number_answers = true;
                i += 1;
                continue;
            }
            "--word-embeddings" => {
                config.word_embeddings = true;
                i += 1;
                continue;
            }
            "-h" | "--help" => {
                println!(
                    "mock-ollama: a SIMULATED Ollama server (canned answers, no model).\n\
                          options: --port N (default 11434, 0 = any free port) --models a,b \
                          --embedding-models e --latency-ms N --tokens N --token-interval-ms N --number-answers --word-embeddings\n\
                          --vram-sim a,b (simulate GPU memory: these start loaded, a cold model loads on use) \
                          --sizes-gb a=4,b=2.5 (model sizes, after --models) \
                          --parameter-sizes a=7.6B,b=8B (what /api/show and /api/tags report)"
                );
                return std::process::ExitCode::SUCCESS;
            }
            other => {
                eprintln!("mock-ollama: unknown option {other} (see --help)");
                return std::process::ExitCode::FAILURE;
            }
        }
        i += 2;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mock-ollama: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match MockOllama::start_on(addr, config).await {
            Ok(mock) => {
                let names: Vec<&str> = mock
                    .state
                    .config
                    .models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect();
                println!(
                    "SIMULATED Ollama (mock-ollama, canned answers) listening on {} with models {}",
                    mock.url(),
                    names.join(", ")
                );
                mock.wait().await;
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mock-ollama: cannot listen on {addr}: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
