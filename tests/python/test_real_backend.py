"""End to end against a real llama.cpp llama-server serving SmolLM2-135M, as `openai`-kind nodes:
one for chat, one started with --embeddings for embeddings. LLAMA_SERVER and SMOLLM2_GGUF come from
scripts/setup-real-backend.sh (scripts/test sets them)."""

import os

import openai
import pytest

from conftest import Process, free_port, get_json, start_router, wait_until

LLAMA_SERVER = os.environ.get("LLAMA_SERVER")
SMOLLM2_GGUF = os.environ.get("SMOLLM2_GGUF")

if not (LLAMA_SERVER and SMOLLM2_GGUF):
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the real-backend test: run scripts/setup-real-backend.sh first")
    pytest.skip("LLAMA_SERVER/SMOLLM2_GGUF not set (scripts/test sets them)", allow_module_level=True)


def start_llama(workdir, name, alias, *extra):
    port = free_port()
    args = [LLAMA_SERVER, "-m", SMOLLM2_GGUF, "--alias", alias, "--host", "127.0.0.1", "--port", str(port),
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
