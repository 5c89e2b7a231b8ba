"""Artifacts: build a manifest from references and files, log it, load it back.

An :class:`Artifact` starts as a draft: ``add_reference`` captures objects in
a store (pinned to their version and ETag, nothing copied), ``add_file`` and
``add_dir`` hash local files that will be copied into the blob store. Saving
logs the draft as the next version of the artifact in a project; an artifact
loaded from the catalog has the same face, with ``version`` and ``aliases``
set and its manifest read lazily. Its description, metadata, tags, TTL and
aliases stay editable: ``save()`` on a logged version stores those edits
(never the manifest).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import logging
import os
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from refstore.cache import FetchCache
from refstore.capture import iter_capture
from refstore.catalog.base import (
    LoadedFields,
    NewVersion,
    VersionEdit,
    VersionRecord,
)
from refstore.context import Context
from refstore.errors import ConflictError, IntegrityError, RefstoreError
from refstore.fetch import FetchResult, PartPolicy, fetch
from refstore.manifest import (
    Manifest,
    ManifestEntry,
    check_entry_path,
    read_stored,
    write_stored,
)
from refstore.manifest_diff import ManifestDiff, diff_manifests
from refstore.names import LATEST, parse_project, validate_alias, validate_name
from refstore.progress import TransferProgress
from refstore.ttl import INHERIT, TtlPolicy, check_ttl
from refstore.uri import ObjectRef, parse_uri
from refstore.verify import (
    EntryStream,
    ProgressCallback,
    ResultCallback,
    Shard,
    VerifyReport,
    stored_entries,
    verify,
)

if TYPE_CHECKING:
    from refstore.run import Run

__all__ = ["Artifact"]

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024


class Artifact:
    """A named, typed, versioned set of references and files."""

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        context: Context | None = None,
    ) -> None:
        self.name = validate_name(name, "artifact name")
        self.type = validate_name(type, "artifact type")
        self.description = description
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.tags: list[str] = []
        self.aliases: list[str] = []
        self._ttl: TtlPolicy = INHERIT
        self._context = context
        self._manifest: Manifest | None = Manifest()
        self._sources: dict[str, Path] = {}
        self._record: VersionRecord | None = None
        self._created: bool | None = None

    # -- building -------------------------------------------------------

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[ManifestEntry]:
        """Record the object or folder at ``uri``, pinned to its current version.

        A folder (``s3://b/data/``, or ``s3://b/data`` when no such object
        exists) records every object under it, named by its key relative to
        the folder and placed under ``name`` when given. ``checksum=False``
        records the URI alone without contacting the store. ``progress`` is
        called with the number of objects captured so far, once per 1000.
        """
        self._require_draft()
        ref = parse_uri(uri)
        if not checksum:
            entry = ManifestEntry(
                path=self._path(name or _basename(ref)), digest=uri, ref=uri
            )
            return self._add([entry])
        provider = self._ctx.providers.for_ref(ref)
        entries = []
        for rel, info in iter_capture(ref, provider, max_objects=max_objects):
            entries.append(
                ManifestEntry.from_info(self._reference_path(ref, name, rel), info)
            )
            if progress is not None and len(entries) % 1000 == 0:
                progress(len(entries))
        entries.sort(key=lambda entry: entry.path)
        return self._add(entries)

    def add_file(
        self, local_path: str | os.PathLike[str], name: str | None = None
    ) -> ManifestEntry:
        """Add a local file, copied into the blob store when the artifact is saved."""
        self._require_draft()
        source = Path(local_path)
        if not source.is_file():
            raise RefstoreError(f"{source} is not a file; pass a file path to add_file")
        path = self._path(name or source.name)
        digest, size = _sha256_file(source)
        entry = ManifestEntry(
            path=path, digest=digest, size=size, extra={"sha256": digest}
        )
        self._add([entry])
        self._sources[path] = source
        return entry

    def add_dir(
        self, local_path: str | os.PathLike[str], name: str | None = None
    ) -> list[ManifestEntry]:
        """Add every file under a local folder, placed under ``name`` when given."""
        self._require_draft()
        root = Path(local_path)
        if not root.is_dir():
            raise RefstoreError(f"{root} is not a folder; pass a folder to add_dir")
        entries = []
        for file in sorted(_walk_files(root)):
            relative = file.relative_to(root).as_posix()
            target = posixpath.join(name, relative) if name else relative
            entries.append(self.add_file(file, name=target))
        return entries

    # -- logging --------------------------------------------------------

    def save(
        self,
        project: str | None = None,
        aliases: Iterable[str] = (),
        *,
        force: bool = False,
    ) -> Artifact:
        """Log this draft as the next version in ``project`` (entity/project).

        Logging content identical to the artifact's ``latest`` version creates
        no new version: this artifact becomes that version. On a logged
        version, save the edits of its description, metadata, tags, TTL and
        aliases (``aliases`` are added to them). Only the fields changed since
        it was loaded are written, and ConflictError says when someone else
        changed one of them meanwhile; ``force=True`` overwrites all of them
        instead. Tags and aliases merge with other edits.
        """
        if self._record is not None:
            return self._save_edits(aliases, force=force)
        return self._log(project, aliases)

    def _log(
        self, project: str | None, aliases: Iterable[str], *, run: str | None = None
    ) -> Artifact:
        """Log the draft; ``run`` is the id of the run in ``project`` logging it."""
        self._require_draft()
        project_path = self._project_path(project)
        wanted = {*self.aliases, *aliases} - {LATEST}
        alias_list = tuple(sorted(validate_alias(a) for a in wanted))
        manifest = self.manifest
        self._store_files()
        started = time.monotonic()
        files: set[str] = set()
        with self._ctx.blobs.writer() as blob:
            # BlobWriter hashes what passes through; it is all write_stored uses.
            stream = cast(IO[bytes], blob)
            entries = _noting_files(manifest.sorted_entries(), files)
            digest, count = write_stored(entries, stream)
        new = NewVersion(
            project=project_path,
            name=self.name,
            type=self.type,
            digest=digest,
            manifest_blob=blob.digest,
            entry_count=count,
            total_size=manifest.total_size,
            description=self.description,
            metadata=self.metadata,
            aliases=alias_list,
            tags=tuple(self.tags),
            ttl=self._ttl,
            run=run,
            files=frozenset(files),
        )
        record, created = self._ctx.catalog.log_version(new)
        self._become(record)
        self._created = created
        log.info(
            "%s %s (%d entries, %d bytes) in %.2f s",
            "logged" if created else "unchanged, kept",
            record.path,
            count,
            manifest.total_size,
            time.monotonic() - started,
        )
        return self

    # -- a logged version ----------------------------------------------

    @classmethod
    def _from_record(cls, record: VersionRecord, context: Context) -> Artifact:
        artifact = cls.__new__(cls)
        artifact._context = context
        artifact._sources = {}
        artifact._manifest = None
        artifact._created = None
        artifact._become(record)
        return artifact

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            assert self._record is not None
            with self._ctx.blobs.open(self._record.manifest_blob) as stream:
                self._manifest = Manifest(read_stored(stream))
        return self._manifest

    @property
    def is_draft(self) -> bool:
        return self._record is None

    @property
    def created_new_version(self) -> bool | None:
        """After ``save``: False when identical content was already logged."""
        return self._created

    @property
    def version(self) -> str | None:
        """``v0``, ``v1``, ...; None for a draft."""
        return None if self._record is None else self._record.version_name

    @property
    def ttl(self) -> TtlPolicy:
        """A timedelta after logging, None (keep forever) or INHERIT (the project's)."""
        return self._ttl

    @ttl.setter
    def ttl(self, value: TtlPolicy) -> None:
        self._ttl = check_ttl(value)

    @property
    def expires_at(self) -> datetime.datetime | None:
        """When this version expires; None when it is kept forever or a draft."""
        return None if self._record is None else self._record.expires_at

    @property
    def project(self) -> str | None:
        return None if self._record is None else self._record.project

    @property
    def qualified_name(self) -> str:
        """``entity/project/name:vN`` for a logged version."""
        if self._record is None:
            return f"{self.name} (draft)"
        return self._record.path

    @property
    def digest(self) -> str:
        if self._record is not None:
            return self._record.digest
        return self.manifest.digest()

    @property
    def size(self) -> int:
        if self._record is not None:
            return self._record.total_size
        return self.manifest.total_size

    @property
    def entry_count(self) -> int:
        if self._record is not None:
            return self._record.entry_count
        return len(self.manifest)

    @property
    def created_at(self) -> datetime.datetime | None:
        return None if self._record is None else self._record.created_at

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        jobs: int | None = None,
        path_prefix: str | None = None,
        skip_missing: bool = False,
        skip_cache: bool = False,
    ) -> Path:
        """Fetch the exact recorded object versions into ``root``; return it.

        ``path_prefix`` fetches only the entries whose path starts with it;
        ``skip_missing`` skips entries whose object or version is gone
        instead of failing; ``skip_cache`` bypasses the fetch cache.
        """
        result = self.fetch(
            root,
            jobs=jobs,
            path_prefix=path_prefix,
            skip_missing=skip_missing,
            cache=not skip_cache,
        )
        return result.root

    def fetch(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        jobs: int | None = None,
        path_prefix: str | None = None,
        skip_missing: bool = False,
        cache: bool = True,
        link: bool = True,
        parts: PartPolicy | None = None,
        progress: TransferProgress | None = None,
    ) -> FetchResult:
        """Like :meth:`download`, returning what was fetched, cached and skipped.

        Fetched objects go through the fetch cache (``REFSTORE_CACHE_DIR``)
        and are hard-linked from it (``link=False``: copied) unless
        ``cache=False``; see :func:`refstore.fetch.fetch` for the rest.
        """
        target = Path(root) if root is not None else self._default_root()
        settings = self._ctx.settings
        return fetch(
            self.manifest,
            target,
            providers=self._ctx.providers,
            blobs=self._blob_source(),
            cache=FetchCache.from_settings(settings) if cache else None,
            jobs=jobs,
            path_prefix=path_prefix,
            skip_missing=skip_missing,
            link=link,
            parts=parts,
            progress=progress,
        )

    def verify(
        self,
        *,
        jobs: int | None = None,
        shard: Shard | str | None = None,
        keep_ok: bool = False,
        hash_files: bool = False,
        progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> VerifyReport:
        """Check every entry against its store, downloading nothing.

        ``report.exit_code()`` is what ``refstore verify`` exits with; see
        :func:`refstore.verify.verify` for the options. A draft's copied files
        are ``unverifiable``: they reach the blob store when it is saved.
        """
        entries: Manifest | EntryStream
        blobs = None
        if self._record is None:
            entries = self.manifest
        else:
            # Streamed from the blob store: a manifest of millions of entries
            # is never loaded whole.
            blobs = self._ctx.blobs
            entries = stored_entries(blobs, self._record.manifest_blob)
        return verify(
            entries,
            providers=self._ctx.providers,
            blobs=blobs,
            source=self.qualified_name,
            jobs=jobs,
            shard=shard,
            keep_ok=keep_ok,
            hash_files=hash_files,
            progress=progress,
            on_result=on_result,
        )

    def diff(self, other: Artifact | Manifest) -> ManifestDiff:
        """What changed from this artifact to ``other``, an artifact or a manifest.

        Paths added, removed, changed (and in what: reference, object
        version, ETag, sha256, size) and moved; unchanged paths are counted.
        Only the two manifests are read: no object store is contacted.
        """
        new = other if isinstance(other, Manifest) else other.manifest
        return diff_manifests(self.manifest, new)

    # -- lineage and life cycle ----------------------------------------

    def logged_by(self) -> Run | None:
        """The run that logged this version, if a run did."""
        from refstore.run import Run  # run.py imports this module

        record = self._ctx.catalog.logged_by(*self._version_key())
        return None if record is None else Run(record, self._ctx)

    def used_by(self) -> list[Run]:
        """The runs that used this version, in order of first use."""
        from refstore.run import Run  # run.py imports this module

        records = self._ctx.catalog.used_by(*self._version_key())
        return [Run(record, self._ctx) for record in records]

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version from the catalog.

        Refused while aliases other than ``latest`` name it, unless
        ``delete_aliases``. Copied files and the manifest stay in the blob
        store until ``refstore gc``; referenced objects are never touched.
        """
        self._ctx.catalog.delete_version(
            *self._version_key(), delete_aliases=delete_aliases
        )

    def __repr__(self) -> str:
        return f"<Artifact {self.qualified_name} type={self.type}>"

    # -- helpers --------------------------------------------------------

    @property
    def _ctx(self) -> Context:
        if self._context is None:
            self._context = Context.current()
        return self._context

    def _become(self, record: VersionRecord) -> None:
        self._record = record
        self.name = record.name
        self.type = record.type
        self.description = record.description
        # A deep copy: nested values edited in place must not change the
        # record, which save() compares them with.
        self.metadata = copy.deepcopy(dict(record.metadata))
        self.tags = list(record.tags)
        self.aliases = list(record.aliases)
        self._ttl = record.ttl

    def _bind(self, context: Context) -> None:
        """Use ``context`` unless this artifact was given its own."""
        if self._context is None:
            self._context = context

    def _version_key(self) -> tuple[str, str, int]:
        """(project, name, number) of a logged version."""
        if self._record is None:
            raise ConflictError(
                f"{self.name} is a draft; log it first (run.log_artifact or save)"
            )
        return self._record.project, self._record.name, self._record.version

    def _save_edits(self, aliases: Iterable[str], *, force: bool) -> Artifact:
        record = self._record
        assert record is not None
        # Only the aliases changed here: the others may have moved meanwhile.
        loaded = set(record.aliases) - {LATEST}
        wanted = {*self.aliases, *aliases} - {LATEST}
        edit = VersionEdit(
            description=self.description,
            metadata=dict(self.metadata),
            tags=tuple(self.tags),
            ttl=self._ttl,
            add_aliases=tuple(sorted(wanted - loaded)),
            remove_aliases=tuple(sorted(loaded - wanted)),
            loaded=None if force else _loaded_fields(record),
        )
        self._become(self._ctx.catalog.update_version(*self._version_key(), edit))
        return self

    def _require_draft(self) -> None:
        if self._record is not None:
            raise ConflictError(
                f"{self._record.path} is logged and cannot change; create a new "
                "Artifact with the same name to log the next version"
            )

    def _add(self, entries: Sequence[ManifestEntry]) -> list[ManifestEntry]:
        manifest = self.manifest
        for entry in entries:
            manifest.add(entry)
        return list(entries)

    def _path(self, path: str) -> str:
        return check_entry_path(path)

    def _reference_path(self, ref: ObjectRef, name: str | None, rel: str) -> str:
        if ref.is_prefix or rel != posixpath.basename(ref.key):
            return self._path(posixpath.join(name, rel) if name else rel)
        return self._path(name or rel)

    def _project_path(self, project: str | None) -> str:
        project = project or self._ctx.settings.project
        if project is None:
            raise RefstoreError(
                "no project given: pass project='entity/project' or set "
                "REFSTORE_PROJECT"
            )
        entity, name = parse_project(project)
        return f"{entity}/{name}"

    def _store_files(self) -> None:
        blobs = self._ctx.blobs
        for path, source in self._sources.items():
            digest, _ = blobs.put_file(source)
            if digest != self.manifest.entries[path].digest:
                raise IntegrityError(
                    f"{source} changed after it was added as {path!r}; add it again"
                )

    def _blob_source(self) -> Any:
        return self._ctx.blobs

    def _default_root(self) -> Path:
        label = f"{self.name}:{self.version or 'draft'}"
        if os.name == "nt":
            label = label.replace(":", "-")
        return Path("artifacts") / label


def _loaded_fields(record: VersionRecord) -> LoadedFields:
    return LoadedFields(
        description=record.description,
        metadata=record.metadata,
        tags=record.tags,
        ttl=record.ttl,
    )


def _basename(ref: ObjectRef) -> str:
    return posixpath.basename(ref.key.rstrip("/")) or ref.bucket


def _walk_files(root: Path) -> Iterable[Path]:
    # Symlinked folders are not followed: they could point anywhere, and a
    # loop would never end.
    for folder, _dirs, files in os.walk(root):
        for file in files:
            path = Path(folder) / file
            if path.is_file():
                yield path


def _sha256_file(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def _noting_files(
    entries: Iterable[ManifestEntry], files: set[str]
) -> Iterator[ManifestEntry]:
    """Pass entries through, adding the blob of each copied file to ``files``.

    The catalog records them as blobs the version needs, so that gc never
    reads the manifest to find them.
    """
    for entry in entries:
        if entry.ref is None:
            files.add(entry.digest)
        yield entry
