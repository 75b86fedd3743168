"""Malformed and hostile sources are refused with a stable code, and nothing is written."""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest

from protocol import SigningKey
from runtime.errors import InteropError
from runtime.interop import ImportOptions, import_to_pack
from runtime.interop.safe_read import Limits, read_gzip, read_zip_members
from runtime.tests.interop import builders

KEY = SigningKey.from_seed(b"h" * 32)


def _refused(fmt: str, source: Path, tmp: Path, code: str, **options: object) -> None:
    out = tmp / "out.memcube"
    with pytest.raises(InteropError) as exc:
        import_to_pack(fmt, source, out, name="me/x", key=KEY, options=ImportOptions(**options))  # type: ignore[arg-type]
    assert exc.value.code == code, exc.value
    assert not out.exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith(".out.memcube")]


def _write(tmp: Path, name: str, value: object) -> Path:
    path = tmp / name
    path.write_text(json.dumps(value))
    return path


def test_wrong_types_are_refused(tmp_path: Path) -> None:
    _refused("mem0", _write(tmp_path, "a.json", [{"id": "x", "memory": 42}]), tmp_path,
             "interop.bad_record")  # fmt: skip
    _refused("mem0", _write(tmp_path, "b.json", {"results": "nope"}), tmp_path,
             "interop.bad_record")  # fmt: skip
    _refused("mem0", _write(tmp_path, "c.json", [{"id": "x", "memory": "t", "categories": "a"}]),
             tmp_path, "interop.bad_record")  # fmt: skip
    _refused("mem0", _write(tmp_path, "d.json", [{"id": "x", "memory": "t",
                                                  "created_at": "yesterday"}]),
             tmp_path, "interop.bad_record")  # fmt: skip
    line = json.dumps({"type": "entity", "name": ["x"], "observations": []})
    (tmp_path / "m.jsonl").write_text(line + "\n")
    _refused("mcp-memory", tmp_path / "m.jsonl", tmp_path, "interop.bad_record")
    _refused("letta", _write(tmp_path, "e.af", {"agents": [{"block_ids": 3}]}), tmp_path,
             "interop.bad_record")  # fmt: skip


def test_huge_fields_are_refused(tmp_path: Path) -> None:
    big = _write(tmp_path, "big.json", [{"id": "x", "memory": "a" * 70_000}])
    _refused("mem0", big, tmp_path, "interop.field_too_large")
    tags = _write(tmp_path, "tags.json", [{"id": "x", "memory": "t", "categories": ["t" * 101]}])
    _refused("mem0", tags, tmp_path, "interop.field_too_large")


def test_not_json_and_unknown_format_and_empty_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    _refused("mem0", tmp_path / "x.json", tmp_path, "interop.bad_json")
    _refused("zep", tmp_path / "x.json", tmp_path, "interop.unknown_format")
    _refused("mem0", _write(tmp_path, "e.json", {"results": []}), tmp_path, "interop.empty")


def test_zip_slip_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "slip.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../../etc/memories.json", json.dumps([{"id": "x", "memory": "t"}]))
    _refused("mem0", path, tmp_path, "interop.unsafe_path")


def test_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("memories.json", b" " * (2 * 1024 * 1024))
    with pytest.raises(InteropError) as exc:
        read_zip_members(path, {"memories.json"}, Limits(ratio_grace_bytes=1024, max_ratio=50))
    assert exc.value.code == "interop.limit_exceeded"


def test_gzip_bomb_is_cut_off(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\n" * (4 * 1024 * 1024))
    with pytest.raises(InteropError) as exc:
        read_gzip(bomb, "memories.jsonl.gz", Limits(ratio_grace_bytes=1024, max_ratio=50))
    assert exc.value.code == "interop.limit_exceeded"


def test_tar_links_and_parent_paths_are_refused(tmp_path: Path) -> None:
    link = builders.tar_gz(tmp_path / "l.cogx.tar.gz", {"manifest.json": b"{}"},
                           links={"memories.jsonl": "/etc/passwd"})  # fmt: skip
    _refused("cogx", link, tmp_path, "interop.unsafe_path")
    up = builders.tar_gz(tmp_path / "u.cogx.tar.gz", {"../manifest.json": b"{}"})
    _refused("cogx", up, tmp_path, "interop.unsafe_path")


class _Trap:
    """Loading this pickle would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_pickle_where_json_belongs_is_refused_and_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "LOADED"
    payload = pickle.dumps(_Trap(marker), protocol=4)
    (tmp_path / "mem0.json").write_bytes(payload)
    _refused("mem0", tmp_path / "mem0.json", tmp_path, "interop.pickle_refused")
    cube = tmp_path / "cube"
    shutil.copytree(builders.FIXTURES / "memos-cube", cube)
    (cube / "textual_memory.json").write_bytes(payload)
    _refused("memos", cube, tmp_path, "interop.pickle_refused")
    assert not marker.exists()


def test_memos_activation_pickle_is_refused_unless_left_behind(tmp_path: Path) -> None:
    marker = tmp_path / "LOADED"
    cube = tmp_path / "cube"
    shutil.copytree(builders.FIXTURES / "memos-cube", cube)
    (cube / "activation_memory.pickle").write_bytes(pickle.dumps(_Trap(marker)))
    _refused("memos", cube, tmp_path, "interop.pickle_refused")
    result = import_to_pack("memos", cube, tmp_path / "ok.memcube", name="me/x", key=KEY,
                            options=ImportOptions(skip_pickled=True))  # fmt: skip
    assert result.memories == 2
    assert [s.item for s in result.skipped] == ["activation_memory.pickle"]
    assert not marker.exists()


def test_amp_tampered_or_unsigned_is_refused(tmp_path: Path) -> None:
    signer = SigningKey.from_seed(b"s" * 32)
    tampered = builders.amp_pack(tmp_path / "t.zip", signer, tamper=True)
    _refused("amp", tampered, tmp_path, "interop.amp_bad_signature")
    unsigned = tmp_path / "u.zip"
    with zipfile.ZipFile(tampered) as src, zipfile.ZipFile(unsigned, "w") as dst:
        manifest = json.loads(src.read("manifest.json"))
        del manifest["signature"]
        dst.writestr("manifest.json", json.dumps(manifest))
    _refused("amp", unsigned, tmp_path, "interop.amp_unsigned")
    forged = tmp_path / "f.zip"
    with zipfile.ZipFile(tampered) as src, zipfile.ZipFile(forged, "w") as dst:
        manifest = json.loads(src.read("manifest.json"))
        manifest["name"] = "something-else"
        dst.writestr("manifest.json", json.dumps(manifest))
        for name in src.namelist():
            if name != "manifest.json":
                dst.writestr(name, src.read(name))
    _refused("amp", forged, tmp_path, "interop.amp_bad_signature")


def test_missing_source_is_refused(tmp_path: Path) -> None:
    _refused("mem0", tmp_path / "nothing.json", tmp_path, "interop.not_found")
