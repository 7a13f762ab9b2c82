import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.settings import Secret, Settings, SettingsError, mask_url, normalise_database_url
from bridge.storefronts.push import PushError, check_destination
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV


def test_heroku_style_database_urls_are_accepted_and_logged_masked() -> None:
    url = normalise_database_url("postgres://app:s3cr3t@db.example.com:5432/prod")
    assert url == "postgresql+psycopg://app:s3cr3t@db.example.com:5432/prod"
    assert mask_url(url) == "postgresql+psycopg://app:***@db.example.com:5432/prod"
    settings = Settings.from_env({"DATABASE_URL": "postgres://app:s3cr3t@db.example.com/prod"})
    assert "s3cr3t" not in repr(settings)
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        normalise_database_url("mysql://x")


def test_secrets_never_show_in_reprs() -> None:
    secret = Secret("hunter2-value")
    assert "hunter2" not in repr(secret) and "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-value"


def test_bad_numbers_in_the_environment_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="PORT"):
        Settings.from_env({"PORT": "eighty"})
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        Settings.from_env({"LOG_LEVEL": "chatty"})


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example.com/x",
        "https://127.0.0.1/admin",
        "https://169.254.169.254/latest",
        "https://10.1.2.3/",
        "https://localhost/x",
        "https://user:pw@shop.example.com/",
    ],
)
def test_storefront_calls_refuse_unsafe_destinations(url: str) -> None:
    with pytest.raises(PushError) as info:
        check_destination(url, allow_local=False)
    assert info.value.code == "unsafe_url" and not info.value.retryable


def test_local_test_servers_are_allowed_only_when_marked() -> None:
    check_destination("http://127.0.0.1:8701/admin", allow_local=True)


def test_check_config_reports_ok_and_problems(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    ok = runner.invoke(main, ["check-config", str(EXAMPLE_CONFIG)])
    assert ok.exit_code == 0 and "OK (3 channel(s), 1 Amazon account(s))" in ok.output
    bad = tmp_path / "channels.yaml"
    bad.write_text("version: 2\nchannels: []\n")
    result = runner.invoke(main, ["check-config", str(bad)])
    assert result.exit_code == 1
    assert "channels.yaml:1: version" in result.output and "channels.yaml:2: channels" in result.output


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql+psycopg://app:s3cr3t@db.example.com:5432/prod", "s3cr3t"),
        ("postgresql+psycopg://app@db.example.com/prod?password=s3cr3t", "s3cr3t"),
        ("postgresql+psycopg://app@db.example.com/prod?sslmode=require&sslpassword=s3cr3t", "s3cr3t"),
        ("postgresql+psycopg://app@db.example.com/prod?PassWord=s3cr3t;sslmode=require", "s3cr3t"),
        ("postgresql+psycopg://app:s3cr3t@h1:5432,h2:5432/prod", "s3cr3t"),
        ("postgresql+psycopg://app:s%40cr3t@db.example.com/prod", "s%40cr3t"),
        ("postgresql+psycopg://:s3cr3t@db.example.com/prod", "s3cr3t"),
        ("postgresql+psycopg://app:p@ss:w0rd@db.example.com/prod", "ss:w0rd"),
        ("postgresql+psycopg://app@db/prod?options=x&auth_token=s3cr3t", "s3cr3t"),
        ("host=db password=s3cr3t dbname=prod", "s3cr3t"),
    ],
)
def test_every_credential_form_of_a_database_url_is_masked(url: str, secret: str) -> None:
    masked = mask_url(url)
    assert secret not in masked
    assert "s3cr3t" not in masked


def test_masking_keeps_what_an_operator_needs_to_recognise_the_database() -> None:
    masked = mask_url("postgresql+psycopg://app@db.example.com:5432/prod?sslmode=require&password=x1")
    assert masked == "postgresql+psycopg://app@db.example.com:5432/prod?sslmode=require&password=***"


def test_an_unsupported_database_url_never_echoes_its_password() -> None:
    with pytest.raises(SettingsError) as caught:
        normalise_database_url("host=db password=s3cr3t dbname=prod")
    assert "s3cr3t" not in str(caught.value)
    settings = Settings.from_env({"DATABASE_URL": "postgres://app@db.example.com/prod?password=s3cr3t"})
    assert "s3cr3t" not in repr(settings)


def test_database_errors_show_the_url_with_every_credential_masked() -> None:
    from bridge.migrate import DatabaseNotReady, open_ready

    url = "postgresql+psycopg://app:pw1@127.0.0.1:1/prod?password=s3cr3t&connect_timeout=1"
    with pytest.raises(DatabaseNotReady) as caught:
        open_ready(url)
    assert "s3cr3t" not in str(caught.value) and "pw1" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
