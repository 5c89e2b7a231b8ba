"""A run: one execution of code that logs and uses artifact versions.

:class:`Run` sits with the operations, beside :mod:`refstore.artifact`,
because artifacts hand runs out as well (``artifact.logged_by()``); the
workflow that starts and resumes runs is :func:`refstore.init` in
:mod:`refstore.runs`. A run read from the catalog (``Api().run(path)``,
``artifact.used_by()``) is the same class, inactive: it reads lineage and
edits config and summary, but logs nothing until it is resumed.

``run.config`` and ``run.summary`` behave like dicts and are saved to the
catalog whenever they change (and once more when the run finishes, which
catches edits inside nested values).

An active run sends heartbeats (:mod:`refstore.heartbeat`) until it
finishes; a run whose process died without finishing reads as ``crashed``
once its heartbeat is older than the catalog's run timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from types import TracebackType
from typing import Any

from refstore.artifact import Artifact
from refstore.catalog.base import RunRecord, RunState, StoredRunState
from refstore.context import Context
from refstore.errors import ConflictError, NotFoundError
from refstore.heartbeat import Heartbeat
from refstore.names import parse_artifact_path

__all__ = ["Run", "RunDict"]

log = logging.getLogger(__name__)


class RunDict(MutableMapping[str, Any]):
    """A run's config or summary: a dict that saves itself when it changes.

    Keys also read as attributes (``run.config.lr``). Values must be what
    JSON holds; numpy and torch scalars are stored as plain numbers.
    """

    def __init__(
        self, data: Mapping[str, Any], save: Callable[[dict[str, Any]], None]
    ) -> None:
        self._data = dict(data)
        self._save = save

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        data = dict(self._data)
        del data[key]
        self._commit(data)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["_data"][key]
        except KeyError:
            raise AttributeError(key) from None

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set several keys with one write to the catalog."""
        changes = dict(other, **kwargs)
        self._commit({**self._data, **{str(k): _plain(v) for k, v in changes.items()}})

    def _commit(self, data: dict[str, Any]) -> None:
        # Saved first: a value the catalog refuses must not linger here and
        # fail again when the run finishes.
        self._save(dict(data))
        self._data = data

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        return repr(self._data)


class Run:
    """A run of code in a project, with a config, a summary and lineage."""

    def __init__(
        self, record: RunRecord, context: Context, *, active: bool = False
    ) -> None:
        self._record = record
        self._context = context
        self._active = active
        self._on_finish: list[Callable[[Run], None]] = []
        self.config = RunDict(record.config, self._saver("config"))
        self.summary = RunDict(record.summary, self._saver("summary"))
        self._heartbeat: Heartbeat | None = None
        if active:
            self._heartbeat = Heartbeat(
                context.catalog,
                record.project,
                record.id,
                context.settings.heartbeat_interval,
            )
            self._heartbeat.start()

    # -- identity -------------------------------------------------------

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def project(self) -> str:
        """``entity/project``."""
        return self._record.project

    @property
    def path(self) -> str:
        """``entity/project/run_id``."""
        return self._record.path

    @property
    def name(self) -> str | None:
        return self._record.name

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def state(self) -> RunState:
        """running, finished, failed, or crashed (running, but silent for
        longer than the catalog's run timeout), as last read."""
        return self._record.state

    @property
    def sweep(self) -> str | None:
        """The id of the sweep this run is a trial of."""
        return self._record.sweep

    @property
    def record(self) -> RunRecord:
        return self._record

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"<Run {self.path} state={self.state}>"

    # -- recording ------------------------------------------------------

    def log(self, data: Mapping[str, Any]) -> None:
        """Record the newest values of metrics: they go to the summary."""
        self.summary.update(data)

    def log_artifact(
        self, artifact: Artifact, aliases: Iterable[str] | None = None
    ) -> Artifact:
        """Log a draft as the next version, recorded as this run's output."""
        self._require_active("log artifacts to")
        if not artifact.is_draft:
            raise ConflictError(
                f"{artifact.qualified_name} is already logged; a run logs drafts. "
                "Use run.use_artifact() to record it as an input"
            )
        artifact._bind(self._context)
        return artifact._log(self.project, aliases or (), run=self.id)

    def use_artifact(
        self, artifact: str | Artifact, type: str | None = None
    ) -> Artifact:
        """Record a version as this run's input and return it.

        ``artifact`` is ``name:alias`` (in this run's project),
        ``entity/project/name:alias`` or ``:vN``, or an Artifact; a draft is
        logged first.
        """
        self._require_active("record inputs of")
        if isinstance(artifact, Artifact):
            project, name, selector = self._logged(artifact)
        else:
            parsed = parse_artifact_path(artifact, self.project)
            project, name, selector = parsed.project_path, parsed.name, parsed.selector
        catalog = self._context.catalog
        if type is not None:
            # An artifact keeps its type, so checking before recording is safe.
            found = catalog.get_version(project, name, selector)
            if found.type != type:
                raise NotFoundError(
                    f"{found.path} is of type {found.type!r}, not {type!r}"
                )
        record = catalog.use_version(self.project, self.id, project, name, selector)
        log.info("run %s uses %s", self.path, record.path)
        return Artifact._from_record(record, self._context)

    def _logged(self, artifact: Artifact) -> tuple[str, str, str]:
        """(project, name, ``vN``) of ``artifact``, logging it if a draft."""
        if artifact.is_draft:
            artifact._bind(self._context)
            artifact._log(self.project, ())
        project, name, version = artifact._version_key()
        return project, name, f"v{version}"

    # -- lineage --------------------------------------------------------

    def logged_artifacts(self) -> list[Artifact]:
        """The versions this run logged (its outputs), in logging order."""
        records = self._context.catalog.logged_versions(self.project, self.id)
        return [Artifact._from_record(r, self._context) for r in records]

    def used_artifacts(self) -> list[Artifact]:
        """The versions this run used (its inputs), in order of first use."""
        records = self._context.catalog.used_versions(self.project, self.id)
        return [Artifact._from_record(r, self._context) for r in records]

    # -- life cycle -----------------------------------------------------

    def finish(self, exit_code: int | None = None) -> None:
        """End the run: finished, or failed when ``exit_code`` is not 0."""
        if not self._active:
            return
        if self._heartbeat is not None:
            self._heartbeat.stop()  # no heartbeat may follow the last update
        state: StoredRunState = "failed" if exit_code else "finished"
        self._record = self._context.catalog.update_run(
            self.project,
            self.id,
            config=self.config.as_dict(),
            summary=self.summary.as_dict(),
            state=state,
        )
        self._active = False
        log.info("run %s %s", self.path, state)
        for hook in self._on_finish:
            hook(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)

    # -- helpers --------------------------------------------------------

    def _saver(self, field: str) -> Callable[[dict[str, Any]], None]:
        def save(data: dict[str, Any]) -> None:
            catalog = self._context.catalog
            if field == "config":
                self._record = catalog.update_run(self.project, self.id, config=data)
            else:
                self._record = catalog.update_run(self.project, self.id, summary=data)

        return save

    def _require_active(self, what: str) -> None:
        if self._active:
            return
        raise ConflictError(
            f"the run {self.path} is not running in this process, so it cannot "
            f"{what}; resume it with refstore.init(project={self.project!r}, "
            f"id={self.id!r}, resume='must')"
        )


def _plain(value: Any) -> Any:
    """``value`` with numpy and torch scalars turned into Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    # A scalar array has the shape (); item() of a larger one would raise.
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value
