"""A griffe extension for the API reference: Sphinx roles in docstrings as inline code.

The docstrings are written for ``help()`` and IDEs too, so they keep numpydoc's
``:meth:`cost``` roles; Markdown has no such syntax, and mkdocstrings would print the
role's name. This turns ``:role:`target``` into ```target``` (``~a.b.c`` into ```c```).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRolesAsCode(griffe.Extension):
    """Rewrite Sphinx cross-reference roles in every docstring as inline code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_plain, obj.docstring.value)


__all__ = ["SphinxRolesAsCode"]
