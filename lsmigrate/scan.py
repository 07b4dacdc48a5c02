"""Listings as sorted, streaming entry sequences: the local tree, and whatever a store lists.

Both sides come out in the same order (code point order of the relative path, which is the UTF-8 byte
order object stores list in), so the planner can merge them without holding either in memory.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LocalFile:
    rel: str  # posix relative path, the object key below the destination folder
    size: int
    mtime_ns: int
    path: str  # absolute path to open


@dataclass(frozen=True, slots=True)
class RemoteObject:
    rel: str
    size: int
    etag: str | None = None  # as the server gives it, without quotes
    md5: str | None = None  # hex MD5 of the content as the server computed it (a plain S3 ETag, GCS md5Hash)
    mtime: float | None = None
    client_md5: str | None = None  # an MD5 an uploader wrote, which the server only stored (md5chksum metadata)


def mtime_ns(entry: LocalFile | RemoteObject) -> int:
    """Modification time in nanoseconds, whichever side the entry comes from (what the journal keeps)."""
    return entry.mtime_ns if isinstance(entry, LocalFile) else int((entry.mtime or 0) * 1e9)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the tree that is not copied. `error` ones make the run fail (exit 1); warnings don't."""

    rel: str
    reason: str
    error: bool = True


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan_local(root: str | os.PathLike, prefix: str = "", *, copy_links: bool = False) -> Iterator[LocalFile | Problem]:
    """Walk `root`, yielding files in sorted key order, and problems where they are met.

    A directory's children are ordered by name with a `/` appended to directories, which makes the walk
    come out in the same global order as a sorted flat list of keys (`a-b` before `a/`).
    Symlinks: by default a link to a file inside the tree is copied as that file, links to directories are
    not followed, and links leading outside the tree are refused. With `copy_links` (rclone's -L) links are
    followed, to files and directories, outside the tree too (`media/upload` on another disk); a link whose
    real path the walk reaches anyway (inside the tree, or inside a linked directory above it) is skipped,
    so each file is copied once, under its real place; a link back to a directory above it is a loop and
    is not entered.
    """
    root = os.path.realpath(os.fspath(root))
    yield from _walk(root, prefix, root, ((root, prefix),) if copy_links else None, frozenset())


def _walk(directory: str, prefix: str, root: str, bases: tuple[tuple[str, str], ...] | None,
          ancestors: frozenset[tuple[int, int]]) -> Iterator[LocalFile | Problem]:
    """`bases` (following links only): the real directories this walk covers, with the key prefix each
    is copied under; `ancestors`: the directories on the way down, by identity (entering one is a loop)."""
    follow = bases is not None
    try:
        if follow:
            st = os.stat(directory)
            if (st.st_dev, st.st_ino) in ancestors:
                yield Problem(prefix, f"symlink loop: {prefix.rstrip('/')} leads back to a directory above it; "
                              "not followed", error=False)
                return
            ancestors = ancestors | {(st.st_dev, st.st_ino)}
        with os.scandir(directory) as handle:
            children = list(handle)
    except OSError as exc:
        yield Problem(prefix or "./", f"cannot list directory: {exc.strerror or exc}")
        return
    keyed = []
    for child in children:
        try:
            is_dir = child.is_dir(follow_symlinks=follow)
        except OSError:
            is_dir = False
        keyed.append((child.name + "/" if is_dir else child.name, is_dir, child))
    keyed.sort(key=lambda item: item[0])
    del children
    for key, is_dir, child in keyed:
        rel = prefix + child.name
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            yield Problem(os.fsencode(rel).decode("utf-8", "replace"), "name is not valid UTF-8; rename it to copy it")
            continue
        inner = bases
        if follow and child.is_symlink():
            real = os.path.realpath(child.path)
            copied_as = _copied_as(real, bases)
            if copied_as is not None:
                where = f"{copied_as} in the source tree" if copied_as else "the top of the source tree"
                yield Problem(prefix + key, f"symlink to {where}, copied from there (not twice)", error=False)
                continue
            inner = (*bases, (real, rel + "/"))
        if is_dir:
            yield from _walk(child.path, rel + "/", root, inner, ancestors)
        else:
            yield _classify(child, rel, root, follow)


def _copied_as(real: str, bases: tuple[tuple[str, str], ...]) -> str | None:
    """The key under which the walk copies the existing path `real` from its real place, or None."""
    if not os.path.exists(real):
        return None  # broken: _classify says so
    for base, prefix in bases:
        if _within(real, base):
            inside = os.path.relpath(real, base).replace(os.sep, "/")
            return prefix + ("" if inside == "." else inside + ("/" if os.path.isdir(real) else ""))
    return None


def _classify(child: os.DirEntry, rel: str, root: str, follow: bool = False) -> LocalFile | Problem:
    """One non-directory entry: the file to copy, or why it is not copied (a plain function, not a
    generator: it runs once per file)."""
    try:
        lst = child.stat(follow_symlinks=False)
    except OSError as exc:
        return Problem(rel, f"cannot stat: {exc.strerror or exc}")
    if stat.S_ISLNK(lst.st_mode):
        target = os.path.realpath(child.path)
        if not follow and not _within(target, root):
            return Problem(rel, f"symlink points outside the source tree ({os.readlink(child.path)}); not followed "
                           "(--copy-links follows links)")
        try:
            st = os.stat(child.path)
        except OSError as exc:
            kind = "symlink loop" if exc.errno == errno.ELOOP else "broken symlink"
            return Problem(rel, f"{kind} ({os.readlink(child.path)})")
        if stat.S_ISDIR(st.st_mode):
            return Problem(rel, "symlink to a directory; not followed", error=False)
        if not stat.S_ISREG(st.st_mode):
            return Problem(rel, "symlink to a special file (FIFO, socket or device)", error=False)
        return LocalFile(rel, st.st_size, st.st_mtime_ns, child.path)
    if not stat.S_ISREG(lst.st_mode):
        return Problem(rel, "not a regular file (FIFO, socket or device)", error=False)
    return LocalFile(rel, lst.st_size, lst.st_mtime_ns, child.path)
