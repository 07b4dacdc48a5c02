"""`--help`: examples and only the options a command uses, worded for its provider; click's usage errors
in the tool's own one-line format."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from s3util import run

COMMANDS = ["plan", "copy", "verify", "sync", "cutover", "doctor", "local-to-s3", "local-to-gcs", "local-to-azure"]
TRANSFER_ONLY = {"--transfers", "--chunk-size", "--multipart-threshold", "--bwlimit", "--executor", "--scheduler"}


def _help(*command: str) -> str:
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    return result.stdout


def _options(text: str) -> set[str]:
    return set(re.findall(r"^  (?:-\w, )?(--[a-z-]+)", text, re.MULTILINE))


def _examples(text: str, command: str) -> list[str]:
    block = text.split("Examples", 1)[1].split("\n\n", 1)[0]
    return [line for line in block.splitlines() if line.strip().startswith(f"lsmigrate {command}".rstrip())]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_shows_two_to_four_examples_of_itself(command):
    examples = _examples(_help(command), command)
    assert 2 <= len(examples) <= 4, examples


def test_the_main_help_shows_examples_and_every_command():
    text = _help()
    assert 2 <= len(_examples(text, "")) <= 4
    for command in COMMANDS:
        assert re.search(rf"^  {command} ", text, re.MULTILINE), command


@pytest.mark.parametrize(("command", "absent"), [
    ("cutover", TRANSFER_ONLY),
    ("verify", {"--multipart-threshold", "--bwlimit", "--executor", "--scheduler"}),
    ("plan", {"--bwlimit", "--scheduler"}),
    ("local-to-gcs", {"--region"}),
    ("local-to-azure", {"--region"}),
])
def test_a_command_lists_only_the_options_it_uses(command, absent):
    shown = _options(_help(command))
    assert "--json" in shown and not shown & absent, shown & absent


@pytest.mark.parametrize("command", ["local-to-gcs", "local-to-azure"])
def test_gcs_and_azure_help_has_no_s3_text(command):
    text = " ".join(_help(command).split())
    for word in ("S3", "AWS", "SlowDown", "10,000 parts", "multipart uploads"):
        assert word not in text, word
    assert ("container" in text) == (command == "local-to-azure")
    assert ("256 KiB" in text) == (command == "local-to-gcs")


def test_local_to_s3_keeps_the_s3_options():
    text = _help("local-to-s3")
    assert {"--region", "--endpoint-url", "--apply-cors"} <= _options(text) and "10,000 parts" in text


USAGE_ERRORS = [
    (["copy", "--bogus"], "no such option '--bogus'. Did you mean '--verbose'?", "lsmigrate copy"),
    (["nosuch"], "no such command 'nosuch'", "lsmigrate"),
    (["copy"], "missing argument 'SRC'", "lsmigrate copy"),
    (["copy", "a", "s3://b", "--transfers", "0"],
     "invalid value for '--transfers': 0 is not in the range 1<=x<=256", "lsmigrate copy"),
    (["local-to-gcs", "--region", "x"], "no such option '--region'", "lsmigrate local-to-gcs"),
    (["cutover", "--bwlimit", "1M"], "no such option '--bwlimit'", "lsmigrate cutover"),
    (["--bogus"], "no such option '--bogus'", "lsmigrate"),
]


@pytest.mark.parametrize(("args", "message", "command"), USAGE_ERRORS)
def test_usage_errors_are_one_line_of_the_tools_own(args, message, command):
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"lsmigrate: error: {message}")  # click may add "Did you mean ...?"
    assert result.stderr.endswith(f" (see '{command} --help')\n") and result.stderr.count("\n") == 1


def test_usage_errors_look_the_same_from_the_installed_entry_point():
    proc = subprocess.run([sys.executable, "-m", "lsmigrate.cli", "verify", "--chunk-size", "lots"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("lsmigrate: error: invalid value for '--chunk-size': not a size: 'lots'")
    assert proc.stderr.endswith(" (see 'lsmigrate verify --help')\n") and proc.stderr.count("\n") == 1
