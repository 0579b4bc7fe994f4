"""The compiled hot paths (mypyc, built at install when it can) and the pure-Python path
give the same output, and the switch between them works.

The comparison runs the whole pipeline (parse, detect, store) twice, in separate processes
(the switch is read at import): over the benchmark's generated corpus, the demo scenario and
the shared real-world corpus (STACKWATCH_CORPUS), and compares every event, the alerts and
the stored events. The parser and rule vectors are the other half: `.ci/run` runs the
parser, detection and rule tests once more with STACKWATCH_PURE_PYTHON=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stackwatch import accel

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STACKWATCH_CORPUS", ROOT.parent / "shared" / "corpus"))


def _env(pure: bool) -> dict[str, str]:
    env = {**os.environ, accel.ENV: "1" if pure else "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _python(code: str, *, pure: bool) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=_env(pure), capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return done.stdout.strip()


def _compiled_here() -> list[str]:
    return json.loads(_python("import json; from stackwatch import accel; "
                              "print(json.dumps(accel.compiled_modules()))", pure=False))


@pytest.fixture(scope="module")
def compiled() -> list[str]:
    """The compiled modules of this install. CI installs with a compiler and headers, so
    there the build must have happened; elsewhere a pure install skips the comparison."""
    names = _compiled_here()
    if not names:
        if os.environ.get("CI"):
            pytest.fail("no compiled hot module in CI: `pip install -e .` should have built them (setup.py)")
        pytest.skip("the compiled hot modules are not built here (python setup.py build_ext --inplace)")
    return names


def _run(folders: list[Path], data: Path, *, pure: bool) -> dict[str, dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "tests.accel_run", str(data), *map(str, folders)],
                          env=_env(pure), capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_compiled_and_pure_python_give_identical_events_alerts_and_store(compiled: list[str],
                                                                          tmp_path: Path) -> None:
    from stackwatch.scenario import demo_dataset, generate

    bench = tmp_path / "bench"
    generate(bench, seed=7, lines=20_000)  # the benchmark's generator (its corpora are 100k+ lines)
    folders = [bench, demo_dataset(tmp_path / "demo")]
    if SHARED.is_dir():
        folders.append(SHARED)
    fast = _run(folders, tmp_path / "data-compiled", pure=False)
    slow = _run(folders, tmp_path / "data-pure", pure=True)
    for folder in map(str, folders):
        assert fast[folder].pop("path") == f"compiled (mypyc): {len(compiled)} of {len(compiled)} modules"
        assert slow[folder].pop("path") == f"pure Python ({accel.ENV}=1)"
        assert fast[folder] == slow[folder], folder
        assert fast[folder]["events"] == fast[folder]["stored"] > 1000
        assert fast[folder]["records"] == fast[folder]["rows"] == fast[folder]["stored"]
    assert fast[str(folders[1])]["alerts"] > 10  # the demo's attacks were detected, by both


def test_the_switch_keeps_every_compiled_module_out() -> None:
    out = json.loads(_python("import json; from stackwatch import accel; "
                             "import stackwatch.parsers.oslo_log as m; "
                             "print(json.dumps([accel.compiled_modules(), accel.status(), m.__file__]))",
                             pure=True))
    assert out[0] == []
    assert out[1] == f"pure Python ({accel.ENV}=1)"
    assert out[2].endswith("oslo_log.py")


def test_every_listed_module_exists_as_source() -> None:
    names = accel.module_names()
    assert "stackwatch.parsers.oslo_log" in names
    for name in names:
        assert (ROOT / "src" / (name.replace(".", "/") + ".py")).is_file(), name


def test_a_stale_build_runs_the_sources(compiled: list[str], tmp_path: Path) -> None:
    """A checkout edited after its build runs the edited sources, never the old build."""
    package = tmp_path / "src" / "stackwatch"
    shutil.copytree(ROOT / "src" / "stackwatch", package)
    source = package / "parsers" / "framing.py"
    source.write_text(source.read_text() + "\n# edited after the build\n")
    code = ("import json; from stackwatch import accel; import stackwatch.parsers.framing as m; "
            "print(json.dumps([accel.stale_build(), accel.compiled_modules(), m.__file__]))")
    env = {**_env(False), "PYTHONPATH": str(tmp_path / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                          cwd=tmp_path)
    stale, running, path = json.loads(done.stdout)
    assert stale is True and running == [] and path.endswith("framing.py")


def test_a_failed_build_installs_the_pure_python_path(tmp_path: Path) -> None:
    """No working C compiler (CC points at `false`): setup.py's build ends well, with a
    warning, and builds no extension."""
    false = shutil.which("false")
    assert false is not None
    env = {**os.environ, "CC": false, "LDSHARED": false}
    env.pop(accel.ENV, None)
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib",
                           str(tmp_path / "lib"), "--build-temp", str(tmp_path / "tmp")], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "installing the pure-Python path" in done.stderr
    assert not list((tmp_path / "lib").rglob("*.so"))


@pytest.mark.parametrize("pure", [False, True])
def test_version_names_the_active_path(pure: bool) -> None:
    done = subprocess.run([sys.executable, "-m", "stackwatch", "--version"], env=_env(pure), cwd=ROOT,
                          capture_output=True, text=True, check=True)
    version, path = done.stdout.strip().splitlines()
    assert version.startswith("stackwatch, version ")
    expected = _python("from stackwatch import accel; print(accel.status())", pure=pure)
    assert path == f"hot paths: {expected}"
    assert expected.startswith("pure Python") if pure else expected
