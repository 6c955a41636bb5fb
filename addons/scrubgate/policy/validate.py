"""Small helpers for reading YAML into typed records with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class PolicyError(Exception):
    """A policy or catalogue file is invalid. `errors` lists one line per problem."""

    def __init__(self, source: str, errors: list[str]):
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors))


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(str(path), [f"cannot read file: {e.strerror or e}"]) from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise PolicyError(str(path), [f"{where}not valid YAML ({problem})"]) from e


class Reader:
    """Pulls typed fields out of a mapping and records what is wrong, by field path."""

    def __init__(self, errors: list[str]):
        self.errors = errors

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            self.errors.append(f"{where}: must be a mapping")
            return {}
        for key in value:
            if key not in allowed:
                self.errors.append(f"{where}.{key}: unknown field (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - value.keys()):
            self.errors.append(f"{where}.{key}: required field is missing")
        return value

    def string(self, m: dict, key: str, where: str, default: str | None = None) -> str | None:
        value = m.get(key, default)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.errors.append(f"{where}.{key}: must be a string")
        return default

    def choice(self, m: dict, key: str, where: str, choices: tuple[str, ...], default: str) -> str:
        value = m.get(key, default)
        if value not in choices:
            self.errors.append(f"{where}.{key}: must be one of {', '.join(choices)} (got {value!r})")
            return default
        return value

    def flag(self, m: dict, key: str, where: str, default: bool) -> bool:
        value = m.get(key, default)
        if not isinstance(value, bool):
            self.errors.append(f"{where}.{key}: must be true or false (got {value!r})")
            return default
        return value

    def number(self, m: dict, key: str, where: str, default: float, minimum: float, maximum: float,
               integer: bool = True) -> float:
        value = m.get(key, default)
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            self.errors.append(f"{where}.{key}: must be {'a whole number' if integer else 'a number'}")
            return default
        if not minimum <= value <= maximum:
            self.errors.append(f"{where}.{key}: must be between {minimum:g} and {maximum:g} (got {value})")
            return default
        return value

    def string_list(self, m: dict, key: str, where: str) -> list[str]:
        value = m.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.errors.append(f"{where}.{key}: must be a list of strings")
            return []
        return value
