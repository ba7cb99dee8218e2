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


def seconds_between(low: float, high: float) -> Callable[[str], float]:
    """More than ``low``, at most ``high`` seconds."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not low < value <= high:
            raise ArgumentTypeError(f"{value:g} is not in ({low:g}, {high:g}] seconds")
        return value

    parse.__name__ = f"seconds in ({low:g}, {high:g}]"
    return parse
