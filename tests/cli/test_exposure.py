"""`serve` (and `up`, through its `serve` child) warns at start when other machines can reach an API that has
no token: the function that decides it, with the words the user reads."""

import pytest

from cli.exposure import exposure_warning


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2", "LOCALHOST"])
def test_no_warning_on_loopback_even_without_a_token(host: str) -> None:
    assert exposure_warning(host, None) is None
    assert exposure_warning(host, "") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "my-laptop.local", "10.0.0.5"])
def test_listening_beyond_loopback_without_a_token_is_warned_about(host: str) -> None:
    warning = exposure_warning(host, None)
    assert warning is not None, f"no warning for {host!r} without a token"
    assert warning.startswith("warning: ") and "S2C_API_TOKEN" in warning, warning
    assert "other machines" in warning and "delete models" in warning, warning
    assert "--host 127.0.0.1" in warning, "the warning says how to listen on loopback only"
    assert (host or "every address") in warning, warning
    assert exposure_warning(host, "") == warning, "an empty token is no token"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_a_token_silences_the_warning(host: str) -> None:
    assert exposure_warning(host, "s3cret") is None
