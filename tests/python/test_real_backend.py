"""End to end against a real llama.cpp llama-server serving SmolLM2-135M, as `openai`-kind nodes:
one for chat, one started with --embeddings for embeddings; and the semantic cache with the real
all-MiniLM-L6-v2 embedder. LLAMA_SERVER, SMOLLM2_GGUF and GEMMA_GGUF come from
scripts/setup-real-backend.sh, MINILM_GGUF from scripts/setup-embedder.sh (scripts/test sets them)."""

import os
import re
import subprocess
import time

import openai
import pytest

from conftest import ROUTER_BIN, Process, free_port, get_json, start_router, wait_until

LLAMA_SERVER = os.environ.get("LLAMA_SERVER")
SMOLLM2_GGUF = os.environ.get("SMOLLM2_GGUF")
GEMMA_GGUF = os.environ.get("GEMMA_GGUF")
MINILM_GGUF = os.environ.get("MINILM_GGUF")

if not (LLAMA_SERVER and SMOLLM2_GGUF and GEMMA_GGUF and MINILM_GGUF):
    if os.environ.get("CI"):
        raise RuntimeError(
            "CI must run the real-backend test: run scripts/setup-real-backend.sh and scripts/setup-embedder.sh first"
        )
    pytest.skip("LLAMA_SERVER/SMOLLM2_GGUF/GEMMA_GGUF/MINILM_GGUF not set (scripts/test sets them)",
                allow_module_level=True)


def start_llama(workdir, name, alias, *extra, model=None):
    port = free_port()
    args = [LLAMA_SERVER, "-m", model or SMOLLM2_GGUF, "--alias", alias, "--host", "127.0.0.1", "--port", str(port),
            "-c", "2048", "-np", "1", "-t", "1", *extra]
    process = Process(args, workdir / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: get_json(f"{url}/health").get("status") == "ok", 120, f"llama-server {name}")
    return process, url


@pytest.fixture
def real_router(workdir):
    chat, chat_url = start_llama(workdir, "chat", "smollm2-135m")
    embed, embed_url = start_llama(workdir, "embed", "smollm2-embed", "--embeddings", "--pooling", "mean")
    router, url = start_router(workdir, [(chat_url, "openai"), (embed_url, "openai")], default_model="smollm2-135m")
    yield url
    for p in (router, chat, embed):
        p.stop()


def test_chat_stream_and_embeddings_through_router(real_router):
    client = openai.OpenAI(base_url=f"{real_router}/v1", api_key="unused", max_retries=0, timeout=120)

    raw = client.chat.completions.with_raw_response.create(
        model="smarterrouter/main",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
    )
    assert raw.headers["x-smarterrouter-model"] == "smollm2-135m"
    reply = raw.parse()
    assert reply.choices[0].message.content.strip()
    assert reply.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Write a haiku about the ocean."}],
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert len(pieces) > 1, "streamed in several frames"
    assert usage is not None and usage.completion_tokens > 0

    embeddings = client.embeddings.create(model="smollm2-embed", input=["hello world", "goodbye"])
    assert len(embeddings.data) == 2
    first, second = embeddings.data[0].embedding, embeddings.data[1].embedding
    assert len(first) > 100 and first != second

    ids = [m.id for m in client.models.list()]
    assert "smollm2-135m" in ids and "smollm2-embed" in ids


def test_profile_two_real_models(workdir):
    """`smarterrouter profile` measures SmolLM2-135M and Gemma-3-270M for real: checked answers per
    category and real tokens/s; the router then serves the profiles."""
    smol, smol_url = start_llama(workdir, "smol", "smollm2-135m")
    gemma, gemma_url = start_llama(workdir, "gemma", "gemma3-270m", "--no-jinja", "--chat-template", "gemma",
                                   model=GEMMA_GGUF)
    conf = workdir / "profile.yaml"
    conf.write_text(
        f"pid_file: {workdir}/p.pid\nupgrade_sock: {workdir}/p.sock\nrouter:\n  host: 127.0.0.1\n"
        f"  port: {free_port()}\n  admin: {{listen: 127.0.0.1:{free_port()}}}\n  data_dir: {workdir}/data\n"
        "  profiling: {prompts_per_category: 2, max_tokens: 48, timeout_secs: 60, auto: false}\n"
        f"  pools:\n    - name: cpu\n      nodes:\n        - {{url: {smol_url}, kind: openai}}\n"
        f"        - {{url: {gemma_url}, kind: openai}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    started = time.monotonic()
    done = subprocess.run([ROUTER_BIN, "profile", "-c", str(conf)], capture_output=True, text=True, timeout=900, env=env)
    elapsed = time.monotonic() - started
    print(done.stdout)
    print(f"profiled 2 models in {elapsed:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) == {"smollm2-135m", "gemma3-270m"}, done.stdout

    router = Process([ROUTER_BIN, "-c", str(conf)], workdir / "router.log", env=env)
    try:
        url = re.search(r"port: (\d+)", conf.read_text()).group(1)
        admin = re.search(r"listen: (127\.0\.0\.1:\d+)", conf.read_text()).group(1)
        wait_until(lambda: get_json(f"http://127.0.0.1:{url}/health")["status"] == "ok", 20, "router")
        profiles = {p["model"]: p for p in get_json(f"http://{admin}/admin/profiles")["profiles"]}
    finally:
        router.stop()
        smol.stop()
        gemma.stop()
    assert set(profiles) == {"smollm2-135m", "gemma3-270m"}
    for p in profiles.values():
        assert p["tokens_per_sec"] and p["tokens_per_sec"] > 1, p
        assert p["ttft_ms"] and p["ttft_ms"] > 0, p
        assert set(p["categories"]) == {"coding", "reasoning", "math", "factual", "instruction", "creativity"}
        assert all(c["total"] == 2 for c in p["categories"].values())
    smol_scores = [c["score"] for c in profiles["smollm2-135m"]["categories"].values()]
    gemma_scores = [c["score"] for c in profiles["gemma3-270m"]["categories"].values()]
    assert profiles["smollm2-135m"]["tokens_per_sec"] != profiles["gemma3-270m"]["tokens_per_sec"]
    print("smollm2 scores", smol_scores, "gemma scores", gemma_scores)
    assert smol_scores != gemma_scores, "two different models measured differently"
    assert any(s > 0 for s in smol_scores + gemma_scores), "some answers are right"
    assert not all(s == 1 for s in smol_scores + gemma_scores), "not everything is right"


def test_semantic_cache_with_the_real_minilm_embedder(workdir):
    chat, chat_url = start_llama(workdir, "chat", "smollm2-135m")
    embed, embed_url = start_llama(workdir, "minilm", "all-minilm", "--embeddings", "--pooling", "mean",
                                   model=MINILM_GGUF)
    router, url = start_router(workdir, [(chat_url, "openai"), (embed_url, "openai")],
                               default_model="smollm2-135m", env={"ROUTER_EMBED_MODEL": "all-minilm"})
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)

        def ask(text):
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": text}], max_tokens=16, temperature=0
            )
            return raw.headers, raw.parse().choices[0].message.content

        headers, first = ask("How do I reset my password?")
        assert headers["x-smarterrouter-cache"] == "MISS"
        headers, again = ask("How can I reset my password?")
        assert headers["x-smarterrouter-cache"] == "HIT", "a paraphrase, by the real embedder"
        assert float(headers["x-smarterrouter-cache-similarity"]) >= 0.85
        assert again == first
        headers, _ = ask("How do I enable two-factor authentication?")
        assert headers["x-smarterrouter-cache"] == "MISS"
        headers, _ = ask("How do I disable two-factor authentication?")
        assert headers["x-smarterrouter-cache"] == "MISS", "cosine is high, the guard says no"
    finally:
        for p in (router, chat, embed):
            p.stop()
