"""Embeds every text of pairs.jsonl with the real all-MiniLM-L6-v2 (llama-server --embeddings) and
writes embeddings.json ({text: [384 floats]}), which `cargo run --release --example semantic_table`
and the plugin's tests read.

Usage: embed.py URL [MODEL]     (URL of a llama-server serving the model, e.g. http://127.0.0.1:18081)
See benches/semantic/run.sh for the whole measurement."""

import json
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def embed(url, model, texts):
    body = json.dumps({"model": model, "input": texts}).encode()
    request = urllib.request.Request(f"{url}/v1/embeddings", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        data = json.loads(response.read())["data"]
    return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]


def main(url, model="all-minilm"):
    texts = []
    for line in (HERE / "pairs.jsonl").read_text().splitlines():
        row = json.loads(line)
        for t in (row["a"], row["b"]):
            if t not in texts:
                texts.append(t)
    vectors = {}
    for i in range(0, len(texts), 16):
        batch = texts[i:i + 16]
        for text, vector in zip(batch, embed(url, model, batch)):
            vectors[text] = [round(x, 5) for x in vector]
    (HERE / "embeddings.json").write_text(json.dumps(vectors, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"embed.py: {len(vectors)} texts, {len(next(iter(vectors.values())))} dimensions", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
