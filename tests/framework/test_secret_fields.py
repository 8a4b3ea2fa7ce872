"""Every field that carries a secret is validated as a reference, as ``auth.password``
is, wherever it sits (a target's options, a plugin's config options, nested), and no
error message quotes a value that failed as a reference."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubestack_ai.plugins import MiddlewareTarget, PluginConfig, resolve_secret
from kubestack_ai.plugins.errors import SecretError

LITERAL = "S3nt-hunter2-literal"


def target(**options: object) -> MiddlewareTarget:
    return MiddlewareTarget(type="redis", endpoints=("h:1",), options=options)


@pytest.mark.parametrize(("options", "field"), [
    ({"sentinel_password_ref": LITERAL}, "options.sentinel_password_ref"),
    ({"sasl": {"oauth_token": LITERAL}}, "options.sasl.oauth_token"),
    ({"api_key": LITERAL}, "options.api_key"),
    ({"client_secret": 12345}, "options.client_secret"),
    # inside lists (issue 20 item 6: these were accepted)
    ({"sasl": [{"oauth_token": LITERAL}]}, "options.sasl[0].oauth_token"),
    ({"sentinel_passwords": ["env:S1_PW", LITERAL]}, "options.sentinel_passwords[1]"),
])
def test_secret_looking_option_must_be_a_reference(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        target(**options)
    [err] = e.value.errors(include_input=False, include_url=False)
    assert err["msg"] == (f"Value error, {field} must be a secret reference (env:NAME or "
                          "file:/absolute/path), never the secret itself")
    assert LITERAL not in str(err)


def test_plugin_config_options_too() -> None:
    with pytest.raises(ValidationError, match="options.password must be a secret reference"):
        PluginConfig(options={"password": LITERAL})
    assert PluginConfig(options={"password": "env:P", "timeout": 3}).options["timeout"] == 3


def test_references_and_ordinary_options_pass() -> None:
    t = target(sentinel_password_ref="file:/run/secrets/s", master_name="mymaster",
               token_bucket_size=3, socket_timeout=1.5, password=None,
               sentinel_passwords=["env:S1_PW", "file:/run/secrets/s2"], hosts=["a", "b"])
    assert t.options["sentinel_password_ref"] == "file:/run/secrets/s"


@pytest.mark.parametrize("ref", [LITERAL, "vault:" + LITERAL, "env:" + LITERAL + "!"])
def test_resolving_a_non_reference_never_quotes_it(ref: str) -> None:
    with pytest.raises(SecretError) as e:
        resolve_secret(ref)
    assert LITERAL not in str(e.value)
    assert str(e.value) == ("not a secret reference (use env:NAME, file:/absolute/path or "
                            "exec:/absolute/path); the value is not shown")


def test_a_reference_that_cannot_be_resolved_is_named() -> None:
    with pytest.raises(SecretError, match="secret reference 'env:KSA_NOT_SET_X_PW': environment "
                                          "variable KSA_NOT_SET_X_PW is not set"):
        resolve_secret("env:KSA_NOT_SET_X_PW", {})
