"""The optional packages of the export (onnx, onnxruntime), imported only here."""

from __future__ import annotations

import importlib

INSTALL = "pip install -r requirements-export.txt  (or: pip install '.[export]')"


class ExportError(ValueError):
    """A bad export input or a missing optional package: one line, exit status 2."""


def require(package: str):
    """The imported `package`, or ExportError naming the install command."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ExportError(f"the export needs the package '{package}': {INSTALL}") from None
