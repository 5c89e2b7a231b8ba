"""``refstore://``: artifact versions as a read-only fsspec filesystem.

``refstore://ENTITY/PROJECT/NAME:ALIAS/path/in/artifact`` names one entry of
an artifact version (``NAME`` alone means ``NAME:latest``). Opening it reads
the object version the entry pins, straight from its store, in ranged reads
as the reader seeks: pandas, pyarrow and anything fsspec-aware can read a
file of a large artifact without fetching it::

    import pandas, refstore.fs
    frame = pandas.read_csv("refstore://acme/vision/furniture:v3/labels.csv")

``ls`` lists the manifest (folders are derived from the entry paths), and
``info`` returns the entry: size, type, ETag, version, reference, digest.
Importing this module registers the protocol; the ``fsspec.specs`` entry
point does so without an import. Options: ``context`` (a
:class:`~refstore.context.Context`; default: the environment's).

An alias is resolved when a filesystem instance first touches the artifact
and then kept (fsspec caches instances): :meth:`RefstoreFileSystem.
invalidate_cache` forgets it. Reads are pinned (by version, or by ETag with
If-Match), so they never return other bytes than the recorded ones. A file
read from its first byte to its last in order (what ``read()``, pandas'
CSV reader and ``shutil.copyfileobj`` do) is also hashed on the way and
checked against every checksum its entry records, as a fetch checks it: the
read that reaches the end raises :class:`~refstore.errors.IntegrityError` on
a mismatch. Reads out of order (a Parquet footer first) cannot be hashed, as
only whole objects have a recorded checksum; they rely on the pin alone.
"""

from __future__ import annotations

import contextlib
import posixpath
import threading
from typing import Any

import fsspec
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from refstore.api import Api
from refstore.checksums import Checks, Hasher
from refstore.context import Context
from refstore.errors import NotFoundError
from refstore.manifest import ManifestEntry
from refstore.names import LATEST
from refstore.transfer import entry_info, mismatch

__all__ = ["RefstoreFile", "RefstoreFileSystem"]

PROTOCOL = "refstore"


class _Tree:
    """One artifact version's entries, and the folders their paths imply."""

    def __init__(self, path: str, version: str, entries: list[ManifestEntry]) -> None:
        self.path = path
        self.version = version
        self.files = {entry.path: entry for entry in entries}
        self.folders: dict[str, set[str]] = {"": set()}
        for name in self.files:
            child, parent = name, posixpath.dirname(name)
            while True:
                known = parent in self.folders
                self.folders.setdefault(parent, set()).add(child)
                if known or not parent:
                    break
                child, parent = parent, posixpath.dirname(parent)


class RefstoreFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Artifact versions of the refstore catalog, read-only."""

    protocol = PROTOCOL
    root_marker = ""

    def __init__(self, context: Context | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._context = context
        self._trees: dict[tuple[str, str], _Tree] = {}
        self._lock = threading.Lock()

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        text = text.removeprefix(f"{PROTOCOL}://").removeprefix(f"{PROTOCOL}:")
        return text.strip("/")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        tree, inner = self._locate(path)
        if inner in tree.files:
            found = [self._file_info(tree, tree.files[inner])]
        elif inner in tree.folders:
            found = [self._child_info(tree, c) for c in sorted(tree.folders[inner])]
        else:
            raise FileNotFoundError(f"{path}: no such file or folder in {tree.path}")
        return found if detail else [item["name"] for item in found]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        tree, inner = self._locate(path)
        if inner in tree.files:
            return self._file_info(tree, tree.files[inner])
        if inner in tree.folders:
            return _folder_info(tree, inner)
        raise FileNotFoundError(f"{path}: no such file or folder in {tree.path}")

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> RefstoreFile:
        if mode != "rb":
            raise PermissionError(
                f"refstore:// is read-only; cannot open {path} {mode}"
            )
        tree, inner = self._locate(path)
        entry = tree.files.get(inner)
        if entry is None:
            raise FileNotFoundError(f"{path}: no such file in {tree.path}")
        return RefstoreFile(
            self,
            path,
            entry,
            block_size=block_size or "default",
            cache_options=cache_options,
            **kwargs,
        )

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget loaded manifests (and so re-resolve aliases)."""
        with self._lock:
            self._trees.clear()
        super().invalidate_cache(path)

    def read_range(self, entry: ManifestEntry, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object version ``entry`` pins."""
        context = self._current()
        if not entry.is_reference:
            with context.blobs.open(entry.digest) as stream:
                stream.seek(start)
                data: bytes = stream.read(end - start)
            return data
        provider = context.providers.for_ref(entry.object_ref())
        with contextlib.closing(
            provider.read(entry_info(entry), start=start, end=end)
        ) as stream:
            return stream.read()

    def _current(self) -> Context:
        return self._context or Context.current()

    def _locate(self, path: str) -> tuple[_Tree, str]:
        parts = self._strip_protocol(path).split("/")
        if len(parts) < 3 or not all(parts[:3]):
            raise FileNotFoundError(
                f"{path}: name an artifact version, refstore://ENTITY/PROJECT/"
                "NAME:ALIAS/path (listing projects is not supported)"
            )
        artifact = "/".join(parts[:3])
        return self._tree(artifact), "/".join(p for p in parts[3:] if p)

    def _tree(self, artifact: str) -> _Tree:
        """The manifest of ``artifact`` as named (its names keep that form)."""
        context = self._current()
        key = (context.settings.catalog_url, artifact)
        with self._lock:
            tree = self._trees.get(key)
        if tree is not None:
            return tree
        qualified = artifact if ":" in artifact else f"{artifact}:{LATEST}"
        try:
            loaded = Api(context=context).artifact(qualified)
        except NotFoundError as exc:
            raise FileNotFoundError(f"refstore://{artifact}: {exc}") from exc
        tree = _Tree(artifact, loaded.qualified_name, list(loaded.manifest))
        with self._lock:
            return self._trees.setdefault(key, tree)

    def _file_info(self, tree: _Tree, entry: ManifestEntry) -> dict[str, Any]:
        return {
            "name": f"{tree.path}/{entry.path}",
            "size": entry.size,
            "type": "file",
            "etag": entry.etag,
            "version": entry.version_id,
            "ref": entry.ref,
            "digest": entry.digest,
            "artifact": tree.version,
        }

    def _child_info(self, tree: _Tree, child: str) -> dict[str, Any]:
        if child in tree.files:
            return self._file_info(tree, tree.files[child])
        return _folder_info(tree, child)


def _folder_info(tree: _Tree, inner: str) -> dict[str, Any]:
    name = f"{tree.path}/{inner}" if inner else tree.path
    return {"name": name, "size": 0, "type": "directory"}


class RefstoreFile(AbstractBufferedFile):  # type: ignore[misc]
    """One entry, read in ranges of its pinned object version.

    Ranges that follow on from the bytes hashed so far are hashed too; once
    the last byte is hashed, the digests are checked against the entry's
    record (once per open file).
    """

    def __init__(
        self,
        fs: RefstoreFileSystem,
        path: str,
        entry: ManifestEntry,
        **kwargs: Any,
    ) -> None:
        self.entry = entry
        self._checks = Checks.for_entry(entry)
        self._hashers: dict[str, Hasher] | None = (
            self._checks.hashers() if self._checks.has_checksum else None
        )
        self._hashed = 0
        super().__init__(fs, path, mode="rb", size=entry.size or 0, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if start >= end:
            return b""
        data: bytes = self.fs.read_range(self.entry, start, end)
        self._hash_in_order(start, data)
        return data

    def _hash_in_order(self, start: int, data: bytes) -> None:
        """Hash what ``data`` adds past the hashed bytes; check at the end."""
        if self._hashers is None or not start <= self._hashed < start + len(data):
            return  # nothing to check, or not the next bytes in order
        fresh = data if start == self._hashed else data[self._hashed - start :]
        for hasher in self._hashers.values():
            hasher.update(fresh)
        self._hashed = start + len(data)
        if self._hashed < self.size:
            return
        hashers, self._hashers = self._hashers, None
        problems = self._checks.mismatches(hashers, self._hashed)
        if problems:
            raise mismatch(self.entry, problems)


fsspec.register_implementation(PROTOCOL, RefstoreFileSystem, clobber=True)
