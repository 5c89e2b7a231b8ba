"""Which blobs each version needs, in the SQL catalog: what gc keeps.

A version needs its stored manifest and every copied file its entries name.
``version_blobs`` records them in the transaction that logs the version, and
``versions.blobs_indexed`` says the record is complete. Versions logged
before revision 0005, or by a writer that did not say which files it copied
(``NewVersion.files`` None), have their manifest recorded only; gc reads
their manifests once and completes them (:func:`index`).

Rows go when their version does (``ON DELETE CASCADE``), so what gc keeps is
one query over the versions still alive (:func:`needed_blobs`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select, union, update

from refstore.catalog.sql_rows import Tx, live
from refstore.catalog.tables import version_blobs, versions

__all__ = ["add", "index", "needed_blobs", "unindexed_manifests"]

# Rows per INSERT: a manifest may name a million copied files.
_CHUNK = 5000


def add(tx: Tx, version_pk: int, digests: Iterable[str]) -> None:
    """Record that the version needs ``digests`` (none of them recorded yet)."""
    rows = [{"version_id": version_pk, "digest": digest} for digest in sorted(digests)]
    for start in range(0, len(rows), _CHUNK):
        tx.conn.execute(insert(version_blobs), rows[start : start + _CHUNK])


def unindexed_manifests(tx: Tx) -> dict[int, str]:
    """The manifest blob of every live version whose record is incomplete."""
    rows = tx.conn.execute(
        select(versions.c.id, versions.c.manifest_blob)
        .where(live(tx.now), versions.c.blobs_indexed.is_(False))
        .order_by(versions.c.id)
    )
    return {row.id: row.manifest_blob for row in rows}


def index(tx: Tx, version_pk: int, digests: Iterable[str]) -> bool:
    """Complete a version's record; False when it is gone or already complete.

    The row is locked: two gcs indexing at once, or a delete of the version
    meanwhile, must not both insert or insert under a version that is gone.
    """
    found = tx.conn.execute(
        select(versions.c.id)
        .where(versions.c.id == version_pk, versions.c.blobs_indexed.is_(False))
        .with_for_update()
    ).first()
    if found is None:
        return False
    recorded = set(
        tx.conn.execute(
            select(version_blobs.c.digest).where(
                version_blobs.c.version_id == version_pk
            )
        ).scalars()
    )
    add(tx, version_pk, set(digests) - recorded)
    tx.conn.execute(
        update(versions).where(versions.c.id == version_pk).values(blobs_indexed=True)
    )
    return True


def needed_blobs(tx: Tx) -> set[str]:
    """Every blob a live version needs, as far as the records say.

    The manifests come from ``versions`` too: a version whose record is
    incomplete still needs its manifest, whatever else it names.
    """
    recorded = (
        select(version_blobs.c.digest)
        .join(versions, versions.c.id == version_blobs.c.version_id)
        .where(live(tx.now))
    )
    manifests = select(versions.c.manifest_blob).where(live(tx.now))
    return set(tx.conn.execute(union(recorded, manifests)).scalars())
