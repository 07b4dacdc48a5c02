"""lsmigrate.deployment: reading and editing a deployment's env file, docker-compose.yml and Helm values."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lsmigrate.deployment import backups
from lsmigrate.deployment.backups import latest_backup, rollback, write_with_backup
from lsmigrate.deployment.compose import read_compose_environment, update_compose_text
from lsmigrate.deployment.envfile import read_env_file, update_env_text
from lsmigrate.deployment.helm import read_helm_values, update_helm_values_text
from lsmigrate.deployment.text import DeploymentFileError, unified_diff

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

ENV_LIST = f"""# Label Studio settings for `docker run --env-file env.list`
export LABEL_STUDIO_HOST=https://ls.example.com

# storage: switched by lsmigrate
STORAGE_TYPE=volume   # volume until migrated
STORAGE_AWS_SECRET_ACCESS_KEY="{SECRET}"
STORAGE_AWS_FOLDER='media files'
DJANGO_DB=default
POSTGRE_PASSWORD="p@ss \\"w\\" \\\\ord"
EMPTY=
COMMENT_ONLY= # nothing here
HASH_INSIDE=abc#def
FROM_HOST
  INDENTED = spaced value
"""

ENV_VALUES = {
    "LABEL_STUDIO_HOST": "https://ls.example.com",
    "STORAGE_TYPE": "volume",
    "STORAGE_AWS_SECRET_ACCESS_KEY": SECRET,
    "STORAGE_AWS_FOLDER": "media files",
    "DJANGO_DB": "default",
    "POSTGRE_PASSWORD": 'p@ss "w" \\ord',
    "EMPTY": "",
    "COMMENT_ONLY": "",
    "HASH_INSIDE": "abc#def",
    "INDENTED": "spaced value",
}

COMPOSE_LIST = f"""version: "3.9"

services:
  nginx:
    image: heartexlabs/label-studio:latest
    ports:
      - "8080:8085"
    depends_on:
      - app
    environment:
      - LABEL_STUDIO_HOST=${{LABEL_STUDIO_HOST:-}}
    command: nginx

  app:
    stdin_open: true
    image: heartexlabs/label-studio:latest
    expose:
      - "8000"
    environment:
      - DJANGO_DB=default
      - POSTGRE_NAME=postgres
      # the database password
      - "POSTGRE_PASSWORD={SECRET}"
      - 'POSTGRE_PORT=5432'
      - JSON_LOG=1   # structured logs
      - DOLLARS=a$$b
      - FROM_HOST
    volumes:
      - ./mydata:/label-studio/data:rw  # base data dir
    command: label-studio-uwsgi

  # the database
  db:
    image: pgautoupgrade/pgautoupgrade:13-alpine
    environment:
      POSTGRES_HOST_AUTH_METHOD: trust
    volumes:
      - ${{POSTGRES_DATA_DIR:-./postgres-data}}:/var/lib/postgresql/data
"""

COMPOSE_MAP = f"""services:
  labelstudio:
    image: heartexlabs/label-studio:1.13.1
    ports:
      - 8080:8080
    environment:
      LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK: true   # invite only
      JSON_LOG: 1
      DJANGO_DB: default
      STORAGE_AWS_SECRET_ACCESS_KEY: "{SECRET}"
      STORAGE_AWS_FOLDER: 'media'
      PASSED_THROUGH:
    volumes:
      - ./mydata:/label-studio/data

  redis:
    image: redis:7
"""

WHITESPACE_ONLY_LINE = "  "  # ruamel.yaml drops such a line; the editor must keep it

LS_VALUES = f"""# Default values for Label Studio.
# This is a YAML-formatted file.

global:
  # Image pull secret to use for registry authentication.
  imagePullSecrets: []

  image:
    registry: docker.io
    repository: heartexlabs/label-studio
    tag: "1.13.1"

  extraEnvironmentVars: {{}}
  extraEnvironmentSecrets: {{ }}

  persistence:
    enabled: true
    type: volume # s3, azure, gcs
    config:
      s3:
        accessKey: "{SECRET}"
        secretKey: ''
        region: ""
        bucket: ""
        folder: ""
        urlExpirationSecs: "86400"
        objectParameters: {{}}
      volume:
        ## If defined, storageClassName: <storageClass>
        storageClass: ""
        size: 10Gi
        accessModes:
          - ReadWriteOnce
        existingClaim: ""

  featureFlags: {{ }}

app:
  replicas: 1
{WHITESPACE_ONLY_LINE}
  args:
    - "label-studio-uwsgi"
  resources:
    requests: {{}}
      ## Example:
      ## memory: "600Mi"
    limits: {{}}
  # nodeSelector labels for pod assignment
  nodeSelector: {{ }}

postgresql:
  enabled: true
"""

LS_VALUES_EXISTING_SECRET = """global:
  persistence:
    enabled: true
    type: s3
    config:
      s3:
        accessKeyExistingSecret: "ls-s3"
        accessKeyExistingSecretKey: "access-key"
        secretKeyExistingSecret: "ls-s3"
        secretKeyExistingSecretKey: "secret-key"
        region: eu-west-1
        bucket: my-bucket
        folder: ls
        urlExpirationSecs: 86400
"""


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


def _assert_replaced(old: str, new: str, replaced: dict[int, str]) -> None:
    """`new` has the lines of `old`, except the 0-based lines in `replaced`, which are as given."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    assert len(new_lines) == len(old_lines)
    for i, (before, after) in enumerate(zip(old_lines, new_lines, strict=True)):
        assert after == replaced.get(i, before), f"line {i + 1}"


def _index(text: str, line: str) -> int:
    return text.splitlines().index(line)


def _assert_error(exc: pytest.ExceptionInfo[DeploymentFileError], *parts: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert SECRET not in message
    for part in parts:
        assert part in message


# ------------------------------------------------------------------------------------------------- env files


def test_read_env_file(tmp_path: Path) -> None:
    assert read_env_file(_write(tmp_path, "env.list", ENV_LIST)) == ENV_VALUES


def test_read_env_file_crlf_bom_and_no_final_newline(tmp_path: Path) -> None:
    text = "\ufeff" + ENV_LIST.replace("\n", "\r\n").rstrip("\r\n")
    assert read_env_file(_write(tmp_path, "env.list", text)) == ENV_VALUES


def test_read_env_file_later_lines_win(tmp_path: Path) -> None:
    path = _write(tmp_path, ".env", "A=1\nexport A=2\n")
    assert read_env_file(path) == {"A": "2"}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (f"A=1\nSTORAGE_AWS_SECRET_ACCESS_KEY='{SECRET}\n", 2, "unterminated single quote"),
        (f'A=1\n\nB="{SECRET}\n', 3, "unterminated double quote"),
        (f'A="{SECRET}"trailing\n', 1, "after the closing quote"),
        (f"# ok\n1BAD={SECRET}\n", 2, "invalid variable name"),
        (f"MY-KEY={SECRET}\n", 1, "invalid variable name"),
        (f"A=1\n{SECRET} oops\n", 2, "expected KEY=VALUE"),
    ],
)
def test_read_env_file_malformed(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = _write(tmp_path, "env.list", text)
    with pytest.raises(DeploymentFileError) as exc:
        read_env_file(path)
    _assert_error(exc, f"{path} line {line}", reason)


def test_read_env_file_not_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, "env.list", b"A=1\nB=caf\xe9-" + SECRET.encode() + b"\n")
    with pytest.raises(DeploymentFileError) as exc:
        read_env_file(path)
    _assert_error(exc, f"{path} line 2", "UTF-8")


def test_read_env_file_missing_or_directory(tmp_path: Path) -> None:
    with pytest.raises(DeploymentFileError) as exc:
        read_env_file(tmp_path / "nope.env")
    _assert_error(exc, "nope.env", "no such file")
    with pytest.raises(DeploymentFileError) as exc:
        read_env_file(tmp_path)
    _assert_error(exc, str(tmp_path), "directory")


def test_update_env_changes_only_the_intended_lines() -> None:
    new = update_env_text(
        ENV_LIST,
        {
            "STORAGE_TYPE": "s3",
            "STORAGE_AWS_SECRET_ACCESS_KEY": "new/secret+key",
            "STORAGE_AWS_FOLDER": "ls",
            "EMPTY": "x",
            "COMMENT_ONLY": "y",
            "INDENTED": "i",
        },
    )
    # A written line takes the one form `docker run --env-file` reads as compose does: no quotes, no spaces
    # around `=`, its inline comment on a line of its own above it (see test_env_semantics.py).
    expected = (
        ENV_LIST.replace("STORAGE_TYPE=volume   # volume until migrated\n",
                         "# volume until migrated\nSTORAGE_TYPE=s3\n")
        .replace(f'STORAGE_AWS_SECRET_ACCESS_KEY="{SECRET}"\n', "STORAGE_AWS_SECRET_ACCESS_KEY=new/secret+key\n")
        .replace("STORAGE_AWS_FOLDER='media files'\n", "STORAGE_AWS_FOLDER=ls\n")
        .replace("EMPTY=\n", "EMPTY=x\n")
        .replace("COMMENT_ONLY= # nothing here\n", "# nothing here\nCOMMENT_ONLY=y\n")
        .replace("  INDENTED = spaced value\n", "  INDENTED=i\n")
    )
    assert new == expected


def test_update_env_appends_new_keys_bare() -> None:
    changes = {
        "STORAGE_AWS_BUCKET_NAME": "my-bucket",
        "WITH_SPACE": "a b",
        "WITH_HASH": "a#b",
        "WITH_QUOTES": 'it\'s "x"',
        "EMPTY_NEW": "",
    }
    new = update_env_text(ENV_LIST, changes)
    assert new == ENV_LIST + (
        "STORAGE_AWS_BUCKET_NAME=my-bucket\n"
        "WITH_SPACE=a b\n"
        "WITH_HASH=a#b\n"
        'WITH_QUOTES=it\'s "x"\n'
        "EMPTY_NEW=\n"
    )
    assert update_env_text(ENV_LIST, {}) == ENV_LIST
    with pytest.raises(DeploymentFileError, match="WITH_DOLLAR"):  # compose would expand it, docker run not
        update_env_text(ENV_LIST, {"WITH_DOLLAR": "a$b"})


def test_update_env_round_trips_through_the_reader(tmp_path: Path) -> None:
    changes = {"POSTGRE_PASSWORD": 'new "quoted" \\ pass', "STORAGE_AWS_FOLDER": "it's", "NEW": '{"a": "x#y z"}'}
    new = update_env_text(ENV_LIST, changes)
    assert read_env_file(_write(tmp_path, "env.list", new)) == {**ENV_VALUES, **changes}


def test_update_env_drops_quoting_docker_would_keep() -> None:
    text = "A=plain\nB=\"double\"\nC='single'\nE='single'\n"
    new = update_env_text(text, {"A": "p2", "B": "d2", "C": "s2", "E": "it's"})
    assert new == "A=p2\nB=d2\nC=s2\nE=it's\n"
    with pytest.raises(DeploymentFileError, match="'\\$'"):
        update_env_text("D=\"double\"\n", {"D": "has $dollar"})


def test_update_env_removes_keys() -> None:
    new = update_env_text(ENV_LIST, {"DJANGO_DB": None, "FROM_HOST": None, "NOT_THERE": None})
    old_lines = ENV_LIST.splitlines()
    expected = [ln for ln in old_lines if ln not in ("DJANGO_DB=default", "FROM_HOST")]
    assert new.splitlines() == expected
    assert new.endswith("\n")


def test_update_env_sets_a_host_passthrough_key_in_place() -> None:
    new = update_env_text(ENV_LIST, {"FROM_HOST": "now set"})
    _assert_replaced(ENV_LIST, new, {_index(ENV_LIST, "FROM_HOST"): "FROM_HOST=now set"})


def test_update_env_changes_every_duplicate() -> None:
    assert update_env_text("A=1\n# again\nA=2\n", {"A": "3"}) == "A=3\n# again\nA=3\n"
    assert update_env_text("A=1\n# again\nA=2\n", {"A": None}) == "# again\n"


def test_update_env_preserves_crlf_and_missing_final_newline() -> None:
    crlf = ENV_LIST.replace("\n", "\r\n")
    new = update_env_text(crlf, {"STORAGE_TYPE": "s3", "NEW_KEY": "v"})
    assert new == update_env_text(ENV_LIST, {"STORAGE_TYPE": "s3", "NEW_KEY": "v"}).replace("\n", "\r\n")
    assert update_env_text("A=1\r\nB=2", {"C": "3"}) == "A=1\r\nB=2\r\nC=3"
    assert update_env_text("A=1\nB=2", {"B": None}) == "A=1"
    assert update_env_text("A=1\nB=2", {"A": "x"}) == "A=x\nB=2"
    assert update_env_text("", {"A": "1"}) == "A=1\n"


def test_update_env_rejects_bad_input() -> None:
    with pytest.raises(DeploymentFileError) as exc:
        update_env_text("A='open\n", {"A": "x"}, name="env.list")
    _assert_error(exc, "env.list line 1")
    with pytest.raises(DeploymentFileError) as exc:
        update_env_text("A=1\n", {"BAD-NAME": "x"}, name="env.list")
    _assert_error(exc, "env.list", "BAD-NAME")
    with pytest.raises(DeploymentFileError) as exc:
        update_env_text("A=1\n", {"A": f"{SECRET}\nB=2"}, name="env.list")
    _assert_error(exc, "env.list", "line break")


# --------------------------------------------------------------------------------------------------- compose


def test_read_compose_list_form_picks_app_among_label_studio_images(tmp_path: Path) -> None:
    path = _write(tmp_path, "docker-compose.yml", COMPOSE_LIST)
    assert read_compose_environment(path) == {
        "DJANGO_DB": "default",
        "POSTGRE_NAME": "postgres",
        "POSTGRE_PASSWORD": SECRET,
        "POSTGRE_PORT": "5432",
        "JSON_LOG": "1",
        "DOLLARS": "a$b",
    }
    # compose interpolates: unset with an empty default is "" (the environment here has no LABEL_STUDIO_HOST)
    assert read_compose_environment(path, "nginx") == {"LABEL_STUDIO_HOST": os.environ.get("LABEL_STUDIO_HOST", "")}
    assert read_compose_environment(path, service="db") == {"POSTGRES_HOST_AUTH_METHOD": "trust"}


def test_read_compose_map_form_converts_scalars(tmp_path: Path) -> None:
    path = _write(tmp_path, "docker-compose.yml", COMPOSE_MAP)
    assert read_compose_environment(path) == {
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "JSON_LOG": "1",
        "DJANGO_DB": "default",
        "STORAGE_AWS_SECRET_ACCESS_KEY": SECRET,
        "STORAGE_AWS_FOLDER": "media",
    }
    assert read_compose_environment(path, "redis") == {}


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("services:\n  web:\n    image: my/app\n  ls:\n    image: heartexlabs/label-studio:1.9\n", "ls"),
        ("services:\n  label-studio:\n    build: .\n  db:\n    image: postgres\n", "label-studio"),
        ("services:\n  app:\n    build: .\n  db:\n    image: postgres\n", "app"),
    ],
)
def test_compose_service_selection(tmp_path: Path, text: str, chosen: str) -> None:
    path = _write(tmp_path, "compose.yaml", text)
    assert read_compose_environment(path) == {}
    new = _write(tmp_path, "new.yaml", update_compose_text(text, {"X": "1"}))
    assert read_compose_environment(new, chosen) == {"X": "1"}


@pytest.mark.parametrize(
    ("text", "service", "parts"),
    [
        (
            "services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n",
            None,
            ("web, db", "--compose-service"),
        ),
        (
            "services:\n  a:\n    image: heartexlabs/label-studio\n  b:\n    image: heartexlabs/label-studio\n",
            None,
            ("a, b", "--compose-service"),
        ),
        ("services:\n  app:\n    image: x\n", "worker", ("'worker'", "app")),
        ("services: {}\n", None, ("services",)),
        ("- just\n- a list\n", None, ("not a mapping",)),
        (f"services:\n  app:\n    environment:\n      - 42\n      - A={SECRET}\n", None, ("KEY=VALUE",)),
        (f"services:\n  app:\n    environment: {SECRET}\n", None, ("list or a mapping",)),
    ],
)
def test_read_compose_rejects(tmp_path: Path, text: str, service: str | None, parts: tuple[str, ...]) -> None:
    path = _write(tmp_path, "docker-compose.yml", text)
    with pytest.raises(DeploymentFileError) as exc:
        read_compose_environment(path, service)
    _assert_error(exc, str(path), *parts)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"services:\n  app:\n    environment:\n      - PW={SECRET}\n     - X: [\n", 5),
        (f"services:\n  app:\n    environment:\n      PW: {SECRET}\n      PW: {SECRET}2\n", 5),
        (f"services:\n  app:\n    environment:\n      PW: '{SECRET}\n", 5),
        (f"services:\n  app:\n\timage: {SECRET}\n", 3),
        (f"# comment\n---\nservices:\n  app:\n    environment:\n      PW: {SECRET}\n     bad: [\n", 7),
    ],
)
def test_read_compose_malformed_yaml(tmp_path: Path, text: str, line: int) -> None:
    path = _write(tmp_path, "docker-compose.yml", text)
    with pytest.raises(DeploymentFileError) as exc:
        read_compose_environment(path)
    _assert_error(exc, f"{path} line {line}", "invalid YAML")


def test_update_compose_list_form_in_place_and_appended() -> None:
    changes = {"JSON_LOG": "0", "POSTGRE_PORT": "5433", "POSTGRE_PASSWORD": "n3w", "STORAGE_TYPE": "s3"}
    new = update_compose_text(COMPOSE_LIST, changes)
    old_lines = COMPOSE_LIST.splitlines()
    at = _index(COMPOSE_LIST, "      - FROM_HOST") + 1
    expected = old_lines[:at] + ["      - STORAGE_TYPE=s3"] + old_lines[at:]
    for old, replacement in [
        ("      - JSON_LOG=1   # structured logs", "      - JSON_LOG=0   # structured logs"),
        ("      - 'POSTGRE_PORT=5432'", "      - 'POSTGRE_PORT=5433'"),
        (f'      - "POSTGRE_PASSWORD={SECRET}"', '      - "POSTGRE_PASSWORD=n3w"'),
    ]:
        expected[expected.index(old)] = replacement
    assert new.splitlines() == expected


def test_update_compose_list_form_removes_items() -> None:
    new = update_compose_text(COMPOSE_LIST, {"POSTGRE_NAME": None, "FROM_HOST": None, "DJANGO_DB": None})
    gone = ("      - POSTGRE_NAME=postgres", "      - FROM_HOST", "      - DJANGO_DB=default")
    assert new.splitlines() == [ln for ln in COMPOSE_LIST.splitlines() if ln not in gone]


def test_update_compose_escapes_dollars_and_reads_back(tmp_path: Path) -> None:
    changes = {"STORAGE_AWS_SECRET_ACCESS_KEY": "a$b #c", "DOLLARS": "x$y"}
    new = update_compose_text(COMPOSE_LIST, changes)
    assert "      - DOLLARS=x$$y" in new.splitlines()
    values = read_compose_environment(_write(tmp_path, "docker-compose.yml", new))
    assert values["STORAGE_AWS_SECRET_ACCESS_KEY"] == "a$b #c"
    assert values["DOLLARS"] == "x$y"


def test_update_compose_other_service() -> None:
    new = update_compose_text(COMPOSE_LIST, {"NEW": "1"}, service="nginx")
    at = _index(COMPOSE_LIST, "      - LABEL_STUDIO_HOST=${LABEL_STUDIO_HOST:-}") + 1
    old_lines = COMPOSE_LIST.splitlines()
    assert new.splitlines() == old_lines[:at] + ["      - NEW=1"] + old_lines[at:]


def test_update_compose_map_form() -> None:
    changes = {
        "JSON_LOG": "0",
        "STORAGE_AWS_SECRET_ACCESS_KEY": "n3w",
        "STORAGE_AWS_FOLDER": "ls",
        "DJANGO_DB": None,
        "PASSED_THROUGH": "set",
        "STORAGE_TYPE": "s3",
        "USE_NGINX_FOR_UPLOADS": "false",
    }
    new = update_compose_text(COMPOSE_MAP, changes)
    old_lines = COMPOSE_MAP.splitlines()
    expected = list(old_lines)
    expected[expected.index("      JSON_LOG: 1")] = "      JSON_LOG: '0'"
    expected[expected.index(f'      STORAGE_AWS_SECRET_ACCESS_KEY: "{SECRET}"')] = (
        '      STORAGE_AWS_SECRET_ACCESS_KEY: "n3w"'
    )
    expected[expected.index("      STORAGE_AWS_FOLDER: 'media'")] = "      STORAGE_AWS_FOLDER: 'ls'"
    expected[expected.index("      PASSED_THROUGH:")] = "      PASSED_THROUGH: set"
    expected.remove("      DJANGO_DB: default")
    at = expected.index("      PASSED_THROUGH: set") + 1
    expected[at:at] = ["      STORAGE_TYPE: s3", "      USE_NGINX_FOR_UPLOADS: 'false'"]
    assert new.splitlines() == expected


def test_update_compose_adds_an_environment_when_missing(tmp_path: Path) -> None:
    text = COMPOSE_MAP.replace("  redis:\n    image: redis:7\n", "  redis:\n    image: redis:7\n    # end\n")
    new = update_compose_text(text, {"A": "1", "B": "two words", "C": None}, service="redis")
    assert new == text + "    environment:\n      A: '1'\n      B: two words\n"
    assert read_compose_environment(_write(tmp_path, "c.yml", new), "redis") == {"A": "1", "B": "two words"}
    assert update_compose_text(text, {"C": None}, service="redis") == text

    lines = COMPOSE_LIST.splitlines()
    body = "\n".join(ln for ln in lines[lines.index("    environment:") + 2 :]) + "\n"
    no_env = "\n".join(lines[: lines.index("    environment:")]) + "\n" + body
    new = update_compose_text(no_env, {"STORAGE_TYPE": "s3"}, service="nginx")
    at = _index(no_env, "    command: nginx") + 1
    no_env_lines = no_env.splitlines()
    assert new.splitlines() == no_env_lines[:at] + ["    environment:", "      STORAGE_TYPE: s3"] + no_env_lines[at:]


@pytest.mark.parametrize(("empty", "added"), [("[]", ["      - A=1"]), ("{}", ["      A: '1'"])])
def test_update_compose_fills_an_empty_environment(empty: str, added: list[str]) -> None:
    text = f"services:\n  app:\n    image: heartexlabs/label-studio\n    environment: {empty}\n    ports: []\n"
    new = update_compose_text(text, {"A": "1"})
    lines = text.splitlines()
    assert new.splitlines() == lines[:3] + ["    environment:", *added] + lines[4:]
    assert update_compose_text(new, {"A": None}) == text


def test_update_compose_removing_every_variable_keeps_the_comments(tmp_path: Path) -> None:
    for text in (COMPOSE_LIST, COMPOSE_MAP):
        path = _write(tmp_path, "docker-compose.yml", text)
        names = {*read_compose_environment(path), "FROM_HOST", "PASSED_THROUGH"}
        new = update_compose_text(text, dict.fromkeys(names))
        assert read_compose_environment(_write(tmp_path, "new.yml", new)) == {}
        kept = [ln for ln in text.splitlines() if ln.strip().startswith("#")]
        assert [ln for ln in new.splitlines() if ln.strip().startswith("#")] == kept


def test_update_compose_preserves_crlf_header_and_missing_final_newline() -> None:
    text = "# stack\r\n---\r\n" + COMPOSE_MAP.replace("\n", "\r\n").rstrip("\r\n")
    new = update_compose_text(text, {"STORAGE_TYPE": "s3"}, service="redis")
    assert new == text + "\r\n    environment:\r\n      STORAGE_TYPE: s3"


def test_update_compose_refuses_a_shared_anchor() -> None:
    text = "x-env: &env\n  A: '1'\nservices:\n  app:\n    image: heartexlabs/label-studio\n    environment: *env\n"
    with pytest.raises(DeploymentFileError) as exc:
        update_compose_text(text, {"A": "2"}, name="docker-compose.yml")
    _assert_error(exc, "docker-compose.yml", "anchor")


def test_update_compose_malformed() -> None:
    with pytest.raises(DeploymentFileError) as exc:
        update_compose_text(f"services:\n  app:\n    environment:\n      PW: '{SECRET}\n", {"A": "1"}, name="dc.yml")
    _assert_error(exc, "dc.yml line 5")


# ------------------------------------------------------------------------------------------------------ Helm


def test_read_helm_values(tmp_path: Path) -> None:
    assert read_helm_values(_write(tmp_path, "ls-values.yaml", LS_VALUES)) == {
        "enabled": True,
        "type": "volume",
        "config": {
            "s3": {
                "accessKey": SECRET,
                "secretKey": "",
                "region": "",
                "bucket": "",
                "folder": "",
                "urlExpirationSecs": "86400",
                "objectParameters": {},
            },
            "volume": {
                "storageClass": "",
                "size": "10Gi",
                "accessModes": ["ReadWriteOnce"],
                "existingClaim": "",
            },
        },
    }
    persistence = read_helm_values(_write(tmp_path, "v2.yaml", LS_VALUES_EXISTING_SECRET))
    assert persistence["config"]["s3"]["accessKeyExistingSecret"] == "ls-s3"
    assert persistence["config"]["s3"]["urlExpirationSecs"] == 86400
    assert type(persistence["config"]["s3"]["bucket"]) is str
    assert read_helm_values(_write(tmp_path, "v3.yaml", "app:\n  replicas: 1\n")) == {}
    assert read_helm_values(_write(tmp_path, "v4.yaml", "global:\n  persistence:\n")) == {}
    assert read_helm_values(_write(tmp_path, "v5.yaml", "# nothing yet\n")) == {}


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            f'global:\n  persistence:\n    config:\n      s3:\n        accessKey: "{SECRET}\n',
            ("line 6", "invalid YAML"),
        ),
        (f"global:\n  persistence:\n    type: s3\n   accessKey: {SECRET}\n", ("line 4", "invalid YAML")),
        (f"global:\n  a: {SECRET}\n  a: {SECRET}\n", ("line 3", "duplicate")),
        (f"- {SECRET}\n", ("not a mapping",)),
        (f"global:\n  persistence: {SECRET}\n", ("global.persistence", "not a mapping")),
    ],
)
def test_read_helm_values_rejects(tmp_path: Path, text: str, parts: tuple[str, ...]) -> None:
    path = _write(tmp_path, "ls-values.yaml", text)
    with pytest.raises(DeploymentFileError) as exc:
        read_helm_values(path)
    _assert_error(exc, str(path), *parts)


def test_update_helm_switches_type_in_place() -> None:
    changes = {
        "global.persistence.type": "s3",
        "global.persistence.config.s3.bucket": "my-bucket",
        "global.persistence.config.s3.region": "eu-west-1",
        "global.persistence.config.s3.secretKey": "s3cr3t",
        "global.persistence.config.s3.accessKey": "AKIA123",
    }
    new = update_helm_values_text(LS_VALUES, changes)
    _assert_replaced(
        LS_VALUES,
        new,
        {
            _index(LS_VALUES, "    type: volume # s3, azure, gcs"): "    type: s3 # s3, azure, gcs",
            _index(LS_VALUES, '        bucket: ""'): '        bucket: "my-bucket"',
            _index(LS_VALUES, '        region: ""'): '        region: "eu-west-1"',
            _index(LS_VALUES, "        secretKey: ''"): "        secretKey: 's3cr3t'",
            _index(LS_VALUES, f'        accessKey: "{SECRET}"'): '        accessKey: "AKIA123"',
        },
    )


def test_update_helm_removes_and_adds_keys() -> None:
    changes = {
        "global.persistence.config.s3.accessKey": None,
        "global.persistence.config.s3.accessKeyExistingSecret": "ls-s3",
        "global.persistence.config.volume": None,
        "global.persistence.config.nothere.x": None,
    }
    new = update_helm_values_text(LS_VALUES, changes)
    lines = LS_VALUES.splitlines()
    start = lines.index("      volume:")
    end = lines.index('        existingClaim: ""') + 1
    expected = lines[:start] + ["        accessKeyExistingSecret: ls-s3"] + lines[end:]
    expected.remove(f'        accessKey: "{SECRET}"')
    assert new.splitlines() == expected


def test_update_helm_creates_missing_maps_where_they_belong() -> None:
    new = update_helm_values_text(
        LS_VALUES,
        {
            "global.persistence.config.gcs.bucket": "g",
            "global.persistence.config.gcs.projectID": "p",
            "global.extraEnvironmentVars.USE_NGINX_FOR_UPLOADS": "false",
            "app.nodeSelector.disk": "ssd",
        },
    )
    lines = LS_VALUES.splitlines()
    expected = list(lines)
    at = expected.index('        existingClaim: ""') + 1
    expected[at:at] = ["      gcs:", "        bucket: g", "        projectID: p"]
    at = expected.index("  extraEnvironmentVars: {}")
    expected[at : at + 1] = ["  extraEnvironmentVars:", "    USE_NGINX_FOR_UPLOADS: 'false'"]
    at = expected.index("  nodeSelector: { }")
    expected[at : at + 1] = ["  nodeSelector:", "    disk: ssd"]
    assert new.splitlines() == expected


def test_update_helm_existing_secret_form_and_new_top_level() -> None:
    new = update_helm_values_text(
        LS_VALUES_EXISTING_SECRET,
        {
            "global.persistence.config.s3.folder": "media",
            "global.persistence.config.s3.urlExpirationSecs": 3600,
        },
    )
    _assert_replaced(
        LS_VALUES_EXISTING_SECRET,
        new,
        {
            _index(LS_VALUES_EXISTING_SECRET, "        folder: ls"): "        folder: media",
            _index(LS_VALUES_EXISTING_SECRET, "        urlExpirationSecs: 86400"): "        urlExpirationSecs: 3600",
        },
    )
    new = update_helm_values_text("# my values\n", {"global.persistence.type": "s3"})
    assert new == "# my values\nglobal:\n  persistence:\n    type: s3\n"
    assert update_helm_values_text("", {"a.b": True}) == "a:\n  b: true\n"


def test_updates_without_changes_return_the_text_unchanged() -> None:
    assert update_env_text(ENV_LIST, {}) == ENV_LIST
    assert update_compose_text(COMPOSE_LIST, {}) == COMPOSE_LIST
    assert update_compose_text(COMPOSE_MAP, {"NOT_THERE": None}) == COMPOSE_MAP
    assert update_helm_values_text(LS_VALUES, {}) == LS_VALUES
    assert update_helm_values_text(LS_VALUES, {"global.nothere.x": None}) == LS_VALUES


def test_update_helm_follows_the_file_indentation() -> None:
    text = "global:\n    persistence:\n        type: volume\n    other:\n        - a\n"
    new = update_helm_values_text(text, {"global.persistence.config.s3.bucket": "b"})
    assert new == (
        "global:\n    persistence:\n        type: volume\n        config:\n            s3:\n"
        "                bucket: b\n    other:\n        - a\n"
    )


def test_update_helm_keeps_header_crlf_and_untouched_formatting() -> None:
    text = "# values\r\n---\r\nglobal:\r\n  tag: ~\r\n  odd:    spacing   # kept\r\n  persistence:\r\n    type: volume"
    new = update_helm_values_text(text, {"global.persistence.type": "gcs"})
    assert new == text.replace("type: volume", "type: gcs")


def test_update_helm_rejects_a_scalar_in_the_path() -> None:
    with pytest.raises(DeploymentFileError) as exc:
        update_helm_values_text(LS_VALUES, {"app.replicas.x": 1}, name="ls-values.yaml")
    _assert_error(exc, "ls-values.yaml", "app.replicas", "not a mapping")
    with pytest.raises(DeploymentFileError) as exc:
        update_helm_values_text("- a\n", {"x": 1}, name="ls-values.yaml")
    _assert_error(exc, "ls-values.yaml", "not a mapping")
    with pytest.raises(DeploymentFileError):
        update_helm_values_text(LS_VALUES, {"global..x": 1})


# ----------------------------------------------------------------------------------------- backup, rollback

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def _dir_names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_write_with_backup_and_rollback_restore_bytes_and_mode(tmp_path: Path) -> None:
    original = ENV_LIST.replace("\n", "\r\n").encode()
    path = _write(tmp_path, "env.list", original)
    path.chmod(0o640)
    new_text = update_env_text(original.decode(), {"STORAGE_TYPE": "s3"})

    backup = write_with_backup(path, new_text, now=NOW)
    assert backup == tmp_path / "env.list.lsmigrate-backup-20250304T050607Z"
    assert backup.read_bytes() == original
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640
    assert path.read_bytes() == new_text.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _dir_names(tmp_path) == {"env.list", backup.name, backup.name + ".json"}  # the backup, its record
    assert latest_backup(path) == backup

    assert rollback(path) == backup
    assert path.read_bytes() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _dir_names(tmp_path) == {"env.list", backup.name}  # the record is consumed, the backup kept


def test_backups_in_the_same_second_get_a_suffix_and_the_newest_wins(tmp_path: Path) -> None:
    path = _write(tmp_path, "ls-values.yaml", "a: 1\n")
    assert latest_backup(path) is None
    first = write_with_backup(path, "a: 2\n", now=NOW)
    second = write_with_backup(path, "a: 3\n", now=NOW)
    third = write_with_backup(path, "a: 4\n", now=NOW)
    assert second.name == first.name + "-1"
    assert third.name == first.name + "-2"
    assert latest_backup(path) == third
    later = write_with_backup(path, "a: 5\n", now=datetime(2025, 3, 4, 6, 0, 0))  # naive: taken as UTC
    assert later.name == "ls-values.yaml.lsmigrate-backup-20250304T060000Z"
    assert latest_backup(path) == later
    (tmp_path / "ls-values.yaml.lsmigrate-backup-garbage").write_text("x")
    (tmp_path / "other.yaml.lsmigrate-backup-20990101T000000Z").write_text("x")
    assert latest_backup(path) == later
    assert rollback(path) == later
    assert path.read_text() == "a: 4\n"


def test_write_with_backup_follows_a_symlink(tmp_path: Path) -> None:
    real = _write(tmp_path, "real.env", "A=1\n")
    link = tmp_path / "link.env"
    link.symlink_to(real)
    backup = write_with_backup(link, "A=2\n", now=NOW)
    assert link.is_symlink()
    assert real.read_text() == "A=2\n"
    assert backup.read_text() == "A=1\n"
    assert rollback(link) == backup
    assert real.read_text() == "A=1\n"


def test_rollback_without_backup(tmp_path: Path) -> None:
    path = _write(tmp_path, "env.list", "A=1\n")
    with pytest.raises(DeploymentFileError) as exc:
        rollback(path)
    assert str(exc.value) == f"no lsmigrate backup of {path} found"


def test_write_with_backup_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeploymentFileError) as exc:
        write_with_backup(tmp_path / "gone.env", "A=1\n")
    _assert_error(exc, "gone.env")
    assert _dir_names(tmp_path) == set()


@pytest.mark.parametrize("target", ["os.replace", "tempfile.mkstemp", "os.fsync"])
def test_write_failure_leaves_everything_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    original = ENV_LIST.encode()
    path = _write(tmp_path, "env.list", original)
    path.chmod(0o640)

    calls = {"n": 0}

    def denied(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        # fsync: let the backup through, fail on the temp file
        if target != "os.fsync" or calls["n"] > 1:
            raise PermissionError(13, "Permission denied")

    module, attr = target.split(".")
    real = getattr(getattr(backups, module), attr)  # the writing lives in lsmigrate/deployment/backups.py
    if target == "os.fsync":
        monkeypatch.setattr(backups.os, "fsync", lambda fd: denied() or real(fd))
    else:
        monkeypatch.setattr(getattr(backups, module), attr, denied)
    with pytest.raises(DeploymentFileError) as exc:
        write_with_backup(path, "STORAGE_TYPE=s3\n", now=NOW)
    _assert_error(exc, str(path), "Permission denied")
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _dir_names(tmp_path) == {"env.list"}


def test_unwritable_directory(tmp_path: Path) -> None:
    directory = tmp_path / "conf"
    directory.mkdir()
    path = _write(directory, "env.list", "A=1\n")
    directory.chmod(0o500)
    try:
        if os.access(directory, os.W_OK):
            pytest.skip("running as root: a 0o500 directory is still writable (see the monkeypatched test)")
        with pytest.raises(DeploymentFileError) as exc:
            write_with_backup(path, "A=2\n", now=NOW)
        _assert_error(exc, str(path))
        assert path.read_text() == "A=1\n"
        assert _dir_names(directory) == {"env.list"}
    finally:
        directory.chmod(0o700)


# ------------------------------------------------------------------------------------------------------ diff


def test_unified_diff() -> None:
    new = update_env_text(ENV_LIST, {"STORAGE_TYPE": "s3"})
    diff = unified_diff(ENV_LIST, new, "env.list")
    assert diff.startswith("--- a/env.list\n+++ b/env.list\n@@ ")
    assert "-STORAGE_TYPE=volume   # volume until migrated\n" in diff
    assert "+# volume until migrated\n+STORAGE_TYPE=s3\n" in diff
    assert unified_diff(ENV_LIST, ENV_LIST, "env.list") == ""
    assert unified_diff("a: 1", "a: 2", "v.yaml").endswith("+a: 2\n\\ No newline at end of file\n")
