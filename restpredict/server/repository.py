"""The model repository of a server of several workers: the supervisor's models and their index.

With ``--workers N`` every worker builds its registry from the supervisor's list of prepared
models (``AppFactory.models``), forked with it. A repository load or unload reaches every worker
the way a reload does: the worker that took the request hands it to the supervisor
(``asgi.fleet``, then SIGHUP); the supervisor changes this list (a load prepares each version
once, here: loaded, pin-checked, verified and warmed up; an unload leaves the name out), then
rolls every worker onto it (``supervisor.py``: a worker forked from the new list replaces each
old one, which stops accepting, answers what it took and leaves). The request is answered once
no worker of the previous list is left, so every answer after it sees the new state.

The index (``IndexEntry``) is the supervisor's too, published in the fleet file: every worker
answers ``POST /v2/repository/index`` with it, ``LOADING`` and ``UNLOADING`` included while
the supervisor works.
"""

from __future__ import annotations

import hashlib
import logging

from restpredict.asgi.fleet import IndexEntry
from restpredict.asgi.registry import LOADING, READY, UNAVAILABLE, UNLOADING
from restpredict.errors import NotFoundError, RestPredictError
from restpredict.model.catalog import Catalogued, catalogued
from restpredict.model.prepare import Prepared, prepare_version
from restpredict.settings import Settings

__all__ = ["FleetModels", "Refusal"]

logger = logging.getLogger("uvicorn.error")

_Key = tuple[str, str | None]


class Refusal(Exception):
    """Why a repository request was refused, with the HTTP status the worker answers with."""

    def __init__(self, detail: str, status: int = 409) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class FleetModels:
    """The prepared models the workers are forked with, and the repository index."""

    def __init__(self, settings: Settings, prepared: list[Prepared]) -> None:
        self.settings = settings
        self.prepared = list(prepared)
        self._index: dict[_Key, IndexEntry] = {}
        for item, _ in self.prepared:
            self._index[(item.name, item.version)] = IndexEntry(item.name, READY, "", item.version)
        self._draining: set[_Key] = set()

    @property
    def generation(self) -> str:
        """Names the list and the traffic and shadows: workers forked from others are rolled."""
        served = sorted((i.name, i.version or "", m.sha256) for i, m in self.prepared)
        s = self.settings
        routing = (sorted(s.traffic.items()), sorted(s.shadow.items()), s.shadow_tolerance)
        return hashlib.sha256(repr((served, routing)).encode()).hexdigest()

    def index(self) -> list[IndexEntry]:
        """Every name and version the repository has seen, in the order configured."""
        return list(self._index.values())

    def begin_load(self, name: str) -> None:
        """Mark ``name``'s versions LOADING (published before the slow part); refuse unknown."""
        for item in self._configured(name):
            entry = self._entry(item.name, item.version)
            if entry.state != READY:
                entry.state, entry.reason = LOADING, "loading"

    def load(self, name: str) -> None:
        """Prepare every configured version of ``name`` here; a version that fails keeps what
        served before, and the Refusal names each failure."""
        failures = []
        for item in self._configured(name):
            key = (item.name, item.version)
            entry = self._entry(*key)
            try:
                model = prepare_version(item)
            except RestPredictError as exc:
                logger.error("loading %s failed: %s", item.label, exc.detail)
                failures.append(f"{item.label}: {exc.detail}")
                if entry.state != READY:
                    entry.state, entry.reason = UNAVAILABLE, exc.detail
                continue
            old = next((m for i, m in self.prepared if (i.name, i.version) == key), None)
            if old is None or old.sha256 != model.sha256:  # the same file: keep the shared copy
                self.prepared = [p for p in self.prepared if (p[0].name, p[0].version) != key]
                self.prepared.append((item, model))
            entry.state, entry.reason = READY, ""
            self._draining.discard(key)
            logger.info("loaded %s from %s: sha256 %s", item.label, item.source, model.sha256)
        if failures:
            raise Refusal("; ".join(failures))

    def unload(self, name: str) -> None:
        """Leave every loaded version of ``name`` out; UNLOADING until the workers drained."""
        keys = [(i.name, i.version) for i, _ in self.prepared if i.name == name]
        if not keys:
            loaded = ", ".join(sorted({i.name for i, _ in self.prepared})) or "no model"
            raise Refusal(f"model {name!r} is not loaded; this server serves {loaded}", 404)
        self.prepared = [p for p in self.prepared if p[0].name != name]
        for key in keys:
            entry = self._entry(*key)
            entry.state, entry.reason = UNLOADING, "draining requests in flight"
            self._draining.add(key)
        logger.info("unloading model %s (%d version(s))", name, len(keys))

    @property
    def draining(self) -> bool:
        """Some names are unloading: ``drained`` is awaited."""
        return bool(self._draining)

    def drained(self) -> None:
        """No worker serves the previous list any more: what was unloading is unloaded."""
        for key in self._draining:
            entry = self._index[key]
            entry.state, entry.reason = UNAVAILABLE, "unloaded"
        self._draining.clear()

    def _configured(self, name: str) -> list[Catalogued]:
        try:
            return catalogued(self.settings, name, None)
        except NotFoundError as exc:
            raise Refusal(exc.detail, 404) from None
        except RestPredictError as exc:  # the folder changed into something invalid
            raise Refusal(exc.detail) from None

    def _entry(self, name: str, version: str | None) -> IndexEntry:
        entry = self._index.get((name, version))
        if entry is None:
            entry = self._index[(name, version)] = IndexEntry(name, UNAVAILABLE, "", version)
        return entry
