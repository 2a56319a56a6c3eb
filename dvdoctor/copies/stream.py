"""One backup as one tar stream that deduplicates: pack it for the copy engine, unpack it back.

DV's combined `dv_backup.tar.gz` holds gzip'd component tarballs. Compressed bytes change
everywhere after the first changed byte, so a deduplicating engine would store each day's backup
whole. The stream undoes that, and lays the rest out so that a day's changes cost restic as few
chunks as they can:

    .dvdoctor/d/<key>/0      the data of one file of a component (its tar blocks): one entry
    .dvdoctor/d/<key>/1      per 512 KiB frame (see below), compressed when the file is large
    ...                      (`_FrameCodec`), the files in the component's own order; <key> is a
                             hash of the file's path
    .dvdoctor/m/<key>/0 ...  any other member of the combined tarball (not a tarball), framed
    .dvdoctor/meta.json.gz   everything else: the components' tar headers (verbatim), the members'
                             metadata, the backup, checksums and lengths
    .dvdoctor/tail.json      how long the entry before it is, so it can be found from the end

Why this shape (restic 0.14 cuts a stream into chunks of 512 KiB to 8 MiB, about 1 MiB on average,
where a rolling hash of the last 64 bytes matches; a changed byte costs its whole chunk):
- **What changes daily sits at the end.** A tar header holds the file's mtime, and a day's backup
  has new ones for every changed file and folder. Inline, each would cost a chunk; gathered in one
  compressed entry at the end, together they cost about one. The data entries' own headers are
  constant (a hash of the path and the frame's number for a name, mtime 0, a frame's fixed size),
  so a file that grows (a transaction log) changes only its last frame, not its first.
- **Chunks are cut every 512 KiB of a file.** Each frame entry of a file's data ends with a 64-byte
  marker whose rolling hash, under this repository's chunker polynomial, is one that restic cuts at. Chunks then line up with the file's own 512 KiB frames, so one rewritten
  8 KiB page costs one 512 KiB chunk, not a chunk of about 1.5 MiB wherever it falls; and an
  extent or a log append costs its frames. The marker is recorded; unpack removes every one and
  checks it.
- **Whole frames are compressed here** (format 3), each on its own, so a frame still dedups and
  restic, finding zstd and zeros, has little left to compress (`_FrameCodec` says why).
The component's blocks come back as they were: its uncompressed stream comes back byte for
byte, proved by its sha256. Packing reads the backup once, in order, writing nothing to the (often
full) backup volume; memory holds only the headers. Unpacking needs the last entries first
(`meta_from_tail`: restic reads a snapshot's last chunks alone), then reads the stream once.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from .errors import SinkError, StreamError

if TYPE_CHECKING:  # the copy program starts a few hundred times in a test run: concurrent.futures (and
    # the logging it imports) only when a large file is framed, below
    from concurrent.futures import Future, ThreadPoolExecutor

BLOCK = 512
PREFIX = ".dvdoctor/"
READ = 1024 * 1024
FORMAT = 3
#: Stream formats unpack reads: 2 had every frame's data as it is (restic compressed it), 3 has a
#: whole frame's data compressed here (see `_FrameCodec`); copies made in format 2 stay readable.
READS = (2, 3)
#: restic's chunker (github.com/restic/chunker, fixed since restic's first release): no cut before
#: `MIN_CHUNK` bytes, a rolling Rabin hash over a `WINDOW`-byte window, a cut where its low 20 bits are 0.
MIN_CHUNK = 512 * 1024
WINDOW = 64
SPLIT_MASK = (1 << 20) - 1
#: A file's data bytes in one frame: with its entry's header before and the marker after, a frame is
#: `MIN_CHUNK` long, so its marker ends exactly where the chunker may cut again.
FRAME = MIN_CHUNK - BLOCK - WINDOW
#: A file at least this large has its last frame padded with zeros to a whole one: a file that grows
#: (a transaction log) or changes near its end then changes its own last chunk only, not also the
#: next file's first. Zeros cost restic next to nothing to store, only to read. Smaller files are
#: not padded (thousands of small files would be gigabytes of zeros to read); they ride in chunks
#: with their neighbours. Padding is at most three times a file's own size.
PAD_FROM = FRAME // 4
#: A whole frame's data starts with a header of its own (format 3): how its bytes are held (`Z`
#: compressed by zstd, `R` as they are, when compressing would not make them smaller) and how many
#: bytes follow; then zeros to the frame's end. So a frame carries `FRAME - FRAME_HEADER` data bytes.
FRAME_HEADER = 8
#: zstd's fastest level: a frame's bytes must compress the same way every day (or they would not
#: dedup), and about three times faster than restic's own compression of the same data.
ZSTD_LEVEL = 1


def _padded(length: int) -> bool:
    return length >= PAD_FROM


#: Headers of one backup kept in memory while packing (a tar header is 512 bytes: about 130,000 files).
HEADER_LIMIT = 64 * 1024 * 1024
META = PREFIX + "meta.json.gz"
TAIL = PREFIX + "tail.json"
#: The stream's last bytes that hold the tail entry: its header, its one data block, the end-of-archive.
TAIL_BYTES = 4 * BLOCK
#: Tar type flags whose size field does not count data blocks that follow.
_NO_DATA = set(b"1234567")
_EXTENDED = (b"x", b"g", b"L", b"K")


def _poly_mod(value: int, poly: int) -> int:
    """`value` modulo `poly`, both polynomials over GF(2) held as integers."""
    degree = poly.bit_length() - 1
    while value.bit_length() - 1 >= degree:
        value ^= poly << (value.bit_length() - 1 - degree)
    return value


def chunk_marker(polynomial: int | None) -> bytes:
    """64 bytes after which restic's chunker cuts (once a chunk is `MIN_CHUNK` long).

    The chunker's hash of its window is the Rabin fingerprint of those 64 bytes modulo the
    repository's polynomial (degree 53), and fingerprints add by XOR. The last 3 bytes of the
    marker only add themselves (they are below degree 53), so setting them to the low bits of the
    prefix's fingerprint zeroes the 20 bits the chunker tests. Without a polynomial (unknown) the
    marker cuts nothing, and the stream is as correct, only less compact."""
    prefix = b"dvdoctor copy stream: a chunk boundary after 512 KiB of data.."[: WINDOW - 3]
    if polynomial is None or not (1 << 53) <= polynomial < (1 << 54):
        return prefix + b"\0\0\0"
    fingerprint = _poly_mod(int.from_bytes(prefix + b"\0\0\0", "big"), polynomial)
    return prefix + (fingerprint & SPLIT_MASK).to_bytes(3, "big")


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
            "uname": info.uname, "gname": info.gname, "type": info.type.decode("latin-1"), "link": info.linkname}


def _key(*names: str) -> str:
    """A data entry's name: constant for a path (so its header dedups), short, any bytes welcome."""
    digest = hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return digest


#: Whole frames compressed ahead of the one being written (in `_Out`'s worker threads), and so the
#: most pieces the stream holds in memory before writing them: about 2 * AHEAD * 512 KiB.
AHEAD = 8


class _Out:
    """The stream written entry by entry; data entries framed with the marker.

    Whole frames are compressed by two worker threads while this thread goes on unpacking the
    backup (zstd and zlib both work without Python's lock): on 2 cores a copy then takes about as
    long as decompressing the backup, not that plus compressing it. What is written stays in order:
    every piece waits in `pending` behind the frames before it."""

    def __init__(self, sink: BinaryIO, marker: bytes) -> None:
        self.sink = sink
        self.marker = marker
        self.written = 0
        self.codec = _FrameCodec()
        self.pending: deque[bytes | Future] = deque()
        self.pool: ThreadPoolExecutor | None = None

    def raw(self, data: bytes) -> None:
        if self.pending:
            self.pending.append(data)
            self._drain(AHEAD)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            self.sink.write(data)
        except OSError as exc:  # the reader went away: its failure, not the backup's
            raise SinkError(str(exc)) from exc
        self.written += len(data)

    def _drain(self, keep: int) -> None:
        """Write the oldest pieces until at most `keep` wait (a frame's, once compressed)."""
        while len(self.pending) > keep:
            item = self.pending.popleft()
            self._write(item if isinstance(item, bytes) else item.result())

    def _frame(self, header: bytes, data: bytes) -> bytes:
        """One whole frame's entry (in a worker thread): header, compressed data, zeros, marker."""
        body = self.codec.encode(data)
        return header + body + bytes(FRAME - len(body)) + self.marker

    @staticmethod
    def _header(name: str, size: int) -> bytes:
        """A header that depends on the name and size only (mtime 0, no owner)."""
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        return info.tobuf(format=tarfile.GNU_FORMAT)

    def header(self, name: str, size: int) -> None:
        self.raw(self._header(name, size))

    def entry(self, name: str, data: bytes) -> None:
        self.header(name, len(data))
        self.raw(data + b"\0" * (-len(data) % BLOCK))

    def framed(self, key: str, length: int, read: Callable[[int], bytes], what: str) -> None:
        """`length` bytes taken from `read`: a large file (`_padded`) as entries `key/0`, `key/1`, ...
        of a whole frame each (`_whole_frames`); a small one as one entry `key/0`, as it is."""
        if not length:
            return
        if _padded(length):
            self._whole_frames(key, length, read, what)
            return
        self.header(f"{key}/0", length)
        left = length
        while left:
            data = read(min(left, READ))
            if not data:
                raise StreamError(f"{what}: cut short inside an entry")
            self.raw(data)
            left -= len(data)
        self.raw(b"\0" * (-length % BLOCK))

    def _whole_frames(self, key: str, length: int, read: Callable[[int], bytes], what: str) -> None:
        """A large file's data: frames of `FRAME` bytes, each its data compressed (`_FrameCodec`)
        and zeros to the frame's end, then the marker."""
        index, todo = 0, length
        while todo:
            part = min(todo, FRAME - FRAME_HEADER)
            data = read(part)
            if len(data) < part:
                raise StreamError(f"{what}: cut short inside an entry")
            if self.pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dvdoctor-zstd")
            self.pending.append(self.pool.submit(self._frame, self._header(f"{key}/{index}", FRAME + WINDOW), data))
            self._drain(AHEAD)
            todo -= part
            index += 1

    def close(self) -> None:
        self.raw(b"\0" * (2 * BLOCK))
        self._drain(0)
        self.stop()

    def stop(self) -> None:
        """No more frames: the workers end (what they had not started is dropped)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class _FrameCodec:
    """A whole frame's data as the stream holds it (format 3): `FRAME_HEADER` bytes (how, how many)
    and the bytes, compressed by zstd at `ZSTD_LEVEL` unless that would not make them smaller.

    Why here and not by restic: restic compresses each chunk it stores with zstd's default level,
    which on 2 cores was most of a first copy's time (16 of its 30 CPU-seconds for a 1 GiB lab).
    Compressed here at the fastest level, a frame is a few hundred KiB of zstd and zeros, which
    restic hashes, finds incompressible or empty and stores as is: the first copy costs half, the
    repository about 5% more (zstd's level 1 against its level 3), and a frame still dedups, since
    the same bytes compress the same way. The marker still ends the frame, so chunks still line up
    with frames."""

    def __init__(self) -> None:
        import zstandard

        self._zstd = zstandard
        self._mine = threading.local()  # a compressor is used by one thread at a time
        self._decompressor = zstandard.ZstdDecompressor()
        self._error = zstandard.ZstdError

    def encode(self, data: bytes) -> bytes:
        compressor = getattr(self._mine, "compressor", None)
        if compressor is None:
            compressor = self._mine.compressor = self._zstd.ZstdCompressor(
                level=ZSTD_LEVEL, write_checksum=False, write_content_size=True)
        packed = compressor.compress(data)
        if len(packed) < len(data):
            return b"Z" + len(packed).to_bytes(4, "big") + b"\0\0\0" + packed
        return b"R" + len(data).to_bytes(4, "big") + b"\0\0\0" + data

    def decode(self, body: bytes, want: int) -> bytes:
        """The `want` data bytes of a frame's body (`FRAME` bytes, zeros after the data); StreamError
        if the body is not one this wrote."""
        how, size, spare = body[:1], int.from_bytes(body[1:5], "big"), body[5:FRAME_HEADER]
        end = FRAME_HEADER + size
        if spare != b"\0\0\0" or end > len(body) or body.count(0, end) != len(body) - end:
            raise StreamError("the copy's frames are out of place: it is damaged")
        held = body[FRAME_HEADER:end]
        if how == b"R":
            data = held
        elif how == b"Z":
            try:
                data = self._decompressor.decompress(held, max_output_size=want)
            except self._error:
                raise StreamError("a frame of the copy does not decompress: it is damaged") from None
        else:
            raise StreamError("the copy's frames are out of place: it is damaged")
        if len(data) != want:
            raise StreamError("a frame of the copy holds fewer or more bytes than recorded: it is damaged")
        return data


class _Reader:
    """Exact reads from a stream, with every byte read also hashed (unless `hashed` is False: the
    whole copy stream read back needs no digest of its own, its parts are checked one by one)."""

    def __init__(self, src: BinaryIO, hashed: bool = True) -> None:
        self.src = src
        self.hash = hashlib.sha256() if hashed else None
        self.count = 0

    def read(self, n: int) -> bytes:
        chunks, want = [], n
        while want:
            got = self.src.read(min(want, READ))
            if not got:
                break
            chunks.append(got)
            want -= len(got)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self.hash is not None:
            self.hash.update(data)
        self.count += len(data)
        return data


class _Gunzip:
    """A component tarball's bytes, inflated by zlib itself: `read(n)` gives up to n bytes, b"" at the end.

    Why not gzip.GzipFile: it reads in small pieces and checks each member's CRC in a second pass
    over the output; zlib checks the CRC and length as it inflates (the gzip wrapper, wbits 16+).
    That is a fifth of a copy's CPU on this path. Same rules as GzipFile: members may follow one
    another, zeros may pad the end; a cut stream is EOFError, bad data zlib.error."""

    #: compressed bytes read at a time, and the most bytes inflated from them in one call
    IN, OUT = 256 * 1024, 1024 * 1024
    MAGIC = b"\x1f\x8b"

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.inflate: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.buf, self.pos = b"", 0
        self.pending = b""  # compressed bytes read but not yet given to zlib (the next member's)

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n and self.inflate is not None:
            more = self._inflate()
            if more:
                self.buf = self.buf[self.pos:] + more
                self.pos = 0
        out = self.buf[self.pos: self.pos + n]
        self.pos += len(out)
        return out

    def _inflate(self) -> bytes:
        z = self.inflate
        assert z is not None
        if z.unconsumed_tail:
            return z.decompress(z.unconsumed_tail, self.OUT)
        data, self.pending = self.pending or self.src.read(self.IN), b""
        if not data:
            if not z.eof:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            self.inflate = None
            return b""
        if z.eof:  # what follows a member: zeros, or another member
            data = data.lstrip(b"\0")
            if not data:
                return b""
            if len(data) < 2:
                data += self.src.read(1)
            if data[:2] != self.MAGIC:
                raise zlib.error("not a gzip member after the last one (bad magic)")
            z = self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = z.decompress(data, self.OUT)
        if z.eof:
            self.pending = z.unused_data
        return out


def _data_blocks(header: bytes) -> int:
    """How many 512-byte blocks follow a tar header; StreamError for a header that is not one."""
    try:
        tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise StreamError(f"not a tar header ({exc})") from None
    if header[156] in _NO_DATA:
        return 0
    return -(-tarfile.nti(header[124:136]) // BLOCK)


def _long_name(kind: bytes, data: bytes) -> str | None:
    """The name a pax (`x`) or GNU long-name (`L`) header gives the entry that follows it."""
    if kind == b"L":
        return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    for record in data.split(b"\n"):
        key, _, value = record.partition(b"=")
        if key.endswith(b" path"):
            return value.decode("utf-8", "surrogateescape")
    return None


@dataclass
class _Component:
    """A component's tar headers, in order, and for each entry how many data blocks follow it."""

    headers: bytearray = field(default_factory=bytearray)
    #: [header bytes, data blocks] per entry; the data, when blocks > 0, is the next data entry.
    entries: list[list[int]] = field(default_factory=list)


def _copy_component(src: BinaryIO, out: _Out, part: Part, kept: _Component, budget: list[int]) -> None:
    """A decompressed component tarball: headers kept for the end, each file's data blocks framed
    into the stream; every byte counted and hashed."""
    reader = _Reader(src)
    pending = b""  # extended headers (pax, GNU long names) and their data, for the entry they precede
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
        if kind in _EXTENDED:
            data = reader.read(blocks * BLOCK)
            if len(data) < blocks * BLOCK:
                raise StreamError(f"{part.member}: cut short inside an entry")
            if kind in (b"x", b"L"):
                found = _long_name(kind, data[: tarfile.nti(header[124:136])])
                long_name = found if found is not None else long_name
            pending += header + data
            continue
        name = long_name if long_name is not None else header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        kept.headers += pending + header
        kept.entries.append([len(pending) + BLOCK, blocks])
        budget[0] -= len(pending) + BLOCK
        if budget[0] < 0:
            raise StreamError(f"{part.member}: more files than a copy takes ({HEADER_LIMIT // BLOCK} or so)")
        pending, long_name = b"", None
        if blocks:
            out.framed(PREFIX + "d/" + _key(part.member, name), blocks * BLOCK, reader.read, part.member)
    if pending:
        raise StreamError(f"{part.member}: ends inside an entry's extended header")
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


def pack(combined: BinaryIO, sink: BinaryIO, about: dict, extras: dict[str, bytes] | None = None, *,
         marker: bytes = chunk_marker(None)) -> Packed:
    """Write the stream of one combined tarball (an open `dv_backup.tar.gz`) to `sink`, with the
    folder's small `extras` (name -> bytes, such as dvdoctor-manifest.json); `marker` from
    `chunk_marker` with the repository's polynomial."""
    if len(marker) != WINDOW:
        raise ValueError("a marker is 64 bytes")
    out = _Out(sink, marker)
    result = Packed()
    for name, data in (extras or {}).items():
        if "/" in name or name.startswith(".") or len(data) > EXTRA_LIMIT:
            raise StreamError(f"{name}: not a small file of the backup folder")
    parts: list[dict] = []
    budget = [HEADER_LIMIT]
    counted = _Counting(combined)
    try:
        outer = tarfile.open(fileobj=counted, mode="r|gz", bufsize=_Gunzip.IN)  # 10 KiB reads by default
        for info in outer:
            meta = _meta(info)
            if info.isfile() and info.name.endswith((".tar.gz", ".tgz")):
                part = Part(info.name, "component")
                kept = _Component()
                inner = outer.extractfile(info)
                assert inner is not None
                _copy_component(_Gunzip(inner), out, part, kept, budget)
                parts.append({"kind": "component", "meta": meta, "length": part.length, "tail": part.tail,
                              "sha256": part.sha256, "headers": base64.b64encode(bytes(kept.headers)).decode(),
                              "entries": kept.entries})
            else:
                part = Part(info.name, "member")
                body = _Reader(io.BytesIO())
                if info.isfile():
                    src = outer.extractfile(info)
                    assert src is not None
                    body = _Reader(src)
                    out.framed(PREFIX + "m/" + _key(info.name), info.size, body.read, info.name)
                part.length, part.sha256 = body.count, body.hash.hexdigest()
                parts.append({"kind": "member", "meta": meta, "length": part.length, "sha256": part.sha256})
            result.parts.append(part)
        outer.close()
    except SinkError:
        out.stop()
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        out.stop()
        raise StreamError(f"the combined tarball does not read back: {exc}") from None
    except BaseException:
        out.stop()
        raise
    if not any(p.kind == "component" for p in result.parts):
        out.stop()
        raise StreamError("the combined tarball holds no component tarball")
    about_all = {"format": FORMAT, "frame": FRAME, "marker": marker.hex(), **about,
                 "extras": {n: base64.b64encode(d).decode() for n, d in sorted((extras or {}).items())},
                 "parts": parts}
    blob = gzip.compress(json.dumps(about_all, sort_keys=True).encode(), compresslevel=6, mtime=0)
    out.entry(META, blob)
    out.entry(TAIL, json.dumps({"format": FORMAT, "meta": BLOCK + len(blob) + (-len(blob) % BLOCK)}).encode())
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


#: The metadata a stream may carry (gzip'd JSON of headers): more is not a copy this writes.
META_LIMIT = 4 * HEADER_LIMIT


def meta_need(tail: bytes) -> int:
    """How many of the stream's last bytes hold its metadata, from at least its last `TAIL_BYTES`."""
    if len(tail) < TAIL_BYTES:
        return TAIL_BYTES
    block = tail[-TAIL_BYTES:]
    header, data = block[:BLOCK], block[BLOCK:2 * BLOCK]
    try:
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        if info.name != TAIL or block[2 * BLOCK:] != b"\0" * (2 * BLOCK):
            raise ValueError
        record = json.loads(data[: info.size])
        size = int(record["meta"])
    except (tarfile.TarError, ValueError, KeyError, TypeError):
        raise StreamError("the copy has no tail: it was cut short when it was written, or is not a copy") from None
    if record.get("format") not in READS:
        raise StreamError(f"the copy is in stream format {record.get('format')}, this dvdoctor reads "
                          f"{' and '.join(map(str, READS))}")
    if not 0 < size <= META_LIMIT or size % BLOCK:
        raise StreamError("the copy's tail does not hold a usable length")
    return TAIL_BYTES + size


def meta_from_tail(tail: bytes) -> dict:
    """The stream's metadata from its last bytes (at least `meta_need(tail)` of them)."""
    need = meta_need(tail)
    if len(tail) < need:
        raise StreamError("the copy's last bytes were not all read")
    entry = tail[len(tail) - need: len(tail) - TAIL_BYTES]
    try:
        info = tarfile.TarInfo.frombuf(entry[:BLOCK], "utf-8", "surrogateescape")
        if info.name != META:
            raise ValueError
        meta = json.loads(gzip.decompress(entry[BLOCK: BLOCK + info.size]))
        if meta.get("format") not in READS or not isinstance(meta.get("parts"), list):
            raise ValueError
    except (tarfile.TarError, ValueError, OSError, EOFError, zlib.error, TypeError):
        raise StreamError("the copy's metadata does not read back") from None
    return meta


class _Entries:
    """The stream read entry by entry, as unpack expects them in order."""

    def __init__(self, src: BinaryIO, marker: bytes, form: int = FORMAT) -> None:
        self.reader = _Reader(src, hashed=False)
        self.marker = marker
        self.codec = _FrameCodec() if form >= 3 else None

    def expect(self, name: str) -> int:
        """The next entry, which must be `name`; its size."""
        header = self.reader.read(BLOCK)
        if len(header) < BLOCK:
            raise StreamError("the copy is cut short")
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            raise StreamError("the copy does not read as a tar stream here: it is damaged") from None
        if info.name != name:
            raise StreamError(f"the copy holds {info.name!r} where {name!r} belongs: it is damaged")
        return info.size

    def data(self, key: str, length: int, write: Callable[[bytes], None]) -> None:
        """`length` bytes of data framed as `_Out.framed` writes them; padding and markers checked
        and dropped."""
        if self.codec is not None and _padded(length):
            self._whole_frames(key, length, write)
            return
        index, todo = 0, length
        while todo:
            part = min(todo, FRAME)
            pad = FRAME - part if _padded(length) else 0
            marked = part + pad == FRAME
            if self.expect(f"{key}/{index}") != part + pad + (WINDOW if marked else 0):
                raise StreamError("the copy's frames are out of place: it is damaged")
            left = part
            while left:
                data = self.reader.read(min(left, READ))
                if not data:
                    raise StreamError("the copy is cut short")
                write(data)
                left -= len(data)
            rest = self.reader.read(pad + WINDOW if marked else -part % BLOCK)
            if marked and rest != b"\0" * pad + self.marker:
                raise StreamError("the copy's frames are out of place: it is damaged")
            todo -= part
            index += 1

    def _whole_frames(self, key: str, length: int, write: Callable[[bytes], None]) -> None:
        """A large file's frames (format 3), each decoded by `_FrameCodec`."""
        assert self.codec is not None
        index, todo = 0, length
        while todo:
            part = min(todo, FRAME - FRAME_HEADER)
            if self.expect(f"{key}/{index}") != FRAME + WINDOW:
                raise StreamError("the copy's frames are out of place: it is damaged")
            body = self.reader.read(FRAME + WINDOW)
            if len(body) < FRAME + WINDOW:
                raise StreamError("the copy is cut short")
            if body[FRAME:] != self.marker:
                raise StreamError("the copy's frames are out of place: it is damaged")
            write(self.codec.decode(body[:FRAME], part))
            todo -= part
            index += 1

    def whole(self, name: str, limit: int) -> bytes:
        size = self.expect(name)
        if size > limit:
            raise StreamError(f"the copy's {name} is larger than a copy writes")
        body = self.reader.read(size + (-size % BLOCK))
        if len(body) < size + (-size % BLOCK):
            raise StreamError("the copy is cut short")
        return body[:size]


def unpack(src: BinaryIO, folder: Path, meta: dict) -> Packed:
    """Write a stream's components (gzip'd again) and members into `folder`, and the combined
    `dv_backup.tar.gz` from them, each checked against the checksums the stream recorded.

    `meta` comes from the stream's own end (`meta_from_tail`); the stream read here must end with
    the very same, so a tail from another copy never passes. `folder` must not exist yet: anything
    at its name (a link planted there above all) would otherwise be written through."""
    folder.mkdir(parents=True, exist_ok=False)
    try:
        marker = bytes.fromhex(meta["marker"])
        if len(marker) != WINDOW or meta.get("frame") != FRAME:
            raise ValueError
    except (KeyError, ValueError, TypeError):
        raise StreamError("the copy's metadata names no usable frame marker") from None
    entries = _Entries(src, marker, meta["format"])
    result = Packed()
    metas: list[dict] = []
    try:
        for part in meta["parts"]:
            member = part["meta"]["member"]
            metas.append(part["meta"])
            if part["kind"] == "component":
                _unpack_component(entries, part, _inside(folder, member), member)
            else:
                h = hashlib.sha256()
                if part["meta"]["type"] in ("0", "\0", "7"):  # what TarInfo.isfile() calls a file
                    # kept out of the folder's own files: only the combined tarball holds it
                    target = _inside(folder / _MEMBERS, member)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as f:
                        def write(data: bytes) -> None:
                            f.write(data)
                            h.update(data)

                        entries.data(PREFIX + "m/" + _key(member), part["length"], write)
                if h.hexdigest() != part["sha256"]:
                    raise StreamError(f"{member}: its data does not match the checksum recorded at copy time")
            result.parts.append(Part(member, part["kind"], part["length"], part["sha256"], part.get("tail", 0)))
        for name, data in meta.get("extras", {}).items():
            if "/" in name or name.startswith("."):
                raise StreamError(f"{name!r}: not a file name of the backup folder")
            _inside(folder, name).write_bytes(base64.b64decode(data))
        end = entries.whole(META, META_LIMIT)
        if json.loads(gzip.decompress(end)) != meta:
            raise StreamError("the copy's metadata is not the one read from its end: mixed copies")
    except (KeyError, TypeError, ValueError, zlib.error, EOFError) as exc:
        if isinstance(exc, StreamError):
            raise
        raise StreamError(f"the copy's metadata does not describe it ({type(exc).__name__})") from None
    _combine(folder, metas)
    shutil.rmtree(folder / _MEMBERS, ignore_errors=True)
    return result


#: Where unpack keeps a combined tarball's members that are not component tarballs until the
#: combined tarball is made again (a backup folder holds only the components loose).
_MEMBERS = ".dvdoctor-members"


def _unpack_component(entries: _Entries, part: dict, path: Path, member: str) -> None:
    headers = base64.b64decode(part["headers"])
    sink = _GzipSink(path)
    at = 0
    for hlen, blocks in part["entries"]:
        header = headers[at: at + hlen]
        if len(header) != hlen or hlen < BLOCK or hlen % BLOCK:
            raise StreamError(f"{member}: its recorded headers are damaged")
        at += hlen
        sink.write(header)
        if blocks:
            main = header[-BLOCK:]
            pax = header[:-BLOCK]
            name = _entry_name(pax, main)
            entries.data(PREFIX + "d/" + _key(member, name), blocks * BLOCK, sink.write)
    sink.write(b"\0" * part["tail"])
    if sink.finish() != (part["length"], part["sha256"]):
        raise StreamError(f"{member}: its data does not match the checksum recorded at copy time")


def _entry_name(extended: bytes, main: bytes) -> str:
    """An entry's name as pack read it: a pax `path` or GNU long name overrides the header's."""
    name = None
    at = 0
    while at < len(extended):
        header = extended[at: at + BLOCK]
        size = tarfile.nti(header[124:136])
        data = extended[at + BLOCK: at + BLOCK + size]
        if header[156:157] in (b"x", b"L"):
            name = _long_name(header[156:157], data) or name
        at += BLOCK + -(-size // BLOCK) * BLOCK
    return name if name is not None else main[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


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
                info.linkname = meta.get("link", "")
                if info.isfile():
                    component = meta["member"].endswith((".tar.gz", ".tgz"))
                    path = _inside(folder if component else folder / _MEMBERS, meta["member"])
                    info.size = path.stat().st_size
                    with open(path, "rb") as body:
                        tar.addfile(info, body)
                else:
                    tar.addfile(info)
        os.chmod(tmp, 0o644)  # as DV writes it (mkstemp made it 0600)
        os.replace(tmp, folder / COMBINED)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
