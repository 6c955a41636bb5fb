"""Messenger screenshots: a phone-sized conversation where colleagues name the patient in prose.

"Can you look at Mrs Jane Okafor's CXR, DOB 12/03/1961?" -- the identifiers sit inside
sentences in speech bubbles, between words that must not be mistaken for them. Styles
after WhatsApp (light and dark), iMessage, Signal and a hospital messenger; English,
Dutch, German and French. Sender names in group chats are labelled `physician_name`
(staff, not the patient, but identifying all the same, like the existing physician labels).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from . import identifiers as ids
from . import prose
from .render import Page, anatomy, font, styled

SCREENS = [(1170, 2532, 3.0), (1080, 2400, 2.625), (828, 1792, 2.0), (750, 1334, 2.0), (720, 1600, 1.875),
           (1080, 2340, 2.75)]
STYLES = {
    "whatsapp": {"bg": (236, 229, 221), "out": (217, 253, 211), "inc": (255, 255, 255), "fg_out": (17, 27, 33),
                 "fg_inc": (17, 27, 33), "bar": (240, 242, 245), "bar_fg": (17, 27, 33), "time": (102, 119, 129),
                 "pattern": (226, 218, 208), "tail": True, "names": [(6, 130, 112), (190, 80, 40), (120, 60, 170)]},
    "whatsapp_dark": {"bg": (11, 20, 26), "out": (0, 92, 75), "inc": (32, 44, 51), "fg_out": (233, 237, 239),
                      "fg_inc": (233, 237, 239), "bar": (31, 44, 52), "bar_fg": (233, 237, 239),
                      "time": (140, 160, 170), "pattern": (20, 30, 36), "tail": True,
                      "names": [(83, 189, 235), (240, 140, 100), (170, 220, 120)]},
    "imessage": {"bg": (255, 255, 255), "out": (10, 132, 255), "inc": (233, 233, 235), "fg_out": (255, 255, 255),
                 "fg_inc": (0, 0, 0), "bar": (246, 246, 246), "bar_fg": (0, 0, 0), "time": (142, 142, 147),
                 "pattern": None, "tail": False, "names": [(142, 142, 147)]},
    "signal_dark": {"bg": (0, 0, 0), "out": (44, 107, 237), "inc": (48, 48, 48), "fg_out": (255, 255, 255),
                    "fg_inc": (230, 230, 230), "bar": (18, 18, 18), "bar_fg": (240, 240, 240),
                    "time": (170, 170, 170), "pattern": None, "tail": False, "names": [(150, 180, 255)]},
    "hospital": {"bg": (240, 244, 246), "out": (0, 128, 128), "inc": (255, 255, 255), "fg_out": (255, 255, 255),
                 "fg_inc": (30, 40, 50), "bar": (0, 105, 120), "bar_fg": (255, 255, 255), "time": (120, 130, 140),
                 "pattern": None, "tail": False, "names": [(0, 105, 120), (150, 60, 40)]},
}
GROUPS = {"en": ["Medics ward 7", "Radiology on-call", "AMU doctors", "Resp reg chat", "ED majors"],
          "nl": ["Arts-assistenten IC", "Radiologie dienst", "SEH overdracht"],
          "de": ["Stationsärzte 4B", "Radiologie Dienst", "ZNA Team"],
          "fr": ["Internes urgences", "Radio garde", "Équipe pneumo"]}
SUBTITLE = {"en": ["online", "tap here for group info", "typing..."], "nl": ["online", "typt..."],
            "de": ["online", "schreibt..."], "fr": ["en ligne", "écrit..."]}
TODAY = {"en": "Today", "nl": "Vandaag", "de": "Heute", "fr": "Aujourd'hui"}
PLACEHOLDER = {"en": "Message", "nl": "Bericht", "de": "Nachricht", "fr": "Message"}


def _pattern(pg: Page, rng: random.Random, colour, top: int, bottom: int, s: float):
    d = pg.draw
    w = pg.img.width
    for _ in range(int(w * (bottom - top) / (3000 * s * s))):
        x, y = rng.uniform(0, w), rng.uniform(top, bottom)
        r = rng.uniform(4, 11) * s
        k = rng.random()
        if k < 0.4:
            d.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=max(1, int(s)))
        elif k < 0.7:
            d.line([x - r, y, x + r, y + r * 0.6], fill=colour, width=max(1, int(s * 1.5)))
        else:
            d.rounded_rectangle([x - r, y - r * 0.7, x + r, y + r * 0.7], int(r / 3), outline=colour,
                                width=max(1, int(s)))


def conversation(rng: random.Random, nrng: np.random.Generator, p: ids.Patient) -> tuple[Page, dict]:
    W, H, s = rng.choice(SCREENS)
    style_name = rng.choice(list(STYLES))
    st = STYLES[style_name]
    pg = Page(Image.new("RGB", (W, H), st["bg"]))
    d = pg.draw
    S = lambda v: int(v * s)  # noqa: E731
    fsize = rng.uniform(15, 18)
    f = font(rng, "sans", S(fsize))
    fb = styled(f, "bold", S(fsize))
    small = font(rng, "sans", S(11.5))
    lh = int(f.size * 1.28)
    status_h = S(rng.choice([44, 47, 30]))
    bar_h = S(58)
    # status bar and header
    d.rectangle([0, 0, W, status_h + bar_h], fill=st["bar"])
    pg.line(S(24), (status_h - S(15)) // 2, [(f"{rng.randint(7, 23)}:{rng.randint(0, 59):02d}", "ctx")],
            styled(small, "bold", S(15)), st["bar_fg"])
    bx = W - S(40)
    d.rounded_rectangle([bx, status_h // 2 - S(6), bx + S(24), status_h // 2 + S(6)], S(3), outline=st["bar_fg"],
                        width=max(1, S(1)))
    d.rectangle([bx + S(2), status_h // 2 - S(4), bx + S(2) + S(20) * rng.uniform(0.2, 1), status_h // 2 + S(4)],
                fill=st["bar_fg"])
    cy = status_h + bar_h // 2
    d.line([S(14), cy, S(24), cy - S(10)], fill=st["bar_fg"], width=S(2.5))
    d.line([S(14), cy, S(24), cy + S(10)], fill=st["bar_fg"], width=S(2.5))
    av = S(38)
    d.ellipse([S(36), cy - av // 2, S(36) + av, cy + av // 2], fill=rng.choice(st["names"]))
    group = rng.random() < 0.65
    colleagues = [ids.make_patient(rng, p.site) for _ in range(rng.randint(1, 3))]
    sender_meta = lambda q: {"kind": "physician_name", "name_source": q.name_source, "role": "chat_sender"}  # noqa
    if group:
        title = [(rng.choice(GROUPS[p.lang]), "ctx")]
    else:
        q = colleagues[0]
        title = [(f"{q.given} {q.family}", "id", sender_meta(q))]
    tx = S(36) + av + S(12)
    pg.line(tx, cy - S(18), title, styled(f, "bold", S(16)), st["bar_fg"])
    pg.line(tx, cy + S(3), [(rng.choice(SUBTITLE[p.lang]), "ctx")], font(rng, "sans", S(12.5)), st["bar_fg"])
    top = status_h + bar_h
    input_h = S(rng.choice([56, 64, 80]))
    bottom = H - input_h
    if st["pattern"]:
        _pattern(pg, rng, st["pattern"], top, bottom, s)
    # the input bar
    d.rectangle([0, bottom, W, H], fill=st["bar"])
    d.rounded_rectangle([S(50), bottom + S(9), W - S(60), bottom + S(9) + S(36)], S(18),
                        fill=st["bg"] if st["bg"] != st["bar"] else (255, 255, 255))
    pg.line(S(66), bottom + S(9) + S(9), [(PLACEHOLDER[p.lang], "ctx")], font(rng, "sans", S(16)), st["time"])
    # date chip
    y = top + S(12)
    chip = TODAY[p.lang]
    cw = small.getlength(chip) + S(20)
    d.rounded_rectangle([W / 2 - cw / 2, y, W / 2 + cw / 2, y + S(26)], S(8),
                        fill=st["inc"] if style_name != "imessage" else st["bg"])
    pg.line(W / 2, y + S(6), [(chip, "ctx")], small, st["time"], anchor="c")
    y += S(40)
    # the messages: identifying ones first, then a mix
    slots = prose.patient_slots(rng, p)
    id_pool = rng.sample(prose.CHAT_ID[p.lang], len(prose.CHAT_ID[p.lang]))
    plain = prose.CHAT_PLAIN[p.lang]
    hh, mm = rng.randint(7, 21), rng.randint(0, 50)
    msgs = []
    for k in range(rng.randint(6, 11)):
        outgoing = (k % 2 == 1) if rng.random() < 0.8 else rng.random() < 0.5
        if k == 0 or (id_pool and rng.random() < 0.45):
            msgs.append((outgoing, prose.segments(id_pool.pop(), slots) if id_pool else [(rng.choice(plain), "ctx")]))
        else:
            msgs.append((outgoing, [(rng.choice(plain), "ctx")]))
        if rng.random() < 0.12:
            msgs.append((outgoing, "image"))
    n_ids = 0
    max_w = int(W * rng.uniform(0.7, 0.8))
    pad_x, pad_y = S(12), S(7)
    for outgoing, segs in msgs:
        mm += rng.randint(0, 4)
        stamp = f"{hh + mm // 60:02d}:{mm % 60:02d}"
        sender = None if outgoing or not group else rng.choice(colleagues)
        if segs == "image":
            iw = int(W * 0.6)
            ih = int(iw * rng.uniform(0.7, 1.1))
            bw, bh = iw + 2 * S(4), ih + 2 * S(4)
        else:
            lines = prose.layout(segs, f, max_w - 2 * pad_x)
            tw = max(prose.line_width(ln, f) for ln in lines)
            name_h = lh if sender else 0
            bw = int(max(tw, small.getlength(stamp) + S(30), fb.getlength(f"{sender.given} {sender.family}")
                         if sender else 0) + 2 * pad_x)
            bh = int(name_h + len(lines) * lh + small.size * 1.2 + 2 * pad_y)
        if y + bh > bottom - S(8):
            break
        x = W - S(12) - bw if outgoing else S(12)
        fill = st["out"] if outgoing else st["inc"]
        fg = st["fg_out"] if outgoing else st["fg_inc"]
        d.rounded_rectangle([x, y, x + bw, y + bh], S(rng.choice([8, 12, 17])), fill=fill)
        if st["tail"]:
            tx0 = x + bw if outgoing else x
            dx = S(8) if outgoing else -S(8)
            d.polygon([(tx0 - 2 * dx, y), (tx0 + dx, y), (tx0, y + S(12))], fill=fill)
        if segs == "image":
            thumb = anatomy(nrng, rng.choice(["XR", "CT", "MR"]), bw - 2 * S(4), bh - 2 * S(4))
            pg.img.paste(Image.fromarray(thumb).convert("RGB"), (x + S(4), y + S(4)))
            pg.line(x + bw - S(10), y + bh - S(22), [(stamp, "ctx")], small, (240, 240, 240), anchor="r")
        else:
            ty = y + pad_y
            if sender:
                pg.line(x + pad_x, ty, [(f"{sender.given} {sender.family}", "id", sender_meta(sender))],
                        styled(f, "bold", S(fsize * 0.9)), rng.choice(st["names"]))
                ty += lh
            before = len(pg.identifiers)
            prose.draw_lines(pg, x + pad_x, ty, lines, f, fg, lh)
            n_ids += len(pg.identifiers) - before
            pg.line(x + bw - pad_x, y + bh - pad_y - small.size, [(stamp, "ctx")], small,
                    st["fg_out"] if outgoing and style_name in ("imessage", "signal_dark", "hospital") else st["time"],
                    anchor="r")
        y += bh + S(rng.choice([4, 6, 10]))
    meta = {"layout": f"chat_{style_name}", "font_px": f.size, "group": group, "prose_identifiers": n_ids}
    if rng.random() < 0.3:  # cropped to the conversation, as people do before forwarding
        crop_top = top + S(8)
        crop_bot = min(H, y + S(10))
        if crop_bot - crop_top > H * 0.3:
            _crop(pg, 0, crop_top, W, crop_bot)
            meta["cropped"] = True
    return pg, meta


def _crop(pg: Page, x0: int, y0: int, x1: int, y1: int) -> None:
    from PIL import ImageDraw

    pg.img = pg.img.crop((x0, y0, x1, y1))
    pg.draw = ImageDraw.Draw(pg.img)
    W, H = pg.img.size

    def shift(b):
        x, y, w, h = b[0] - x0, b[1] - y0, b[2], b[3]
        cx0, cy0, cx1, cy1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
        if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < 0.6 * w * h:
            return None
        return [cx0, cy0, cx1 - cx0, cy1 - cy0]

    for key in ("identifiers", "technical", "context"):
        recs = []
        for r in getattr(pg, key):
            b = shift(r["box"])
            if b:
                recs.append({**r, "box": b})
        setattr(pg, key, recs)
    pg.identifier_lines = [b for b in (shift(b) for b in pg.identifier_lines) if b]


def screenshot(rng: random.Random, nrng: np.random.Generator) -> tuple[Page, dict, ids.Patient]:
    p = ids.make_patient(rng)
    pg, meta = conversation(rng, nrng, p)
    meta.update(site=p.site, lang=p.lang)
    return pg, meta, p
