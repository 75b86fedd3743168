"""memos kv / model / consolidate / generate on a tiny model saved as a local folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.cli.main import main
from runtime.models.causal_lm import LoadedModel, load_model

MEMORIES = "alice likes green tea in the morning\nbob repairs old bicycles on sundays\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEMOS_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mem.txt").write_text(MEMORIES, "utf-8")


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_local_folder_loads_with_the_same_fingerprint(
    tiny_lm: LoadedModel, tiny_model_dir: Path
) -> None:
    loaded = load_model(tiny_model_dir, device="cpu")
    # Same config, tokenizer and shapes; the folder's also names its checkpoint file.
    assert tiny_lm.fingerprint.mismatches(loaded.fingerprint) == []
    assert loaded.fingerprint.weights_sha256 is not None
    assert loaded.fingerprint.mismatches(tiny_lm.fingerprint) == ["weights_sha256"]


def test_kv_build_and_info(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    built = run_json(
        capsys,
        "kv",
        "build",
        "mem.txt",
        "--out",
        "kv.safetensors",
        "--model",
        str(tiny_model_dir),
        "--json",
    )
    assert built["tokens"] and Path("kv.safetensors").is_file()
    info = run_json(capsys, "kv", "info", "kv.safetensors", "--json")
    assert info["fingerprint"] == built["fingerprint"] and info["tokens"] == built["tokens"]


def test_build_pack_sign_and_generate_from_the_command_line(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--model", str(tiny_model_dir)]
    assert (
        main(
            [
                "model",
                "build-pack",
                "mem.txt",
                "--out",
                "src",
                "--name",
                "acme/tiny",
                "--lora-steps",
                "2",
                *model,
            ]
        )
        == 0
    )
    assert main(["keygen", "--out", "keys"]) == 0
    assert main(["pack", "src", "--out", "p.memcube", "--key", "keys/memos-signing.key"]) == 0
    assert main(["verify", "p.memcube", "--trusted-key", "keys/memos-signing.pub"]) == 0
    query = "what does alice like"
    kv = run_json(
        capsys, "generate", query, "--pack", "p.memcube", "--max-new-tokens", "6", "--json", *model
    )
    plain = run_json(
        capsys,
        "generate",
        query,
        "--pack",
        "p.memcube",
        "--mode",
        "plaintext",
        "--max-new-tokens",
        "6",
        "--json",
        *model,
    )
    assert kv["form"] == "activation" and plain["form"] == "plaintext"
    assert str(plain["reason"]).startswith("plaintext: requested")
    assert kv["tokens"] == plain["tokens"]
    assert kv["cached_tokens"] and not plain["cached_tokens"]
    with_adapter = run_json(
        capsys,
        "generate",
        query,
        "--pack",
        "src",
        "--adapter",
        "--max-new-tokens",
        "4",
        "--json",
        *model,
    )
    assert with_adapter["form"] == "plaintext+parameter"


def test_generate_refuses_another_models_memory_with_a_hint(
    tiny_model_dir: Path, other_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "model",
                "build-pack",
                "mem.txt",
                "--out",
                "src",
                "--name",
                "acme/tiny",
                "--lora-steps",
                "1",
                "--model",
                str(tiny_model_dir),
            ]
        )
        == 0
    )
    other = ["--model", str(other_model_dir)]
    capsys.readouterr()
    assert main(["generate", "q", "--pack", "src", "--mode", "kv", *other]) == 1
    assert "model.kv_unavailable" in capsys.readouterr().err
    assert main(["generate", "q", "--pack", "src", "--adapter", *other]) == 1
    err = capsys.readouterr().err
    assert "model.fingerprint_mismatch" in err and "hint" in err
    auto = run_json(
        capsys, "generate", "q", "--pack", "src", "--max-new-tokens", "2", "--json", *other
    )
    assert auto["form"] == "plaintext" and "no KV cache fits" in auto["reason"]
    assert any("differs in" in note for note in auto["notes"])


def test_consolidate_writes_adapter_files(tiny_model_dir: Path) -> None:
    assert (
        main(
            [
                "consolidate",
                "mem.txt",
                "--out",
                "adapter",
                "--steps",
                "2",
                "--model",
                str(tiny_model_dir),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in Path("adapter").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]


def test_missing_model_folder_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kv", "build", "mem.txt", "--out", "kv.safetensors", "--model", "./nope"]) == 1
    assert "model.not_found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["kv", "build"],
        ["kv", "info"],
        ["model", "fingerprint"],
        ["model", "build-pack"],
        ["consolidate"],
        ["generate"],
    ],
)
def test_every_model_command_help_has_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_generate_with_an_installed_pack_and_with_the_engine_plan(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMOS_EMBEDDER", "hash")
    model = ["--model", str(tiny_model_dir)]
    assert (
        main(
            [
                "model",
                "build-pack",
                "mem.txt",
                "--out",
                "src",
                "--name",
                "acme/tiny",
                "--no-lora",
                *model,
            ]
        )
        == 0
    )
    assert main(["keygen", "--out", "keys"]) == 0
    assert main(["pack", "src", "--out", "p.memcube", "--key", "keys/memos-signing.key"]) == 0
    assert (
        main(
            ["install", "./p.memcube", "--trusted-key", "keys/memos-signing.pub", "--no-lock", "-q"]
        )
        == 0
    )
    query = "what does alice like"
    by_name = run_json(
        capsys, "generate", query, "--pack", "acme/tiny", "--max-new-tokens", "4", "--json", *model
    )
    by_file = run_json(
        capsys, "generate", query, "--pack", "p.memcube", "--max-new-tokens", "4", "--json", *model
    )
    assert by_name["form"] == "activation" and by_name["tokens"] == by_file["tokens"]
    planned = run_json(
        capsys,
        "generate",
        query,
        "--engine",
        "--budget",
        "256",
        "--max-new-tokens",
        "4",
        "--json",
        *model,
    )
    assert planned["plan"]["items"], planned
    assert planned["form"] in ("activation", "plaintext")
    capsys.readouterr()
    assert main(["generate", query, "--pack", "acme/absent", *model]) == 1
    assert "model.pack_not_installed" in capsys.readouterr().err
    report = run_json(capsys, "model", "transform", "--promote-after", "0", "--json", *model)
    assert len(report["promoted"]) == 2 and report["skipped"] == []  # type: ignore[arg-type]
    planned = run_json(
        capsys,
        "generate",
        query,
        "--engine",
        "--latency",
        "60",
        "--max-new-tokens",
        "2",
        "--json",
        *model,
    )
    assert any(i["form"] == "activation" for i in planned["plan"]["items"])  # type: ignore[index]


def test_build_pack_with_kv_chunks_generates_from_the_chunked_cache(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--model", str(tiny_model_dir)]
    build = ["model", "build-pack", "mem.txt", "--out", "src", "--name", "acme/tiny"]
    assert main([*build, "--no-lora", "--kv-chunk-tokens", "16", *model]) == 0
    chunks = sorted(Path("src/payloads/memories-kv").glob("kv.*.safetensors"))
    assert len(chunks) > 1 and not Path("src/payloads/memories-kv/kv.safetensors").exists()
    assert main(["pack", "src", "--out", "p.memcube", "--mip", "2"]) == 0
    query = ["generate", "what does alice like", "--pack", "p.memcube", "--max-new-tokens", "6"]
    kv = run_json(capsys, *query, "--json", *model)
    plain = run_json(capsys, *query, "--mode", "plaintext", "--json", *model)
    assert kv["form"] == "activation" and kv["tokens"] == plain["tokens"]
