"""Starting and resuming runs: :func:`init`.

``refstore.init(project=..., id=..., resume=...)`` starts a run, or resumes
one so that more artifacts can be logged to it later:

* ``resume=None`` or ``"never"``: start a new run; an existing id is an error;
* ``"allow"``: resume the run with this id when it exists, else start it;
* ``"must"``: resume the run with this id; an unknown id is an error.

Inside a sweep trial (the ``function`` given to :func:`refstore.agent`),
``init()`` returns the trial's run: it belongs to the sweep, and its config
holds the trial's parameters over any ``config`` passed here (nested
parameters merge into nested config: both keep their other keys).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import re
import secrets
import string
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from refstore.artifact import Artifact
from refstore.catalog.base import RESUME_MODES, NewRun, Resume
from refstore.context import Context
from refstore.errors import RefstoreError
from refstore.names import parse_project, validate_name
from refstore.run import Run

__all__ = [
    "Trial",
    "current_run",
    "init",
    "new_id",
    "project_path",
    "split_path",
    "trial_scope",
]

log = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

# Runs started by init() in this process that have not finished, newest last.
_active: list[Run] = []
_active_lock = threading.Lock()


@dataclasses.dataclass
class Trial:
    """A sweep trial waiting for its function to call :func:`init`."""

    project: str
    sweep: str
    params: Mapping[str, Any]
    context: Context
    run: Run | None = None


_trial: contextvars.ContextVar[Trial | None] = contextvars.ContextVar(
    "refstore_trial", default=None
)


def init(
    project: str | None = None,
    id: str | None = None,
    resume: str | None = None,
    job_type: str | None = None,
    config: Mapping[str, Any] | None = None,
    name: str | None = None,
    sweep: str | None = None,
    save_code: bool = False,
    *,
    context: Context | None = None,
) -> Run:
    """Start a run (or resume one); use it as a context manager.

    ``project`` is ``entity/project`` (or a bare project, or
    ``REFSTORE_PROJECT``); ``id`` defaults to a new random id. The run is
    finished when the ``with`` block ends, failed when the block raised;
    without ``with``, call :meth:`Run.finish`. ``save_code=True`` logs the
    main script (or notebook) as a ``code`` artifact that the run uses.
    """
    run_id = validate_name(id, "run id") if id else new_id()
    trial = _trial.get()
    if trial is not None:
        if trial.run is None:
            _check_trial(trial, project, resume, sweep)
            params = _merged(config or {}, trial.params)
            new = NewRun(trial.project, run_id, name, job_type, params, trial.sweep)
            trial.run = _start(trial.context, new, "never", save_code)
        return trial.run
    ctx = context or Context.current()
    new = NewRun(
        project_path(project, ctx), run_id, name, job_type, dict(config or {}), sweep
    )
    return _start(ctx, new, _resume_mode(resume, id), save_code)


def current_run() -> Run | None:
    """The newest run :func:`init` started in this process that is still running."""
    with _active_lock:
        return _active[-1] if _active else None


def new_id() -> str:
    """A fresh run or sweep id: eight lowercase letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def project_path(project: str | None, context: Context) -> str:
    """``entity/project`` from ``project`` or ``REFSTORE_PROJECT``."""
    chosen = project or context.settings.project
    if chosen is None:
        raise RefstoreError(
            "no project given: pass project='entity/project' or set REFSTORE_PROJECT"
        )
    entity, name = parse_project(chosen)
    return f"{entity}/{name}"


def split_path(path: str, context: Context) -> tuple[str, str]:
    """``entity/project/id`` (or ``project/id``, or a bare ``id`` in
    ``REFSTORE_PROJECT``) of a run or sweep as (``entity/project``, id)."""
    where, _, key = path.strip("/").rpartition("/")
    return project_path(where or None, context), validate_name(key, "id")


@contextlib.contextmanager
def trial_scope(trial: Trial) -> Iterator[Trial]:
    """Make ``trial`` the one :func:`init` serves while the block runs."""
    token = _trial.set(trial)
    try:
        yield trial
    finally:
        _trial.reset(token)


def _merged(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``params`` over it, merging the dictionaries both hold."""
    merged = dict(config)
    for key, value in params.items():
        inner = merged.get(key)
        if isinstance(value, Mapping) and isinstance(inner, Mapping):
            merged[key] = _merged(inner, value)
        else:
            merged[key] = value
    return merged


def _resume_mode(resume: str | None, run_id: str | None) -> Resume:
    if resume is None:
        return "never"
    if resume not in RESUME_MODES:
        raise RefstoreError(
            f"resume={resume!r} is not a resume mode: use 'allow', 'must' or 'never'"
        )
    if resume == "must" and run_id is None:
        raise RefstoreError("resume='must' needs the id of the run to resume")
    return resume


def _start(ctx: Context, new: NewRun, resume: Resume, save_code: bool) -> Run:
    record, _resumed = ctx.catalog.start_run(new, resume)
    run = Run(record, ctx, active=True)
    with _active_lock:
        _active.append(run)
    run._on_finish.append(_forget)
    if save_code:
        _save_code(run)
    return run


def _forget(run: Run) -> None:
    with _active_lock:
        if run in _active:
            _active.remove(run)


def _check_trial(
    trial: Trial, project: str | None, resume: str | None, sweep: str | None
) -> None:
    if project is not None and project_path(project, trial.context) != trial.project:
        raise RefstoreError(
            f"this sweep trial belongs to {trial.project}; call init() without "
            f"a project, or with project={trial.project!r}"
        )
    if sweep not in (None, trial.sweep) or resume is not None:
        raise RefstoreError(
            f"inside a trial of sweep {trial.sweep}, init() starts the trial's "
            "run: pass neither another sweep nor resume"
        )


def _save_code(run: Run) -> None:
    source = _main_program()
    if source is None:
        log.warning(
            "save_code=True, but run %s has no main script or notebook file to "
            "save; log code with an Artifact of type 'code' and add_file",
            run.path,
        )
        return
    name = _UNSAFE.sub("-", f"source-{source.name}").strip("-.")[:128]
    code = Artifact(name, "code", metadata={"path": str(source)})
    code.add_file(source)
    run.use_artifact(code)
    log.info("saved %s as code of run %s", source, run.path)


def _main_program() -> Path | None:
    """The notebook or script this process runs, when there is a file for it."""
    main = sys.modules.get("__main__")
    candidates = [
        # VS Code's notebooks name their file here; Jupyter servers 2.x
        # export the notebook's path to its kernel.
        getattr(main, "__vsc_ipynb_file__", None),
        os.environ.get("JPY_SESSION_NAME"),
        getattr(main, "__file__", None),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None
