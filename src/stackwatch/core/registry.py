"""One registry shape for everything stackwatch looks up by name: parsers, sources, sinks, store
backends and rule kinds.

An entry is ``name -> "module:attribute"`` (the entry-point object reference: the attribute may be
dotted), imported on first use, so an optional dependency (aio-pika, psycopg) matters only to whoever
uses the entry that needs it. Built-ins register the way a plugin would: by one line in a table.

Two ways to ask, two ways to fail:

- ``load(name)``: one entry that the configuration (or a rule, or a stored record) asked for. An
  unknown name raises ``UnknownEntryError`` (a ``KeyError``); an entry that cannot be imported raises
  ``EntryLoadError`` (an ``ImportError``, as ``from module import name`` would), naming the entry.
- ``load_all()``: every entry, for whoever lists or uses them all. A failing entry is reported
  (logged once, kept in ``errors``) and skipped: one broken plugin does not take the program down.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast, overload

from stackwatch.core.errors import StackwatchError

T = TypeVar("T")
U = TypeVar("U")

log = logging.getLogger(__name__)


class UnknownEntryError(StackwatchError, KeyError):
    """A name no entry of the registry has."""

    def __init__(self, kind: str, entry: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.entry = entry
        super().__init__(f"unknown {kind} {entry!r} (known: {', '.join(known)})")

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0])


class EntryLoadError(StackwatchError, ImportError):
    """An entry whose module fails to import, or lacks the attribute; ``__cause__`` says why."""

    def __init__(self, kind: str, entry: str, reference: str, cause: BaseException) -> None:
        self.kind = kind
        self.entry = entry
        self.reference = reference
        super().__init__(f"{kind} {entry!r} ({reference}) cannot be loaded: {type(cause).__name__}: {cause}")


def resolve(reference: str) -> Any:
    """The object a ``module:attribute`` (or bare ``module``) reference names, imported now."""
    module_name, _, attribute = reference.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        found = getattr(found, part)
    return found


class Registry(Mapping[str, str], Generic[T]):
    """``name -> "module:attribute"`` in registration order (order can matter: the record parsers
    are tried in it). As a mapping it holds the references; ``load`` gives the objects."""

    def __init__(self, kind: str, entries: Mapping[str, str], errors: list[str] | None = None) -> None:
        """``kind`` names an entry in messages ("source", "store backend"); ``errors`` collects
        the reports of ``load_all`` (several registries may share one list)."""
        self.kind = kind
        self._entries = dict(entries)
        self.errors: list[str] = errors if errors is not None else []
        self._loaded: dict[str, T] = {}

    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self._entries!r})"

    def load(self, name: str) -> T:
        """The object of entry ``name``; a clear error when there is none or it cannot load."""
        try:
            return self._loaded[name]
        except KeyError:
            pass
        try:
            reference = self._entries[name]
        except KeyError:
            raise UnknownEntryError(self.kind, name, self._entries) from None
        try:
            # The reference's module is the registry's contract with its entry: what it holds
            # is the type the registry declares (the meta-test loads every entry).
            found = cast(T, resolve(reference))
        except Exception as exc:  # whatever a plugin's import raises, it is that entry's fault
            raise EntryLoadError(self.kind, name, reference, exc) from exc
        self._loaded[name] = found
        return found

    def load_all(self) -> dict[str, T]:
        """Every entry that loads, in order; each failing one is reported and skipped."""
        loaded: dict[str, T] = {}
        for name in self._entries:
            try:
                loaded[name] = self.load(name)
            except EntryLoadError as exc:
                self._report(str(exc))
        return loaded

    @overload
    def view(self) -> Mapping[str, T]: ...

    @overload
    def view(self, convert: Callable[[T], U]) -> Mapping[str, U]: ...

    def view(self, convert: Callable[[T], Any] | None = None) -> Mapping[str, Any]:
        """A read-only mapping ``name -> object`` (or ``convert(object)``) that loads an entry
        when it is read, with ``load``'s errors."""
        return _LoadedView(self, convert if convert is not None else _same)

    def _report(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            log.warning(message)


def _same(found: Any) -> Any:
    return found


class _LoadedView(Mapping[str, U], Generic[T, U]):
    def __init__(self, registry: Registry[T], convert: Callable[[T], U]) -> None:
        self._registry = registry
        self._convert = convert

    def __getitem__(self, name: str) -> U:
        return self._convert(self._registry.load(name))

    def __contains__(self, name: object) -> bool:  # a name, without importing its entry
        return name in self._registry

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)
