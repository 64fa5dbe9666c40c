"""The values of ``deepnet bench``'s options, as argparse types: comma-separated lists,
backend labels in deepnet's spelling, ``NxM`` points and ``BACKEND=WIDTH`` caps."""

from __future__ import annotations

import argparse

__all__ = ["backend_list", "caps", "int_list", "points", "str_list", "target"]


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers; got {text!r}")
    return values


def str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def target(label: str) -> str:
    """A backend label as deepnet spells it (``Array-API-Strict`` → ``array_api_strict``,
    ``Torch:cuda`` → ``torch:cuda``): the device after the colon is left as given."""
    from deepnet.backend import backend_key

    name, colon, device = label.partition(":")
    return backend_key(name) + colon + device


def backend_list(text: str) -> list[str]:
    return [target(v) for v in str_list(text)]


def points(text: str) -> list[tuple[int, int]]:
    try:
        pts = [tuple(int(x) for x in p.lower().split("x")) for p in str_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected points like 8192x8192,4096x8192; got {text!r}") from None
    if any(len(p) != 2 or min(p) < 1 for p in pts):
        raise argparse.ArgumentTypeError(f"expected points like 8192x8192; got {text!r}")
    return pts  # type: ignore[return-value]


def caps(text: str) -> dict[str, int]:
    caps = {}
    for item in str_list(text):
        name, _, value = item.rpartition("=")
        if not name or not value.isdigit():
            raise argparse.ArgumentTypeError(
                f"expected BACKEND=WIDTH[,...] (e.g. array_api_strict=256); got {item!r}")
        caps[target(name)] = int(value)
    return caps
