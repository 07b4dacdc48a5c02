"""An env file lsmigrate writes reads the same under `docker run --env-file` and docker compose (promise 7).

Every written file is read back with both consumers' rules (tests/envreaders.py); what no form can carry
to both alike is refused; what an existing file already carries differently is reported, by line and name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from envreaders import EnvFileError, compose_env_file, compose_interpolate, docker_env_file
from ruamel.yaml import YAML

from lsmigrate import cutover
from lsmigrate.deployment.compose import update_compose_text
from lsmigrate.deployment.envfile import update_env_text
from lsmigrate.deployment.text import DeploymentFileError

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY=EXAMPLEKEY"
BASE = "# Label Studio\nLABEL_STUDIO_HOST=https://ls.example.org\nDJANGO_DB=default\n"
OTHERS = {"LABEL_STUDIO_HOST": "https://ls.example.org", "DJANGO_DB": "default"}

VALUES = {
    "json": json.dumps({"ServerSideEncryption": "aws:kms",
                        "SSEKMSKeyId": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd"}),
    "json-escaped-quotes": json.dumps({"ContentDisposition": 'attachment; filename="a b.pdf"',
                                       "CacheControl": "max-age=86400"}),
    "json-unicode": json.dumps({"Metadata": {"owner": "équipe"}}, ensure_ascii=False),
    "json-ascii-escapes": json.dumps({"Metadata": {"owner": "équipe\\n"}}),
    "url": "https://minio.internal:9000/ls?x-id=PutObject&versionId=a=b&q=1",
    "key-slash-plus-equals": SECRET,
    "azure-key": "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    "unicode": "médias/ünïcødé/日本語",
    "empty": "",
    "inner-quotes": 'it\'s "quoted" inside',
    "ends-with-quote": 'abc"',
    "leading-hash": "#not-a-comment",
    "hash-inside": "a#b",
    "backslashes": "C:\\labels\\new\\t",
    "inner-spaces": "x = y",
    "inner-tab": "tab\tinside",
    "braces": "{}",
}


def _differences(text: str, name: str) -> list[str]:
    from lsmigrate.deployment import envfile_rules  # here, so that the writing tests run (and fail) without it

    return envfile_rules.differences(text, name)


def _both(text: str) -> tuple[dict[str, str], dict[str, str]]:
    return docker_env_file(text), compose_env_file(text)


def _assert_reads(text: str, expected: dict[str, str]) -> None:
    docker, compose = _both(text)
    for key, value in expected.items():
        assert docker.get(key) == value, f"docker run reads {key} as {docker.get(key)!r}\n{text}"
        assert compose.get(key) == value, f"docker compose reads {key} as {compose.get(key)!r}\n{text}"


# ------------------------------------------------------------------------------------------- the readers


@pytest.mark.parametrize(("text", "docker", "compose"), [
    ('A="x y"\n', {"A": '"x y"'}, {"A": "x y"}),
    ("A='x'\n", {"A": "'x'"}, {"A": "x"}),
    ("A=x # c\n", {"A": "x # c"}, {"A": "x"}),
    ("A=x#c\n", {"A": "x#c"}, {"A": "x#c"}),
    ("A=x  \n", {"A": "x  "}, {"A": "x"}),
    ("A= x\n", {"A": " x"}, {"A": "x"}),
    ("A=$$x\n", {"A": "$$x"}, {"A": "$x"}),
    ("A=1\nB=${A}-$A\n", {"A": "1", "B": "${A}-$A"}, {"A": "1", "B": "1-1"}),
    ('A="a\\nb \\"q\\""\n', {"A": '"a\\nb \\"q\\""'}, {"A": 'a\nb "q"'}),
    ("\ufeff  # c\r\n\tA=1\r\n", {"A": "1"}, {"A": "1"}),
    ("A=\nB\n", {"A": ""}, {"A": ""}),
])
def test_the_readers_follow_docker_and_compose(text, docker, compose):
    """Cases from docker/cli pkg/kvfile and compose-go dotenv behaviour (a check of the test helpers)."""
    assert docker_env_file(text) == docker
    assert compose_env_file(text) == compose


def test_the_readers_refuse_what_docker_and_compose_refuse():
    for text in ("export A=1\n", "A =1\n", "B \n", "=x\n", "A=" + "x" * 70000 + "\n"):
        with pytest.raises(EnvFileError):
            docker_env_file(text)
    assert compose_env_file("export A=1\nB = 2\n") == {"A": "1", "B": "2"}
    for text in ("A=$1\n", "A='open\n", "A B=1\n"):
        with pytest.raises(EnvFileError):
            compose_env_file(text)


# ------------------------------------------------------------------------------------------------ writing


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
@pytest.mark.parametrize("before", [
    None,  # appended
    'STORAGE_AWS_OBJECT_PARAMETERS="{\\"CacheControl\\": \\"no-cache\\"}"',
    "STORAGE_AWS_OBJECT_PARAMETERS=old   # set by hand",
    "export STORAGE_AWS_OBJECT_PARAMETERS='{}'",
    "  STORAGE_AWS_OBJECT_PARAMETERS = old",
], ids=["appended", "double-quoted", "inline-comment", "export-single-quoted", "spaced"])
def test_written_values_read_the_same_under_docker_run_and_compose(value, before):
    text = BASE + (f"{before}\n" if before else "")
    new = update_env_text(text, {"STORAGE_AWS_OBJECT_PARAMETERS": value}, name="env.list")
    _assert_reads(new, {**OTHERS, "STORAGE_AWS_OBJECT_PARAMETERS": value})
    assert new.startswith(BASE), "the lines lsmigrate did not change stay as they were"


def test_a_rewritten_line_keeps_its_comment_and_indent_and_drops_quotes_and_export():
    text = ("STORAGE_TYPE=volume   # volume until migrated\n"
            "export STORAGE_AWS_FOLDER='old folder'\n"
            '  STORAGE_AWS_BUCKET_NAME = "old" # bucket\n'
            "STORAGE_AWS_REGION_NAME=eu-west-1\n")
    new = update_env_text(text, {"STORAGE_TYPE": "s3", "STORAGE_AWS_FOLDER": "", "STORAGE_AWS_BUCKET_NAME": "b"})
    assert new == ("# volume until migrated\n"
                   "STORAGE_TYPE=s3\n"
                   "STORAGE_AWS_FOLDER=\n"
                   "  # bucket\n"
                   "  STORAGE_AWS_BUCKET_NAME=b\n"
                   "STORAGE_AWS_REGION_NAME=eu-west-1\n")
    _assert_reads(new, {"STORAGE_TYPE": "s3", "STORAGE_AWS_FOLDER": "", "STORAGE_AWS_BUCKET_NAME": "b"})
    crlf = update_env_text(text.replace("\n", "\r\n"), {"STORAGE_TYPE": "s3"})
    assert crlf.startswith("# volume until migrated\r\nSTORAGE_TYPE=s3\r\n")


def test_an_empty_folder_is_written_bare():
    """Label Studio's guide writes STORAGE_AWS_FOLDER="" : docker run hands Label Studio the two quotes."""
    new = update_env_text(BASE, {"STORAGE_AWS_FOLDER": ""})
    assert new.endswith("\nSTORAGE_AWS_FOLDER=\n")
    _assert_reads(new, {"STORAGE_AWS_FOLDER": ""})


REFUSED = {
    "dollar": "pa$$w0rd-Secret-77",
    "dollar-name": "x$HOME-Secret-77",
    "dollar-end": "Secret-77-$",
    "leading-space": " leading-Secret-77",
    "trailing-space": "trailing-Secret-77 ",
    "trailing-tab": "trailing-Secret-77\t",
    "leading-nbsp": "\xa0nbsp-Secret-77",
    "space-hash": "Secret-77 #1",
    "tab-hash": "Secret-77\t#1",
    "leading-double-quote": '"Secret-77"',
    "leading-single-quote": "'Secret-77",
    "too-long": "S" * (64 * 1024),
}


def _forms(value: str) -> list[str]:
    """Every way of writing `value` one could try: bare, quoted either way, `$` doubled for compose."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return [value, f"'{value}'", f'"{escaped}"', value.replace("$", "$$"), f'"{escaped.replace("$", "$$")}"']


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_what_no_form_carries_to_both_is_refused_in_one_line(value):
    for form in _forms(value):  # why: no way of writing it reads the same under both
        text = f"STORAGE_AWS_SECRET_ACCESS_KEY={form}\n"
        try:
            same = docker_env_file(text)["STORAGE_AWS_SECRET_ACCESS_KEY"] == compose_env_file(text).get(
                "STORAGE_AWS_SECRET_ACCESS_KEY") == value
        except EnvFileError:
            same = False
        assert not same or "\t#" in value, form
    with pytest.raises(DeploymentFileError) as exc:
        update_env_text(BASE, {"STORAGE_AWS_SECRET_ACCESS_KEY": value}, name="env.list")
    message = str(exc.value)
    assert "\n" not in message and value.strip() not in message
    assert message.startswith("env.list: not writing STORAGE_AWS_SECRET_ACCESS_KEY: ")
    assert "docker run --env-file" in message and "docker compose" in message


# ----------------------------------------------------------------------------------------------- reporting

GUIDE_ENV_LIST = f"""STORAGE_TYPE=s3
STORAGE_AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE"
STORAGE_AWS_SECRET_ACCESS_KEY="{SECRET}"
STORAGE_AWS_BUCKET_NAME="my-bucket"
STORAGE_AWS_REGION_NAME="eu-west-1"
STORAGE_AWS_FOLDER=""
"""


def test_quotes_from_label_studios_guide_are_reported_one_line_per_variable_without_values():
    found = _differences(GUIDE_ENV_LIST, "env.list")
    keep = "docker run --env-file keeps the quotes as part of the value (docker compose strips them)"
    assert found == [f"env.list line {n} ({key}): {keep}" for n, key in [
        (2, "STORAGE_AWS_ACCESS_KEY_ID"), (3, "STORAGE_AWS_SECRET_ACCESS_KEY"), (4, "STORAGE_AWS_BUCKET_NAME"),
        (5, "STORAGE_AWS_REGION_NAME"), (6, "STORAGE_AWS_FOLDER")]]
    assert not any(s in line for line in found for s in (SECRET, "AKIAIOSFODNN7EXAMPLE", "my-bucket"))


def test_one_line_per_variable_even_when_it_is_set_twice():
    found = _differences('A="1"\nB=2\nA=\'3\' # again\n', ".env")
    assert len(found) == 1 and found[0].startswith(".env lines 1, 3 (A): docker run --env-file keeps the quotes")


CORPUS = ["A=plain", 'A="x"', "A='x'", "A=x # c", "A=x   ", "A= x", "A=$HOME", "A=a#b", "export A=1", "A = 1",
          "A=", "A=é", 'A={"k": "v"}', "A=it's", "A", "A ", 'A="multi\nline"', "A=x\t#c", 'A="x"y', "A='$x'",
          'A="$x"', "A=x\\n", "A=\\$x", "A=x\r", "  A=1", "A=x\u3000", "A=${A:-1}", "# A=1", "A:1"]


@pytest.mark.parametrize("line", CORPUS)
def test_reported_exactly_where_docker_run_and_compose_disagree(line):
    text = line + "\n"
    host = {"A": "host", "HOME": "/root"}
    try:
        docker = docker_env_file(text, host)
    except EnvFileError:
        docker = None
    try:
        compose = compose_env_file(text, host)
    except EnvFileError:
        compose = None
    disagree = docker is None or compose is None or docker != compose
    assert bool(_differences(text, "env.list")) == disagree, (docker, compose)


def test_next_steps_name_the_lines_docker_run_would_misread():
    edit = cutover.Edit(Path("env.list"), "env", BASE, GUIDE_ENV_LIST)
    target = type("T", (), {"provider": "s3"})()
    steps = cutover.next_steps(edit, target)
    flagged = [s for s in steps if "keeps the quotes" in s]
    assert len(flagged) == 5 and flagged[0].startswith("env.list line 2 (STORAGE_AWS_ACCESS_KEY_ID): ")
    assert not any(SECRET in s for s in steps)
    compose = cutover.Edit(Path("docker-compose.yml"), "compose", "", "services: {}\n")
    assert not any("keeps the quotes" in s for s in cutover.next_steps(compose, target))


# ------------------------------------------------------------------------------------------------ compose


COMPOSE_MAP = "services:\n  app:\n    image: heartexlabs/label-studio:latest\n    environment:\n      DJANGO_DB: default\n"
COMPOSE_LIST = "services:\n  app:\n    image: heartexlabs/label-studio:latest\n    environment:\n      - DJANGO_DB=default\n"


@pytest.mark.parametrize("text", [COMPOSE_MAP, COMPOSE_LIST], ids=["map", "list"])
def test_compose_environment_passes_json_and_dollars_through_unchanged(text):
    """Compose's `environment:` is YAML, then interpolated: the value is a YAML string with `$` doubled."""
    values = {"STORAGE_AWS_OBJECT_PARAMETERS": VALUES["json-escaped-quotes"],
              "STORAGE_AWS_SECRET_ACCESS_KEY": "pa$$w0rd: #1 'x' \"y\"", "STORAGE_AWS_FOLDER": ""}
    new = update_compose_text(text, values, name="docker-compose.yml")
    env = YAML(typ="safe").load(new)["services"]["app"]["environment"]
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    for key, value in values.items():
        assert isinstance(env[key], str)
        assert compose_interpolate(env[key], lambda name: None) == value


# ------------------------------------------------------------------------------------------ end to end


def test_cutover_writes_object_parameters_and_a_key_both_read_alike(s3_env, s3_bucket, tmp_path, monkeypatch):
    from lsdata import make_data_dir
    from s3util import run

    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3)
    assert run("copy", str(data.root), f"{s3_bucket.url}/media", "--endpoint-url", s3_bucket.endpoint_url,
               "-q").exit_code == 0
    params = {"CacheControl": "max-age=86400", "ContentDisposition": 'inline; filename="a b"'}
    monkeypatch.setenv("STORAGE_AWS_OBJECT_PARAMETERS", json.dumps(params))
    monkeypatch.setenv("STORAGE_AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("STORAGE_AWS_SECRET_ACCESS_KEY", SECRET)
    env_list = tmp_path / "env.list"
    ambiguous = BASE + 'STORAGE_AWS_FOLDER="old"   # set by hand\n'
    env_list.write_text(ambiguous)
    cut = ("cutover", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/media", "--endpoint-url",
           s3_bucket.endpoint_url, "--env-file", str(env_list), "--yes")
    # docker reads `"old"   # set by hand`, compose `old`: where Label Studio looks now cannot be known
    result = run(*cut)
    assert result.exit_code == 2 and "STORAGE_AWS_FOLDER" in result.stderr, result.output
    assert env_list.read_text() == ambiguous
    env_list.write_text(BASE + "STORAGE_AWS_FOLDER=old\n")  # as the refusal says to write it
    result = run(*cut)
    assert result.exit_code == 0, result.output
    docker, compose = _both(env_list.read_text())
    for reader in (docker, compose):
        assert json.loads(reader["STORAGE_AWS_OBJECT_PARAMETERS"]) == params
        assert reader["STORAGE_AWS_SECRET_ACCESS_KEY"] == SECRET and reader["STORAGE_TYPE"] == "s3"
        assert reader["STORAGE_AWS_FOLDER"] == "media"
    assert docker == compose
