"""Signal Temporal Logic internals: formulas with their quantitative semantics, and the
parser. The public interface, with the syntax and semantics, is the top-level `stl` module."""
