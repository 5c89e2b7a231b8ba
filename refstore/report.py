"""Verification reports for people and for CI: a table, JSON, JUnit XML.

The JUnit file is written as results arrive (:class:`JUnitWriter`), one test
case per entry, so that its size never has to fit in memory; the totals, which
JUnit wants on the opening tag, are added when the run ends. Statuses in
``fail_on`` are failures, ``error`` is an error, ``unverifiable`` (unless in
``fail_on``) is skipped, everything else passes.
"""

from __future__ import annotations

import collections
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

from refstore.verify import DEFAULT_FAIL_ON, EntryResult, Status, VerifyReport

__all__ = ["JUnitWriter", "render_json", "render_text", "summary_line", "write_junit"]

# Characters XML 1.0 cannot carry at all, even escaped; object keys may.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SLOT = "refstore-testcases"
_COLUMNS = ("status", "path", "ref", "reason")


def summary_line(report: VerifyReport) -> str:
    """``acme/p/data:v3: 9 entries: 7 ok, 2 missing (4 requests, 0.3 s)``."""
    shard = "" if report.shard is None else f" (shard {report.shard})"
    counts = ", ".join(f"{n} {status}" for status, n in report.counts.items() if n)
    requests = sum(report.requests.values())
    return (
        f"{report.source}{shard}: {report.total} entries: {counts or 'none'} "
        f"({requests} requests, {report.seconds:.1f} s)"
    )


def render_text(report: VerifyReport, *, show_all: bool = False) -> str:
    """A table of the entries that are not ok (all of them with ``show_all``),
    the summary line, and the warnings."""
    rows = report.results if show_all else report.problems
    lines = _table(rows) if rows else []
    lines.append(summary_line(report))
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    return "\n".join(lines) + "\n"


def _table(results: list[EntryResult]) -> list[str]:
    cells = [
        [str(r.status), r.path, r.ref or "(copied file)", r.reason] for r in results
    ]
    widths = [
        max(len(name), *(len(row[i]) for row in cells))
        for i, name in enumerate(_COLUMNS)
    ]
    header = [name.upper() for name in _COLUMNS]
    return [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in [header, *cells]
    ]


def render_json(report: VerifyReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)


def write_junit(
    report: VerifyReport,
    path: str | os.PathLike[str],
    fail_on: frozenset[Status] = DEFAULT_FAIL_ON,
) -> None:
    """Write the JUnit XML of a report that kept every result."""
    with JUnitWriter(path, report.source, fail_on) as writer:
        for entry_result in report.results:
            writer.add(entry_result)
        writer.finish(report)


class JUnitWriter:
    """Streams one JUnit test case per entry; :meth:`finish` writes the file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        suite: str,
        fail_on: frozenset[Status] = DEFAULT_FAIL_ON,
    ) -> None:
        self.path = Path(path)
        self.suite = suite
        self.fail_on = fail_on
        self.counts: collections.Counter[str] = collections.Counter()
        # Open for the writer's lifetime; close() (or the with block) ends it.
        self._cases: IO[str] = tempfile.TemporaryFile(  # noqa: SIM115
            "w+", encoding="utf-8"
        )

    def add(self, entry_result: EntryResult) -> None:
        case = self._testcase(entry_result)
        self._cases.write(ET.tostring(case, encoding="unicode"))
        self._cases.write("\n")

    def finish(self, report: VerifyReport) -> None:
        """Write the whole file next to its destination, then rename it."""
        head, tail = self._frame(report).split(f"<{_SLOT} />")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".junit-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write('<?xml version="1.0" encoding="utf-8"?>\n')
                out.write(head + "\n")
                self._cases.seek(0)
                for line in self._cases:
                    out.write(line)
                out.write(tail + "\n")
            Path(tmp).replace(self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def close(self) -> None:
        self._cases.close()

    def __enter__(self) -> JUnitWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _testcase(self, entry_result: EntryResult) -> ET.Element:
        self.counts["tests"] += 1
        case = ET.Element(
            "testcase",
            classname=_xml(self.suite),
            name=_xml(entry_result.path),
            time="0",
        )
        status = entry_result.status
        detail = _xml(f"{entry_result.ref or '(copied file)'}: {entry_result.reason}")
        message = _xml(f"{status}: {entry_result.reason}")
        if status in self.fail_on:
            self.counts["failures"] += 1
            failure = ET.SubElement(case, "failure", type=str(status), message=message)
            failure.text = detail
        elif status is Status.ERROR:
            self.counts["errors"] += 1
            error = ET.SubElement(case, "error", type=str(status), message=message)
            error.text = detail
        elif status is Status.UNVERIFIABLE:
            self.counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=message)
        elif entry_result.reason:
            ET.SubElement(case, "system-out").text = detail
        return case

    def _frame(self, report: VerifyReport) -> str:
        """The document around the test cases, with a slot where they go."""
        totals = {
            name: str(self.counts[name])
            for name in ("tests", "failures", "errors", "skipped")
        }
        seconds = f"{report.seconds:.3f}"
        root = ET.Element(
            "testsuites", {"name": "refstore verify", "time": seconds, **totals}
        )
        suite = ET.SubElement(
            root, "testsuite", {"name": _xml(self.suite), "time": seconds, **totals}
        )
        properties = ET.SubElement(suite, "properties")
        if report.shard is not None:
            ET.SubElement(properties, "property", name="shard", value=str(report.shard))
        for warning in report.warnings:
            ET.SubElement(properties, "property", name="warning", value=_xml(warning))
        ET.SubElement(suite, _SLOT)
        if report.warnings:
            out = ET.SubElement(suite, "system-out")
            out.text = _xml("\n".join(f"warning: {w}" for w in report.warnings))
        return ET.tostring(root, encoding="unicode")


def _xml(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
