"""Build samples/report.pdf from samples/report_source.md.

Usage:  python samples/make_report_pdf.py

The source is a small Markdown subset:

    # Heading 1            section title (large)
    ## Heading 2           sub-heading
    ### Heading 3          minor heading
    - item                 bullet list item
    1. item                numbered list item
    | a | b | c |          table row (the first row is the header)
    \\newpage               page break
    **bold**, *italic*     inline emphasis
    blank line             paragraph break

Only fpdf2's core fonts are used, so the text must be Latin-1; the few
typographic characters that are not are replaced before layout.  The
creation date is fixed so that re-running the script gives identical bytes.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "report_source.md"
OUTPUT = HERE / "report.pdf"

TITLE = "Kestrel Valley Water Cooperative - Annual Report 2025"
CREATED = datetime(2026, 2, 26, 9, 0, 0, tzinfo=timezone.utc)

ACCENT = (24, 78, 119)  # dark blue for headings and rules
BODY_SIZE = 10.5
LINE_H = 5.2

REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2013": "-", "\u2014": " - ", "\u2026": "...", "\u00a0": " ",
    "\u2212": "-",
}


def latin1(text: str) -> str:
    for bad, good in REPLACEMENTS.items():
        text = text.replace(bad, good)
    return text.encode("latin-1", "replace").decode("latin-1")


def to_fpdf_markdown(text: str) -> str:
    """Convert **bold** / *italic* to fpdf2's markdown (**bold**, __italic__)."""
    return re.sub(r"(?<!\*)\*(?!\*)([^*]+?)(?<!\*)\*(?!\*)", r"__\1__", text)


class ReportPDF(FPDF):
    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, TITLE, align="R", new_x="LMARGIN", new_y="NEXT")
        self.set_draw_color(*ACCENT)
        self.set_line_width(0.3)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(6)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", "", 8.5)
        self.set_text_color(110, 110, 110)
        self.cell(0, 6, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def build(source: Path = SOURCE, output: Path = OUTPUT) -> int:
    lines = latin1(source.read_text(encoding="utf-8")).splitlines()

    pdf = ReportPDF(format="A4", unit="mm")
    pdf.set_creation_date(CREATED)
    pdf.set_title("Annual Report 2025")
    pdf.set_author("Kestrel Valley Water Cooperative")
    pdf.set_subject("Annual report of a fictional water cooperative (longdoc sample)")
    pdf.set_creator("samples/make_report_pdf.py")
    pdf.set_lang("en")
    pdf.set_margins(22, 18, 22)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.alias_nb_pages()
    pdf.add_page()

    paragraph: list[str] = []
    table: list[list[str]] = []
    first_page = True
    state = {"after_list": False}

    def flush_paragraph() -> None:
        if not paragraph:
            return
        text = " ".join(s.strip() for s in paragraph)
        paragraph.clear()
        pdf.set_font("Helvetica", "", BODY_SIZE)
        if first_page and pdf.get_y() < 120:
            pdf.set_font("Helvetica", "", 12)
        pdf.multi_cell(0, LINE_H, to_fpdf_markdown(text), markdown=True,
                       new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2.2)

    def flush_table() -> None:
        if not table:
            return
        rows = [r[:] for r in table]
        table.clear()
        ncols = len(rows[0])
        first_w = 2.2 if ncols > 2 else 1.6
        widths = (first_w,) + (1,) * (ncols - 1)
        pdf.set_font("Helvetica", "", 9.5)
        head = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=ACCENT)
        with pdf.table(col_widths=widths, line_height=5.6, text_align=("LEFT",) + ("RIGHT",) * (ncols - 1),
                       headings_style=head, cell_fill_color=(236, 242, 247), cell_fill_mode="ROWS",
                       borders_layout="HORIZONTAL_LINES") as t:
            for row in rows:
                r = t.row()
                for cell in row:
                    emph = "BOLD" if row[0].startswith(("Total", "Operating surplus")) else None
                    r.cell(cell, style=FontFace(emphasis=emph) if emph else None)
        pdf.ln(3)

    def bullet(text: str, marker: str) -> None:
        pdf.set_font("Helvetica", "", BODY_SIZE)
        indent = 6 if len(marker) < 3 else 8
        x0 = pdf.l_margin
        pdf.set_x(x0 + 2)
        pdf.cell(indent, LINE_H, marker)
        pdf.set_left_margin(x0 + 2 + indent)
        pdf.multi_cell(0, LINE_H, to_fpdf_markdown(text), markdown=True,
                       new_x="LMARGIN", new_y="NEXT")
        pdf.set_left_margin(x0)
        pdf.set_x(x0)
        pdf.ln(1.2)
        state["after_list"] = True

    for raw in lines:
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("|"):
            flush_paragraph()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            table.append(cells)
            continue
        flush_table()
        if not stripped:
            flush_paragraph()
            continue
        if not re.match(r"^(-|\d+\.)\s", stripped):
            if state["after_list"] and not stripped.startswith("#"):
                pdf.ln(2)
            state["after_list"] = False
        if stripped == "\\newpage":
            flush_paragraph()
            pdf.add_page()
            first_page = False
            continue
        m = re.match(r"^(#{1,3})\s+(.*)$", stripped)
        if m:
            flush_paragraph()
            level, text = len(m.group(1)), m.group(2)
            if level == 1:
                size = 24 if first_page else 17
                if first_page:
                    pdf.ln(30)
                pdf.set_font("Helvetica", "B", size)
                pdf.set_text_color(*ACCENT)
                pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
                pdf.set_draw_color(*ACCENT)
                pdf.set_line_width(0.6)
                pdf.line(pdf.l_margin, pdf.get_y() + 1.5, pdf.l_margin + 40, pdf.get_y() + 1.5)
                pdf.ln(6)
            elif level == 2:
                size = 18 if first_page else 12.5
                pdf.ln(1.5)
                pdf.set_font("Helvetica", "B", size)
                pdf.set_text_color(*ACCENT)
                pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2.5 if not first_page else 10)
            else:
                pdf.ln(first_page and 8 or 1)
                pdf.set_font("Helvetica", "B", 11)
                pdf.set_text_color(*ACCENT)
                pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1.5)
            pdf.set_text_color(0, 0, 0)
            continue
        m = re.match(r"^-\s+(.*)$", stripped)
        if m:
            flush_paragraph()
            bullet(m.group(1), chr(149))  # Latin-1/cp1252 bullet in core fonts
            continue
        m = re.match(r"^(\d+)\.\s+(.*)$", stripped)
        if m:
            flush_paragraph()
            bullet(m.group(2), m.group(1) + ".")
            continue
        paragraph.append(stripped)

    flush_paragraph()
    flush_table()
    pdf.output(str(output))
    return pdf.pages_count


def main() -> None:
    pages = build()
    size = OUTPUT.stat().st_size
    print(f"wrote {OUTPUT} ({pages} pages, {size} bytes)", file=sys.stderr)
    expected = SOURCE.read_text(encoding="utf-8").count("\\newpage") + 1
    if pages != expected:
        # Each section is meant to fill exactly one page, so that the page
        # numbers in the table of contents (and in tests) stay right.
        print(f"warning: expected {expected} pages; a section overflowed its page", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
