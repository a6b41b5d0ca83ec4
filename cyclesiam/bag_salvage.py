"""Truncated rosbag2 files (the recorder was killed): an MCAP without its footer, a SQLite file cut
short. `salvage_truncated` copies the complete part once into a temporary bag (removed at exit by the
process that made it) that `cyclesiam.sources` reads instead, with one `TruncatedBagWarning` per bag."""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import struct
import tempfile
import warnings
from pathlib import Path


class TruncatedBagWarning(UserWarning):
    """A bag's storage file ends early (recorder killed); only its complete messages are read."""


MCAP_MAGIC = b"\x89MCAP0\r\n"
_MCAP_DATA_END = b"\x0f" + struct.pack("<QI", 4, 0)  # DataEnd record, data section CRC 0 = not given
_MCAP_FOOTER = b"\x02" + struct.pack("<QQQI", 20, 0, 0, 0) + MCAP_MAGIC  # no summary: readers scan the data
_SALVAGED: dict[tuple, Path] = {}  # bag key -> readable copy (handed to DataLoader workers: adopt_salvaged)


def _storage_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.suffix in (".mcap", ".db3") and p.is_file())


def _bag_key(root: Path) -> tuple:
    if not root.is_dir():
        return (str(root),)
    return (str(root.resolve()), *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in _storage_files(root)))


def mcap_complete_end(path: Path) -> tuple[int, int]:
    """(byte offset where the last complete record of an MCAP data section ends, complete message and
    chunk records before it)."""
    size = path.stat().st_size
    pos, data_records = 8, 0
    with open(path, "rb") as f:
        if f.read(8) != MCAP_MAGIC:
            return 8, 0
        while True:
            head = f.read(9)
            if len(head) < 9:
                return pos, data_records
            (length,) = struct.unpack("<Q", head[1:])
            if head[0] == 0x0F or pos + 9 + length > size:  # DataEnd (summary follows) or a cut record
                return pos, data_records
            pos += 9 + length
            data_records += head[0] in (0x05, 0x06)  # Message, Chunk
            f.seek(pos)


def _mcap_truncated(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 8))
        return f.read(8) != MCAP_MAGIC


def _salvage_mcap(src: Path, dst: Path) -> int:
    """The complete records of `src` plus a DataEnd and a footer; returns the message/chunk records kept."""
    end, records = mcap_complete_end(src)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        remaining = end
        while remaining:
            block = fin.read(min(remaining, 1 << 24))
            if not block:
                break
            fout.write(block)
            remaining -= len(block)
        fout.write(_MCAP_DATA_END + _MCAP_FOOTER)
    return records


def _sqlite_truncated(path: Path) -> bool:
    """The header's page count x page size is larger than the file (SQLite then refuses the whole file)."""
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return False
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack(">I", header[28:32])[0]
    return pages * page_size > path.stat().st_size


def _salvage_sqlite(src: Path, dst: Path) -> int:
    """Every row SQLite can still read from the cut file, table by table in rowid order, into a new file;
    returns the messages kept."""
    con = sqlite3.connect(f"file:{src}?mode=ro&immutable=1", uri=True)
    out = sqlite3.connect(str(dst))
    kept = 0
    try:
        con.execute("PRAGMA writable_schema=ON")  # use the pages present instead of refusing the file
        schema = con.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                             "ORDER BY type = 'index'").fetchall()
        for kind, name, sql in schema:
            out.execute(sql)
            if kind == "table":
                copied = _copy_rows(con, out, name)
                kept += copied if name == "messages" else 0
        out.commit()
    finally:
        con.close()
        out.close()
    return kept


def _copy_rows(con: sqlite3.Connection, out: sqlite3.Connection, table: str) -> int:
    quoted = '"' + table.replace('"', '""') + '"'
    n = 0
    try:
        for row in con.execute(f"SELECT * FROM {quoted}"):
            out.execute(f"INSERT INTO {quoted} VALUES ({', '.join('?' * len(row))})", row)
            n += 1
    except sqlite3.DatabaseError:  # the first page past the cut: the rest of the table is gone
        pass
    return n


def salvage_truncated(root: Path) -> Path | None:
    """A readable temporary copy of a rosbag2 directory whose storage files were cut short (None when
    none was): complete MCAP records / readable SQLite rows. Made once per bag per process tree."""
    key = _bag_key(root)
    if key in _SALVAGED:
        return _SALVAGED[key]
    files = _storage_files(root)
    cut = [p for p in files if (_mcap_truncated(p) if p.suffix == ".mcap" else _sqlite_truncated(p))]
    if not cut:
        return None
    copy = Path(tempfile.mkdtemp(prefix="cyclesiam_truncated_bag_"))
    atexit.register(_remove_in_owner, copy, os.getpid())
    shutil.copy2(root / "metadata.yaml", copy / "metadata.yaml")
    kept, complete = [], 0
    for p in files:
        if p not in cut:
            os.symlink(p.resolve(), copy / p.name)
            continue
        n = _salvage_mcap(p, copy / p.name) if p.suffix == ".mcap" else _salvage_sqlite(p, copy / p.name)
        complete += n
        unit = "complete message/chunk records" if p.suffix == ".mcap" else "readable messages"
        kept.append(f"{p.name}: {n} {unit} in its first {p.stat().st_size} bytes")
    if complete == 0 and len(cut) == len(files):  # nothing to read: the caller reports the original error
        return None
    warnings.warn(f"{root}: truncated bag (recording cut short?); reading its complete part only ({'; '.join(kept)})",
                  TruncatedBagWarning, stacklevel=3)
    _SALVAGED[key] = copy
    return copy


def _remove_in_owner(path: Path, pid: int) -> None:
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)



def adopt_salvaged(root: Path, copy: Path) -> None:
    """Read `root` through `copy`, the salvaged copy another process of this tree made (a worker that got
    a source pickled): no second copy, no second warning; only its maker removes it."""
    if copy != root and copy.is_dir():
        _SALVAGED.setdefault(_bag_key(root), copy)


def readable_root(root: Path) -> Path:
    """The salvaged copy of `root` when one was made in this process tree, else `root`."""
    return _SALVAGED.get(_bag_key(root), root)
