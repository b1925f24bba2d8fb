"""What a SIGHUP asks of the supervisor of several workers, and how the workers follow.

A bare SIGHUP, or the requests the workers handed over with one (``asgi.fleet``): a reload of
the one model (prepared and checked here, then rolled onto the workers; answered once accepted),
a reload of several models' traffic and shadows (the configuration read again), and repository
loads and unloads (``repository.FleetModels``). Each change the workers must see is rolled onto
them by the supervisor's loop (``supervisor.Supervisor``: a worker is replaced by one forked
from what the supervisor serves now, the old one retired); the requests of the last two are
answered once no old worker takes new connections.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path

from restpredict.asgi.fleet import ReloadOutcome, ReloadRequest, Rollout, read_reload_requests
from restpredict.asgi.reloader import SEVERAL_MODELS
from restpredict.errors import ReloadError, RestPredictError
from restpredict.model.catalog import with_routing
from restpredict.model.loading import LoadedModel
from restpredict.server.lifecycle import AppFactory
from restpredict.server.repository import FleetModels, Refusal
from restpredict.server.workers import Slot, Worker
from restpredict.settings import Settings

__all__ = ["RollingChanges"]

logger = logging.getLogger("uvicorn.error")

_ACCEPTING_TIMEOUT = 10.0  # how long a retired worker may take to say whether it still accepts


class RollingChanges:
    """The supervisor's reloads and repository changes (a mixin of ``Supervisor``)."""

    factory: AppFactory
    settings: Settings
    fleet_dir: Path
    prepare: Callable[[Settings, LoadedModel | None, bool], LoadedModel | str]
    reread: Callable[[], Settings] | None
    slots: list[Slot]
    retiring: list[Worker]
    repository: FleetModels | None
    _pin: str | None
    _rollout: Rollout | None
    _answers: list[ReloadOutcome]
    _pending: list[ReloadOutcome]  # answered once the workers rolled

    @property
    def model(self) -> LoadedModel:
        model = self.factory.model
        assert model is not None
        return model

    @property
    def generation(self) -> str:
        """What the workers must serve: the model's SHA-256, or the models' set's digest."""
        if self.repository is not None:
            return self.repository.generation
        return self.model.sha256

    def keep_subprocess_alive(self) -> None:
        raise NotImplementedError  # the supervisor's loop: rolls what changed

    def _publish(self) -> None:
        raise NotImplementedError  # the supervisor's report to its workers

    def handle_hup(self) -> None:
        """Serve what the requests handed over ask for (a bare SIGHUP: a reload)."""
        requests = read_reload_requests(self.fleet_dir)
        reloads = [r for r in requests if r.action == "reload"]
        changes = [r for r in requests if r.action != "reload"]
        if changes:
            self._change_repository(changes)
        if reloads or not requests:
            self._reload(reloads)

    def _reload(self, requests: list[ReloadRequest]) -> None:
        """Prepare the configured (or requested) model here, then roll the workers onto it."""
        ids = [request.id for request in requests]
        request = requests[-1] if requests else None  # several at once: the latest one's terms
        pin = (request.sha256 if request is not None else None) or self._pin
        allowed = request is not None and request.allow_schema_change
        allowed = allowed or self.settings.allow_schema_change
        if self.repository is not None:  # the workers' models are the catalog's, not one file
            self._reroute(ids)
            return
        old = self.model
        logger.info("SIGHUP: preparing the model for a rolling reload")
        wanted = self.settings.model_copy(update={"sha256": pin})
        new = self.prepare(wanted, old, allowed)
        if isinstance(new, str):
            _collect()  # the refused model and the frames its failure held
            logger.error("reload refused, still serving sha256 %s: %s", old.sha256, new)
            detail = f"{new}; still serving sha256 {old.sha256}"
            self._answers.append(ReloadOutcome(ids, False, detail, old.sha256, old.name))
            self._publish()
            return
        self._pin = pin
        if new.sha256 == old.sha256:
            # The same file: the workers' shared copy stays, rather than a second one in here.
            logger.info("reload: sha256 %s unchanged, the workers keep serving it", old.sha256)
            del new
            _collect()
            self._answers.append(ReloadOutcome(ids, True, "unchanged", old.sha256, old.name))
            self._publish()
            return
        self.factory.model = new
        del old
        _collect()
        logger.info("rolling reload: sha256 %s to every worker", new.sha256)
        previous = {s.worker.generation for s in self.slots if s.worker is not None} - {new.sha256}
        if previous:
            self._rollout = Rollout(previous.pop(), new.sha256, 0, len(self.slots))
        self._answers.append(ReloadOutcome(ids, True, "rolling", new.sha256, new.name))
        for slot in self.slots:
            slot.next_try = 0.0  # roll now, even a slot waiting out a backoff
        self.keep_subprocess_alive()

    def _change_repository(self, requests: list[ReloadRequest]) -> None:
        """Load or unload each name asked for, in order, then roll the workers onto the result
        once; each request is answered when it is refused or once the roll is done."""
        repository = self.repository
        before = self.generation
        done: list[ReloadOutcome] = []
        for request in requests:
            name = request.name or ""
            try:
                if repository is None:
                    raise Refusal(
                        "this server serves one model (MODEL): reload it with POST "
                        "/admin/reload, or serve with models: or --model-dir to load models "
                        "by name"
                    )
                if request.action == "load":
                    repository.begin_load(name)
                    self._publish()  # LOADING, in every worker's index
                    repository.load(name)
                else:
                    repository.unload(name)
            except Refusal as refusal:
                outcome = ReloadOutcome([request.id], False, refusal.detail, before, name)
                outcome.status = refusal.status
                self._answers.append(outcome)
            else:
                done.append(ReloadOutcome([request.id], True, request.action, "", name))
        if repository is None or self.generation == before:
            self._answers.extend(done)  # nothing to roll (the same files loaded again)
            self._publish()
            return
        self.factory.models = repository.prepared
        _collect()  # what was unloaded or replaced, once no worker holds it
        self._roll_then_answer(done)

    def _reroute(self, ids: list[str]) -> None:
        """Several models: read the configuration again and roll the workers onto its traffic
        split and shadows (a refusal changes nothing)."""
        assert self.repository is not None
        before = self.generation
        try:
            if self.reread is None:
                raise ReloadError(SEVERAL_MODELS)
            rerouted = with_routing(self.settings, self.reread())
        except RestPredictError as exc:
            logger.error("reload refused, traffic and shadows unchanged: %s", exc.detail)
            detail = f"{exc.detail}; traffic and shadows unchanged"
            self._answers.append(ReloadOutcome(ids, False, detail, before, ""))
            self._publish()
            return
        self.settings = self.factory.settings = self.repository.settings = rerouted
        detail = f"traffic {dict(rerouted.traffic)}, shadow {dict(rerouted.shadow)}"
        logger.info("reload: %s", detail)
        outcome = ReloadOutcome(ids, True, detail, before, "")
        if self.generation == before:
            self._answers.append(outcome)
            self._publish()
            return
        self._roll_then_answer([outcome])

    def _roll_then_answer(self, outcomes: list[ReloadOutcome]) -> None:
        """Roll every worker onto what the supervisor serves now; answer once they have."""
        for outcome in outcomes:
            outcome.sha256 = self.generation
        self._pending.extend(outcomes)
        logger.info("rolling every worker onto %s", self.generation)
        for slot in self.slots:
            slot.next_try = 0.0
        self.keep_subprocess_alive()

    def _answer_when_rolled(self) -> None:
        """Once no worker serves an older set of models, answer the requests that changed it."""
        if not self._pending and (self.repository is None or not self.repository.draining):
            return
        current = all(self._current(slot) for slot in self.slots)
        old = [worker for worker in self.retiring if worker.generation != self.generation]
        if current and not any(worker.accepting(_ACCEPTING_TIMEOUT) for worker in old):
            # The old workers take no new connection; they answer the ones they have with
            # Connection: close (the request being answered here among them).
            if self.repository is not None:
                self.repository.drained()
            self._answers.extend(self._pending)
            self._pending = []
        elif self._pending and any(s.failures and not self._current(s) for s in self.slots):
            stale = sum(1 for slot in self.slots if not self._current(slot))
            for outcome in self._pending:
                outcome.accepted = False
                outcome.status = 503
                outcome.detail = (
                    f"{stale} of {len(self.slots)} workers could not start with the new models: "
                    "they serve the previous ones and are retried"
                )
            self._answers.extend(self._pending)
            self._pending = []

    def _current(self, slot: Slot) -> bool:
        return slot.worker is not None and slot.worker.generation == self.generation


def _collect() -> None:
    """Free what a reload let go of (frozen objects are never collected), then freeze again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
