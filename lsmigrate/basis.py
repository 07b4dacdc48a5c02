"""On what a "verified" rests: one word per file, in every report, the journal and the JSON log.

A file is verified only by something the server computed or checked. A checksum that an uploader wrote
and the server merely stored (rclone's and our `md5chksum` metadata, the Content-MD5 given to an Azure
block-list commit) is `client-md5`: it is reported, never counted as verified.
"""

from __future__ import annotations

ETAG = "etag"  # S3: the ETag the server computed is the MD5 of the bytes
MULTIPART_ETAG = "multipart-etag"  # S3: the ETag is the MD5 of the part MD5s the server computed, for our parts
SERVER_MD5 = "server-md5"  # the MD5 the server computed over the stored bytes (GCS md5Hash, Azure Put Blob)
CONTENT_MD5 = "content-md5"  # the server checked the Content-MD5 of every request that carried the bytes
# (S3 under SSE-KMS or SSE-C, Azure blocks); seen only while uploading, so later runs recall it from the journal
SERVER_COPY = "server-copy"  # the provider copied its own object (CopyObject); the source was verified before
DOWNLOAD = "download"  # read back and hashed here
UNRECORDED = "unrecorded"  # verified by a journal that predates recorded bases

CLIENT_MD5 = "client-md5"  # only an uploader's own checksum matches: not a verification
NONE = "none"  # the server holds nothing to compare with

VERIFYING = frozenset({ETAG, MULTIPART_ETAG, SERVER_MD5, CONTENT_MD5, SERVER_COPY, DOWNLOAD, UNRECORDED})

# What a file was found wanting by (never a verification): the listing (it is absent), its size, or the
# object's own answer to a HEAD (gone since it was listed).
LISTING = "listing"
SIZE = "size"
MISSING = "missing"
