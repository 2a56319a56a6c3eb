"""One backup as one tar stream that deduplicates: pack it for the copy engine, unpack it back.

DV's combined `dv_backup.tar.gz` holds gzip'd component tarballs. Compressed bytes change
everywhere after the first changed byte, so a deduplicating engine would store each day's backup
whole. The stream fixes that: it is a tar whose entries are

    .dvdoctor/copy.json                 what the stream holds (backup, namespace, instance)
    .dvdoctor/component/0.json          the outer member's name and metadata
    <the component's own entries>       its decompressed tar, block for block, verbatim
    .dvdoctor/component/0.end.json      its length, trailing zeros and sha256
    .dvdoctor/member/1.json, member/1   any other member (not a tarball), as it is
    ...

so a day's unchanged files are the same bytes as yesterday's, and the engine stores only what
changed. The component's blocks are copied, not re-encoded: its uncompressed stream comes back
byte for byte, proved by its sha256. Both directions read once, in order, in constant memory:
nothing is written to the (often full) backup volume while packing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

BLOCK = 512
PREFIX = ".dvdoctor/"
READ = 1024 * 1024
FORMAT = 1
#: Tar type flags whose size field does not count data blocks that follow.
_NO_DATA = set(b"1234567")


class StreamError(Exception):
    """The backup or the stream is not what it must be; the message says what and where."""


class SinkError(OSError):
    """What the stream was written to stopped taking it (restic ended)."""


@dataclass
class Part:
    """One member of the combined tarball as the stream keeps it."""

    member: str
    kind: str  # "component" (a decompressed inner tarball) or "member" (kept as it is)
    length: int = 0
    sha256: str = ""
    tail: int = 0


@dataclass
class Packed:
    parts: list[Part] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0

    def checksums(self) -> dict[str, str]:
        return {p.member: p.sha256 for p in self.parts}


def _meta(info: tarfile.TarInfo) -> dict:
    return {"member": info.name, "mode": info.mode, "mtime": info.mtime, "uid": info.uid, "gid": info.gid,
            "uname": info.uname, "gname": info.gname, "type": info.type.decode("latin-1")}


class _Out:
    """A tar stream written entry by entry: small JSON entries and verbatim blocks."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.written = 0

    def raw(self, data: bytes) -> None:
        try:
            self.sink.write(data)
        except OSError as exc:  # the reader went away: its failure, not the backup's
            raise SinkError(str(exc)) from exc
        self.written += len(data)

    def entry(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        self.raw(info.tobuf(format=tarfile.PAX_FORMAT))
        self.raw(data + b"\0" * (-len(data) % BLOCK))

    def json(self, name: str, value: dict) -> None:
        self.entry(name, json.dumps(value, sort_keys=True).encode())

    def close(self) -> None:
        self.raw(b"\0" * (2 * BLOCK))


class _Reader:
    """Exact reads from a stream, with every byte read also hashed."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int) -> bytes:
        chunks, want = [], n
        while want:
            got = self.src.read(min(want, READ))
            if not got:
                break
            chunks.append(got)
            want -= len(got)
        data = b"".join(chunks)
        self.hash.update(data)
        self.count += len(data)
        return data


def _data_blocks(header: bytes) -> int:
    """How many 512-byte blocks follow a tar header; StreamError for a header that is not one."""
    try:
        tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise StreamError(f"not a tar header ({exc})") from None
    size = tarfile.nti(header[124:136])
    if header[156] in _NO_DATA:
        return 0
    return -(-size // BLOCK)


def _long_name(kind: bytes, data: bytes) -> str | None:
    """The name a pax (`x`) or GNU long-name (`L`) header gives the entry that follows it."""
    if kind == b"L":
        return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    for record in data.split(b"\n"):
        key, _, value = record.partition(b"=")
        if key.endswith(b" path"):
            return value.decode("utf-8", "surrogateescape")
    return None


def _reserved(name: str) -> bool:
    return name.startswith(PREFIX) or name.startswith("./" + PREFIX)


def _copy_component(src: BinaryIO, out: _Out, part: Part) -> None:
    """Copy a decompressed component tarball's entries verbatim; count and hash all of it.

    An entry named `.dvdoctor/...` (by its header, a pax path or a GNU long name: the same names
    unpack reads) is refused: the stream's own entries must be the only ones so named."""
    reader = _Reader(src)
    long_name: str | None = None
    while True:
        header = reader.read(BLOCK)
        if len(header) < BLOCK:
            raise StreamError(f"{part.member}: cut short inside its tar data")
        if header == b"\0" * BLOCK:
            break
        blocks = _data_blocks(header)
        kind = header[156:157]
        if kind == b"S" and header[482]:  # old GNU sparse: extension headers follow
            raise StreamError(f"{part.member}: holds a GNU sparse file, which copies do not take")
        name = long_name if long_name is not None else header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if kind not in (b"x", b"L", b"g", b"K") and _reserved(name):
            raise StreamError(f"{part.member}: holds an entry named {PREFIX}..., a name the stream reserves")
        out.raw(header)
        todo = blocks * BLOCK
        ext = bytearray()
        while todo:
            data = reader.read(min(todo, READ))
            if not data:
                raise StreamError(f"{part.member}: cut short inside an entry")
            out.raw(data)
            if kind in (b"x", b"L") and len(ext) < 1 << 20:
                ext += data
            todo -= len(data)
        if kind in (b"x", b"L"):
            size = tarfile.nti(header[124:136])
            found = _long_name(kind, bytes(ext[:size]))
            long_name = found if found is not None else long_name
        elif kind not in (b"g", b"K"):
            long_name = None
    tail = BLOCK
    while True:
        data = reader.read(READ)
        if not data:
            break
        if data.count(0) != len(data):
            raise StreamError(f"{part.member}: bytes after its end-of-archive marker")
        tail += len(data)
    part.length, part.tail, part.sha256 = reader.count, tail, reader.hash.hexdigest()


#: Small files of the backup folder kept with the copy (dvdoctor's manifest: which instance took it).
EXTRA_LIMIT = 1024 * 1024


def pack(combined: BinaryIO, sink: BinaryIO, about: dict, extras: dict[str, bytes] | None = None) -> Packed:
    """Write the stream of one combined tarball (an open `dv_backup.tar.gz`) to `sink`, with the
    folder's small `extras` (name -> bytes, such as dvdoctor-manifest.json)."""
    out = _Out(sink)
    result = Packed()
    out.json(PREFIX + "copy.json", {"format": FORMAT, **about})
    for name, data in sorted((extras or {}).items()):
        if "/" in name or name.startswith(".") or len(data) > EXTRA_LIMIT:
            raise StreamError(f"{name}: not a small file of the backup folder")
        out.entry(f"{PREFIX}file/{name}", data)
    counted = _Counting(combined)
    try:
        outer = tarfile.open(fileobj=counted, mode="r|gz")
        for i, info in enumerate(outer):
            if info.name.startswith(PREFIX) or "/" + PREFIX in info.name:
                raise StreamError(f"{info.name}: a member name the stream reserves")
            meta = _meta(info)
            if info.isfile() and info.name.endswith((".tar.gz", ".tgz")):
                part = Part(info.name, "component")
                out.json(f"{PREFIX}component/{i}.json", meta)
                inner = outer.extractfile(info)
                assert inner is not None
                with gzip.GzipFile(fileobj=inner, mode="rb") as plain:
                    _copy_component(plain, out, part)
                out.json(f"{PREFIX}component/{i}.end.json",
                         {"length": part.length, "tail": part.tail, "sha256": part.sha256})
            else:
                part = Part(info.name, "member")
                data_hash = hashlib.sha256()
                out.json(f"{PREFIX}member/{i}.json", meta)
                if info.isfile():
                    src = outer.extractfile(info)
                    assert src is not None
                    body = _Reader(src)
                    head = tarfile.TarInfo(f"{PREFIX}member/{i}")
                    head.size, head.mode = info.size, 0o644
                    out.raw(head.tobuf(format=tarfile.PAX_FORMAT))
                    while chunk := body.read(READ):
                        out.raw(chunk)
                    out.raw(b"\0" * (-info.size % BLOCK))
                    data_hash = body.hash
                    part.length = body.count
                part.sha256 = data_hash.hexdigest()
            result.parts.append(part)
        outer.close()
    except SinkError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise StreamError(f"the combined tarball does not read back: {exc}") from None
    if not any(p.kind == "component" for p in result.parts):
        raise StreamError("the combined tarball holds no component tarball")
    out.json(PREFIX + "index.json", {"parts": [p.__dict__ for p in result.parts]})
    out.close()
    result.bytes_in, result.bytes_out = counted.count, out.written
    return result


class _Counting(io.RawIOBase):
    def __init__(self, src: BinaryIO) -> None:
        self.src, self.count = src, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        data = self.src.read(len(buf))
        buf[: len(data)] = data
        self.count += len(data)
        return len(data)


def _entry(reader: _Reader) -> tuple[tarfile.TarInfo | None, bytes]:
    """The next entry's header (None at the end) and the raw header blocks read, pax headers included."""
    raw = b""
    while True:
        header = reader.read(BLOCK)
        if len(header) < BLOCK:
            raise StreamError("the copy is cut short")
        if header == b"\0" * BLOCK:
            return None, raw
        raw += header
        if header[156:157] in (b"x", b"g", b"L", b"K"):  # extended headers: their data, then the real header
            raw += reader.read(_data_blocks(header) * BLOCK)
            continue
        break
    info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    return info, raw


def _pax_name(raw: bytes, info: tarfile.TarInfo) -> str:
    """The entry's full name as pack judged it: a pax `path` or GNU long name overrides the header's."""
    name = None
    at = 0
    while at < len(raw) - BLOCK:
        header = raw[at:at + BLOCK]
        size = tarfile.nti(header[124:136])
        data = raw[at + BLOCK:at + BLOCK + size]
        if header[156:157] in (b"x", b"L"):
            name = _long_name(header[156:157], data) or name
        at += BLOCK + -(-size // BLOCK) * BLOCK
    return name if name is not None else info.name


def unpack(src: BinaryIO, folder: Path, make: Callable[[Path, dict], None] | None = None) -> Packed:
    """Write a stream's components (gzip'd again) and members into `folder`, and the combined
    `dv_backup.tar.gz` from them, each checked against the checksums the stream recorded."""
    reader = _Reader(src)
    folder.mkdir(parents=True, exist_ok=True)
    result = Packed()
    metas: list[dict] = []
    current: tuple[dict, "_GzipSink"] | None = None
    index: dict | None = None
    while True:
        info, raw = _entry(reader)
        if info is None:
            break
        name = _pax_name(raw, info)
        size = tarfile.nti(raw[-BLOCK:][124:136])
        blocks = 0 if raw[-BLOCK:][156] in _NO_DATA else -(-size // BLOCK)
        if name.startswith(PREFIX):
            body = reader.read(blocks * BLOCK)[:size]
            rest = name[len(PREFIX):]
            if rest.startswith("component/") and rest.endswith(".end.json"):
                if current is None:
                    raise StreamError(f"{name} without its component")
                meta, sink = current
                end = json.loads(body)
                sink.write(b"\0" * end["tail"])
                got = sink.finish()
                if got != (end["length"], end["sha256"]):
                    raise StreamError(f"{meta['member']}: its data does not match the checksum recorded at copy time")
                result.parts.append(Part(meta["member"], "component", end["length"], end["sha256"], end["tail"]))
                current = None
            elif rest.startswith("component/"):
                meta = json.loads(body)
                metas.append(meta)
                current = (meta, _GzipSink(_inside(folder, meta["member"])))
            elif rest.startswith("member/") and rest.endswith(".json"):
                metas.append(json.loads(body))
            elif rest.startswith("member/"):
                meta = metas[-1]
                target = _inside(folder, meta["member"])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
                result.parts.append(Part(meta["member"], "member", len(body), hashlib.sha256(body).hexdigest()))
            elif rest.startswith("file/") and "/" not in rest[5:] and not rest[5:].startswith("."):
                _inside(folder, rest[5:]).write_bytes(body)
            elif rest == "index.json":
                index = json.loads(body)
            continue
        if current is None:
            raise StreamError(f"{name}: an entry outside any component")
        current[1].write(raw)
        todo = blocks * BLOCK
        while todo:
            data = reader.read(min(todo, READ))
            if not data:
                raise StreamError("the copy is cut short")
            current[1].write(data)
            todo -= len(data)
    if index is None:
        raise StreamError("the copy has no index: it was cut short when it was written")
    recorded = {p["member"]: p["sha256"] for p in index["parts"]}
    if recorded != result.checksums():
        raise StreamError("the copy's parts do not match its index")
    _combine(folder, metas)
    return result


class _GzipSink:
    """A component tarball written gzip'd again, hashing its uncompressed bytes on the way."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file = open(path, "wb")
        self.gz = gzip.GzipFile(filename="", fileobj=self.file, mode="wb", compresslevel=6, mtime=0)
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> None:
        self.gz.write(data)
        self.hash.update(data)
        self.count += len(data)

    def finish(self) -> tuple[int, str]:
        self.gz.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return self.count, self.hash.hexdigest()


def _inside(folder: Path, member: str) -> Path:
    """A member's path under `folder`; StreamError for a name that would leave it."""
    target = (folder / member).resolve()
    if folder.resolve() not in target.parents:
        raise StreamError(f"{member!r}: a member name outside the backup folder")
    return target


COMBINED = "dv_backup.tar.gz"


def _combine(folder: Path, metas: list[dict]) -> None:
    """The combined tarball from the parts, members in their first order, written then renamed."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{COMBINED}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
            for meta in metas:
                info = tarfile.TarInfo(meta["member"])
                info.mode, info.mtime = meta["mode"], meta["mtime"]
                info.uid, info.gid, info.uname, info.gname = meta["uid"], meta["gid"], meta["uname"], meta["gname"]
                info.type = meta["type"].encode("latin-1")
                if info.isfile():
                    path = _inside(folder, meta["member"])
                    info.size = path.stat().st_size
                    with open(path, "rb") as body:
                        tar.addfile(info, body)
                else:
                    tar.addfile(info)
        os.replace(tmp, folder / COMBINED)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
