"""EvoApproxLib truth tables: the shipped catalogue and .bin loading identified by content hash.

catalogue.csv holds published figures from EvoApproxLib (Mrazek et al., Brno University of
Technology; releases master and v2022). A loaded table is costed as the circuit its sha256 says it
is, whatever the file is called; a name that disagrees with the content is reported, not trusted.
"""

import csv
import hashlib
import re
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from approx.binfile import read_table_bytes, table_from_bytes
from approx.multiplier import Multiplier, exact_products
from approx.spec import power_hint

CATALOGUE_PATH = Path(__file__).with_name("catalogue.csv")
SOURCE = "EvoApproxLib (Mrazek et al., Brno University of Technology), releases master and v2022"
EVOAPPROX_NAME = re.compile(r"mul8[su]_\w+")
CURRENT_RELEASE = "v2022"


@dataclass(frozen=True)
class Circuit:
    """One catalogue row: a circuit under the name one release gives it."""

    name: str
    release: str
    signed: bool
    power_mw: float
    area_um2: float
    mae_pct: float
    wce_pct: float
    mre_pct: float
    ep_pct: float
    wcre_pct: float
    lut_sha256: str

    @property
    def label(self) -> str:
        return f"{self.release}:{self.name} (MAE {self.mae_pct} %, {self.power_mw} mW)"


def parse_row(row: dict[str, str]) -> Circuit:
    numbers = ("power_mw", "area_um2", "mae_pct", "wce_pct", "mre_pct", "ep_pct", "wcre_pct")
    return Circuit(
        name=row["name"], release=row["release"], signed=row["signed"] == "1",
        lut_sha256=row["lut_sha256"], **{key: float(row[key]) for key in numbers},
    )


@cache
def catalogue() -> tuple[Circuit, ...]:
    """All catalogue rows (one per circuit per release)."""
    with CATALOGUE_PATH.open(newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return tuple(parse_row(row) for row in csv.DictReader(lines))


def circuits_with_hash(sha256: str) -> list[Circuit]:
    return [c for c in catalogue() if c.lut_sha256 == sha256]


def circuits_named(name: str) -> list[Circuit]:
    return [c for c in catalogue() if c.name == name]


def guess_signed(name: str, raw: bytes) -> bool:
    """Signedness from an mul8s/mul8u name, else from which reading is closer to exact products."""
    if name.startswith(("mul8s", "mul8u")):
        return name.startswith("mul8s")
    errors = {
        signed: np.abs(table_from_bytes(raw, signed).numpy() - exact_products(signed)).mean()
        for signed in (False, True)
    }
    return errors[True] < errors[False]


def name_conflict(name: str, matches: list[Circuit]) -> str:
    """A message when `name` denotes (or looks like) a different circuit than the content; else ''.

    The current release's name for the content is never a conflict; an older release's name is one
    when the current release gives that name to another circuit.
    """
    if any(c.name == name and c.release == CURRENT_RELEASE for c in matches):
        return ""
    others = [c for c in circuits_named(name) if c not in matches]
    if not others and (name in {c.name for c in matches} or not EVOAPPROX_NAME.fullmatch(name)):
        return ""
    held = " = ".join(c.label for c in matches)
    contrast = "; ".join(c.label for c in others) or f"a circuit called '{name}'"
    return (
        f"truth table '{name}' holds {held}, not {contrast}; "
        "it is costed as the circuit it holds (identified by sha256)"
    )


def describe_known(name: str, matches: list[Circuit]) -> tuple[str, str]:
    """(note, warning) for a table whose hash is in the catalogue."""
    conflict = name_conflict(name, matches)
    identity = "identified by sha256 as " + " = ".join(c.label for c in matches)
    return (conflict or identity), conflict


def unknown_note(sha256: str, spec: str) -> str:
    return (
        f"sha256 {sha256[:16]}... is not in the EvoApproxLib catalogue: error metrics come from "
        f"the table, but its energy is unknown; {power_hint(spec)}"
    )


def load_table_file(path: Path, name: str | None = None) -> Multiplier:
    """Load a .bin truth table; power and area come from the circuit its content is."""
    raw = read_table_bytes(path)
    name = name or path.stem
    sha256 = hashlib.sha256(raw).hexdigest()
    matches = circuits_with_hash(sha256)
    signed = matches[0].signed if matches else guess_signed(name, raw)
    if not matches:
        note, warning = unknown_note(sha256, str(path)), ""
    else:
        note, warning = describe_known(name, matches)
    if warning:
        warnings.warn(warning, stacklevel=3)
    known = matches[0] if matches else None
    return Multiplier(
        name=name, signed=signed, lut=table_from_bytes(raw, signed),
        power_mw=known.power_mw if known else None,
        area_um2=known.area_um2 if known else None,
        source=f"{path} ({SOURCE})" if known else str(path), note=note,
    )
