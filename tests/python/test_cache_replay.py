"""Cached streams replay as streams the real openai and ollama packages parse (against the
SIMULATED mock Ollama, which numbers its answers, so a replay is told from a new answer)."""

import ollama
import openai
import pytest

from conftest import Mock, start_router


@pytest.fixture
def numbered(workdir):
    m = Mock(workdir, "--tokens", "5", "--token-interval-ms", "10", "--number-answers")
    process, url = start_router(workdir, [(m.url, "ollama")], default_model="llama3.2:1b")
    yield url, m
    process.stop()
    m.process.stop()


def test_openai_stream_replays_from_cache(numbered):
    router, mock = numbered
    client = openai.OpenAI(base_url=f"{router}/v1", api_key="unused", max_retries=0, timeout=30)
    seen = []
    for _ in range(2):
        with client.chat.completions.with_streaming_response.create(
            model="auto",
            messages=[{"role": "user", "content": "tell me about caches"}],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            cache = response.headers["x-smarterrouter-cache"]
            pieces, usage, models = [], None, set()
            for chunk in response.parse():
                models.add(chunk.model)
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.usage:
                    usage = chunk.usage
        seen.append((cache, "".join(pieces), usage.completion_tokens, models))
    (first_cache, first, first_usage, first_models), (second_cache, second, second_usage, _) = seen
    assert (first_cache, second_cache) == ("MISS", "HIT")
    assert "[answer 1]" in first and second == first
    assert first_usage == second_usage
    assert first_models == {"llama3.2:1b"}
    assert mock.stats()["counts"]["/v1/chat/completions"] == 1


def test_ollama_stream_and_json_replay_from_cache(numbered):
    router, mock = numbered
    client = ollama.Client(host=router, timeout=30)
    messages = [{"role": "user", "content": "tell me about caches"}]
    runs = [list(client.chat(model="llama3.2:1b", messages=messages, stream=True,
                             options={"temperature": 0})) for _ in range(2)]
    texts = ["".join(p.message.content for p in parts) for parts in runs]
    assert "[answer 1]" in texts[0] and texts[1] == texts[0]
    for parts in runs:
        assert parts[-1].done and parts[-1].model == "llama3.2:1b"
        assert all(not p.done for p in parts[:-1])
    # The same conversation without streaming is its own entry: one JSON object, never a stream.
    replies = [client.chat(model="llama3.2:1b", messages=messages, stream=False,
                           options={"temperature": 0}) for _ in range(2)]
    assert replies[0].done and replies[0].message.content == replies[1].message.content
    assert "[answer 2]" in replies[0].message.content
    assert mock.stats()["counts"]["/api/chat"] == 2
