"""The named rules that decide which text lines to paint, on synthetic lines: no OCR.

Each test builds a page from (text, box, confidence) and asserts which lines a
rule paints, and that the redaction carries the rule's name. If a rule broke
(stopped firing, or fired on technical text), its test fails.
"""

from __future__ import annotations

from scrubgate.engine.scanner.text import rules
from scrubgate.engine.scanner.text.detect import Detection
from scrubgate.engine.scanner.text.page import Page
from scrubgate.engine.scanner.text.read import Line, Reading, Word

SIZE = (1280, 960)


def line(text: str, box, confidence: float = 0.97, second: tuple[str, float] | None = None) -> Line:
    x, y, w, h = box
    quad = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
    step = w / max(len(text), 1)  # monospaced word boxes, as a reader would give them
    words, pos = [], 0
    for word in text.split():
        a = text.index(word, pos)
        pos = a + len(word)
        words.append(Word(word, (round(x + a * step), y, max(1, round(len(word) * step)), h)))
    readings = [Reading(text, confidence, "ppocr", tuple(words))]
    if second:
        readings.append(Reading(second[0], second[1], "tesseract"))
    return Line(Detection(quad, box, 0.9), tuple(readings))


def page(*lines: Line, on_colour=None, size=SIZE) -> Page:
    return Page(size, list(lines), on_colour=list(on_colour or []))


def painted(p: Page, **kw) -> dict[int, str]:
    return {r.line: r.rule for r in rules.decide(p, **kw)}


def words_painted(text: str, width: int) -> list[str]:
    """The words of a one-line sentence (at x=10, monospaced) that its redaction paints."""
    [r] = rules.decide(page(line(text, (10, 400, width, 22))))
    step = width / len(text)
    return [text[round((b[0] - 10) / step):round((b[0] - 10 + b[2]) / step)].strip(" ,.") for b in r.parts]


def test_identifier_in_line_paints_the_line_and_names_the_recognizer():
    p = page(line("NHS 943 476 5919", (10, 10, 180, 22)), line("kVp 120 mAs 250", (1000, 10, 160, 22)))
    got = painted(p)
    assert set(got) == {0}
    assert got[0].startswith("identifier_in_line:nhs")


def test_a_second_reading_counts_when_the_first_is_garbled():
    p = page(line("NH5 9A3 A7b 59I9 ~", (10, 10, 180, 22), 0.55, second=("NHS 943 476 5919", 0.9)))
    assert 0 in painted(p)


def test_weak_name_on_an_unsure_reading_is_not_believed():
    # a gazetteer hit from texture read as letters: no reason to paint a photo
    p = page(line("Mary Rocket", (400, 500, 120, 20), 0.7))
    assert painted(p) == {}
    assert painted(page(line("Mary Rocket", (400, 500, 120, 20), 0.95))) == {0: "identifier_in_line:name.gazetteer"}


def test_header_value_matches_the_dicom_header_in_another_format():
    p = page(line("Smith J0hn", (500, 400, 120, 20)))
    assert painted(p) == {}
    assert painted(p, hints=(("person_name", "SMITH^JOHN"),)) == {0: "header_value"}


def test_label_with_a_misread_value_is_still_that_field():
    assert painted(page(line("Date de naissance: Zar", (500, 400, 240, 20)))) == {0: "label_with_value"}


def test_value_after_label_to_the_right_and_below():
    right = page(line("Patient Name:", (10, 300, 130, 20)), line("Wironil Klejaekaand", (300, 300, 180, 20)))
    assert painted(right) == {1: "value_after_label"}
    below = page(line("Patient Name:", (10, 300, 130, 20)), line("Wironil Klejaekaand", (12, 326, 180, 20)))
    assert painted(below) == {1: "value_after_label"}


def test_table_column_under_an_identifier_header_only():
    p = page(line("Patient ID", (300, 200, 100, 20)), line("Modality", (600, 200, 90, 20)),
             line("DOB", (800, 200, 60, 20)),
             line("QX77-21", (300, 230, 80, 20)), line("CT", (600, 230, 30, 20)),
             line("QX81-09", (300, 260, 80, 20)), line("MR", (600, 260, 30, 20)))
    got = painted(p)
    assert {3, 5} <= set(got) and got[3] == "table_column"
    assert 4 not in got and 6 not in got


def test_banner_neighbour_paints_the_unrecognised_line_between_identifiers():
    p = page(line("KOWALSKI^ANNA", (10, 10, 160, 22)), line("Royal Oakfield", (10, 36, 150, 22)),
             line("DOB: 04-Mar-1962", (10, 62, 170, 22)))
    assert painted(p) == {0: "identifier_in_line:name.caret", 1: "banner_neighbour",
                          2: "identifier_in_line:label.dob"}


def test_banner_neighbour_keeps_technical_text_and_the_next_section():
    p = page(line("KOWALSKI^ANNA", (10, 10, 160, 22)), line("W 400 L 40", (10, 36, 110, 22)),
             line("DOB: 04-Mar-1962", (10, 62, 170, 22)),
             # a paragraph gap, then a heading and results: another block
             line("Observations", (10, 130, 130, 22)), line("Heart rate 82 bpm", (10, 156, 170, 22)))
    got = painted(p)
    assert 1 not in got and 3 not in got and 4 not in got


def test_banner_row_paints_an_unrecognised_piece_between_identifiers():
    p = page(line("Study 12/05/2021", (400, 10, 170, 22)), line("Oakfield Royal", (600, 10, 140, 22)),
             line("Acc 55321987", (770, 10, 130, 22)))
    assert painted(p).get(1) == "banner_neighbour"


def test_unreadable_line_in_a_corner_is_painted_but_not_in_the_picture():
    readable = [line(t, (1000, 10 + 26 * i, 160, 22)) for i, t in enumerate(["kVp 120", "mAs 250", "W 400 L 40"])]
    corner = line("~#;,", (12, 12, 170, 22), 0.3)
    middle = line("~#;,", (560, 480, 170, 22), 0.3)
    got = painted(page(*readable, corner, middle))
    assert got == {3: "unreadable_where_identifiers_live"}


def test_unreadable_speck_or_blob_is_not_text():
    blob = line("o", (300, 60, 400, 400), 0.3)  # anatomy the detector liked
    speck = line(".", (12, 12, 14, 14), 0.3)
    assert painted(page(line("kVp 120", (1000, 10, 160, 22)), blob, speck)) == {}


def test_an_unreadable_tilted_blob_in_a_corner_is_not_text():
    """Texture in a text-free photo's corner, found as a 143x125 'line' tilted by 11
    degrees: its upright box is wide enough to pass for text, its own shape is not."""
    import math

    cx, cy, w, h, a = 1432, 1247, 143, 125, math.radians(11)
    along, down = (w / 2 * math.cos(a), w / 2 * math.sin(a)), (-h / 2 * math.sin(a), h / 2 * math.cos(a))
    quad = tuple((cx + sx * along[0] + sy * down[0], cy + sx * along[1] + sy * down[1])
                 for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)))
    xs, ys = [q[0] for q in quad], [q[1] for q in quad]
    box = (int(min(xs)), int(min(ys)), int(max(xs) - min(xs)), int(max(ys) - min(ys)))
    blob = Line(Detection(quad, box, 0.53), (Reading("~", 0.3, "ppocr"),))
    assert painted(page(blob, size=(1600, 1350))) == {}
    assert painted(page(line("~#;,", (1300, 1290, 170, 40), 0.3), size=(1600, 1350))) != {}  # a line is


def test_unreadable_line_on_a_coloured_header_band_is_painted():
    p = page(line("Ward 7B", (10, 300, 90, 22)), line("~#;,", (500, 300, 170, 22), 0.3),
             on_colour=[False, True])
    assert painted(p) == {1: "unreadable_where_identifiers_live"}


def test_all_text_paints_every_line_and_none_paints_nothing():
    p = page(line("kVp 120 mAs 250", (1000, 10, 160, 22)), line("NHS 943 476 5919", (10, 10, 180, 22)))
    assert painted(p, text="all") == {0: "all_text", 1: "all_text"}
    assert painted(p, text="none") == {}
    assert painted(page(), text="all") == {}


def test_a_sentence_loses_its_identifier_words_not_the_whole_line():
    sentence = line("Can you review the CXR for Mrs Jane Okafor please, looks like pneumonia", (10, 400, 700, 22))
    banner = line("KOWALSKI^ANNA NHS 943 476 5919", (10, 10, 300, 22))
    [s] = rules.decide(page(sentence))
    assert s.parts and all(b[0] > 10 + 200 and b[0] < 10 + 600 for b in s.parts)  # "for Mrs Jane Okafor please,"
    assert rules.decide(page(banner))[0].parts == ()  # a banner line goes whole
    unsure = line(sentence.text, sentence.box, confidence=0.8)
    assert rules.decide(page(unsure))[0].parts == ()  # so does a sentence read unsurely


def test_a_sentence_also_loses_the_places_and_numbers_around_a_name():
    text = "Frau Kallert wohnt in der Freya-Bohnbach-Allee 5, 03924 Neubrandenburg und hat COPD"
    painted_words = set(words_painted(text, 860))
    assert {"Freya-Bohnbach-Allee", "03924", "Neubrandenburg"} <= painted_words
    assert "COPD" not in painted_words and "hat" not in painted_words and "der" not in painted_words


def test_a_sentence_that_starts_with_a_name_loses_its_first_word_too():
    # The first word is spared as capitalised by grammar; not when it starts the name.
    painted_words = set(words_painted("Anna KOWALSKI, 14 Church Lane, Leeds LS1 4AB seen today", 640))
    assert {"Anna", "KOWALSKI", "Church", "Leeds"} <= painted_words
    assert "Please" not in set(words_painted("Please see Mrs Jane Okafor, 14 Church Lane today", 640))


def test_a_message_wrapped_onto_short_lines_is_no_banner():
    # A chat bubble: the name lines go, the plain words wrapped between them stay
    # (each line is too short to be a sentence); a banner's unread value stays painted.
    bubble = page(line("Stéphane Rocher", (68, 150, 463, 50)), line("Le scanner cérébral de", (67, 221, 601, 50)),
                  line("Madeleine Désiré est fait,", (66, 284, 669, 50)),
                  line("compte rendu a suivre", (64, 350, 601, 50)))
    got = painted(bubble)
    assert set(got) == {0, 2}
    banner = page(line("KOWALSKI, ANNA", (10, 10, 200, 22)), line("Taepitroex Drataebeim", (10, 36, 220, 22)),
                  line("NHS 943 476 5919", (10, 62, 200, 22)))
    assert painted(banner).get(1) == "banner_neighbour"


def test_prose_between_two_named_lines_is_no_banner():
    p = page(line("Dear Dr Hoareau, thank you for seeing Mrs Jane Okafor", (10, 100, 600, 22)),
             line("who has had a productive cough for three weeks and fever", (10, 126, 610, 22)),
             line("Her daughter Sarah Okafor can be reached on 07700 900123", (10, 152, 600, 22)))
    assert 1 not in painted(p)


def test_each_rule_keeps_its_thresholds_in_the_tuning_record():
    strict = rules.RuleTuning(unreadable_below=0.2)
    corner = page(line("kVp 120", (1000, 10, 160, 22)), line("~#;,", (12, 12, 170, 22), 0.3))
    assert painted(corner) and not rules.decide(corner, tuning=strict)


def test_an_identifier_split_by_the_detector_is_found_across_the_gap():
    # an addressograph label: the detector cut "BALL, Redir" at the wide space
    p = page(line("Ball,", (592, 304, 72, 31), 0.9), line("Redir", (672, 306, 80, 31), 0.93),
             line("Gain 54", (1100, 306, 90, 31)))
    got = painted(p)
    assert got == {0: "identifier_across_gap:name.comma", 1: "identifier_across_gap:name.comma"}
    # far apart on the row, the two words are two fields, not one name
    assert painted(page(line("Ball,", (100, 304, 72, 31), 0.9), line("Redir", (900, 306, 80, 31), 0.93))) == {}


def test_a_number_shaped_span_needs_a_less_sure_reading_than_a_name():
    # photographed screens read at 0.6-0.8; texture does not read as eight digits
    assert painted(page(line("66417165", (460, 326, 86, 30), 0.71))) == {0: "identifier_in_line:mrn.bare_number"}
    assert painted(page(line("Mary Rocket", (460, 326, 86, 30), 0.71))) == {}
    assert painted(page(line("0 10 20 30 40", (460, 326, 186, 30), 0.95))) == {}  # a scale, not a number


def test_a_banner_column_spreads_past_id_shaped_codes_but_not_measurements():
    # a form's value column under a hospital name: the labels were too faint to detect
    values = ["Hôpital Saint-Louis", "VIDAL-DIANE", "66417165", "2 00 01 s0 550 672 61", "12 mais 2015",
              "RAD73410", "Dr Hoareau"]
    lines = [line(t, (460, 270 + 30 * k, 150, 26), 0.8) for k, t in enumerate(values)]
    got = painted(page(*lines))
    assert set(got) == set(range(len(values))), got
    assert got[3] == got[5] == "banner_neighbour"  # ID-shaped, though code-like
    tech = [line(t, (460, 270 + 30 * k, 150, 26), 0.95) for k, t in enumerate(["66417165", "12cm 45 30", "Gain 54"])]
    assert set(painted(page(*tech))) == {0}


def test_a_tilted_photos_overlapping_boxes_still_stack():
    # boxes of a tilted photo overlap their neighbours; centres are a line apart
    p = page(*[line(f"line {k}", (460, 300 + 25 * k, 150, 37)) for k in range(4)])
    assert p.stacks == [[0, 1, 2, 3]]


def test_a_name_found_once_is_followed_through_the_page():
    p = page(line("Wil iemand dhr. Öztürk beoordelen", (330, 640, 690, 50), 0.94),
             line("CT-hersenen van Bimoex Ozturk is", (56, 430, 706, 50), 0.94),  # OCR lost the umlauts
             line("Familie belt terug over de uitslag van vandaag", (450, 1041, 700, 50), 0.96),
             line("Verslag staat in PACS", (573, 1547, 452, 50), 0.96))
    got = painted(p)
    assert got[0].startswith("identifier_in_line") and got[1] == "name_elsewhere"
    assert 2 not in got and 3 not in got  # the message around it is not a banner


def test_a_recurring_pair_of_unknown_capitalised_words_is_a_name():
    # a group chat heads each bubble with its sender; OCR spells it a little differently each time
    senders = [line(t, (52, 375 + 470 * k, 372, 46), 0.93) for k, t in
               enumerate(["Loüchaam Citroën", "Lotichaam Citroén", "Lotichaam Citroén"])]
    once = line("Verslag staat in PACS", (573, 1547, 452, 50), 0.96)
    got = painted(page(*senders, once, once))
    assert {0, 1, 2} <= set(got) and got[0] == "name_elsewhere"
    assert 3 not in got and 4 not in got  # recurring, but common words
    assert painted(page(senders[0])) == {}  # said once, an unknown pair is no evidence


def test_a_right_aligned_value_does_not_cut_the_left_column():
    # "12Hz" sits right-aligned under the name; the MRN is left-aligned under it
    name = line("HENDERSON,BRANDON", (5, 6, 192, 20))
    hz = line("12Hz", (146, 26, 52, 22))
    mrn = line("28-174257", (6, 27, 103, 20))
    p = page(name, hz, mrn)
    assert [0, 2] in p.stacks and [0, 1] in p.stacks
    got = painted(p)
    assert got[2] == "banner_neighbour" and 1 not in got  # the ID goes, the technical value stays


def test_numbers_make_a_form_field_longer_not_a_sentence():
    got = rules.decide(page(line("33-922789 Téléphone: 01 00 72 34 48", (85, 76, 231, 19))))
    assert len(got) == 1 and got[0].parts == ()  # the whole field goes, the MRN before the label too


def test_a_probe_line_in_a_banner_loses_its_mrn_and_keeps_its_values():
    """A vendor overlay prints the MRN on the probe's line: the ID-shaped words go (with
    the digit group OCR split off), the technical values stay."""
    p = page(line("SKIHOUK^BERTRAND 13 janv 1960 C9-2 TIB 1.0", (5, 2, 418, 18)),
             line("15943506 5.0 MHz 18Hz D 7cm", (5, 20, 270, 18)),
             line("(888541 14)? NEWS 6, BP 88/50", (5, 38, 290, 18)))
    got = {r.line: r for r in rules.decide(p)}
    assert got[1].rule == "banner_neighbour" and got[2].rule == "banner_neighbour"
    step1 = 270 / len(p.lines[1].text)
    assert [round((b[0] - 5) / step1) for b in got[1].parts] == [0]  # "15943506" alone
    assert len(got[2].parts) == 2  # "(888541" and "14)?", not "6," or "88/50"
    # A probe line with no ID-shaped word stays whole.
    q = page(line("SKIHOUK^BERTRAND 13 janv 1960", (5, 2, 300, 18)), line("C9-2 5.0 MHz 18Hz D 7cm", (5, 20, 250, 18)))
    assert 1 not in painted(q)


def test_labels_do_not_dilute_a_banner_row():
    """'DDN' between a birth date and an MRN in a header row: the MRN's neighbours are
    counted without the label."""
    p = page(line("LEFEVRE^MIKOEGREI", (9, 67, 182, 25)), line("DDN", (220, 59, 30, 19)),
             line("19721115", (218, 71, 71, 24)), line("17-892899", (307, 73, 74, 21)),
             line("=", (400, 56, 33, 42), 0.67))  # the age, misread
    assert painted(p).get(3) == "banner_neighbour"


def test_a_menu_or_tab_bar_is_no_banner():
    """One-word items in a row ('Synthese Resultats Observations Imagerie') under a
    patient banner are tabs, not more of the banner."""
    banner = [line("LEFEVRE^MIKOEGREI", (9, 67, 182, 25)), line("19721115", (218, 71, 71, 24))]
    tabs = [line(t, (8 + 120 * i, 100, 100, 24)) for i, t in
            enumerate(["Synthese", "Resultats", "Observations", "Imagerie", "Traitements"])]
    got = painted(page(*banner, *tabs))
    assert set(got) == {0, 1}, got


def test_a_sentence_loses_every_mention_of_a_name_it_names():
    text = "Ik heb de bevindingen met Rowan Post besproken. Wij zien dhr. Post over drie maanden terug"
    painted_words = words_painted(text, 900)
    assert {"Rowan", "Post", "dhr"} <= set(painted_words) and painted_words.count("Post") == 2


def test_a_banner_line_keeps_only_its_technical_words():
    """'NOEL Berend 19790725 L12-5 DR60 P 61%': everything but the probe values is painted
    (the name, the date, anything else not positively technical)."""
    text = "NOEL Berend 19790725 L12-5 DR60 P 61%"
    l = line(text, (6, 1, 370, 21))
    [r] = rules.decide(page(l))
    step = 370 / len(text)

    def covered(word: str) -> bool:
        a = 6 + text.index(word) * step
        b = a + len(word) * step
        return any(p[0] <= a + 2 and b - 2 <= p[0] + p[2] for p in r.parts)

    assert r.parts and all(covered(w) for w in ("NOEL", "Berend", "19790725"))
    assert not any(covered(w) for w in ("L12-5", "DR60", "61%"))
    unsure = line(text, (6, 1, 370, 21), confidence=0.7)
    assert rules.decide(page(unsure))[0].parts == ()  # unsure: the whole line


def test_a_table_column_ends_at_the_next_tables_header():
    """A banner's 'DDN | N° patient | Âge' looks like a worklist header; the lab table
    further down ('Résultat | Unité | Norme') is another table, not its column."""
    p = page(line("DDN", (220, 59, 40, 19)), line("N° patient", (309, 59, 80, 19)), line("Âge", (400, 59, 33, 19)),
             line("19721115", (218, 85, 71, 22)), line("17-892899", (307, 85, 74, 22)),
             line("Résultat", (222, 139, 68, 24)), line("Unité", (366, 139, 46, 24)), line("Norme", (544, 139, 57, 24)),
             line("88", (220, 164, 30, 24)), line("mL/min", (365, 164, 60, 24)), line(">60", (543, 164, 39, 24)))
    got = painted(p)
    assert {3, 4} <= set(got)
    assert not {5, 6, 7, 8, 9, 10} & set(got), got


def test_the_letterhead_is_the_institution():
    """A form's first row, 'Rijnstate Arnhem', has no 'Hospital' to find: the first row of
    proper words goes. A menu, a technical title or a date row up there stays."""
    form = page(line("Rijnstate Arnhem", (177, 463, 339, 44)), line("Achternaam:", (174, 612, 202, 42)),
                line("Drelae", (527, 612, 118, 44)), line("Geboortedatum:", (173, 724, 243, 43)))
    assert painted(form).get(0) == "letterhead"
    viewer = page(line("CT THORAX", (10, 10, 140, 22)), line("kVp 120 mAs 250", (10, 40, 160, 22)))
    assert 0 not in painted(viewer)
    chat = page(line("Vandaag", (300, 10, 90, 22)), line("Can you review this scan", (10, 60, 300, 22)))
    assert 0 not in painted(chat)


def test_print_beside_a_barcode_is_its_caption():
    """The code's box was blanked before the lines were found: what is left of the label's
    lines beside it ('10Ka840826', '07/1972 (F)') goes; a technical line there stays, and
    so does print in other rows."""
    p = Page(SIZE, [line("10Ka840826", (733, 524, 278, 60), 0.91), line("07/1972 (F)", (730, 576, 281, 72), 0.98),
                    line("kVp 120", (760, 650, 120, 40)), line("Bilan préopératoire", (216, 964, 249, 48))],
             codes=((319, 528, 424, 431),))
    got = painted(p)
    assert got.get(0) == "beside_code" and got.get(1) == "beside_code"
    assert 2 not in got and 3 not in got


def test_chat_contact_paints_the_person_above_a_presence_line():
    """A messenger's header: the name above 'online' is the person the chat is with, even
    when no recognizer knows the name; the clock beside it stays."""
    for status in ("online", "last seen today at 13:02", "typt...", "zuletzt online heute", "en ligne"):
        p = page(line("16:02", (54, 36, 116, 46)), line("Taepitroex Drataebeim", (215, 134, 476, 51)),
                 line(status, (217, 190, 300, 38)), line("Today", (490, 305, 98, 51)))
        assert painted(p) == {1: "chat_contact"}, status


def test_chat_contact_leaves_groups_and_lines_without_presence():
    header = line("ED majors", (215, 134, 300, 51))
    assert painted(page(header, line("typing...", (217, 190, 120, 38)))) == {}
    name = line("Taepitroex Drataebeim", (215, 134, 476, 51))
    assert painted(page(name, line("Today", (217, 190, 120, 38)))) == {}  # no presence line
    far = line("online", (900, 190, 120, 38))  # not under the name
    assert painted(page(name, far)) == {}


def test_title_bar_paints_the_site_named_in_a_window_title():
    """A screenshot's title bar names the hospital ("Patientenakte - Charité Berlin"), set
    smaller than the body, so no letterhead: the parts go, the window's buttons stay."""
    for title in ("Patientenakte - Charité Berlin", "Epic Hyperspace | Rijnstate Arnhem",
                  "Imagerie — Rangueil Toulouse"):
        p = page(line(title, (846, 4, 224, 22)), line("●●", (5, 5, 60, 24), 0.75),
                 line("Temp 37.2 °C", (288, 172, 125, 30)), line("Na 139 mmol/L", (289, 303, 134, 30)),
                 line("Befunde", (4, 195, 84, 33)))
        got = {r.line: r for r in rules.decide(p)}
        assert set(got) == {0}, title
        assert got[0].rule == "title_bar" and got[0].kind == "institution"
        site = title.split()[-1]
        assert any(words_in(got[0].parts, title, (846, 224)) & {site}), title


def test_title_bar_keeps_technical_titles_and_lines_below_the_top():
    titles = ("PACS Viewer - Study 3 of 5", "Charité Berlin")  # technical and numbered; no separator
    for title in titles:
        p = page(line(title, (846, 4, 224, 22)), line("Temp 37.2 °C", (288, 172, 125, 30)))
        assert painted(p) == {}, title
    lower = page(line("Temp 37.2 °C", (288, 4, 125, 30)), line("Notes - Charité Berlin", (846, 400, 224, 22)))
    assert painted(lower) == {}  # not the first row: a line of content, for the other rules


def words_in(parts, text: str, span: tuple[int, int]) -> set[str]:
    """The words of `text` (monospaced from x=span[0] over span[1] px) that `parts` cover."""
    x0, width = span
    step = width / len(text)
    out = set()
    for a, b in ((b[0], b[0] + b[2]) for b in parts):
        out |= set(text[round((a - x0) / step):round((b - x0) / step)].split())
    return out
