"""Progress bars while working, and the summary at the end (human or JSON).

tqdm is imported only when bars are drawn: a copy without a terminal (or with -q/--json) never needs it."""

from __future__ import annotations

import sys
import threading

from .outcome import Outcome


def shown(text: str) -> str:
    """A name as it may be printed on a terminal: control characters escaped (a file name must never
    move the cursor, retitle the window or break a one-line message in two)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class Progress:
    """Two tqdm bars (bytes, files) on a terminal; nothing at all otherwise or with --quiet.

    Totals grow while the plan streams in, so a copy starts sending before the scan has finished.
    """

    def __init__(self, *, enabled: bool | None = None, label: str = "copy") -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.enabled = enabled
        self._lock = threading.Lock()
        if enabled:
            from tqdm import tqdm

            self._bytes = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, desc=label, position=0,
                               dynamic_ncols=True, leave=True)
            self._files = tqdm(total=0, unit=" files", desc="files", position=1, dynamic_ncols=True, leave=True)

    def planned(self, size: int) -> None:
        if self.enabled:
            with self._lock:
                self._bytes.total += size
                self._files.total += 1
                self._files.refresh()

    def sent(self, nbytes: int) -> None:
        if self.enabled and nbytes:
            self._bytes.update(nbytes)

    def file_done(self) -> None:
        if self.enabled:
            self._files.update(1)

    def close(self) -> None:
        if self.enabled:
            self._files.close()
            self._bytes.close()


def plan_document(summary, *, source: str, destination: str, chunk_size: int, estimate: dict,
                  legacy: dict | None) -> dict:
    """The plan as one JSON-ready document (also what the human table is printed from)."""

    def tally(t) -> dict:
        return {"files": t.files, "bytes": t.bytes}

    return {
        "source": source,
        "destination": destination,
        "categories": {name: tally(t) for name, t in sorted(summary.by_category.items())},
        "total": tally(summary.source),
        "identical": tally(summary.identical),
        "to_copy": tally(summary.to_copy),
        "unchecked": tally(summary.to_check),
        "multipart": {**tally(summary.multipart), "chunk_size": chunk_size,
                      "threshold": summary.multipart_threshold},
        "extra_at_destination": tally(summary.extra),
        "largest": [{"path": rel, "bytes": size} for size, rel in summary.largest],
        "problems": [{"path": rel, "reason": reason, "error": error} for rel, reason, error in summary.problems],
        "legacy_export": legacy,
        "estimate": estimate,
    }


def render_plan(doc: dict) -> str:
    from .units import format_duration, format_size

    lines = [f"Source:      {doc['source']}", f"Destination: {doc['destination']}", ""]
    width = max([len(name) for name in doc["categories"]] + [10])
    lines.append(f"{'category':<{width}}  {'files':>9}  {'size':>11}")
    for name, t in doc["categories"].items():
        lines.append(f"{name:<{width}}  {t['files']:>9,}  {format_size(t['bytes']):>11}")
    total = doc["total"]
    lines.append(f"{'total':<{width}}  {total['files']:>9,}  {format_size(total['bytes']):>11}")
    lines.append("")
    ident, copy, multi = doc["identical"], doc["to_copy"], doc["multipart"]
    lines.append(f"Already at the destination and identical: {ident['files']:,} files ({format_size(ident['bytes'])})")
    if doc["unchecked"]["files"]:
        lines.append(f"Same size at the destination, not compared: {doc['unchecked']['files']:,} files")
    lines.append(f"To copy: {copy['files']:,} files ({format_size(copy['bytes'])}), "
                 f"{multi['files']:,} of them multipart (over {format_size(multi['threshold'])}, "
                 f"in {format_size(multi['chunk_size'])} parts)")
    if multi.get("note"):
        lines.append(f"note: {multi['note']}")
    for item in multi.get("larger_parts", ()):
        lines.append(f"  {format_size(item['bytes']):>11}  {shown(item['path'])}: in {item['parts']:,} parts of "
                     f"{format_size(item['part_size'])} (more than {item['max_parts']:,} at the chunk size)")
    if doc["extra_at_destination"]["files"]:
        extra = doc["extra_at_destination"]
        lines.append(f"Only at the destination (left alone): {extra['files']:,} objects ({format_size(extra['bytes'])})")
    if doc["largest"]:
        lines.append("Largest files:")
        lines.extend(f"  {format_size(item['bytes']):>11}  {shown(item['path'])}" for item in doc["largest"][:5])
    est = doc["estimate"]
    lines.append(f"Estimated time: {format_duration(est['seconds'])} "
                 f"(at {format_size(est['bytes_per_second'])}/s and {est['files_per_second']:,.0f} files/s, "
                 f"{est['basis']})")
    legacy = doc.get("legacy_export")
    if legacy and legacy["files"]:
        state = "included" if legacy["included"] else "not included; pass --include-legacy-export to copy it"
        lines.append(f"Legacy export/ folder: {legacy['files']:,} files ({format_size(legacy['bytes'])}), "
                     f"not served from cloud storage ({state})")
    split = doc.get("cluster_split")
    if split:
        lines.append(f"On a Dask cluster: {split['batches']:,} work items ({split['small_file_batches']:,} batches of "
                     f"up to {split['max_files_per_batch']} small files, {split['large_file_items']:,} large files alone)")
    for problem in doc["problems"][:20]:
        word = Outcome.ERROR if problem["error"] else Outcome.SKIPPED
        lines.append(f"{word}: {shown(problem['path'])}: {shown(problem['reason'])}")
    if len(doc["problems"]) > 20:
        lines.append(f"... and {len(doc['problems']) - 20} more problems (see --json)")
    return "\n".join(lines)


def copy_document(stats, *, source: str, destination: str) -> dict:
    rate = stats.sent_bytes / stats.seconds if stats.seconds else 0.0  # what went over the wire, not what resumed
    return {
        "source": source, "destination": destination,
        "copied": stats.copied, "copied_bytes": stats.copied_bytes,
        "sent_bytes": stats.sent_bytes, "verified_bytes": stats.verified_bytes,
        "resumed_uploads": stats.resumed, "resumed_bytes": stats.resumed_bytes,
        "skipped": stats.skipped, "identical": stats.identical,
        "failed": stats.failed, "warnings": stats.warnings,
        "seconds": round(stats.seconds, 3), "bytes_per_second": round(rate),
        "failures": [{"path": rel, "reason": reason} for rel, reason in stats.failures],
        "fatal": stats.fatal, "interrupted": stats.interrupted,
        "planned": stats.planned, "unaccounted": stats.unaccounted,
        "verified_by": dict(sorted(stats.bases.items())),
    }


def render_copy(doc: dict) -> str:
    from .units import format_size

    lines = []  # the per-file failures are not part of it: render_failures, for stderr
    if doc.get("verification"):
        lines.append(f"note: {doc['verification']}")
    lines.append(
        f"copied {doc['copied']:,} files ({format_size(doc['copied_bytes'])}), "
        f"skipped {doc['skipped']:,} unchanged, {doc['identical']:,} found identical, "
        f"failed {doc['failed']:,} in {doc['seconds']:.1f}s "
        f"({format_size(doc['bytes_per_second'])}/s)"
    )
    verified = doc["copied"] + doc["skipped"] + doc["identical"]
    sent = f"sent {format_size(doc['sent_bytes'])}, verified {format_size(doc['verified_bytes'])} in {verified:,} files"
    if doc["resumed_uploads"]:
        count = doc["resumed_uploads"]
        sent += (f" ({count:,} upload{'s' if count != 1 else ''} resumed, "
                 f"{format_size(doc['resumed_bytes'])} already there)")
    lines.append(sent)
    if doc.get("verified_by"):
        lines.append(f"verified by: {by_basis(doc['verified_by'])}")
    if doc.get("unaccounted"):
        lines.append(f"not accounted for: {doc['unaccounted']:,} of {doc['planned']:,} planned files ended in no "
                     "outcome; run it again")
    return "\n".join(lines)


def render_failures(doc: dict) -> str:
    """One line per file that failed or was skipped (the first 50), for stderr; empty when there are none."""
    lines = [f"{shown(item['path'])}: {shown(item['reason'])}" for item in doc["failures"][:50]]
    if len(doc["failures"]) > 50:
        lines.append(f"... and {len(doc['failures']) - 50} more (see --json)")
    return "\n".join(lines)


def by_basis(counts: dict) -> str:
    """`12 etag, 3 content-md5`: how many files rest on each basis."""
    return ", ".join(f"{n:,} {how}" for how, n in sorted(counts.items())) or "none"


def verify_document(report, *, source: str, destination: str) -> dict:
    return {
        "source": source, "destination": destination,
        "counts": dict(report.counts), "bases": dict(sorted(report.bases.items())),
        "recalled_from_journal": report.recalled,
        "planned": report.planned, "unaccounted": report.unaccounted,
        "problems": [{"status": s, "path": rel, "detail": d} for s, rel, d in report.problems],
        "fatal": report.fatal, "clean": report.clean,
    }


def render_verify(doc: dict, *, problems: bool = True, summary: bool = True) -> str:
    """The files found wanting (the first 100), then the summary line(s); either may be left out."""
    lines = [f"{p['status']}: {shown(p['path'])} ({shown(p['detail'])})" for p in doc["problems"][:100]] \
        if problems else []
    if problems and len(doc["problems"]) > 100:
        lines.append(f"... and {len(doc['problems']) - 100} more (see --json)")
    if not summary:
        return "\n".join(lines)
    counts = doc["counts"]
    recalled = f"; {doc['recalled_from_journal']:,} of them verified earlier, unchanged since" \
        if doc.get("recalled_from_journal") else ""
    n = {word: counts.get(word.value, 0) for word in Outcome}
    lines.append(f"verified {n[Outcome.OK]:,} (by {by_basis(doc['bases'])}{recalled}); "
                 f"missing {n[Outcome.MISSING]:,}, different {n[Outcome.DIFFERENT]:,}, "
                 f"unchecked {n[Outcome.UNCHECKED]:,}, errors {n[Outcome.ERROR]:,}; "
                 f"extra at destination {n[Outcome.EXTRA]:,}")
    if doc.get("unaccounted"):
        lines.append(f"not clean: {doc['unaccounted']:,} of {doc['planned']:,} planned files ended in no outcome")
    return "\n".join(lines)
