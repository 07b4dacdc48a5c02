"""Azure in Label Studio's words: its STORAGE_AZURE_* variables, the chart's `config.azure` section, and
how an account is reached (connection string, or name and key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..destination import Destination
    from ..provider import Env


def read_settings(env: Env, settings: Mapping[str, str]) -> dict[str, Any]:
    return {"account_name": env("STORAGE_AZURE_ACCOUNT_NAME") or settings.get("AZURE_STORAGE_ACCOUNT_NAME"),
            "account_key": env("STORAGE_AZURE_ACCOUNT_KEY") or settings.get("AZURE_STORAGE_ACCOUNT_KEY"),
            "connection_string": settings.get("AZURE_STORAGE_CONNECTION_STRING") or None}


def read_helm(section: Mapping[str, Any], secret) -> dict[str, Any]:
    return {"account_name": secret("storageAccountName"), "account_key": secret("storageAccountKey")}


def write_settings(target: Destination) -> dict[str, str | None]:
    return {"STORAGE_AZURE_CONTAINER_NAME": target.bucket, "STORAGE_AZURE_FOLDER": target.folder,
            "STORAGE_AZURE_ACCOUNT_NAME": target.account_name}


def write_helm(target: Destination) -> dict[str, object]:
    return {"containerName": target.bucket, "folder": target.folder}


def connection_string(target: Destination) -> str | None:
    """The account's connection string: given whole, or built from name and key (and a blob endpoint)."""
    if target.connection_string and not target.account_key:
        return target.connection_string
    if target.account_name and target.account_key:
        parts = [f"AccountName={target.account_name}", f"AccountKey={target.account_key}"]
        # Label Studio's settings name the account and key, never its endpoint: a connection string in the
        # environment for the same account says where that account is reached (Azurite, a sovereign cloud).
        given = _connection_fields(target.connection_string)
        endpoint = target.endpoint_url or (given.get("BlobEndpoint") if given.get("AccountName") == target.account_name
                                           else None)
        if endpoint:
            scheme = endpoint.split("://", 1)[0]
            parts = [f"DefaultEndpointsProtocol={scheme}", *parts, f"BlobEndpoint={endpoint}"]
        else:
            parts = ["DefaultEndpointsProtocol=https", *parts, "EndpointSuffix=core.windows.net"]
        return ";".join(parts) + ";"
    return target.connection_string


def _connection_fields(text: str | None) -> dict[str, str]:
    """`Name=value;...` of an Azure connection string (a value may itself hold '=')."""
    fields = (part.partition("=") for part in (text or "").split(";") if "=" in part)
    return {name.strip(): value.strip() for name, _, value in fields}


def endpoint_of(target: Destination, env: Mapping[str, str]) -> str | None:
    """The blob endpoint, as the store ends up using it: a connection string decides when there is one."""
    connection = connection_string(target)
    if not connection:
        return target.endpoint_url or (f"https://{target.account_name}.blob.core.windows.net"
                                       if target.account_name else None)
    fields = {}
    for part in connection.split(";"):
        name, _, value = part.partition("=")
        fields[name.strip().lower()] = value.strip()
    if fields.get("blobendpoint"):
        return fields["blobendpoint"]
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return "http://127.0.0.1:10000/devstoreaccount1"
    if fields.get("accountname"):
        return (f"{fields.get('defaultendpointsprotocol') or 'https'}://{fields['accountname']}.blob."
                f"{fields.get('endpointsuffix') or 'core.windows.net'}")
    return None
