"""The models a server serves, by name and version: which one answers a request.

One registry per app, on ``app.state.registry``, changed only on the event loop (start-up, a
hot reload, the repository API's load and unload), so a lookup is a few dict reads and never
sees a half-changed set. A request names a model (``/models/{name}/predict``, the protocols'
``{name}`` and ``{version}``) or none (``/predict``, ``/invocations``): the default model,
which exists when one name is served or ``default_model`` names one. An unversioned request
gets the version marked default, else the highest (numbers above text).

Canary: ``traffic`` splits a name's unversioned requests between its versions by weight; a
request with a routing key (the ``X-Routing-Key`` header) always lands on the same version
while the weights stay (the key's hash picks the point on the weights), one without lands at
random. A version not ready gives its share to the others.

Unloading drains: the version stops taking new requests at once, and the unload waits until
the requests that already took it have been answered. Each request that takes a model holds a
lease on it (counted only when the repository API is on), released by ``LeaseMiddleware`` as
the request ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from restpredict.errors import NotFoundError, NotReadyError
from restpredict.model.catalog import version_order
from restpredict.model.loading import LoadedModel

__all__ = ["READY", "UNAVAILABLE", "ModelRegistry", "Served"]

READY = "READY"
LOADING = "LOADING"
UNLOADING = "UNLOADING"
UNAVAILABLE = "UNAVAILABLE"
_LEASE = "restpredict.lease"


@dataclass(eq=False)
class Served:
    """One name and version: its model while ready, its state and why (the repository index)."""

    name: str
    version: str | None
    model: LoadedModel | None = None
    state: str = UNAVAILABLE
    reason: str = ""
    default: bool = False
    inflight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def index_entry(self) -> dict[str, Any]:
        """What ``POST /v2/repository/index`` lists for it."""
        doc: dict[str, Any] = {"name": self.name}
        if self.version is not None:
            doc["version"] = self.version
        doc["state"] = self.state
        doc["reason"] = self.reason
        return doc


class ModelRegistry:
    """Served models keyed by (name, version), and the default a nameless request gets."""

    def __init__(
        self,
        *,
        default_name: str | None = None,
        leasing: bool = False,
        traffic: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self._default_name = default_name
        self._traffic = {name: dict(w) for name, w in (traffic or {}).items()}
        self._default_split: str | None = None  # the default's name, when it has traffic
        self._entries: dict[tuple[str, str | None], Served] = {}
        self._chosen: dict[str, Served] = {}  # name -> the version its unversioned requests get
        self._default: LoadedModel | None = None
        #: Count each request's model until it is answered (the repository API's unload).
        self.leasing = leasing

    # --- lookups (every request) ---

    @property
    def splits(self) -> bool:
        """True when some name's traffic is split (requests then read their routing key)."""
        return bool(self._traffic)

    def resolve(
        self, name: str | None = None, version: str | None = None, key: str | None = None
    ) -> LoadedModel:
        """The model a request names (none: the default), or 404 naming what is served;
        ``key``, the routing key of a request whose name splits its traffic."""
        if name is None:
            if self._default is not None:
                if self._default_split is not None:
                    return self._split(self._default_split, key) or self._default
                return self._default
            raise self._no_default()
        if version is None:
            if name in self._traffic:
                split = self._split(name, key)
                if split is not None:
                    return split
            chosen = self._chosen.get(name)
            if chosen is not None and chosen.model is not None:
                return chosen.model
            raise self._unknown(name, None)
        served = self._entries.get((name, version))
        if served is None or served.model is None or served.state != READY:
            raise self._unknown(name, version)
        return served.model

    def entry_of(self, model: LoadedModel) -> Served | None:
        """The entry serving ``model`` (a lease's target)."""
        served = self._entries.get((model.name, model.version))
        return served if served is not None and served.model is model else None

    def names(self) -> list[str]:
        """The names of the models ready to answer, in the order they were configured."""
        return list(dict.fromkeys(s.name for s in self._entries.values() if s.state == READY))

    def versions(self, name: str) -> list[Served]:
        """Every entry of ``name``, ready or not, lowest version first."""
        found = [s for (n, _), s in self._entries.items() if n == name]
        return sorted(found, key=lambda s: version_order(s.version))

    def entries(self) -> list[Served]:
        """Every entry, in the order configured (the repository index)."""
        return list(self._entries.values())

    def get(self, name: str, version: str | None) -> Served | None:
        """The entry of exactly this name and version, ready or not."""
        return self._entries.get((name, version))

    @property
    def default(self) -> LoadedModel | None:
        """The model ``/predict`` answers with, if there is one."""
        return self._default

    def all_ready(self) -> bool:
        """True when every configured version is serving (readiness of the whole server)."""
        return all(s.state == READY for s in self._entries.values() if s.state != UNAVAILABLE)

    # --- changes (event loop only) ---

    def put(self, model: LoadedModel, *, default: bool = False) -> Served:
        """Serve ``model`` as its name and version (replacing what served that pair)."""
        key = (model.name, model.version)
        served = self._entries.get(key)
        if served is None:
            served = self._entries[key] = Served(model.name, model.version)
        served.model, served.state, served.reason = model, READY, ""
        served.default = served.default or default
        self._recompute()
        return served

    def declare(self, name: str, version: str | None, *, default: bool = False) -> Served:
        """An entry for a configured model not (yet) loaded: listed by the index."""
        served = self._entries.get((name, version))
        if served is None:
            served = self._entries[(name, version)] = Served(name, version, default=default)
        return served

    def set_state(self, served: Served, state: str, reason: str = "") -> None:
        """Move an entry to ``state`` (UNAVAILABLE frees its model) and choose defaults again."""
        served.state, served.reason = state, reason
        if state == UNAVAILABLE:
            served.model = None
        self._recompute()

    def set_traffic(self, traffic: Mapping[str, Mapping[str, float]]) -> None:
        """New weights (a reload read the configuration again): later requests split by them."""
        self._traffic = {name: dict(w) for name, w in traffic.items()}
        self._recompute()

    def swap(self, old: LoadedModel | None, new: LoadedModel) -> None:
        """A hot reload: ``new`` serves where ``old`` did."""
        served = self.entry_of(old) if old is not None else None
        if served is not None:
            self._entries.pop((served.name, served.version))
            self._entries[(new.name, new.version)] = served
            served.name, served.version = new.name, new.version
        self.put(new)

    def _recompute(self) -> None:
        chosen: dict[str, Served] = {}
        for name in dict.fromkeys(n for n, _ in self._entries):
            ready = [s for s in self.versions(name) if s.state == READY and s.model is not None]
            if ready:
                marked = [s for s in ready if s.default]
                chosen[name] = marked[-1] if marked else ready[-1]
        self._chosen = chosen
        names = list(chosen)
        wanted = self._default_name or (names[0] if len(names) == 1 else None)
        pick = chosen.get(wanted) if wanted is not None else None
        self._default = pick.model if pick is not None else None
        self._default_split = wanted if pick is not None and wanted in self._traffic else None

    def _split(self, name: str, key: str | None) -> LoadedModel | None:
        """The version ``traffic`` picks for this request, or None when none of them is ready."""
        shares = []
        for version, weight in self._traffic[name].items():
            served = self._entries.get((name, version))
            if weight > 0 and served is not None and served.state == READY and served.model:
                shares.append((served.model, weight))
        if not shares:
            return None
        point = (_unit(key) if key is not None else random.random()) * sum(w for _, w in shares)
        for model, weight in shares:
            point -= weight
            if point < 0:
                return model
        return shares[-1][0]

    # --- leases (unload drains) ---

    def lease(self, scope: Scope, model: LoadedModel) -> None:
        """Count this request on ``model``'s entry until ``release`` (once per request)."""
        state = scope.setdefault("state", {})
        if _LEASE in state:
            return
        served = self.entry_of(model)
        if served is not None:
            served.inflight += 1
            served.idle.clear()
            state[_LEASE] = served

    @staticmethod
    def release(scope: Scope) -> None:
        """End this request's lease, waking an unload waiting for the model to go idle."""
        served: Served | None = scope.get("state", {}).pop(_LEASE, None)
        if served is not None:
            served.inflight -= 1
            if served.inflight == 0:
                served.idle.set()

    # --- errors ---

    def served_list(self) -> str:
        """``'a', 'b' (versions 1, 2)``: what a 404 says is served."""
        parts = []
        for name in self.names():
            versions = [s.version for s in self.versions(name) if s.state == READY]
            named = [v for v in versions if v is not None]
            parts.append(f"{name!r}" + (f" (versions {', '.join(named)})" if named else ""))
        return ", ".join(parts) or "no model"

    def _unknown(self, name: str, version: str | None) -> NotFoundError:
        served = self.served_list()
        if version is None:
            return NotFoundError(
                f"model {name!r} is not served here; this server serves {served}",
                code="model_not_found",
            )
        if name in self._chosen and all(s.version is None for s in self.versions(name)):
            return NotFoundError(  # today's wording for one unversioned model
                f"model {name!r} has no version {version!r}: restpredict serves it "
                f"unversioned; use /v2/models/{name}",
                code="version_not_found",
            )
        return NotFoundError(
            f"model {name!r} has no version {version!r} ready; this server serves {served}",
            code="version_not_found",
        )

    def _no_default(self) -> NotFoundError | NotReadyError:
        names = self.names()
        if not names:
            return NotReadyError("no model is loaded; retry shortly")
        return NotFoundError(
            f"{len(names)} models are served ({self.served_list()}) and none is the default: "
            "name one in the path (/models/NAME/predict) or set default_model",
            code="model_not_named",
        )


def _unit(key: str) -> float:
    """A routing key's fixed point in [0, 1): the same key, the same version."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
