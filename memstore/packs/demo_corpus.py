"""Real text for the demo packs: the first paragraph of docstrings the installed code ships.

The demo marketplace needs packs with hundreds of memories a visitor can read and search,
and the machine it runs on has no internet. Every Python installation carries such text:
the docstrings of the standard library (PSF-2.0) and of Django (BSD-3-Clause), both in
plain English. Each memory is one public function or class and the first paragraph of its
docstring, e.g. ``textwrap.wrap: Wrap a single paragraph of text, returning a list of
wrapped lines.`` Only summaries that read as a sentence are kept (a capital letter first,
a full stop last, no call signature), duplicates (inherited docstrings) once.

The result depends only on the installed versions, so it is the same on every start and
can key a cache (``demo_models``). Importing the listed modules runs no network code.

Not here: which pack gets which memories (``demo_catalogue``), building or publishing.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "DJANGO_MODULES",
    "STDLIB_MODULES",
    "django_memories",
    "docstring_memories",
    "stdlib_memories",
]

#: Standard-library modules whose public functions and classes become memories, in order.
STDLIB_MODULES = (
    "json", "pathlib", "os.path", "shutil", "itertools", "functools", "collections",
    "textwrap", "string", "re", "datetime", "statistics", "math", "random", "heapq",
    "bisect", "csv", "tempfile", "glob", "fnmatch", "hashlib", "base64", "urllib.parse",
    "difflib", "zipfile", "gzip", "logging", "argparse", "subprocess", "threading",
    "queue", "contextlib", "dataclasses", "enum", "uuid", "secrets", "sqlite3", "html",
    "calendar", "time", "decimal", "fractions", "operator", "copy", "pprint", "inspect",
    "shlex", "ipaddress", "tomllib", "zlib", "struct", "weakref", "types", "abc", "io",
    "email.utils", "mimetypes", "unicodedata", "codecs", "traceback", "warnings",
    "asyncio", "concurrent.futures", "typing", "graphlib", "sched", "signal", "os", "sys",
)  # fmt: skip

#: Django modules (and classes, after a colon) whose public callables become memories.
DJANGO_MODULES = (
    "django.shortcuts", "django.urls", "django.utils.text", "django.utils.html",
    "django.utils.timezone", "django.utils.dateparse", "django.utils.crypto",
    "django.utils.encoding", "django.utils.functional", "django.utils.http",
    "django.utils.safestring", "django.utils.translation", "django.core.validators",
    "django.core.signing", "django.core.paginator:Paginator", "django.core.mail",
    "django.db.transaction", "django.db.models:QuerySet", "django.db.models:Model",
    "django.db.models.functions", "django.db.models:Q", "django.db.models:F",
    "django.http:HttpRequest", "django.http:HttpResponse", "django.http",
    "django.core.cache.backends.base:BaseCache", "django.test:TestCase",
    "django.test:SimpleTestCase", "django.test:Client", "django.contrib.auth",
    "django.contrib.auth.hashers", "django.template:Template", "django.forms:Form",
    "django.views.generic:View", "django.middleware.csrf", "django.core.files.storage:Storage",
)  # fmt: skip


_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :func:`json.dumps` -> json.dumps
_RST_EMPHASIS = re.compile(r"\*{1,2}(\w+)\*{1,2}")  # *nbytes* -> nbytes


def _summary(doc: str) -> str:
    """The first paragraph, on one line, without reStructuredText markup (read as text)."""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    text = _RST_ROLE.sub(r"\1", text).replace("``", "")
    return _RST_EMPHASIS.sub(r"\1", text)


def _reads_as_a_sentence(text: str, name: str) -> bool:
    first_word = text.split(" ", 1)[0]
    return (
        30 <= len(text) <= 400
        and text[0].isupper()
        and text.endswith(".")
        and "(" not in first_word
        and not text.startswith(name + "(")
        and ">>>" not in text
    )


def _members(target: Any, names: Iterable[str]) -> Iterable[tuple[str, Any]]:
    """Public functions and classes of ``target``; for a module, not those it re-exports
    from another top-level package (``django.utils.text`` imports ``html.parser``)."""
    home = getattr(target, "__name__", "").split(".")[0] if inspect.ismodule(target) else ""
    for name in sorted(set(names)):
        if name.startswith("_"):
            continue
        try:
            value = getattr(target, name)
        except AttributeError:
            continue
        if not (inspect.isroutine(value) or inspect.isclass(value)):
            continue
        origin = (getattr(value, "__module__", None) or "").split(".")[0]
        if home and origin and origin != home and home != "os":
            continue
        yield name, value


def _targets(spec: str) -> tuple[str, Any, Iterable[str]]:
    module_name, _, class_name = spec.partition(":")
    module = importlib.import_module(module_name)
    if class_name:
        cls = getattr(module, class_name)
        return f"{module_name}.{class_name}", cls, vars(cls).keys()
    return module_name, module, getattr(module, "__all__", None) or dir(module)


def docstring_memories(
    specs: Sequence[str], *, prefix: str, tag: str, limit: int
) -> list[dict[str, Any]]:
    """Memory records (``id``, ``text``, ``tags``) from the docstrings of ``specs``, in order.

    A spec is a module name, or ``module:Class`` for the methods of one class.
    """
    records: list[dict[str, Any]] = []
    seen: set[str] = set()  # summaries, and ids of objects a second module re-exports
    for spec in specs:
        label, target, names = _targets(spec)
        area = label.rsplit(".", 1)[-1] if ":" in spec else label
        for name, value in _members(target, names):
            doc = inspect.getdoc(value)
            if not doc:
                continue
            summary = _summary(doc)
            if summary in seen or str(id(value)) in seen:
                continue
            if not _reads_as_a_sentence(summary, name):
                continue
            seen.update((summary, str(id(value))))
            qualified = f"{label}.{name}"
            records.append(
                {
                    "id": f"{prefix}.{qualified}"[:128],
                    "text": f"{qualified}: {summary}",
                    "tags": [tag, area],
                }
            )
            if len(records) >= limit:
                return records
    return records


def stdlib_memories(limit: int = 400) -> list[dict[str, Any]]:
    """What the standard library's functions and classes do, in their own docstrings' words."""
    return docstring_memories(STDLIB_MODULES, prefix="py", tag="python", limit=limit)


def django_memories(limit: int = 300) -> list[dict[str, Any]]:
    """What Django's shortcuts, ORM, HTTP, test and utility APIs do, from their docstrings."""
    return docstring_memories(DJANGO_MODULES, prefix="dj", tag="django", limit=limit)
