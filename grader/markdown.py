"""The kit's messages as Markdown, for Gradescope's `output_format = "md"`.

The messages are plain text that quote code between backticks (`layer/1/neuron`,
`training_set`): those spans stay code, and everything else is escaped so that
it reads exactly as the text says. A student's variable or file name can hold
`*`, `_`, `<`, `[`: unescaped it would turn into emphasis, a link or raw HTML
in Gradescope's page. Stdlib only.
"""

from __future__ import annotations

import re

CODE_SPAN = re.compile(r"`[^`\n]+`")
# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that can start
# emphasis, links, images, raw HTML, tables, strike-through, or an entity.
INLINE = re.compile(r"([\\`*_\[\]<>|~!&{}#])")
LINE_START = re.compile(r"(?m)^(\s*)([-+=>]|\d+(?=[.)]))")  # list items, headings' underlines, block quotes


def escape(text: str) -> str:
    """`text` as Markdown that renders to the same characters; `code` spans stay code spans."""
    parts, last = [], 0
    for span in CODE_SPAN.finditer(text):
        parts.append(_escape_plain(text[last:span.start()]))
        parts.append(span.group(0))
        last = span.end()
    parts.append(_escape_plain(text[last:]))
    out = "".join(parts)
    return LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2) if not m.group(2).isdigit()
                          else m.group(1) + m.group(2) + "\\", out)


def _escape_plain(text: str) -> str:
    return INLINE.sub(r"\\\1", text)


def lines(items: list[str]) -> str:
    """A Markdown bullet list of already plain-text items, each escaped."""
    return "\n".join(f"- {escape(item)}" for item in items)
