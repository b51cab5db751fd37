"""specbound_cpp.server: llama-cpp-python's OpenAI-compatible server generating
with our Llama, in its own process, driven by a real HTTP client (urllib)
against 127.0.0.1. SmolLM2 135M, greedy: the served text must be the text of
llama-cpp-python's own greedy decoding, streamed or not."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

N = 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(smollm2_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "specbound_cpp.server", "--model", smollm2_path, "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "512", "--n_threads", "2", "--n_threads_batch", "2", "--verbose", "false"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(base + "/v1/models", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                pytest.fail(f"server did not come up:\n{proc.stdout.read()}")
            time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def post(base: str, route: str, body: dict):
    req = urllib.request.Request(base + route, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    return urllib.request.urlopen(req, timeout=300)


def events(resp) -> list[dict]:
    """The server-sent events of a streamed response, up to [DONE]."""
    out = []
    for raw in resp:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            return out
        out.append(json.loads(data))
    raise AssertionError("stream ended without [DONE]")


def server_defaults() -> dict:
    """The sampling defaults of llama_cpp.server's requests (repeat_penalty 1.1,
    unlike Llama's 1.0): the reference must use them too."""
    from llama_cpp.server.types import CreateCompletionRequest

    req = CreateCompletionRequest(prompt="")
    return dict(repeat_penalty=req.repeat_penalty, presence_penalty=req.presence_penalty,
                frequency_penalty=req.frequency_penalty)  # fmt: skip


@pytest.fixture(scope="module")
def ref(smollm2_path, make_reference):
    return make_reference(smollm2_path, n_ctx=512)


def test_completion(server, ref):
    prompt = "def fibonacci(n):"
    with post(server, "/v1/completions", dict(prompt=prompt, max_tokens=N, temperature=0)) as r:
        assert r.status == 200
        got = json.load(r)
    ref.reset()
    want = ref(prompt, max_tokens=N, temperature=0, **server_defaults())
    assert got["object"] == "text_completion"
    assert got["choices"][0]["text"] == want["choices"][0]["text"]
    assert got["choices"][0]["finish_reason"] == want["choices"][0]["finish_reason"]
    assert got["usage"] == want["usage"]


def test_streamed_completion(server, ref):
    prompt = "The three primary colors are"
    with post(server, "/v1/completions", dict(prompt=prompt, max_tokens=N, temperature=0, stream=True)) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        chunks = events(r)
    ref.reset()
    want = [c["choices"][0]["text"] for c in ref(prompt, max_tokens=N, temperature=0, stream=True, **server_defaults())]
    assert len(chunks) > 2 and all(c["object"] == "text_completion" for c in chunks)
    assert [c["choices"][0]["text"] for c in chunks] == want
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_chat_completion_and_stream(server, ref):
    messages = [{"role": "user", "content": "Name three fruits."}]
    with post(server, "/v1/chat/completions", dict(messages=messages, max_tokens=N, temperature=0)) as r:
        got = json.load(r)
    ref.reset()
    want = ref.create_chat_completion(messages, max_tokens=N, temperature=0, **server_defaults())
    assert got["object"] == "chat.completion"
    assert got["choices"][0]["message"] == want["choices"][0]["message"]
    # the same messages again: the server reuses the cached prompt, as
    # llama-cpp-python does on a second call, and the text follows its warm
    # call (the two differ on an AVX2-only CPU)
    want_warm = ref.create_chat_completion(messages, max_tokens=N, temperature=0, **server_defaults())
    with post(server, "/v1/chat/completions", dict(messages=messages, max_tokens=N, temperature=0, stream=True)) as r:
        chunks = events(r)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == want_warm["choices"][0]["message"]["content"]


def test_bad_request_is_an_http_error(server):
    with pytest.raises(urllib.error.HTTPError) as e:
        post(server, "/v1/completions", dict(prompt="Hi", max_tokens=4, top_p=5.0))
    assert e.value.code == 400
    # the server still answers
    with post(server, "/v1/completions", dict(prompt="Hi", max_tokens=2, temperature=0)) as r:
        assert r.status == 200


BAD_REQUESTS = [  # (route, raw body, the field the error must name or None)
    ("/v1/completions", b'{"prompt": "Hi", "max_tokens": 4', None),  # malformed JSON
    ("/v1/completions", b'{"prompt": "Hi", "max_tokens": -5}', "max_tokens"),
    ("/v1/completions", b'{"prompt": 42, "max_tokens": 4}', "prompt"),
    ("/v1/chat/completions", b'{"messages": "nope", "max_tokens": 4}', "messages"),
    ("/v1/completions", b'["not", "an", "object"]', None),
    ("/v1/completions", b'{"prompt": "Hi", "max_tokens": 4, "logit_bias": {"99999999": 1}}', None),  # ours refuses
]


def post_raw(base: str, route: str, body: bytes):
    """(status, parsed JSON body) of a POST, error statuses included."""
    req = urllib.request.Request(base + route, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_malformed_requests_get_400_while_good_ones_are_served(server, ref):
    """Bad requests (malformed JSON, wrong types, out-of-range values, refused
    options) get 400 with an OpenAI-shaped error naming the field, no stack
    trace or file path, while good requests sent at the same time get the
    reference text; the server stays up."""
    from concurrent.futures import ThreadPoolExecutor

    good = (b'{"prompt": "def add(a, b):", "max_tokens": 12, "temperature": 0}')
    jobs = [("/v1/completions", good, "good")] * 3 + [(r, b, f) for r, b, f in BAD_REQUESTS] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda j: post_raw(server, j[0], j[1]), jobs))
    ref.reset()
    want = ref("def add(a, b):", max_tokens=12, temperature=0, **server_defaults())["choices"][0]["text"]
    for (route, body, field), (status, answer) in zip(jobs, results):
        if field == "good":
            assert status == 200, answer
            assert answer["choices"][0]["text"] == want
            continue
        assert status == 400, (body, answer)
        err = answer["error"]
        assert err["type"] == "invalid_request_error"
        assert err["param"] == field
        if field is not None:
            assert err["message"].startswith(field + ":"), err
        assert "Traceback" not in err["message"] and 'File "' not in err["message"] and ".py" not in err["message"]
    with post(server, "/v1/completions", dict(prompt="Hi", max_tokens=2, temperature=0)) as r:
        assert r.status == 200


def test_json_mode_through_the_server(server, ref):
    """response_format JSON mode over HTTP: llama-cpp-python's greedy text."""
    messages = [{"role": "user", "content": "Describe a cat as JSON with its name and age."}]
    fmt = {"type": "json_object", "schema": {"type": "object", "properties": {"name": {"type": "string"},
                                                                             "age": {"type": "integer"}},
                                             "required": ["name", "age"]}}  # fmt: skip
    with post(server, "/v1/chat/completions", dict(messages=messages, max_tokens=60, temperature=0,
                                                   response_format=fmt)) as r:  # fmt: skip
        got = json.load(r)["choices"][0]["message"]["content"]
    ref.reset()
    want = ref.create_chat_completion(messages, max_tokens=60, temperature=0, response_format=fmt,
                                      **server_defaults())["choices"][0]["message"]["content"]  # fmt: skip
    assert got == want
    assert set(json.loads(got)) >= {"name", "age"}
