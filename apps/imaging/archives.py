"""Safe extraction of uploaded zip archives.

Refused, as a whole, with a stable reason code: a corrupt or non-zip file (``corrupt``), too many members
(``too_many_members``), encrypted members (``encrypted``), absolute names (``absolute_path``), names that
climb out with ``..`` (``path_traversal``), symbolic links (``symlink``), nested archives (``nested_archive``:
refused rather than skipped, so a coordinator is told to unpack them instead of silently losing images), more
uncompressed bytes than allowed (``too_large``) and a total expansion ratio above the limit
(``compression_ratio``). Sizes are counted while streaming; the sizes in the zip headers are only used to
refuse early, never to accept. Directory entries and macOS metadata (``__MACOSX/``, ``.DS_Store``) are skipped.

Members are written under neutral names (``000001.dcm``, ...) in archive order, because member names often
carry patient names; nothing is ever written outside ``dest``, and on refusal everything written is removed.
"""

from __future__ import annotations

import logging
import stat
import zipfile
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

CORRUPT = "corrupt"
TOO_MANY_MEMBERS = "too_many_members"
ENCRYPTED = "encrypted"
ABSOLUTE_PATH = "absolute_path"
PATH_TRAVERSAL = "path_traversal"
SYMLINK = "symlink"
NESTED_ARCHIVE = "nested_archive"
TOO_LARGE = "too_large"
COMPRESSION_RATIO = "compression_ratio"

_CHUNK = 1024 * 1024
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".lz", ".lzma", ".z")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c",
                  b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd")
_TAR_MAGIC_OFFSET = 257
_JUNK_PARTS = frozenset({"__MACOSX"})
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


class ArchiveRejected(Exception):
    """The archive as a whole is refused; ``reason`` is a stable code, ``message`` names no member content."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def extract_archive(
    zip_path: Path, dest: Path, *, max_total_bytes: int, max_ratio: float, max_members: int
) -> list[Path]:
    """Extracts the regular files of ``zip_path`` into ``dest`` under neutral names, or refuses the whole archive."""
    dest = Path(dest)
    archive_size = max(Path(zip_path).stat().st_size, 1)
    written: list[Path] = []
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _checked_members(archive, max_total_bytes, max_members)
            dest.mkdir(parents=True, exist_ok=True)
            total = 0
            number = 0
            for info in members:
                number, sink = _new_file(dest, number)
                written.append(sink)
                total = _stream(archive, info, sink, total, archive_size, max_total_bytes, max_ratio)
    except ArchiveRejected as exc:
        _remove(written)
        logger.info("Refused an archive: %s", exc.reason)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as exc:
        _remove(written)
        logger.info("Refused an archive: %s (%s)", CORRUPT, type(exc).__name__)
        raise ArchiveRejected(CORRUPT, f"The archive is damaged or unsupported ({type(exc).__name__}).") from exc
    except BaseException:
        _remove(written)
        raise
    logger.info("Extracted %d archive members", len(written))
    return written


def _checked_members(archive: zipfile.ZipFile, max_total_bytes: int, max_members: int) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > max_members:
        raise ArchiveRejected(TOO_MANY_MEMBERS, f"The archive has {len(infos)} entries; the limit is {max_members}.")
    members = []
    announced = 0
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise ArchiveRejected(ABSOLUTE_PATH, "An entry has an absolute path.")
        parts = PurePosixPath(name).parts
        if ".." in parts:
            raise ArchiveRejected(PATH_TRAVERSAL, "An entry name climbs out of the archive with '..'.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveRejected(SYMLINK, "An entry is a symbolic link.")
        if info.flag_bits & 0x1:
            raise ArchiveRejected(ENCRYPTED, "An entry is encrypted; upload an unencrypted archive.")
        if info.is_dir() or _JUNK_PARTS.intersection(parts) or (parts and parts[-1] in _JUNK_NAMES):
            continue
        if name.lower().endswith(_ARCHIVE_SUFFIXES):
            raise ArchiveRejected(NESTED_ARCHIVE, "The archive contains another archive; unpack it first.")
        announced += info.file_size
        members.append(info)
    if announced > max_total_bytes:
        raise ArchiveRejected(TOO_LARGE, f"The archive announces {announced} bytes; the limit is {max_total_bytes}.")
    return members


def _new_file(dest: Path, number: int) -> tuple[int, Path]:
    """Creates the next free neutral name, never touching a file that was there before."""
    while True:
        number += 1
        target = dest / f"{number:06d}.dcm"
        try:
            target.touch(exist_ok=False)
        except FileExistsError:
            continue
        return number, target


def _stream(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    total: int,
    archive_size: int,
    max_total_bytes: int,
    max_ratio: float,
) -> int:
    """Copies one member, counting real bytes; returns the running total."""
    with archive.open(info) as source, target.open("wb") as sink:
        first = True
        while chunk := source.read(_CHUNK):
            if first and _looks_like_archive(chunk):
                raise ArchiveRejected(NESTED_ARCHIVE, "The archive contains another archive; unpack it first.")
            first = False
            total += len(chunk)
            if total > max_total_bytes:
                raise ArchiveRejected(TOO_LARGE, f"The archive unpacks to more than {max_total_bytes} bytes.")
            if total / archive_size > max_ratio:
                raise ArchiveRejected(
                    COMPRESSION_RATIO, f"The archive expands more than {max_ratio:g} times its size."
                )
            sink.write(chunk)
    return total


def _looks_like_archive(head: bytes) -> bool:
    if len(head) >= 132 and head[128:132] == b"DICM":
        return False
    if head.startswith(_ARCHIVE_MAGIC):
        return True
    return head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar"


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
