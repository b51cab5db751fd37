"""Command line: `specbound "prompt"` (or `python -m specbound_cpp.cli`).

    specbound "Write a haiku about the sea."  # one user message through the model's chat template
    specbound "def fib(n):" --raw -n 64      # plain completion of the text, streamed to stdout
    echo "Why is the sky blue?" | specbound --stats
    specbound --chat                         # chat; one user turn per stdin line
    specbound "Once upon a time" --compare   # SpecBound vs plain decoding
"""

from __future__ import annotations

import argparse
import os
import random
import sys

from . import models

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="specbound", description="Generate text with exact self-speculative decoding (SpecBound).")
    p.add_argument("prompt", nargs="?", help="prompt (default: read stdin)")
    p.add_argument("--model", "-m", default=models.DEFAULT_MODEL, help="registry name or GGUF path (%(default)s)")
    p.add_argument("-n", "--max-tokens", type=int, default=256, help="tokens to generate (default: %(default)s)")
    p.add_argument("--temp", type=float, default=0.0, help="temperature, 0 = greedy (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed")
    p.add_argument("--no-specbound", action="store_true", help="plain decoding")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    p.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload, -1 = all (default: %(default)s)")
    p.add_argument("--ctx", type=int, default=2048, help="context size (default: %(default)s)")
    p.add_argument("--chat", action="store_true", help="interactive chat: one user turn per stdin line, until EOF")
    p.add_argument("--raw", action="store_true",
                   help="complete the prompt as plain text (default for a model with a chat template: the prompt "
                        "goes through the template as one user message, as llama-cli and ollama run do)")
    p.add_argument("--chat-template", action="store_true",
                   help="send the prompt as one user message even if the GGUF has no chat template "
                        "(llama-cpp-python's fallback format)")
    p.add_argument("--stats", action="store_true", help="print speed and speculation counters to stderr")
    p.add_argument("--compare", action="store_true", help="also decode without SpecBound; compare speed and text")
    p.add_argument("--list-models", action="store_true", help="list the model registry and exit")
    return p


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _run(llm, args, prompt=None, messages=None, seed=None) -> str:
    """Stream one generation to stdout (unless quiet) and return its text."""
    kw = dict(max_tokens=args.max_tokens, temperature=args.temp, seed=seed, stream=True)
    if messages is not None:
        deltas = (c["choices"][0]["delta"].get("content", "") for c in llm.create_chat_completion(messages, **kw))
    else:
        deltas = (c["choices"][0]["text"] for c in llm(prompt, **kw))
    parts = []
    for d in deltas:
        parts.append(d)
        _out(d)
    return "".join(parts)


def _print_stats(stats: dict, label: str = "") -> None:
    """One line on stderr: speed, then what speculation did."""
    parts = [f"{label}tokens: {stats.get('completion_tokens')}",
             f"prompt: {stats.get('prompt_tokens')} tokens in {stats.get('prompt_ms', 0):.0f} ms",
             f"rounds: {stats.get('rounds')}", f"tokens/s: {stats.get('tokens_per_second', 0):.1f}"]  # fmt: skip
    if stats.get("specbound"):
        drafted, accepted = stats.get("draft_tokens", 0), stats.get("accepted_tokens", 0)
        rate = f" ({accepted / drafted:.0%})" if drafted else ""
        parts += ["specbound: on", f"drafted: {drafted}", f"accepted: {accepted}{rate}",
                  f"tokens/round: {stats.get('emitted_tokens', 0) / max(stats.get('rounds', 1), 1):.2f}",
                  f"layer evals/token: {stats.get('layer_evals', 0) / max(stats.get('completion_tokens') or 1, 1):.1f}"]
    else:
        parts.append(f"specbound: off ({stats.get('specbound_source', 'plain decoding')})")
    print("  ".join(parts), file=sys.stderr)


def _prompt_from(args) -> str | None:
    """The prompt (argument or stdin; None with --chat), after the checks of
    options that exclude each other (argparse's usage error, exit 2)."""
    if args.chat and (args.prompt is not None or args.compare or args.chat_template or args.raw):
        _parser().error("--chat reads its turns from stdin; it takes no prompt, --compare, --raw or --chat-template")
    if args.raw and args.chat_template:
        _parser().error("--raw and --chat-template exclude each other")
    if args.compare and args.no_specbound:
        _parser().error("--compare already runs without SpecBound; drop --no-specbound")
    prompt = args.prompt
    if not args.chat and prompt is None:
        prompt = sys.stdin.read()
        if not prompt.strip():
            _parser().error("no prompt given (as an argument or on stdin)")
    return prompt


def _chat(llm, args) -> int:
    """--chat: one turn per stdin line, the conversation kept, until stdin ends."""
    history = []
    while True:
        if sys.stdin.isatty():
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        history.append({"role": "user", "content": line.rstrip("\n")})
        reply = _run(llm, args, messages=history, seed=args.seed)
        _out("\n")
        history.append({"role": "assistant", "content": reply})
        if args.stats:
            _print_stats(llm.last_stats)


def _compare_with_plain(llm, args, prompt: str, messages, seed: int, text: str, first: dict) -> None:
    """--compare: the same request without SpecBound, and one line on stderr
    with both speeds and whether the texts are identical."""
    llm.specbound = False
    llm.reset()
    kw = dict(max_tokens=args.max_tokens, temperature=args.temp, seed=seed)
    if messages is not None:
        plain = llm.create_chat_completion(messages, **kw)["choices"][0]["message"]["content"]
    else:
        plain = llm(prompt, **kw)["choices"][0]["text"]
    second = dict(llm.last_stats)
    if args.stats:
        _print_stats(second, "plain: ")
    a, b = first.get("tokens_per_second", 0.0), second.get("tokens_per_second", 0.0)
    print(f"specbound: {a:.1f} tokens/s  plain: {b:.1f} tokens/s  speedup: {a / b if b else float('nan'):.2f}x  "
          f"identical text: {'yes' if plain == text else 'NO'}", file=sys.stderr)  # fmt: skip


def _main(argv) -> int:
    args = _parser().parse_args(argv)
    if args.list_models:
        for spec in models.list_models():
            cached = "cached" if models.is_cached(spec.name) else "not cached"
            print(f"{spec.name:<22} {spec.size_mb:7.0f} MB  {cached:<10}  {spec.description}")
        return 0
    prompt = _prompt_from(args)

    from .llama import Llama

    path = models.model_path(args.model, progress=True) if args.model in models.MODELS else args.model
    llm = Llama(
        path, n_ctx=args.ctx, n_threads=args.threads,
        n_threads_batch=args.threads, n_gpu_layers=args.n_gpu_layers, specbound=False if args.no_specbound else None,
        verbose=False, **({"seed": args.seed} if args.seed is not None else {}),
    )  # fmt: skip

    if args.chat:
        return _chat(llm, args)

    as_message = args.chat_template or (not args.raw and bool(llm.metadata.get("tokenizer.chat_template")))
    messages = [{"role": "user", "content": prompt}] if as_message else None
    seed = args.seed if args.seed is not None or not args.compare else random.getrandbits(32)
    if args.compare:
        llm.reset()  # both runs evaluate the whole prompt
    text = _run(llm, args, prompt, messages, seed)
    _out("\n")
    first = dict(llm.last_stats)
    if args.stats:
        _print_stats(first)
    if args.compare:
        _compare_with_plain(llm, args, prompt, messages, seed, text, first)
    return 0


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `| head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, ValueError, RuntimeError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
