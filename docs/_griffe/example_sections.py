"""Griffe extension: adapt probkit's docstrings to mkdocstrings' Markdown rendering.

* probkit's docstrings (Google style) head their runnable examples ``Example:``.
  Griffe's Google parser knows only the plural ``Examples:`` as an examples section
  and would render the singular as an admonition, mangling the ``>>>`` lines into
  Markdown. The heading is renamed before the docstring is parsed, so the examples
  render as Python code.
* Sphinx roles (``:func:`name```, ``:class:`~pkg.Name```) mean nothing in Markdown;
  they are rendered as inline code (``~`` keeps the last component, as in Sphinx).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _role_to_code(match: re.Match) -> str:
    short, name = match.group(1), match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` headings to ``Examples:``; turn Sphinx roles into code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _SPHINX_ROLE.sub(_role_to_code, value)
