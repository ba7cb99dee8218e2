"""Checks that a task's arguments and results are plain JSON.

Jobs are stored as JSON (never pickle), so anything else is refused at
``enqueue`` with the path of the offending value, instead of failing later in
a worker thread or in another process.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .exceptions import InvalidTaskArguments


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidTaskArguments(
                f"{path} is {value!r}; JSON has no NaN or infinity."
            )
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidTaskArguments(
                    f"{path} has the key {key!r}; JSON object keys must be strings."
                )
            _check(item, f"{path}[{key!r}]")
        return
    raise InvalidTaskArguments(
        f"{path} is a {type(value).__qualname__}, which is not JSON: pass "
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
