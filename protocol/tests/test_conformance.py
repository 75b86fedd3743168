import json
import sys

import pytest

from protocol.conformance import generate, runner


def test_generator_reproduces_the_committed_vectors_byte_for_byte(tmp_path):
    entries = generate.generate(tmp_path)
    committed = sorted(p.name for p in generate.VECTORS_DIR.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (generate.VECTORS_DIR / name).read_bytes(), name
    assert len(entries) >= 40


def test_vectors_cover_valid_and_every_required_invalid_case():
    index = json.loads((generate.VECTORS_DIR / "index.json").read_text())
    outcomes = {v["expect"].get("code", "ok") for v in index["vectors"]}
    required = {
        "ok",
        "archive.absolute_path",
        "archive.path_traversal",
        "archive.symlink",
        "archive.hardlink",
        "archive.special_file",
        "archive.duplicate_member",
        "archive.unlisted_member",
        "archive.missing_member",
        "archive.limit.manifest_size",
        "archive.limit.members",
        "archive.limit.total_size",
        "archive.limit.compression_ratio",
        "archive.bad_name_encoding",
        "manifest.bad_encoding",
        "integrity.digest_mismatch",
        "integrity.size_mismatch",
        "manifest.not_canonical",
        "archive.manifest_not_first",
        "manifest.unsupported_version",
        "payload.pickle_forbidden",
    }
    assert required <= outcomes
    kinds = {v["kind"] for v in index["vectors"]}
    assert kinds == {"pack", "manifest"}


def test_our_reader_passes_every_vector():
    outcomes = runner.run_vectors()
    failed = [o for o in outcomes if not o.passed]
    assert not failed
    assert len(outcomes) >= 40


def test_runner_main_reports_and_exits_zero(capsys):
    assert runner.main(["--only", "valid-plaintext-signed", "--only", "invalid-symlink"]) == 0
    out = capsys.readouterr().out
    assert "PASS  invalid-symlink" in out and "2/2 vectors passed" in out
    assert runner.main(["--json", "--only", "invalid-symlink"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["passed"] is True


def test_runner_exits_non_zero_when_a_reader_fails(tmp_path, capsys):
    def liar(request):
        return {"ok": True, "manifest_sha256": "0" * 64, "signers": []}

    outcomes = runner.run_vectors(
        liar, only=("valid-plaintext-signed", "invalid-symlink", "manifest-valid-pretty")
    )
    assert [o.passed for o in outcomes] == [False, False, False]
    assert runner.main(["--only", "no-such-vector"]) == 1


def test_runner_drives_another_implementation_through_a_command(capsys):
    command = f"{sys.executable} -m protocol.conformance --as-reader"
    assert (
        runner.main(
            [
                "--reader-command",
                command,
                "--only",
                "invalid-symlink",
                "--only",
                "valid-activation-kv-cache",
            ]
        )
        == 0
    )
    bad = runner.command_reader(f"{sys.executable} -c print(1)")
    assert bad({"file": "x"})["code"] == "runner.bad_reader_output"
    garbage = runner.command_reader(f"{sys.executable} -c print")
    assert garbage({"file": "x"})["code"] == "runner.bad_reader_output"


def test_generator_main_writes_to_a_folder(tmp_path, capsys):
    assert generate.main([str(tmp_path)]) == 0
    assert "vectors" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["valid-mip-1.9-minor", "valid-unknown-future-fields"])
def test_future_fields_are_covered_by_the_signature(name):
    outcomes = runner.run_vectors(only=(name,))
    assert outcomes[0].passed
