"""Session fixtures of the end-to-end tests: Label Studio installed once per run (cached in .venv-ls/), and
one data dir prepared through its API once, which each cloud's test copies. The emulators are the suite's
own session fixtures (tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import lsharness  # noqa: E402


@pytest.fixture(scope="session")
def label_studio_venv() -> Path:
    seconds, builder = lsharness.ensure_label_studio()
    how = f"built by {builder} in {seconds:.0f} s" if seconds else "already built (cached)"
    lsharness.report(f"label-studio {lsharness.LS_VERSION} in {lsharness.LS_VENV}: {how}")
    return lsharness.LS_VENV


@pytest.fixture(scope="session")
def ls_template(label_studio_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> lsharness.Template:
    template = lsharness.prepare_template(tmp_path_factory.mktemp("ls-template"))
    kinds = {kind: len(template.by_kind(kind)) for kind in ("upload", "avatar", "export")}
    lsharness.report(
        f"template data dir: first start {template.first_start_seconds:.0f} s, prepared through the API in "
        f"{template.prepare_seconds:.0f} s; {len(template.served)} URLs remembered ({kinds['upload']} for "
        f"{len(lsharness.task_files())} uploads, {kinds['avatar']} avatar, {kinds['export']} export), "
        f"{len(lsharness.media_files(template.data_dir))} files under media/"
    )
    return template



def pytest_terminal_summary(terminalreporter) -> None:
    if lsharness.REPORT:
        terminalreporter.section("Label Studio end to end (tests/e2e)")
        for line in lsharness.REPORT:
            terminalreporter.write_line(line)
