"""Hostile zips are refused whole, nothing is written outside dest, and a refusal leaves nothing behind."""

import io
import stat
import zipfile
from pathlib import Path

import pytest

from apps.imaging import archives
from apps.imaging.archives import ArchiveRejected, extract_archive

LIMITS = {"max_total_bytes": 20 * 1024 * 1024, "max_ratio": 200.0, "max_members": 50}
DICOM_LIKE = b"\0" * 128 + b"DICM" + bytes(range(256)) * 8


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return path


def _refused(tmp_path: Path, zip_path: Path, reason: str, **limits) -> Path:
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    sentinel = dest / "000001.dcm"
    sentinel.write_bytes(b"was here before")
    with pytest.raises(ArchiveRejected) as caught:
        extract_archive(zip_path, dest, **{**LIMITS, **limits})
    assert caught.value.reason == reason
    assert sorted(p.name for p in dest.iterdir()) == ["000001.dcm"], "only what was there before stays"
    assert sentinel.read_bytes() == b"was here before"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["dest", zip_path.name])
    return dest


def test_a_normal_archive_is_extracted_under_neutral_names(tmp_path):
    directory = zipfile.ZipInfo("SMITH_JOHN/")
    zip_path = _zip(
        tmp_path / "upload.zip",
        [
            (directory, b""),
            ("SMITH_JOHN/T2/IM1.dcm", DICOM_LIKE + b"1"),
            ("SMITH_JOHN/T2/IM2.dcm", DICOM_LIKE + b"2"),
            ("__MACOSX/SMITH_JOHN/._IM1.dcm", b"resource fork"),
            ("SMITH_JOHN/.DS_Store", b"junk"),
        ],
    )
    paths = extract_archive(zip_path, tmp_path / "out", **LIMITS)
    assert [p.name for p in paths] == ["000001.dcm", "000002.dcm"]
    assert [p.read_bytes()[-1:] for p in paths] == [b"1", b"2"]
    assert all(p.parent == tmp_path / "out" for p in paths)
    assert "SMITH" not in "".join(str(p) for p in (tmp_path / "out").rglob("*"))


def test_an_existing_file_in_dest_is_never_overwritten(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "000001.dcm").write_bytes(b"old")
    paths = extract_archive(_zip(tmp_path / "a.zip", [("x.dcm", DICOM_LIKE)]), dest, **LIMITS)
    assert [p.name for p in paths] == ["000002.dcm"]
    assert (dest / "000001.dcm").read_bytes() == b"old"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape.dcm", archives.PATH_TRAVERSAL),
        ("series/../../escape.dcm", archives.PATH_TRAVERSAL),
        ("..\\..\\escape.dcm", archives.PATH_TRAVERSAL),
        ("/etc/escape.dcm", archives.ABSOLUTE_PATH),
        ("C:/Windows/escape.dcm", archives.ABSOLUTE_PATH),
    ],
)
def test_hostile_names(tmp_path, name, reason):
    zip_path = _zip(tmp_path / "hostile.zip", [("ok.dcm", DICOM_LIKE), (zipfile.ZipInfo(name), DICOM_LIKE)])
    _refused(tmp_path, zip_path, reason)
    assert not (tmp_path.parent / "escape.dcm").exists()


def test_symlink(tmp_path):
    link = zipfile.ZipInfo("series/link.dcm")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    zip_path = _zip(tmp_path / "link.zip", [("ok.dcm", DICOM_LIKE), (link, b"/etc/passwd")])
    _refused(tmp_path, zip_path, archives.SYMLINK)


def test_nested_archive_by_name(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("IM1.dcm", DICOM_LIKE)
    zip_path = _zip(tmp_path / "outer.zip", [("ok.dcm", DICOM_LIKE), ("more/inner.ZIP", inner.getvalue())])
    _refused(tmp_path, zip_path, archives.NESTED_ARCHIVE)


@pytest.mark.parametrize("head", [b"PK\x03\x04rest", b"\x1f\x8b\x08\x00rest", b"\0" * 257 + b"ustar\x0000"])
def test_nested_archive_by_content(tmp_path, head):
    zip_path = _zip(tmp_path / "outer.zip", [("ok.dcm", DICOM_LIKE), ("IM2", head + b"\0" * 600)])
    _refused(tmp_path, zip_path, archives.NESTED_ARCHIVE)


def test_decompression_bomb_refused_on_its_announced_size(tmp_path):
    zip_path = _zip(tmp_path / "bomb.zip", [("zeros.dcm", b"\0" * (30 * 1024 * 1024))])
    assert zip_path.stat().st_size < 100_000
    _refused(tmp_path, zip_path, archives.TOO_LARGE)


def test_decompression_bomb_refused_on_ratio_while_streaming(tmp_path):
    zip_path = _zip(tmp_path / "bomb.zip", [("zeros.dcm", b"\0" * (30 * 1024 * 1024))])
    _refused(tmp_path, zip_path, archives.COMPRESSION_RATIO, max_total_bytes=10**9, max_ratio=100.0)


def test_decompression_bomb_with_a_lying_header(tmp_path):
    """The header claims 1000 bytes: the claim passes the early check, the stream does not."""
    data = bytearray(_zip(tmp_path / "liar.zip", [("zeros.dcm", b"\0" * (30 * 1024 * 1024))]).read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    local = data.index(b"PK\x03\x04")
    data[local + 22 : local + 26] = (1000).to_bytes(4, "little")
    zip_path = tmp_path / "liar.zip"
    zip_path.write_bytes(bytes(data))
    _refused(tmp_path, zip_path, archives.CORRUPT, max_total_bytes=5 * 1024 * 1024)


def test_too_many_members(tmp_path):
    zip_path = _zip(tmp_path / "many.zip", [(f"IM{i}.dcm", DICOM_LIKE) for i in range(6)])
    _refused(tmp_path, zip_path, archives.TOO_MANY_MEMBERS, max_members=5)


def test_encrypted_member(tmp_path):
    data = bytearray(_zip(tmp_path / "secret.zip", [("IM1.dcm", DICOM_LIKE)]).read_bytes())
    data[data.index(b"PK\x03\x04") + 6] |= 0x1
    data[data.index(b"PK\x01\x02") + 8] |= 0x1
    zip_path = tmp_path / "secret.zip"
    zip_path.write_bytes(bytes(data))
    _refused(tmp_path, zip_path, archives.ENCRYPTED)


def test_corrupt_and_non_zip_files(tmp_path):
    not_zip = tmp_path / "photo.zip"
    not_zip.write_bytes(b"\x89PNG not a zip at all" * 50)
    _refused(tmp_path, not_zip, archives.CORRUPT)
    not_zip.unlink()
    good = _zip(tmp_path / "cut.zip", [("IM1.dcm", DICOM_LIKE * 50), ("IM2.dcm", bytes(range(256)) * 400)])
    good.write_bytes(good.read_bytes()[:-200])
    _refused(tmp_path, good, archives.CORRUPT)


def test_crc_mismatch_is_corrupt(tmp_path):
    data = bytearray(_zip(tmp_path / "crc.zip", [("IM1.dcm", DICOM_LIKE * 20)]).read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 16] ^= 0xFF
    local = data.index(b"PK\x03\x04")
    data[local + 14] ^= 0xFF
    zip_path = tmp_path / "crc.zip"
    zip_path.write_bytes(bytes(data))
    _refused(tmp_path, zip_path, archives.CORRUPT)
