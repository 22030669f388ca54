"""Atomic files and the one JSON convention of the project: a file is written to a temporary
name, fsynced and renamed (never torn), and non-finite floats are written as null."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import torch


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
    """Strict JSON (NaN and infinities become null), written atomically."""
    text = json.dumps(json_safe(data), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def json_safe(value):
    """`value` with paths, tensors and arrays made plain and non-finite floats made None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    return str(value)


def atomic_torch_save(obj, path: str | Path) -> Path:
    return _atomic_replace(Path(path), lambda f: torch.save(obj, f))
