import pytest

from kubestack_ai.plugins import SecretError, resolve_secret
from kubestack_ai.plugins.secrets import redact


def test_env_and_file_references(tmp_path):
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    assert resolve_secret("env:KSA_T", {"KSA_T": "x"}) == "x"
    assert resolve_secret(f"file:{f}") == "s3cret"
    assert resolve_secret(None) is None


def test_errors_name_the_reference_never_a_value(tmp_path):
    with pytest.raises(SecretError,
                       match=r"secret reference 'env:NOPE_X': environment variable NOPE_X is not set"):
        resolve_secret("env:NOPE_X", {})
    with pytest.raises(SecretError, match="cannot read /nonexistent/pw: No such file or directory"):
        resolve_secret("file:/nonexistent/pw")


def test_redact():
    assert redact("auth failed for s3cret", "s3cret", None) == "auth failed for ***"
