"""Every command, given bad input, fails with one clear line and a non-zero exit: never a
Python traceback. The command tree is walked, so a new command is covered the day it lands."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from stackwatch.cli.main import cli


def leaf_commands() -> list[tuple[list[str], click.Command]]:
    ctx = click.Context(cli)
    found: list[tuple[list[str], click.Command]] = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            if isinstance(command, click.Group):
                walk(command, [*prefix, name])
            else:
                found.append(([*prefix, name], command))

    walk(cli, [])
    return found


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad")
    not_a_folder = root / "plain-file"
    not_a_folder.write_text("this is a file, not a data folder\n")
    garbage = root / "garbage.yaml"
    garbage.write_text("sources: [\n  {type: nosuch, :\n\x00")
    return {"file": str(not_a_folder), "garbage": str(garbage), "missing": str(root / "missing" / "x")}


def bad_arguments(path: list[str], command: click.Command, bad: dict[str, str]) -> list[str]:
    """The command with every input wrong: data folders that are files, configuration files
    that are not YAML, files that do not exist, numbers out of range."""
    args = [*path]
    for param in command.params:
        if isinstance(param, click.Argument):
            if isinstance(param.type, click.types.IntParamType):
                values = ["-7"] * (param.nargs if param.nargs > 0 else 1)
            elif isinstance(param.type, click.Choice):
                values = [param.type.choices[0]]
            elif isinstance(param.type, click.Path) and param.type.exists:
                values = [bad["garbage"]]
            else:
                values = [bad["missing"]]
            args += values
        elif isinstance(param, click.Option) and not param.is_flag:
            flag = param.opts[0]
            if param.name in ("data", "keep"):  # a file where a folder belongs
                args += [flag, bad["file"]]
            elif param.name in ("config", "config_path"):
                args += [flag, bad["garbage"]]
            elif param.required:
                args += [flag, bad["garbage"] if isinstance(param.type, click.Path) else "127.0.0.1:1"]
    return args


def run(args: list[str], tmp: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": os.path.join(tmp, "no-clouds.yaml"), "HOME": tmp}
    env.pop("OS_CLOUD", None)
    return subprocess.run([sys.executable, "-m", "stackwatch", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, cwd=tmp, env=env, check=False)


def test_every_command_reports_bad_input_in_one_line(bad, tmp_path: Path):
    commands = [(path, command) for path, command in leaf_commands() if command.params]
    assert len(commands) > 25
    runs = [bad_arguments(path, command, bad) for path, command in commands]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: (args, run(args, str(tmp_path))), runs))
    failures = []
    for args, done in results:
        output = done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines()
                  if line.startswith(("Error:", "error:", "Usage:"))]
        if done.returncode == 0 or "Traceback" in output or not errors:
            failures.append(f"{' '.join(args)} -> exit {done.returncode}\n{output[-1500:]}")
    assert not failures, "\n\n".join(failures)


WITHOUT_WEB_EXTRAS = """
import sys
for name in ("fastapi", "starlette", "uvicorn", "jinja2"):
    sys.modules[name] = None  # as on `pip install -e .` without extras: importing them fails
from stackwatch.cli.main import cli
cli(sys.argv[1:])
"""


def test_report_auth_runs_without_the_web_extras(seeded_dir: Path, tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_WEB_EXTRAS, "report", "auth", "--data", str(seeded_dir)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Keystone logins" in done.stdout and "Failures by source IP" in done.stdout


def test_report_auth_reports_a_bad_time_in_one_line(seeded_dir: Path, tmp_path: Path):
    done = run(["report", "auth", "--data", str(seeded_dir), "--since", "yesterday"], str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: --since: use ISO 8601 (2026-03-02T08:00) or a span like 24h"]


@pytest.mark.parametrize(("cloud", "message"), [
    ([], "Error: no cloud to connect to"),
    (["--cloud", "nosuch"], "Error: cloud nosuch: Cloud nosuch was not found."),
])
def test_orphans_without_a_cloud_to_reach_says_so_in_one_line(cloud: list[str], message: str, tmp_path: Path):
    done = run(["orphans", "--dry-run", "--data", str(tmp_path / "data"), *cloud], str(tmp_path))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert "Traceback" not in done.stderr


def test_an_unexpected_error_is_one_line_unless_debugging(tmp_path: Path):
    # a data folder that is a file: users.db cannot be created in it
    (tmp_path / "data").write_text("")
    done = run(["user", "list", "--data", str(tmp_path / "data")], str(tmp_path))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "stackwatch", "user", "list", "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "STACKWATCH_DEBUG": "1"})
    assert "Traceback" in debug.stderr
