"""The site's settings file, `dvdoctor.yaml`: DV's names, thresholds, BAR defaults, suppressions.

Sites rename objects, tune limits and accept some findings (a PV whose reclaim policy is Delete but
that the storage team snapshots); they say so once, in a file kept with their runbooks, instead of
repeating flags. The file is validated against the published schema (schemas/config.schema.json)
and every error names the file, the line and the field, because a typo in a file that silences
findings must never pass quietly. Unknown check ids in suppressions are errors for the same reason.

It is read with the command line, as the user's other input: knowing the check ids means importing
the checks' registry, which no module below the checks may do.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..core.bounded import TooBig, check_depth, check_size, non_finite, read_text, yaml_load
from ..core.errors import UsageError
from ..core.names import DEFAULT, CopySettings, DvNames, Settings, Thresholds
from ..verdicts.registry import Suppression

FILE_NAME = "dvdoctor.yaml"
#: A site's settings are a few KiB; nothing near these bounds is a config file.
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 16
MAX_NODES = 100_000
#: Validators whose failure is about the value's form: the message says what is allowed instead.
_FORM = ("type", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
         "minItems", "uniqueItems", "enum")


@dataclass(frozen=True)
class SiteSettings(Settings):
    """Settings plus what only a config file gives: accepted findings, and the file's settings as
    data (validated), for a run elsewhere that must be given the same (`schedule`'s CronJob)."""

    suppressions: tuple[Suppression, ...] = ()
    document: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


def schema() -> dict:
    return json.loads(resources.files("dvdoctor").joinpath("schemas", "config.schema.json").read_text())


def find(explicit: str | None, cwd: Path | None = None) -> Path | None:
    """The config file to use: the one given (which must exist), else ./dvdoctor.yaml if present."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError(f"--config {explicit}: no such file")
        return path
    local = cwd / FILE_NAME if cwd else Path(FILE_NAME)  # relative, so messages name it as the user sees it
    return local if local.is_file() else None


def load(explicit: str | None = None, cwd: Path | None = None) -> Settings:
    """The settings for this run: the runbook's defaults, changed by the config file if there is one."""
    path = find(explicit, cwd)
    if path is None:
        return DEFAULT
    try:
        text = read_text(path, MAX_BYTES)
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or larger than MAX_BYTES
        raise UsageError(f"{path}: cannot read the config file: {exc}") from None
    return parse(text, str(path), base=Path(os.path.abspath(path)).parent)  # a link's own folder, not its target's


def parse(text: str, where: str = FILE_NAME, base: Path | None = None) -> SiteSettings:
    """Validate a config file's text and turn it into settings; any error is one UsageError line.

    `base`, the config file's folder, is what a relative local path in it (copies.password_file, a
    copies.repository that is a plain path) is relative to: the file, not where dvdoctor runs."""
    try:
        check_size(text, MAX_BYTES)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml_load(text)
        check_depth(data, MAX_DEPTH, max_nodes=MAX_NODES)
    except (RecursionError, TooBig) as exc:
        raise UsageError(f"{where}: not a dvdoctor config file: "
                         f"{exc if isinstance(exc, TooBig) else f'nested deeper than {MAX_DEPTH} levels'}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{where}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (NUL, other controls): its line, not its offset
        line = text.count("\n", 0, exc.position) + 1
        raise UsageError(f"{where}:{line}: not valid YAML: character #x{exc.character:04x} is not allowed "
                         "(control characters other than tab and line breaks)") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return SiteSettings()
    _no_duplicate_keys(root, where)
    _finite(data, root, where)
    _validate(data, root, where)
    return _settings(data, root, where, base)


def _no_duplicate_keys(node: yaml.Node, where: str) -> None:
    """YAML keeps the last of two equal keys without a word; here the second is an error."""
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key, value in node.value:
            if key.value in seen:
                raise UsageError(f"{where}:{key.start_mark.line + 1}: {key.value}: given twice in the same mapping")
            seen.add(key.value)
            _no_duplicate_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(item, where)


def _finite(data: Any, root: yaml.Node, where: str) -> None:
    """YAML's .nan and .inf are floats that pass every minimum and maximum: refused by name here. So
    is a whole number beyond 64 bits (YAML reads one from hex, octal, binary or base-60 digits too):
    none is a setting, and past 4300 digits Python cannot even print one in a message."""
    path = non_finite(data)
    if path is None:
        return
    value = data
    for step in path:
        value = value[step]
    at = f"{where}:{_line(root, path)}: {_field(path)}"
    if isinstance(value, float):
        raise UsageError(f"{at}: {_node(root, path)[0].value!r} is not allowed; "
                         "give a finite number (NaN and infinities mean nothing as a limit)")
    bits = max(abs(k).bit_length() for k in value if isinstance(k, int)) if isinstance(value, dict) else abs(value).bit_length()
    raise UsageError(f"{at}: a {'key that is a ' if isinstance(value, dict) else ''}whole number of {bits} bits is not "
                     "allowed; no setting takes one beyond 64 bits")


def _whole_pattern(validator, pattern: str, instance: Any, schema: dict):
    """JSON Schema's `pattern` as its ECMA-262 regex reads: `$` is the end of the text, so a
    trailing newline (which Python's `$` lets through) does not pass."""
    import jsonschema

    if not isinstance(instance, str):
        return
    if re.search(pattern, instance) is None or (pattern.endswith("$") and re.search(pattern[:-1] + r"\Z", instance) is None):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def validator_for(schema_doc: dict):
    """A Draft 2020-12 validator whose `pattern` matches whole values (see _whole_pattern)."""
    import jsonschema

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _whole_pattern})
    return cls(schema_doc)


def _validate(data: Any, root: yaml.Node, where: str) -> None:
    validator = validator_for(schema())
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    # the error nearest the top of the file is the one to fix first
    err = min(errors, key=lambda e: (_line(root, _error_path(e)), len(e.absolute_path)))
    path = _error_path(err)
    raise UsageError(f"{where}:{_line(root, path)}: {_field(path)}: {_message(err)}")


def _error_path(err) -> list:
    """The path of the node to blame: an unknown key itself, or the value that broke a rule."""
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = sorted((k for k in err.instance if k not in allowed), key=str)  # a key may be a number
        if extra:
            path.append(extra[0])
    return path


def _message(err) -> str:
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        desc = err.schema.get("properties", {}).get(missing[0], {}).get("description", "")
        return f"{missing[0]!r} is missing" + (f"; give {desc}" if desc else "")
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = next((k for k in sorted(err.instance, key=str) if k not in allowed), "")  # a key may be a number
        close = difflib.get_close_matches(str(extra), allowed, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"unknown field; {hint}allowed here: {', '.join(allowed)}"
    if err.validator in _FORM and err.schema.get("description"):
        return f"{_short(repr(err.instance))} is not allowed; expected {err.schema['description']}"
    return _short(err.message)


def _short(text: str, limit: int = 120) -> str:
    """A value as the message shows it: a 6000-character one cut to its start, so the line stays one to read."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _field(path: list) -> str:
    """`suppressions[1].reason`: the field as a person finds it in the file."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _node(root: yaml.Node, path: list) -> tuple[yaml.Node, yaml.Node | None]:
    """The deepest node along `path`, and the key node that names it (None for the top or an item)."""
    node, key_node = root, None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)  # a key may be a number
            if match is None:
                break
            key_node, node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            key_node, node = None, node.value[part]
        else:
            break
    return node, key_node


def _line(root: yaml.Node, path: list) -> int:
    node, key_node = _node(root, path)
    return (key_node or node).start_mark.line + 1


def _settings(data: dict, root: yaml.Node, where: str, base: Path | None) -> SiteSettings:
    from ..verdicts.registry import load_all

    known = load_all()
    suppressions = []
    for i, item in enumerate(data.get("suppressions") or []):
        if item["check"] not in known:
            raise UsageError(f"{where}:{_line(root, ['suppressions', i, 'check'])}: suppressions[{i}].check: "
                             f"unknown check id {item['check']!r} (see `dvdoctor checks`)")
        suppressions.append(Suppression(item["check"], item["reason"].strip(), item.get("object")))
    names = dict(data.get("names") or {})
    tuple_fields = {f.name for f in dataclasses.fields(DvNames) if str(f.type).startswith("tuple")}
    names = {k: tuple(v) if k in tuple_fields else v for k, v in names.items()}
    bar = data.get("bar") or {}
    if "uid" in bar:
        names["bar_uid"] = bar["uid"]
    dv_names = DvNames(**names)
    _distinct(dv_names, root, where)
    return SiteSettings(
        copies=_copies(data.get("copies"), root, where, base),
        names=dv_names,
        thresholds=Thresholds(**(data.get("thresholds") or {})),
        suppressions=tuple(suppressions),
        storage_class=bar.get("storage_class"),
        bar_size=bar.get("size"),
        document=data,
    )


#: Names that must name different objects: a repair that acts on one (deleting dvcli.sh's list job,
#: removing a marker) would otherwise act on another (DV's running backup job, the restore's marker).
DISTINCT = (("backup_job", "restore_job", "list_job", "test_job", "init_volume_job"), ("data_pvc", "bar_pvc"),
            ("bar_marker", "restore_marker"), ("statefulsets", "side_deployments"))


def _distinct(names: DvNames, root: yaml.Node, where: str) -> None:
    for group in DISTINCT:
        seen: dict[str, str] = {}
        for field in group:
            value = getattr(names, field)
            for i, one in enumerate(value if isinstance(value, tuple) else (value,)):
                key = f"{field}[{i}]" if isinstance(value, tuple) else field
                if one in seen:
                    path = ["names", field, i] if isinstance(value, tuple) else ["names", field]
                    raise UsageError(f"{where}:{_line(root, path)}: names.{key}: {one!r} is also names.{seen[one]}: each of "
                                     f"{', '.join(group)} names its own object")
                seen[one] = key


def _copies(section: dict | None, root: yaml.Node, where: str, base: Path | None) -> CopySettings | None:
    """The copies section: a repository and password file (this machine) or a Secret (a cluster)."""
    if section is None:
        return None
    local = [k for k in ("repository", "password_file") if k in section]
    line = _line(root, ["copies"])
    if "secret" in section and local:
        raise UsageError(f"{where}:{line}: copies: give either secret (a cluster) or repository and "
                         f"password_file (this machine), not both")
    if "secret" not in section and len(local) != 2:
        raise UsageError(f"{where}:{line}: copies: give repository and password_file together "
                         f"(this machine), or secret (a Secret in DV's namespace, for a cluster)")
    if "claim" in section and "secret" not in section:
        raise UsageError(f"{where}:{line}: copies: claim is for a cluster (with secret); on this machine "
                         f"repository names the path itself")
    section = dict(section)  # the schema has made both strings, never empty
    if base is not None and "password_file" in section:
        section["password_file"] = _local_path(section["password_file"], base)
    if base is not None and "repository" in section:
        section["repository"] = _repository_path(section["repository"], base)
    return CopySettings(**section)


#: restic's location prefixes (rest:, sftp:, s3:, b2:, azure:, gs:, swift:, rclone:, local:).
_SCHEME = re.compile(r"[a-z][a-z0-9]*:")


def _local_path(value: str, base: Path) -> str:
    """A path in the config file: `~` is the user's home, a relative one is relative to the file's folder."""
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _repository_path(value: str, base: Path) -> str:
    """A repository given as a plain path (or `local:PATH`) is a local path in the config file; any
    other location (rest:https://..., s3:..., sftp:...) is kept as written."""
    scheme = _SCHEME.match(value)
    if scheme is None:
        return _local_path(value, base)
    if scheme.group(0) == "local:":
        return "local:" + _local_path(value[len("local:"):], base)
    return value
