"""Turn pydantic's validation errors into the one line a user should read."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

# pydantic error type -> what the field expected, in words.
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "extra_forbidden": None,
}


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def describe_validation_error(error: ValidationError, *, what: str = "config key") -> str:
    """One line per problem, joined with '; ': key, expected, actual."""
    lines = []
    for item in error.errors():
        key = _where(item["loc"])
        given = item.get("input")
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown {what} '{key}'")
            continue
        if item["type"] == "value_error":  # our own validators: the message names the value itself
            lines.append(f"{what} '{key}': {item['ctx']['error']}")
            continue
        expected = _EXPECTED.get(item["type"])
        reason = f"expected {expected}" if expected else item["msg"].lower()
        lines.append(f"{what} '{key}': {reason}, got {given!r} ({type(given).__name__})")
    return "; ".join(lines)
