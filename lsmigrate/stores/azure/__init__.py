"""Azure Blob Storage (and Azurite): the record in record.py."""
