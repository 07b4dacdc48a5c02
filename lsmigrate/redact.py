"""One place that masks secrets, in what lsmigrate prints and in every library's debug log.

Two nets. The values this run was given (keys, tokens, and the keys nested in connection strings, object
parameters and service-account JSON), in the forms they take on the wire. And patterns for credential-shaped
text whose value nobody told us (a signed header, a connection string in a comment, a PEM block), because a
third-party debug log prints things lsmigrate never saw.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

from .labelstudio import SECRET_VARIABLES

MASK = "***"
MIN_LENGTH = 8  # a shorter remembered value ("testing", a region) would mask ordinary words everywhere

# Variables and chart keys whose whole value is secret: masked to the end of the line, quotes and all (the
# value may hold spaces or `;`). A YAML block scalar's value starts on the next line: that goes by value.
SECRET_NAMES = SECRET_VARIABLES | {"AWS_SECURITY_TOKEN", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
                                   "AZURE_CLIENT_SECRET"}
CHART_KEYS = {"accessKey", "secretKey", "storageAccountKey", "applicationCredentialsJSON"}
# Headers, parameters and fields whose value alone is secret, wherever they stand: a canonical request
# (`name:value`), a header dict (`'name': b'value'`), a query string, a connection string, JSON.
FIELDS = ("x-amz-security-token", "x-amz-server-side-encryption-customer-key",
          "x-amz-copy-source-server-side-encryption-customer-key", "X-Amz-Signature", "SSECustomerKey",
          "CopySourceSSECustomerKey", "AccountKey", "SharedAccessSignature", "sig", "private_key",
          "private_key_id", "client_secret", "refresh_token", "access_token", "id_token", "aws_secret_access_key",
          "aws_session_token", "SecretAccessKey", "SessionToken")
_JSON_SECRETS = {"SSECustomerKey", "CopySourceSSECustomerKey", "private_key", "private_key_id", "client_secret",
                 "refresh_token"}


def _named(names: Iterable[str], unquoted: str, flags: int = 0) -> re.Pattern:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    # A quoted value runs to its closing quote (escapes included); the closing quote itself stays.
    return re.compile(rf"""(?<![\w-])(?P<name>{alternatives})(?P<sep>["']?[ \t]*[:=][ \t]*)(?P<b>(?-i:b)(?=["']))?(?P<q>["'])?"""
                      rf"""(?(q)(?:\\.|(?!(?P=q))[^\\\n])*|{unquoted})""", flags)


_WHOLE_LINE_NAMES = "|".join(sorted(SECRET_NAMES | CHART_KEYS, key=len, reverse=True))
_WHOLE_LINE = re.compile(rf"""(?<![\w-])(?P<name>(?:LABEL_STUDIO_|HEARTEX_)?(?:{_WHOLE_LINE_NAMES}))"""
                         r"""(?P<sep>["']?[ \t]*[:=][ \t]*)\S[^\n]*""")
_FIELD = _named(FIELDS, r"""[^\s"',;&<>]+""", re.IGNORECASE)
_AUTHORIZATION = _named(("Authorization", "Proxy-Authorization"), r"[^\n]+", re.IGNORECASE)
_BEARER = re.compile(r"(?<![\w-])(Bearer[ \t]+)[\w.~+/=-]{8,}", re.IGNORECASE)
_PEM = re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:[A-Za-z0-9+/=\s]|\\[nr])*(?:-----END[A-Z ]*PRIVATE KEY-----)?")

_known: set[str] = set()
_known_forms: list[str] = []


def _forms(value: str, minimum: int) -> set[str]:
    """A value as it shows up: as it is, URL- and form-encoded, JSON-escaped, base64'd (botocore sends an
    SSE-C key as base64 of the key it was given)."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1], base64.b64encode(value.encode()).decode()}
    return {form for form in forms if len(form) >= minimum}


def remember(*values: object) -> None:
    """Mask these values wherever they appear from now on (in this process)."""
    fresh = {v for v in values if isinstance(v, str) and len(v.strip()) >= MIN_LENGTH} - _known
    if fresh:
        _known.update(fresh)
        _known_forms[:] = sorted({f for v in _known for f in _forms(v, MIN_LENGTH)}, key=len, reverse=True)


def nested(text: str) -> list[str]:
    """Secrets inside a value: a connection string's AccountKey and SAS, a SAS signature, the keys of a JSON
    object (SSE-C keys in object parameters, a service account's private key)."""
    found = re.findall(r"(?i)(?<![\w-])(?:AccountKey|SharedAccessSignature)=([^;\s]+)", text)
    for sig in re.findall(r"(?i)(?<![\w-])sig=([^&;\s\"']+)", text):
        found += [sig, unquote(sig)]
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, Mapping):
            for key in _JSON_SECRETS & document.keys():
                value = document[key]
                if isinstance(value, str):
                    found.append(value)
                    # One line of a PEM key shows on its own wherever the block is printed line by line.
                    found += [line for line in value.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    return found


def is_secret_name(name: str) -> bool:
    bare = name.rsplit(".", 1)[-1]
    return (any(bare.endswith(v) for v in SECRET_NAMES) or bare in CHART_KEYS
            or bare.lower() in {f.lower() for f in FIELDS})


def secrets_in(name: str, value: object) -> list[str]:
    """The secret values one setting holds: all of it when its name says so, and what is nested in it;
    GOOGLE_APPLICATION_CREDENTIALS names a file, whose keys are read."""
    if value in (None, ""):
        return []
    text = json.dumps(dict(value)) if isinstance(value, Mapping) else str(value)
    found = [text] if is_secret_name(name) else []
    found += nested(text)
    if name.endswith("GOOGLE_APPLICATION_CREDENTIALS") and not text.lstrip().startswith("{"):
        try:
            path = Path(text)
            if path.is_file() and path.stat().st_size < 1_000_000:
                found += nested(path.read_text(errors="replace"))
        except OSError:
            pass
    return found


def remember_settings(settings: Mapping[str, object]) -> None:
    for name, value in settings.items():
        remember(*secrets_in(name, value))


def remember_target(target) -> None:
    remember(target.secret_key, target.account_key, target.connection_string,
             *secrets_in("connection string", target.connection_string),
             *secrets_in("STORAGE_AWS_OBJECT_PARAMETERS", target.object_parameters),
             *secrets_in("GOOGLE_APPLICATION_CREDENTIALS", target.credentials_file))


def _mask_named(match: re.Match) -> str:
    return match["name"] + match["sep"] + (match["b"] or "") + (match["q"] or "") + MASK


def scrub(text: str, also: Iterable[str] = ()) -> str:
    """`text` with every remembered value (and `also`) masked, then every credential-shaped value."""
    extra = sorted({f for v in also if v for f in _forms(str(v), 4)}, key=len, reverse=True)
    for form in (*extra, *_known_forms):
        if form in text:
            text = text.replace(form, MASK)
    text = _WHOLE_LINE.sub(lambda m: m["name"] + m["sep"] + MASK, text)
    text = _AUTHORIZATION.sub(_mask_named, text)
    text = _FIELD.sub(_mask_named, text)
    text = _BEARER.sub(lambda m: m[1] + MASK, text)
    return _PEM.sub(MASK, text)


class _Scrubbing(logging.Formatter):
    """The handler's own format, then scrubbed as a whole: the message with its args, any traceback and stack."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self._inner.format(record))


def _excepthook(kind, error, tb) -> None:
    sys.stderr.write(scrub("".join(traceback.format_exception(kind, error, tb))))


def install(environ: Mapping[str, str]) -> None:
    """Scrub every record the root logger's handlers write (botocore, urllib3, aiohttp, azure, google: they all
    propagate there), and the traceback -vv lets through; remember the secrets `environ` holds."""
    remember_settings(environ)
    for handler in logging.getLogger().handlers:
        if not isinstance(handler.formatter, _Scrubbing):
            handler.setFormatter(_Scrubbing(handler.formatter or logging.Formatter()))
    sys.excepthook = _excepthook
