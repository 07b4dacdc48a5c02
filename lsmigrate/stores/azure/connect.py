"""An AzureStore for a target: adlfs's account client (adlfs and the Azure SDK are imported only here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import TargetError
from .settings import connection_string

if TYPE_CHECKING:
    from ..destination import Destination
    from .store import AzureStore


def open_store(target: Destination, *, transfers: int = 16, retries: int = 5) -> AzureStore:
    from .store import AzureStore

    return AzureStore(target, azure_filesystem(target), retries=retries)


def azure_filesystem(target: Destination):
    import adlfs

    connection = connection_string(target)
    if connection:
        try:
            return adlfs.AzureBlobFileSystem(connection_string=connection, skip_instance_cache=True)
        except ValueError:
            raise TargetError("the Azure connection string is malformed (AZURE_STORAGE_CONNECTION_STRING, or "
                              "STORAGE_AZURE_ACCOUNT_NAME/KEY): expected AccountName=...;AccountKey=...;...") from None
    if target.account_name:  # no key: Azure AD (DefaultAzureCredential), as on a managed identity
        return adlfs.AzureBlobFileSystem(account_name=target.account_name, anon=False, skip_instance_cache=True)
    raise TargetError("no Azure credentials: set STORAGE_AZURE_ACCOUNT_NAME and STORAGE_AZURE_ACCOUNT_KEY, "
                      "or AZURE_STORAGE_CONNECTION_STRING")
