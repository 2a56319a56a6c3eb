"""The one redaction pass: every text and structure dvdoctor writes out goes through here first.

Facts files (`collect -o`), support bundles, check reports in every format, saved job logs and the
audit log are read by people who must not get into the cluster or DV's database from them. A value
is dropped, and its name kept for the reader, when:

- it belongs to a name that means a secret: an env var, a mapping key or a command-line flag whose
  name holds PASS, PW, SECRET, TOKEN, KEY, AUTH, CRED, CERT or COOKIE anywhere, in any case
  (`DB_PASS`, `apiKey`, `CREDS`, `--admin-password VALUE`, `--admin-password=VALUE`), also as a YAML
  block (`password: |` and the lines under it), URL-encoded (`password%3D...`), or when the value
  comes first (`{"value": ..., "name": "DB_PASS"}`); everything under such a name goes, however
  deeply nested, but the names it holds (`secretKeyRef: {name, key}`);
- it is `password=` / `pwd=` inside a connection string (JDBC's `;password=...;`, a URL's `&pwd=`),
  or DB2's `connect to DB user U using PASSWORD`;
- it is the password of a URL's `user:password@`, also without a scheme (`admin:pw@db2.example:50000`),
  and of `curl -u user:password`;
- it follows the password flag of a program whose flag is one letter: `mysql -pPW`, `sshpass -p PW`,
  `ldapsearch -w PW` (in a command line, or in a container's `command` and `args`);
- it is an Authorization header's credentials, a Cookie header's, a bearer token, an OpenShift
  `sha256~` token, a JWT;
- it is a PEM block (private keys, certificates), from BEGIN to END.

What no pattern can know is not covered: a secret in free prose (`the password is ...`), or a name
spelt with look-alike characters.

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

from .names import is_subdomain

REDACTED = "<redacted>"

#: Words that make a name secret, anywhere in it, case-insensitive.
SECRET_WORDS = ("PASS", "PW", "SECRET", "TOKEN", "KEY", "AUTH", "CRED", "CERT", "COOKIE")
_WORD = "|".join(w.lower() for w in SECRET_WORDS)
_SECRET_NAME = re.compile(rf"(?i)(?:{_WORD})")
#: A name holding a secret word, as the patterns below read one: at most 64 characters on each side
#: of the word, and started only where a token starts (never inside one). Unbounded, a 40 KB run of
#: `-a` or `.d` on one line (an annotation anyone may set, a job's log) took minutes: every position
#: began a scan to the run's end.
_NAME = rf"(?<![\w.-])[\w.-]{{0,64}}(?:{_WORD})[\w.-]{{0,64}}"
#: Kubernetes fields whose names hold a secret word but whose values only name things
#: (`secretKeyRef: {name: db, key: password}`, `secret: {secretName: dv-tls}`).
_NAMING_FIELDS = frozenset({"name", "key", "secretName"})
#: Env vars dvdoctor sets whose value is a Secret's *name* (`schedule --copy`'s DVDOCTOR_COPY_SECRET):
#: a name is no secret, only the Secret's contents are, and a reader of the CronJob or the audit log
#: must see which Secret the copies use. Only these exact names, and only a value that has a
#: Kubernetes name's form (lowercase letters, digits, `-` and `.`, at most 253): any other value
#: (one put there by hand, with a password's characters) is dropped as under every other such name.
NAMES_OF_SECRETS = frozenset({"DVDOCTOR_COPY_SECRET"})
#: A flag whose value is a secret, alone in its list item (`--admin-password`, then the value).
_SECRET_FLAG = re.compile(rf"(?i)--?[\w.-]{{0,64}}(?:{_WORD})[\w.-]{{0,64}}")
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
    # Cookie / Set-Cookie headers: every cookie on the line (a session is a login)
    re.compile(r"(?i)(\b(?:set-)?cookie\b[\"']?[ \t]*[:=][ \t]*[\"']?)([^\r\n\"']+)"),
    # DB2's command line: connect to BIGSQL user admin using PASSWORD
    re.compile(r"(?i)(\buser[ \t]+\S{1,256}[ \t]+using[ \t]+[\"']?)([^\s\"';]+)"),
    # curl -u user:password, -su user:password, -uuser:password, --user user:password, --proxy-user
    re.compile(r"""((?:^|[\s"'\[,])(?:-[A-Za-z]{0,8}u[ \t]*|--user(?:[ \t]+|=)|--proxy-user(?:[ \t]+|=)|-U[ \t]*)"""
               r"""["']?[^\s:"'@/]{1,64}:)([^\s"']+)"""),
    # registry and cluster logins: oc login -p PW, docker login -p PW (also podman, buildah, skopeo, helm)
    re.compile(r"""(?i)((?<![\w-])(?:oc|docker|podman|buildah|skopeo|helm(?:[ \t]+registry)?)[ \t]+login\b"""
               r"""[^\n]{0,256}?[ \t]-p[ \t]*["']?)([^\s"']+)"""),
    # XML: <password>PW</password>, <dbPassword>PW</dbPassword>
    re.compile(rf"(?i)(<(?P<tag>{_NAME})>)([^<\n]{{1,1024}})(?=</(?P=tag)>)"),
    # a setting URL-encoded in a query or a form: password%3DVALUE
    re.compile(rf"(?i)({_NAME}%3d)([^&\s\"']+)"),
)
#: Programs whose password flag is one letter, and that letter: written `-pPW` or `-p PW`.
SHORT_PASSWORD_FLAGS = {"mysql": "p", "mysqldump": "p", "mysqladmin": "p", "mariadb": "p", "mariadb-dump": "p",
                        "sshpass": "p", "ldapsearch": "w", "ldapmodify": "w", "ldapadd": "w", "ldapdelete": "w",
                        "ldapwhoami": "w", "ldappasswd": "w", "ldapcompare": "w", "ldapmodrdn": "w"}
_SHORT = re.compile(r"(?<![\w/.-])(?:[\w./-]{0,256}/)?(?P<prog>" + "|".join(map(re.escape, SHORT_PASSWORD_FLAGS))
                    + r")\b(?P<rest>[^\n;|&]*)")
#: user:password@host without a scheme: the host a name with a dot or a port, never `@sha256:` (an image digest)
_BARE_URL = re.compile(r"(?<![\w/:.@%+-])([A-Za-z0-9._%+-]{1,64}:)([^\s:@/\"']{1,256})"
                       r"(?=@(?:\d{1,3}(?:\.\d{1,3}){3}(?![\d.])|"  # an IPv4 address
                       r"(?!sha\d+:)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5}|\.[A-Za-z]{2,})))")
#: A secret name's YAML block scalar: `password: |` (or `>-`, `|2`) and the lines indented under it.
_BLOCK = re.compile(rf"(?im)^(?P<indent>[ \t]*)(?:-[ \t]+)?[\"']?{_NAME}[\"']?[ \t]*:[ \t]*(?P<style>[|>][-+0-9]*)?[ \t]*$")
#: What a line under a bare `password:` is when it is no value of it: a key of a mapping, an item.
_NESTED = re.compile(r"""[ \t]*(?:-(?:[ \t]|$)|["']?[\w.-]{1,253}["']?[ \t]*:(?:[ \t]|$))""")
#: An env entry written value first, a few other keys of it between: JSON {"value": "...", "name":
#: "DB_PASS"} (also escaped, inside a JSON string), and YAML `- value: ...` then `  name: DB_PASS`.
#: The value cannot hold its quote, so no position is read twice.
_VALUE_FIRST = (
    re.compile(rf"""(?i)(?P<head>(?P<k>\\?")value(?P=k)[ \t]*:[ \t]*(?P=k))(?P<v>(?:[^"\\\n]|\\[^"\n]){{0,1024}})"""
               rf"""(?=(?P=k)(?:[ \t]*,[ \t]*(?P=k)\w{{1,32}}(?P=k)[ \t]*:[ \t]*[^,}}\n]{{0,200}}){{0,3}}"""
               rf"""[ \t]*,[ \t]*(?P=k)name(?P=k)[ \t]*:[ \t]*(?P=k)[\w.-]{{0,64}}(?:{_WORD}))"""),
    re.compile(rf"""(?im)^(?P<head>[ \t]*(?:-[ \t]+)?value[ \t]*:[ \t]*)(?P<v>[^\s][^\n]{{0,1023}})"""
               rf"""(?=\n(?:[ \t]+\w{{1,32}}[ \t]*:[^\n]{{0,200}}\n){{0,3}}[ \t]+name[ \t]*:[ \t]*["']?[\w.-]{{0,64}}(?:{_WORD}))"""),
)
#: scheme://user:password@host (jdbc:db2://, postgres://, https://, rest:https://); the user may be
#: empty; the password may hold `/`, `#`, `%`, `@`, `:` or a space: it runs to the line's last `@`
#: (within 256 characters), so a password with an `@` in it goes whole (a later `@` on the line
#: takes more with it: over-redaction is accepted)
_URL = re.compile(r"(?i)((?<![a-z0-9+.:-])[a-z][a-z0-9+.:-]{0,32}://(?P<user>[^/\s:@\"']*):)(?P<pw>[^\r\n\"']{1,256})(?=@)")
#: restic's scp-like sftp location, sftp:user:password@host:/path (no `//`): the same rule
_SFTP = re.compile(r"(?i)(\bsftp:(?P<user>[^/\s:@\"']*):)(?P<pw>[^\r\n\"']{1,256})(?=@)")
#: host:port/path@... is no password: a port after a host name
_PORT = re.compile(r"\d{1,5}(?:[/?#\s]|$)")
#: Each matches what comes before a secret value; the value itself is read by `_values`.
_BEFORE_VALUE = (
    # an env entry written out as text: JSON {"name": "DB_PASS", "value": "..."}, YAML `- name: DB_PASS` /
    # `value: ...`, with a few other keys of the same entry between them (`valueFrom:`)
    re.compile(rf"(?i)[\"']?name[\"']?[ \t]*:[ \t]*[\"']?(?P<name>[\w.-]{{0,64}}(?:{_WORD})[\w.-]{{0,64}})[\"']?[ \t]*[,\n][ \t]*"
               rf"(?:[\"']?[\w]+[\"']?[ \t]*:[^\n,]*[,\n][ \t]*){{0,3}}"
               rf"[\"']?value[\"']?[ \t]*:[ \t]*{_OPEN}"),
    # a flag and its value as two items of a list written out: JSON ["--admin-password", "..."], YAML `- --x` / `- ...`
    re.compile(rf"(?i)(?P<q>\\?[\"'])--?[\w.-]{{0,64}}(?:{_WORD})[\w.-]{{0,64}}(?P=q)[ \t]*,[ \t]*(?P=q)"),
    re.compile(rf"(?i)-[ \t]+[\"']?--?[\w.-]{{0,64}}(?:{_WORD})[\w.-]{{0,64}}[\"']?[ \t]*\n[ \t]*-[ \t]+{_OPEN}"),
    # --secret-flag VALUE and --secret-flag=VALUE in one string (a value may start with `-`, or be quoted)
    re.compile(rf"(?i)(?<![\w-])--?[\w.-]{{0,64}}(?:{_WORD})[\w.-]{{0,64}}(?:=|[ \t]+){_OPEN}"),
    # key=value, key: value, "key": "value" (on one line: `secretKeyRef:` then a nested block is no value);
    # password= and pwd= inside connection strings are this too; `Authorization: Basic` keeps its scheme
    # (a JSON key's bare value, `"pwd": 5`, becomes "<redacted>": the text stays JSON)
    re.compile(rf"(?i)(?P<name>{_NAME})(?P<key_quote>[\"'])?[ \t]*(?::|=>?)[ \t]*{_OPEN}(?:{_SCHEMES}[ \t]+)?"),
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
    return name in NAMES_OF_SECRETS and is_subdomain(value)


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


def _short_flags(match: re.Match) -> str:
    """A one-letter password flag's value after its program's name, on the same command line."""
    letter = SHORT_PASSWORD_FLAGS[match.group("prog")]
    # `-pPW`, `-p"PW"`, `-p PW`, and in a JSON list `"-p", "PW"`: the flag, what parts it from its
    # value, and the value's quotes are kept
    rest = re.sub(rf"""(?P<flag>(?:^|(?<=[\s"',\[]))-{letter})(?P<sep>"[ \t]*,[ \t]*"|'[ \t]*,[ \t]*'|[ \t]+(?=[^\s-])|)"""
                  r"""(?P<q>["']?)(?P<v>[^\s"',\]]+)""",
                  lambda m: m.group("flag") + m.group("sep") + m.group("q") + REDACTED, match.group("rest"))
    return match.group(0)[:match.start("rest") - match.start()] + rest


def _blocks(value: str) -> str:
    """The lines of a secret name's YAML block scalar (`password: |`), each replaced, the key kept."""
    if not _BLOCK.search(value):
        return value
    lines = value.split("\n")
    out, block_indent, plain = [], None, False
    for line in lines:
        if block_indent is not None:
            deeper = line.strip() == "" or (len(line) - len(line.lstrip(" \t"))) > block_indent
            # under a bare `password:`, a plain value continued below it, unless it is a nested mapping
            if deeper and plain and line.strip() and _NESTED.match(line):
                deeper = False
            if deeper:
                out.append(line[:len(line) - len(line.lstrip(" \t"))] + REDACTED if line.strip() else line)
                continue
            block_indent = None
        match = _BLOCK.match(line)
        if match:
            block_indent, plain = len(match.group("indent")), match.group("style") is None
        out.append(line)
    return "\n".join(out)


def text(value: str) -> str:
    """The text with every secret-looking value replaced by <redacted>, the name kept for the reader."""
    value = _PEM.sub(_pem, value)
    value = _blocks(value)
    for pattern in _SIMPLE:
        value = pattern.sub(lambda m: m.group(1) + REDACTED, value)
    value = _SHORT.sub(_short_flags, value)
    for pattern in _VALUE_FIRST:
        value = pattern.sub(lambda m: m.group("head") + REDACTED, value)
    value = _URL.sub(_url, value)
    value = _SFTP.sub(_url, value)
    value = _BARE_URL.sub(lambda m: m.group(1) + REDACTED, value)
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
    if isinstance(item, dict):  # {password: {value: ...}}: all of it, but the names it holds
        return {k: (data(v) if k in _NAMING_FIELDS and isinstance(v, str) else _secret_value(v)) for k, v in item.items()}
    return data(item)


def _argv_secrets(argv: list) -> set[int]:
    """The positions in a command line (a container's command, then its args) of the values of a
    one-letter password flag (SHORT_PASSWORD_FLAGS), once its program was named before it."""
    found: set[int] = set()
    letter = None
    for i, item in enumerate(argv):
        if not isinstance(item, str):
            continue
        prog = item.rsplit("/", 1)[-1]
        if prog in SHORT_PASSWORD_FLAGS:
            letter = SHORT_PASSWORD_FLAGS[prog]
        elif letter and item == f"-{letter}" and i + 1 < len(argv):
            found.add(i + 1)
        elif letter and item.startswith(f"-{letter}") and len(item) > 2:
            found.add(i)
    return found


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
        argv = [*(value.get("command") or [] if isinstance(value.get("command"), list) else []),
                *(value.get("args") or [] if isinstance(value.get("args"), list) else [])]
        if argv and (hits := _argv_secrets(argv)):  # a container: mysql, then -p, then its password
            command = len(value.get("command") or []) if isinstance(value.get("command"), list) else 0
            for i in hits:
                key, at = ("command", i) if i < command else ("args", i - command)
                flag = argv[i]
                out_dict[key][at] = (flag[:2] + REDACTED) if flag.startswith("-") and len(flag) > 2 else REDACTED
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
