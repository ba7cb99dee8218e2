"""argparse value types shared by the commands: clear messages, no tracebacks."""

from __future__ import annotations

from argparse import ArgumentTypeError
from collections.abc import Callable


def whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse
