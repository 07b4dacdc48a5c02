"""Amazon S3 and S3-compatible servers (MinIO, Ceph, R2 ...): the record in record.py."""
