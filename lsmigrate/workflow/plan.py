"""`plan` and `copy --dry-run`: what would move, how much, how long; nothing is written."""

from __future__ import annotations

from ..engine.sizes import Settings, check_sizes, part_size_for
from ..estimate import estimate, probe
from ..jobs import Source, describe, open_job
from ..outcome import Outcome
from ..plan import Summary
from ..report import plan_document
from ..scan import LocalFile, scan_local
from .options import RunOptions

MAX_LARGER_PARTS = 100  # files listed whose part size grows past --chunk-size


def run_plan(source: Source, target, opts: RunOptions, *, assume_throughput: int, assume_files: float,
             do_probe: bool) -> dict:
    settings = opts.settings
    summary = Summary(multipart_threshold=settings.multipart_threshold)
    with open_job(source, target, state=opts.state, transfers=settings.transfers,
                  retries=settings.retries) as job:
        note = check_sizes(job.store, settings)  # what the provider cannot take is refused (exit 2)
        split = SplitCounter(settings) if opts.executor == "dask" else None
        part_size, larger = _count(job, summary, settings, split, traverse=opts.traverse)
        rates = probe(job.store, settings) if do_probe else None
    legacy = _legacy_export(source)
    est = estimate(summary.to_copy.files, summary.to_copy.bytes, bytes_per_second=assume_throughput,
                   files_per_second=assume_files, measured=rates)
    label = f"{source.root}" + (f" (Label Studio data dir {source.data_dir.base})" if source.data_dir else "")
    doc = plan_document(summary, source=label, destination=describe(target), chunk_size=part_size,
                        estimate=est, legacy=legacy)
    doc["multipart"].update(note=note, larger_parts=larger)  # the part sizes really used, and why
    if split:
        doc["cluster_split"] = split.document()
    return doc


def _count(job, summary: Summary, settings: Settings, split: SplitCounter | None, *,
           traverse: bool) -> tuple[int, list[dict]]:
    """Streams the plan into `summary` (and `split`); returns the usual part size and the files whose part
    size the engine will grow (at most MAX_LARGER_PARTS)."""
    store = job.store

    def part_size_of(size: int) -> int:  # the part size the engine will use for a file of this size
        return part_size_for(size, settings.chunk_size, min_part=store.min_part_size,
                             max_parts=store.max_parts, granule=store.part_granule)

    part_size, larger = part_size_of(0), []
    for action in job.actions(traverse=traverse):
        summary.add(action)
        sending = action.do is Outcome.COPY
        if action.do is Outcome.CHECK:  # dry run: compare now, write nothing
            from ..compare import compare

            result = compare(action.local, action.remote, job.store, chunk_size=settings.chunk_size)
            summary.settle(action.local.size, bool(result.same))
            sending = not result.same
            if not result.same and split:
                split.add(action.local.size)
        elif action.do is Outcome.COPY and split:
            split.add(action.local.size)
        size = action.local.size if sending else 0
        if size > settings.multipart_threshold and part_size_of(size) > part_size and len(larger) < MAX_LARGER_PARTS:
            larger.append({"path": action.rel, "bytes": size, "part_size": part_size_of(size),
                           "parts": -(-size // part_size_of(size)), "max_parts": store.max_parts})
    return part_size, larger


def _legacy_export(source: Source) -> dict | None:
    """The data dir's legacy export/ folder, counted: copied only with --include-legacy-export."""
    if not (source.data_dir and source.data_dir.legacy_export.is_dir()):
        return None
    files = [e for e in scan_local(source.data_dir.legacy_export, copy_links=source.copy_links)
             if isinstance(e, LocalFile)]
    return {"files": len(files), "bytes": sum(f.size for f in files), "included": source.include_legacy_export}


class SplitCounter:
    """How `--executor dask` would cut the work, counted as the plan streams by (no list of files kept)."""

    def __init__(self, settings: Settings) -> None:
        from ..dask_executor import Batching

        self.settings, self.batching = settings, Batching()
        self.large = self.batches = self._files = self._bytes = 0

    def add(self, size: int) -> None:
        if size > self.settings.multipart_threshold:
            self.large += 1
            return
        if self._files and (self._files >= self.batching.max_files or self._bytes + size > self.batching.max_bytes):
            self.batches += 1
            self._files = self._bytes = 0
        self._files += 1
        self._bytes += size

    def document(self) -> dict:
        small = self.batches + (1 if self._files else 0)
        return {"batches": small + self.large, "large_file_items": self.large, "small_file_batches": small,
                "max_files_per_batch": self.batching.max_files, "max_bytes_per_batch": self.batching.max_bytes}
