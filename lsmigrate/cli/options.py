"""The command line's options: each shared option defined once, its help worded for a provider where that
differs, and what they become for the workflow (`RunOptions`, the source, the target)."""

from __future__ import annotations

from dataclasses import replace

import click

from ..deployment.kinds import KINDS
from ..engine.sizes import Settings
from ..jobs import Source, resolve_target, source_from_data_dir, source_from_path
from ..stores.provider import CliWords
from ..stores.registry import record_for
from ..units import parse_size
from ..workflow.options import RunOptions, no_progress
from .output import progress_bars


class SizeType(click.ParamType):
    name = "SIZE"

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def convert(self, value, param, ctx):
        try:
            size = value if isinstance(value, int) else parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if size < self.minimum:
            self.fail(f"{value!r} is too small: at least {self.minimum} byte(s)", param, ctx)
        return size


SIZE = SizeType()
POSITIVE_SIZE = SizeType(minimum=1)


# Shared options. Each command lists the ones it uses (`options(...)`), worded for its provider (None: any).
TARGET = ("env-file", "compose", "compose-service", "values", "endpoint-url", "region")
JOURNAL = ("state", "retries", "include-legacy-export", "copy-links")
TRANSFER = ("transfers", "chunk-size", "multipart-threshold", "bwlimit", "executor", "scheduler")

# The help of an option shared by every provider (None); local-to-<provider> words it as the record says.
_ANY_PROVIDER = CliWords(
    endpoint_help="The destination's endpoint: an S3-compatible server, a GCS emulator or an Azure blob endpoint "
                  "(default: each provider's variables, else its public endpoint).",
    chunk_help="Part size for large files (S3: grown to stay within 10,000 parts; GCS: rounded up to 256 KiB; "
               "Azure: the block size).",
    threshold_help="Files larger than this are sent in parts.",
    busy="SlowDown/ServerBusy, ",
    examples=())


def _words(provider: str | None) -> CliWords:
    return record_for(provider).words if provider else _ANY_PROVIDER


def _shared_options(provider: str | None) -> dict:
    """Every shared option by name, its help worded for `provider`."""
    words = _words(provider)
    files = {kind.option: click.option(f"--{kind.option}", type=click.Path(dir_okay=False), help=kind.option_help)
             for kind in KINDS}
    return {
        **files,
        "compose-service": click.option("--compose-service", help="The Label Studio service's name in --compose, when it cannot be told."),
        "endpoint-url": click.option("--endpoint-url", help=words.endpoint_help),
        "region": click.option("--region", help="The S3 bucket's region (default: STORAGE_AWS_REGION_NAME, AWS_REGION)."),
        "transfers": click.option("--transfers", type=click.IntRange(1, 256), default=16, show_default=True, help="Files (and parts) in flight at once."),
        "chunk-size": click.option("--chunk-size", type=POSITIVE_SIZE, default="16MiB", show_default=True, help=words.chunk_help),
        "multipart-threshold": click.option("--multipart-threshold", type=SIZE, default="32MiB", show_default=True,
                                            help=words.threshold_help),
        "state": click.option("--state", type=click.Path(dir_okay=False), help="The journal file (default: under $XDG_STATE_HOME/lsmigrate/)."),
        "retries": click.option("--retries", type=click.IntRange(0, 50), default=5, show_default=True, help=(
            f"Retries of a request that can succeed again (429, 5xx, {words.busy}timeouts, dropped "
            "connections; never auth, permission, not-found or checksum errors), after 1, 2, 4 ... s (jittered, "
            "at most 20 s) or the server's Retry-After (up to 30 s). An endpoint that never accepts the connection "
            "fails within (N+1) x 5 s connect timeout + those waits: 61 s for 5, 18 s for 2 (one that accepts "
            "and never answers: add up to a minute of read timeout a try).")),
        "include-legacy-export": click.option("--include-legacy-export", is_flag=True, help="Also copy the data dir's legacy export/ folder (to legacy-export/)."),
        "copy-links": click.option("--copy-links", "-L", is_flag=True, help=(
            "Follow symlinks (rclone's -L), to files and directories, outside the tree too: media/upload on "
            "another disk. A link to something inside the tree is skipped (copied once, at its real place); "
            "loops are not entered. Without it, links leading outside the tree are refused.")),
        "bwlimit": click.option("--bwlimit", type=SIZE, default="0", help="Upload bandwidth cap in bytes per second (e.g. 20MiB); 0 for none."),
        "executor": click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                                 help="Run the transfers here, or on a Dask cluster (needs --scheduler)."),
        "scheduler": click.option("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://10.0.0.5:8786."),
    }


def options(*names: str, provider: str | None = None):
    """The named shared options, in this order in --help, worded for `provider`."""

    def decorate(func):
        table = _shared_options(provider)
        for name in reversed(names):
            func = table[name](func)
        return func

    return decorate


target_options = options(*TARGET)
transfer_options = options(*TRANSFER, *JOURNAL)


def no_traverse_option(func):
    return click.option("--no-traverse", is_flag=True, help=(
        "Do not list the destination: files the journal verified earlier, with the same size and mtime, are "
        "skipped; the rest are sent. The fast last pass of a cutover (a million unchanged files in seconds), "
        "when nothing else has written to or deleted from the destination since."))(func)


def output_options(func):
    for option in reversed([
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text."),
        click.option("--quiet", "-q", is_flag=True, help=(
            "Print nothing on success (plan and doctor still print their report); errors and per-file "
            "failures still go to stderr.")),
        click.option("--verbose", "-v", count=True, help=(
            "-v: one line per file on stderr, its outcome, on what its verification rests, its name "
            "(`copied  etag  upload/1/a.jpg`); -vv: also the libraries' debug log.")),
    ]):
        func = option(func)
    return func




def move_option(func):
    func = click.option("--allow-empty", is_flag=True, help=(
        "Switch even when the data dir holds no file at all (a deployment with nothing uploaded yet); without "
        "it an empty tree is refused, since it usually means a wrong --data-dir or an unmounted disk."))(func)
    return click.option("--move-from-current", "move", is_flag=True, help=(
        "The file already points Label Studio at a bucket: switch it to another one on purpose. What must then "
        "be copied and verified at the new destination is every object at the current one (not the data "
        "dir)."))(func)


def apply_cors_option(func):
    return click.option("--apply-cors", is_flag=True, help=(
        "Set the CORS rule from Label Studio's persistent storage guide when the bucket has none (on Azure: "
        "on the storage account). Browsers need it for direct uploads and for the audio, video and CSV files "
        "Label Studio fetches from the bucket; the copy does not."))(func)


def target_option_names(provider: str) -> tuple[str, ...]:
    """The target options of local-to-`provider`: --region is S3's alone."""
    return TARGET if record_for(provider).offers_region else tuple(name for name in TARGET if name != "region")


def settings_from(kwargs) -> Settings:
    """The transfer settings: given options, else the defaults (a command lists only the options it uses)."""
    default = Settings()
    return Settings(transfers=kwargs.get("transfers", default.transfers),
                    chunk_size=kwargs.get("chunk_size", default.chunk_size),
                    multipart_threshold=max(kwargs.get("multipart_threshold", default.multipart_threshold), 1),
                    retries=kwargs.get("retries", default.retries), bwlimit=kwargs.get("bwlimit", 0))


def run_options(kwargs, *, quiet: bool = False, as_json: bool = False, listener=None) -> RunOptions:
    """The options a command was given, as the workflow reads them."""
    return RunOptions(settings=settings_from(kwargs), state=kwargs.get("state"),
                      traverse=not kwargs.get("no_traverse"), executor=kwargs.get("executor") or "local",
                      scheduler=kwargs.get("scheduler"), env_file=kwargs.get("env_file"),
                      compose=kwargs.get("compose"), compose_service=kwargs.get("compose_service"),
                      values=kwargs.get("values"), endpoint_url=kwargs.get("endpoint_url"),
                      allow_empty=bool(kwargs.get("allow_empty")),
                      progress=no_progress if quiet or as_json else progress_bars,
                      listener=listener)


def source_from(kwargs, *, path: str | None = None, data_dir: str | None = None) -> Source:
    """SRC (a folder or a data dir), else the Label Studio data dir (--data-dir, or as Label Studio finds it)."""
    source = source_from_path(path) if path else source_from_data_dir(data_dir)
    return replace(source, include_legacy_export=kwargs["include_legacy_export"],
                   copy_links=kwargs.get("copy_links", False))


def target_from(kwargs, url: str | None, provider: str | None = None):
    """The destination: `url`, else the deployment file's or the environment's; its notes go to stderr."""
    from ..redact import remember_target

    target = resolve_target(url=url, env_file=kwargs.get("env_file"), compose=kwargs.get("compose"),
                            compose_service=kwargs.get("compose_service"), values=kwargs.get("values"),
                            endpoint_url=kwargs.get("endpoint_url"), region=kwargs.get("region"), provider=provider)
    remember_target(target)  # secrets from a deployment file too, wherever -vv or a message might print them
    for note in target.notes:  # --to overriding the file, secrets the file leaves to the environment
        click.echo(f"note: {note}", err=True)
    return target
