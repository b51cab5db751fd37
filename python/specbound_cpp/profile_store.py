"""Calibrated profiles on disk, and their exit translators on a session.

A profile is the JSON that `python -m specbound_cpp.calibrate MODEL` writes,
keyed by the model file's sha256 under the cache; its exit translators, if
any, are an .npz beside it. `specbound_cpp.Llama` reads both at load. This
module only stores and reads them: measuring costs is `costs`, fitting the
settings is `calibrate`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .models import cache_dir, model_sha256

PROFILE_VERSION = 6  # 2: prices of the repacked kernels and unfused attention; 3: reused decode graphs, own single-column kernels; 4: single columns as two streams; 5: 8-column repacked passes, 512-bit Q6_K (batches repriced); 6: Q8_0/Q5_0/Q4_0 batches as column pairs in 512-bit registers


def profile_path(sha256: str) -> Path:
    return cache_dir() / "profiles" / f"{sha256}.json"


def exit_maps_path(sha256: str) -> Path:
    return cache_dir() / "profiles" / f"{sha256}.exit_maps.npz"


def load_profile(model_file: str | os.PathLike) -> dict | None:
    try:
        prof = json.loads(profile_path(model_sha256(model_file)).read_text())
    except (OSError, ValueError):
        return None
    return prof if prof.get("version") == PROFILE_VERSION else None


def load_exit_maps(prof: dict) -> dict[int, tuple]:
    """The profile's exit translators {layer: (down, up, bias)} (none: {}).
    ValueError if the profile names a file that is missing or unreadable."""
    if not prof.get("exit_maps"):
        return {}
    path = exit_maps_path(prof["sha256"])
    try:
        with np.load(path) as z:
            return {int(l): (z[f"down_{l}"], z[f"up_{l}"], z[f"bias_{l}"]) for l in prof["exit_maps"]["layers"]}
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"profile's exit translators unreadable ({path}): {e}") from e


def save_profile(prof: dict) -> Path:
    """Writes the profile (and its exit translators, if any, beside it)."""
    path = profile_path(prof["sha256"])
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = prof.pop("exit_map_arrays", None)
    if arrays:
        maps_path = exit_maps_path(prof["sha256"])
        tmp = maps_path.with_suffix(".tmp.npz")
        np.savez(tmp, **{f"{name}_{l}": a for l, m in arrays.items() for name, a in zip(("down", "up", "bias"), m)})
        os.replace(tmp, maps_path)
        prof["exit_maps"] = {"layers": sorted(arrays), "rank": int(next(iter(arrays.values()))[0].shape[0])}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(prof, indent=1))
    os.replace(tmp, path)
    return path


def set_exit_maps(s, maps: dict | None) -> None:
    """Exactly these exit translators {layer: (down, up, bias)} on session s (None: none)."""
    s.clear_exit_maps()
    for l, (down, up, bias) in (maps or {}).items():
        s.set_exit_map(l, down, up, bias)
