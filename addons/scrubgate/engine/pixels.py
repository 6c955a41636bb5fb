"""The pixel scanner: find identifiers drawn into a picture and paint them out.

Format-blind: it gets `raster.Decoded` frames and edits them in place. For
each distinct frame it looks for

- burned-in text (ocr.read_page), judged line by line by the recognizers: a
  line carrying an identifier is redacted whole (a banner line leaks through
  the words around a missed one), technical lines are kept;
- barcodes, QR codes and DataMatrix: always redacted;
- faces, on photographs: blurred, refused, or kept, as the policy says.

Redaction is a solid fill over a padded box. A blur over text can be undone
(deconvolution, or simply reading it through the blur); a fill cannot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from . import barcodes, faces, hints, ocr
from .boxes import Box, gap, overlap, union
from .raster import Decoded
from .verdict import Finding, Refused


# A gazetteer hit on a line Tesseract itself barely believes is usually a
# texture read as letters; labels, checksums and patterns are trusted as is.
_WEAK_SPAN = 0.7
_MIN_LINE_CONFIDENCE_FOR_WEAK = 55.0
_ALL_TEXT_MIN_CONFIDENCE = 45.0
_MIN_LABEL_CONFIDENCE = 60.0
_MIN_LINES_FOR_A_DOCUMENT = 3
_MIN_LINE_CONFIDENCE = 40.0  # mean word confidence below which a line is not believed at all


@dataclass(frozen=True)
class PixelOptions:
    text: str = "identifiers"  # "identifiers", "all" or "none" (barcodes and faces still apply)
    faces: str = "blur"  # "blur", "block" or "keep"
    languages: str = ocr.DEFAULT_LANGUAGES
    # Values known to identify this patient (a DICOM header's name, IDs, dates),
    # as (kind, value): OCR'd lines that fuzzily contain one are redacted.
    # Held in memory for the scan only; never logged or reported.
    hints: tuple[tuple[str, str], ...] = ()


@dataclass
class FrameResult:
    fills: list[Box] = field(default_factory=list)  # solid redactions
    blurs: list[Box] = field(default_factory=list)  # face blurs
    findings: list[Finding] = field(default_factory=list)


def scan(decoded: Decoded, options: PixelOptions) -> tuple[bool, list[Finding]]:
    """Scan and redact every frame of `decoded` in place. Returns (changed, findings).

    Identical frames (a GIF that holds still, TIFF pages of one scan) are read once.
    """
    findings: list[Finding] = []
    changed = False
    seen: dict[str, FrameResult] = {}
    for index, frame in enumerate(decoded.frames):
        digest = hashlib.blake2b(frame.tobytes(), digest_size=16).hexdigest()
        result = seen.get(digest)
        if result is None:
            result = scan_frame(frame, options, decoded.photographic)
            seen[digest] = result
            findings.extend(result.findings)
        if result.fills or result.blurs:
            redact(frame, result)
            changed = True
    return changed, findings


def scan_frame(frame: Image.Image, options: PixelOptions, photographic: bool) -> FrameResult:
    result = FrameResult()
    codes = barcodes.find(frame)
    for box, family in codes:
        result.fills.append(pad(box, frame.size, 0.08))
        result.findings.append(Finding("barcode", "pixels", f"barcode.{family}", box, 1.0))
    if options.text != "none":
        # Bars and modules wreck Tesseract's page layout (a wristband's printed
        # name is not read at all next to its Code128), so OCR sees them blanked.
        page = _blank(frame, [b for b, _ in codes]) if codes else frame
        for box, finding in text_regions(page, options, photographic):
            if box is not None:
                result.fills.append(box)
            if finding is not None:
                result.findings.append(finding)
    if photographic and options.faces != "keep":
        found = faces.find(frame)
        if found and options.faces == "block":
            raise Refused("identifiable_face", "the picture shows a face; the policy blocks those")
        for box in found:
            result.blurs.append(box)
            result.findings.append(Finding("face", "pixels", "face.haar", box, 0.8))
    result.fills = merge_boxes(result.fills)
    result.findings = dedupe(result.findings)
    return result


def _blank(frame: Image.Image, boxes: list[Box]) -> Image.Image:
    gray = frame.convert("L")
    fill = int(np.median(np.asarray(gray)))
    draw = ImageDraw.Draw(gray)
    for x, y, w, h in boxes:
        draw.rectangle((x, y, x + w, y + h), fill=fill)
    return gray


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Several passes read the same line: one finding per kind and place, the surest one."""
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: -f.confidence):
        if f.box is None or not any(k.kind == f.kind and k.box is not None and overlap(k.box, f.box) > 0.5
                                    for k in kept):
            kept.append(f)
    return kept


def text_regions(frame: Image.Image, options: PixelOptions, photographic: bool):
    """Yield (padded box to fill, Finding or None) for the text that must go."""
    from .recognizers import dangling_label, find_identifiers, is_technical, labelled_kind

    page = ocr.read_page(frame, photographic=photographic, languages=options.languages)
    # Regions no pass could read join the lines as blank pieces: inside a patient
    # banner they are presumed identifiers (fail closed), elsewhere ignored.
    lines = page.lines + [ocr.Line([ocr.Word("", box, 0.0)], "unread") for box in page.unread]

    def fill(box: Box) -> Box:
        return pad(snap(box, page.regions), frame.size)

    if options.text == "all":
        for box in page.regions:
            yield pad(box, frame.size), None
        for line in lines:
            words = [w for w in line.words if w.confidence >= _ALL_TEXT_MIN_CONFIDENCE
                     and any(c.isalnum() for c in w.text)]
            for w in words:
                yield pad(w.box, frame.size), None
            if words:
                yield None, Finding("free_text", "pixels", "text.all", union([w.box for w in words]),
                                    round(min(w.confidence for w in words) / 100, 2))
        return
    flagged: set[int] = set()
    # A label is only trusted when Tesseract is sure of it: "Ph" or "Dr" read
    # at 40% confidence from a texture is noise, not a form field.
    dangling = [dangling_label(line.text) if line.confidence >= _MIN_LABEL_CONFIDENCE else None
                for line in lines]
    for i, line in enumerate(lines):
        text = line.text
        spans = [s for s in find_identifiers(text) if _believable(s, line)]
        if spans:
            flagged.add(i)
            offsets = line.offsets()
            yield fill(line.box), None
            for s in spans:
                boxes = [w.box for w, (a, b) in zip(line.words, offsets) if a < s.end and b > s.start]
                yield None, Finding(s.kind, "pixels", s.recognizer, union(boxes) if boxes else line.box,
                                    round(s.confidence, 2))
        elif options.hints and (kind := hints.match(text, options.hints)):
            # The header's own values, in whatever format the screen shows them.
            flagged.add(i)
            yield fill(line.box), None
            yield None, Finding(kind, "pixels", "dicom.header_value", line.box, 0.9)
        elif line.confidence >= _MIN_LINE_CONFIDENCE_FOR_WEAK and (kind := labelled_kind(text)):
            # "Date de naissance: Zar": a form field whose value was misread.
            flagged.add(i)
            yield fill(line.box), None
            yield None, Finding(kind, "pixels", "label.value_unread", line.box, 0.6)
        kind = dangling[i]
        if kind is not None:
            # "Patient Name:" with the value in the next box: right of it, or below
            # it -- or, under a table header, every cell of its column.
            for other in _value_candidates(i, lines, dangling):
                flagged.add(lines.index(other))
                yield fill(other.box), None
                yield None, Finding(kind, "pixels", "label.dangling", other.box, 0.7)
    # A patient banner is a block of identifier lines, stacked in a corner or
    # strung along a bar. A piece of text inside such a banner that no
    # recognizer understood (a name in an unusual form, a hospital without
    # "Hospital" in its name, a misread ID) is far more likely another
    # identifier than anything else, unless it is plainly technical.
    readable = [ln for ln in page.lines if ln.confidence >= 70 and _has_content(ln.text)]
    if photographic and len(readable) >= _MIN_LINES_FOR_A_DOCUMENT:
        text_height = float(np.median([ln.height for ln in readable]))
        # On a photo of a screen or a page, text that no pass could read is text
        # we cannot vouch for: small print behind moire, a tilted worklist. Fail
        # closed and paint it. Photos without legible text (a wound, a face, a
        # textured background) are left alone: their "regions" are not print.
        # Only what is shaped like the page's own lines, and sits among them
        # (next to read text, or next to a piece that does): anatomy and other
        # texture inside the picture also makes "regions", and must stay.
        shaped = [b for b in page.unread if b[2] >= 2.5 * b[3] and 0.6 * text_height <= b[3] <= 1.6 * text_height]
        anchors = [ln.box for ln in readable]
        chosen: list[Box] = []
        grew = True
        while grew:
            grew = False
            for b in shaped:
                if b not in chosen and any(gap(b, a) <= 2.5 * text_height for a in anchors + chosen):
                    chosen.append(b)
                    grew = True
        for box in chosen:
            yield pad(box, frame.size), None
            yield None, Finding("free_text", "pixels", "text.unreadable", box, 0.5)
    physical = _physical(lines)  # passes read the same line several times: count it once
    boxes = [union([lines[i].box for i in p]) for p in physical]
    hit = [any(i in flagged for i in p) for p in physical]
    for axis, groups in ((1, _blocks(boxes)), (0, _rows(boxes))):
        for group in groups:
            group = sorted(group, key=lambda g: boxes[g][axis])
            heights = [boxes[g][3] for g in group if hit[g]]
            if not heights:
                continue
            line_height = float(np.median(heights))
            for k, g in enumerate(group):
                # Judge a piece by its neighbours (two each side), not by the whole
                # stack: an EHR's banner shares its left edge with the menu below.
                near = [n for n in group[max(0, k - 2):k + 3] if n != g]
                hits = sum(1 for n in near if hit[n])
                if hit[g] or not hits or hits * 2 < len(near):
                    continue
                if all(dangling[i] is not None for i in physical[g]):
                    continue  # a bare label ("Naam:") names a field; it holds no identifier
                members = [lines[i] for i in physical[g]]
                # Unread and much taller than the banner's lines: a thumbnail
                # strip, not text. (A read heading -- the patient's name in
                # large type above the banner -- may well be taller.)
                if boxes[g][3] > 1.5 * line_height and all(m.source == "unread" for m in members) \
                        or boxes[g][3] > 3 * line_height:  # nor is a misread spanning half the picture
                    continue
                if any(m.source == "unread" or (not is_technical(m.text) and _has_content(m.text))
                       for m in members) and not any(is_technical(m.text) for m in members):
                    yield fill(boxes[g]), None
                    yield None, Finding("free_text", "pixels", "context.banner", boxes[g], 0.6)


def _physical(lines: list[ocr.Line]) -> list[list[int]]:
    """Indices of lines grouped by the stretch of picture they cover."""
    groups: list[tuple[Box, list[int]]] = []
    for i, line in enumerate(lines):
        for k, (box, members) in enumerate(groups):
            if overlap(box, line.box) > 0.5:
                members.append(i)
                groups[k] = (union([box, line.box]), members)
                break
        else:
            groups.append((line.box, [i]))
    return [members for _, members in groups]


def _rows(boxes: list[Box]) -> list[list[int]]:
    """Pieces of text sharing a row (a banner bar across the top of a viewer)."""
    rows: list[list[int]] = []
    for i in sorted(range(len(boxes)), key=lambda i: boxes[i][1]):
        x, y, w, h = boxes[i]
        centre = y + h / 2
        for row in rows:
            rx, ry, rw, rh = boxes[row[0]]
            if abs(centre - (ry + rh / 2)) < 0.5 * min(h, rh):
                row.append(i)
                break
        else:
            rows.append([i])
    return [r for r in rows if len(r) > 1]


def _has_content(text: str) -> bool:
    return sum(c.isalnum() for c in text) >= 3


def _blocks(boxes: list[Box]) -> list[list[int]]:
    """Group lines into left- or right-aligned stacks (the corners of a viewer screen)."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1])
    blocks: list[list[int]] = []
    for i in order:
        x, y, w, h = boxes[i]
        for block in blocks:
            bx, by, bw, bh = union([boxes[j] for j in block])
            aligned = abs(x - bx) < 2 * h or abs((x + w) - (bx + bw)) < 2 * h
            if aligned and y - (by + bh) < 1.6 * h and y + h > by:
                block.append(i)
                break
        else:
            blocks.append([i])
    return blocks


def _believable(span, line: ocr.Line) -> bool:
    """Texture read as letters ('St Ms LE' at 32%) makes patterns match too."""
    conf = line.confidence
    if conf < _MIN_LINE_CONFIDENCE:
        return False
    return span.confidence >= _WEAK_SPAN or conf >= _MIN_LINE_CONFIDENCE_FOR_WEAK


def _value_candidates(index: int, lines: list[ocr.Line], dangling: list[str | None]):
    label = lines[index]
    lx, ly, lw, lh = label.box
    # A table header row holds only labels ("Patient name | Patient ID | DOB");
    # a form row ("Name: x   Date: y") holds values too, and is no header.
    other_labels = values_on_row = 0
    right: list[tuple[float, ocr.Line]] = []
    for j, other in enumerate(lines):
        if j == index:
            continue
        ox, oy, ow, oh = other.box
        same_row = abs((oy + oh / 2) - (ly + lh / 2)) < 0.6 * lh
        if same_row and dangling[j] is not None:
            other_labels += abs(ox - lx) > lw  # another header, not this one re-read
            continue
        if same_row and any(c.isdigit() for c in other.text):
            values_on_row += 1  # header words ("Mod", "Description") carry no digits; values do
        if same_row and 0 <= ox - (lx + lw) < 30 * lh:
            right.append((ox, other))  # a form's value column can sit far to the right
        elif 0 <= oy - (ly + lh) < 1.5 * lh and ox < lx + lw + 2 * lh and ox + ow > lx - 2 * lh:
            yield other
    if right:
        nearest = min(x for x, _ in right)
        yield from (other for x, other in right if x - nearest < 2 * lh)  # the same value, other passes
    if other_labels and not values_on_row:
        yield from _column_below(label, lines)


def _column_below(header: ocr.Line, lines: list[ocr.Line]):
    """Cells under a table header (a worklist's 'Patient ID' column): those that start
    under the header, row after row, until a gap of more than a couple of rows."""
    hx, hy, hw, hh = header.box
    bottom = hy + hh
    for other in sorted(lines, key=lambda ln: ln.box[1]):
        ox, oy, ow, oh = other.box
        if oy <= hy or not (hx - 1.5 * hh <= ox <= hx + hw):
            continue
        if oy - bottom > 5 * hh:  # a row or two the OCR missed does not end the column
            break
        bottom = max(bottom, oy + oh)
        yield other


def snap(box: Box, regions: list[Box]) -> Box:
    """Grow a line's box over the text regions it touches on its row. OCR boxes only
    cover what was read; a misread tail ("ACC4" of "ACC431450") is still ink."""
    x, y, w, h = box
    grown = [box]
    for r in regions:
        rx, ry, rw, rh = r
        vertical = min(y + h, ry + rh) - max(y, ry)
        if vertical >= 0.5 * min(h, rh) and rh < 2.5 * h and rx < x + w + h and rx + rw > x - h:
            grown.append(r)
    return union(grown)


def pad(box: Box, size: tuple[int, int], fraction: float = 0.3) -> Box:
    """Grow a box by a fraction of its height (ascenders, descenders, OCR box jitter)."""
    x, y, w, h = box
    p = max(2, round(h * fraction))
    x0, y0 = max(0, x - p), max(0, y - p)
    x1, y1 = min(size[0], x + w + p), min(size[1], y + h + p)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Drop boxes wholly inside another (passes find the same line several times)."""
    boxes = sorted(set(b for b in boxes if b[2] > 0 and b[3] > 0), key=lambda b: -(b[2] * b[3]))
    kept: list[Box] = []
    for b in boxes:
        if not any(k[0] <= b[0] and k[1] <= b[1] and k[0] + k[2] >= b[0] + b[2] and k[1] + k[3] >= b[1] + b[3]
                   for k in kept):
            kept.append(b)
    return kept


def redact(frame: Image.Image, result: FrameResult) -> None:
    for box in result.blurs:
        faces.blur(frame, box)
    if not result.fills:
        return
    draw = ImageDraw.Draw(frame)
    black = _black(frame)
    for x, y, w, h in result.fills:
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=black)


def _black(frame: Image.Image):
    if frame.mode in ("RGBA", "LA"):
        return (0,) * (len(frame.mode) - 1) + (255,)
    if frame.mode == "P":
        # The palette entry nearest black; decoders hand us RGB(A) normally.
        palette = frame.getpalette() or [0, 0, 0]
        triples = [palette[i:i + 3] for i in range(0, len(palette), 3)]
        return min(range(len(triples)), key=lambda i: sum(triples[i]))
    if frame.mode in ("I", "I;16", "F"):
        return 0
    return (0,) * len(frame.getbands()) if len(frame.getbands()) > 1 else 0
