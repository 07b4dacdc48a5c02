"""A deployment file prepared for the switch (the provider's variables filled in, STORAGE_TYPE not set yet)
names the destination: every command takes bucket, folder, region, endpoint and credentials from it, without --to.
"""

from __future__ import annotations

import json
import uuid

import gcsfs
import pytest
from azure.storage.blob import BlobServiceClient
from lsdata import make_data_dir
from s3util import all_objects, run

ACCOUNT = "devstoreaccount1"


@pytest.fixture
def data(tmp_path):
    return make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, avatars=1, exports=1, legacy_flat=1,
                         odd_names=False)


def _doctor_ran_against(result, url: str) -> None:
    doc = json.loads(result.stdout)
    status = {check["name"]: check["status"] for check in doc["checks"]}
    assert doc["destination"].startswith(url), doc["destination"]
    assert status["credentials"] == "pass" and status["bucket exists"] == "pass"
    assert status["put under the folder"] == "pass"


def _every_command(data, option: tuple[str, ...], url: str, local_to: str):
    """plan (README step 1), copy and verify without DST, doctor, then local-to-* switching the file."""
    planned = run("plan", "--data-dir", str(data.root), *option, "--probe", "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["destination"].startswith(url)
    copied = run("copy", str(data.root), *option, "--json")
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout)["copied"] == len(data.files)
    verified = run("verify", str(data.root), *option, "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["counts"]["ok"] == len(data.files)
    doctor = run("doctor", *option, "--json")
    assert doctor.exit_code in (0, 2), doctor.output  # 2: no CORS rule yet, which is a failed check
    _doctor_ran_against(doctor, url)
    switched = run(local_to, "--data-dir", str(data.root), *option, "--yes", "--json")
    assert switched.exit_code == 0, switched.output
    doc = json.loads(switched.stdout)
    assert doc["copy"]["copied"] == 0 and doc["verify"]["clean"] and doc["cutover"]["switched"]
    return doc


# ------------------------------------------------------------------------------------------------- env.list
def test_s3_env_list_prepared_needs_no_to(s3_env, s3_bucket, data, tmp_path):
    prepared = ("# Label Studio: S3 prepared, not switched yet\n"
                f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=ls-media\n"
                "STORAGE_AWS_REGION_NAME=us-east-1\n"
                f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n"
                "STORAGE_AWS_ACCESS_KEY_ID=testing\nSTORAGE_AWS_SECRET_ACCESS_KEY=testing\n")
    env_list = tmp_path / "env.list"
    env_list.write_text(prepared)
    _every_command(data, ("--env-file", str(env_list)), f"s3://{s3_bucket.name}/ls-media", "local-to-s3")
    keys = set(all_objects(s3_bucket.client(), s3_bucket.name))
    assert keys == {f"ls-media/{rel}" for rel in data.files}
    assert env_list.read_text() == prepared + "STORAGE_TYPE=s3\n", "only STORAGE_TYPE is added"


def test_gcs_env_list_prepared_needs_no_to(s3_env, fake_gcs, data, tmp_path):
    bucket = f"prep-{uuid.uuid4().hex[:12]}"
    fs = gcsfs.GCSFileSystem(endpoint_url=fake_gcs.endpoint_url, token="anon", project="test",
                             skip_instance_cache=True)
    fs.mkdir(bucket)
    prepared = (f"STORAGE_GCS_BUCKET_NAME={bucket}\nSTORAGE_GCS_FOLDER=media\nSTORAGE_GCS_PROJECT_ID=test\n"
                f"STORAGE_GCS_ENDPOINT={fake_gcs.endpoint_url}\n")
    env_list = tmp_path / "env.list"
    env_list.write_text(prepared)
    _every_command(data, ("--env-file", str(env_list)), f"gs://{bucket}/media", "local-to-gcs")
    assert {path.split("/", 2)[2] for path in fs.find(f"{bucket}/media")} == set(data.files)
    assert env_list.read_text() == prepared + "STORAGE_TYPE=gcs\n"


def test_azure_env_list_prepared_needs_no_to(s3_env, azurite, data, tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"prep{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    prepared = (f"STORAGE_AZURE_CONTAINER_NAME={container}\nSTORAGE_AZURE_FOLDER=media\n"
                f"STORAGE_AZURE_ACCOUNT_NAME={ACCOUNT}\n")
    env_list = tmp_path / "env.list"
    env_list.write_text(prepared)
    _every_command(data, ("--env-file", str(env_list)), f"az://{container}/media", "local-to-azure")
    names = {blob.name for blob in service.get_container_client(container).list_blobs()}
    assert names == {f"media/{rel}" for rel in data.files}
    assert env_list.read_text() == prepared + "STORAGE_TYPE=azure\n"


def test_label_studio_prefixed_names_win(s3_env, s3_bucket, moto_server, data, tmp_path, _moto_client):
    decoy = f"decoy-{uuid.uuid4().hex[:12]}"
    _moto_client.create_bucket(Bucket=decoy)
    prepared = (f"STORAGE_AWS_BUCKET_NAME={decoy}\nSTORAGE_AWS_FOLDER=plain\n"
                f"LABEL_STUDIO_STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\n"
                "HEARTEX_STORAGE_AWS_FOLDER=prefixed\n"
                f"LABEL_STUDIO_STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n")
    env_list = tmp_path / "env.list"
    env_list.write_text(prepared)
    copied = run("copy", str(data.root), "--env-file", str(env_list), "-q")
    assert copied.exit_code == 0, copied.output
    assert set(all_objects(s3_bucket.client(), s3_bucket.name)) == {f"prefixed/{rel}" for rel in data.files}
    assert all_objects(_moto_client, decoy) == {}
    switched = run("cutover", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes")
    assert switched.exit_code == 0, switched.output
    assert env_list.read_text() == prepared + "STORAGE_TYPE=s3\n", "the prefixed lines are what LS reads: kept"


# ------------------------------------------------------------------------------------------------- compose
def test_compose_list_form_prepared(s3_env, s3_bucket, data, tmp_path):
    compose = tmp_path / "docker-compose.yml"
    text = ("services:\n  app:\n    image: heartexlabs/label-studio:latest\n    environment:\n"
            "      - LABEL_STUDIO_HOST=http://ls:8080\n"
            f"      - STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\n      - STORAGE_AWS_FOLDER=list-form\n"
            f"      - STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n")
    compose.write_text(text)
    copied = run("copy", str(data.root), "--compose", str(compose), "-q")
    assert copied.exit_code == 0, copied.output
    assert len(all_objects(s3_bucket.client(), s3_bucket.name, "list-form/")) == len(data.files)
    switched = run("cutover", "--data-dir", str(data.root), "--compose", str(compose), "--yes")
    assert switched.exit_code == 0, switched.output
    assert compose.read_text() == text + "      - STORAGE_TYPE=s3\n"


def test_compose_map_form_prepared(s3_env, s3_bucket, data, tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  app:\n    image: heartexlabs/label-studio:latest\n    environment:\n"
                       f"      STORAGE_AWS_BUCKET_NAME: {s3_bucket.name}\n      STORAGE_AWS_FOLDER: map-form\n"
                       f"      STORAGE_AWS_ENDPOINT_URL: {s3_bucket.endpoint_url}\n")
    planned = run("plan", "--data-dir", str(data.root), "--compose", str(compose), "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["destination"].startswith(f"s3://{s3_bucket.name}/map-form")
    switched = run("local-to-s3", "--data-dir", str(data.root), "--compose", str(compose), "--yes", "-q")
    assert switched.exit_code == 0, switched.output
    assert len(all_objects(s3_bucket.client(), s3_bucket.name, "map-form/")) == len(data.files)
    assert "      STORAGE_TYPE: s3\n" in compose.read_text()


def test_compose_env_file_entry_relative_to_the_compose_file(s3_env, s3_bucket, data, tmp_path):
    deploy = tmp_path / "deploy"
    (deploy / "config").mkdir(parents=True)
    (deploy / "config" / "storage.env").write_text(
        f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=from-env-file\n"
        f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n"
        "STORAGE_AWS_ACCESS_KEY_ID=testing\nSTORAGE_AWS_SECRET_ACCESS_KEY=kept-in-the-env-file\n")
    compose = deploy / "docker-compose.yml"
    text = ("services:\n  app:\n    image: heartexlabs/label-studio:latest\n"
            "    env_file:\n      - ./config/storage.env\n      - path: ./config/optional.env\n        required: false\n"
            "    environment:\n      STORAGE_AWS_FOLDER: environment-wins\n")
    compose.write_text(text)
    copied = run("copy", str(data.root), "--compose", str(compose), "-q")  # the working directory is elsewhere
    assert copied.exit_code == 0, copied.output
    assert len(all_objects(s3_bucket.client(), s3_bucket.name, "environment-wins/")) == len(data.files)
    switched = run("cutover", "--data-dir", str(data.root), "--compose", str(compose), "--yes")
    assert switched.exit_code == 0, switched.output
    after = compose.read_text()
    assert after == text + "      STORAGE_TYPE: s3\n"
    assert "kept-in-the-env-file" not in after, "the secret stays in its env file"


# ---------------------------------------------------------------------------------------------------- Helm
def test_helm_values_type_volume_with_config_s3(s3_env, s3_bucket, data, tmp_path):
    values = tmp_path / "ls-values.yaml"
    values.write_text("global:\n  persistence:\n    enabled: true\n    type: volume\n    config:\n      s3:\n"
                      f"        bucket: {s3_bucket.name}\n        region: us-east-1\n        folder: helm-media\n"
                      f"        endpointUrl: {s3_bucket.endpoint_url}\n"
                      "        accessKey: testing\n        secretKey: testing\n")
    verified = run("verify", str(data.root), "--values", str(values), "--json")
    assert verified.exit_code == 3, verified.output  # nothing copied yet: the file's bucket, all missing
    assert json.loads(verified.stdout)["counts"]["missing"] == len(data.files)
    switched = run("local-to-s3", "--data-dir", str(data.root), "--values", str(values), "--yes", "-q")
    assert switched.exit_code == 0, switched.output
    assert len(all_objects(s3_bucket.client(), s3_bucket.name, "helm-media/")) == len(data.files)
    assert "    type: s3\n" in values.read_text()


# ------------------------------------------------------------------------------------------ refusals, notes
@pytest.mark.parametrize("command", ["plan", "copy", "verify", "doctor", "cutover", "local-to-s3"])
def test_two_providers_prepared_is_refused_naming_both(data, tmp_path, command):
    env_list = tmp_path / "env.list"
    env_list.write_text("STORAGE_AWS_BUCKET_NAME=aws-bucket\nSTORAGE_GCS_BUCKET_NAME=gcs-bucket\n")
    args = {"plan": ("--data-dir", str(data.root)), "copy": (str(data.root),), "verify": (str(data.root),),
            "doctor": (), "cutover": ("--data-dir", str(data.root)),
            "local-to-s3": ("--data-dir", str(data.root))}[command]
    result = run(command, *args, "--env-file", str(env_list))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "s3 (aws-bucket)" in result.stderr and "gcs (gcs-bucket)" in result.stderr


def test_two_providers_prepared_in_helm_values(data, tmp_path):
    values = tmp_path / "ls-values.yaml"
    values.write_text("global:\n  persistence:\n    type: volume\n    config:\n"
                      "      s3:\n        bucket: aws-bucket\n        region: us-east-1\n"
                      "      azure:\n        containerName: az-container\n")
    result = run("plan", "--data-dir", str(data.root), "--values", str(values))
    assert result.exit_code == 2
    assert "s3 (aws-bucket)" in result.stderr and "azure (az-container)" in result.stderr


def test_local_to_s3_refuses_a_file_prepared_for_gcs(data, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text("STORAGE_GCS_BUCKET_NAME=gcs-bucket\nSTORAGE_GCS_FOLDER=media\n")
    result = run("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes")
    assert result.exit_code == 2, result.output
    assert "gs://gcs-bucket/media" in result.stderr and "local-to-gcs" in result.stderr
    assert env_list.read_text() == "STORAGE_GCS_BUCKET_NAME=gcs-bucket\nSTORAGE_GCS_FOLDER=media\n"


def test_to_disagreeing_with_the_file_says_so_and_wins(s3_env, s3_bucket, moto_server, data, tmp_path,
                                                       _moto_client):
    other = f"other-{uuid.uuid4().hex[:12]}"
    _moto_client.create_bucket(Bucket=other)
    env_list = tmp_path / "env.list"
    env_list.write_text(f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=prepared\n"
                        f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n"
                        "STORAGE_GCS_BUCKET_NAME=gcs-bucket\n")  # two prepared: an s3:// destination chooses
    result = run("copy", str(data.root), f"s3://{other}/given", "--env-file", str(env_list), "--json")
    assert result.exit_code == 0, result.output
    note = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "wins over" in note[0] and str(env_list) in note[0]
    assert f"s3://{other}/given" in note[0] and f"s3://{s3_bucket.name}/prepared" in note[0]
    assert len(all_objects(_moto_client, other, "given/")) == len(data.files)
    assert all_objects(s3_bucket.client(), s3_bucket.name) == {}
    agreeing = run("plan", str(data.root), f"s3://{s3_bucket.name}/prepared", "--env-file", str(env_list), "-q")
    assert agreeing.exit_code == 0 and "note:" not in agreeing.stderr


def test_the_file_decides_over_the_process_environment(s3_env, s3_bucket, data, tmp_path, monkeypatch):
    """Label Studio reads the file, not lsmigrate's shell: a LABEL_STUDIO_ spelling or a STORAGE_TYPE there
    does not override what the file says."""
    monkeypatch.setenv("LABEL_STUDIO_STORAGE_AWS_BUCKET_NAME", "decoy-from-the-shell")
    monkeypatch.setenv("STORAGE_TYPE", "gcs")
    env_list = tmp_path / "env.list"
    env_list.write_text(f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=f\n"
                        f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n")
    planned = run("plan", "--data-dir", str(data.root), "--env-file", str(env_list), "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["destination"].startswith(f"s3://{s3_bucket.name}/f")


def test_compose_env_file_that_is_missing_is_one_line(data, tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  app:\n    image: heartexlabs/label-studio:latest\n    env_file: ./nope.env\n")
    result = run("plan", "--data-dir", str(data.root), "--compose", str(compose))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "services.app.env_file" in result.stderr and "nope.env: no such file" in result.stderr
