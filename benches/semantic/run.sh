#!/usr/bin/env bash
# Measures the semantic cache on the labelled pairs with the real all-MiniLM-L6-v2:
# regenerates pairs.jsonl, embeds it through llama-server --embeddings --pooling mean
# (embeddings.json, committed so the tests can check the default without a model), then prints the
# README's threshold table. Needs the cached llama-server (scripts/setup-real-backend.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(scripts/setup-real-backend.sh)"
eval "$(scripts/setup-embedder.sh)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$LLAMA_SERVER" -m "$MINILM_GGUF" --alias all-minilm --embeddings --pooling mean \
  --host 127.0.0.1 --port "$port" -c 2048 -np 4 -t 2 >/tmp/semantic-llama-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.2
done
python3 benches/semantic/make_pairs.py > benches/semantic/pairs.jsonl
python3 benches/semantic/embed.py "http://127.0.0.1:$port"
cargo run --quiet -p smarterrouter-plugin --example semantic_table
