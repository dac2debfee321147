"""Upload checks per purpose: fine-tune text, campaign CSV/JSONL, gan-dataset image archives."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest
from PIL import Image

from core.archive_checks import check_image_archive
from core.errors import InvalidInput
from core.file_checks import check_campaign, check_upload, parse_finetune


def png(size=(8, 8), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def make_tar(members: dict[str, bytes], mode="w:gz", link: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            t.addfile(info)
    return buf.getvalue()


# -- fine-tune --------------------------------------------------------------------------------

def test_finetune_plain_text_and_jsonl():
    text = "\ufeff第一行\n\nsecond\n" + "more\n" * 8
    assert parse_finetune(text.encode())[:2] == [{"text": "第一行", "line": 1}, {"text": "second", "line": 3}]
    jsonl = b'{"text": "a", "lang": "en"}\n{"prompt": "p", "completion": "c"}\n' + b'{"text": "x"}\n' * 8
    assert parse_finetune(jsonl)[:2] == [{"text": "a", "line": 1}, {"prompt": "p", "completion": "c", "line": 2}]


# -- campaign ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    "product,audience,keywords\nShoes,runners,\"light, fast\"\n".encode(),
    "\ufeffproduct,notes\n茶叶,\"line one\nline two\"\n\n".encode(),
    b'{"product": "tea"}\n\n{"product": "coffee", "audience": "students"}\n',
])
def test_campaign_files_that_are_fine(data):
    check_campaign(data)


@pytest.mark.parametrize("data,fragment", [
    (b"product,,audience\nx,y,z\n", "header"),
    (b"product,product\nx,y\n", "header"),
    (b"product,audience\n", "no rows"),
    (b"\n\n", "no rows"),
    (b'{"product": "tea"}\n[1, 2]\n', "line 2"),
    (b'{"product": "tea"}\n{oops\n', "line 2"),
    (b"\xff\xfe\x00binary", "UTF-8"),
])
def test_campaign_files_that_are_refused(data, fragment):
    with pytest.raises(InvalidInput) as exc:
        check_campaign(data)
    assert fragment in exc.value.message and exc.value.param == "file"


# -- gan-dataset -------------------------------------------------------------------------------

def test_zip_with_class_folders_is_summarised():
    summary = check_image_archive(make_zip({"cats/a.png": png(), "dogs/b.png": png(), "dogs/c.jpg": b"broken",
                                            "README.txt": b"hello"}))
    assert (summary.images, summary.corrupt, summary.classes) == (2, 1, ["cats", "dogs"])


def test_tar_gz_of_images_is_accepted():
    assert check_image_archive(make_tar({"x/1.png": png(), "x/2.png": png()})).images == 2


@pytest.mark.parametrize("archive,fragment", [
    (make_zip({"../evil.png": png()}), "escapes"),
    (make_zip({"/etc/evil.png": png()}), "escapes"),
    (make_tar({"a/../../evil.png": png()}), "escapes"),
    (make_tar({"ok.png": png()}, link=("link.png", "/etc/passwd")), "link"),
    (make_zip({"bomb.png": b"\0" * (8 << 20)}), "too much data"),
    (make_zip({"notes.txt": b"no images here"}), "no readable"),
    (make_zip({"big.png": png((5000, 4000))}), "pixel limit"),
    (b"this is not an archive", "zip or tar"),
])
def test_bad_archives_are_refused(archive, fragment):
    with pytest.raises(InvalidInput) as exc:
        check_image_archive(archive)
    assert fragment in exc.value.message


def test_check_upload_dispatches_on_purpose():
    check_upload("gan-dataset", make_zip({"a.png": png()}))
    check_upload("campaign", b"a,b\n1,2\n")
    with pytest.raises(InvalidInput) as exc:
        check_upload("images", b"x")
    assert exc.value.param == "purpose"


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its data does not have (a decompression bomb's header)."""
    import struct
    import zlib

    data = bytearray(png())
    ihdr = data[12:29]  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_a_bomb_header_is_a_400_not_a_crash():
    with pytest.raises(InvalidInput) as exc:
        check_image_archive(make_zip({"bomb.png": png_claiming(20000, 20000)}))
    assert "pixel limit" in exc.value.message


def test_entry_count_is_refused_before_the_directory_is_parsed(monkeypatch):
    import core.archive_checks as checks

    monkeypatch.setattr(checks, "MAX_MEMBERS", 5)
    many = make_zip({f"{i}.png": png() for i in range(6)})
    with pytest.raises(InvalidInput) as exc:
        checks._refuse_huge_zip_directory(many)
    assert "more than 5 files" in exc.value.message
    with pytest.raises(InvalidInput):
        checks.check_image_archive(make_tar({f"{i}.png": png() for i in range(6)}))


def test_jsonl_lines_split_on_newlines_only():
    line = json.dumps({"text": "a\u2028b\x85c"}, ensure_ascii=False)
    examples = parse_finetune(((line + "\n") * 5 + (line + "\r\n") * 5).encode())
    assert [e["text"] for e in examples] == ["a\u2028b\x85c"] * 10
    check_campaign((line + "\n").encode())
