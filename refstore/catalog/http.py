"""The catalog served by a refstore service (``REFSTORE_URL=http(s)://...``).

:class:`HttpCatalog` implements :class:`~refstore.catalog.base.Catalog` by
calling the service's routes; records travel as :mod:`refstore.catalog.wire`
JSON. The token comes from ``REFSTORE_TOKEN``, else from what ``refstore
login`` saved for this URL; without one, requests are anonymous and see
only public and open projects.

Logging a version uploads what the service lacks first (the manifest and
copied files, asked for in one request), then records the version with an
idempotency key that stays the same across retries: a log interrupted by a
lost connection or a restarting service is sent again and recorded once.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from refstore.blobs import BlobStore
from refstore.catalog.base import (
    ArtifactRecord,
    GcReport,
    NewRun,
    NewVersion,
    ProjectDeletion,
    ProjectRecord,
    Resume,
    RunRecord,
    RunState,
    StoredRunState,
    SweepRecord,
    ValueFilter,
    VersionEdit,
    VersionRecord,
)
from refstore.catalog.http_blobs import ServiceBlobs
from refstore.catalog.http_transport import Transport, quote
from refstore.catalog.run_filters import lookups
from refstore.catalog.wire import (
    artifact_from_wire,
    edit_to_wire,
    new_run_to_wire,
    new_version_to_wire,
    project_deletion_from_wire,
    project_from_wire,
    run_from_wire,
    sweep_from_wire,
    trial_from_wire,
    value_filters_to_wire,
    version_from_wire,
)
from refstore.config import Settings
from refstore.credentials import load_token
from refstore.errors import CatalogError, InvalidReferenceError
from refstore.manifest import read_stored

__all__ = ["HttpCatalog"]

_MISSING_BATCH = 10_000
_UPLOADS = 8


class HttpCatalog:
    """A catalog behind a refstore service."""

    def __init__(self, transport: Transport, blobs: ServiceBlobs) -> None:
        self.transport = transport
        self.blobs: BlobStore = blobs
        self._staged = blobs

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpCatalog:
        url = settings.catalog_url
        token = settings.token or load_token(settings.home, url)
        transport = Transport(url, token)
        return cls(transport, ServiceBlobs(settings.blob_dir, transport))

    def __repr__(self) -> str:
        return f"HttpCatalog({self.transport.url!r})"

    def close(self) -> None:
        self.transport.close()

    def _call(self, method: str, path: str, **options: Any) -> Any:
        options.setdefault("idempotent", method in ("GET", "HEAD", "PUT", "PATCH"))
        return self.transport.json(method, "/api/v1" + path, **options)

    # -- versions -------------------------------------------------------

    def log_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        self._upload_blobs(new.project, self._needed_blobs(new))
        answer = self._call(
            "POST",
            _artifact(new.project, new.name) + "/versions",
            body=new_version_to_wire(new),
            # One key for every retry of this log: recorded at most once.
            headers={"Idempotency-Key": uuid.uuid4().hex},
            idempotent=True,
        )
        return version_from_wire(answer["version"]), bool(answer["created"])

    def _needed_blobs(self, new: NewVersion) -> list[str]:
        # ``new.files`` only saves reading the manifest again here; the
        # service reads the uploaded manifest itself and never trusts it.
        files = new.files
        if files is None:
            with self.blobs.open(new.manifest_blob) as stream:
                entries = read_stored(stream)
                files = frozenset(e.digest for e in entries if e.ref is None)
        return [new.manifest_blob, *sorted(files - {new.manifest_blob})]

    def _upload_blobs(self, project: str, digests: list[str]) -> None:
        missing: list[str] = []
        for start in range(0, len(digests), _MISSING_BATCH):
            answer = self._call(
                "POST",
                _project(project) + "/blobs/missing",
                body={"digests": digests[start : start + _MISSING_BATCH]},
                idempotent=True,
            )
            missing.extend(answer["missing"])
        for digest in missing:
            if not self._staged.has_local(digest):
                raise CatalogError(
                    f"the blob {digest} is neither at the service nor in the local "
                    f"blob store {self.blobs.root}; log its file again"
                )
        with concurrent.futures.ThreadPoolExecutor(_UPLOADS) as pool:
            uploads = [pool.submit(self._upload, project, d) for d in missing]
            for upload in uploads:
                upload.result()

    def _upload(self, project: str, digest: str) -> None:
        path = _project(project) + "/blobs/" + digest
        self.transport.upload("/api/v1" + path, self.blobs.path(digest))

    def get_version(self, project: str, name: str, selector: str) -> VersionRecord:
        path = _artifact(project, name) + "/versions" + quote(selector)
        return version_from_wire(self._call("GET", path))

    def list_versions(self, project: str, name: str) -> list[VersionRecord]:
        answer = self._call("GET", _artifact(project, name) + "/versions")
        return [version_from_wire(item) for item in answer["versions"]]

    def update_version(
        self, project: str, name: str, version: int, edit: VersionEdit
    ) -> VersionRecord:
        path = _artifact(project, name) + f"/versions/v{version}"
        return version_from_wire(self._call("PUT", path, body=edit_to_wire(edit)))

    def delete_version(
        self, project: str, name: str, version: int, *, delete_aliases: bool = False
    ) -> VersionRecord:
        path = _artifact(project, name) + f"/versions/v{version}"
        query = {"delete_aliases": "true" if delete_aliases else "false"}
        return version_from_wire(self._call("DELETE", path, query=query))

    # -- projects and artifacts -----------------------------------------

    def list_projects(self) -> list[ProjectRecord]:
        answer = self._call("GET", "/projects")
        return [project_from_wire(item) for item in answer["projects"]]

    def get_project(self, project: str) -> ProjectRecord:
        return project_from_wire(self._call("GET", _project(project)))

    def list_artifacts(self, project: str) -> list[ArtifactRecord]:
        answer = self._call("GET", _project(project) + "/artifacts")
        return [artifact_from_wire(item) for item in answer["artifacts"]]

    def list_artifact_types(self, project: str) -> list[str]:
        answer = self._call("GET", _project(project) + "/artifact-types")
        return [str(kind) for kind in answer["types"]]

    def delete_project(self, project: str, *, dry_run: bool = False) -> ProjectDeletion:
        query = {"dry_run": "true" if dry_run else "false"}
        answer = self._call("DELETE", _project(project), query=query)
        return project_deletion_from_wire(answer)

    def rename_project(self, project: str, new: str) -> ProjectRecord:
        # Not retried: a rename that went through answers 404 the second time.
        path = _project(project) + "/rename"
        return project_from_wire(self._call("POST", path, body={"to": new}))

    # -- aliases --------------------------------------------------------

    def set_alias(
        self, project: str, name: str, alias: str, version: int, *, move: bool = True
    ) -> VersionRecord:
        path = _artifact(project, name) + "/aliases" + quote(alias)
        body = {"version": f"v{version}", "move": move}
        return version_from_wire(self._call("PUT", path, body=body))

    def remove_alias(
        self, project: str, name: str, alias: str, version: int | None = None
    ) -> None:
        path = _artifact(project, name) + "/aliases" + quote(alias)
        query = {"version": None if version is None else f"v{version}"}
        self._call("DELETE", path, query=query)

    # -- runs -----------------------------------------------------------

    def start_run(self, new: NewRun, resume: Resume) -> tuple[RunRecord, bool]:
        answer = self._call(
            "POST",
            _project(new.project) + "/runs",
            body=new_run_to_wire(new, resume),
            # Starting twice resumes the first start unless resume="never".
            idempotent=resume != "never",
        )
        return run_from_wire(answer["run"]), bool(answer["resumed"])

    def get_run(self, project: str, run_id: str) -> RunRecord:
        return run_from_wire(self._call("GET", _run(project, run_id)))

    def update_run(
        self,
        project: str,
        run_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        state: StoredRunState | None = None,
    ) -> RunRecord:
        body = {
            "config": None if config is None else dict(config),
            "summary": None if summary is None else dict(summary),
            "state": state,
        }
        return run_from_wire(self._call("PATCH", _run(project, run_id), body=body))

    def list_runs(
        self,
        project: str,
        *,
        state: RunState | None = None,
        job_type: str | None = None,
        sweep: str | None = None,
        where: Sequence[ValueFilter] = (),
    ) -> list[RunRecord]:
        query = {"state": state, "job_type": job_type, "sweep": sweep}
        if where:
            # Checked here first, so that a bad filter fails as it does embedded.
            lookups(where)
            query["where"] = value_filters_to_wire(where)
        answer = self._call("GET", _project(project) + "/runs", query=query)
        return [run_from_wire(item) for item in answer["runs"]]

    # -- lineage --------------------------------------------------------

    def use_version(
        self, project: str, run_id: str, artifact_project: str, name: str, selector: str
    ) -> VersionRecord:
        body = {"project": artifact_project, "name": name, "selector": selector}
        path = _run(project, run_id) + "/used"
        return version_from_wire(self._call("POST", path, body=body, idempotent=True))

    def logged_by(self, project: str, name: str, version: int) -> RunRecord | None:
        path = _artifact(project, name) + f"/versions/v{version}/logged-by"
        run = self._call("GET", path)["run"]
        return None if run is None else run_from_wire(run)

    def used_by(self, project: str, name: str, version: int) -> list[RunRecord]:
        path = _artifact(project, name) + f"/versions/v{version}/used-by"
        return [run_from_wire(item) for item in self._call("GET", path)["runs"]]

    def logged_versions(self, project: str, run_id: str) -> list[VersionRecord]:
        return self._versions(_run(project, run_id) + "/logged")

    def used_versions(self, project: str, run_id: str) -> list[VersionRecord]:
        return self._versions(_run(project, run_id) + "/used")

    def _versions(self, path: str) -> list[VersionRecord]:
        return [version_from_wire(v) for v in self._call("GET", path)["versions"]]

    # -- sweeps ---------------------------------------------------------

    def create_sweep(
        self, project: str, sweep_id: str, config: Mapping[str, Any]
    ) -> SweepRecord:
        body = {"id": sweep_id, "config": dict(config)}
        answer = self._call("POST", _project(project) + "/sweeps", body=body)
        return sweep_from_wire(answer)

    def get_sweep(self, project: str, sweep_id: str) -> SweepRecord:
        return sweep_from_wire(self._call("GET", _sweep(project, sweep_id)))

    def next_trial(
        self, project: str, sweep_id: str, limit: int | None = None
    ) -> tuple[SweepRecord, int | None]:
        path = _sweep(project, sweep_id) + "/trials"
        return trial_from_wire(self._call("POST", path, body={"limit": limit}))

    def finish_sweep(self, project: str, sweep_id: str) -> SweepRecord:
        path = _sweep(project, sweep_id) + "/finish"
        return sweep_from_wire(self._call("POST", path, idempotent=True))

    # -- retention ------------------------------------------------------

    def set_project_ttl(
        self, project: str, ttl: datetime.timedelta | None
    ) -> ProjectRecord:
        seconds = None if ttl is None else int(ttl.total_seconds())
        body = {"default_ttl": seconds}
        return project_from_wire(
            self._call("PUT", _project(project) + "/ttl", body=body)
        )

    def expired_versions(self) -> list[VersionRecord]:
        return self._versions("/retention/expired")

    def delete_expired(self) -> list[VersionRecord]:
        answer = self._call("DELETE", "/retention/expired", idempotent=True)
        return [version_from_wire(item) for item in answer["versions"]]

    def live_manifest_blobs(self) -> set[str]:
        answer = self._call("GET", "/retention/live-manifests")
        return {str(digest) for digest in answer["digests"]}

    def collect_garbage(self, *, dry_run: bool, grace: datetime.timedelta) -> GcReport:
        """Garbage collection runs at the service, over its own blob store."""
        body = {"dry_run": dry_run, "grace_seconds": int(grace.total_seconds())}
        answer = self._call("POST", "/retention/gc", body=body, idempotent=dry_run)
        return GcReport(
            versions=[version_from_wire(item) for item in answer["versions"]],
            blobs=list(answer["blobs"]),
            freed_bytes=int(answer["freed_bytes"]),
            dry_run=dry_run,
            # Absent from the answers of services older than the blob index.
            indexed_versions=int(answer.get("indexed_versions", 0)),
            manifests_read=int(answer.get("manifests_read", 0)),
        )


def _split(project: str) -> tuple[str, str]:
    parts = project.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise InvalidReferenceError(
            f"{project!r} is not a project: the catalog needs entity/project, "
            "e.g. acme/vision"
        )
    return parts[0], parts[1]


def _project(project: str) -> str:
    return "/projects" + quote(*_split(project))


def _artifact(project: str, name: str) -> str:
    return _project(project) + "/artifacts" + quote(name)


def _run(project: str, run_id: str) -> str:
    return _project(project) + "/runs" + quote(run_id)


def _sweep(project: str, sweep_id: str) -> str:
    return _project(project) + "/sweeps" + quote(sweep_id)
