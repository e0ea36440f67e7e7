"""Griffe extension: adapt probkit's docstrings to mkdocstrings' Markdown rendering.

* probkit's docstrings (Google style) head their runnable examples ``Example:``.
  Griffe's Google parser knows only the plural ``Examples:`` as an examples section
  and would render the singular as an admonition, mangling the ``>>>`` lines into
  Markdown. The heading is renamed before the docstring is parsed, so the examples
  render as Python code.
* Sphinx roles (``:func:`name```, ``:class:`~pkg.Name```) mean nothing in Markdown;
  they are rendered as inline code (``~`` keeps the last component, as in Sphinx).
* reStructuredText simple tables (columns under ``====  ====`` rules) would run
  together into one paragraph; they are shown as preformatted text instead.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")
_TABLE_RULE = re.compile(r"^\s*=+(?: +=+)+\s*$")


def _fence_simple_tables(text: str) -> str:
    """Wrap each RST simple table (top rule, header rule, bottom rule) in a text fence."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        rules = [j for j in range(i, len(lines)) if _TABLE_RULE.match(lines[j])][:3]
        if len(rules) < 3 or rules[0] != i:
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        out += [f"{indent}```text", *lines[i : rules[2] + 1], f"{indent}```"]
        i = rules[2] + 1
    return "\n".join(out)


def _role_to_code(match: re.Match) -> str:
    short, name = match.group(1), match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


class ExampleSections(griffe.Extension):
    """Adapt a docstring before griffe parses it (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            value = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
            value = _SPHINX_ROLE.sub(_role_to_code, value)
            obj.docstring.value = _fence_simple_tables(value)
