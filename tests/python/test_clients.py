"""The official openai and ollama Python packages drive the router (against the SIMULATED mock
Ollama), streaming and not; each test also checks what the upstream received."""

import ollama
import openai


def openai_client(router):
    return openai.OpenAI(base_url=f"{router}/v1", api_key="unused", max_retries=0, timeout=30)


def test_openai_chat_non_streaming(router, mock):
    reply = openai_client(router).chat.completions.create(
        model="smarterrouter/main", messages=[{"role": "user", "content": "hello"}], temperature=0.1
    )
    assert reply.choices[0].message.content.startswith("This is a simulated")
    assert reply.model == "llama3.2:1b"
    assert reply.usage.completion_tokens == 6
    last = mock.stats()["last_request"]
    assert last["path"] == "/v1/chat/completions"
    assert last["json"]["model"] == "llama3.2:1b"
    assert last["json"]["temperature"] == 0.1
    assert int(last["headers"]["content-length"]) == last["body_len"]


def test_openai_chat_streaming_with_usage(router, mock):
    stream = openai_client(router).chat.completions.create(
        model="qwen2.5:7b",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert len(pieces) == 6
    assert "".join(pieces).startswith("This is a simulated")
    assert usage is not None and usage.completion_tokens == 6
    assert mock.stats()["streams"]["completed"] == 1


def test_openai_raw_response_headers_completions_models_embeddings(router, mock):
    client = openai_client(router)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-smarterrouter-model"] == "llama3.2:1b"
    assert raw.headers["x-request-id"]
    completion = client.completions.create(model="auto", prompt="Once upon")
    assert completion.choices[0].text.startswith("This")
    ids = [m.id for m in client.models.list()]
    assert ids[:2] == ["smarterrouter/main", "auto"] and "qwen2.5:7b" in ids
    embeddings = client.embeddings.create(model="all-minilm", input=["a", "b"])
    assert len(embeddings.data) == 2 and len(embeddings.data[0].embedding) == 8
    assert mock.stats()["counts"]["/v1/embeddings"] == 1


def test_openai_errors_are_typed(router):
    client = openai_client(router)
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("expected NotFoundError")
    except openai.NotFoundError as e:
        assert e.body["code"] == "model_not_found"
        assert "llama3.2:1b" in e.body["message"]
    try:
        client.chat.completions.create(model="auto", messages=[])
        raise AssertionError("expected BadRequestError")
    except openai.BadRequestError as e:
        assert e.body["code"] == "empty_messages"


def test_ollama_chat_generate_streaming_and_not(router, mock):
    client = ollama.Client(host=router, timeout=30)
    reply = client.chat(model="smarterrouter/main", messages=[{"role": "user", "content": "hi"}])
    assert reply.message.content.startswith("This is a simulated")
    assert reply.model == "llama3.2:1b"
    parts = list(client.chat(model="qwen2.5:7b", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert len(parts) == 7 and parts[-1].done and parts[-1].eval_count == 6
    generated = client.generate(model="llama3.2:1b", prompt="Once")
    assert generated.response.startswith("This")
    streamed = "".join(p.response for p in client.generate(model="auto", prompt="Once", stream=True))
    assert streamed.startswith("This is a simulated")
    counts = mock.stats()["counts"]
    assert counts["/api/chat"] == 2 and counts["/api/generate"] == 2


def test_ollama_listing_show_ps_embed(router, mock):
    client = ollama.Client(host=router, timeout=30)
    listed = [m.model for m in client.list().models]
    # The router's virtual models come first (see test_apps.py), then the node's models.
    assert listed[:2] == ["smarterrouter/main", "auto"]
    assert sorted(listed[2:]) == ["all-minilm:latest", "llama3.2:1b", "qwen2.5:7b"]
    shown = client.show("qwen2.5:7b")
    assert "completion" in shown.capabilities
    running = client.ps()
    assert running.models[0].size_vram > 0
    embedded = client.embed(model="all-minilm", input=["one", "two"])
    assert len(embedded.embeddings) == 2
    assert mock.stats()["last_request"]["json"]["model"] == "all-minilm:latest"


def test_ollama_errors(router):
    client = ollama.Client(host=router, timeout=30)
    try:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("expected ResponseError")
    except ollama.ResponseError as e:
        assert e.status_code == 404
        assert "no-such-model" in e.error
