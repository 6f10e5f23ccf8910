"""Reading PDFs: page numbers, encryption, scans without text, damage, and the time limit."""

from __future__ import annotations

import io
import math
import os
import time
from pathlib import Path

import pytest
from fpdf import FPDF
from fpdf.enums import EncryptionMethod

from longdoc import errors
from longdoc.ingest import pdf as pdf_module
from longdoc.ingest import read_document
from longdoc.ingest.pdf import page_list, tidy

fork_only = pytest.mark.skipif(
    pdf_module._context().get_start_method() != "fork",
    reason="patching the child's extractor needs the fork start method",
)


def make_pdf(pages: list[str], **encryption: object) -> bytes:
    """A PDF with one page per string; a page given as "" holds only a filled rectangle."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 120, 80, style="F")  # like a scan: ink, but no text layer
    if encryption:
        pdf.set_encryption(owner_password="owner", **encryption)  # type: ignore[arg-type]
    return bytes(pdf.output())


def write(tmp_path: Path, data: bytes, name: str = "report.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


THREE_PAGES = [
    "The keeper climbs the stairs at dusk.",
    "The inter-\nnational committee met on Tuesday.",
    "The key is hidden under the third step.",
]


def test_pages_keep_their_numbers(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES)))
    assert doc.kind == "pdf"
    assert [page.number for page in doc.pages] == [1, 2, 3]
    assert "third step" in doc.pages[2].text
    assert doc.page_at(doc.text.index("third step")) == 3
    assert doc.warnings == ()


def test_pdf_on_stdin_is_recognised_by_content() -> None:
    doc = read_document("-", stdin=io.BytesIO(make_pdf(THREE_PAGES)))
    assert (doc.source, doc.kind, len(doc.pages)) == ("<stdin>", "pdf", 3)


def test_pdf_with_wrong_extension_is_still_a_pdf(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES), name="report.txt"))
    assert doc.kind == "pdf"


def test_extracted_text_is_tidied(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES)))
    assert "international committee" in doc.pages[1].text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("inter-\nnational", "international"),
        ("Jean-\nPaul", "Jean-\nPaul"),
        ("COVID-\n19", "COVID-\n19"),
        ("a    b\t\tc  \nd", "a b c\nd"),
        ("the \ufb01rst \ufb02oor", "the first floor"),
        ("one\fthree\n\n\n\nfour", "one\nthree\n\nfour"),
        ("broken \ud800 font map", "broken \ufffd font map"),
    ],
)
def test_tidy(raw: str, expected: str) -> None:
    assert tidy(raw) == expected


def test_page_list_is_compact() -> None:
    assert page_list([2, 5, 6, 7, 10]) == "2, 5-7, 10"


def test_image_only_pdf_needs_ocr(tmp_path: Path) -> None:
    with pytest.raises(errors.NoTextLayer, match="no text layer.*ocrmypdf") as caught:
        read_document(write(tmp_path, make_pdf(["", ""])))
    assert caught.value.exit_code == 9
    assert "report.pdf" in str(caught.value)


def test_scanned_pages_among_text_pages_are_reported(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, make_pdf(["Text on one.", "", "Text on three."])))
    assert [page.number for page in doc.pages] == [1, 3]
    assert any("page(s) 2 have no text layer" in warning for warning in doc.warnings)


def test_encrypted_pdf_without_password_is_refused(tmp_path: Path) -> None:
    data = make_pdf(THREE_PAGES, user_password="secret")
    with pytest.raises(errors.EncryptedPdf, match="report.pdf.*encrypted") as caught:
        read_document(write(tmp_path, data))
    assert caught.value.exit_code == 8


@pytest.mark.parametrize("method", [EncryptionMethod.RC4, EncryptionMethod.AES_256])
def test_pdf_encrypted_with_empty_user_password_opens(tmp_path: Path, method: EncryptionMethod) -> None:
    data = make_pdf(THREE_PAGES, user_password="", encryption_method=method)
    assert b"/Encrypt" in data
    doc = read_document(write(tmp_path, data))
    assert "third step" in doc.text


def test_truncated_pdf_is_corrupt(tmp_path: Path) -> None:
    data = make_pdf(THREE_PAGES)
    with pytest.raises(errors.CorruptInput, match="report.pdf.*damaged") as caught:
        read_document(write(tmp_path, data[: len(data) // 2]))
    assert caught.value.exit_code == 10


def test_pdf_header_alone_is_corrupt() -> None:
    with pytest.raises(errors.CorruptInput):
        read_document("-", stdin=io.BytesIO(b"%PDF-1.7\n"))


def test_daemonic_caller_reads_without_a_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pool workers are daemonic and may not start processes; reading must still work there.
    monkeypatch.setattr(pdf_module.multiprocessing.current_process(), "daemon", True)
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES)))
    assert [page.number for page in doc.pages] == [1, 2, 3]


def test_no_time_limit_is_accepted(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES)), pdf_timeout=math.inf)
    assert len(doc.pages) == 3


def test_pypdf_noise_does_not_reach_the_terminal(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = make_pdf(THREE_PAGES)
    with pytest.raises(errors.CorruptInput):
        read_document(write(tmp_path, data[: len(data) // 2]))  # pypdf logs "EOF marker not found"
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


# ---- failures inside the child process ---------------------------------------------------------


def _slow_from_page(slow_index: int):
    real = pdf_module._extract_page

    def extract(reader, index: int) -> str:  # type: ignore[no-untyped-def]
        if index >= slow_index:
            time.sleep(60)  # the child is killed long before this ends
        return real(reader, index)

    return extract


@fork_only
def test_timeout_keeps_pages_read_so_far(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_module, "_extract_page", _slow_from_page(1))
    started = time.monotonic()
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES)), pdf_timeout=0.5)
    assert time.monotonic() - started < 5
    assert [page.number for page in doc.pages] == [1]
    assert any("0.5 s limit" in w and "page(s) 2-3 not read" in w for w in doc.warnings)


@fork_only
def test_timeout_before_any_page_is_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_module, "_extract_page", _slow_from_page(0))
    started = time.monotonic()
    with pytest.raises(errors.CorruptInput, match="0.5 s limit"):
        read_document(write(tmp_path, make_pdf(THREE_PAGES)), pdf_timeout=0.5)
    assert time.monotonic() - started < 5


@fork_only
def test_unreadable_page_is_skipped_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pdf_module._extract_page

    def extract(reader, index: int) -> str:  # type: ignore[no-untyped-def]
        if index == 1:
            raise ValueError("broken content stream")
        return real(reader, index)

    monkeypatch.setattr(pdf_module, "_extract_page", extract)
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES)))
    assert [page.number for page in doc.pages] == [1, 3]
    assert any("unreadable PDF page(s) 2" in warning for warning in doc.warnings)


@fork_only
def test_every_page_unreadable_is_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def extract(reader, index: int) -> str:  # type: ignore[no-untyped-def]
        raise ValueError("broken content stream")

    monkeypatch.setattr(pdf_module, "_extract_page", extract)
    with pytest.raises(errors.CorruptInput, match="none of its 3 page"):
        read_document(write(tmp_path, make_pdf(THREE_PAGES)))


@fork_only
def test_crashing_reader_keeps_earlier_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pdf_module._extract_page

    def extract(reader, index: int) -> str:  # type: ignore[no-untyped-def]
        if index == 2:
            os._exit(1)  # like a segfault or the OOM killer: no exception, no goodbye
        return real(reader, index)

    monkeypatch.setattr(pdf_module, "_extract_page", extract)
    doc = read_document(write(tmp_path, make_pdf(THREE_PAGES)))
    assert [page.number for page in doc.pages] == [1, 2]
    assert any("crashed" in w and "page(s) 3 not read" in w for w in doc.warnings)
