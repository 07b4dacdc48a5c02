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
_FIELD_NAMES = {f.lower() for f in FIELDS}

# Any other variable or key (env.list, compose `environment:`, Helm values at any depth) whose name says it
# holds a credential. A name is read as words, whatever its case and separators (`SECRET_KEY`, `secretKey`,
# `x-api-key`): it is credential-like when its words, run together, hold one of these...
_CREDENTIAL_PARTS = ("password", "passwd", "passphrase", "secret", "token", "credential", "privatekey", "accesskey",
                     "accountkey", "apikey")
# ...or end in `key` / `pwd` after another word (`SECRET_KEY`, `ML_KEY`, `DB_PWD`; not `key`, the shell's `PWD`);
_KEY_WORDS = {"key", "pwd"}
# unless its last word says the value is about the credential, not the credential itself (a file or a path to
# it, the name of a Kubernetes Secret, a checksum, a switch, a length, where to fetch a token)...
_NOT_THE_VALUE = {"file", "files", "path", "dir", "directory", "name", "names", "ref", "md", "algorithm", "enabled",
                  "disabled", "required", "type", "length", "len", "timeout", "expiry", "ttl", "lifetime", "url", "uri",
                  "endpoint", "host", "port", "header", "prefix", "policy", "validators", "backend", "class", "format",
                  "mode", "version", "count", "limit", "interval"}
# ...or another word makes it a reference, a public half or a switch (`accessKeyExistingSecret`, `PUBLIC_KEY`,
# `USE_TOKEN_AUTH`, `MAX_TOKENS`).
_QUALIFIERS = {"existing", "public", "use", "enable", "disable", "allow", "max", "min"}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Values too plain to mask by value wherever they appear (a switch, a number): the line still masks them by name.
_PLAIN = re.compile(r"(?i)true|false|yes|no|on|off|null|none|~|\d{1,7}")


def _named(names: Iterable[str], unquoted: str, flags: int = 0) -> re.Pattern:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    # A quoted value runs to its closing quote (escapes included); the closing quote itself stays.
    return re.compile(rf"""(?<![\w-])(?P<name>{alternatives})(?P<sep>["']?[ \t]*[:=][ \t]*)(?P<b>(?-i:b)(?=["']))?(?P<q>["'])?"""
                      rf"""(?(q)(?:\\.|(?!(?P=q))[^\\\n])*|{unquoted})""", flags)


_WHOLE_LINE_NAMES = "|".join(sorted(SECRET_NAMES | CHART_KEYS, key=len, reverse=True))
_WHOLE_LINE = re.compile(rf"""(?<![\w-])(?P<name>(?:LABEL_STUDIO_|HEARTEX_)?(?:{_WHOLE_LINE_NAMES}))"""
                         r"""(?P<sep>["']?[ \t]*[:=][ \t]*)\S[^\n]*""")
# A line of a deployment file, a diff line (`+`, `-`, ` `) or a comment of one: the name, then its value.
_NAME_LINE = re.compile(r"""^(?P<lead>[-+ ]?[ \t]*(?:\#+[ \t]*)?(?:-[ \t]+)?(?:export[ \t]+)?)(?P<oq>["']?)"""
                        r"""(?P<name>[A-Za-z_][\w.-]*)(?P<sep>["']?[ \t]*[:=][ \t]*)(?P<value>\S[^\r\n]*)""", re.MULTILINE)
_BLOCK_SCALAR = re.compile(r"[|>][-+1-9]*[ \t]*(?:#[^\r\n]*)?")  # the value starts on the next line: masked by value
# `scheme://user:password@host`: the user stays, the password goes (it may hold `@` and `:`, never `/`).
_URL_PASSWORD = re.compile(r"""(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:'"<>]*:)[^\s/?#'"<>]+?"""
                           r"""(?=@[^\s/?#@'"<>]*(?:[/?#\s'"<>]|$))""")
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
    """A variable or key (or a flattened `global.pgConfig.password`) whose value is a credential."""
    bare = name.rsplit(".", 1)[-1]
    return (any(bare.endswith(v) for v in SECRET_NAMES) or bare in CHART_KEYS or bare.lower() in _FIELD_NAMES
            or _credential_like(bare))


def _credential_like(name: str) -> bool:
    words = [w.lower() for w in _WORD.findall(name) if not w.isdigit()]
    if not words or words[-1] in _NOT_THE_VALUE or _QUALIFIERS.intersection(words):
        return False
    if words[-2:] == ["application", "credentials"]:  # GOOGLE_APPLICATION_CREDENTIALS names a file
        return False
    joined = "".join(words).replace("tokeniz", "")  # TOKENIZERS_PARALLELISM
    return any(part in joined for part in _CREDENTIAL_PARTS) or (len(words) > 1 and words[-1] in _KEY_WORDS)


def secrets_in(name: str, value: object) -> list[str]:
    """The secret values one setting holds: all of it when its name says so, and what is nested in it;
    GOOGLE_APPLICATION_CREDENTIALS names a file, whose keys are read."""
    if value in (None, ""):
        return []
    text = json.dumps(dict(value)) if isinstance(value, Mapping) else str(value)
    found = [text] if is_secret_name(name) and not _PLAIN.fullmatch(text.strip()) else []
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
    text = _NAME_LINE.sub(_mask_line, text)
    text = _URL_PASSWORD.sub(lambda m: m["pre"] + MASK, text)
    text = _BEARER.sub(lambda m: m[1] + MASK, text)
    return _PEM.sub(MASK, text)


def _closing(value: str, quote: str) -> int:
    """Where the quoted `value` (starting with `quote`) closes, backslash escapes skipped; -1 if it does not."""
    at = 1
    while at < len(value):
        if value[at] == "\\":
            at += 2
        elif value[at] == quote:
            return at
        else:
            at += 1
    return -1


def _mask_line(match: re.Match) -> str:
    """A credential-like name's value masked; the diff prefix, indentation, name and separator kept, and the
    quotes around the value (or around a whole compose list entry, `- "SECRET_KEY=x"`)."""
    value = match["value"]
    if not is_secret_name(match["name"]) or _BLOCK_SCALAR.fullmatch(value):
        return match[0]
    head = match["lead"] + match["oq"] + match["name"] + match["sep"]
    if value[0] in "\"'":
        end = _closing(value, value[0])
        if end == 1:
            return match[0]  # an empty value: nothing to hide
        if end > 0 and not value[end + 1:].strip(" \t,"):
            return head + value[0] + MASK + value[end:]
    if match["oq"] and len(value) > 1 and value.endswith(match["oq"]):
        return head + MASK + match["oq"]
    return head + MASK


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
