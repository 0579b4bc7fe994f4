"""The real classes fit the seams of core/types.py.

mypy checks the assignments to Protocol-typed names below (``mypy tests/test_types.py``); at
run time every member a Protocol names must be there, under that name, callable where the
Protocol has a method, since no ``isinstance`` against a Protocol is done anywhere."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from pathlib import Path
from typing import Any, Protocol

import pytest

import stackwatch.alerts
import stackwatch.sources
from stackwatch.alerts.base import Sink as SinkBase
from stackwatch.api.scoped import InfrastructureStore, ScopedStore
from stackwatch.core import types
from stackwatch.detect.engine import Engine
from stackwatch.parsers.registry import message_parsers, record_parsers
from stackwatch.pipeline.ingested import FolderRecords
from stackwatch.pipeline.runner import _QueuedWrites
from stackwatch.pipeline.tenants import TenantPartitionedEngine
from stackwatch.respond.orphans import OrphanAwareEngine
from stackwatch.respond.recorder import SpoolingRecorder
from stackwatch.sources.base import Source as SourceBase
from stackwatch.sources.base import SourceContext, SourceSettings
from stackwatch.store.base import Store
from stackwatch.store.postgres.ingested import PGFileRecords
from stackwatch.store.postgres.store import PostgresStore
from stackwatch.store.scope import Scope
from stackwatch.store.sqlite import SQLiteStore
from stackwatch.store.sqlite_blocks import BlockStore

STORE_CAPABILITIES = ("data_dir", "takes_header_events", "tick", "ingest_records", "record_admin",
                      "integrity_status", "inclusion_proof", "event_histogram")


def members(protocol: type) -> tuple[set[str], set[str]]:
    """(methods, attributes) a Protocol names, its Protocol bases' included."""
    methods: set[str] = set()
    attributes: set[str] = set()
    for klass in protocol.__mro__:
        if klass is Protocol or not getattr(klass, "_is_protocol", False):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and isinstance(value, property):  # a read-only attribute
                attributes.add(name)
            elif not name.startswith("_") and callable(value):
                methods.add(name)
        attributes |= {name for name in getattr(klass, "__annotations__", {}) if not name.startswith("_")}
    return methods, attributes - methods


def assert_fits(obj: Any, protocol: type) -> None:
    methods, attributes = members(protocol)
    assert methods or attributes, protocol
    for name in methods:
        assert callable(getattr(obj, name, None)), f"{obj!r} lacks {protocol.__name__}.{name}()"
    for name in attributes:
        assert hasattr(obj, name), f"{obj!r} lacks {protocol.__name__}.{name}"


def subclasses(base: type, package: Any) -> list[type]:
    """Every concrete subclass of ``base`` in ``package``'s modules."""
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    found: list[type] = []
    todo: list[type] = [base]
    while todo:
        below: list[type] = todo.pop().__subclasses__()
        for sub in below:
            todo.append(sub)
            if sub.__module__.startswith(package.__name__) and not getattr(sub, "__abstractmethods__", None) \
                    and sub not in found:
                found.append(sub)
    return found


def test_parsers_fit_the_parser_seams() -> None:
    record: list[types.RecordParser] = list(record_parsers())
    message: list[types.MessageParser] = list(message_parsers().values())
    assert record and message
    for parser in record:
        assert_fits(parser, types.RecordParser)
    for program_parser in message:
        assert_fits(program_parser, types.MessageParser)


def test_every_engine_fits_detection_engine() -> None:
    engines: list[types.DetectionEngine] = [
        Engine([]), OrphanAwareEngine([]), TenantPartitionedEngine(Engine([]), lambda: Engine([])),
    ]
    for engine in engines:
        assert_fits(engine, types.DetectionEngine)
        assert engine.detectors() == []
        assert engine.stats.events == 0


@pytest.mark.parametrize("cls", subclasses(SourceBase, stackwatch.sources), ids=lambda c: c.__name__)
def test_every_source_class_fits_source(cls: type) -> None:
    methods, _ = members(types.Source)
    for name in methods:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks Source.{name}"


def test_a_source_has_its_name() -> None:
    context = SourceContext(queue_size=10, wake=asyncio.Event(), state_dir=".", hostname="h")

    class Quiet(SourceBase):
        async def start(self) -> None: ...
        async def stop(self) -> None: ...
        def decode(self, records: list[Any]) -> list[Any]:
            return []

    source: types.Source = Quiet(SourceSettings(type="test", name="quiet"), context)
    assert_fits(source, types.Source)


@pytest.mark.parametrize("cls", subclasses(SinkBase, stackwatch.alerts), ids=lambda c: c.__name__)
def test_every_sink_class_fits_sink(cls: type) -> None:
    methods, attributes = members(types.Sink)
    for name in methods:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks Sink.{name}"
    assert attributes == {"name"}  # set by alerts/base.Sink.__init__ from the settings


@pytest.mark.parametrize("cls", [SQLiteStore, BlockStore, PostgresStore, Store], ids=lambda c: c.__name__)
def test_every_store_declares_its_capabilities(cls: type) -> None:
    for protocol in (types.EventLog, types.ResponseStore, types.SweepStore):
        methods, _ = members(protocol)
        assert all(callable(getattr(cls, name, None)) for name in methods), protocol
    for name in STORE_CAPABILITIES:
        assert hasattr(cls, name), f"{cls.__name__} lacks {name}"


def test_the_embedded_store_answers_its_capabilities(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "data") as store:
        sweep: types.SweepStore = store
        writes: types.SweepStore = _QueuedWrites(store)
        assert_fits(sweep, types.SweepStore)
        assert_fits(writes, types.SweepStore)
        assert store.data_dir == tmp_path / "data"
        assert store.takes_header_events is False
        assert store.ingest_records() is None  # kept beside the store (pipeline/ingested.py)
        assert store.integrity_status() is not None
        store.tick()


def test_the_other_writers_fit_their_seams(tmp_path: Path) -> None:
    recorder: types.ResponseStore = SpoolingRecorder(tmp_path)
    assert_fits(recorder, types.ResponseStore)
    folder: types.FileRecords = FolderRecords(tmp_path)
    try:
        assert_fits(folder, types.FileRecords)
    finally:
        folder.close()
    methods, _ = members(types.FileRecords)
    assert all(callable(getattr(PGFileRecords, name, None)) for name in methods)


def test_the_orphan_detector_fits_what_detect_reads_of_it() -> None:
    engine = OrphanAwareEngine([])
    ledger: types.OrphanLedger = engine.orphans
    assert_fits(ledger, types.OrphanLedger)
    assert isinstance(engine, types.OrphanAware)
    assert not isinstance(Engine([]), types.OrphanAware)


def test_the_orphan_state_goes_back_into_a_fresh_detector() -> None:
    first = OrphanAwareEngine([])
    first.orphans.deletions = 3
    state = first.orphans.state()
    second = OrphanAwareEngine([])
    second.orphans.load_state(state)
    assert second.orphans.deletions == 3
    assert second.orphans.state() == state


def test_every_store_view_fits_store_reads(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "data") as store:
        views: list[types.StoreReads] = [store, InfrastructureStore(store),
                                         ScopedStore(store, Scope(project="p1"))]
        for view in views:
            assert_fits(view, types.StoreReads)
    methods, _ = members(types.StoreReads)
    for cls in (BlockStore, PostgresStore):
        assert all(callable(getattr(cls, name, None)) for name in methods), cls
