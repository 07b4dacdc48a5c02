"""What a run was asked for, as the workflow reads it: the command line's options, parsed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..deployment.kinds import FileKind, given
from ..engine.sizes import Settings
from ..report import Progress


def no_progress(label: str) -> Progress:
    return Progress(enabled=False, label=label)


@dataclass(frozen=True)
class RunOptions:
    settings: Settings = field(default_factory=Settings)
    state: str | None = None  # the journal file; None: the default one under the state dir
    traverse: bool = True  # False with --no-traverse: the destination is not listed
    executor: str = "local"  # "dask": the transfers run on the cluster at `scheduler`
    scheduler: str | None = None
    env_file: str | None = None  # the deployment file read, and switched by a cutover
    compose: str | None = None
    compose_service: str | None = None
    values: str | None = None
    endpoint_url: str | None = None
    allow_empty: bool = False  # switch even over a data dir with no file at all
    progress: Callable[[str], Progress] = no_progress  # makes one transfer's progress display (the CLI's bars)
    listener: Callable | None = None  # called with each file's result as a copy settles it (-v)

    @property
    def deployment_files(self) -> list[tuple[FileKind, str]]:
        """The deployment files given (deployment.kinds), in the registry's order."""
        return given(env_file=self.env_file, compose=self.compose, values=self.values)

    @property
    def deployment_file(self) -> str | None:
        """The deployment file given, if any."""
        return next((path for _, path in self.deployment_files), None)
