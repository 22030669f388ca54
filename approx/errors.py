"""The one exception type raised for bad multiplier input (files, names, shapes)."""


class MultiplierError(ValueError):
    """A multiplier spec, truth-table file or table is unusable; the message says how to fix it."""
