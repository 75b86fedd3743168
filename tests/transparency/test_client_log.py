"""The client's log checks against a lying fake: split views, rewrites, key swaps, inclusion."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import SigningKey
from runtime.transparency import LogError, LogVerifier

from .fake_log import FakeLog

LOG_KEY = SigningKey.from_seed(b"L" * 32)
DIGEST = "ab" * 32


def _log(n: int = 3) -> FakeLog:
    log = FakeLog(LOG_KEY)
    log.append("key.register", "acme", keyid="k1")
    log.append("publish", "acme", pack="acme/tips", version="1.0.0", manifest_sha256=DIGEST)
    for i in range(n - 2):
        log.append("publish", "beta", pack="beta/x", version=f"0.{i}.0", manifest_sha256="0" * 64)
    return log


def _client(home: Path, source: FakeLog) -> LogVerifier:
    return LogVerifier(home, "http://registry.test", source)


def _code(exc: pytest.ExceptionInfo[LogError]) -> str:
    return exc.value.code


def test_a_growing_log_is_accepted_and_the_head_kept(tmp_path: Path) -> None:
    log = _log(3)
    client = _client(tmp_path, log)
    assert client.refresh().size == 3
    log.append("key.register", "acme", keyid="k2")
    log.append("yank", "acme", pack="acme/tips", version="1.0.0", manifest_sha256=DIGEST)
    head = client.refresh()
    assert head.size == 5 and client.kept_head() == head
    # A registry showing an older (consistent) tree does not move the client back...
    log.shown_size = 4
    assert client.refresh().size == 5
    # ... and one that lost entries cannot prove the older tree is a prefix.
    client.source = log.fork(4)
    with pytest.raises(LogError) as err:
        client.refresh()
    assert _code(err) == "log.inconsistent"


def test_split_view_two_clients_given_different_logs_detect_it_on_the_other_head(
    tmp_path: Path,
) -> None:
    honest = _log(4)
    victim_view = honest.fork(2)
    victim_view.append("key.register", "acme", keyid="evil")  # only the victim sees this key
    alice = _client(tmp_path / "alice", honest)
    victim = _client(tmp_path / "victim", victim_view)
    assert alice.refresh().size == 4 and victim.refresh().size == 3
    # The victim later meets the log everyone else sees (or a gossip of its head).
    victim.source = honest
    with pytest.raises(LogError) as err:
        victim.refresh()
    assert _code(err) == "log.inconsistent"
    # And the other way round: a head of the victim's view shown to alice.
    victim_view.append("publish", "acme", pack="acme/evil", version="1.0.0", manifest_sha256=DIGEST)
    alice.source = victim_view
    with pytest.raises(LogError) as err:
        alice.refresh()
    assert _code(err) == "log.inconsistent"


def test_a_rewritten_history_of_the_same_size_is_refused(tmp_path: Path) -> None:
    log = _log(3)
    client = _client(tmp_path, log)
    client.refresh()
    rewritten = log.fork(1)
    rewritten.append(
        "publish", "acme", pack="acme/tips", version="1.0.0", manifest_sha256="cd" * 32
    )
    rewritten.append("publish", "beta", pack="beta/x", version="0.0.0", manifest_sha256="0" * 64)
    client.source = rewritten
    with pytest.raises(LogError) as err:
        client.refresh()
    assert _code(err) == "log.inconsistent"


def test_a_new_log_key_or_a_bad_signature_is_refused(tmp_path: Path) -> None:
    client = _client(tmp_path, _log(3))
    client.refresh()
    client.source = FakeLog(SigningKey.from_seed(b"M" * 32), _log(3).bodies)
    with pytest.raises(LogError) as err:
        client.refresh()
    assert _code(err) == "log.key_changed"

    class Forged(FakeLog):
        def tree_head(self):  # type: ignore[no-untyped-def]
            return {**super().tree_head(), "size": 2}

    client.source = Forged(LOG_KEY, _log(3).bodies)
    with pytest.raises(LogError) as err:
        client.refresh()
    assert _code(err) == "log.bad_tree_head"


def test_inclusion_of_what_is_installed(tmp_path: Path) -> None:
    log = _log(5)
    client = _client(tmp_path, log)
    entry = client.check_published(name="acme/tips", version="1.0.0", manifest_sha256=DIGEST)
    assert entry.index == 1
    with pytest.raises(LogError) as err:
        client.check_published(name="acme/tips", version="2.0.0", manifest_sha256=DIGEST)
    assert _code(err) == "log.not_included"

    class BadProof(FakeLog):
        def inclusion(self, *, size, manifest_sha256):  # type: ignore[no-untyped-def]
            answer = super().inclusion(size=size, manifest_sha256=manifest_sha256)
            return {**answer, "path": ["00" * 32, *answer["path"][1:]]}

    client.source = BadProof(LOG_KEY, log.bodies)
    with pytest.raises(LogError) as err:
        client.check_published(name="acme/tips", version="1.0.0", manifest_sha256=DIGEST)
    assert _code(err) == "log.not_included"
    empty = _client(tmp_path / "other", FakeLog(LOG_KEY))
    with pytest.raises(LogError) as err:
        empty.check_published(name="acme/tips", version="1.0.0", manifest_sha256=DIGEST)
    assert _code(err) == "log.not_included"


def test_replay_reports_unacknowledged_key_events_of_followed_namespaces(tmp_path: Path) -> None:
    log = _log(3)
    log.append("key.register", "beta", keyid="b2")
    log.append("key.revoke", "acme", keyid="k1")
    client = _client(tmp_path, log)
    head, entries = client.replay()
    assert head.size == len(entries) == 5
    unexpected = client.unexpected_key_events(entries, ["acme"])
    assert [(e.index, e.kind) for e in unexpected] == [(0, "key.register"), (4, "key.revoke")]
    client.acknowledge(e.index for e in unexpected)
    assert client.unexpected_key_events(entries, ["acme"]) == []

    class Lying(FakeLog):
        def entries(self, start, end):  # type: ignore[no-untyped-def]
            page = super().entries(start, end)
            page["entries"][0] = FakeLog(LOG_KEY, [b'{"index":0}'])._entry(0)
            return page

    client.source = Lying(LOG_KEY, log.bodies)
    with pytest.raises(LogError) as err:
        client.replay()
    assert _code(err) == "log.inconsistent"


def test_a_log_key_the_pinned_root_does_not_name_is_refused(tmp_path: Path) -> None:
    """With the TUF root's log keys the first-contact pin does not count: root decides."""
    log = _log(3)
    tofu = _client(tmp_path, log)
    tofu.refresh()  # pinned LOG_KEY on first contact (a registry whose root named none)
    other = SigningKey.from_seed(b"R" * 32)
    named = LogVerifier(tmp_path, "http://registry.test", log, root_keys=[other.public_key])
    with pytest.raises(LogError) as err:
        named.refresh()
    assert _code(err) == "log.key_not_in_root"
    # The key root names is taken, though another was pinned before (a rotation via root).
    rotated = FakeLog(other, log.bodies)
    named.source = rotated
    assert named.refresh().size == 3
