"""The `lsmigrate` command group: its help, its version, and click's usage errors in the tool's one-line format."""

from __future__ import annotations

import click

from .. import __version__
from .output import error_line


class _UsageLine(click.UsageError):
    """A usage error in the tool's own one-line format instead of click's usage block (exit 2 all the same)."""

    def show(self, file=None) -> None:
        names, ctx = [], self.ctx
        while ctx is not None and ctx.parent is not None:  # the root's name may be `python -m lsmigrate.cli`
            names.append(ctx.info_name)
            ctx = ctx.parent
        message = self.format_message().rstrip(".")
        command = " ".join(["lsmigrate", *reversed(names)])
        click.echo(error_line(f"{message[:1].lower()}{message[1:]} (see '{command} --help')"), err=True)


class _Main(click.Group):
    """Every usage error, the group's and its commands' (they are parsed inside `invoke`), as one line."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _UsageLine(exc.format_message(), ctx=exc.ctx) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.NoArgsIsHelpError, _UsageLine):
            raise
        except click.UsageError as exc:
            raise _UsageLine(exc.format_message(), ctx=exc.ctx) from None


@click.group(name="lsmigrate", cls=_Main,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="lsmigrate")
def main() -> None:
    """Move a Label Studio deployment's files to S3, GCS or Azure, verified, then switch it over.

    \b
    Examples (a cutover):
      lsmigrate plan --data-dir /label-studio/data --env-file env.list         how much, how long
      lsmigrate doctor --env-file env.list                                     can the bucket take it
      lsmigrate local-to-s3 --data-dir /label-studio/data --env-file env.list  copy, verify, switch
      lsmigrate cutover --rollback --env-file env.list                         undo the switch
    env.list: the bucket's variables filled in (STORAGE_AWS_BUCKET_NAME, STORAGE_AWS_FOLDER, region,
    keys), STORAGE_TYPE not set yet; local-to-s3 adds STORAGE_TYPE=s3 once every file is verified.
    Each command's --help has its own examples.
    \b
    Exit codes:
      0    done and verified
      1    some files failed (run the same command again), or the switch was declined at the prompt
      2    usage or configuration error
      3    verification found missing, different or unchecked objects
      4    another run holds the lock
      130  interrupted (Ctrl-C; run the same command again to resume)
      143  terminated (SIGTERM; run the same command again to resume)
    """
