"""Checks that a task's arguments and results are plain JSON.

Jobs are stored as JSON (never pickle), so anything else is refused at
``enqueue`` with the path of the offending value, instead of failing later in
a worker thread or in another process.  "Plain" also means what every
supported database stores: no NUL character and no lone surrogate in a
string (PostgreSQL's jsonb refuses both), and no deeper nesting than
``MAX_DEPTH``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from slowjobs.exceptions import InvalidTaskArguments, InvalidTaskResult

MAX_DEPTH = 64
BIGINT = (-(2**63), 2**63 - 1)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (not UTF-8)"
    return None


Invalid = type[InvalidTaskArguments] | type[InvalidTaskResult]


def _check(
    value: Any, path: str, depth: int = 0, error: Invalid = InvalidTaskArguments
) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            raise error(f"{path} {problem}, which the database refuses.")
        return
    if depth >= MAX_DEPTH:
        raise error(f"{path} nests deeper than {MAX_DEPTH} levels.")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise error(f"{path} is {value!r}; JSON has no NaN or infinity.")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1, error)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise error(
                    f"{path} has the key {key!r}; JSON object keys must be strings."
                )
            problem = _text_problem(key)
            if problem:
                raise error(
                    f"{path} has a key that {problem}, which the database refuses."
                )
            _check(item, f"{path}[{key!r}]", depth + 1, error)
        return
    raise error(
        f"{path} is a {type(value).__qualname__}, which is not JSON: use "
        "str, int, float, bool, None, list or dict (store files and pass their path)."
    )


def check_arguments(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> None:
    for index, value in enumerate(args):
        _check(value, f"args[{index}]")
    for name, value in kwargs.items():
        _check(value, f"kwargs[{name!r}]")


def to_json_value(value: Any, what: str) -> Any:
    """Return ``value`` as it will read back from the database."""
    _check(value, what)
    return json.loads(json.dumps(value))


def _decoded(value: Any, path: str) -> Any:
    """``value`` with its ``bytes`` decoded as UTF-8, as Django's backends do."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidTaskResult(
                f"{path} is bytes that are not UTF-8 text: store them in a file "
                "and return its name."
            ) from None
    if isinstance(value, list | tuple):
        return [_decoded(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _decoded(item, f"{path}[{key!r}]") for key, item in value.items()}
    return value


def result_as_json(value: Any) -> Any:
    """A task's return value as it will read back from the database."""
    value = _decoded(value, "the return value")
    _check(value, "the return value", error=InvalidTaskResult)
    return json.loads(json.dumps(value))


def storable_text(text: str) -> str:
    """Text any database column takes: NULs and lone surrogates replaced."""
    if _text_problem(text) is None:
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def storable_bigint(value: Any) -> int | None:
    """An int that fits a BIGINT column, or None (progress of any shape)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(number, BIGINT[0]), BIGINT[1])
