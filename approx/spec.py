"""Multiplier spec syntax: `<built-in | EvoApprox name | .bin path>[:<power in mW>]`.

The power suffix costs a table whose power the catalogue does not know (a user's own design):
`--multipliers path/my_mul.bin:0.21`. This module is the one place that parses it.
"""

import math

from approx.errors import MultiplierError

POWER_SEPARATOR = ":"
POWER_EXAMPLE_MW = 0.21


def looks_like_path(spec: str) -> bool:
    return spec.endswith(".bin") or "/" in spec or "\\" in spec


def split_power(spec: str) -> tuple[str, float | None]:
    """('path/my_mul.bin', 0.21) for 'path/my_mul.bin:0.21'; (spec, None) without a power."""
    base, separator, tail = spec.rpartition(POWER_SEPARATOR)
    if not separator:
        return spec, None
    try:
        power_mw = float(tail)
    except ValueError:
        if looks_like_path(spec):
            return spec, None  # a path with a ':' in it (e.g. a drive letter)
        raise MultiplierError(
            f"multiplier spec '{spec}': what follows '{POWER_SEPARATOR}' must be the "
            f"multiplier's power in mW, e.g. my_mul.bin{POWER_SEPARATOR}{POWER_EXAMPLE_MW}"
        ) from None
    if not base or not math.isfinite(power_mw) or power_mw < 0:
        raise MultiplierError(
            f"multiplier spec '{spec}': give '<name or .bin path>{POWER_SEPARATOR}<power in mW "
            f">= 0>', e.g. my_mul.bin{POWER_SEPARATOR}{POWER_EXAMPLE_MW}"
        )
    return base, power_mw


def power_hint(spec: str) -> str:
    """How to give a multiplier's power (for messages about an unknown power)."""
    return (
        f"append its power in mW to the multiplier spec, e.g. --multipliers "
        f"{spec}{POWER_SEPARATOR}{POWER_EXAMPLE_MW} (or load_multiplier(..., power_mw=P))"
    )
