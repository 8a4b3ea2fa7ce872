"""Each refusal: one clear line, nothing installed (tampered artifact, index, signature;
unsigned, unknown key, expired, replayed, reused serial; a version signed by a key that is
not pinned; a manifest or scan report that differs from the artifact's)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from kubestack_ai.plugins.index import document, publish
from kubestack_ai.plugins.index.keys import generate, load_signing_key

from .conftest import Env


def refused(env: Env, wanted: str = "fx") -> str:
    code, out, err = env.install(wanted)
    assert code == 1, out
    assert not (env.home / "plugins" / "fx").exists() or not any(
        p.name[0].isdigit() for p in (env.home / "plugins" / "fx").iterdir())
    assert "installed" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def resign(env: Env, change) -> None:  # type: ignore[no-untyped-def]
    """The publisher signs a changed document (a new serial)."""
    doc = publish.load(env.index)
    change(doc)
    publish.save(env.index, doc, load_signing_key(env.key), 30)


def test_tampered_artifact(env: Env) -> None:
    env.publish("fx")
    art = env.index / "artifacts" / "fx-1.0.0.tar.gz"
    data = bytearray(art.read_bytes())
    data[-20] ^= 0xFF
    art.write_bytes(bytes(data))
    line = refused(env)
    assert line.startswith("ksa: error: fx 1.0.0: artifact artifacts/fx-1.0.0.tar.gz has "
                           "SHA-256 ")
    assert line.endswith("tampered or corrupted, refused (nothing installed)")


def test_tampered_index(env: Env) -> None:
    env.publish("fx")
    p = env.index / "index.json"
    p.write_bytes(p.read_bytes().replace(b'"size":', b'"size": '))
    key = load_signing_key(env.key).keyid
    assert refused(env) == (f"ksa: error: index {env.url}: the signature by key {key} does not "
                            "verify (the index was changed after signing): refused")


def test_tampered_signature(env: Env) -> None:
    env.publish("fx")
    p = env.index / "index.json.sig"
    sig = json.loads(p.read_bytes())
    s = sig["signatures"][0]["sig"]
    sig["signatures"][0]["sig"] = ("A" if s[0] != "A" else "B") + s[1:]
    p.write_text(json.dumps(sig))
    assert "does not verify (the index was changed after signing): refused" in refused(env)


def test_unsigned_index(env: Env) -> None:
    env.publish("fx")
    (env.index / "index.json.sig").unlink()
    assert refused(env) == (f"ksa: error: index {env.url} is unsigned (no index.json.sig): "
                            "refused; only signed indexes are read")


def test_unknown_key(env: Env) -> None:
    env.publish("fx")
    (env.home / "trusted_keys" / "publisher.pub").unlink()
    _, other, kid = generate(env.home / "trusted_keys" / "someone-else")
    key = load_signing_key(env.key).keyid
    assert refused(env) == (f"ksa: error: index {env.url} is signed by unknown key(s) {key}: "
                            "refused; pin the publisher's .pub in $KSA_HOME/trusted_keys/ or "
                            "KSA_INDEX_KEYS to trust it")


def test_key_pinned_by_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.publish("fx")
    (env.home / "trusted_keys" / "publisher.pub").unlink()
    assert "no trusted index key on this machine" in refused(env)
    monkeypatch.setenv("KSA_INDEX_KEYS", str(env.pub))
    assert env.install("fx")[0] == 0


def test_expired_index(env: Env) -> None:
    env.publish("fx")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    doc = publish.load(env.index)
    publish.save(env.index, doc, load_signing_key(env.key), 1, now=past)
    serial = doc["serial"]
    assert refused(env) == (f"ksa: error: index {env.url} (serial {serial}) expired at "
                            f"{doc['expires']}: a frozen index is refused; its publisher "
                            "re-signs it (`ksa index sign`)")


def test_replayed_older_index(env: Env, tmp_path: Path) -> None:
    env.publish("fx", "1.0.0")
    old = tmp_path / "old"
    shutil.copytree(env.index, old)
    old_serial = publish.load(old)["serial"]
    env.publish("fx", "1.1.0")
    new_serial = publish.load(env.index)["serial"]
    assert env.ksa("plugin", "search", "--index", env.url)[0] == 0  # seen: the new serial
    for name in ("index.json", "index.json.sig"):
        shutil.copy(old / name, env.index / name)  # an attacker serves the old, signed copy
    assert refused(env) == (f"ksa: error: index {env.url}: serial {old_serial} is older than "
                            f"serial {new_serial} seen before: a replayed index is refused (if "
                            "its publisher really started over, remove its entry from "
                            "$KSA_HOME/index-state.json)")


def test_same_serial_other_content(env: Env) -> None:
    env.publish("fx")
    assert env.ksa("plugin", "search", "--index", env.url)[0] == 0
    doc = publish.load(env.index)
    doc["serial"] -= 1  # save() raises it back to the serial already seen
    doc["plugins"]["fx"]["versions"]["1.0.0"]["categories"] = ["other"]
    publish.save(env.index, doc, load_signing_key(env.key), 30)
    assert "was seen before with other content: refused" in refused(env)


def test_version_signed_by_a_key_not_pinned(env: Env, tmp_path: Path) -> None:
    env.publish("fx")
    stranger = load_signing_key(generate(tmp_path / "stranger")[0])

    def swap(doc):  # type: ignore[no-untyped-def]
        e = doc["plugins"]["fx"]["versions"]["1.0.0"]
        e["key"] = stranger.keyid
        e["signature"] = stranger.sign(document.version_payload(e))
    resign(env, swap)
    assert refused(env) == (f"ksa: error: fx 1.0.0 is signed by key {stranger.keyid}, which is "
                            "not pinned here: refused; pin its .pub in $KSA_HOME/trusted_keys/ "
                            "or KSA_INDEX_KEYS to trust it")


def test_version_entry_changed_after_its_signature(env: Env) -> None:
    env.publish("fx")
    resign(env, lambda doc: doc["plugins"]["fx"]["versions"]["1.0.0"].update(requires=["x"]))
    key = load_signing_key(env.key).keyid
    assert refused(env) == (f"ksa: error: fx 1.0.0: its signature by key {key} does not verify "
                            "(the entry was changed after signing): refused")


def _resign_entry(env: Env, change) -> None:  # type: ignore[no-untyped-def]
    key = load_signing_key(env.key)

    def fn(doc):  # type: ignore[no-untyped-def]
        e = doc["plugins"]["fx"]["versions"]["1.0.0"]
        change(e)
        e["signature"] = key.sign(document.version_payload(e))
    resign(env, fn)


def test_manifest_differs_from_the_index(env: Env) -> None:
    env.publish("fx")
    _resign_entry(env, lambda e: e["manifest"].update(description="something else"))
    assert refused(env) == ("ksa: error: fx 1.0.0: the artifact's manifest differs from the "
                            "index's in description: refused")


def test_scan_report_differs_from_the_artifact(env: Env) -> None:
    env.publish("fx", top="import subprocess")
    _resign_entry(env, lambda e: e.update(scan=[]))
    assert refused(env) == ("ksa: error: fx 1.0.0: the scan of the artifact differs from the "
                            "report the index recorded (process plugin.py:10): refused "
                            "(nothing installed)")


def test_published_version_never_changes(env: Env) -> None:
    folder = env.publish("fx")
    (folder / "plugin.py").write_text((folder / "plugin.py").read_text() + "\n# more\n")
    code, _, err = env.ksa("index", "add", str(folder), "--index", str(env.index), "--key",
                           str(env.key))
    assert (code, err.strip()) == (1, "ksa: error: fx 1.0.0 is already in the index with other "
                                      "content: a published version never changes; publish a "
                                      "new version")


def test_artifact_path_outside_the_index(env: Env) -> None:
    env.publish("fx")
    _resign_entry(env, lambda e: e.update(artifact="../../etc/passwd"))
    assert refused(env) == ("ksa: error: fx: artifact '../../etc/passwd' is not a path inside "
                            "the index: refused")


def test_keygen_private_half_is_0600_and_never_overwritten(env: Env) -> None:
    import stat

    assert stat.S_IMODE(env.key.stat().st_mode) == 0o600
    before = env.key.read_bytes()
    code, _, err = env.ksa("index", "keygen", str(env.key.with_suffix("")))
    assert (code, err.strip()) == (1, f"ksa: error: {env.key} exists: a key is never "
                                      "overwritten (choose another name)")
    assert env.key.read_bytes() == before
