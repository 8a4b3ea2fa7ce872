"""A secret reference resolves only where the operator allowed: ``file:`` under the secret
directories (symlinks resolved), ``env:`` for allowed name patterns. Anything else is
refused before any connection, naming the rule and how to allow it, never the value or
the file's content (issue 20, item 2)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack_ai.plugins import Auth, MiddlewareTarget, PluginManager, SecretError, resolve_secret
from kubestack_ai.plugins.secrets import SecretPolicy, check_target_references

CONTENT = "c0ntent-0f-the-file"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A process environment: KSA_HOME under tmp, nothing else configured."""
    return {"KSA_HOME": str(tmp_path / "home"), "HOME": "/root", "DB_PASSWORD": "pw-1"}


def dirs(env: dict[str, str]) -> str:
    return ", ".join(SecretPolicy.from_env(env).dirs)


def test_file_outside_the_secret_directories_is_refused(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    outside = tmp_path / "loose"
    outside.write_text(CONTENT)
    for path in ("/etc/shadow", "/etc/passwd", str(outside)):
        with pytest.raises(SecretError) as e:
            resolve_secret(f"file:{path}", env)
        assert str(e.value) == (
            f"file:{path} refused: not under an allowed secret directory ({dirs(env)}) once "
            "symlinks are resolved; add its directory to KSA_SECRET_DIRS (:-separated)")
        assert CONTENT not in str(e.value)
    assert dirs(env) == f"/run/secrets, {os.path.realpath(tmp_path / 'home' / 'secrets')}"


def test_files_under_allowed_directories_resolve(env: dict[str, str], tmp_path: Path) -> None:
    home_secrets = tmp_path / "home" / "secrets"
    home_secrets.mkdir(parents=True)
    (home_secrets / "a").write_text("from-home\n")
    extra1, extra2 = tmp_path / "vault1", tmp_path / "vault2"
    for d in (extra1, extra2):
        d.mkdir()
        (d / "b").write_text(f"from-{d.name}")
        (d / "b").chmod(0o600)
    (home_secrets / "a").chmod(0o600)
    assert resolve_secret(f"file:{home_secrets / 'a'}", env) == "from-home"
    with pytest.raises(SecretError, match="refused: not under an allowed secret directory"):
        resolve_secret(f"file:{extra1 / 'b'}", env)
    env["KSA_SECRET_DIRS"] = f"{extra1}{os.pathsep}{extra2}/"
    assert resolve_secret(f"file:{extra1 / 'b'}", env) == "from-vault1"
    assert resolve_secret(f"file:{extra2 / 'b'}", env) == "from-vault2"
    # the directory itself, and a sibling whose name starts the same, are not under it
    with pytest.raises(SecretError, match="refused"):
        resolve_secret(f"file:{extra1}", env)
    sibling = tmp_path / "vault1x"
    sibling.mkdir()
    (sibling / "b").write_text(CONTENT)
    with pytest.raises(SecretError, match="refused"):
        resolve_secret(f"file:{sibling / 'b'}", env)


def test_symlinks_are_resolved_before_the_check(env: dict[str, str], tmp_path: Path) -> None:
    allowed = tmp_path / "home" / "secrets"
    allowed.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_text(CONTENT)
    (allowed / "leak").symlink_to(outside)
    (allowed / "up").symlink_to(tmp_path)
    for ref in (f"file:{allowed / 'leak'}", f"file:{allowed}/up/outside",
                f"file:{allowed}/../outside"):
        with pytest.raises(SecretError) as e:
            resolve_secret(ref, env)
        assert str(e.value).startswith(f"{ref} refused: not under an allowed secret directory")
        assert CONTENT not in str(e.value) and str(outside) not in str(e.value)
    # a link that stays inside (Kubernetes' ..data/x layout) is fine
    (allowed / "..data").mkdir()
    (allowed / "..data" / "pw").write_text("k8s")
    (allowed / "..data" / "pw").chmod(0o400)
    (allowed / "pw").symlink_to(allowed / "..data" / "pw")
    assert resolve_secret(f"file:{allowed / 'pw'}", env) == "k8s"


def test_env_names_outside_the_allowed_patterns_are_refused(env: dict[str, str]) -> None:
    assert resolve_secret("env:DB_PASSWORD", env) == "pw-1"
    env.update(PGPASSWORD="pg", MYSQL_PWD="my", REDIS_PW="r", GH_TOKEN="t", APP_SECRET="s",
               SVC_API_KEY="k")
    for name in ("PGPASSWORD", "MYSQL_PWD", "REDIS_PW", "GH_TOKEN", "APP_SECRET", "SVC_API_KEY"):
        assert resolve_secret(f"env:{name}", env) == env[name]
    for name in ("HOME", "KSA_DATABASE_URL", "KSA_HOME", "PATH"):
        with pytest.raises(SecretError) as e:
            resolve_secret(f"env:{name}", env)
        assert str(e.value) == (
            f"env:{name} refused: {name} matches no allowed secret name pattern (*PASSWORD, "
            "*PASSWD, *_PWD, *_PW, *_TOKEN, *_SECRET, *_API_KEY); add a pattern to "
            f"KSA_SECRET_ENV (comma-separated, e.g. KSA_SECRET_ENV={name})")
        assert "/root" not in str(e.value)
    env["KSA_SECRET_ENV"] = "HOME, VAULT_*"
    env["VAULT_X"] = "v"
    assert resolve_secret("env:HOME", env) == "/root"
    assert resolve_secret("env:VAULT_X", env) == "v"
    # refused names are refused whether set or not (no oracle)
    with pytest.raises(SecretError, match="env:NOT_SET_ANYWHERE refused"):
        resolve_secret("env:NOT_SET_ANYWHERE", env)


def test_readable_by_group_or_others_is_warned_once(env: dict[str, str], tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    allowed = tmp_path / "home" / "secrets"
    allowed.mkdir(parents=True)
    loose, tight = allowed / "loose", allowed / "tight"
    loose.write_text(CONTENT)
    tight.write_text("t")
    loose.chmod(0o644)
    tight.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="kubestack_ai.plugins.secrets"):
        for _ in range(3):
            assert resolve_secret(f"file:{loose}", env) == CONTENT
            assert resolve_secret(f"file:{tight}", env) == "t"
    assert [r.getMessage() for r in caplog.records] == [
        f"secret file {loose} is readable by group and others (mode 0644): chmod go-r {loose}"]


def test_every_reference_of_a_target_is_checked(env: dict[str, str]) -> None:
    t = MiddlewareTarget(type="redis", endpoints=("h:1",),
                         auth=Auth(username="u", password="env:REDIS_PASSWORD"),
                         options={"sentinel_password_ref": "file:/etc/shadow"})
    with pytest.raises(SecretError) as e:
        check_target_references(t, env)
    assert str(e.value).startswith("options.sentinel_password_ref: file:/etc/shadow refused: "
                                   "not under an allowed secret directory")
    nested = t.model_copy(update={"options": {"sasl": [{"oauth_token": "env:HOME"}]}})
    with pytest.raises(SecretError, match=r"^options.sasl\[0\].oauth_token: env:HOME refused"):
        check_target_references(nested, env)


class Listener:
    """A TCP port that counts the connections made to it (and answers nothing)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


ACTION = {"redis": ("slowlog_reset", {}, ()), "kafka": ("describe_group", {"group": "g"}, ()),
          "mysql": ("kill_long_queries", {"min_seconds": 60}, ("kill_long_queries",))}


@pytest.mark.parametrize("mtype", ["redis", "kafka", "mysql"])
@pytest.mark.parametrize(("ref", "rule"), [
    ("file:/etc/shadow", "not under an allowed secret directory"),
    ("env:HOME", "HOME matches no allowed secret name pattern"),
])
def test_refused_before_any_connection(listener: Listener, mtype: str, ref: str,
                                       rule: str) -> None:
    """Diagnose, health check and action (the CLI's and the tasks' one path) of every
    builtin: the refusal is a config error, and nothing reached the endpoint."""
    manager = PluginManager()
    t = MiddlewareTarget(type=mtype, name="x", endpoints=(f"127.0.0.1:{listener.port}",),
                         auth=Auth(username="u", password=ref))
    for result in (manager.diagnose(t, timeout=5), manager.health_check(t, timeout=5)):
        assert result.errors == {"_config": f"auth.password: {ref} refused: " + result.errors[
            "_config"].split(" refused: ", 1)[1]}
        assert rule in result.errors["_config"]
    name, params, allow = ACTION[mtype]
    action = manager.execute(t, name, params, allow=allow)
    assert isinstance(action.error, SecretError)
    assert str(action.error).startswith(f"auth.password: {ref} refused: ")
    assert rule in str(action.error)
    assert listener.accepted == 0
    manager.stop_all()


def test_the_cli_applies_the_same_rule(tmp_path: Path, listener: Listener) -> None:
    """``ksa diagnose``, ``ksa action`` and ``ksa serve``: the refusal names the rule and
    the variable to set; nothing reached the endpoint; ``serve`` does not start."""
    from tests.conftest import ksa_env, run_ksa

    env = ksa_env(tmp_path)
    rule = (f"file:/etc/shadow refused: not under an allowed secret directory (/run/secrets, "
            f"{os.path.realpath(tmp_path / 'secrets')}) once symlinks are resolved; add its "
            "directory to KSA_SECRET_DIRS (:-separated)")
    ep = f"127.0.0.1:{listener.port}"
    p = run_ksa("diagnose", "redis", ep, "--password-ref", "file:/etc/shadow", env=env)
    assert p.returncode == 3 and f"_config: auth.password: {rule}" in p.stdout, p.stdout
    p = run_ksa("action", "redis", ep, "slowlog_reset", "--password-ref", "file:/etc/shadow",
                env=env)
    assert "REFUSED" in p.stdout and f"error: auth.password: {rule}" in p.stdout, p.stdout
    p = run_ksa("serve", "--user", "ops", "--password-ref", "file:/etc/shadow", env=env)
    assert p.returncode == 2 and p.stderr.strip() == f"ksa: error: serve: {rule}"
    assert listener.accepted == 0
    assert "root:" not in p.stdout + p.stderr


def test_the_policy_follows_its_variables_within_a_process(
        env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy is built once per set of its variables' values (every connect checks a
    target's references): a change of KSA_SECRET_DIRS or KSA_SECRET_ENV still applies to
    the next check, and a target without references builds none."""
    extra = tmp_path / "vault"
    extra.mkdir()
    (extra / "pw").write_text(CONTENT)
    with pytest.raises(SecretError):
        resolve_secret(f"file:{extra / 'pw'}", env)
    assert resolve_secret(f"file:{extra / 'pw'}", {**env, "KSA_SECRET_DIRS": str(extra)}) == CONTENT
    with pytest.raises(SecretError):
        resolve_secret(f"file:{extra / 'pw'}", env)  # the variable gone again: refused
    assert resolve_secret("env:DB_PASSWORD", env) == "pw-1"
    with pytest.raises(SecretError):
        resolve_secret("env:MY_PW_VAR", {**env, "MY_PW_VAR": "x"})
    assert resolve_secret("env:MY_PW_VAR", {**env, "MY_PW_VAR": "x",
                                            "KSA_SECRET_ENV": "MY_PW_*"}) == "x"

    def no_policy(*_: object) -> SecretPolicy:
        raise AssertionError("a policy was built for a target without references")

    monkeypatch.setattr(SecretPolicy, "from_env", no_policy)
    check_target_references(MiddlewareTarget(type="redis", endpoints=("127.0.0.1:6379",)), env)
