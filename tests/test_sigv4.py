"""The lean PutObject's signer must produce botocore's exact Authorization for the same request."""

from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from lsmigrate.stores.s3.sigv4 import Signer, host_header

KEYS = ["upload/1/plain.jpg", "a b/c d.png", "ünïcødé/日本.txt", "odd/#hash?q=1%25+plus&x.jpg", "~tilde/'q';(p)!*"]
BASES = ["http://127.0.0.1:9000/bucket/", "https://bucket.s3.eu-west-1.amazonaws.com/", "http://[::1]:8080/b/",
         "https://s3.amazonaws.com:443/bucket/"]


def botocore_signed(url, headers, credentials, region, when, monkeypatch):
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: when.replace(tzinfo=None))
    request = AWSRequest(method="PUT", url=url, data=b"body", headers=dict(headers))
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(credentials, "s3", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("token", [None, "session/token+="])
def test_signature_matches_botocore(key, base, token, monkeypatch):
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    when = datetime(2026, 11, 25, 1, 2, 3, tzinfo=timezone.utc)
    headers = {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "Content-Type": "image/jpeg",
               "x-amz-meta-md5chksum": "1B2M2Y8AsgTpgAmY7PhCfg==", "Cache-Control": "max-age=60,  public "}
    url = base + quote(key, safe="/~")
    expected = botocore_signed(url, headers, credentials, "eu-west-1", when, monkeypatch)
    ours = Signer("eu-west-1").sign("PUT", host_header(url), urlsplit(url).path, headers,
                                    credentials.get_frozen_credentials(), now=when)
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Date"] == expected["X-Amz-Date"]
    assert ours["X-Amz-Content-SHA256"] == expected["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert ours.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token") == token


def test_signing_key_follows_the_day_and_the_secret():
    signer = Signer("us-east-1")
    first = signer._signing_key("secret", "20261125")
    assert signer._signing_key("secret", "20261125") == first
    assert signer._signing_key("secret", "20261126") != first
    assert signer._signing_key("other", "20261126") != first
