"""Stage 3: decide which lines to paint, with small named rules over a `Page`.

Each rule is one short story about where identifiers hide on medical screens.
It reads the page and returns `Redaction`s that carry its own name, so the
quality report can count hits and misses per rule. Its thresholds live in
`RuleTuning`, not inline. Rules never talk to each other through shared
state: the content rules look at each line on its own (and its label), then
the context rules look at what the content rules found.

Granularity: a line with an identifier is painted whole (a banner line leaks
through the words around a missed one); a line that carries none stays,
technical text included. Where identifiers live (bands and corners, label
rows, a coloured header band, next to other identifiers), a line nobody can
read with confidence is painted too: fail closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cached_property
from typing import Callable

from ... import hints as header_hints
from ...boxes import Box, union
from ...recognizers import dangling_label, find_identifiers, is_technical, labelled_kind, only_codes_and_numbers
from ...recognizers.names import _vetoed as common_or_technical_word
from ...recognizers.text import fold
from .page import Page
from .read import Line, Reading


@dataclass(frozen=True)
class RuleTuning:
    # How sure a reading must be before its words are believed at all.
    min_reading: float = 0.5
    # A span the recognizers are unsure of (a gazetteer name, a lone surname) only
    # counts on a line read this surely: texture read as letters makes patterns match.
    weak_span: float = 0.7
    sure_reading_for_weak_span: float = 0.85
    # ... except a number-shaped span (this many digits), on a reading this sure.
    number_span_digits: int = 7
    sure_reading_for_number_span: float = 0.6
    # A label ("DOB:", "Naam") is only trusted from a reading this sure.
    min_label_reading: float = 0.7
    # Below this best-reading confidence a line is "unreadable".
    unreadable_below: float = 0.65
    # ... and painted only when it is this many times as long as tall (a detected line of
    # three characters is ~1.4 after the detector's unclip; texture blobs and icons it
    # liked were 0.8-1.15 on the quality corpora, every unreadable identifier over 5).
    unreadable_min_aspect: float = 1.3
    # A right-hand value can sit this many line heights after its label.
    label_reach_right: float = 30.0
    # A banner neighbour is painted when its immediate neighbours all carry
    # identifiers, or at least this share of its near ones (two each side) do.
    neighbour_share: float = 0.66
    # ... or half of them, in a stack no longer than a banner or a form's field list
    # (a long stack is a table's column: one name in it says nothing of the lab values).
    block_share: float = 0.5
    block_max_lines: int = 8
    # Lines much taller than the banner's lines are headings or pictures, not banner text.
    banner_height_ratio: float = 2.5
    # Row neighbours this many line heights apart are read as one line too
    # (identifier_across_gap): the detector splits lines at wide spaces.
    gap_join_heights: float = 3.0
    # name_elsewhere: a name's words of this many letters or more are followed through
    # the page, and spellings this similar (difflib ratio, folded) count as one.
    name_token_letters: int = 4
    name_similarity: float = 0.8
    # A line with an identifier keeps its words read as technical ("L12-5 DR60") when it
    # is read this surely and tilted no more than this (degrees); each kept word's box
    # is trimmed by this share of the line height at both ends (a pixel at least; the
    # painted parts' padding trims it further).
    keep_technical_reading: float = 0.85
    keep_technical_max_tilt: float = 2.0
    keep_technical_trim: float = 0.0
    # A technical line inside a banner loses its words with this many digits in a row
    # (an MRN printed beside the probe values), not the whole line.
    id_word_digits: int = 6
    # Print this many of its line heights left or right of a barcode is the code's caption.
    code_reach: float = 1.5
    # A letterhead: within this many body-line heights of the first text, set at least
    # this size against the body, and this many words at most.
    letterhead_reach: float = 1.0
    letterhead_height: float = 0.9
    letterhead_words: int = 5
    letterhead_page_lines: int = 3  # a page of text under it, not a lone line in a photo
    # A menu or tab bar: a row of this many one-word lines read this surely.
    menu_min_items: int = 4
    menu_item_reading: float = 0.85
    menu_share: float = 0.75  # of the row's lines (a search box or a clock may sit in it)
    # chat_contact: how far above a presence line, and how far to its side, its
    # contact's name may start, in the presence line's heights
    chat_reach: float = 1.5
    # title_bar: a window's title is the page's first row (within this many of its
    # heights of the topmost line), in the top share of the picture
    title_reach: float = 0.5
    title_band: float = 0.15
    # How often the context rules look again after painting more lines.
    context_rounds: int = 5
    # A sentence: this many words, read this surely by its only reader. It loses its
    # identifier words (and this many words each side), not the whole line; and it is
    # no banner line for banner_neighbour.
    sentence_words: int = 6
    sentence_letter_words: int = 3  # of them words of letters, not numbers
    sure_sentence: float = 0.9
    sentence_margin_words: int = 1
    # text: all: lines whose best reading is at least this sure, or that hold ink the
    # detector is sure is text, are all painted.
    all_text_detector_score: float = 0.6


TUNING = RuleTuning()


@dataclass(frozen=True)
class Redaction:
    line: int  # index into page.lines: the whole line is painted ...
    kind: str  # identifier kind (IDENTIFIER_KINDS), "free_text" when unknown
    rule: str  # the rule's name, plus the recognizer's when one named the kind
    confidence: float
    box: Box  # where the identifier itself is (for the finding)
    # ... unless these are given: a sentence read surely loses only its identifier
    # words and their neighbours, so the clinical text around them survives.
    parts: tuple[Box, ...] = ()


@dataclass(frozen=True)
class Context:
    """What the rules share, read-only: the page, the header hints, the tuning."""
    page: Page
    hints: tuple[tuple[str, str], ...] = ()
    tuning: RuleTuning = TUNING

    @cached_property
    def labels(self) -> dict[int, str]:
        """Lines that are a bare label ('Patient Name:', 'DOB'), with the kind their value has."""
        out = {}
        for i, line in enumerate(self.page.lines):
            for reading in self.believed(line, self.tuning.min_label_reading):
                if reading.text.strip().lower() in _MENU_WORDS:
                    continue  # "Patient" in a menu bar names no field
                if kind := dangling_label(reading.text):
                    out[i] = kind
                    break
        return out

    @cached_property
    def name_words(self) -> list[list[tuple[str, Box]]]:
        """Per line, the words that could be a name (name_elsewhere); they do not change
        between context rounds."""
        return [_name_words(self, line) for line in self.page.lines]

    @cached_property
    def recurring_names(self) -> set[str]:
        """Pairs of such words that recur on two lines or more, near spellings counted as one."""
        pairs: dict[str, set[int]] = {}
        for i, ws in enumerate(self.name_words):
            for (a, _), (b, _) in zip(ws, ws[1:]):
                pairs.setdefault(f"{a} {b}", set()).add(i)
        return _fuzzy_groups(pairs, self.tuning.name_similarity)

    @cached_property
    def menu_lines(self) -> frozenset[int]:
        """Lines in a menu or tab bar: one word of letters read surely, in a row where
        `menu_min_items` or more lines (and most of them) are such words ("Fichier Edition Affichage", "Results Orders
        Imaging"). A banner row has values with digits; a tab bar beside it is no banner."""
        t, lines = self.tuning, self.page.lines
        words = {i for i, line in enumerate(lines) if _one_word(self, line)}
        out = set()
        for i in words:
            row = self.page.row(i)
            items = sum(j in words for j in row)
            if items >= t.menu_min_items and items >= t.menu_share * len(row):
                out.add(i)
        return frozenset(out)

    def believed(self, line: Line, minimum: float | None = None) -> list[Reading]:
        floor = self.tuning.min_reading if minimum is None else minimum
        return [r for r in line.readings if r.text.strip() and r.confidence >= floor]


# --- content rules: each line on its own ----------------------------------------------------


def identifier_in_line(ctx: Context) -> list[Redaction]:
    """A recognizer (national ID with checksum, labelled MRN, date, name forms,
    institution, phone, e-mail, postcode, address) finds an identifier in a reading."""
    t = ctx.tuning
    out = []
    for i, line in enumerate(ctx.page.lines):
        for reading in ctx.believed(line):
            spans = [s for s in find_identifiers(reading.text) if _believable(s, reading.text, reading.confidence, t)]
            if spans:
                best = max(spans, key=lambda s: s.confidence)
                parts = _sentence_parts(ctx, line, reading, spans) or _around_technical(ctx, line, reading, spans)
                out.append(Redaction(i, best.kind, f"identifier_in_line:{best.recognizer}",
                                     round(best.confidence, 2), _span_box(line, reading, best.start, best.end),
                                     parts))
                break
    return out


def _believable(span, text: str, reading_confidence: float, t: RuleTuning) -> bool:
    """A sure span counts on any believed reading; a weak one (a lone surname, a bare
    number) only on a sure reading -- texture read as letters makes name patterns
    match. Texture does not read as seven digits in a row, so a number-shaped span
    needs less: photographed screens read at 0.6-0.8."""
    if span.confidence >= t.weak_span or reading_confidence >= t.sure_reading_for_weak_span:
        return True
    digits = sum(c.isdigit() for c in text[span.start:span.end])
    return digits >= t.number_span_digits and reading_confidence >= t.sure_reading_for_number_span


def identifier_across_gap(ctx: Context) -> list[Redaction]:
    """The detector splits a line at a wide space: 'BALL,' | 'Redir' on a label,
    'Naam' | 'de Vries, J.' in a form. An identifier that only exists across the gap
    is found by reading each pair of row neighbours as one line; both halves go."""
    page, t = ctx.page, ctx.tuning
    out = []
    for row in page.rows:
        for a, b in zip(row, row[1:]):
            left, right = page.lines[a], page.lines[b]
            height = min(left.height, right.height)
            gap = right.box[0] - (left.box[0] + left.box[2])
            if not -0.5 * height <= gap <= t.gap_join_heights * height or \
                    max(left.height, right.height) > 1.6 * height:
                continue
            span = _span_across(ctx, left, right)
            if span is not None:
                rule, conf = f"identifier_across_gap:{span.recognizer}", round(span.confidence, 2)
                out += [Redaction(a, span.kind, rule, conf, left.box), Redaction(b, span.kind, rule, conf, right.box)]
    return out


def _span_across(ctx: Context, left: Line, right: Line):
    """The surest believable span that starts in `left`'s text and ends in `right`'s."""
    for ra in ctx.believed(left):
        for rb in ctx.believed(right):
            head = ra.text.strip()
            joined = f"{head} {rb.text.strip()}"
            sure = min(ra.confidence, rb.confidence)
            spans = [s for s in find_identifiers(joined)
                     if s.start < len(head) < s.end and _believable(s, joined, sure, ctx.tuning)]
            if spans:
                return max(spans, key=lambda s: s.confidence)
    return None


def _sentence_parts(ctx: Context, line: Line, reading: Reading, spans) -> tuple[Box, ...]:
    """For a sentence (many words, one sure reading, word boxes known): the boxes of the
    words the spans touch, one more word each side. Anything else: () -- the whole line."""
    t = ctx.tuning
    if len(line.readings) != 1 or reading.confidence < t.sure_sentence or not _prose(reading.text, t):
        return ()
    offsets = _word_offsets(reading)
    if offsets is None:
        return ()
    touched: set[int] = set()
    named: set[str] = set()
    for span in spans:
        hit = [k for k, (a, b) in enumerate(offsets) if a < span.end and b > span.start]
        if not hit:
            return ()
        touched.update(range(max(0, min(hit) - t.sentence_margin_words),
                             min(len(offsets), max(hit) + t.sentence_margin_words + 1)))
        named.update(_core(reading.words[k].text) for k in hit if sum(c.isalpha() for c in reading.words[k].text) >= 3)
    # The same name said again in the sentence ("met Rowan Post ... dhr. Post") goes too.
    touched.update(k for k, word in enumerate(reading.words) if _core(word.text) in named)
    # A sentence that names someone often says more about them than the recognizers
    # know ("lives at Freya-Bohnbach-Allee 5, 03924 Neubrandenburg"): every other
    # word that could be a name, a place or a number goes too.
    touched.update(k for k, word in enumerate(reading.words) if _could_identify(word.text, first=k == 0))
    # The first word is spared as capitalised by grammar, unless it starts a name that
    # goes ("Anna KOWALSKI, 14 Church Lane ...").
    if 1 in touched and len(reading.words) > 1 and _could_identify(reading.words[0].text) \
            and _proper(_bare(reading.words[1].text)):
        touched.add(0)
    return tuple(reading.words[k].box for k in sorted(touched))


def _bare(word: str) -> str:
    """A word without the punctuation OCR and prose put around it."""
    return word.strip(".,;:!?()[]'\"’")


def _core(word: str) -> str:
    return fold(_bare(word))


def _around_technical(ctx: Context, line: Line, reading: Reading, spans) -> tuple[Box, ...]:
    """A banner line that holds an identifier and technical values ("NOEL Berend 19790725
    L12-5 DR60 P 61%", a vendor overlay): the whole line is painted except the words read
    surely as technical, each kept word's box trimmed at both ends. Everything not
    positively technical goes, so a missed identifier beside the found one goes too.
    () -- the whole line -- when there is nothing technical to keep, the reading is not
    sure, its word boxes disagree with its text, or the line is tilted."""
    t = ctx.tuning
    if reading.confidence < t.keep_technical_reading or abs(line.detection.angle) > t.keep_technical_max_tilt:
        return ()
    offsets = _word_offsets(reading)
    if not offsets:
        return ()
    words, kept = reading.words, set()
    for k in range(len(words)):
        for n in (2, 1):  # "TIS 0.5", "P 61%", then single words
            window = range(k, min(k + n, len(words)))
            a, b = offsets[window[0]][0], offsets[window[-1]][1]
            if any(a < span.end and b > span.start for span in spans):
                continue
            if is_technical(" ".join(words[j].text for j in window)) and \
                    not only_codes_and_numbers(" ".join(words[j].text for j in window)):
                kept.update(window)
                break
    if not kept:
        return ()
    x0, y0, w, h = line.box
    trim = max(1, round(t.keep_technical_trim * line.height))
    holes = sorted((words[j].box[0] + trim, words[j].box[0] + words[j].box[2] - trim) for j in kept)
    parts, left = [], x0
    for a, b in holes:
        if a > left:
            parts.append((left, y0, a - left, h))
        left = max(left, b)
    if left < x0 + w:
        parts.append((left, y0, x0 + w - left, h))
    return tuple(p for p in parts if p[2] > 0)


def _could_identify(word: str, first: bool = False) -> bool:
    """A run of 4+ digits, or a capitalised word that is no common or technical word
    (not the sentence's first word: that one is capitalised by grammar)."""
    core = _bare(word)
    if sum(c.isdigit() for c in core) >= 4 and not any(c in core for c in ".%/"):
        return True
    return not first and _proper(core) and not core.isupper()


def header_value(ctx: Context) -> list[Redaction]:
    """The DICOM header's own values (name parts, IDs, dates), fuzzily, in any format."""
    if not ctx.hints:
        return []
    out = []
    for i, line in enumerate(ctx.page.lines):
        for reading in ctx.believed(line):
            if kind := header_hints.match(reading.text, ctx.hints):
                out.append(Redaction(i, kind, "header_value", 0.9, line.box))
                break
    return out


def label_with_value(ctx: Context) -> list[Redaction]:
    """'Date de naissance: Zar': a form field whose value was misread is still that field."""
    out = []
    for i, line in enumerate(ctx.page.lines):
        for reading in ctx.believed(line, ctx.tuning.min_label_reading):
            if kind := labelled_kind(reading.text):
                out.append(Redaction(i, kind, "label_with_value", 0.6, line.box))
                break
    return out


def value_after_label(ctx: Context) -> list[Redaction]:
    """'Patient Name:' with its value in the next box: to the right on its row, or
    directly below it."""
    page, t = ctx.page, ctx.tuning
    out = []
    for i, kind in ctx.labels.items():
        if _header_row(ctx, i):
            continue  # a table's header: its values are the column below (table_column)
        line = page.lines[i]
        lx, _, lw, _ = line.box
        right = [j for j in page.row(i) if j != i and page.lines[j].box[0] >= lx + lw - line.height
                 and page.lines[j].box[0] - (lx + lw) < t.label_reach_right * line.height
                 and j not in ctx.labels]
        targets = right[:1] or [j for j in page.below(i) if j not in ctx.labels][:1]
        # "RAD-501072" looks like a technical code on its own; after "Acc:" it is the
        # value. Only a line that is technical through and through ("kVp 120") is kept.
        targets = [j for j in targets if not (_technical(ctx, page.lines[j]) and len(page.lines[j].text.split()) >= 2)]
        out += [Redaction(j, kind, "value_after_label", 0.7, page.lines[j].box) for j in targets]
    return out


def table_column(ctx: Context) -> list[Redaction]:
    """A worklist: a header row of labels only ('Patient name | Patient ID | DOB'),
    and under each identifier label, its column's cells, row after row."""
    page = ctx.page
    out = []
    for i, kind in ctx.labels.items():
        if not _header_row(ctx, i):
            continue
        hx, hy, hw, hh = page.lines[i].box
        height = page.lines[i].height
        bottom = hy + hh
        for j in sorted(range(len(page.lines)), key=lambda j: page.lines[j].box[1]):
            ox, oy, ow, oh = page.lines[j].box
            if oy <= hy + hh / 2 or not (hx - 1.5 * height <= ox <= hx + hw):
                continue
            if oy - bottom > 5 * height:  # a row or two the detector missed does not end the column
                break
            if j in ctx.menu_lines or _names_columns(ctx, j):
                break  # another table's header (or a tab bar) ends this column
            bottom = max(bottom, oy + oh)
            out.append(Redaction(j, kind, "table_column", 0.7, page.lines[j].box))
    return out


def beside_code(ctx: Context) -> list[Redaction]:
    """A label or wristband prints its barcode's ID and the patient's details right beside
    the code: a line in the code's rows that touches it (within `code_reach` line heights
    left or right, or overlapping it) goes unless a word on it is technical. The code's box
    was blanked before the lines were found, so such a line is often a fragment
    ('10Ka840826', '07/1972 (F)') that no recognizer can read."""
    page, t = ctx.page, ctx.tuning
    out = []
    for i, line in enumerate(page.lines):
        x, y, w, h = line.box
        reach = t.code_reach * line.height
        for cx, cy, cw, ch in page.codes:
            if y + h <= cy or y >= cy + ch:
                continue  # not in the code's rows
            if x > cx + cw + reach or x + w < cx - reach:
                continue
            if not _technical_word(ctx, line):
                out.append(Redaction(i, "free_text", "beside_code", 0.6, line.box))
            break
    return out


# What a messaging app shows under the name of the person a chat is with.
_PRESENCE = re.compile(
    r"(?:online|en ligne|active now|actief|aktiv|typing|typt|schreibt|[ée]crit|en train d.[ée]crire"
    r"|last seen|laatst gezien|zuletzt online|vu[e]? (?:pour la derni[èe]re fois|aujourd|hier)"
    r"|active \d+ ?(?:m|min|h) ago|tap here for (?:contact|group) info)\b.*", re.I)


def chat_contact(ctx: Context) -> list[Redaction]:
    """A chat app's header names the person the chat is with, above a presence line
    ('online', 'last seen today at 13:02', 'typt...', 'zuletzt online'): the line right
    above it (within `chat_reach` line heights, its left edge near the presence line's)
    goes when it reads as a person's name: a few capitalised words, none of them common
    or technical. A name the recognizers cannot know ("Taepitroex Drataebeim") is still
    a name there; a group ("ED majors", "Radiologie dienst") stays."""
    page, t = ctx.page, ctx.tuning
    lines = page.lines
    out = []
    for i, status in enumerate(lines):
        if not any(_PRESENCE.fullmatch(r.text.strip(" .…")) for r in ctx.believed(status, t.menu_item_reading)):
            continue
        x, y, _, h = status.box
        above = [j for j, other in enumerate(lines)
                 if j != i and other.box[1] < y and y - (other.box[1] + other.box[3]) <= t.chat_reach * h
                 and abs(other.box[0] - x) <= t.chat_reach * h]
        if not above:
            continue
        j = max(above, key=lambda k: lines[k].box[1])
        words = lines[j].text.split()
        if j in ctx.menu_lines or _technical(ctx, lines[j]) or not 1 <= len(words) <= t.letterhead_words:
            continue
        if all(_proper(w) for w in words):  # a person; "ED majors", "Radiologie dienst" are groups
            out.append(Redaction(j, "person_name", "chat_contact", 0.7, lines[j].box))
    return out


# Between the parts of a window's title: "Patientenakte - Charité Berlin", "Epic | St Mary's".
_TITLE_SEPARATOR = re.compile(r"\s+(?:[-\u2013\u2014|\u00b7\u2022]|::)\s+")


def title_bar(ctx: Context) -> list[Redaction]:
    """A window's title bar names the application and, often, the site: "Patientenakte -
    Charité Berlin". In the page's first row (the top `title_band` of the picture), a
    title read surely and split by ' - ', ' | ', ' · ' loses each part that is a few words
    with no digits and no technical word, one of them proper (capitalised, not common):
    the site, and an application's or record's name with it ('Patientenakte'), which
    costs little. 'PACS Viewer' and 'Study 3 of 5' stay. Set smaller than the body, the
    title is no letterhead."""
    page, t = ctx.page, ctx.tuning
    if not page.lines:
        return []
    top = min(line.box[1] for line in page.lines)
    out = []
    for i, line in enumerate(page.lines):
        y = line.box[1]
        if y > top + t.title_reach * line.height or y > t.title_band * page.size[1] or i in ctx.menu_lines:
            continue
        for reading in ctx.believed(line, t.min_label_reading):
            text = reading.text
            cuts = [0] + [k for m in _TITLE_SEPARATOR.finditer(text) for k in m.span()] + [len(text)]
            if len(cuts) < 4:
                continue  # one part: no title's layout to go by
            parts = [_span_box(line, reading, a, b) for a, b in zip(cuts[::2], cuts[1::2])
                     if _site_part(text[a:b], t)]
            if parts:
                out.append(Redaction(i, "institution", "title_bar", 0.6, union(parts), tuple(parts)))
                break
    return out


def _site_part(part: str, t: RuleTuning) -> bool:
    words = part.split()
    return 1 <= len(words) <= t.letterhead_words and not any(c.isdigit() for c in part) \
        and any(_proper(w) for w in words) and not any(is_technical(_bare(w)) for w in words)


def _technical_word(ctx: Context, line: Line) -> bool:
    """Technical by a word, not by its shape: 'kVp 120', 'Aerobic' -- not '07/1972 (F)'
    (a single-letter marker) or '10Ka840826' (a code-like ID)."""
    return _technical(ctx, line) and any(
        sum(c.isalpha() for c in w) >= 2 and is_technical(w) and not only_codes_and_numbers(w)
        for r in ctx.believed(line) for w in r.text.split())


def letterhead(ctx: Context, hit: frozenset[int]) -> list[Redaction]:
    """The top of a letter, a form or a label is the institution's name ("Rijnstate
    Arnhem", with no 'Hospital' to find): the page's first row of text, when it is a few
    words with no digits, at least one of them a proper word (capitalised, no common or
    technical word), read surely, not set smaller than the body, and no label, menu item
    or technical text. (On a screen the first row is a title bar, a menu or the patient
    banner: the menu and the technical title stay, and the banner goes anyway.)"""
    page, t = ctx.page, ctx.tuning
    body = page.text_height
    if body == 0 or len(page.lines) < t.letterhead_page_lines:
        return []
    lines = page.lines
    order = sorted(range(len(lines)), key=lambda i: lines[i].box[1])
    top = lines[order[0]].box[1]
    out = []
    for i in order:
        line = lines[i]
        if line.box[1] > top + t.letterhead_reach * body:
            break
        words = line.text.split()
        if i in hit or line.height < t.letterhead_height * body or not 1 <= len(words) <= t.letterhead_words \
                or any(c.isdigit() for c in line.text) or line.confidence < t.sure_reading_for_weak_span:
            continue
        if i in ctx.menu_lines or i in ctx.labels or _technical(ctx, line):
            continue
        if any(j in hit for j in page.row(i)):
            continue  # a banner row across the top: banner_neighbour's to judge
        if any(_proper(w) for w in words):
            out.append(Redaction(i, "institution", "letterhead", 0.6, line.box))
    return out


def _proper(word: str) -> bool:
    """Capitalised, three letters or more, and no common or technical word."""
    core = _bare(word)
    return len(core) >= 3 and core[0].isupper() and not common_or_technical_word(core)


# --- context rules: what the content rules found, and what sits around it ------------------


def banner_neighbour(ctx: Context, hit: frozenset[int]) -> list[Redaction]:
    """A patient banner is a block of identifier lines, stacked in a corner or strung
    along a bar. A line inside one that no recognizer understood (a name in an
    unusual form, a hospital without 'Hospital' in its name, a study time) is far
    more likely another identifier than anything else, unless it is plainly technical."""
    page, t = ctx.page, ctx.tuning
    labels = ctx.labels
    out = []
    groups = [(g, t.block_share if len(g) <= t.block_max_lines else t.neighbour_share) for g in page.stacks]
    groups += [(g, t.neighbour_share) for g in page.rows]
    for group, share in groups:
        hits = [g for g in group if g in hit]
        if not hits:
            continue
        height = max(page.lines[g].height for g in hits)
        # Labels are not values: "DDN" between a birth date and an MRN in a header row
        # says nothing either way, so neighbours are counted without them.
        group = [g for g in group if g not in labels]
        for k, g in enumerate(group):
            if g in hit or g in ctx.menu_lines:
                continue
            near = [n for n in group[max(0, k - 2):k + 3] if n != g]
            beside = [n for n in group[max(0, k - 1):k + 2] if n != g]
            if not all(n in hit for n in beside) and sum(n in hit for n in near) < share * len(near):
                continue
            line = page.lines[g]
            if line.height > t.banner_height_ratio * height or _sentence(ctx, line) or _plain_words(line, t):
                continue
            if _technical(ctx, line) and not _id_shaped(ctx, line):
                # A vendor overlay puts the MRN on the probe's line ("15943506 5.0 MHz
                # 18Hz"): the technical values stay, the ID-shaped words go.
                if parts := _id_words(ctx, line):
                    out.append(Redaction(g, "free_text", "banner_neighbour", 0.6, union(parts), parts))
                continue
            if _alnum(line) < 2 and line.confidence >= t.unreadable_below:
                continue  # a read separator or bullet
            out.append(Redaction(g, "free_text", "banner_neighbour", 0.6, line.box))
    return out


def _id_words(ctx: Context, line: Line) -> tuple[Box, ...]:
    """The boxes of a line's words that are shaped like an ID, in any believed reading: a
    run of `id_word_digits` digits or more, bare or in a letter-digit code, that is no
    decimal, time, date or ratio (no '.', ':', '/'); with the digit groups beside it, as
    OCR splits "(88854114)" into "(888541 14)?"."""
    boxes: list[Box] = []
    for reading in ctx.believed(line):
        cores = [_bare(w.text) for w in reading.words]
        groups = [bool(c) and not any(ch in c for ch in ".:/") and sum(ch.isdigit() for ch in c) >= 0.6 * len(c)
                  for c in cores]
        taken: set[int] = set()
        for k, core in enumerate(cores):
            if groups[k] and _ID_RUN.search(core):
                a = b = k
                while a > 0 and groups[a - 1]:
                    a -= 1
                while b + 1 < len(cores) and groups[b + 1]:
                    b += 1
                taken.update(range(a, b + 1))
        boxes += [reading.words[k].box for k in sorted(taken)]
    return tuple(boxes)


def name_elsewhere(ctx: Context, hit: frozenset[int]) -> list[Redaction]:
    """A name said once is said again: a chat names the patient in three bubbles, a
    letter in every paragraph, a group chat heads each bubble with its sender. Two
    kinds of name are followed through the page: the words of every name another
    rule found ('dhr. Öztürk' -> 'Öztürk'), and two capitalised words outside the
    vocabulary that recur on two lines or more ('Lotichaam Citroén'), read
    fuzzily. Each other occurrence goes: the words in a sentence, else the line."""
    page, t = ctx.page, ctx.tuning
    words, recurring = ctx.name_words, ctx.recurring_names
    known: set[str] = set()
    for i in hit:
        for reading in ctx.believed(page.lines[i]):
            for span in find_identifiers(reading.text):
                if span.kind == "person_name" and span.confidence >= t.weak_span:
                    known.update(fold(w) for w in _NAME_TOKEN.findall(reading.text[span.start:span.end])
                                 if len(w) >= t.name_token_letters and not common_or_technical_word(w))
    out = []
    for i, ws in enumerate(words):
        tokens = [w for w, _ in ws]
        matched = {k for k, w in enumerate(tokens) if any(_similar(w, n, t.name_similarity) for n in known)}
        for k in range(len(tokens) - 1):
            if f"{tokens[k]} {tokens[k + 1]}" in recurring:
                matched.update((k, k + 1))
        if not matched:
            continue
        line = page.lines[i]
        box = union([ws[k][1] for k in matched])
        parts = tuple(ws[k][1] for k in sorted(matched)) if _sentence(ctx, line) else ()
        out.append(Redaction(i, "person_name", "name_elsewhere", 0.7, box, parts))
    return out


_NAME_TOKEN = re.compile(r"[^\W\d_][^\W\d_'’\-]*(?:[\-'’][^\W\d_]+)*")


def _name_words(ctx: Context, line: Line) -> list[tuple[str, Box]]:
    """(folded word, box) of each capitalised word of the surest reading that could be a
    name: three letters or more, outside the common and technical vocabulary."""
    readings = ctx.believed(line, ctx.tuning.sure_reading_for_weak_span)
    if not readings:
        return []
    reading = max(readings, key=lambda r: r.confidence)
    out = []
    for word in reading.words:
        for token in _NAME_TOKEN.findall(word.text):
            if len(token) >= 3 and token[0].isupper() and not (token.isupper() and len(token) <= 4) \
                    and not common_or_technical_word(token):
                out.append((fold(token), word.box))
    return out


def _similar(a: str, b: str, ratio: float) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) < 5:
        return False
    m = SequenceMatcher(None, a, b)  # cheap upper bounds first: a dense page has hundreds of pairs
    return m.real_quick_ratio() >= ratio and m.quick_ratio() >= ratio and m.ratio() >= ratio


def _fuzzy_groups(pairs: dict[str, set[int]], ratio: float) -> set[str]:
    """The word pairs that occur on two lines or more, counting near spellings as one."""
    keys = list(pairs)
    out = set()
    for k, a in enumerate(keys):
        lines = set(pairs[a])
        for b in keys[k + 1:]:
            if _similar(a, b, ratio):
                lines |= pairs[b]
                if len(lines) >= 2:
                    out.update((a, b))
        if len(lines) >= 2:
            out.add(a)
    return out


def unreadable_where_identifiers_live(ctx: Context, hit: frozenset[int]) -> list[Redaction]:
    """Fail closed: a text line nobody reads with confidence is painted when it sits
    where identifiers live -- a top or bottom band and its corners, a row or stack
    holding an identifier or a label, a coloured patient header band."""
    page, t = ctx.page, ctx.tuning
    near_identifier = set()
    for group in page.stacks + page.rows:
        if any(g in hit or g in ctx.labels for g in group):
            near_identifier.update(group)
    out = []
    for i, line in enumerate(page.lines):
        if i in hit or line.confidence >= t.unreadable_below or not page.is_text_sized(i):
            continue
        if line.detection.width < t.unreadable_min_aspect * line.detection.height:
            continue  # a blob, an icon, a patch of texture: no identifier is this short
        coloured = i < len(page.on_colour) and page.on_colour[i]
        if not (page.in_corner(i) or i in near_identifier or coloured):
            continue
        if _technical(ctx, line):
            continue
        out.append(Redaction(i, "free_text", "unreadable_where_identifiers_live", 0.5, line.box))
    return out


def all_text(ctx: Context) -> list[Redaction]:
    """Policy `text: all`: every line of text goes, read or not."""
    page, t = ctx.page, ctx.tuning
    return [Redaction(i, "free_text", "all_text", round(line.confidence, 2), line.box)
            for i, line in enumerate(page.lines)
            if line.detection.score >= t.all_text_detector_score or _alnum(line) >= 2]


CONTENT_RULES: tuple[Callable[[Context], list[Redaction]], ...] = (
    identifier_in_line, identifier_across_gap, header_value, label_with_value, value_after_label, table_column,
    beside_code, chat_contact, title_bar)
CONTEXT_RULES: tuple[Callable[[Context, frozenset[int]], list[Redaction]], ...] = (
    banner_neighbour, name_elsewhere, unreadable_where_identifiers_live, letterhead)


# name_elsewhere finds a name inside a chat bubble or a letter's paragraph: the lines
# around it are the message, not a banner.
# A letterhead sits above the letter, not in a banner.
# A chat's header is no banner: the clock and icons beside the contact's name stay;
# nor is a title bar, beside its window's buttons.
_NO_SEED = frozenset({"unreadable_where_identifiers_live", "table_column", "name_elsewhere", "letterhead",
                      "chat_contact", "title_bar"})


def decide(page: Page, text: str = "identifiers", hints: tuple[tuple[str, str], ...] = (),
           tuning: RuleTuning = TUNING) -> list[Redaction]:
    """Every redaction the rules ask for, one per line (the surest rule's) unless a
    line is named by several kinds. `text` is the policy's identifiers|all|none."""
    if text == "none" or not page.lines:
        return []
    ctx = Context(page, hints, tuning)
    if text == "all":
        return all_text(ctx)
    found = [r for rule in CONTENT_RULES for r in rule(ctx)]
    # Context spreads along a banner: the line beside a painted neighbour is judged
    # again with it painted, a few rounds at most.
    # Only lines that carry an identifier seed the context rules: a line painted
    # because nobody could read it says nothing about its neighbours, and a table
    # column's cells sit among other columns, not in a banner.
    for _ in range(tuning.context_rounds):
        hit = frozenset(r.line for r in found if r.rule not in _NO_SEED)
        painted = frozenset(r.line for r in found)
        more = [r for rule in CONTEXT_RULES for r in rule(ctx, hit) if r.line not in painted]
        if not more:
            break
        found += more
    best: dict[tuple[int, str], Redaction] = {}
    for r in found:
        key = (r.line, r.kind)
        if key not in best or r.confidence > best[key].confidence:
            best[key] = r
    return sorted(best.values(), key=lambda r: (r.line, r.kind))


# --- helpers ----------------------------------------------------------------------------------


def _sentence(ctx: Context, line: Line) -> bool:
    """Prose read surely: the recognizers had their full chance on it."""
    t = ctx.tuning
    return any(_prose(r.text, t) and r.confidence >= t.sure_sentence for r in line.readings)


def _plain_words(line: Line, t: RuleTuning) -> bool:
    """Read surely as plain words -- no digit, no proper word, most words in lower case
    ('compte rendu a suivre', 'peux rappeler ?'): a message's or a letter's sentence
    wrapped onto a short line, not a banner's value. (A banner's unread value is a name,
    a code, a place or a time: capitals or digits.)"""
    if line.confidence < t.keep_technical_reading or any(c.isdigit() for c in line.text):
        return False
    words = [_bare(w) for w in line.text.split() if any(c.isalpha() for c in w)]
    if not words or any(_proper(w) for w in words):
        return False
    return 2 * sum(w[:1].islower() for w in words) >= len(words)


def _prose(text: str, t: RuleTuning) -> bool:
    """Enough words, and enough of them words of letters: numbers and codes make a line
    longer, not prose ('33-922789 Téléphone: 01 00 72 34 48' is a form field)."""
    words = text.split()
    # "18Hz" and "7cm" are measurements, not words: a probe line is no sentence.
    return len(words) >= t.sentence_words and \
        sum(sum(c.isalpha() for c in w) >= 2 and not any(c.isdigit() for c in w) for w in words) \
        >= t.sentence_letter_words


_ID_RUN = re.compile(r"\d{%d,}" % TUNING.id_word_digits)

# Labels that are also menu and tab names ("File Edit Patient Tools", "Summary |
# Dossier"): a row holding them is a menu bar, not a table's header.
_MENU_WORDS = frozenset({"patient", "patients", "dossier", "record", "records", "chart", "file"})


def _header_row(ctx: Context, i: int) -> bool:
    """Line i is an identifier label in a table's header row ("Date | Exam | Accession"):
    the row has other short column names and no values (a form row, "DOB: 04-Mar-1962
    ID:", has digits)."""
    page = ctx.page
    row = page.row(i)
    if page.lines[i].text.strip(" :").lower() in _MENU_WORDS:
        return False
    if len(row) < 3 and not any(j in ctx.labels for j in row if j != i):
        return False  # "Patient Name: | Jane Doe" is a form field and its value
    return _short_texts(ctx, row)


def _names_columns(ctx: Context, j: int) -> bool:
    """Line j is in a row of three or more short texts without digits: a table's header
    ('Résultat | Unité | Norme')."""
    row = ctx.page.row(j)
    return len(row) >= 3 and _short_texts(ctx, row)


def _short_texts(ctx: Context, row: list[int]) -> bool:
    """Every line of the row is three words at most, without digits: column names."""
    return all(len(ctx.page.lines[k].text.split()) <= 3 and not any(c.isdigit() for c in ctx.page.lines[k].text)
               for k in row)


def _one_word(ctx: Context, line: Line) -> bool:
    """The line is read surely as one word of letters (a menu item or a tab)."""
    text = line.text.strip()
    return line.confidence >= ctx.tuning.menu_item_reading and " " not in text and \
        sum(c.isalpha() for c in text) >= 2 and not any(c.isdigit() for c in text)


def _technical(ctx: Context, line: Line) -> bool:
    """Positively read as technical text (kVp, W/L, probe, depth, scale marks)."""
    return any(is_technical(r.text) for r in ctx.believed(line))


def _id_shaped(ctx: Context, line: Line) -> bool:
    """Technical only by its shape (codes and bare numbers, five digits or more)."""
    return any(only_codes_and_numbers(r.text) for r in ctx.believed(line))


def _alnum(line: Line) -> int:
    return max((sum(c.isalnum() for c in r.text) for r in line.readings), default=0)


def _word_offsets(reading: Reading) -> list[tuple[int, int]] | None:
    """(start, end) of each of the reading's word boxes in its text; None when they disagree."""
    offsets, pos = [], 0
    for word in reading.words:
        a = reading.text.find(word.text, pos)
        if a < 0:
            return None
        pos = a + len(word.text)
        offsets.append((a, pos))
    return offsets


def _span_box(line: Line, reading: Reading, start: int, end: int) -> Box:
    """The reading's words that the span touches (the line, when it has no word boxes)."""
    offsets = _word_offsets(reading) if reading.words else None
    if not offsets:
        return line.box
    boxes = [w.box for w, (a, b) in zip(reading.words, offsets) if a < end and b > start]
    return union(boxes) if boxes else line.box
