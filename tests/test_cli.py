"""`python -m specbound_cpp.cli`, run as users run it: a subprocess, real model
(SmolLM2 135M), greedy. The text it streams must be llama-cpp-python's greedy
text; errors are one line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

N = 24


def cli(*args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specbound_cpp.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def ref(smollm2_path, make_reference):
    return make_reference(smollm2_path, n_ctx=2048)


def common(path: str) -> list[str]:
    return ["--model", path, "-n", str(N), "--threads", "2", "--temp", "0"]


def test_help():
    r = cli("--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--model", "--max-tokens", "--temp", "--seed", "--no-specbound", "--threads", "--n-gpu-layers",
                 "--chat", "--stats", "--compare", "--list-models", "--raw"):  # fmt: skip
        assert flag in r.stdout, flag


def test_generation_streams_llama_cpp_text(smollm2_path, ref):
    prompt = "def fibonacci(n):"
    r = cli(prompt, *common(smollm2_path), "--stats", "--raw")
    assert r.returncode == 0, r.stderr
    ref.reset()
    want = ref(prompt, max_tokens=N, temperature=0)["choices"][0]["text"]
    assert r.stdout == want + "\n"
    # --stats: one line, tokens/s and the speculation counters (or why it is off)
    stats = r.stderr.strip().splitlines()
    assert len(stats) == 1 and re.search(r"tokens/s: [\d.]+\s+specbound: (on\s+drafted: \d+\s+accepted: \d+|off)", stats[0])
    # the prompt may come on stdin too
    r2 = cli(*common(smollm2_path), "--raw", stdin=prompt)
    assert r2.returncode == 0 and r2.stdout == r.stdout


def test_prompt_goes_through_the_chat_template(smollm2_path, ref):
    """A model with a chat template gets the prompt as one user message (as
    llama-cli and ollama run do); --raw completes the text as it is."""
    prompt = "Write a haiku about the sea."
    r = cli(prompt, *common(smollm2_path))
    assert r.returncode == 0, r.stderr
    ref.reset()
    messages = [{"role": "user", "content": prompt}]
    want = ref.create_chat_completion(messages, max_tokens=N, temperature=0)["choices"][0]["message"]["content"]
    assert r.stdout == want + "\n"
    raw = cli(prompt, *common(smollm2_path), "--raw")
    ref.reset()
    assert raw.stdout == ref(prompt, max_tokens=N, temperature=0)["choices"][0]["text"] + "\n"
    assert raw.stdout != r.stdout


def test_default_model_writes_a_haiku():
    """The README's first command: the default model answers the instruction
    (three lines of verse), not a continuation of the sentence."""
    r = cli("Write a haiku about the sea.", "-n", "48", "--threads", "2")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 3, r.stdout
    assert all(len(line.split()) <= 8 for line in lines), r.stdout


def test_chat_through_stdin(smollm2_path, ref):
    turns = ["What is the capital of France?", "And of Italy?"]
    r = cli("--chat", *common(smollm2_path), stdin="\n".join(turns) + "\n")
    assert r.returncode == 0, r.stderr
    # like the CLI, the reference keeps the shared prefix of the conversation
    # in its cache from one turn to the next (KV computed while decoding)
    history, want = [], ""
    ref.reset()
    for t in turns:
        history.append({"role": "user", "content": t})
        reply = ref.create_chat_completion(history, max_tokens=N, temperature=0)["choices"][0]["message"]["content"]
        history.append({"role": "assistant", "content": reply})
        want += reply + "\n"
    assert r.stdout == want


@pytest.mark.parametrize("bad", [["--model", "/no/such/model.gguf", "hello"], ["--model", "no-such-registry-name", "hi"],
                                 ["hello", "-n", "abc"], ["hello", "--temp", "-1"]])  # fmt: skip
def test_errors_are_one_line(bad):
    r = cli(*bad)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == ""


def test_compare(smollm2_path):
    r = cli("Once upon a time", *common(smollm2_path), "--compare")
    assert r.returncode == 0, r.stderr
    m = re.search(r"specbound: ([\d.]+) tokens/s\s+plain: ([\d.]+) tokens/s\s+speedup: ([\d.]+)x\s+identical text: (\w+)",
                  r.stderr)  # fmt: skip
    assert m, r.stderr
    assert float(m.group(1)) > 0 and float(m.group(2)) > 0
    assert m.group(4) == "yes"


def test_list_models():
    from specbound_cpp import models

    r = cli("--list-models")
    assert r.returncode == 0
    for name in models.MODELS:
        assert name in r.stdout


def test_ctrl_c_stops_cleanly(smollm2_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "specbound_cpp.cli", "1, 2, 3, 4, 5,", "--raw", "--model", smollm2_path, "-n", "1500",
         "--ctx", "2048", "--threads", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # SIGINT as a terminal delivers it: a shell's background job (`cmd &`)
        # starts with SIGINT ignored, which Python and this child would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.set_blocking(proc.stdout.fileno(), False)
    got = b""
    deadline = time.time() + 120
    while len(got) < 20 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        got += proc.stdout.read() or b""
    assert len(got) >= 20, "no output before the interrupt"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert b"Traceback" not in err, err
