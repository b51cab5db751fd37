"""Summary rows: per (model, system), or also per workload, the median and
quartiles of the per-prompt speed ratios and the round counters' totals."""

from __future__ import annotations

import statistics
from typing import Dict, List, Optional


def _quartiles(xs: List[float]) -> tuple:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, med, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, med, q3


def _ratio(num: float, den: float) -> Optional[float]:
    return num / den if den else None


def summarize(records: List[dict], infos: Dict[str, dict], keys=("model", "system")) -> List[dict]:
    """One row per group of records (model x system, or also x workload)."""
    rows = []
    groups: Dict[tuple, List[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    for group, rs in groups.items():
        model, system = rs[0]["model"], rs[0]["system"]
        dec = [r["ratio_decode"] for r in rs if r["ratio_decode"] is not None]
        e2e = [r["ratio_e2e"] for r in rs]
        row = {**dict(zip(keys, group)), "prompts": len(rs)}
        if dec:
            row["decode_ratio_q1"], row["decode_ratio_median"], row["decode_ratio_q3"] = _quartiles(dec)
        row["e2e_ratio_q1"], row["e2e_ratio_median"], row["e2e_ratio_q3"] = _quartiles(e2e)
        row["decode_tps_median"] = statistics.median([r["decode_tps"] for r in rs if r["decode_tps"]] or [0.0])
        row["e2e_tps_median"] = statistics.median([r["e2e_tps"] for r in rs])
        if any("draft_tokens" in r for r in rs):
            row["acceptance"] = _ratio(sum(r["accepted_tokens"] for r in rs), sum(r["draft_tokens"] for r in rs))
        if all("ngram_drafts" in r for r in rs):  # per draft source: n-gram lookup, early exit
            ngram = sum(r["ngram_drafts"] for r in rs)
            row["acceptance_ngram"] = _ratio(sum(r["ngram_accepted"] for r in rs), ngram)
            row["acceptance_exit"] = _ratio(sum(r["exit_accepted"] for r in rs), sum(r["draft_tokens"] for r in rs) - ngram)
            row["rounds_ngram"] = sum(r["ngram_rounds"] for r in rs)
            row["rounds_exit"] = sum(r["exit_rounds"] for r in rs)
        row["tokens_per_round"] = _ratio(sum(r["emitted"] for r in rs), sum(r["rounds"] for r in rs))
        row["layer_evals_per_token"] = _ratio(sum(r["layer_evals"] for r in rs), sum(r["emitted"] for r in rs))
        row["peak_rss_mib"] = infos[model][system].get("peak_rss_mib", float("nan"))  # nan: the system failed
        row["same_as_llama_cpp"] = sum(r["same_as_llama_cpp"] for r in rs)
        if all("same_as_ours_plain" in r for r in rs):
            row["same_as_ours_plain"] = sum(r["same_as_ours_plain"] for r in rs)
        rows.append(row)
    return rows

