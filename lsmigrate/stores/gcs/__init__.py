"""Google Cloud Storage (and emulators such as fake-gcs-server): the record in record.py."""
