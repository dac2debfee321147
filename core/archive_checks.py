"""Checks for uploaded image archives (`gan-dataset`): zip or tar of PNG/JPEG, optionally in class folders.

Refused with a 400: not an archive, members whose paths escape (`../`, absolute), links and
devices, too many members, too much uncompressed data or too high a compression ratio (zip
bombs), images over the pixel limit, or no readable image at all. Corrupt images are only
counted here; training skips them and reports the count.
"""

from __future__ import annotations

import io
import struct
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from core.errors import InvalidInput

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_MEMBERS = 20_000
MAX_UNCOMPRESSED = 512 << 20
MAX_RATIO = 100  # uncompressed / compressed, over the whole archive
MAX_PIXELS = 4096 * 4096
MAX_IMAGE_BYTES = 64 << 20  # read no more of one member than this, whatever its header claims


@dataclass
class ArchiveSummary:
    images: int
    corrupt: int
    classes: list[str]


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise InvalidInput(f"Archive member {name!r} escapes the archive (absolute path or '..')", param="file")
    return path


def _refuse_huge_zip_directory(data: bytes) -> None:
    """Read the entry count from the end-of-central-directory record before ZipFile parses it all."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if eocd >= 0 and len(data) >= eocd + 12:
        (entries,) = struct.unpack("<H", data[eocd + 10:eocd + 12])
        if entries > MAX_MEMBERS:  # 0xFFFF (ZIP64) is over the limit too
            raise InvalidInput(f"The archive has more than {MAX_MEMBERS} files", param="file")


def _members(data: bytes):
    """(name, size, opener) for each regular file; raises for links, devices and bad paths."""
    buf = io.BytesIO(data)
    if zipfile.is_zipfile(buf):
        _refuse_huge_zip_directory(data)
        archive = zipfile.ZipFile(buf)
        for info in archive.infolist():
            _safe_name(info.filename)
            if info.is_dir():
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise InvalidInput(f"Archive member {info.filename!r} is a symbolic link", param="file")
            yield info.filename, info.file_size, lambda i=info: archive.open(i).read(MAX_IMAGE_BYTES)
        return
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError:
        raise InvalidInput("A gan-dataset file must be a zip or tar archive of PNG or JPEG images",
                           param="file") from None
    for member in archive:  # one header at a time: the caller stops at the limits
        _safe_name(member.name)
        if member.isdir():
            continue
        if not member.isfile():
            raise InvalidInput(f"Archive member {member.name!r} is a link or device, not a file", param="file")
        yield member.name, member.size, lambda m=member: archive.extractfile(m).read(MAX_IMAGE_BYTES)


def image_members(data: bytes):
    """(path, read) for each PNG/JPEG member, enforcing the member-count and expansion limits."""
    total = 0
    for count, (name, size, read) in enumerate(_members(data), start=1):
        if count > MAX_MEMBERS:
            raise InvalidInput(f"The archive has more than {MAX_MEMBERS} files", param="file")
        total += size
        if total > MAX_UNCOMPRESSED or total > MAX_RATIO * max(len(data), 1):
            raise InvalidInput("The archive expands to too much data (limit "
                               f"{MAX_UNCOMPRESSED >> 20} MiB, ratio {MAX_RATIO}:1)", param="file")
        path = PurePosixPath(name)
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            yield path, read


def check_image_archive(data: bytes) -> ArchiveSummary:
    from PIL import Image, UnidentifiedImageError

    images, corrupt, classes = 0, 0, set()
    for path, read in image_members(data):
        name = str(path)
        try:
            # Pillow's own bomb guard fires before ours for absurd sizes: the same answer.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(read()))  # reads the header only
            with img:
                if img.width * img.height > MAX_PIXELS:
                    raise InvalidInput(f"{name}: {img.width}x{img.height} is over the {MAX_PIXELS}-pixel limit",
                                       param="file")
                img.verify()
            images += 1
            if len(path.parts) > 1:
                classes.add(path.parts[-2])
        except Image.DecompressionBombError:
            raise InvalidInput(f"{name}: over the {MAX_PIXELS}-pixel limit", param="file") from None
        except (UnidentifiedImageError, OSError, SyntaxError):
            corrupt += 1
    if images == 0:
        raise InvalidInput("The archive holds no readable PNG or JPEG image", param="file")
    return ArchiveSummary(images, corrupt, sorted(classes))
