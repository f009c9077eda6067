import pytest

from vidfleet_common.errors import ConfigError
from vidfleet_common.settings import load_settings, masked, scrub_url, unknown_env_vars


def test_unknown_vidfleet_variable_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLEET_KEY_PREFX", "x:")
    assert unknown_env_vars() == ["VIDFLEET_KEY_PREFX"]
    with pytest.raises(ConfigError, match="VIDFLEET_KEY_PREFX"):
        load_settings()


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLEET_KEY_PREFIX", "fleet7:")
    monkeypatch.setenv("CELERY_BROKER_URL", "rediss://:s3cret@redis.example:6380/0")
    monkeypatch.setenv("VIDFLEET_API_TOKEN", "tok-123")
    settings = load_settings()
    assert settings.key_prefix == "fleet7:"
    shown = masked(settings)
    assert "s3cret" not in str(shown) and "tok-123" not in str(shown)
    assert shown["broker_url"] == "rediss://***@redis.example:6380/0"
    assert shown["api_token"] == "***"


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLEET_INPUT_ROOTS", "/data/a, /data/b")
    assert [str(p) for p in load_settings().input_roots] == ["/data/a", "/data/b"]


def test_wrong_type_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLEET_KEY_PREFIX", "")
    with pytest.raises(ConfigError, match="setting 'key_prefix'"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:pw@cam1/stream", "rtsp://***@cam1/stream"),
        ("open http://u@host/x and redis://:p@r:6379", "open http://***@host/x and redis://***@r:6379"),
        ("no credentials http://host/a@b", "no credentials http://host/a@b"),
    ],
)
def test_scrub_url(text: str, expected: str) -> None:
    assert scrub_url(text) == expected
