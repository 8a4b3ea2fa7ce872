import pytest

from kubestack_ai.plugins import SecretError, resolve_secret
from kubestack_ai.plugins.secrets import redact


def test_env_and_file_references(tmp_path):
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    f.chmod(0o600)
    assert resolve_secret("env:KSA_T_PASSWORD", {"KSA_T_PASSWORD": "x"}) == "x"
    assert resolve_secret(f"file:{f}", {"KSA_SECRET_DIRS": str(tmp_path)}) == "s3cret"
    assert resolve_secret(None) is None


def test_errors_name_the_reference_never_a_value(tmp_path):
    with pytest.raises(SecretError,
                       match=r"secret reference 'env:NOPE_X_PW': environment variable NOPE_X_PW is not set"):
        resolve_secret("env:NOPE_X_PW", {})
    with pytest.raises(SecretError,
                       match=f"cannot read {tmp_path}/nonexistent: No such file or directory"):
        resolve_secret(f"file:{tmp_path}/nonexistent", {"KSA_SECRET_DIRS": str(tmp_path)})


def test_redact():
    assert redact("auth failed for s3cret", "s3cret", None) == "auth failed for ***"
