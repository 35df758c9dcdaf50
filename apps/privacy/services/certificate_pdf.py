"""The certificate's blocks laid out as an A4 portrait PDF with matplotlib (no browser, no extra dependency).

Text is embedded as TrueType (pdf.fonttype 42), so the PDF's text can be searched and extracted; tables wrap their
cells and repeat their header on each new page.
"""

from __future__ import annotations

import io
import textwrap

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from apps.privacy.services.certificate import Block

PAGE = (210 / 25.4, 297 / 25.4)  # A4 portrait, inches
MARGIN = 15 / 25.4
WIDTH = PAGE[0] - 2 * MARGIN
SIZES = {"h1": 14.0, "h2": 11.0, "p": 8.5, "list": 8.5, "table": 7.5}
CHAR_WIDTH = 0.56  # an average DejaVu Sans glyph, in ems; wrapping stays inside the column
LEADING = 1.3


class _Layout:
    def __init__(self, title: str) -> None:
        self.title = title
        self.pages: list[Figure] = []
        self.y = 0.0
        self._new_page()

    def _new_page(self) -> None:
        figure = Figure(figsize=PAGE)
        self.pages.append(figure)
        figure.text(MARGIN / PAGE[0], 0.5 * MARGIN / PAGE[1], f"{self.title} · page {len(self.pages)}",
                    fontsize=7, color="#666666", va="center")
        self.y = PAGE[1] - MARGIN

    def _room(self, height: float) -> None:
        if self.y - height < MARGIN:
            self._new_page()

    @staticmethod
    def _line_height(size: float) -> float:
        return size * LEADING / 72

    @staticmethod
    def _wrap(text: str, width_in: float, size: float) -> list[str]:
        chars = max(8, int(width_in * 72 / (size * CHAR_WIDTH)))
        return textwrap.wrap(text, chars, break_long_words=True, break_on_hyphens=False) or [""]

    def _text(self, x: float, y: float, text: str, size: float, **style) -> None:
        self.pages[-1].text(x / PAGE[0], y / PAGE[1], text, fontsize=size, va="top", ha="left", **style)

    def paragraph(self, text: str, size: float, indent: float = 0.0, bold: bool = False, space: float = 0.06) -> None:
        height = self._line_height(size)
        for line in self._wrap(text, WIDTH - indent, size):
            self._room(height)
            self._text(MARGIN + indent, self.y, line, size, weight="bold" if bold else "normal")
            self.y -= height
        self.y -= space

    def rule(self, y: float, colour: str = "#cccccc") -> None:
        self.pages[-1].add_artist(Line2D([MARGIN / PAGE[0], (PAGE[0] - MARGIN) / PAGE[0]], [y / PAGE[1]] * 2,
                                         color=colour, linewidth=0.4))

    def table(self, block: Block) -> None:
        size = SIZES["table"]
        height = self._line_height(size)
        widths = block.widths or [1 / len(block.header)] * len(block.header)
        columns = [w * WIDTH for w in widths]

        def row(cells: list[str], bold: bool) -> None:
            wrapped = [self._wrap(cell, col - 0.06, size) for cell, col in zip(cells, columns, strict=True)]
            lines = max(len(w) for w in wrapped)
            if self.y - lines * height < MARGIN:
                self._new_page()
                if not bold:
                    row(block.header, True)
            x = MARGIN
            for lines_of_cell, col in zip(wrapped, columns, strict=True):
                for i, line in enumerate(lines_of_cell):
                    self._text(x, self.y - i * height, line, size, weight="bold" if bold else "normal")
                x += col
            self.y -= lines * height + 0.03
            self.rule(self.y + 0.015, "#888888" if bold else "#dddddd")

        row(block.header, True)
        for cells in block.rows:
            row(cells, False)
        self.y -= 0.1


def render_pdf(title: str, blocks: list[Block]) -> bytes:
    layout = _Layout(title)
    for block in blocks:
        if block.kind == "h1":
            layout.paragraph(block.text, SIZES["h1"], bold=True, space=0.1)
        elif block.kind == "h2":
            layout._room(0.6)  # a heading is never the last line of a page
            layout.paragraph(block.text, SIZES["h2"], bold=True)
        elif block.kind == "p":
            layout.paragraph(block.text, SIZES["p"])
        elif block.kind == "list":
            for item in block.items:
                layout.paragraph("• " + item, SIZES["list"], indent=0.1, space=0.03)
        elif block.kind == "table":
            layout.table(block)
    buffer = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(buffer) as pdf:
        for page in layout.pages:
            pdf.savefig(page)
        info = pdf.infodict()
        info["Title"] = title
        info["Creator"] = "readerstudy"
    return buffer.getvalue()
