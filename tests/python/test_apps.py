"""Clients that pick a model from the Ollama model list (the `ollama` package, `llm` with the
`llm-ollama` plugin) and LiteLLM used as a client library can choose the router's virtual model,
and a chat with it is routed to a real model (against the SIMULATED mock Ollama)."""

import os
import subprocess
import sys
from pathlib import Path

import ollama
import pytest

# LiteLLM fetches its model price list from the internet at import unless told not to.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm  # noqa: E402

REAL_MODELS = {"llama3.2:1b", "qwen2.5:7b"}


def real_model_received(mock, path):
    last = mock.stats()["last_inference"]
    assert last["path"] == path
    assert last["json"]["model"] in REAL_MODELS, last["json"]["model"]
    return last["json"]["model"]


def test_ollama_lists_shows_and_chats_with_the_virtual_model(router, mock):
    client = ollama.Client(host=router, timeout=30)
    names = [m.model for m in client.list().models]
    assert names[:2] == ["smarterrouter/main", "auto"]
    assert REAL_MODELS <= set(names)

    shown = client.show("smarterrouter/main")
    assert "completion" in shown.capabilities
    assert shown.details.family == "smarterrouter"

    reply = client.chat(model="smarterrouter/main", messages=[{"role": "user", "content": "Hello there"}])
    assert reply.message.content.startswith("This is a simulated")
    # The node answered under the real model it was sent.
    assert reply.model in REAL_MODELS
    assert real_model_received(mock, "/api/chat") == reply.model

    pieces = [
        part.message.content
        for part in client.chat(
            model="smarterrouter/main", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    ]
    assert "".join(pieces).startswith("This is a simulated")


def test_litellm_reaches_the_virtual_model_through_both_apis(router, mock):
    reply = litellm.completion(
        model="ollama_chat/smarterrouter/main",
        api_base=router,
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert reply.choices[0].message.content.startswith("This is a simulated")
    real_model_received(mock, "/api/chat")

    reply = litellm.completion(
        model="openai/smarterrouter/main",
        api_base=f"{router}/v1",
        api_key="unused",
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert reply.choices[0].message.content.startswith("This is a simulated")
    assert reply.model in REAL_MODELS
    real_model_received(mock, "/v1/chat/completions")

    stream = litellm.completion(
        model="ollama_chat/smarterrouter/main",
        api_base=router,
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text.startswith("This is a simulated")


def test_llm_with_llm_ollama_lists_and_prompts_the_virtual_model(router, mock, workdir):
    llm = Path(sys.executable).parent / "llm"
    env = {**os.environ, "OLLAMA_HOST": router, "LLM_USER_PATH": str(workdir / "llm")}
    listed = subprocess.run([str(llm), "models"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "Ollama: ollama/smarterrouter/main" in listed.stdout, listed.stdout
    answer = subprocess.run(
        [str(llm), "-m", "ollama/smarterrouter/main", "Write a Python function that adds two numbers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("This is a simulated"), answer.stdout
    real_model_received(mock, "/api/chat")


@pytest.mark.parametrize("stream", [False, True])
def test_ollama_run_style_load_then_chat(router, mock, stream):
    """`ollama run smarterrouter/main` loads the model first (empty messages), then chats."""
    client = ollama.Client(host=router, timeout=30)
    loaded = client.chat(model="smarterrouter/main", messages=[])
    assert loaded.done_reason == "load"
    reply = client.chat(model="smarterrouter/main", messages=[{"role": "user", "content": "Hi"}], stream=stream)
    if stream:
        text = "".join(part.message.content for part in reply)
    else:
        text = reply.message.content
    assert text.startswith("This is a simulated")
