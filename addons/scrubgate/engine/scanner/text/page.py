"""The page context the rules decide over: the lines, and how they sit together.

Pure geometry and text: no OCR, no pixels beyond one colour sample per line.
Rules ask a `Page` questions ("which lines share this row?", "is this line in
a corner?") instead of each working the layout out again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ...boxes import Box, union
from .read import Line


@dataclass(frozen=True)
class Zones:
    """Where identifiers live on medical screens, as fractions of the frame (and of
    the extent of its text, for photos where the screen sits inside the frame)."""
    band: float = 0.18  # top and bottom strips: patient banners, viewer overlays
    corner: float = 0.25  # left or right share of a strip that makes a corner


@dataclass
class Page:
    size: tuple[int, int]  # width, height of the frame
    lines: list[Line]
    # Per line: True when the line sits on a saturated colour (an EHR's patient
    # header band). Filled by the scanner from the pixels; rules only read it.
    on_colour: list[bool] = field(default_factory=list)
    zones: Zones = Zones()
    # Where barcodes were found (painted anyway): the print beside one on a label or a
    # wristband is its human-readable ID.
    codes: tuple[Box, ...] = ()

    # --- text size -------------------------------------------------------------

    @cached_property
    def text_height(self) -> float:
        """Median height of the lines read with some confidence (0 if none)."""
        heights = [ln.height for ln in self.lines if ln.confidence >= 0.6 and _alnum(ln.text) >= 2]
        return float(np.median(heights)) if heights else 0.0

    def is_text_sized(self, i: int, spread: float = 2.5) -> bool:
        """Shaped like the page's own lines: not a blob of anatomy or a big logo."""
        line = self.lines[i]
        x, y, w, h = line.box
        if line.height > 0.15 * min(self.size):
            return False
        if w < 1.2 * min(h, line.height):  # a square speck: an icon, a dot
            return False
        th = self.text_height
        return th == 0 or th / spread <= line.height <= th * spread

    # --- where a line is ----------------------------------------------------------

    @cached_property
    def frames(self) -> list[Box]:
        """The frame, and the extent of its readable text when that is screen-sized
        (on a photo of a screen, the screen's banner is the top of the text, not of
        the photo)."""
        out = [(0, 0, *self.size)]
        boxes = [ln.box for ln in self.lines if ln.confidence >= 0.6 and _alnum(ln.text) >= 2]
        if len(boxes) >= 3:
            extent = union(boxes)
            if extent[2] >= 0.4 * self.size[0] and extent[3] >= 0.4 * self.size[1]:
                out.append(extent)
        return out

    def in_band(self, i: int) -> bool:
        """In a top or bottom strip of the frame or of the text's extent."""
        cy = _centre(self.lines[i].box)[1]
        for _, top, _, height in self.frames:
            reach = self.zones.band * height
            if top - reach / 2 <= cy < top + reach or top + height - reach < cy <= top + height + reach / 2:
                return True
        return False

    def in_corner(self, i: int) -> bool:
        """In a band, and starting or ending near the left or right edge."""
        if not self.in_band(i):
            return False
        x, _, w, _ = self.lines[i].box
        for left, _, width, _ in self.frames:
            reach = self.zones.corner * width
            if x - left < reach or left + width - (x + w) < reach:
                return True
        return False

    # --- neighbours ---------------------------------------------------------------

    def same_row(self, i: int, j: int, tolerance: float = 0.6) -> bool:
        """Line j continues line i's row: its centre lies on line i's centre line,
        extended along i's slant (a photo taken at an angle tilts whole rows)."""
        a, b = self.lines[i], self.lines[j]
        (ax, ay), (bx, by) = _centre(a.box), _centre(b.box)
        slope = np.tan(np.radians(a.detection.angle)) if abs(a.detection.angle) < 20 else 0.0
        return abs(by - (ay + slope * (bx - ax))) < tolerance * min(a.height, b.height)

    def row(self, i: int) -> list[int]:
        """Lines sharing line i's row, left to right (i included)."""
        return sorted((j for j in range(len(self.lines)) if j == i or self.same_row(i, j)),
                      key=lambda j: self.lines[j].box[0])

    @cached_property
    def rows(self) -> list[list[int]]:
        """Rows of two or more lines (a banner bar across the top of a viewer)."""
        seen: set[int] = set()
        out = []
        for i in sorted(range(len(self.lines)), key=lambda i: self.lines[i].box[1]):
            if i in seen:
                continue
            r = [j for j in self.row(i) if j not in seen]
            seen.update(r)
            if len(r) > 1:
                out.append(r)
        return out

    @cached_property
    def stacks(self) -> list[list[int]]:
        """Lines stacked with a shared left or right edge (the corners of a viewer
        screen, a wristband's lines, a form's fields), top to bottom. Left and right
        edges are followed separately, so a line can be in one stack of each: a short
        "12Hz" right-aligned under a name must not cut the name's left-aligned column."""
        order = sorted(range(len(self.lines)), key=lambda i: self.lines[i].box[1])
        out: list[list[int]] = []
        for side in (0, 1):  # left edges, then right edges
            stacks: list[list[int]] = []
            for i in order:
                x, y, w, h = self.lines[i].box
                lh = self.lines[i].height
                for stack in stacks:
                    last = self.lines[stack[-1]]
                    lx, ly, lw, lhh = last.box
                    aligned = abs((x + side * w) - (lx + side * lw)) < 1.5 * lh
                    # The next line down: its centre at least half a line below the last
                    # one's (boxes of a tilted photo overlap, so centres, not edges), and a
                    # paragraph's gap (a line or more) ends the stack: a heading above a
                    # banner, or the next section below it, is not part of it
                    step = (y + h / 2) - (ly + lhh / 2)
                    gap = step - (lh + last.height) / 2  # between the lines themselves
                    if aligned and step >= 0.5 * min(lh, last.height) and gap < 1.0 * max(lh, last.height):
                        stack.append(i)
                        break
                else:
                    stacks.append([i])
            out += [s for s in stacks if len(s) > 1 and s not in out]
        return out

    def below(self, i: int, reach: float = 1.5) -> list[int]:
        """Lines directly under line i, overlapping it horizontally."""
        x, y, w, h = self.lines[i].box
        lh = self.lines[i].height
        out = []
        for j, other in enumerate(self.lines):
            ox, oy, ow, oh = other.box
            if j != i and 0 <= oy - (y + h) < reach * lh and ox < x + w + 2 * lh and ox + ow > x - 2 * lh:
                out.append(j)
        return out


def _centre(box: Box) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def _alnum(text: str) -> int:
    return sum(c.isalnum() for c in text)
