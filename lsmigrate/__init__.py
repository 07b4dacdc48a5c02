"""lsmigrate: move a Label Studio deployment's files to S3, GCS or Azure, verified, then switch it over."""

__version__ = "0.1.0"
