"""The one registry shape: entries imported on first use, a clear error for an entry asked for,
a report and a skip for an entry that fails while listing them all."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from stackwatch.core.errors import StackwatchError
from stackwatch.core.registry import EntryLoadError, Registry, UnknownEntryError


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real importable package of plugin modules, unique to the test (imports are cached)."""
    package = f"sw_plugins_{tmp_path.name.replace('-', '_')}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "good.py").write_text("class Thing:\n    VALUE = 42\n")
    (tmp_path / package / "needs_missing.py").write_text("import sw_no_such_dependency  # noqa\n")
    (tmp_path / package / "raises.py").write_text("raise RuntimeError('plugin bug')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def test_an_entry_is_imported_when_first_loaded_not_when_registered(plugins: str) -> None:
    registry: Registry[Any] = Registry("widget", {"good": f"{plugins}.good:Thing"})
    assert f"{plugins}.good" not in sys.modules
    assert registry.load("good").VALUE == 42
    assert f"{plugins}.good" in sys.modules


def test_references_may_name_a_dotted_attribute_or_a_bare_module(plugins: str) -> None:
    registry: Registry[object] = Registry("widget", {
        "value": f"{plugins}.good:Thing.VALUE",
        "module": f"{plugins}.good",
    })
    assert registry.load("value") == 42
    assert registry.load("module") is sys.modules[f"{plugins}.good"]


def test_as_a_mapping_it_holds_the_references_in_registration_order(plugins: str) -> None:
    registry: Registry[object] = Registry("widget", {"b": f"{plugins}.good:Thing", "a": f"{plugins}.good"})
    assert list(registry) == ["b", "a"]
    assert registry["a"] == f"{plugins}.good"
    assert "b" in registry and "c" not in registry


def test_an_unknown_name_is_a_key_error_listing_the_known_ones(plugins: str) -> None:
    registry: Registry[object] = Registry("widget", {"good": f"{plugins}.good:Thing"})
    with pytest.raises(UnknownEntryError) as caught:
        registry.load("bad")
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, StackwatchError)
    assert str(caught.value) == "unknown widget 'bad' (known: good)"


@pytest.mark.parametrize(("module", "attribute", "cause"), [
    ("needs_missing", "X", "ModuleNotFoundError: No module named 'sw_no_such_dependency'"),
    ("good", "Missing", "AttributeError"),
    ("raises", "X", "RuntimeError: plugin bug"),
    ("no_such_module", "X", "ModuleNotFoundError"),
])
def test_an_entry_asked_for_that_cannot_load_is_an_import_error_naming_it(
        plugins: str, module: str, attribute: str, cause: str) -> None:
    reference = f"{plugins}.{module}:{attribute}"
    registry: Registry[object] = Registry("widget", {"broken": reference})
    with pytest.raises(EntryLoadError) as caught:
        registry.load("broken")
    error: EntryLoadError = caught.value
    assert isinstance(error, ImportError) and isinstance(error, StackwatchError)
    assert str(error).startswith(f"widget 'broken' ({reference}) cannot be loaded: {cause}")
    assert error.entry == "broken" and error.__cause__ is not None


def test_listing_them_all_reports_a_failing_entry_once_and_skips_it(
        plugins: str, caplog: pytest.LogCaptureFixture) -> None:
    shared: list[str] = []
    registry: Registry[object] = Registry("widget", {
        "first": f"{plugins}.good:Thing",
        "broken": f"{plugins}.needs_missing:X",
        "last": f"{plugins}.good:Thing.VALUE",
    }, shared)
    assert list(registry.load_all()) == ["first", "last"]
    assert list(registry.load_all()) == ["first", "last"]
    assert len(shared) == 1 and shared[0].startswith(f"widget 'broken' ({plugins}.needs_missing:X)")
    assert registry.errors is shared
    assert [r.getMessage() for r in caplog.records] == shared


def test_a_view_loads_an_entry_when_read_and_converts_it(plugins: str) -> None:
    registry: Registry[type] = Registry("widget", {
        "good": f"{plugins}.good:Thing", "broken": f"{plugins}.needs_missing:X"})
    view = registry.view(lambda cls: cls.__name__)
    assert "broken" in view and "other" not in view  # without importing anything
    assert f"{plugins}.good" not in sys.modules
    assert view["good"] == "Thing"
    assert list(view) == ["good", "broken"] and len(view) == 2
    with pytest.raises(EntryLoadError):
        view["broken"]
    with pytest.raises(KeyError):
        view["other"]
    assert registry.view()["good"] is registry.load("good")
