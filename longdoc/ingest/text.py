"""Turn the bytes of a text file into clean Unicode text: BOMs, UTF-8, detection, normalisation."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache

from longdoc.errors import BinaryInput, DecodeError
from longdoc.ingest.sniff import binary_advice, binary_format
from longdoc.script import CJK_PUNCTUATION, HAN_CHARACTER

# Longest BOMs first: the UTF-32 LE BOM begins with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# The legacy encodings longdoc is asked to read (see DESIGN.md). Restricting the detector to these
# stops it from picking exotic code pages (cp1250, shift_jis, utf_16 without BOM) for short text.
_CANDIDATES = ("gb18030", "big5", "cp1252")

# How much text the binary and plausibility checks look at; enough to judge, cheap on big files.
_SAMPLE_CHARS = 65536

# Coloured logs carry an ESC every few dozen characters; random bytes as text are ~20% controls.
_MAX_CONTROL_RATIO = 0.10
# Latin-1 decodes any byte, so it is only trusted when it yields almost no control characters.
_MAX_LATIN1_CONTROL_RATIO = 0.001

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_CONTROL_IN_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_LATIN1_RUN = re.compile(r"[\x80-\xff]{3,}")
_CJK_PUNCTUATION = re.compile(f"[{CJK_PUNCTUATION}]")
_LATIN1_SYMBOLS = frozenset("\xa0¡¢£¥§©«°±·»¿€™•")
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


@dataclass(frozen=True)
class DecodedText:
    """Text decoded from bytes, with the encoding used and any warning the user should see."""

    text: str
    encoding: str
    warning: str | None = None


def decode(data: bytes, source: str, encoding: str | None = None) -> DecodedText:
    """Decode bytes to normalised text: BOM, then UTF-8, then detection; or the given encoding."""
    if encoding is not None:
        return _checked(_decode_forced(data, source, encoding), source)
    bom = _bom_encoding(data)
    if bom is not None:
        text = _strict(data[len(bom[0]) :], bom[1])
        if text is not None:  # else the "BOM" was a coincidence: carry on as without one
            return _checked(DecodedText(text, bom[1]), source)
    _reject_binary_bytes(data, source)
    text = _strict(data, "utf-8")
    if text is not None:
        return _checked(DecodedText(text, "utf-8"), source)
    cut = _utf8_cut_short(data)
    if cut is not None:
        return _checked(DecodedText(cut, "utf-8", f"{source}: ends in the middle of a character (truncated file?); the partial character was dropped"), source)
    return _checked(_detect(data, source), source)


def _utf8_cut_short(data: bytes) -> str | None:
    """UTF-8 text whose last character was cut off (`head -c`, an interrupted download), minus
    that partial character; None when anything else is wrong with it."""
    for drop in (1, 2, 3):
        if len(data) > drop and data[-drop] & 0xC0 == 0xC0:  # the lead byte of the cut character
            return _strict(data[:-drop], "utf-8")
    return None


def normalise(text: str) -> str:
    """LF line ends, no control characters except newline, tab and form feed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Colour codes in captured logs would otherwise leave "[31m" behind once ESC is removed.
    return _CONTROL.sub("", _ANSI_ESCAPE.sub("", text)).lstrip("\ufeff")


def split_pages(text: str) -> list[str]:
    """Split on form feeds, which pdftotext and old printers use between pages."""
    pages = text.split("\f")
    # pdftotext ends every page, the last one included, with a form feed.
    while len(pages) > 1 and not pages[-1].strip():
        pages.pop()
    return pages


def _bom_encoding(data: bytes) -> tuple[bytes, str] | None:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return bom, name
    return None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _decode_forced(data: bytes, source: str, encoding: str) -> DecodedText:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DecodeError(f"{source}: unknown encoding {encoding!r}") from None
    try:
        text = data.decode(name)
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"{source}: cannot decode as {encoding} at byte offset {exc.start} "
            f"(byte 0x{data[exc.start]:02x}); try another --encoding"
        ) from None
    except (LookupError, UnicodeError, ValueError):  # codecs that are not text encodings: "rot13"
        raise DecodeError(f"{source}: {encoding!r} is not a text encoding") from None
    return DecodedText(text, name)


def _reject_binary_bytes(data: bytes, source: str) -> None:
    """Refuse binary data before the detector wastes time on it."""
    described = binary_format(data)
    if described is not None:
        raise BinaryInput(f"{source}: {binary_advice(described)}")
    if b"\x00" in data[: _SAMPLE_CHARS * 4]:
        raise BinaryInput(f"{source}: contains NUL bytes, so it is binary, not text")
    sample = data[:_SAMPLE_CHARS]
    if len(_CONTROL_IN_BYTES.findall(sample)) > _MAX_CONTROL_RATIO * len(sample):
        raise BinaryInput(f"{source}: is mostly control characters, so it is binary, not text")


def _checked(decoded: DecodedText, source: str) -> DecodedText:
    """Refuse decoded text that is binary in disguise (NULs, mostly control characters)."""
    sample = decoded.text[:_SAMPLE_CHARS]
    if "\x00" in sample:
        raise BinaryInput(f"{source}: contains NUL characters, so it is binary, not text")
    if _control_ratio(sample) > _MAX_CONTROL_RATIO:
        raise BinaryInput(f"{source}: is mostly control characters, so it is binary, not text")
    return DecodedText(normalise(decoded.text), decoded.encoding, decoded.warning)


def _control_ratio(text: str) -> float:
    return len(_CONTROL.findall(text)) / max(len(text), 1)


def _detect(data: bytes, source: str) -> DecodedText:
    """Pick the legacy encoding whose decoding reads most like real text."""
    declared = _declared_charset(data)
    if declared is not None:
        return declared
    decodings = [(name, text) for name in _ranked_candidates(data) if (text := _strict(data, name))]
    if decodings:
        # Stable sort: the detector's order breaks ties between equally plausible decodings.
        name, text = min(decodings, key=lambda pair: _oddness(pair[1]))
        return DecodedText(text, name)
    text = data.decode("latin-1")
    if _control_ratio(text[:_SAMPLE_CHARS]) <= _MAX_LATIN1_CONTROL_RATIO:
        return DecodedText(text, "latin-1", f"{source}: encoding not recognised; read as Latin-1")
    raise BinaryInput(
        f"{source}: not text in UTF-8, GB18030, Big5 or Latin-1; "
        "if it is text, name its encoding with --encoding"
    )


def _declared_charset(data: bytes) -> DecodedText | None:
    """An HTML page's own <meta charset>, when it names a codec that decodes the bytes."""
    match = _DECLARED_CHARSET.search(data[:4096])
    if match is None:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    # Pages declaring gb2312 are routinely GBK; gb18030 is a superset of both.
    name = "gb18030" if name in ("gb2312", "gbk") else name
    text = _strict(data, name)
    return DecodedText(text, name) if text else None


def _ranked_candidates(data: bytes) -> list[str]:
    """Candidate encodings, most likely first according to charset-normalizer."""
    # Imported here: only text that is not UTF-8 needs it, and it costs ~30 ms of every command's start.
    from charset_normalizer import from_bytes

    try:
        matches = from_bytes(data, cp_isolation=list(_CANDIDATES))
        ranked = [match.encoding for match in matches]
    except Exception:  # the detector is a heuristic; never let it take the read down
        ranked = []
    return ranked + [name for name in _CANDIDATES if name not in ranked]


def _oddness(text: str) -> float:
    """Share of non-ASCII characters a real document rarely contains; wrong decodings score high."""
    sample = text[:_SAMPLE_CHARS]
    foreign = [char for char in sample if ord(char) > 0x7F]
    if not foreign:
        return 0.0
    odd = sum(1 for char in foreign if not _expected(char))
    # Accented letters come alone or in pairs ("Größe"); CJK bytes read as cp1252 come in long runs.
    odd += sum(len(run) for run in _LATIN1_RUN.findall(sample))
    return odd / len(foreign)


@lru_cache(maxsize=None)
def _expected(char: str) -> bool:
    """Characters common in Chinese or Western European text."""
    code = ord(char)
    if 0xC0 <= code <= 0xFF:
        return char not in "×÷"  # accented letters
    if char in _LATIN1_SYMBOLS or 0x2010 <= code <= 0x206F:
        return True  # everyday symbols, typographic quotes and dashes
    if _CJK_PUNCTUATION.match(char):
        return True  # CJK and full-width punctuation
    return bool(HAN_CHARACTER.match(char)) and _common_hanzi(char)


def _common_hanzi(char: str) -> bool:
    """In GB2312 level 1 or Big5's frequent block: the ~3,700 simplified and ~5,400 traditional
    characters that make up nearly all running text, so rare ones flag a wrong decoding."""
    try:
        gb = char.encode("gb2312")
        if 0xB0 <= gb[0] <= 0xD7:
            return True
    except UnicodeEncodeError:
        pass
    try:
        big5 = char.encode("big5")
        return 0xA440 <= int.from_bytes(big5, "big") <= 0xC67E
    except UnicodeEncodeError:
        return False
