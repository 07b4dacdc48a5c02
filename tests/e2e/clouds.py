"""Each cloud as the end-to-end tests need it: a bucket on its emulator, the deployment file an operator
prepares for it, the environment lsmigrate runs with, what Label Studio needs to reach the emulator, and
the objects the bucket holds afterwards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

# The same folder on every cloud: objects land at <folder>/<path below media/>.
FOLDER = "ls-media"


@dataclass
class Cloud:
    name: str  # STORAGE_TYPE's value: s3 | gcs | azure
    server: object  # the emulator fixture (tests/servers.py)

    @property
    def command(self) -> str:
        return f"local-to-{self.name}"

    @property
    def emulator(self) -> str:
        return {"s3": "moto", "gcs": "fake-gcs-server", "azure": "Azurite"}[self.name]

    def create_bucket(self) -> str:
        bucket = f"ls-e2e-{uuid.uuid4().hex[:12]}"
        if self.name == "s3":
            self._s3().create_bucket(Bucket=bucket)
        elif self.name == "gcs":
            answer = requests.post(f"{self.server.endpoint_url}/storage/v1/b", params={"project": "test"},
                                   json={"name": bucket}, timeout=30)
            answer.raise_for_status()
        else:
            self._azure().create_container(bucket)
        return bucket

    def prepared_env_list(self, bucket: str) -> str:
        """The env.list an operator prepares: the provider's variables, STORAGE_TYPE not set yet. Label Studio
        reaches the emulator by its own settings where it has them."""
        if self.name == "s3":
            lines = [
                "# Label Studio on S3: prepared for the switch, STORAGE_TYPE not set yet",
                f"STORAGE_AWS_BUCKET_NAME={bucket}",
                f"STORAGE_AWS_FOLDER={FOLDER}",
                "STORAGE_AWS_REGION_NAME=us-east-1",
                f"STORAGE_AWS_ENDPOINT_URL={self.server.endpoint_url}",
                "STORAGE_AWS_ACCESS_KEY_ID=testing",
                "STORAGE_AWS_SECRET_ACCESS_KEY=testing",
            ]
        elif self.name == "gcs":
            lines = [
                "# Label Studio on GCS: prepared for the switch, STORAGE_TYPE not set yet",
                f"STORAGE_GCS_BUCKET_NAME={bucket}",
                f"STORAGE_GCS_FOLDER={FOLDER}",
                "STORAGE_GCS_PROJECT_ID=test",
                f"STORAGE_GCS_ENDPOINT={self.server.endpoint_url}",
                "# google-cloud-storage's own emulator variable: Label Studio's GCS client goes there",
                f"STORAGE_EMULATOR_HOST={self.server.endpoint_url}",
            ]
        else:
            lines = [
                "# Label Studio on Azure: prepared for the switch, STORAGE_TYPE not set yet",
                f"STORAGE_AZURE_ACCOUNT_NAME={self.server.account_name}",
                f"STORAGE_AZURE_ACCOUNT_KEY={self.server.account_key}",
                f"STORAGE_AZURE_CONTAINER_NAME={bucket}",
                f"STORAGE_AZURE_FOLDER={FOLDER}",
            ]
        return "\n".join(lines) + "\n"

    def lsmigrate_environment(self) -> dict[str, str]:
        """What lsmigrate needs from the environment beyond the file: the emulator's address where the file
        cannot name it. S3 (endpoint and keys) and GCS (STORAGE_EMULATOR_HOST) have it all in the file;
        for Azure the standard variable that points a client at an emulator, the connection string."""
        if self.name == "azure":
            return {"AZURE_STORAGE_CONNECTION_STRING": self.server.connection_string}
        return {}

    def label_studio_override(self, workdir: Path) -> Path | None:
        """A directory for the Label Studio process's PYTHONPATH, or None when its own settings suffice."""
        if self.name != "azure":
            return None
        folder = workdir / "ls-azure-override"
        folder.mkdir(exist_ok=True)
        (folder / "sitecustomize.py").write_text(AZURE_SITECUSTOMIZE.format(blob_endpoint=self.server.blob_endpoint))
        return folder

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object under FOLDER/, by its name below the folder."""
        prefix = f"{FOLDER}/"
        found: dict[str, bytes] = {}
        if self.name == "s3":
            client = self._s3()
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(prefix):]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        elif self.name == "gcs":
            base = f"{self.server.endpoint_url}/storage/v1/b/{bucket}/o"
            token = None
            while True:
                params = {"prefix": prefix, **({"pageToken": token} if token else {})}
                listing = requests.get(base, params=params, timeout=30)
                listing.raise_for_status()
                doc = listing.json()
                for item in doc.get("items", []):
                    body = requests.get(f"{base}/{quote(item['name'], safe='')}", params={"alt": "media"}, timeout=60)
                    body.raise_for_status()
                    found[item["name"][len(prefix):]] = body.content
                token = doc.get("nextPageToken")
                if not token:
                    break
        else:
            container = self._azure().get_container_client(bucket)
            for blob in container.list_blobs(name_starts_with=prefix):
                found[blob.name[len(prefix):]] = container.download_blob(blob.name).readall()
        return found

    # -- clients of the emulators, for the checks only -------------------------------------------
    def _s3(self):
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.server.endpoint_url, aws_access_key_id="testing",
            aws_secret_access_key="testing", region_name="us-east-1",
        )

    def _azure(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.server.connection_string)


# The smallest override that points Label Studio 1.23 at Azurite. Its settings read only
# STORAGE_AZURE_ACCOUNT_NAME/_KEY (core/settings/base.py), so django-storages' AzureStorage builds the public
# https://<account>.blob.core.windows.net, which no setting of Label Studio can change. This file is put on
# the PYTHONPATH of the Label Studio process of the Azure test only, where Python imports it at interpreter
# start. It changes one thing: when django-storages has no AZURE_CONNECTION_STRING (Label Studio never sets
# one), the default becomes a connection string with the SAME account name and key Label Studio read from
# the env.list, and Azurite's blob endpoint. Container, folder, key, URL expiry: all still Label Studio's own.
# (A wrapper settings module fails: Label Studio's settings read django settings while importing.)
AZURE_SITECUSTOMIZE = '''\
# Test-only, written by tests/e2e/clouds.py: django-storages' AzureStorage defaults to Azurite's endpoint.
import storages.backends.azure_storage as _azure_storage

_original_defaults = _azure_storage.AzureStorage.get_default_settings


def _defaults_with_azurite_endpoint(self):
    values = _original_defaults(self)
    if values.get("connection_string") is None and values.get("account_name") and values.get("account_key"):
        values["connection_string"] = (
            "DefaultEndpointsProtocol=http;AccountName=" + values["account_name"]
            + ";AccountKey=" + values["account_key"] + ";BlobEndpoint={blob_endpoint};"
        )
    return values


_azure_storage.AzureStorage.get_default_settings = _defaults_with_azurite_endpoint
'''
