"""Command line: `specbound "prompt"` (or `python -m specbound_cpp.cli`).

    specbound "def fib(n):" -n 64            # raw completion, streamed to stdout
    echo "Why is the sky blue?" | specbound --chat-template --stats
    specbound --chat                         # chat; one user turn per stdin line
    specbound "Once upon a time" --compare   # SpecBound vs plain decoding
"""

from __future__ import annotations

import argparse
import os
import random
import sys

from . import models

_BASE_STATS = {"prompt_tokens", "prompt_tokens_reused", "completion_tokens", "prompt_ms", "decode_ms",
               "tokens_per_second", "rounds", "specbound", "finish_reason"}  # fmt: skip


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
    p.add_argument("--chat-template", action="store_true", help="send the prompt as one user message")
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
    line = (f"{label}tokens: {stats.get('completion_tokens')}  tokens/s: {stats.get('tokens_per_second', 0):.1f}  "
            f"rounds: {stats.get('rounds')}  "
            f"prompt: {stats.get('prompt_tokens')} tokens in {stats.get('prompt_ms', 0):.0f} ms")  # fmt: skip
    extra = [f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in stats.items() if k not in _BASE_STATS]
    print(line + ("  " + "  ".join(extra) if extra else ""), file=sys.stderr)


def _main(argv) -> int:
    args = _parser().parse_args(argv)
    if args.list_models:
        for spec in models.list_models():
            cached = "cached" if models.is_cached(spec.name) else "not cached"
            print(f"{spec.name:<22} {spec.size_mb:7.0f} MB  {cached:<10}  {spec.description}")
        return 0
    if args.chat and (args.prompt is not None or args.compare or args.chat_template):
        _parser().error("--chat reads its turns from stdin; it takes no prompt, --compare or --chat-template")
    if args.compare and args.no_specbound:
        _parser().error("--compare already runs without SpecBound; drop --no-specbound")
    prompt = args.prompt
    if not args.chat and prompt is None:
        prompt = sys.stdin.read()
        if not prompt.strip():
            _parser().error("no prompt given (as an argument or on stdin)")

    from .llama import Llama

    path = models.model_path(args.model, progress=True) if args.model in models.MODELS else args.model
    llm = Llama(
        path, n_ctx=args.ctx, n_threads=args.threads,
        n_threads_batch=args.threads, n_gpu_layers=args.n_gpu_layers, specbound=False if args.no_specbound else None,
        verbose=False, **({"seed": args.seed} if args.seed is not None else {}),
    )  # fmt: skip

    if args.chat:
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

    messages = [{"role": "user", "content": prompt}] if args.chat_template else None
    seed = args.seed if args.seed is not None or not args.compare else random.getrandbits(32)
    if args.compare:
        llm.reset()  # both runs evaluate the whole prompt
    text = _run(llm, args, prompt, messages, seed)
    _out("\n")
    first = dict(llm.last_stats)
    if args.stats:
        _print_stats(first)
    if args.compare:
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
