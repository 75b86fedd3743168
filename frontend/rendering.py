"""Pack descriptions: Markdown to HTML, sanitised with nh3 (an allow-list, no scripts).

Not here: anything else about packs. The output is safe to mark as such in a
template because nh3 removes every tag and attribute not listed below.
"""

from __future__ import annotations

import re

import markdown
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub",
    "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}}
MAX_SOURCE_CHARS = 100_000
_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.IGNORECASE)


def render_markdown(source: str) -> str:
    """Sanitised HTML for a pack card; headings are shifted down so the page keeps one h1."""
    html = markdown.markdown(
        source[:MAX_SOURCE_CHARS],
        extensions=["fenced_code", "tables", "sane_lists"],
        output_format="html",
    )
    html = _HEADING.sub(lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + 1, 6)}", html)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
