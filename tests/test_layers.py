"""The house plan as a checked rule: every module sits in one layer and imports only from its own
layer or the ones below (no upward imports), and no module outgrows what a reader takes in at
once. The layer table below is the one statement of the project's import structure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 420  # "about 400": a module beyond this wants splitting by concern

# Lowest first. A module belongs to the layer of the longest entry that names it or one of its
# packages (`backbones.genotype` is a record; the rest of `backbones` builds networks).
LAYERS = (
    ("plumbing", ("kernels", "runner")),
    ("arithmetic and cost", ("approx", "energy_estimator", "temporal", "stl", "datasources")),
    ("search-space records", ("genotypes", "topology", "data", "defaults",
                              "backbones.genotype")),
    ("operations", ("operations", "search.space", "search.params")),
    ("networks", ("model", "model_search", "architect", "backbones", "search", "deploy")),
    ("reports", ("reporting", "tradeoff", "experiment", "preflight", "export", "sensitivity")),
    ("search strategies", ("blackbox",)),
    ("programs", ("train", "train_search", "sweep", "analyze", "bench", "quality")),
)


def first_party_modules() -> list[Path]:
    skip = {".venv", "tests", ".git", "runs", "data", "docs"}
    return sorted(path for path in ROOT.rglob("*.py")
                  if not skip & set(path.relative_to(ROOT).parts))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> int | None:
    """The layer of a module name (None: not first-party); `__main__` modules are programs."""
    if name.endswith("__main__"):
        return len(LAYERS) - 1
    matches = [(len(member), rank) for rank, (_, members) in enumerate(LAYERS)
               for member in members if name == member or name.startswith(member + ".")]
    return max(matches)[1] if matches else None


def imported_names(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            package = ROOT / node.module.replace(".", "/")
            submodules = [f"{node.module}.{alias.name}" for alias in node.names
                          if (package / f"{alias.name}.py").is_file()]
            # `from package import module` depends on the module, not on all of the package
            found += [(node.lineno, name) for name in submodules or [node.module]]
    return found


def test_every_first_party_module_has_a_layer():
    unplaced = [module_name(path) for path in first_party_modules()
                if layer_of(module_name(path)) is None]
    assert not unplaced, f"add these modules to LAYERS: {unplaced}"


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for path in first_party_modules():
        name = module_name(path)
        own = layer_of(name)
        for line, target in imported_names(path):
            target_layer = layer_of(target)
            if target_layer is not None and target_layer > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({LAYERS[own][0]}) imports "
                              f"{target} ({LAYERS[target_layer][0]})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


@pytest.mark.parametrize("path", first_party_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small_and_documented(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name}: over {MAX_LINES} lines"
    if path.name != "__init__.py" or text.strip():
        assert ast.get_docstring(ast.parse(text)), f"{path.name}: no module docstring"
