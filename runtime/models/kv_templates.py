"""Prompt templates: how memories and a query become token ids (see :mod:`.kv`).

``plain`` and ``chatml`` (the default when the tokenizer knows ``<|im_start|>``).
A memory prefix is tokenized in three parts, each on its own
(:func:`prefix_segments`): the shared header (with the tokenizer's special
tokens), the memory items, and the closing; the prompt is the prefix followed
by the query's tokens. Both the plaintext and the cached path use these very
ids, and caches built with one template share their header's tokens, which is
what lets several caches compose behind one header (:mod:`.kv_compose`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .causal_lm import LoadedModel
from .errors import KVCacheError

__all__ = [
    "TEMPLATES",
    "PromptTemplate",
    "default_template",
    "prefix_segments",
    "prompt_ids",
    "template_for",
]


@dataclass(frozen=True)
class PromptTemplate:
    """How memories and a query become prompt text (see the module docstring)."""

    name: str
    header: str
    item: str
    footer: str
    query: str
    more_header: str  # opens a further block of memories after a (cached) prefix
    opener: str = ""  # opens the query when no memory prefix came before it
    more_footer: str | None = None  # closes a further block (default: ``footer``)

    def prefix(self, texts: Sequence[str]) -> str:
        return self.header + "".join(self.item.format(text=t) for t in texts) + self.footer

    def more(self, texts: Sequence[str]) -> str:
        """Further memories to append after a prefix (empty when there are none)."""
        if not texts:
            return ""
        footer = self.footer if self.more_footer is None else self.more_footer
        return self.more_header + "".join(self.item.format(text=t) for t in texts) + footer

    def query_text(self, query: str, *, standalone: bool = False) -> str:
        """The query part; ``standalone`` when no memory prefix precedes it."""
        return (self.opener if standalone else "") + self.query.format(query=query)


TEMPLATES: dict[str, PromptTemplate] = {
    "plain": PromptTemplate(
        name="plain",
        header="Memories:\n",
        item="- {text}\n",
        footer="\n",
        query="Question: {query}\nAnswer:",
        more_header="More memories:\n",
    ),
    # The prefix ends by opening the user's turn: those tokens are the same for
    # every question, so they belong in the cache and are never prefilled
    # again. Further plaintext memories go inside that turn, before the question.
    "chatml": PromptTemplate(
        name="chatml",
        header=(
            "<|im_start|>system\nYou are a helpful assistant. Use these memories when relevant:\n"
        ),
        item="- {text}\n",
        footer="<|im_end|>\n<|im_start|>user\n",
        query="{query}<|im_end|>\n<|im_start|>assistant\n",
        more_header="More memories:\n",
        opener="<|im_start|>user\n",
        more_footer="\n",
    ),
}


def default_template(lm: LoadedModel) -> PromptTemplate:
    """``chatml`` when the tokenizer knows ``<|im_start|>``, else ``plain``."""
    vocab = lm.tokenizer.get_vocab()
    return TEMPLATES["chatml" if "<|im_start|>" in vocab else "plain"]


def template_for(lm: LoadedModel, template: PromptTemplate | str | None) -> PromptTemplate:
    """The named template (or the model's default for None)."""
    return _template(lm, template)


def _template(lm: LoadedModel, template: PromptTemplate | str | None) -> PromptTemplate:
    if template is None:
        return default_template(lm)
    if isinstance(template, str):
        try:
            return TEMPLATES[template]
        except KeyError:
            raise KVCacheError(
                f"unknown prompt template {template!r} (known: {', '.join(TEMPLATES)})"
            ) from None
    return template


def prompt_ids(
    lm: LoadedModel, texts: Sequence[str], query: str, template: PromptTemplate | str | None = None
) -> tuple[list[int], list[int]]:
    """(prefix ids, query ids) for memories ``texts`` and ``query``; the prompt joins them."""
    tpl = _template(lm, template)
    return prefix_segments(lm, tpl, texts)[3], lm.encode(
        tpl.query_text(query), add_special_tokens=False
    )


def prefix_segments(
    lm: LoadedModel, tpl: PromptTemplate, texts: Sequence[str]
) -> tuple[list[int], list[int], list[int], list[int]]:
    """(shared header, memory items, closing, all three joined) token ids of a memory prefix.

    Each part is tokenized on its own, so the header is the same tokens for
    every cache built with ``tpl`` and caches compose at token boundaries.
    """
    header = lm.encode(tpl.header, add_special_tokens=True)
    items = lm.encode("".join(tpl.item.format(text=t) for t in texts), add_special_tokens=False)
    closing = lm.encode(tpl.footer, add_special_tokens=False) if tpl.footer else []
    return header, items, closing, [*header, *items, *closing]
