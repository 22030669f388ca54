"""`--config FILE`: a JSON or YAML mapping of flag names to values, read and checked before
anything runs. Each value goes through its flag's own argparse conversion and choices, so a
value the command line would refuse is refused here too, in one line naming the file, the
setting and the fix; a file that does not parse names the line and column of the fault."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path


class ConfigFileError(ValueError):
    """A --config file that cannot be read, or a setting in it that its flag refuses."""


def read_settings(path: str | Path) -> dict:
    """The mapping in a JSON or YAML file (a YAML file ends in .yaml or .yml)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigFileError(f"--config {path}: cannot read it ({error.strerror}); pass a JSON "
                              f"or YAML file of settings such as a run's config.json") from None
    settings = _parse_yaml(path, text) if path.suffix.lower() in (".yaml", ".yml") \
        else _parse_json(path, text)
    if not isinstance(settings, dict):
        raise ConfigFileError(f"--config {path}: expected a mapping of flag names to values "
                              f"(e.g. 'epochs: 10'), got a {type(settings).__name__}")
    return settings


def _parse_json(path: Path, text: str):
    try:
        return json.loads(text)
    except ValueError as error:
        raise ConfigFileError(f"--config {path}: not valid JSON ({error}); fix the file there "
                              f"or write it as YAML (.yaml)") from None


def _parse_yaml(path: Path, text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        raise ConfigFileError(f"--config {path}: not valid YAML ({problem}{where}); fix the "
                              f"file there (a list needs its closing ']', a string with ': ' "
                              f"needs quotes)") from None


def checked_settings(path: str | Path, settings: dict, parser: argparse.ArgumentParser,
                     ignored: Iterable[str] = (), structured: Iterable[str] = ()) -> dict:
    """The settings for `parser.set_defaults`, each converted and checked as the command line
    converts and checks its flag; `ignored` keys (a run's records) are dropped, a key in
    `structured` may hold a mapping or list (e.g. the genotype a run's config.json records)."""
    actions = {action.dest: action for action in parser._actions if action.option_strings}
    unknown = sorted(set(settings) - set(actions) - set(ignored))
    if unknown:
        raise ConfigFileError(f"--config {path}: unknown setting(s) {', '.join(unknown)}; "
                              f"see --help for this program's flags")
    return {key: checked_value(path, parser, actions[key], value, key in structured)
            for key, value in settings.items()
            if key in actions and key not in set(ignored) and key != "config"}


def checked_value(path, parser: argparse.ArgumentParser, action: argparse.Action, value,
                  structured: bool = False):
    """`value` as the flag of `action` would hold it when given on the command line."""
    flag = action.option_strings[-1]
    if value is None or (structured and isinstance(value, (dict, list))):
        return value
    if action.nargs == 0:  # store_true and --x/--no-x flags
        if isinstance(value, bool):
            return value
        raise ConfigFileError(f"--config {path}: {action.dest} {value!r}: {flag} is on or off; "
                              f"write true or false")
    if isinstance(value, (dict, list)):
        raise ConfigFileError(f"--config {path}: {action.dest} {value!r}: {flag} takes one "
                              f"value; write it as on the command line (a list as 'a,b,c')")
    try:
        return parser._get_values(action, [value if isinstance(value, str) else str(value)])
    except argparse.ArgumentError as error:
        raise ConfigFileError(f"--config {path}: {action.dest} {value!r}: {error.message}; "
                              f"write a value that {flag} accepts (see --help)") from None
