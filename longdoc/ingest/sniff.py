"""Tell formats apart by their first bytes: PDF, known binary formats, HTML."""

from __future__ import annotations

import re

# (magic prefix, what the user is told it looks like). Checked in order; longer prefixes first
# where one is a prefix of another.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an icon file"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"PK\x07\x08", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"(\xb5/\xfd", "a zstd archive"),
    (b"7z\xbc\xaf'\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (DOC/XLS/PPT)"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Java class or Mach-O universal binary"),
    (b"\x00asm", "a WebAssembly module"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an Ogg audio/video file"),
    (b"fLaC", "a FLAC audio file"),
    (b"ID3", "an MP3 audio file"),
)

# ZIP-based office and e-book formats name themselves in their member paths or mimetype entry.
_ZIP_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"application/epub+zip", "an EPUB e-book"),
    (b"application/vnd.oasis.opendocument", "an OpenDocument file (ODT/ODS)"),
    (b"word/document.xml", "a Word document (DOCX)"),
    (b"xl/workbook.xml", "an Excel workbook (XLSX)"),
    (b"ppt/presentation.xml", "a PowerPoint file (PPTX)"),
)

# The PDF spec lets a few bytes of junk precede the header; readers look in the first kilobyte.
_PDF_HEADER_WINDOW = 1024

_HTML_START = re.compile(
    r"\A\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b",
    re.IGNORECASE | re.DOTALL,
)


def is_pdf(data: bytes) -> bool:
    """True when the bytes carry a PDF header."""
    return b"%PDF-" in data[:_PDF_HEADER_WINDOW]


def binary_format(data: bytes) -> str | None:
    """What a known binary format looks like to a user ("a PNG image"), or None."""
    head = data[:16]
    for magic, description in _MAGIC:
        if head.startswith(magic):
            return _zip_kind(data) if description == "a ZIP archive" else description
    if data[4:8] == b"ftyp":
        return "an MP4/MOV video or HEIC image"
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "a RIFF media file (WebP/WAV/AVI)"
    if data[257:262] == b"ustar":
        return "a tar archive"
    return None


def binary_advice(description: str) -> str:
    """The sentence a BinaryInput message ends with for a known format."""
    return f"looks like {description}; convert it to PDF or text first"


def looks_like_html(text: str) -> bool:
    """True when decoded text starts like an HTML document."""
    return _HTML_START.match(text[:4096]) is not None


def _zip_kind(data: bytes) -> str:
    for marker, description in _ZIP_KINDS:
        if marker in data:
            return f"{description} (a ZIP archive)"
    return "a ZIP archive (DOCX/EPUB?)"
