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

A Secret's *name* is kept where dvdoctor itself puts one in a variable (NAMES_OF_SECRETS: the
Secret `schedule --copy` hands the copy Job), since only the Secret's contents are secret.

There is one pass so that a new output cannot pick a weaker one: `text` for a string, `data` for a
JSON-like structure (which also sees a flag and its value as two list items, as in a container's
`args`). Both are idempotent. Over-redaction (a YAML `key: app` line) is accepted: a secret that
leaves is not.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"

#: Words that make a name secret, anywhere in it, case-insensitive.
SECRET_WORDS = ("PASS", "PWD", "SECRET", "TOKEN", "KEY", "AUTH", "CREDENTIAL", "CERT")
_WORD = "|".join(w.lower() for w in SECRET_WORDS)
_SECRET_NAME = re.compile(rf"(?i)(?:{_WORD})")
#: Kubernetes fields whose names hold a secret word but whose values only name things
#: (`secretKeyRef: {name: db, key: password}`, `secret: {secretName: dv-tls}`).
_NAMING_FIELDS = frozenset({"name", "key", "secretName"})
#: Env vars dvdoctor sets whose value is a Secret's *name* (`schedule --copy`'s DVDOCTOR_COPY_SECRET):
#: a name is no secret, only the Secret's contents are, and a reader of the CronJob or the audit log
#: must see which Secret the copies use. Only these exact names, and only a value that has a
#: Kubernetes name's form (lowercase letters, digits, `-` and `.`, at most 253): any other value
#: (one put there by hand, with a password's characters) is dropped as under every other such name.
NAMES_OF_SECRETS = frozenset({"DVDOCTOR_COPY_SECRET"})
_OBJECT_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?")
#: A flag whose value is a secret, alone in its list item (`--admin-password`, then the value).
_SECRET_FLAG = re.compile(rf"(?i)--?[\w.-]*(?:{_WORD})[\w.-]*")
#: Authorization schemes kept in the output so the reader still sees what kind of credential it was.
_SCHEMES = r"(?:basic|bearer|token|digest|negotiate|ntlm)"

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
#: An opening quote (also JSON-escaped, `\"`) or an ODBC brace: the value then runs to its closing one.
_OPEN = r"(?P<q>\\?[\"']|(?<==)\{)?"
#: What ends a bare value: whitespace, `;` and `&` (connection strings, URL queries), a backslash
#: escaping a quote; `,` `"` `'` `}` `]` end it only when another delimiter or the end follows, so
#: `Sp,lit` and `pa'ss` are taken whole while a JSON text around the value is kept.
_BARE = re.compile(r"""(?:[^\s;&"',}\]\\]|\\(?!["'])|["',}\]](?![\s;&"',}\]\\]|$))+""")
_SIMPLE = (
    # Authorization / Proxy-Authorization headers: everything after the scheme, to the line's end
    re.compile(rf"(?i)(\b(?:proxy-)?authorization\b[\"']?[ \t]*[:=][ \t]*[\"']?(?:{_SCHEMES}[ \t]+)?)([^\r\n\"']+)"),
    re.compile(r"(?i)(\bbearer[ \t]+)([A-Za-z0-9._~+/=-]+)"),
)
#: scheme://user:password@host (jdbc:db2://, postgres://, https://, rest:https://); the user may be
#: empty; the password may hold `/`, `#`, `%`, `@`, `:` or a space: it runs to the line's last `@`
#: (within 256 characters), so a password with an `@` in it goes whole (a later `@` on the line
#: takes more with it: over-redaction is accepted)
_URL = re.compile(r"(?i)(\b[a-z][a-z0-9+.:-]*://(?P<user>[^/\s:@\"']*):)(?P<pw>[^\r\n\"']{1,256})(?=@)")
#: restic's scp-like sftp location, sftp:user:password@host:/path (no `//`): the same rule
_SFTP = re.compile(r"(?i)(\bsftp:(?P<user>[^/\s:@\"']*):)(?P<pw>[^\r\n\"']{1,256})(?=@)")
#: host:port/path@... is no password: a port after a host name
_PORT = re.compile(r"\d{1,5}(?:[/?#\s]|$)")
#: Each matches what comes before a secret value; the value itself is read by `_values`.
_BEFORE_VALUE = (
    # an env entry written out as text: JSON {"name": "DB_PASS", "value": "..."}, YAML `- name: DB_PASS` / `value: ...`
    re.compile(rf"(?i)[\"']?name[\"']?[ \t]*:[ \t]*[\"']?(?P<name>[\w.-]*(?:{_WORD})[\w.-]*)[\"']?[ \t]*[,\n][ \t]*"
               rf"[\"']?value[\"']?[ \t]*:[ \t]*{_OPEN}"),
    # a flag and its value as two items of a list written out: JSON ["--admin-password", "..."], YAML `- --x` / `- ...`
    re.compile(rf"(?i)(?P<q>\\?[\"'])--?[\w.-]*(?:{_WORD})[\w.-]*(?P=q)[ \t]*,[ \t]*(?P=q)"),
    re.compile(rf"(?i)-[ \t]+[\"']?--?[\w.-]*(?:{_WORD})[\w.-]*[\"']?[ \t]*\n[ \t]*-[ \t]+{_OPEN}"),
    # --secret-flag VALUE and --secret-flag=VALUE in one string (a value may start with `-`, or be quoted)
    re.compile(rf"(?i)(?<![\w-])--?[\w.-]*(?:{_WORD})[\w.-]*(?:=|[ \t]+){_OPEN}"),
    # key=value, key: value, "key": "value" (on one line: `secretKeyRef:` then a nested block is no value);
    # password= and pwd= inside connection strings are this too; `Authorization: Basic` keeps its scheme
    # (a JSON key's bare value, `"pwd": 5`, becomes "<redacted>": the text stays JSON)
    re.compile(rf"(?i)\b(?P<name>[\w.-]*(?:{_WORD})[\w.-]*)(?P<key_quote>[\"'])?[ \t]*[:=][ \t]*{_OPEN}(?:{_SCHEMES}[ \t]+)?"),
)
_SHAPES = (
    re.compile(r"()(sha256~[A-Za-z0-9_-]+)"),
    re.compile(r"()(\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"),
)


def secret_name(name: str) -> bool:
    """Whether a value called `name` (an env var, a mapping key) is a secret by its name."""
    return name not in _NAMING_FIELDS and _SECRET_NAME.search(name) is not None


def names_a_secret(name: str, value: object) -> bool:
    """Whether `value`, under `name`, is only a Secret's name, which is shown (see NAMES_OF_SECRETS)."""
    return name in NAMES_OF_SECRETS and isinstance(value, str) and _OBJECT_NAME.fullmatch(value) is not None


def _pem(match: re.Match) -> str:
    kind = match.group(1)
    return f"-----BEGIN {kind}-----{REDACTED}-----END {kind}-----"


def _quoted_end(value: str, start: int, quote: str) -> int:
    """Where a value opened by `quote` ends: its closing quote (an escaped one is inside it), else the line's end."""
    close = "}" if quote == "{" else quote
    line_end = value.find("\n", start)
    line_end = len(value) if line_end < 0 else line_end
    i = start
    while True:
        i = value.find(close, i, line_end)
        if i < 0:
            return line_end
        if len(close) == 1 and close != "}" and i > start and value[i - 1] == "\\":
            i += 1  # \" inside "...": part of the value
            continue
        if close == "}" and value.startswith("}}", i):
            i += 2  # ODBC's }} is a } inside {...}
            continue
        return i


#: What dvdoctor and the OS say about a file after naming it (`'/etc/passwd': not a folder`).
_FILE_MESSAGE = re.compile(r"(?:not a (?:folder|directory|regular file)|is a (?:folder|directory)|does not exist|"
                           r"\[Errno \d+\]|No such file or directory|Permission denied|Not a directory)")


def _file_path(value: str, match: re.Match, start: int) -> bool:
    """Whether the secret-sounding name ends a quoted absolute path followed by a message about the
    file (`--log-dir '/etc/passwd': not a folder`), which is no key and no secret. Nothing else is let
    through: a path followed by any other value (`/run/secrets/db-password: hunter2`) is a key, since
    over-redaction is accepted and a leak is not (break-it review of the narrower rule, 2026-12-03)."""
    name = match.start("name") if "name" in match.re.groupindex else -1
    quote = match.groupdict().get("key_quote")
    if name <= 0 or value[name - 1] != "/" or quote is None:
        return False
    opening = value.rfind(quote, 0, name)
    path = value[opening + 1:name] if opening >= 0 else ""
    return (path.startswith("/") and not any(c.isspace() or c in "\"'=:" for c in path)
            and _FILE_MESSAGE.match(value, start) is not None)


def _values(pattern: re.Pattern, value: str) -> str:
    """Every value that follows a match of `pattern` replaced, quoted or bare, its quotes kept."""
    out, pos = [], 0
    while (match := pattern.search(value, pos)) is not None:
        start = match.end()
        quote = match.group("q") or ""
        if quote:
            end = _quoted_end(value, start, quote)
        else:
            bare = _BARE.match(value, start)
            end = bare.end() if bare else start
        if end == start and not quote:
            out.append(value[pos:start])  # no value here (`secretKeyRef:` then a block)
        elif not quote and _file_path(value, match, start):
            out.append(value[pos:match.end()])  # `'/etc/passwd': not a folder`: a path's last part is no key
            end = match.end()
        elif names_a_secret(match.groupdict().get("name") or "", value[start:end]):
            out.append(value[pos:end])  # a Secret's name, not its contents
        else:
            bare_json = not quote and match.groupdict().get("key_quote")
            out.append(value[pos:start] + (f'"{REDACTED}"' if bare_json else REDACTED))
        pos = end
        if match.end() == match.start():
            pos += 1  # never: every pattern matches a name
    out.append(value[pos:])
    return "".join(out)


def _url(match: re.Match) -> str:
    if _PORT.match(match.group("pw")) and ("." in match.group("user") or match.group("user") == "localhost"):
        return match.group(0)  # host:port/path@v2: no user, no password
    return match.group(1) + REDACTED


def text(value: str) -> str:
    """The text with every secret-looking value replaced by <redacted>, the name kept for the reader."""
    value = _PEM.sub(_pem, value)
    for pattern in _SIMPLE:
        value = pattern.sub(lambda m: m.group(1) + REDACTED, value)
    value = _URL.sub(_url, value)
    value = _SFTP.sub(_url, value)
    for pattern in _BEFORE_VALUE:
        value = _values(pattern, value)
    for pattern in _SHAPES:
        value = pattern.sub(lambda m: m.group(1) + REDACTED, value)
    return value


def _secret_value(item: Any) -> Any:
    """A value under a secret name: a string or a number goes, and so does each one in a list (`passwords: [...]`);
    a true/false or nothing says no secret, and a mapping is read by name (`secretKeyRef: {name, key}`)."""
    if isinstance(item, bool) or item is None:
        return item
    if isinstance(item, (str, int, float)):
        return REDACTED
    if isinstance(item, list):
        return [_secret_value(v) for v in item]
    return data(item)


def data(value: Any) -> Any:
    """A copy of a JSON-like structure with every secret dropped: by name, by flag, by shape."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        out = [data(v) for v in value]
        for i in range(len(value) - 1):
            flag = value[i]
            if isinstance(flag, str) and _SECRET_FLAG.fullmatch(flag):
                # the next item is its value, whatever it looks like (`-DashLEAK`, `--x`): over-redaction is accepted
                out[i + 1] = _secret_value(value[i + 1])
        return out
    if isinstance(value, dict):
        out_dict = {}
        for key, item in value.items():
            if isinstance(key, str) and secret_name(key) and not names_a_secret(key, item):
                out_dict[key] = _secret_value(item)
            else:
                out_dict[key] = data(item)
        name = value.get("name")
        if (isinstance(name, str) and "value" in value and secret_name(name)
                and not names_a_secret(name, value["value"])):
            out_dict["value"] = _secret_value(value["value"])  # an env var: {name: DB_PASS, value: ...}
        return out_dict
    return value


def public_url(url: str) -> str:
    """A URL without any user:password part, safe to show (the server a kubeconfig names): the user
    goes too, where text() would keep it, because a server is shown by its host alone."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
