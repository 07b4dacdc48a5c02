"""Reading a deployment file the way its consumer does: compose's `$` interpolation (the process environment,
then the `.env` next to the compose file), and env.list lines `docker run --env-file` and docker compose read
differently (refused for the variables lsmigrate takes the destination from, warned of for the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsdata import make_data_dir
from s3util import all_objects, run

from lsmigrate import jobs
from lsmigrate.deployment.compose import read_compose_environment
from lsmigrate.deployment.text import DeploymentFileError


def _compose(tmp_path: Path, environment: str, *, extra: str = "") -> Path:
    """A compose file whose app service has the given `environment:` mapping lines (already indented)."""
    path = tmp_path / "docker-compose.yml"
    path.write_text("services:\n  app:\n    image: heartexlabs/label-studio:latest\n" + extra
                    + "    environment:\n" + environment)
    return path


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("LS_FOLDER", "LS_SET", "LS_EMPTY", "LS_UNSET", "LS_OTHER", "LS_DOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LS_SET", "set-value")
    monkeypatch.setenv("LS_EMPTY", "")
    return monkeypatch


# ------------------------------------------------------------------------------------- compose interpolation


@pytest.mark.parametrize(("template", "expected"), [
    ("${LS_FOLDER:-c2}", "c2"),
    ("$LS_SET", "set-value"),
    ("${LS_SET}", "set-value"),
    ("pre-${LS_SET}-post", "pre-set-value-post"),
    ("$LS_SET/x", "set-value/x"),
    ("${LS_SET:-dflt}", "set-value"),
    ("${LS_EMPTY:-dflt}", "dflt"),       # `:-`: unset or empty
    ("${LS_EMPTY-dflt}", ""),            # `-`: unset only
    ("${LS_UNSET-dflt}", "dflt"),
    ("${LS_SET:+alt}", "alt"),           # `:+`: set and not empty
    ("${LS_EMPTY:+alt}", ""),
    ("${LS_EMPTY+alt}", "alt"),          # `+`: set, even empty
    ("${LS_UNSET+alt}", ""),
    ("${LS_SET:?must be set}", "set-value"),
    ("${LS_EMPTY?must be set}", ""),
    ("${LS_UNSET}", ""),                 # compose warns and makes it blank
    ("$LS_UNSET", ""),
    ("${LS_UNSET:-${LS_SET}}", "set-value"),  # the default is interpolated in turn
    ("$$LS_SET", "$LS_SET"),             # `$$` is a literal `$`
    ("a$$b$$$$", "a$b$$"),
    ("${LS_UNSET:-$$}", "$"),
    ("${LS_SET:-{x}}", "set-value}"),    # compose-go: the first `}` closes it
])
def test_compose_interpolates_environment_values(clean_env, tmp_path, template, expected):
    path = _compose(tmp_path, f"      STORAGE_AWS_FOLDER: '{template}'\n")
    assert read_compose_environment(path)["STORAGE_AWS_FOLDER"] == expected
    listed = _compose(tmp_path, f"      - 'STORAGE_AWS_FOLDER={template}'\n")
    assert read_compose_environment(listed)["STORAGE_AWS_FOLDER"] == expected


@pytest.mark.parametrize(("template", "why"), [
    ("${LS_UNSET:?set LS_UNSET first}", "LS_UNSET is not set (set LS_UNSET first)"),
    ("${LS_UNSET?}", "LS_UNSET is not set"),
    ("${LS_EMPTY:?}", "LS_EMPTY is empty"),
])
def test_compose_required_variable_is_one_clear_error(clean_env, tmp_path, template, why):
    path = _compose(tmp_path, f"      STORAGE_AWS_SECRET_ACCESS_KEY: sekrit-{template}\n")
    with pytest.raises(DeploymentFileError) as exc:
        read_compose_environment(path)
    message = str(exc.value)
    assert "\n" not in message and why in message
    assert message.startswith(f"{path}: services.app.environment.STORAGE_AWS_SECRET_ACCESS_KEY: ")
    assert "sekrit" not in message


@pytest.mark.parametrize("template", ["cost: 5$", "$1", "${LS_SET", "${LS SET}", "${}"])
def test_compose_refuses_a_stray_dollar_as_compose_does(clean_env, tmp_path, template):
    path = _compose(tmp_path, f"      STORAGE_AWS_FOLDER: '{template}'\n")
    with pytest.raises(DeploymentFileError, match=r"STORAGE_AWS_FOLDER: .*\$\$"):
        read_compose_environment(path)


def test_compose_dot_env_next_to_the_compose_file_then_the_environment_wins(clean_env, tmp_path, monkeypatch):
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / ".env").write_text("LS_FOLDER=from-dotenv\nLS_DOT=dot\nLS_OTHER=${LS_DOT}-and-$LS_SET\n"
                                 "LS_EMPTY=not-used\n")
    path = _compose(deploy, "      STORAGE_AWS_FOLDER: ${LS_FOLDER:-c2}\n      OTHER: $LS_OTHER\n"
                            "      EMPTY: ${LS_EMPTY-unset}\n      DOLLAR: $$LS_FOLDER\n      LS_DOT:\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text("LS_FOLDER=from-the-working-directory\n")
    monkeypatch.chdir(elsewhere)  # compose's project directory is the compose file's, not the working one
    found = read_compose_environment(path)
    assert found["STORAGE_AWS_FOLDER"] == "from-dotenv"
    assert found["OTHER"] == "dot-and-set-value"  # `.env` is itself interpolated, the environment first
    assert found["EMPTY"] == ""  # set (empty) in the environment: the environment wins over `.env`
    assert found["DOLLAR"] == "$LS_FOLDER"
    assert found["LS_DOT"] == "dot"  # an entry without a value takes it from the same variables
    monkeypatch.setenv("LS_FOLDER", "from-the-environment")
    assert read_compose_environment(path)["STORAGE_AWS_FOLDER"] == "from-the-environment"


def test_compose_env_file_entries_are_interpolated(clean_env, tmp_path):
    (tmp_path / ".env").write_text("LS_DOT=dot\n")
    (tmp_path / "storage.env").write_text(
        "STORAGE_AWS_FOLDER=${LS_FOLDER:-c2}\nFIRST=one\nSECOND=$FIRST-${LS_DOT}\n"
        "DOUBLE=\"${LS_SET}\"\nSINGLE='${LS_SET}'\nESCAPED=a$$b\n")
    path = _compose(tmp_path, "      FROM_YAML: ${FIRST:-not-from-env-file}\n",
                    extra="    env_file:\n      - ./storage.env\n")
    found = read_compose_environment(path)
    assert found["STORAGE_AWS_FOLDER"] == "c2"
    assert found["SECOND"] == "one-dot"  # earlier lines of the same file, and `.env`
    assert found["DOUBLE"] == "set-value" and found["SINGLE"] == "${LS_SET}"  # single quotes: literal
    assert found["ESCAPED"] == "a$b"
    assert found["FROM_YAML"] == "not-from-env-file"  # the compose file is interpolated from its own variables


def test_compose_env_file_required_variable_names_file_line_and_variable(clean_env, tmp_path):
    (tmp_path / "storage.env").write_text("# storage\nSTORAGE_AWS_BUCKET_NAME=${LS_UNSET:?name the bucket}\n")
    path = _compose(tmp_path, "      A: b\n", extra="    env_file: storage.env\n")
    with pytest.raises(DeploymentFileError) as exc:
        read_compose_environment(path)
    message = str(exc.value)
    assert "storage.env line 2: STORAGE_AWS_BUCKET_NAME" in message and "LS_UNSET is not set" in message


# ------------------------------------------------------------------------------------------ end to end: compose


@pytest.fixture
def data(tmp_path):
    return make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, avatars=1, exports=1, legacy_flat=1,
                         odd_names=False)


def test_local_to_s3_compose_default_lands_under_the_default(s3_env, s3_bucket, data, tmp_path, clean_env):
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    compose = _compose(deploy, f"      STORAGE_AWS_BUCKET_NAME: {s3_bucket.name}\n"
                               "      STORAGE_AWS_FOLDER: ${LS_FOLDER:-c2}\n"
                               f"      STORAGE_AWS_ENDPOINT_URL: {s3_bucket.endpoint_url}\n"
                               "      LABEL_STUDIO_HOST: ${LS_UNSET}\n")
    before = compose.read_text()
    result = run("local-to-s3", "--data-dir", str(data.root), "--compose", str(compose), "--yes", "-q")
    assert result.exit_code == 0, result.output
    keys = set(all_objects(s3_bucket.client(), s3_bucket.name))
    assert keys == {f"c2/{rel}" for rel in data.files}
    assert compose.read_text() == before + "      STORAGE_TYPE: s3\n", "the folder line stays as written"
    assert 'the "LS_UNSET" variable is not set' in result.stderr


def test_local_to_s3_compose_required_variable_exits_2(s3_env, s3_bucket, data, tmp_path, clean_env):
    compose = _compose(tmp_path, f"      STORAGE_AWS_BUCKET_NAME: {s3_bucket.name}\n"
                                 "      STORAGE_AWS_FOLDER: ${LS_FOLDER:?set LS_FOLDER}\n"
                                 f"      STORAGE_AWS_ENDPOINT_URL: {s3_bucket.endpoint_url}\n")
    before = compose.read_bytes()
    result = run("local-to-s3", "--data-dir", str(data.root), "--compose", str(compose), "--yes")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("lsmigrate: error: ")]
    assert len(errors) == 1 and "LS_FOLDER is not set" in errors[0], result.stderr
    assert compose.read_bytes() == before and all_objects(s3_bucket.client(), s3_bucket.name) == {}


# ----------------------------------------------------------------------- env.list read differently by the two


def _env_list(path: Path, bucket, folder_line: str, *, extra: str = "") -> Path:
    path.write_text("# Label Studio\n"
                    f"STORAGE_AWS_BUCKET_NAME={bucket.name}\n"
                    f"{folder_line}\n"
                    f"STORAGE_AWS_ENDPOINT_URL={bucket.endpoint_url}\n" + extra)
    return path


@pytest.mark.parametrize("folder_line", [
    'STORAGE_AWS_FOLDER="ls-media-q7"',
    "STORAGE_AWS_FOLDER='ls-media-q7'",
    "STORAGE_AWS_FOLDER=ls-media-q7   # the folder",
    "STORAGE_AWS_FOLDER=ls-media-q7  ",
])
def test_destination_variable_read_differently_is_refused(s3_env, s3_bucket, data, tmp_path, folder_line):
    env_list = _env_list(tmp_path / "env.list", s3_bucket, folder_line)
    before = env_list.read_bytes()
    result = run("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("lsmigrate: error: ")]
    assert len(errors) == 1, result.stderr
    assert f"{env_list} line 3 (STORAGE_AWS_FOLDER)" in errors[0]
    assert "`STORAGE_AWS_FOLDER=value`" in errors[0] and "no quotes" in errors[0]
    assert "ls-media-q7" not in result.output, "never the value"
    assert env_list.read_bytes() == before, "the file is untouched"
    assert all_objects(s3_bucket.client(), s3_bucket.name) == {}, "nothing copied"


@pytest.mark.parametrize("line", [
    "LABEL_STUDIO_STORAGE_AWS_FOLDER=\"x\"",
    "HEARTEX_STORAGE_AWS_REGION_NAME=us-east-1 # region",
    "STORAGE_AWS_SECRET_ACCESS_KEY='abc'",
    "AWS_SECRET_ACCESS_KEY=\"abc\"",
    "AZURE_STORAGE_CONNECTION_STRING= x",
    "GOOGLE_APPLICATION_CREDENTIALS=\"/k.json\"",
    "STORAGE_AWS_FOLDER=a$b",
    "export STORAGE_TYPE=s3",
])
def test_every_destination_variable_is_checked(tmp_path, line):
    path = tmp_path / "env.list"
    path.write_text(f"A=1\n{line}\n")
    with pytest.raises(DeploymentFileError, match=rf"^{path} line 2 \(\w+\): .*`\w+=value`"):
        jobs.deployment_settings(env_file=str(path))


def test_other_variable_read_differently_only_warns(s3_env, s3_bucket, data, tmp_path):
    env_list = _env_list(tmp_path / "env.list", s3_bucket, "STORAGE_AWS_FOLDER=plain-folder",
                         extra='POSTGRE_PASSWORD="p@ss word-9z"\nDJANGO_DB=default   # the db\n')
    result = run("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes", "-q")
    assert result.exit_code == 0, result.output
    assert set(all_objects(s3_bucket.client(), s3_bucket.name)) == {f"plain-folder/{rel}" for rel in data.files}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("lsmigrate: warning: ")]
    assert any(f"{env_list} line 5 (POSTGRE_PASSWORD): docker run --env-file keeps the quotes" in w
               for w in warnings), result.stderr
    assert any(f"{env_list} line 6 (DJANGO_DB)" in w for w in warnings), result.stderr
    assert len(warnings) == 2, "each once, however often the file is read"
    assert "p@ss" not in result.stderr
