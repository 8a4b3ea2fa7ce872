"""``requires`` resolved transitively from the index: a chain of three, a cycle, an
unsatisfiable range, each refusal naming the chain."""

from __future__ import annotations

from .conftest import Env


def test_chain_of_three_installs_dependencies_first(env: Env) -> None:
    env.publish("c", "1.0.0")
    env.publish("c", "2.0.0")
    env.publish("b", "1.0.0", requires=("c >= 2.0",))
    env.publish("a", "1.0.0", requires=("b >= 1.0", "redis-diagnostics >= 1.0"))
    code, out, err = env.install("a")
    assert code == 0, err
    installed = [ln.split()[1] + " " + ln.split()[2] for ln in out.splitlines()
                 if ln.startswith("installed ")]
    assert installed == ["c 2.0.0", "b 1.0.0", "a 1.0.0"]
    # already met now: installing b again only makes it current
    code, out, _ = env.install("b")
    assert "b 1.0.0 from" in out and "(already installed: made current)" in out
    assert "c 2.0.0" not in out


def test_installed_dependency_that_fits_is_kept(env: Env) -> None:
    env.publish("c", "1.0.0")
    env.publish("b", "1.0.0", requires=("c >= 1.0",))
    assert env.install("c")[0] == 0
    env.publish("c", "1.5.0")
    code, out, _ = env.install("b")
    assert code == 0 and "installed c" not in out


def test_cycle_is_refused_with_its_members(env: Env) -> None:
    env.publish("a", "1.0.0", requires=("b",))
    env.publish("b", "1.0.0", requires=("c",))
    env.publish("c", "1.0.0", requires=("a",))
    code, out, err = env.install("a")
    assert code == 1 and "installed" not in out
    assert err.strip() == ("ksa: error: cannot install a: requirement cycle a -> b -> c -> a "
                           "(via a 1.0.0 -> b 1.0.0 -> c 1.0.0 -> a)")
    assert not (env.home / "plugins").exists()


def test_unsatisfiable_range_names_the_chain(env: Env) -> None:
    # published before any c (the publisher's check only warns of a missing one)
    env.publish("b", "1.0.0", requires=("c >= 3.0",))
    env.publish("c", "1.0.0")
    env.publish("c", "1.5.0")
    env.publish("a", "1.0.0", requires=("b",))
    code, _, err = env.install("a")
    assert (code, err.strip()) == (1, "ksa: error: cannot install a: a 1.0.0 -> b 1.0.0 -> "
                                      "c>=3.0: no version of c satisfies >=3.0 (the index has "
                                      "1.0.0, 1.5.0)")
    assert not (env.home / "plugins").exists()


def test_missing_dependency_and_pinned_version(env: Env) -> None:
    env.publish("a", "1.0.0", requires=("ghost >= 1",))
    code, _, err = env.install("a")
    assert err.strip() == "ksa: error: cannot install a: a 1.0.0 -> ghost>=1: ghost is in no index"
    code, _, err = env.install("a==2.0")
    assert err.strip() == ("ksa: error: cannot install a: a==2.0: no version of a satisfies "
                           "==2.0 (the index has 1.0.0)")


def test_a_plugin_folder_meets_a_requirement(env: Env, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.external.util import write_plugin

    folder = tmp_path / "folder-plugins"
    write_plugin(folder, "local", "3.0.0")
    monkeypatch.setenv("KSA_PLUGIN_PATH", str(folder))
    env.publish("a", "1.0.0", requires=("local >= 3.0",))
    code, out, err = env.install("a")
    assert code == 0, err
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("installed ")] == ["a"]
