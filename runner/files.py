"""Atomic files and the one JSON convention of the project.

Every run file is written to a temporary name in its directory, fsynced and renamed over the
old one, so a kill or a full disk leaves either the old or the new version, never a torn file.

JSON has no infinities or NaN, so the project writes strict JSON with one convention:
+inf and -inf become the strings "inf" and "-inf" (a robustness of +inf stays "satisfied by
any margin", distinct from -inf and from every number), and NaN becomes null (no value).
`json_float` reads a value back to a float; it accepts both forms earlier versions wrote
(run files: null for any non-finite value; STL verdicts: "inf" / "-inf").
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

INFINITY_TEXT = {math.inf: "inf", -math.inf: "-inf"}
# the spellings json_float reads as infinities (Python's and JavaScript's)
_INFINITIES = {"inf": math.inf, "+inf": math.inf, "infinity": math.inf, "+infinity": math.inf,
               "-inf": -math.inf, "-infinity": -math.inf}


def _atomic_replace(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename (never a torn file)."""
    return _atomic_replace(Path(path), lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, data) -> Path:
    """Strict JSON in the project's convention (see the module doc), written atomically."""
    text = json.dumps(json_safe(data), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_torch_save(obj, path: str | Path) -> Path:
    import torch

    return _atomic_replace(Path(path), lambda f: torch.save(obj, f))


def json_safe(value):
    """`value` with paths, tensors and arrays made plain, infinities made "inf" / "-inf" and
    NaN made None (the project's JSON convention)."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float):
        if math.isinf(value):
            return INFINITY_TEXT[value]
        return None if math.isnan(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    return str(value)


def json_float(value) -> float | None:
    """A number read from JSON written in the project's convention (or an older one): numbers
    as floats, "inf" / "-inf" as infinities, None as None. Anything else is a ValueError."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _INFINITIES:
        return _INFINITIES[value.strip().lower()]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, 'inf', '-inf' or null in JSON, got {value!r}")
    return float(value)
