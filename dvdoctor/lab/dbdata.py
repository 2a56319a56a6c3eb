"""Data shaped like a database's, for measuring what deduplicated copies of DV's backups cost.

DV keeps its data in Db2 Big SQL: table spaces and indexes made of 8 KiB pages, and transaction
logs. A copy engine that deduplicates by content sees two things of that data: how well a page
compresses (Db2 table data is about 3:1 under gzip) and where a day's changes land. Zeros or pure
random bytes would get both wrong: zeros compress to nothing and random bytes not at all.

The model, and its parameters:
- A page is 8 KiB: a 32-byte header (page number, repeated) and 127 rows of 64 bytes, each row
  `ROW_RANDOM` random bytes (keys, numbers) followed by text taken from a small vocabulary pool,
  so gzip shrinks a page about 3:1.
- Of `--data-size`, `TABLE_SHARE` is table files and `INDEX_SHARE` index files (each
  `SEGMENT` bytes), the rest transaction log files of `LOG_FILE` bytes.
- A day's churn of P% rewrites P% of the data's bytes: `LOG_SHARE_OF_CHURN` of it appended to the
  logs (a full log file starts a new one and the oldest is removed: rotation keeps the size), the
  rest rewritten in place. Of that, `scattered` (0.1 by default) is single pages at random places
  and the remainder contiguous extents of 1-4 MiB in a few table and index files, as a day's
  reorganised tables and rebuilt indexes are. `uniform=True` is the worst case: every changed page
  is a single page at a random place, where chunk-level deduplication cannot help much.
"""

from __future__ import annotations

import os
import random
import stat
from dataclasses import dataclass
from pathlib import Path

PAGE = 8192
ROW = 64
ROW_RANDOM = 16
SEGMENT = 8 * 1024 * 1024
LOG_FILE = 4 * 1024 * 1024
TABLE_SHARE = 0.60
INDEX_SHARE = 0.25
LOG_SHARE_OF_CHURN = 0.15
EXTENT_MIN, EXTENT_MAX = 1024 * 1024, 4 * 1024 * 1024
#: Where the model's files live under DV's data claim (subPath 1.5.0, as DV's engine lays out Db2).
ROOT = "1.5.0/engine/bigsql/db2inst/NODE0000/DVDATA"
LOG_DIR = "1.5.0/engine/bigsql/db2inst/NODE0000/SQL00001/LOGSTREAM0001"
_POOL_SIZE = 2048


def _pool(seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz     0123456789,.") for _ in range(_POOL_SIZE))


class Pages:
    """A source of pages: each call gives new content, from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pool = _pool(7)  # the vocabulary is the database's, the same every day
        self.count = 0

    def page(self) -> bytes:
        """The draws of `randrange(0, n)` and `randbytes(ROW_RANDOM)` a row, made from `getrandbits` as
        CPython's Random makes them (the same bytes for a seed), without their calls a row: `lab create
        --data-size 1Gi` writes 131,072 pages of 127 rows."""
        getrandbits, pool = self.rng.getrandbits, self.pool
        self.count += 1
        rows = [self.count.to_bytes(8, "little") * 4]
        text = ROW - ROW_RANDOM
        below = _POOL_SIZE - text
        width = below.bit_length()
        for _ in range((PAGE - 32) // ROW):
            at = getrandbits(width)
            while at >= below:
                at = getrandbits(width)
            rows.append(getrandbits(ROW_RANDOM * 8).to_bytes(ROW_RANDOM, "little") + pool[at:at + text])
        return b"".join(rows).ljust(PAGE, b"\0")

    def run(self, nbytes: int) -> bytes:
        return b"".join(self.page() for _ in range(max(1, nbytes // PAGE)))


@dataclass(frozen=True)
class Layout:
    tables: tuple[Path, ...]
    indexes: tuple[Path, ...]
    log_dir: Path

    @property
    def segments(self) -> tuple[Path, ...]:
        return self.tables + self.indexes

    def logs(self) -> list[Path]:
        if not self.log_dir.is_dir() or self.log_dir.is_symlink():
            return []
        return sorted(p for p in self.log_dir.glob("S*.LOG") if not p.is_symlink() and p.is_file())


def _own(volume: Path, path: Path) -> bool:
    """Whether `path` is a regular file reached without a symbolic link anywhere below `volume`.

    Churn writes into what it finds; a link in the volume could name a file outside the lab, and
    churn must never write through one (nor follow a dangling one into a traceback).
    """
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return False
    except OSError:
        return False
    return os.path.realpath(path) == os.path.join(os.path.realpath(volume), os.path.relpath(path, volume))


def layout(volume: Path) -> Layout:
    root = volume / ROOT
    log_dir = volume / LOG_DIR
    return Layout(tuple(p for p in sorted(root.glob("T*/C*.DAT")) if _own(volume, p)),
                  tuple(p for p in sorted(root.glob("T*/C*.INX")) if _own(volume, p)),
                  log_dir if os.path.realpath(log_dir) == os.path.join(os.path.realpath(volume), LOG_DIR) else
                  volume / ".no-logs")


def write(volume: Path, size: int, seed: int = 150) -> int:
    """Fill DV's data claim (its folder `volume`) with `size` bytes of the model; returns bytes written."""
    pages = Pages(seed)
    root = volume / ROOT
    written = 0
    for share, suffix in ((TABLE_SHARE, "DAT"), (INDEX_SHARE, "INX")):
        todo = int(size * share)
        n = 0
        while todo > 0:
            part = min(SEGMENT, todo)
            path = root / f"T{n:07d}" / f"C0000000.{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pages.run(part))
            written += path.stat().st_size
            todo -= part
            n += 1
    log_dir = volume / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    todo, n = size - written, 0
    while todo >= PAGE:
        part = min(LOG_FILE, todo)
        path = log_dir / f"S{n:07d}.LOG"
        path.write_bytes(pages.run(part))
        written += path.stat().st_size
        todo -= part
        n += 1
    return written


def _open_nofollow(path: Path, flags: int):
    """The file itself, never what a link there names (a link put in between layout() and now fails)."""
    return os.fdopen(os.open(path, flags | os.O_NOFOLLOW), "r+b" if flags & os.O_RDWR else "ab")


def _rewrite(path: Path, offset: int, data: bytes) -> None:
    with _open_nofollow(path, os.O_RDWR) as f:
        f.seek(offset)
        f.write(data)


def _append_logs(lay: Layout, pages: Pages, nbytes: int) -> None:
    logs = lay.logs()
    if not logs:
        return
    while nbytes >= PAGE:
        current = logs[-1]
        room = LOG_FILE - current.stat().st_size
        if room < PAGE:  # the active log is full: archive it, start the next, drop the oldest
            current = lay.log_dir / f"S{int(current.stem[1:]) + 1:07d}.LOG"
            _open_nofollow(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT).close()
            logs.append(current)
            logs.pop(0).unlink()
            room = LOG_FILE
        part = min(room, nbytes)
        with _open_nofollow(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as f:
            f.write(pages.run(part))
        nbytes -= max(PAGE, part - part % PAGE)


def growth(volume: Path, percent: float, *, uniform: bool = False) -> int:
    """About how many bytes a churn adds to the disk: what it appends to the logs (rewrites take no room)."""
    lay = layout(volume)
    total = sum(p.stat().st_size for p in lay.segments) + sum(p.stat().st_size for p in lay.logs())
    return 0 if uniform else int(int(total * percent / 100) * LOG_SHARE_OF_CHURN)


def churn(volume: Path, percent: float, *, scattered: float = 0.1, uniform: bool = False,
          seed: int = 1) -> dict[str, int]:
    """Change `percent`% of the model's bytes as a day of use does; returns bytes changed by kind."""
    lay = layout(volume)
    segments = [(p, p.stat().st_size) for p in lay.segments]
    total = sum(s for _, s in segments) + sum(p.stat().st_size for p in lay.logs())
    if not segments:
        raise ValueError(f"{volume} holds no data of the model (create the lab with --data-size)")
    rng = random.Random(seed)
    pages = Pages(seed * 7919 + 1)
    budget = int(total * percent / 100)
    done = {"appended": 0, "runs": 0, "pages": 0}
    if uniform:
        log_part, single = 0, budget
    else:
        log_part = int(budget * LOG_SHARE_OF_CHURN)
        single = int((budget - log_part) * scattered)
    _append_logs(lay, pages, log_part)
    done["appended"] = log_part
    runs = budget - log_part - single
    while runs >= PAGE:
        path, size = rng.choice(segments)
        length = min(rng.randrange(EXTENT_MIN, EXTENT_MAX + 1, PAGE), runs, size)
        offset = rng.randrange(0, max(1, (size - length) // PAGE + 1)) * PAGE
        _rewrite(path, offset, pages.run(length))
        done["runs"] += length - length % PAGE
        runs -= max(PAGE, length - length % PAGE)
    for _ in range(single // PAGE):
        path, size = rng.choice(segments)
        _rewrite(path, rng.randrange(0, size // PAGE) * PAGE, pages.page())
        done["pages"] += PAGE
    return done
