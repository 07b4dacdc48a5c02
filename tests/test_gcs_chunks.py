"""GCS resumable uploads keep to GCS's chunk rules: every chunk but an object's last is a multiple of 256 KiB and
starts where the session's persisted bytes end. fake-gcs-server accepts anything, so the copies go through
GCSFront (tests/gcsfront.py), which answers as GCS does."""

from __future__ import annotations

import json

import gcsfs
import pytest
from gcsfront import GRANULE, GCSFront
from lsdata import make_data_dir
from s3util import run_process

from lsmigrate.engine.sizes import part_size_for
from lsmigrate.stores.base import StoreError
from lsmigrate.stores.gcs.store import STALLS, GCSStore
from lsmigrate.target import Target

MiB = 1024 * 1024
CHUNK = 9_000_000  # over GCS's 8 MiB minimum part (smaller ones become 8 MiB anyway), off the 256 KiB grid
PART = 35 * GRANULE  # what it rounds up to
SIZE = 3 * CHUNK + 12_345  # three parts, the last one off the grid too


def _fs(endpoint_url: str):
    return gcsfs.GCSFileSystem(endpoint_url=endpoint_url, token="anon", project="test", skip_instance_cache=True)


@pytest.fixture
def bucket(fake_gcs, request):
    name = f"c{abs(hash(request.node.name)) % 10**10}"
    _fs(fake_gcs.endpoint_url).mkdir(name)
    return name


@pytest.fixture
def data(tmp_path):
    return make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, avatars=0, exports=0, legacy_flat=0,
                         odd_names=False, empty_files=False, large_files=(SIZE,))


def _large(data) -> str:
    return next(rel for rel, size in data.files.items() if size == SIZE)


def _copy(data, bucket, front, *extra: str, deadline: float = 60) -> tuple[int, str, str, float]:
    """lsmigrate copy as its own process, killed at `deadline` (a hang fails the test instead of holding it)."""
    args = ["copy", str(data.root), f"gs://{bucket}/m", "--endpoint-url", front.endpoint_url,
            "--chunk-size", str(CHUNK), "--multipart-threshold", "9MiB", *extra]
    return run_process(*args, deadline=deadline, hint=lambda: f"chunks the front saw: {front.chunks[-5:]};")


def _landed(fake_gcs, bucket, data) -> None:
    fs = _fs(fake_gcs.endpoint_url)
    for rel in data.files:
        assert fs.cat_file(f"{bucket}/m/{rel}") == data.path(rel).read_bytes(), rel


def _on_grid(chunks) -> None:
    assert chunks, "no resumable-session chunk went through the front"
    for chunk in chunks:
        assert chunk.status != 400, f"GCS would have refused {chunk}"
        assert chunk.start % GRANULE == 0, chunk
        assert chunk.final or chunk.end % GRANULE == 0, chunk


def test_the_front_refuses_what_gcs_refuses(fake_gcs, bucket):
    import urllib.error
    import urllib.request

    def call(method, url, body=b"", **headers):
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read()

    size = GRANULE + 10
    with GCSFront(fake_gcs.endpoint_url) as front:
        _, headers, _ = call("POST", f"{front.endpoint_url}/upload/storage/v1/b/{bucket}/o?uploadType=resumable",
                             json.dumps({"name": "f"}).encode(), **{"Content-Type": "application/json"})
        session = headers["Location"]
        assert session.startswith(front.endpoint_url)
        status, _, body = call("PUT", session, b"a" * 1000, **{"Content-Range": f"bytes 0-999/{size}"})
        assert status == 400 and json.loads(body)["error"]["code"] == 400
        status, _, _ = call("PUT", session, b"a" * 10, **{"Content-Range": f"bytes {GRANULE}-{size - 1}/{size}"})
        assert status == 400  # not where the persisted bytes end
        status, headers, _ = call("PUT", session, **{"Content-Range": f"bytes */{size}"})
        assert status == 308 and headers.get("Range") is None  # answered by the front: the session lives on
        status, headers, _ = call("PUT", session, b"a" * GRANULE, **{"Content-Range": f"bytes 0-{GRANULE - 1}/{size}"})
        assert status == 308 and headers["Range"] == f"bytes=0-{GRANULE - 1}"
        status, _, _ = call("PUT", session, b"b" * 10, **{"Content-Range": f"bytes {GRANULE}-{size - 1}/{size}"})
        assert status == 200
    assert [c.status for c in front.chunks] == [400, 400, 308, 200]
    assert _fs(fake_gcs.endpoint_url).cat_file(f"{bucket}/f") == b"a" * GRANULE + b"b" * 10


def test_gcs_part_size_rounds_up_to_256_kib():
    def part(chunk: int, size: int = 100 * MiB) -> int:
        return part_size_for(size, chunk, min_part=GCSStore.min_part_size, max_parts=GCSStore.max_parts,
                             granule=GCSStore.part_granule)

    assert part(CHUNK) == PART
    assert part(5_000_000) == 8 * MiB  # GCS's minimum part, on the grid already
    assert part(16 * MiB) == 16 * MiB
    assert part(16 * MiB + 1) == 16 * MiB + GRANULE
    grown = part(CHUNK, size=GCSStore.max_parts * PART + 1)  # grown to stay within max_parts
    assert grown > PART and grown % GRANULE == 0


class _Session:
    """Stands in for GCSStore._request: answers chunk PUTs from a script, records their Content-Range."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, int]] = []

    def __call__(self, action, rel, method, url, *, data=None, headers=None, **params):
        self.sent.append((headers["Content-Range"], len(data)))
        if not self.answers:
            pytest.fail(f"sent more than the script answers: {self.sent}")
        status, persisted = self.answers.pop(0)
        return status, ({"Range": f"bytes=0-{persisted - 1}"} if persisted else {}), None, b"{}"


def _store(fake_gcs, session: _Session) -> GCSStore:
    store = GCSStore(Target(provider="gcs", bucket="any"), _fs(fake_gcs.endpoint_url))
    store._request = session
    return store


def test_put_part_sends_only_what_gcs_accepts_and_gives_up_on_a_session_that_does_not_move(fake_gcs):
    data = b"x" * (4 * GRANULE)
    size = 10 * GRANULE + 5

    session = _Session()
    with pytest.raises(StoreError, match=f"not on GCS's {GRANULE}-byte grid"):
        _store(fake_gcs, session).put_part("f", "s", 1, data[:-1], b"", offset=0, size=size)
    assert session.sent == [], "a chunk off the grid went out"

    session = _Session((308, 5 * GRANULE), (308, 8 * GRANULE))  # a short persist, then the rest
    assert _store(fake_gcs, session).put_part("f", "s", 2, data, b"", offset=4 * GRANULE, size=size) == ""
    assert session.sent == [(f"bytes {4 * GRANULE}-{8 * GRANULE - 1}/{size}", 4 * GRANULE),
                            (f"bytes {5 * GRANULE}-{8 * GRANULE - 1}/{size}", 3 * GRANULE)]

    session = _Session((200, 0))  # the last chunk may be any length
    _store(fake_gcs, session).put_part("f", "s", 3, b"y" * (2 * GRANULE + 5), b"", offset=8 * GRANULE, size=size)
    assert session.sent == [(f"bytes {8 * GRANULE}-{size - 1}/{size}", 2 * GRANULE + 5)]

    session = _Session(*[(308, 4 * GRANULE)] * 10)  # holds the bytes before this chunk, never any of it
    with pytest.raises(StoreError, match="persisted nothing"):
        _store(fake_gcs, session).put_part("f", "s", 2, data, b"", offset=4 * GRANULE, size=size)
    assert len(session.sent) == STALLS

    session = _Session((308, 2 * GRANULE))  # fewer bytes than earlier chunks put there
    with pytest.raises(StoreError, match="fewer than"):
        _store(fake_gcs, session).put_part("f", "s", 2, data, b"", offset=4 * GRANULE, size=size)


def test_unaligned_chunk_size_is_rounded_and_every_chunk_is_on_the_grid(s3_env, fake_gcs, bucket, data):
    with GCSFront(fake_gcs.endpoint_url) as front:
        code, out, err, _ = _copy(data, bucket, front, "--json")
        assert code == 0, (out, err, front.chunks)
    assert json.loads(out)["copied"] == len(data.files)
    _on_grid(front.chunks)
    assert [c.end - c.start for c in front.chunks] == [PART, PART, SIZE - 2 * PART]
    _landed(fake_gcs, bucket, data)


def test_short_persists_are_resent_from_the_persisted_end(s3_env, fake_gcs, bucket, data):
    with GCSFront(fake_gcs.endpoint_url, short=True) as front:
        code, out, err, _ = _copy(data, bucket, front, "--json")
        assert code == 0, (out, err, front.chunks)
    _on_grid(front.chunks)
    starts = [c.start for c in front.chunks]
    assert len(starts) > 3 and starts == sorted(set(starts)), "each short persist is followed by the rest only"
    assert not {PART // 2 // GRANULE * GRANULE, PART + PART // 2 // GRANULE * GRANULE} - set(starts)
    _landed(fake_gcs, bucket, data)


def test_a_session_that_never_persists_fails_the_file_in_bounded_time(s3_env, fake_gcs, bucket, data):
    with GCSFront(fake_gcs.endpoint_url, stuck_at=0) as front:
        code, out, err, seconds = _copy(data, bucket, front, "--retries", "1", deadline=60)
    assert code == 1, (out, err)
    failed = err.splitlines()  # per-file failures on stderr, and nothing else there
    assert len(failed) == 1 and failed[0].startswith(_large(data)), err
    assert "persisted nothing of bytes 0-" in failed[0], err
    assert "failed 1 " in out and _large(data) not in out, (out, err)
    # One policy: a session that stops moving fails the file after STALLS answers; the file is not sent again
    # (that would multiply the tries), and the next run resumes the session.
    assert len(front.chunks) == STALLS, "one attempt at the file, giving up after STALLS answers"
    assert seconds < 30


def test_a_session_resumes_mid_chunk_on_the_grid(s3_env, fake_gcs, bucket, data, tmp_path):
    stuck_at = PART + 3 * GRANULE  # the session keeps the first part and the start of the second
    state = str(tmp_path / "journal.sqlite3")
    with GCSFront(fake_gcs.endpoint_url, stuck_at=stuck_at) as front:
        code, out, err, _ = _copy(data, bucket, front, "--retries", "0", "--state", state)
        assert code == 1 and err.startswith(f"{_large(data)}: "), (out, err)
        seen = len(front.chunks)
        front.stuck_at = None
        code, out, err, _ = _copy(data, bucket, front, "--state", state, "--json")
        assert code == 0, (out, err, front.chunks)
    _on_grid(front.chunks)
    first, again = front.chunks[:seen], front.chunks[seen:]
    assert {c.session for c in again} == {first[0].session}, "the re-run must continue the same session"
    assert front.queries[-1][1] == stuck_at
    assert again[0].start == stuck_at and again[0].end == 2 * PART
    _landed(fake_gcs, bucket, data)
