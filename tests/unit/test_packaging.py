"""The package finds its schemas and example files without a checkout, and every hint it prints
names a command that runs this installation (`bridge` is also iproute2's program)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge import command as command_module
from bridge.cli import main
from bridge.resources import example_channels_file, example_simulator_file, schemas_dir
from bridge.schemas import load_schema, schema_dir
from bridge.settings import Settings
from tests.conftest import ROOT, TEST_ENV


def test_packaged_resources_are_the_repository_folders_in_a_checkout() -> None:
    assert example_channels_file() == (ROOT / "config" / "channels.yaml").resolve()
    assert example_simulator_file() == (ROOT / "config" / "simulator.yaml").resolve()
    assert schemas_dir() == (ROOT / "schemas").resolve()


def test_every_file_of_schemas_and_config_is_reachable_as_a_resource() -> None:
    for folder in ("schemas", "config"):
        files = [p.relative_to(ROOT / folder) for p in (ROOT / folder).rglob("*") if p.is_file()]
        assert files
        for relative in files:
            packaged = ROOT / "bridge" / "_resources" / folder / relative
            assert packaged.is_file(), f"{folder}/{relative} does not ship in the package"


def test_pyproject_ships_the_resources_and_json_in_any_subpackage() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"_resources/**/*"' in text and '"**/*.json"' in text


def test_schemas_dir_override_still_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "channels.json").write_text('{"title": "override"}')
    monkeypatch.setenv("BRIDGE_SCHEMAS_DIR", str(tmp_path))
    assert schema_dir() == tmp_path
    assert load_schema("channels") == {"title": "override"}


def test_without_a_local_config_folder_the_bundled_examples_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.config_path == example_channels_file()
    assert settings.simulator_config == example_simulator_file()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "channels.yaml").write_text("version: 1\n")
    assert Settings.from_env({}).config_path == Path("config/channels.yaml")
    assert Settings.from_env({"BRIDGE_CONFIG": "/etc/bridge.yaml"}).config_path == Path("/etc/bridge.yaml")


def test_check_config_outside_a_checkout_checks_the_bundled_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["check-config"])
    assert result.exit_code == 0, result.output
    assert f"{example_channels_file()}: OK (3 channel(s)" in result.output


def _venv(tmp_path: Path, with_script: bool) -> Path:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("")
    if with_script:
        (bin_dir / "fba-bridge").write_text("")
    return bin_dir


def test_hints_name_the_venv_script_when_the_shell_would_not_find_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = _venv(tmp_path, with_script=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    assert command_module.command() == ".venv/bin/fba-bridge"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert command_module.command() == str(bin_dir / "fba-bridge")


def test_hints_use_the_bare_name_when_it_is_this_installation_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = _venv(tmp_path, with_script=True)
    (bin_dir / "fba-bridge").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert command_module.command() == "fba-bridge"


def test_hints_fall_back_to_python_m_bridge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _venv(tmp_path, with_script=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    assert command_module.command() == ".venv/bin/python -m bridge"


def test_python_m_bridge_is_the_fba_bridge_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: fba-bridge ")
    assert "check-config" in result.stdout and "demo" in result.stdout


def _bare_commands(lines: list[str]) -> list[tuple[int, str]]:
    return [
        (number, line.strip())
        for number, line in enumerate(lines, 1)
        if "`bridge " in line or '"bridge ' in line or "'bridge " in line
    ]


def test_no_hint_or_message_in_the_code_names_the_bare_bridge_command() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line}"
        for path in sorted((ROOT / "bridge").rglob("*.py"))
        for number, line in _bare_commands(path.read_text(encoding="utf-8").splitlines())
    ]
    assert not offenders, "\n".join(offenders)


def test_the_readme_documents_fba_bridge() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/fba-bridge demo" in text
    # Deployment and Going live are written elsewhere (their own check lives with them).
    sections = re.split(r"(?m)^(?=## )", text)
    checked = [s for s in sections if not s.startswith(("## Deployment", "## Going live"))]
    lines = "\n".join(checked).splitlines()
    assert not _bare_commands(lines), "use `fba-bridge ...` in the README"
