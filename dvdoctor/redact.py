"""The one redaction pass: every text and structure dvdoctor writes out goes through here first.

Facts files (`collect -o`), support bundles, check reports in every format, saved job logs and the
audit log are read by people who must not get into the cluster or DV's database from them. A value
is dropped, and its name kept for the reader, when:

- it belongs to a name that means a secret: an env var, a mapping key or a command-line flag whose
  name holds PASS, PWD, SECRET, TOKEN, KEY, AUTH, CREDENTIAL or CERT anywhere, in any case
  (`DB_PASS`, `apiKey`, `--admin-password VALUE`, `--admin-password=VALUE`);
- it is `password=` / `pwd=` inside a connection string (JDBC's `;password=...;`, a URL's `&pwd=`);
- it is the password of a URL's `user:password@`;
- it is an Authorization header's credentials, a bearer token, an OpenShift `sha256~` token, a JWT;
- it is a PEM block (private keys, certificates), from BEGIN to END.

There is one pass so that a new output cannot pick a weaker one: `text` for a string, `data` for a
JSON-like structure (which also sees a flag and its value as two list items, as in a container's
`args`). Both are idempotent. Over-redaction (a YAML `key: app` line) is accepted: a secret that
leaves is not.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

#: Words that make a name secret, anywhere in it, case-insensitive.
SECRET_WORDS = ("PASS", "PWD", "SECRET", "TOKEN", "KEY", "AUTH", "CREDENTIAL", "CERT")
_WORD = "|".join(w.lower() for w in SECRET_WORDS)
_SECRET_NAME = re.compile(rf"(?i)(?:{_WORD})")
#: Kubernetes fields whose names hold a secret word but whose values only name things
#: (`secretKeyRef: {name: db, key: password}`, `secret: {secretName: dv-tls}`).
_NAMING_FIELDS = frozenset({"name", "key", "secretName"})
#: A flag whose value is a secret, alone in its list item (`--admin-password`, then the value).
_SECRET_FLAG = re.compile(rf"(?i)--?[\w.-]*(?:{_WORD})[\w.-]*")
#: Authorization schemes kept in the output so the reader still sees what kind of credential it was.
_SCHEMES = r"(?:basic|bearer|token|digest|negotiate|ntlm)"

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
_PATTERNS = (
    # Authorization / Proxy-Authorization headers: everything after the scheme, to the line's end
    re.compile(rf"(?i)(\b(?:proxy-)?authorization\b[\"']?[ \t]*[:=][ \t]*[\"']?(?:{_SCHEMES}[ \t]+)?)([^\r\n\"']+)"),
    re.compile(r"(?i)(\bbearer[ \t]+)([A-Za-z0-9._~+/=-]+)"),
    # scheme://user:password@host (jdbc:db2://, postgres://, https://)
    re.compile(r"(?i)(\b[a-z][a-z0-9+.:-]*://[^/\s:@\"']+:)([^@\s/\"']+)(?=@)"),
    # an env entry written out as text: JSON {"name": "DB_PASS", "value": "..."}, YAML `- name: DB_PASS` / `value: ...`
    re.compile(rf"(?i)([\"']?name[\"']?[ \t]*:[ \t]*[\"']?[\w.-]*(?:{_WORD})[\w.-]*[\"']?[ \t]*[,\n][ \t]*"
               rf"[\"']?value[\"']?[ \t]*:[ \t]*[\"']?)([^\s\"',;&]+)"),
    # a flag and its value as two items of a list written out: JSON ["--admin-password", "..."], YAML `- --x` / `- ...`
    re.compile(rf"(?i)([\"']--?[\w.-]*(?:{_WORD})[\w.-]*[\"'][ \t]*,[ \t]*[\"'])((?!-)[^\"']+)"),
    re.compile(rf"(?i)(-[ \t]+[\"']?--?[\w.-]*(?:{_WORD})[\w.-]*[\"']?[ \t]*\n[ \t]*-[ \t]+[\"']?)((?!-)[^\s\"']+)"),
    # --secret-flag VALUE and --secret-flag=VALUE in one string
    re.compile(rf"(?i)((?<![\w-])--?[\w.-]*(?:{_WORD})[\w.-]*(?:=|[ \t]+))((?!-)[^\s\"',;&]+)"),
    # key=value, key: value, "key": "value" (on one line: `secretKeyRef:` then a nested block is no value);
    # password= and pwd= inside connection strings are this too
    re.compile(rf"(?i)(\b[\w.-]*(?:{_WORD})[\w.-]*[\"']?[ \t]*[:=][ \t]*[\"']?)(?!{_SCHEMES}[ \t])([^\s\"',;&]+)"),
    re.compile(r"()(sha256~[A-Za-z0-9_-]+)"),
    re.compile(r"()(\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"),
)


def secret_name(name: str) -> bool:
    """Whether a value called `name` (an env var, a mapping key) is a secret by its name."""
    return name not in _NAMING_FIELDS and _SECRET_NAME.search(name) is not None


def _pem(match: re.Match) -> str:
    kind = match.group(1)
    return f"-----BEGIN {kind}-----{REDACTED}-----END {kind}-----"


def text(value: str) -> str:
    """The text with every secret-looking value replaced by <redacted>, the name kept for the reader."""
    value = _PEM.sub(_pem, value)
    for pattern in _PATTERNS:
        value = pattern.sub(lambda m: m.group(1) + REDACTED, value)
    return value


def data(value: Any) -> Any:
    """A copy of a JSON-like structure with every secret dropped: by name, by flag, by shape."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        out = [data(v) for v in value]
        for i in range(len(value) - 1):
            flag, following = value[i], value[i + 1]
            if (isinstance(flag, str) and isinstance(following, str) and _SECRET_FLAG.fullmatch(flag)
                    and not following.startswith("-")):
                out[i + 1] = REDACTED
        return out
    if isinstance(value, dict):
        out_dict = {}
        for key, item in value.items():
            if isinstance(item, str) and isinstance(key, str) and secret_name(key):
                out_dict[key] = REDACTED
            else:
                out_dict[key] = data(item)
        name = value.get("name")
        if isinstance(name, str) and isinstance(value.get("value"), str) and secret_name(name):
            out_dict["value"] = REDACTED  # an env var: {name: DB_PASS, value: ...}
        return out_dict
    return value
