"""Header values found again in OCR'd text, through format changes and OCR noise."""

import pytest

from scrubgate.engine.hints import match

HINTS = (("person_name", "KOWALSKI^ANNA^MARIA"), ("mrn", "RX0042113"), ("date", "19620304"),
         ("institution", "Riverside Royal Infirmary"))


@pytest.mark.parametrize("line, kind", [
    ("KOWALSKI^ANNA", "person_name"),
    ("Kowalski, Anna M", "person_name"),
    ("Pt: KOWALSKl", "person_name"),          # l for I
    ("KOWALSKIANNA 62y F", "person_name"),    # glued by OCR
    ("ID RXOO42113", "mrn"),                  # O for 0
    ("RX 0042 113", "mrn"),
    ("DOB 04/03/1962", "date"),
    ("04-Mar-1962", "date"),
    ("1962-03-04 10:15", "date"),
    ("RIVERSIDE ROYAL INFIRMARY", "institution"),
])
def test_header_values_are_found_in_screen_formats(line, kind):
    assert match(line, HINTS) == kind


@pytest.mark.parametrize("line", [
    "Gain 54  12 cm", "C5-1 Abd Gen", "MI 0.9 TIS 0.4", "ANNALS of radiology"[:6] + "X",
    "FR 27Hz", "2D 68% C 50 P Low HGen", "04/03/1963",
])
def test_technical_text_and_near_misses_do_not_match(line):
    assert match(line, HINTS) is None


def test_placeholders_and_short_parts_are_not_hints():
    assert match("ANONYMOUS TEST", (("person_name", "ANONYMOUS^TEST"),)) is None
    assert match("LI NG 5 cm", (("person_name", "LI^NG"),)) is None
    assert match("ID 12", (("mrn", "12"),)) is None
