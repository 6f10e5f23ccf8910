"""Reading text, HTML and Markdown documents: paths, stdin, encodings, binary and empty input."""

from __future__ import annotations

import codecs
import io
import os
import sys
import zipfile
from pathlib import Path

import pytest

from longdoc import errors
from longdoc.document import Document, Page
from longdoc.ingest import read_document

# Real sentences, long enough to be a document, short enough to make detection hard.
SIMPLIFIED = "灯塔看守人把钥匙交给了他的女儿，她每天晚上都会点亮灯塔。春天来了，公园里的花都开了，孩子们在草地上放风筝。"
TRADITIONAL = "燈塔看守人把鑰匙交給了他的女兒，她每天晚上都會點亮燈塔。經濟學家認為，明年的通貨膨脹率可能會繼續下降。"
SHORT_SIMPLIFIED = "请在星期五之前把报告发给我，谢谢。"
SHORT_TRADITIONAL = "這是一個簡短的測試。"
FRENCH = "Le café était très animé ; les élèves répétaient leur leçon près de la fenêtre. Où est le garçon ?"
GERMAN = "Die Straße führt über die Brücke zum Bahnhof. Größere Häuser stehen dort drüben."
SPANISH = "El niño comió la piñata en España, ¿verdad? Cuesta 5 € — «barato»."


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_bytes(data: bytes, **kwargs: object) -> str:
    """Text of a document fed on stdin."""
    return read_document("-", stdin=io.BytesIO(data), **kwargs).text  # type: ignore[arg-type]


# ---- paths and stdin ---------------------------------------------------------------------------


def test_plain_text_file_is_one_page_numbered_1(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", b"First line.\nSecond line.\n")
    doc = read_document(path)
    assert doc.source == str(path)
    assert doc.kind == "text"
    assert [(page.number, page.text) for page in doc.pages] == [(1, "First line.\nSecond line.")]
    assert doc.warnings == ()


def test_stdin_is_read_when_source_is_dash() -> None:
    doc = read_document("-", stdin=io.BytesIO("Minutes of the meeting.\n".encode()))
    assert doc.source == "<stdin>"
    assert doc.text == "Minutes of the meeting."


def test_stdin_defaults_to_sys_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"piped text")))
    assert read_document("-").text == "piped text"


@pytest.mark.parametrize(
    ("make", "error", "exit_code", "phrase"),
    [
        (lambda p: p / "missing.txt", errors.InputNotFound, 3, "no such file"),
        (lambda p: p / "missing" / "x.txt", errors.InputNotFound, 3, "no such file"),
        (lambda p: p, errors.InputIsDirectory, 4, "is a directory"),
        (lambda p: write(p, "empty.txt", b""), errors.EmptyInput, 7, "empty"),
        (lambda p: write(p, "blank.txt", b" \n\t\r\n  \n"), errors.EmptyInput, 7, "empty"),
        (lambda p: write(p, "blank16.txt", " \n \n".encode("utf-16")), errors.EmptyInput, 7, "no text"),
        (lambda p: write(p, "ff.txt", b"\f\n\f  \f"), errors.EmptyInput, 7, "empty"),
    ],
)
def test_path_errors_name_the_file_and_carry_exit_code(
    tmp_path: Path, make, error: type[errors.LongdocError], exit_code: int, phrase: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(error) as caught:
        read_document(path)
    assert caught.value.exit_code == exit_code
    assert str(path) in str(caught.value)
    assert phrase in str(caught.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_input_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.txt", b"text")
    path.chmod(0)
    with pytest.raises(errors.InputUnreadable, match="permission denied") as caught:
        read_document(path)
    assert caught.value.exit_code == 5


@pytest.mark.parametrize(
    ("error", "phrase"),
    [
        (PermissionError(13, "Permission denied"), "permission denied"),
        (OSError(5, "Input/output error"), "cannot read: Input/output error"),
    ],
)
def test_os_errors_on_file_are_input_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, phrase: str
) -> None:
    path = write(tmp_path, "disk.txt", b"text")

    def failing_open(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(errors.InputUnreadable, match=f"disk.txt: {phrase}") as caught:
        read_document(path)
    assert caught.value.exit_code == 5


def test_io_error_on_stdin_is_input_unreadable() -> None:
    class Broken(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise OSError(5, "Input/output error")

    with pytest.raises(errors.InputUnreadable, match="<stdin>.*Input/output error"):
        read_document("-", stdin=Broken())  # type: ignore[arg-type]


def test_empty_stdin_is_empty_input() -> None:
    with pytest.raises(errors.EmptyInput, match="<stdin>"):
        read_document("-", stdin=io.BytesIO(b""))


# ---- binary input ------------------------------------------------------------------------------


def _zip_bytes(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(40)), "PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        (b"GIF89a\x01\x00\x01\x00", "GIF image"),
        (_zip_bytes({"a.txt": "hello"}), "ZIP archive (DOCX/EPUB?); convert it to PDF or text first"),
        (_zip_bytes({"[Content_Types].xml": "<x/>", "word/document.xml": "<w/>"}), "Word document"),
        (_zip_bytes({"mimetype": "application/epub+zip"}), "EPUB"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "gzip"),
        (b"\x7fELF\x02\x01\x01" + bytes(20), "ELF executable"),
        (b"{\\rtf1\\ansi Hello}", "RTF document"),
    ],
)
def test_known_binary_formats_are_named(data: bytes, phrase: str) -> None:
    with pytest.raises(errors.BinaryInput, match="looks like") as caught:
        read_bytes(data)
    assert phrase in str(caught.value)
    assert caught.value.exit_code == 6


def test_known_format_is_refused_whatever_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "report.txt", _zip_bytes({"word/document.xml": "<w/>"}))
    with pytest.raises(errors.BinaryInput, match="report.txt.*DOCX"):
        read_document(path)


def test_random_bytes_are_binary() -> None:
    data = bytes((i * 7919 + 13) % 256 for i in range(4096))
    with pytest.raises(errors.BinaryInput, match="binary"):
        read_bytes(data)


def test_nul_bytes_make_text_binary() -> None:
    with pytest.raises(errors.BinaryInput, match="NUL"):
        read_bytes(b"looks like text\x00but is not")


def test_control_characters_without_nul_are_binary() -> None:
    data = bytes(b % 31 + 1 for b in range(2000)).replace(b"\n", b"\x01").replace(b"\t", b"\x02")
    with pytest.raises(errors.BinaryInput, match="control characters"):
        read_bytes(data)


def test_coloured_log_is_still_text() -> None:
    line = "\x1b[31mERROR\x1b[0m disk almost full on /var after nightly backup\n"
    assert "ERROR disk almost full" in read_bytes((line * 50).encode())


# ---- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (SIMPLIFIED, "gb18030"),
        (SIMPLIFIED, "gbk"),
        (SHORT_SIMPLIFIED, "gb18030"),
        (TRADITIONAL, "big5"),
        (SHORT_TRADITIONAL, "big5"),
        (TRADITIONAL, "gb18030"),
        (FRENCH, "cp1252"),
        (FRENCH, "latin-1"),
        (GERMAN, "latin-1"),
        (SPANISH, "cp1252"),
    ],
)
def test_legacy_encodings_are_detected(text: str, encoding: str) -> None:
    assert read_bytes(text.encode(encoding)) == text


def test_big5_is_not_read_as_gbk_garbage() -> None:
    data = TRADITIONAL.encode("big5")
    garbage = data.decode("gb18030")  # decodes without error, which is what makes this hard
    assert garbage != TRADITIONAL
    assert read_bytes(data) == TRADITIONAL


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("天气很好。", "gb18030"),
        ("谢谢你。", "gbk"),
        ("你好，世界！", "gb18030"),
        ("你好，世界！", "big5"),
        ("中文", "gb18030"),
        ("今天下雨了。", "gb18030"),
        ("天氣很好。", "big5"),
    ],
)
def test_very_short_chinese_prefers_common_characters(text: str, encoding: str) -> None:
    # Regression: on a handful of characters charset-normalizer alone picks Big5 for GBK bytes
    # ("天气很好。" came out as "毞ァ竭疑﹝"); the common-character score must overrule it.
    assert read_bytes(text.encode(encoding)) == text


@pytest.mark.parametrize(
    ("bom_text", "expected"),
    [
        (codecs.BOM_UTF8 + "café 灯塔".encode(), "café 灯塔"),
        ("café 灯塔".encode("utf-16"), "café 灯塔"),
        (codecs.BOM_UTF16_BE + "café 灯塔".encode("utf-16-be"), "café 灯塔"),
        (codecs.BOM_UTF32_LE + "café 灯塔".encode("utf-32-le"), "café 灯塔"),
        (codecs.BOM_UTF32_BE + "café 灯塔".encode("utf-32-be"), "café 灯塔"),
    ],
)
def test_byte_order_marks_decide_the_encoding(bom_text: bytes, expected: str) -> None:
    assert read_bytes(bom_text) == expected


def test_utf8_wins_over_detection() -> None:
    assert read_bytes(f"{SIMPLIFIED}\n{FRENCH}".encode()) == f"{SIMPLIFIED}\n{FRENCH}"


def test_encoding_override_beats_detection() -> None:
    # UTF-8 bytes of "été" read as cp1252 on purpose: the user asked for it.
    assert read_bytes("été".encode(), encoding="cp1252") == "Ã©tÃ©"
    assert read_bytes(SHORT_SIMPLIFIED.encode("gbk"), encoding="gbk") == SHORT_SIMPLIFIED


def test_failing_encoding_override_names_encoding_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "abc灯塔".encode("gbk"))
    with pytest.raises(errors.DecodeError) as caught:
        read_document(path, encoding="utf-8")
    message = str(caught.value)
    assert "notes.txt" in message and "utf-8" in message and "offset 3" in message
    assert caught.value.exit_code == 11


@pytest.mark.parametrize("name", ["no-such-codec", "rot13"])
def test_unknown_or_non_text_encoding_is_decode_error(name: str) -> None:
    with pytest.raises(errors.DecodeError, match=name):
        read_bytes(b"hello", encoding=name)


def test_undetectable_bytes_fall_back_to_latin1_with_a_warning() -> None:
    # 0x81 is undefined in cp1252 and invalid alone in GB18030 and Big5; Latin-1 still reads it.
    data = ("Prix : 12 " * 200).encode("latin-1") + b"\x81 fin " + "très".encode("latin-1")
    doc = read_document("-", stdin=io.BytesIO(data))
    assert doc.text.endswith("fin très")
    assert any("Latin-1" in warning for warning in doc.warnings)


# ---- normalisation and pages -------------------------------------------------------------------


def test_line_ends_and_control_characters_are_normalised() -> None:
    text = read_bytes(b"one\r\ntwo\rthree\x07\x08\tcolumn\nfour\x7f, and a longer line to end")
    assert text == "one\ntwo\nthree\tcolumn\nfour, and a longer line to end"


def test_form_feeds_split_pages(tmp_path: Path) -> None:
    # pdftotext output: every page, the last included, ends with a form feed.
    path = write(tmp_path, "book.txt", b"Chapter one.\n\fChapter two.\n\f\f\nChapter four.\n\f")
    doc = read_document(path)
    # The blank third page is left out, but later pages keep their real numbers.
    assert [(p.number, p.text) for p in doc.pages] == [
        (1, "Chapter one."),
        (2, "Chapter two."),
        (4, "Chapter four."),
    ]
    assert doc.page_at(doc.text.index("four")) == 4


# ---- HTML and Markdown -------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>Ignored title</title><style>p { color: red }</style></head>
<body>
  <h1>Tom &amp; Jerry</h1>
  <p>The keeper
     climbs the&nbsp;stairs.</p><script>var secret = "do not show";</script>
  <ul><li>first</li><li>second</li></ul>
  <p>Line one<br>line two &lt;b&gt; &#20013;&#25991;</p>
</body></html>
"""


def test_html_is_reduced_to_visible_text_with_breaks(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, "page.html", PAGE.encode()))
    assert doc.kind == "html"
    assert doc.text == (
        "# Tom & Jerry\n\nThe keeper climbs the stairs.\n\nfirst\nsecond\n\nLine one\nline two <b> 中文"
    )
    for hidden in ("Ignored title", "color", "secret"):
        assert hidden not in doc.text


def test_html_headings_become_markdown_headings_that_name_a_passages_section() -> None:
    page = ("<h1> Records </h1><p>Intro.</p><h2>Players</h2><h3>Game</h3><p>13 by Curry.</p>"
            "<h2>Team records</h2><h3>Game</h3><p>58 by the Braves.</p><h2></h2><p>End.</p>")
    doc = read_document("-", stdin=io.BytesIO(f"<html><body>{page}</body></html>".encode()))
    assert doc.text.startswith("# Records\n\nIntro.\n\n## Players\n\n### Game\n\n13 by Curry.")
    assert "\n#\n" not in doc.text and not doc.text.endswith("#")  # an empty heading leaves no mark
    assert doc.section_at(doc.text.index("13 by")) == "Players › Game"  # the last two: the title is every passage's
    assert doc.section_at(doc.text.index("58 by")) == "Team records › Game"
    assert doc.section_at(doc.text.index("Intro")) == "Records"
    assert doc.section_at(0) == "Records"


def test_a_document_without_headings_has_no_sections() -> None:
    doc = Document(source="x", pages=(Page(1, "Plain text.\n\n#hashtag is not a heading."),))
    assert doc.section_at(len(doc.text) - 1) == ""


def test_html_is_sniffed_without_extension() -> None:
    doc = read_document("-", stdin=io.BytesIO(b"  <html><body><p>Hi <b>there</b></p></body></html>"))
    assert doc.kind == "html"
    assert doc.text == "Hi there"


def test_html_extension_without_doctype_is_html(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, "frag.htm", b"<div>a</div><div>b</div>"))
    assert (doc.kind, doc.text) == ("html", "a\n\nb")


def test_html_meta_charset_is_honoured() -> None:
    page = '<html><head><meta charset="gb2312"></head><body><p>会议将于下午三点举行。</p></body></html>'
    assert read_bytes(page.encode("gbk")) == "会议将于下午三点举行。"


def test_html_with_only_markup_is_empty(tmp_path: Path) -> None:
    with pytest.raises(errors.EmptyInput):
        read_document(write(tmp_path, "x.html", b"<html><head><script>x()</script></head></html>"))


@pytest.mark.parametrize("name", ["README.md", "notes.markdown"])
def test_markdown_is_kept_as_written(tmp_path: Path, name: str) -> None:
    source = "# Title\n\nSome *emphasis* and <br> a tag.\n"
    doc = read_document(write(tmp_path, name, source.encode()))
    assert (doc.kind, doc.text) == ("markdown", source.strip())


def test_utf8_cut_in_the_middle_of_a_character_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    path.write_bytes("雾溪镇茶路记。青岚山南麓有一座小镇。".encode()[:-2])
    document = read_document(str(path))
    assert document.text == "雾溪镇茶路记。青岚山南麓有一座小镇"
    assert any("middle of a character" in w for w in document.warnings)
