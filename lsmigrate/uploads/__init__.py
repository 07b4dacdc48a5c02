"""One upload interface for every provider; only these modules know s3fs/gcsfs/adlfs internals."""
