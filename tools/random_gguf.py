"""Random-weight GGUF files with the shapes of real models, for measuring costs.

    python tools/random_gguf.py --shape qwen2.5-7b --type q4_k_m [--out DIR] [--seed N]

prints the path of the file. Imported, random_gguf(shape, type) returns the
path of a file cached under specbound_cpp.models.cache_dir()/random/, written
the first time only. The profile (`python -m specbound_cpp.profile PATH`) then
reports plain speed and batch price at sizes whose weights the registry does
not ship: the text such a model writes means nothing, but every tensor has the
real model's shape and, after llama.cpp's own quantizer, the type that
quantizer gives the real model, so what a token costs is real.

Weights are drawn as a trained model's are scaled (normal, std 0.02; norms
1.0), written as F16 (F32 for norms and biases) to a temporary GGUF one tensor
at a time, then quantized with llama-cpp-python's llama_model_quantize; the
temporary file is deleted. Seeded: the same shape, type and seed give the same
file.

The tokenizer of every shape is the registry's Qwen2.5-Coder-0.5B one (151936
tokens): padded with unused "[PAD<id>]" tokens where the shape's vocabulary is
larger (Qwen2.5-7B: 152064), cut where it is smaller (Llama-3.1-8B: 128256;
the first normal tokens, then Qwen's control tokens, merges that would leave
the kept tokens dropped), because llama.cpp wants as many tokens as LM-head
rows and the LM head must have the shape's size.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import logging
import os
import shutil
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STD = 0.02  # the initialisation scale of these models; trained weights stay near it
CHUNK = 1 << 24  # values drawn at once while filling a matrix: bounds the float32 scratch to 64 MB
TOKENIZER_MODEL = "qwen2.5-coder-0.5b"
FORMAT = 1  # in the cached file's name: bump it when the generated content changes


@dataclass(frozen=True)
class Shape:
    arch: str
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    tied: bool  # no output.weight: llama.cpp and our engine use token_embd as the LM head
    qkv_bias: bool
    rope_base: float
    rms_eps: float
    n_ctx_train: int
    llama3_rope: bool = False  # rope_freqs.weight: Llama 3.1's long-context frequency factors

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


# From the models' config.json files. The tiny shapes are for the tests (seconds
# to write): tiny-qwen2 pads the tokenizer and is tied like Qwen2.5-3B,
# tiny-llama cuts it and has Llama 3.1's rope factors.
SHAPES = {
    "qwen2.5-3b": Shape("qwen2", 2048, 36, 16, 2, 11008, 151936, True, True, 1e6, 1e-6, 32768),
    "qwen2.5-7b": Shape("qwen2", 3584, 28, 28, 4, 18944, 152064, False, True, 1e6, 1e-6, 32768),
    "llama-3.1-8b": Shape("llama", 4096, 32, 32, 8, 14336, 128256, False, False, 5e5, 1e-5, 131072, True),
    "tiny-qwen2": Shape("qwen2", 256, 3, 4, 2, 512, 152000, True, True, 1e6, 1e-6, 4096),
    "tiny-llama": Shape("llama", 256, 3, 4, 2, 512, 32000, False, False, 5e5, 1e-5, 4096, True),
}

# llama_ftype values (llama.h): the quantizer picks each tensor's type from these
# presets as it would for the real model (Q4_K_M mixes in Q6_K, for instance).
FTYPES = {"q4_k_m": 15, "q4_0": 2}

# gguf TokenType values
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED = 1, 2, 3, 4, 5


# ---- tensors -------------------------------------------------------------------


def tensor_plan(s: Shape) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape [rows, cols], kind) of every tensor, by llama.cpp's names."""
    kv = s.n_head_kv * s.head_dim
    plan = [("token_embd.weight", (s.n_vocab, s.n_embd), "matrix"), ("output_norm.weight", (s.n_embd,), "norm")]
    if not s.tied:
        plan.append(("output.weight", (s.n_vocab, s.n_embd), "matrix"))
    if s.llama3_rope:
        plan.append(("rope_freqs.weight", (s.head_dim // 2,), "rope_freqs"))
    for il in range(s.n_layer):
        b = f"blk.{il}."
        plan += [(b + "attn_norm.weight", (s.n_embd,), "norm"),
                 (b + "attn_q.weight", (s.n_embd, s.n_embd), "matrix"),
                 (b + "attn_k.weight", (kv, s.n_embd), "matrix"),
                 (b + "attn_v.weight", (kv, s.n_embd), "matrix"),
                 (b + "attn_output.weight", (s.n_embd, s.n_embd), "matrix"),
                 (b + "ffn_norm.weight", (s.n_embd,), "norm"),
                 (b + "ffn_gate.weight", (s.n_ff, s.n_embd), "matrix"),
                 (b + "ffn_up.weight", (s.n_ff, s.n_embd), "matrix"),
                 (b + "ffn_down.weight", (s.n_embd, s.n_ff), "matrix")]  # fmt: skip
        if s.qkv_bias:
            plan += [(b + "attn_q.bias", (s.n_embd,), "bias"), (b + "attn_k.bias", (kv,), "bias"),
                     (b + "attn_v.bias", (kv,), "bias")]  # fmt: skip
    return plan


def llama3_rope_factors(s: Shape, factor=8.0, low=1.0, high=4.0, n_ctx_orig=8192) -> np.ndarray:
    """Llama 3.1's divisor of each rope frequency (its rope_scaling in config.json):
    1 for wavelengths shorter than n_ctx_orig / high, `factor` for those longer
    than n_ctx_orig / low, blended in between. Real Llama 3.1 GGUFs carry them
    as rope_freqs.weight, and rope with factors is what their attention costs."""
    freqs = s.rope_base ** (-np.arange(0, s.head_dim, 2, dtype=np.float64) / s.head_dim)
    smooth = np.clip((n_ctx_orig * freqs / (2 * np.pi) - low) / (high - low), 0.0, 1.0)
    return (1.0 / ((1.0 - smooth) / factor + smooth)).astype(np.float32)


def tensor_values(s: Shape, name: str, shape: tuple[int, ...], kind: str, seed: int) -> np.ndarray:
    """One tensor's values. Each tensor has its own generator, seeded by the seed
    and its name, so that its values do not depend on the order of writing."""
    if kind == "norm":
        return np.ones(shape, np.float32)
    if kind == "rope_freqs":
        return llama3_rope_factors(s)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if kind == "bias":
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(STD)
    # a matrix: filled by blocks of rows, so that only the F16 result is ever
    # whole in memory (the largest, a 152064 x 3584 LM head, is 1.1 GB)
    out = np.empty(shape, np.float16)
    rows = max(1, CHUNK // shape[1])
    for r in range(0, shape[0], rows):
        block = rng.standard_normal((min(rows, shape[0] - r), shape[1]), dtype=np.float32)
        block *= np.float32(STD)
        out[r:r + len(block)] = block
    return out


def _nbytes(shape: tuple[int, ...], kind: str) -> int:
    return int(np.prod(shape)) * (2 if kind == "matrix" else 4)


# ---- tokenizer -----------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _tokenizer_fields(src: str) -> tuple:
    """gguf's reader takes seconds over 150k tokens and merges: read once per process."""
    import gguf

    out = []
    for name, field in gguf.GGUFReader(src).fields.items():
        if name.startswith("tokenizer."):
            vtype = field.types[0]
            sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
            out.append((name, field.contents(), vtype, sub))
    return tuple(out)


def read_tokenizer(src: str) -> dict[str, list]:
    """Every tokenizer.* field of the GGUF at src: name -> [value, type, array
    element type], the arrays copied (the callers edit them)."""
    return {name: [list(v) if isinstance(v, list) else v, t, sub] for name, v, t, sub in _tokenizer_fields(src)}


PER_TOKEN = ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.scores")


def pad_vocab(fields: dict[str, list], n_vocab: int) -> None:
    """Append unused tokens up to n_vocab, named as llama.cpp's converter names its own padding."""
    tokens = fields["tokenizer.ggml.tokens"][0]
    extra = [f"[PAD{i}]" for i in range(len(tokens), n_vocab)]
    if set(extra) & set(tokens):  # libllama asserts that token strings are unique
        raise ValueError("the tokenizer already has a token named like a padding token")
    tokens += extra
    if "tokenizer.ggml.token_type" in fields:
        fields["tokenizer.ggml.token_type"][0] += [UNUSED] * len(extra)
    if "tokenizer.ggml.scores" in fields:
        fields["tokenizer.ggml.scores"][0] += [0.0] * len(extra)


def cut_vocab(fields: dict[str, list], n_vocab: int) -> None:
    """Keep the first normal tokens and every control token (end of text, chat
    markers: llama.cpp finds the end-of-generation tokens among them), n_vocab
    in all, the control tokens last; renumber the special token ids and drop
    the merges whose parts or result are gone."""
    tokens = fields["tokenizer.ggml.tokens"][0]
    types = fields.get("tokenizer.ggml.token_type", [[NORMAL] * len(tokens)])[0]
    special = [i for i, t in enumerate(types) if t in (UNKNOWN, CONTROL, USER_DEFINED)]
    normal = [i for i, t in enumerate(types) if t not in (UNKNOWN, CONTROL, USER_DEFINED, UNUSED)]
    if n_vocab - len(special) < 256:  # the byte tokens at least
        raise ValueError(f"a vocabulary of {n_vocab} tokens is too small for this tokenizer")
    keep = normal[: n_vocab - len(special)] + special
    new_id = {old: new for new, old in enumerate(keep)}
    for name in PER_TOKEN:
        if name in fields:
            fields[name][0] = [fields[name][0][i] for i in keep]
    kept = set(fields["tokenizer.ggml.tokens"][0])
    if "tokenizer.ggml.merges" in fields:
        fields["tokenizer.ggml.merges"][0] = [m for m in fields["tokenizer.ggml.merges"][0] if _merge_kept(m, kept)]
    for name in [n for n in fields if n.endswith("_token_id")]:
        old = fields[name][0]
        if old in new_id:
            fields[name][0] = new_id[old]
        else:
            del fields[name]


def _merge_kept(merge: str, kept: set[str]) -> bool:
    """Whether both parts of "left right" and their concatenation are kept tokens
    (split at the first space after the first character, as libllama splits)."""
    i = merge.find(" ", 1)
    left, right = merge[:i], merge[i + 1:]
    return i > 0 and left in kept and right in kept and left + right in kept


def tokenizer_for(s: Shape, src: str) -> dict[str, list]:
    fields = read_tokenizer(src)
    n = len(fields["tokenizer.ggml.tokens"][0])
    if s.n_vocab > n:
        pad_vocab(fields, s.n_vocab)
    elif s.n_vocab < n:
        cut_vocab(fields, s.n_vocab)
    assert len(fields["tokenizer.ggml.tokens"][0]) == s.n_vocab
    return fields


# ---- writing and quantizing ----------------------------------------------------


def add_hparams(w, s: Shape, shape_name: str, seed: int) -> None:
    w.add_name(f"random {shape_name}")
    w.add_description(f"random weights (seed {seed}) with the shape of {shape_name}: "
                      "the text means nothing, the costs are real")
    w.add_file_type(1)  # mostly F16, until the quantizer rewrites it
    w.add_context_length(s.n_ctx_train)
    w.add_embedding_length(s.n_embd)
    w.add_block_count(s.n_layer)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_rope_dimension_count(s.head_dim)
    w.add_rope_freq_base(s.rope_base)
    w.add_layer_norm_rms_eps(s.rms_eps)
    w.add_vocab_size(s.n_vocab)


def write_f16(s: Shape, shape_name: str, path: Path, seed: int, tokenizer_src: str) -> None:
    """The unquantized GGUF, one tensor in memory at a time: the tensor table is
    written from the plan's sizes first, then each tensor's data as it is drawn."""
    import gguf

    w = gguf.GGUFWriter(str(path), s.arch)
    add_hparams(w, s, shape_name, seed)
    for key, (value, vtype, sub) in tokenizer_for(s, tokenizer_src).items():
        w.add_key_value(key, value, vtype, sub_type=sub)
    plan = tensor_plan(s)
    for name, shape, kind in plan:
        w.add_tensor_info(name, shape, np.dtype(np.float16 if kind == "matrix" else np.float32), _nbytes(shape, kind))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, kind in plan:
        w.write_tensor_data(tensor_values(s, name, shape, kind, seed))
    w.close()


def quantize(src: Path, dst: Path, qtype: str, threads: int = 0, verbose: bool = False) -> None:
    """llama.cpp's quantizer with its default parameters, to the llama_ftype of qtype.
    The input is F16 / F32, so nothing is requantized (allow_requantize stays off).
    Unless verbose, its line per tensor is held back (errors still show)."""
    import llama_cpp
    from llama_cpp._logger import logger  # llama-cpp-python's filter on libllama's log

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[qtype]
    params.nthread = threads  # <= 0: every core
    level = logger.level
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR)
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    finally:
        logger.setLevel(level)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed ({rc}) on {src}")


def file_name(shape: str, qtype: str, seed: int) -> str:
    return f"{shape}-{qtype}-seed{seed}-v{FORMAT}.gguf"


def f16_bytes(s: Shape) -> int:
    return sum(_nbytes(shape, kind) for _, shape, kind in tensor_plan(s))


def random_gguf(shape: str, qtype: str = "q4_k_m", seed: int = 0, out_dir: str | os.PathLike | None = None,
                threads: int = 0, verbose: bool = False) -> Path:
    """Path of the random GGUF of this shape, quantization type and seed, in
    out_dir (default: cache_dir()/random). Written only when it is not there."""
    from specbound_cpp.models import cache_dir, model_path

    if shape not in SHAPES or qtype not in FTYPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}; type one of {', '.join(FTYPES)}")
    s = SHAPES[shape]
    out_dir = Path(out_dir) if out_dir is not None else cache_dir() / "random"
    out = out_dir / file_name(shape, qtype, seed)
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    need = f16_bytes(s) * 13 // 10  # the F16 file, and the quantized one beside it
    if shutil.disk_usage(out_dir).free < need:
        raise OSError(f"{out_dir}: {need / 2**30:.1f} GiB of free disk needed to write {out.name}")
    # per-process names: two processes asking for the same file do not collide
    tmp = out.with_name(f"{out.name}.{os.getpid()}.f16.tmp")
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    try:
        t0 = time.perf_counter()
        write_f16(s, shape, tmp, seed, model_path(TOKENIZER_MODEL, progress=verbose))
        t1 = time.perf_counter()
        quantize(tmp, partial, qtype, threads, verbose)
        os.replace(partial, out)  # atomic: a cached file is always a whole one
        if verbose:
            print(f"F16 written in {t1 - t0:.1f} s, quantized in {time.perf_counter() - t1:.1f} s", file=sys.stderr)
    finally:
        tmp.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/random_gguf.py", description=__doc__.splitlines()[0])
    ap.add_argument("--shape", required=True, choices=list(SHAPES))
    ap.add_argument("--type", default="q4_k_m", choices=list(FTYPES))
    ap.add_argument("--out", help="directory to write into (default: the specbound_cpp cache's random/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="quantizer threads (default: every core)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = random_gguf(args.shape, args.type, args.seed, args.out, args.threads, verbose=True)
    print(f"{path} ({path.stat().st_size / 2**30:.2f} GiB, {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
