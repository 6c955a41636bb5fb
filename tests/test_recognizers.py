"""OCR-text identifier recognizers: what must be found, and what must be left alone.

Every positive case plants a known identifier and asserts that a span of the
right kind covers exactly that value in the *original* text (so offsets are
checked too); every negative case asserts that nothing is flagged.
"""

from __future__ import annotations

import dataclasses
import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from scrubgate.engine.recognizers import (
    IDENTIFIER_KINDS_TEXT,
    Span,
    dangling_label,
    find_identifiers,
    is_technical,
)

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "addons" / "scrubgate" / "engine" / "recognizers"


def covering(text: str, value: str, kind: str) -> list[Span]:
    """Spans of `kind` that cover the first occurrence of `value`."""
    at = text.index(value)
    return [s for s in find_identifiers(text)
            if s.kind == kind and s.start <= at and s.end >= at + len(value)]


def assert_flagged(text: str, value: str, kind: str, recognizer: str | None = None) -> Span:
    spans = covering(text, value, kind)
    assert spans, f"{kind} not found in {text!r}: {find_identifiers(text)}"
    if recognizer is not None:
        assert any(s.recognizer == recognizer for s in spans), spans
    # the span must not run far past the value either (we black out boxes)
    best = min(spans, key=lambda s: s.end - s.start)
    assert best.end - best.start <= len(value) + 12, (text[best.start:best.end], value)
    return best


def kinds(text: str) -> set[str]:
    return {s.kind for s in find_identifiers(text)}


# ---------------------------------------------------------------------------
# National identifiers: valid checksum found bare; failing checksum only with a label

VALID_IDS = [
    ("9434765919", "nhs_number"),
    ("943 476 5919", "nhs_number"),
    ("943-476-5919", "nhs_number"),
    ("4010234563", "nhs_number"),
    ("0101801238", "chi_number"),
    ("150372-4565", "chi_number"),
    ("320 123 4567", "hc_number"),
    ("123456782", "bsn"),
    ("1234.56.782", "bsn"),
    ("111 222 333", "bsn"),
    ("85.07.30-033.28", "rrn"),
    ("85073003328", "rrn"),
    ("05.10.15-123.19", "rrn"),  # born 2005: the '2' prefix variant of mod 97
    ("A123456780", "kvnr"),
    ("1 85 05 78 006 084 91", "nir"),
    ("185057800608491", "nir"),
    ("2 69 05 2A 588 157 17", "nir"),  # Corsica 2A
    ("1 82 02 2B 123 456 62", "nir"),  # Corsica 2B
    ("1234567T", "ppsn"),
    ("1234567FA", "ppsn"),
    ("123-45-6789", "ssn"),
    ("1EG4-TE5-MK73", "mbi"),
    ("1EG4TE5MK73", "mbi"),
]


@pytest.mark.parametrize(("value", "recognizer"), VALID_IDS)
def test_national_id_with_valid_checksum_is_found_without_label(value: str, recognizer: str) -> None:
    text = f"ref {value} ok"
    span = assert_flagged(text, value, "national_id", recognizer)
    assert text[span.start:span.end] == value


CONTEXT = {
    "nhs_number": "NHS No:", "chi_number": "CHI:", "hc_number": "H&C No", "bsn": "BSN:", "rrn": "INSZ:",
    "kvnr": "KVNR", "nir": "N° Sécu:", "ppsn": "PPSN:", "ssn": "SSN:", "mbi": "MBI:",
}


@pytest.mark.parametrize(("value", "recognizer"), VALID_IDS)
def test_context_word_raises_confidence(value: str, recognizer: str) -> None:
    bare = max(s.confidence for s in covering(f"x {value}", value, "national_id"))
    text = f"{CONTEXT[recognizer]} {value}"
    labelled = max(s.confidence for s in covering(text, value, "national_id"))
    assert labelled > bare
    assert labelled >= 0.9


FAILING = [
    ("9434765918", "NHS No: 9434765918", "nhs_number.label"),
    ("943 476 5918", "NHS: 943 476 5918", "nhs_number.label"),
    ("0101801239", "CHI No 0101801239", "chi_number.label"),
    ("3201234568", "H&C: 3201234568", "hc_number.label"),
    ("123456783", "BSN: 123456783", "bsn.label"),
    ("85.07.30-033.29", "INSZ 85.07.30-033.29", "rrn.label"),
    ("85.07.30-033.29", "NISS: 85.07.30-033.29", "rrn.label"),
    ("A123456781", "KVNR: A123456781", "kvnr.label"),
    ("185057800608492", "NIR: 185057800608492", "nir.label"),
    ("1234567A", "PPSN 1234567A", "ppsn.label"),
    ("6669876543", "MBI: 6669876543", "mbi.label"),
]


@pytest.mark.parametrize(("value", "labelled", "recognizer"), FAILING)
def test_failing_checksum_needs_a_label(value: str, labelled: str, recognizer: str) -> None:
    # Without its label the number is no national ID (at most a long code, painted as an MRN).
    assert [s for s in find_identifiers(f"value {value} end")
            if s.recognizer not in ("mrn.long_number", "mrn.long_code")] == []
    assert_flagged(labelled, value, "national_id", recognizer)


def test_clock_time_on_a_banner_is_a_date_but_durations_are_not() -> None:
    assert_flagged("US 2:56:22 PM", "2:56:22 PM", "date", "date.clock_time")
    assert_flagged("Exam 14:02:11", "14:02:11", "date", "date.clock_time")
    for technical in ("FR 30 Hz 00:03", "Depth 16 cm 1:2", "W 400 L 40"):
        assert "date" not in kinds(technical), technical


def test_long_number_inside_a_line_is_a_code_but_short_ones_are_not() -> None:
    assert_flagged("ZZZ TEST PATIENT 00079241539", "00079241539", "mrn", "mrn.long_number")
    assert_flagged("Graf, Anna  H490743", "H490743", "mrn", "mrn.shape")
    assert_flagged("CTPA  RAD-573462", "RAD-573462", "mrn", "mrn.shape")
    assert_flagged("XR CHEST 2014R9571996", "2014R9571996", "mrn", "mrn.long_code")
    for probe in ("C5-1", "L12-5", "EC9-4"):
        assert "mrn" not in kinds(probe), probe
    for technical in ("Frame 12345678 of", "Zoom 150%", "X 1024 Y 768", "1.23456789012", "12:34:56"):
        assert "mrn" not in kinds(technical), technical


def test_ssn_needs_label_when_undashed() -> None:
    assert "national_id" not in kinds("total 078051120 frames")
    assert_flagged("SSN: 078051120", "078051120", "national_id", "ssn.label")
    assert find_identifiers("000-12-3456") == []  # area 000 is never issued


def test_a_line_that_is_only_a_long_number_is_an_id() -> None:
    # Real ultrasounds print the MRN and accession number on lines of their own.
    assert_flagged("00047431395", "00047431395", "mrn", "mrn.bare_number")
    assert_flagged("120907058", "120907058", "mrn", "mrn.bare_number")
    for technical in ("1024", "123456", "12.5 cm", "Gain 1234567 x", "8:48:26 AM"):
        assert "mrn" not in kinds(technical), technical


def test_ocr_confused_nhs_number() -> None:
    text = "NHS: 943 476 59l9"
    span = assert_flagged(text, "943 476 59l9", "national_id", "nhs_number")
    assert span.confidence >= 0.9
    assert_flagged("NHS No 943 476 59I9", "943 476 59I9", "national_id")
    assert_flagged("NH5 N0: 943-476-5919", "943-476-5919", "national_id")


# ---------------------------------------------------------------------------
# Hospital numbers

@pytest.mark.parametrize(("text", "value"), [
    ("MRN: A1234567", "A1234567"),
    ("MR# 12-345678", "12-345678"),
    ("Hosp No: RX0042113", "RX0042113"),
    ("Hospital No. 00123456", "00123456"),
    ("Patient ID: 7765432", "7765432"),
    ("PID 55123987", "55123987"),
    ("ID: 4412345", "4412345"),
    ("Pat. ID: K2024-00871", "K2024-00871"),
    ("Unit No: U1234567", "U1234567"),
    ("URN 0047113", "0047113"),
    ("Case No 2023-1187", "2023-1187"),
    ("Acc# 88812345", "88812345"),
    ("Accession: ACC20231187", "ACC20231187"),
    ("Patiëntnummer: 1234567", "1234567"),
    ("Patnr 8812345", "8812345"),
    ("Pat.-Nr.: 4711081", "4711081"),
    ("Fallnummer 20230042", "20230042"),
    ("N° patient : 0912345", "0912345"),
    ("IPP: 100234567", "100234567"),
    ("NIP 7712345", "7712345"),
    ("MRN: RX00421l3", "RX00421l3"),  # OCR l for 1
    ("ID patient: 92446235", "92446235"),  # French order: "ID" alone would take no value
    # a specimen's or request's number on a tube label or lab form
    ("N°labo: 46862499", "46862499"),
    ("N° de demande : 46862499", "46862499"),
    ("Lab No: 46862499", "46862499"),
    ("Specimen ID: S24-118812", "S24-118812"),
    ("Auftragsnr.: 46862499", "46862499"),
    ("Probe-Nr. 46862499", "46862499"),
    ("Monsternummer: 46862499", "46862499"),
    ("Spec No: ACC8492", "ACC8492"),
])
def test_mrn_after_label(text: str, value: str) -> None:
    span = assert_flagged(text, value, "mrn", "mrn.label")
    assert text[span.start:span.end] == value


def test_mrn_label_stops_at_name_and_needs_digits() -> None:
    text = "MRN 12345678 SMITH JOHN"
    span = assert_flagged(text, "12345678", "mrn")
    assert text[span.start:span.end] == "12345678"
    assert "mrn" not in kinds("ID: 12")
    assert "mrn" not in kinds("Series ID: 3")
    assert "mrn" not in kinds("Lab 5 results") and "mrn" not in kinds("Sample: blood")


def test_bare_hospital_number_shape_has_low_confidence() -> None:
    span = assert_flagged("RX0042113", "RX0042113", "mrn", "mrn.shape")
    assert span.confidence <= 0.6


# ---------------------------------------------------------------------------
# Dates

@pytest.mark.parametrize(("value", "recognizer"), [
    ("04/03/2018", "date.dmy_slash"),
    ("4/3/18", "date.dmy_slash"),
    ("04-03-2018", "date.dmy_dash"),
    ("04.03.2018", "date.dmy_dot"),
    ("03/24/2018", "date.dmy_slash"),  # US order
    ("04-Mar-2018", "date.dmy_text"),
    ("04 Mar 2018", "date.dmy_text"),
    ("4 March 2018", "date.dmy_text"),
    ("04MAR2018", "date.dmy_text"),
    ("Mar 4, 2018", "date.mdy_text"),
    ("March 4 2018", "date.mdy_text"),
    ("2018-03-04", "date.ymd"),
    ("2018/03/04", "date.ymd"),
    ("20180304", "date.ymd_compact"),
    ("4 mrt 2018", "date.dmy_text"),
    ("12 mei 1975", "date.dmy_text"),
    ("3 okt. 1990", "date.dmy_text"),
    ("4. März 2018", "date.dmy_text"),
    ("4 mär 2018", "date.dmy_text"),
    ("1 Jänner 1960", "date.dmy_text"),
    ("12 déc. 1988", "date.dmy_text"),
    ("4 mars 2018", "date.dmy_text"),
    ("15 juin 1970", "date.dmy_text"),
    ("1er janvier 2000", "date.dmy_text"),
    ("2018 Mar 04", "date.ymd_text"),
])
def test_date_formats(value: str, recognizer: str) -> None:
    text = f"Study {value} done"
    span = assert_flagged(text, value, "date", recognizer)
    assert text[span.start:span.end] == value


@pytest.mark.parametrize("text", [
    "31/02/2018", "2018-13-01", "20181340", "18991231", "32.01.2020", "v2.10.12", "Software 1.5.10",
    "BP 120/80", "120/80", "3/4", "1/250", "Im: 12/240", "Ratio 2/3",
])
def test_not_dates(text: str) -> None:
    assert "date" not in kinds(text)


def test_time_next_to_date_is_included() -> None:
    text = "Acq 04/03/2018 14:32:05 end"
    span = assert_flagged(text, "04/03/2018 14:32:05", "date")
    assert text[span.start:span.end] == "04/03/2018 14:32:05"
    text = "14:32 2018-03-04"
    assert_flagged(text, "14:32 2018-03-04", "date")


def test_a_time_glued_to_a_date_leaves_the_date_a_date() -> None:
    # OCR drops the space in a label's "08.03.2021 07:54" ("Afnamedatum/tijd:").
    for text, value in (("08.03.202107:54", "08.03.2021"), ("2023-12-0908:08", "2023-12-09"),
                        ("12/03/202114:22", "12/03/2021")):
        span = assert_flagged(text, value, "date")
        assert text[span.start:span.end] == value
    assert "date" not in kinds("Im: 12/24014:22")  # no real date before the time


def test_time_without_seconds_alone_is_not_an_identifier() -> None:
    # A clock with seconds or AM/PM is a study time (test_clock_time_on_a_banner_...);
    # a bare hh:mm is as often a duration or a scale.
    assert find_identifiers("14:32") == []


@pytest.mark.parametrize(("text", "value"), [
    ("DOB: 04/03/2018", "04/03/2018"),
    ("D.O.B. 4 Mar 1961", "4 Mar 1961"),
    ("DoB 1961-03-04 (57Y)", "1961-03-04 (57Y)"),
    ("DOB 04.03.1961 045Y", "04.03.1961 045Y"),
    ("Born: 12/11/1950 72 yrs", "12/11/1950 72 yrs"),
    ("Geb.: 12.11.1950", "12.11.1950"),
    ("Geboren 12-11-1950", "12-11-1950"),
    ("Geboortedatum: 12-11-1950", "12-11-1950"),
    ("Geburtsdatum: 12.11.1950", "12.11.1950"),
    ("Né(e) le 12/11/1950", "12/11/1950"),
    ("Née le : 12/11/1950", "12/11/1950"),
    ("Date de naissance : 12/11/1950", "12/11/1950"),
    ("Date of Birth: 12 Nov 1950", "12 Nov 1950"),
    ("Birth 19501112", "19501112"),
    ("D0B: O4/O3/2O18", "O4/O3/2O18"),  # OCR O for 0
    ("DOB: 04O3 1961", "04O3 1961"),  # mangled beyond a date: label + digits still flagged
])
def test_dob_label(text: str, value: str) -> None:
    span = assert_flagged(text, value, "date", "label.dob")
    assert text[span.start:span.end] == value


# ---------------------------------------------------------------------------
# Contact details and postcodes

@pytest.mark.parametrize(("text", "value"), [
    ("call 07700 900123 now", "07700 900123"),
    ("07700900123", "07700900123"),
    ("+44 7700 900123", "+44 7700 900123"),
    ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
    ("020 7946 0958", "020 7946 0958"),
    ("06-12345678", "06-12345678"),
    ("+31 6 12345678", "+31 6 12345678"),
    ("+31 20 123 4567", "+31 20 123 4567"),
    ("+49 30 12345678", "+49 30 12345678"),
    ("030 12345678", "030 12345678"),
    ("01 23 45 67 89", "01 23 45 67 89"),
    ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ("(555) 123-4567", "(555) 123-4567"),
    ("555-234-5678", "555-234-5678"),
    ("Tel: 4711 0815", "4711 0815"),
])
def test_phone_numbers(text: str, value: str) -> None:
    span = assert_flagged(text, value, "phone")
    assert text[span.start:span.end] == value


@pytest.mark.parametrize("text", ["j.smith@nhs.net", "Contact: anna.de-vries@umcg.nl", "jan.jansen+scan@example.org"])
def test_email(text: str) -> None:
    value = text.split()[-1]
    assert_flagged(text, value, "email", "email")


@pytest.mark.parametrize(("value", "recognizer"), [
    ("SW1A 1AA", "postcode.uk"), ("M1 1AE", "postcode.uk"), ("B33 8TH", "postcode.uk"),
    ("CR2 6XH", "postcode.uk"), ("DN55 1PT", "postcode.uk"), ("EH1 1YZ", "postcode.uk"),
    ("1234 AB", "postcode.nl"), ("9713GZ", "postcode.nl"),
])
def test_postcodes(value: str, recognizer: str) -> None:
    text = f"London {value}" if recognizer == "postcode.uk" else f"Groningen {value}"
    assert_flagged(text, value, "postcode", recognizer)


@pytest.mark.parametrize("text", [
    "1234 SA", "1234 SS", "1234 SD",  # letter pairs the Dutch post never issues
    "TR 2000 MS", "1024 PX", "Q1 1AA", "C5-1",
])
def test_not_postcodes(text: str) -> None:
    assert "postcode" not in kinds(text)


def test_postcode_label() -> None:
    assert_flagged("PLZ: 69120", "69120", "postcode", "postcode.label")
    assert_flagged("Code postal 33000", "33000", "postcode", "postcode.label")


# ---------------------------------------------------------------------------
# Person names

@pytest.mark.parametrize(("text", "value"), [
    ("Name: Zyxwort Quenby", "Zyxwort Quenby"),  # not in any gazetteer: the label is enough
    ("Patient Name: QUIBBLESWORTH ARNOLDINE", "QUIBBLESWORTH ARNOLDINE"),
    ("Patient: Jones Margaret", "Jones Margaret"),
    ("Pt: Xanthopoulou Eleni", "Xanthopoulou Eleni"),
    ("Pat. Vrijthoff Annelot", "Vrijthoff Annelot"),
    ("Naam: de Vries, Janneke", "de Vries, Janneke"),
    ("Patiënt: Zwartbroek Hendrika", "Zwartbroek Hendrika"),
    ("Patiëntnaam: Bloemkoolstra J.", "Bloemkoolstra J."),
    ("Name, Vorname: Grünwaldner, Käthe", "Grünwaldner, Käthe"),
    ("Nom : DUPLESSIX", "DUPLESSIX"),
    ("Prénom : Gwenaëlle", "Gwenaëlle"),
    ("Nom du patient: LEBRETONNIC Yannick", "LEBRETONNIC Yannick"),
    ("Referring: Dr Okonkwo-Blythe", "Dr Okonkwo-Blythe"),
    ("Ref. Phys: Abernathy-Quist", "Abernathy-Quist"),
    ("Physician: Cavendish-Poole", "Cavendish-Poole"),
    ("Arts: Verbruggen", "Verbruggen"),
    ("Verwijzer: Hoogeveen-Pas", "Hoogeveen-Pas"),
    ("Überweiser: Dr. Kleinschmidt", "Dr. Kleinschmidt"),
    ("Médecin : Lefebvre-Anouilh", "Lefebvre-Anouilh"),
    ("Name: john smith", "john smith"),  # OCR lower-cased, but after a colon
])
def test_name_after_label(text: str, value: str) -> None:
    span = assert_flagged(text, value, "person_name", "name.label")
    assert text[span.start:span.end] == value


def test_name_label_value_stops_at_next_field() -> None:
    text = "Name: SMITH JOHN Sex: M DOB: 01/02/1960"
    span = [s for s in find_identifiers(text) if s.recognizer == "name.label"][0]
    assert text[span.start:span.end] == "SMITH JOHN"
    text = "Name: QUENBY ZYX 45Y M | ID 4412345"
    span = [s for s in find_identifiers(text) if s.recognizer == "name.label"][0]
    assert text[span.start:span.end] == "QUENBY ZYX"


@pytest.mark.parametrize("text", [
    "Protocol Name: ABDOMEN_ROUTINE", "Station Name: CT01", "Series Name: Axial T2",
    "Patient Position: HFS", "Patient Orientation: A P", "Name:", "the patient was seen today",
])
def test_name_labels_that_are_not_names(text: str) -> None:
    assert "person_name" not in kinds(text)


@pytest.mark.parametrize(("text", "value", "min_conf"), [
    ("SMITH^JOHN", "SMITH^JOHN", 0.9),
    ("QUIBBLE^ZYXWORT^Q", "QUIBBLE^ZYXWORT^Q", 0.9),  # not in the gazetteer
    ("Smith^John^^^", "Smith^John^^^", 0.9),
    ("SMITH ^ JOHN", "SMITH ^ JOHN", 0.9),
    ('QUIBBLE"ZYXWORT', 'QUIBBLE"ZYXWORT', 0.6),  # OCR read ^ as "
    ("QUIBBLE'ZYXWORT", "QUIBBLE'ZYXWORT", 0.6),
    ("QUIBBLE*ZYXWORT", "QUIBBLE*ZYXWORT", 0.6),
    ("QUIBBLE~ZYXWORT", "QUIBBLE~ZYXWORT", 0.6),
    ("QUIBBLE* ZYXWORT", "QUIBBLE* ZYXWORT", 0.6),  # Tesseract puts a space after the misread caret
    ("QUIBBLE” ZYXWORT", "QUIBBLE” ZYXWORT", 0.6),
    ("O'BRIEN^MARY", "O'BRIEN^MARY", 0.9),
    ("LONG^MARY", "LONG^MARY", 0.9),  # a real caret beats the technical word list
])
def test_caret_names(text: str, value: str, min_conf: float) -> None:
    span = assert_flagged(text, value, "person_name", "name.caret")
    assert span.confidence >= min_conf
    assert text[span.start:span.end] == value


def test_apostrophe_inside_a_name_is_not_a_caret() -> None:
    assert "person_name" not in {s.kind for s in find_identifiers("O'BRIEN") if s.recognizer == "name.caret"}
    assert find_identifiers('"LIVER"KIDNEY') == []


@pytest.mark.parametrize(("text", "value"), [
    ("QUIBBLESWORTH, Arnoldine", "QUIBBLESWORTH, Arnoldine"),
    ("QUIBBLESWORTH, ARNOLDINE", "QUIBBLESWORTH, ARNOLDINE"),
    ("SMITH, John A", "SMITH, John A"),
    ("Smith, John", "Smith, John"),  # Title, Title: only with a gazetteer hit
    ("VAN DER BERG, Anna", "VAN DER BERG, Anna"),
])
def test_comma_names(text: str, value: str) -> None:
    span = assert_flagged(text, value, "person_name", "name.comma")
    assert text[span.start:span.end] == value


@pytest.mark.parametrize("text", ["Sagittal, Coronal", "LIVER, KIDNEY", "ABD, PELVIS", "Name, Vorname", "CT, MR"])
def test_comma_pairs_that_are_not_names(text: str) -> None:
    assert "person_name" not in kinds(text)


@pytest.mark.parametrize("text", ["Graf, Grychisteil H490743", "Zyxwort, Quibble"])
def test_title_case_comma_pair_outside_the_gazetteer_is_a_weak_name(text: str) -> None:
    span = next(s for s in find_identifiers(text) if s.kind == "person_name")
    assert span.recognizer == "name.comma" and 0.5 <= span.confidence < 0.7


@pytest.mark.parametrize(("text", "value", "kind"), [
    ("2023-01-31T13:41:50", "2023-01-31T13:41:50", "date"),  # ISO 8601 timestamp
    ("Ace: 95914193", "95914193", "mrn"),  # Tesseract's reading of "Acc:"
    ("Verwilzer: dr. van t Houteveen", "van t Houteveen", "person_name"),  # lost j and apostrophe
    ("Dossier - UZLeuven", "UZLeuven", "institution"),  # lost space
    ("2016-04-20T 19:38:34", "2016-04-20", "date"),  # OCR put a space after the T
])
def test_ocr_shapes_of_real_overlays(text: str, value: str, kind: str) -> None:
    span = next(s for s in find_identifiers(text) if s.kind == kind)
    assert text[span.start:span.end].startswith(value[:10])


@pytest.mark.parametrize(("text", "kind"), [
    ("Accessienr", "mrn"), ("Accessienummer:", "mrn"),  # Dutch worklist headers
    ("Patiént-ID", "mrn"), ("Patient-ID", "mrn"),  # OCR's e-acute for e-umlaut; hyphenated
])
def test_table_headers_are_labels(text: str, kind: str) -> None:
    assert dangling_label(text) == kind



@pytest.mark.parametrize(("text", "value"), [
    ("Mr Quibblesworth", "Quibblesworth"),
    ("Mrs. J. Zyxwort", "J. Zyxwort"),
    ("Ms Okafor", "Okafor"),
    ("Dr Zyxwort", "Zyxwort"),
    ("Dhr. Vrijthoff", "Vrijthoff"),
    ("Mevr. van Zwartbroek", "van Zwartbroek"),
    ("Hr. Kleinschmidt", "Kleinschmidt"),
    ("Fr. Grünwaldner", "Grünwaldner"),
    ("Herr Dr. med. Kleinschmidt", "Kleinschmidt"),
    ("M. Duplessix", "Duplessix"),
    ("Mme Lebretonnic", "Lebretonnic"),
    ("Prof. Dr. Abernathy", "Abernathy"),
])
def test_titled_names(text: str, value: str) -> None:
    assert_flagged(text, value, "person_name", "name.honorific")


@pytest.mark.parametrize("text", ["MR BRAIN", "MR KNEE LEFT", "MS 20", "Fr 30", "HR 72 bpm", "M. 45Y"])
def test_titles_that_are_not_names(text: str) -> None:
    assert "person_name" not in kinds(text)


@pytest.mark.parametrize(("text", "value"), [
    ("John Smith", "John Smith"),
    ("SMITH JOHN", "SMITH JOHN"),
    ("Anna Zyxwort", "Anna Zyxwort"),  # known given name + name-looking word
    ("Sanne Bakker", "Sanne Bakker"),
    ("Hans Müller", "Hans Müller"),
    ("Pierre Dupont", "Pierre Dupont"),
    ("Maria José Garcia", "Maria José Garcia"),
    ("seen by Sarah Connolly today", "Sarah Connolly"),
])
def test_gazetteer_names(text: str, value: str) -> None:
    span = assert_flagged(text, value, "person_name", "name.gazetteer")
    assert text[span.start:span.end] == value


def test_lone_surname_in_caps() -> None:
    span = assert_flagged("JOHNSON", "JOHNSON", "person_name", "name.gazetteer_single")
    assert span.confidence < 0.5
    assert find_identifiers("JOHNSON Depth 16cm") == []
    assert find_identifiers("Johnson") == []  # title case alone: too weak


@pytest.mark.parametrize("text", [
    "Mark Gain", "Gain Depth", "Long Axis", "LONG AXIS", "Axial Sagittal Coronal", "Liver Kidney",
    "Mark Long", "Will Print", "May Save", "Grace Period", "LIVER", "KIDNEY", "THYROID", "CAROTID",
    "Rose Hall", "Young Ward", "Park Field", "Bank Page",
])
def test_gazetteer_never_flags_technical_or_common_words(text: str) -> None:
    assert "person_name" not in kinds(text)


# ---------------------------------------------------------------------------
# Institutions and addresses

@pytest.mark.parametrize(("text", "value"), [
    ("St Mary's Hospital", "St Mary's Hospital"),
    ("Royal Infirmary of Edinburgh", "Royal Infirmary of Edinburgh"),
    ("Leeds Teaching Hospitals NHS Trust", "Leeds Teaching Hospitals NHS Trust"),
    ("Oxford University Hospitals NHS Foundation Trust", "Oxford University Hospitals NHS Foundation Trust"),
    ("NHS Lothian", "NHS Lothian"),
    ("Aneurin Bevan University Health Board", "Aneurin Bevan University Health Board"),
    ("Mayo Clinic", "Mayo Clinic"),
    ("Boston Medical Center", "Boston Medical Center"),
    ("Ziekenhuis Gelderse Vallei", "Ziekenhuis Gelderse Vallei"),
    ("Antoni van Leeuwenhoek Ziekenhuis", "Antoni van Leeuwenhoek Ziekenhuis"),
    ("Spaarne Gasthuis", "Spaarne Gasthuis"),
    ("Wilhelmina Kinderziekenhuis", "Wilhelmina Kinderziekenhuis"),
    ("Erasmus MC", "Erasmus MC"),
    ("Amsterdam UMC", "Amsterdam UMC"),
    ("UMCG", "UMCG"),
    ("Radboudumc", "Radboudumc"),
    ("Kliniek Oost", "Kliniek Oost"),
    ("UZ Leuven", "UZ Leuven"),
    ("AZ Groeninge", "AZ Groeninge"),
    ("Universitätsklinikum Heidelberg", "Universitätsklinikum Heidelberg"),
    ("Klinikum rechts der Isar", "Klinikum"),
    ("Städtisches Krankenhaus Kiel", "Städtisches Krankenhaus Kiel"),
    ("Kantonsspital Aarau", "Kantonsspital Aarau"),
    ("CHU de Bordeaux", "CHU de Bordeaux"),
    ("CHR de la Citadelle", "CHR de la Citadelle"),
    ("CH de Cholet", "CH de Cholet"),
    ("Hôpital Necker", "Hôpital Necker"),
    ("Centre Hospitalier de Versailles", "Centre Hospitalier de Versailles"),
    ("Clinique Pasteur", "Clinique Pasteur"),
])
def test_institutions(text: str, value: str) -> None:
    span = assert_flagged(f"{text} | W 400", value, "institution")
    if value == text:
        assert f"{text} | W 400"[span.start:span.end] == value


def test_institution_label_and_mrn_label_are_told_apart() -> None:
    assert_flagged("Institution: Royal Free London", "Royal Free London", "institution", "institution.label")
    text = "Hospital No: 12345678"
    assert "institution" not in kinds(text)
    assert_flagged(text, "12345678", "mrn")
    assert "institution" not in kinds("the patient went to hospital")
    assert "institution" not in kinds("CH 1 Gain 40")
    assert "address" not in kinds("Monitoring 2")  # "ring" is a street only as a word of its own


@pytest.mark.parametrize(("text", "value"), [
    ("12 High Street", "12 High Street"),
    ("221B Baker Street, London", "221B Baker Street"),
    ("4 Privet Rd", "4 Privet Rd"),
    ("Kerkstraat 12", "Kerkstraat 12"),
    ("Van Goghlaan 7a", "Van Goghlaan 7a"),
    ("Prinsengracht 263", "Prinsengracht 263"),
    ("Hauptstraße 5", "Hauptstraße 5"),
    ("Berliner Straße 12", "Berliner Straße 12"),
    ("Lindenstr. 4", "Lindenstr. 4"),
    ("12 rue de la Paix", "12 rue de la Paix"),
    ("5 avenue Foch", "5 avenue Foch"),
    ("Adres: Dorpsweg 3, Ede", "Dorpsweg 3"),
    ("Jannapad 4, Son en Breugel 1615", "Jannapad 4"),  # the other common Dutch and German endings
    ("Lindenhof 7", "Lindenhof 7"),
    ("Frankrijklei 33, Antwerpen", "Frankrijklei 33"),
    ("Grote Markt 1", "Grote Markt 1"),
    ("Am Burggraben 12", "Burggraben 12"),
    ("Kaiser Ring 5", "Kaiser Ring 5"),
])
def test_addresses(text: str, value: str) -> None:
    assert_flagged(text, value, "address")


# ---------------------------------------------------------------------------
# A whole overlay line

def test_full_overlay_line_offsets() -> None:
    text = "SMITH^JOHN  MRN: A1234567  DOB: 04/03/1961  NHS 943 476 5919  St Mary's Hospital"
    spans = find_identifiers(text)
    got = {(s.kind, text[s.start:s.end]) for s in spans}
    for want in [("person_name", "SMITH^JOHN"), ("mrn", "A1234567"), ("date", "04/03/1961"),
                 ("national_id", "943 476 5919"), ("institution", "St Mary's Hospital")]:
        assert want in got, (want, got)
    assert spans == sorted(spans, key=lambda s: (s.start, s.end, s.kind))


def test_block_of_lines() -> None:
    text = "Name: Zyxwort Quenby\nDOB: 01/02/1960\nkVp 120"
    got = {(s.kind, text[s.start:s.end]) for s in find_identifiers(text)}
    assert ("person_name", "Zyxwort Quenby") in got
    assert ("date", "01/02/1960") in got
    assert all(v != "kVp 120" for _, v in got)


# ---------------------------------------------------------------------------
# Technical text: never flagged

TECHNICAL = [
    "kVp 120 mAs 250", "120 kV 250 mAs", "W: 400 L: 40", "W 400 L 40", "WL: 40 WW: 400", "W/L 400/40",
    "C5-1 5.0MHz Gain 50 Depth 16cm", "L12-5 Gain 45 Depth 4cm", "P4-2", "FR 30Hz", "FR 18Hz TIS 0.4",
    "Im: 12/240", "Se: 3", "Series 3", "Image 12 of 240", "ST 5.0mm", "Slice 2.5 mm", "Zoom 150%",
    "TI 0.4 MI 1.1", "TIB 0.2 TIS 0.1 MI 0.9", "Gain 50", "Depth 16cm", "12 dB", "HR 72 bpm",
    "BP 120/80", "120/80", "3/4", "1/250", "512 x 512", "Sequence: T2 FLAIR", "Contrast: NONE",
    "Modality: CT", "Body part: CHEST", "Ax T1", "Sag T2 FS", "Cor STIR", "R", "L", "ABD", "LIVER",
    "KIDNEY", "THYROID", "CAROTID", "OB", "FETAL", "LIVER LONG", "RT KIDNEY SAG", "Thk 3.0 mm",
    "TR 2000 ms TE 90 ms", "FOV 240 mm", "Matrix 256 x 256", "CTDIvol 12.3 mGy", "DLP 450 mGy·cm",
    "Pitch 0.984", "Kernel B30f", "mA 200", "ms 500", "Dist 3.42 cm", "Vol 12.5 ml", "PRF 4.0 kHz",
    "Map 3 / 170 dB", "DR 60 dB", "THI", "Frq 3.5 MHz", "Zoom 1.5", "Loc: -120.5", "Flip 90",
]
CLEARLY_TECHNICAL = [t for t in TECHNICAL if t not in ("120/80", "3/4", "1/250", "512 x 512")]


@pytest.mark.parametrize("text", TECHNICAL)
def test_technical_lines_have_no_spans(text: str) -> None:
    assert find_identifiers(text) == []


@pytest.mark.parametrize("text", CLEARLY_TECHNICAL)
def test_technical_lines_are_technical(text: str) -> None:
    assert is_technical(text) is True


def test_technical_precision_at_least_90_percent() -> None:
    kept = sum(1 for t in TECHNICAL if not find_identifiers(t))
    assert len(TECHNICAL) >= 40
    assert kept / len(TECHNICAL) >= 0.9


@pytest.mark.parametrize("text", [
    "SMITH^JOHN", "DOB: 04/03/1961", "NHS 943 476 5919", "kVp 120 SMITH^JOHN", "Name: Zyxwort",
    "the patient was seen today", "",
])
def test_lines_with_identifiers_or_prose_are_not_technical(text: str) -> None:
    assert is_technical(text) is False


@pytest.mark.parametrize("text", [
    "the patient was seen today", "left kidney normal size", "no focal lesion", "see report",
    "de patiënt is gezien", "keine Auffälligkeiten", "pas d'anomalie", "Printed on paper", "Next Page",
    "Series 3 of 12", "14:32", "5", "42", "Version 2.1.0", "Measurements", "Report Final",
])
def test_plain_text_is_left_alone(text: str) -> None:
    assert find_identifiers(text) == []


# ---------------------------------------------------------------------------
# Dangling labels

@pytest.mark.parametrize(("text", "kind"), [
    ("Patient Name:", "person_name"), ("Name", "person_name"), ("Patiënt:", "person_name"),
    ("Nom du patient :", "person_name"), ("Referring Physician:", "person_name"), ("Ref: Dr.", "person_name"),
    ("DOB", "date"), ("D.O.B.:", "date"), ("Geb.-Datum", "date"), ("Date de naissance :", "date"),
    ("NHS No:", "national_id"), ("BSN", "national_id"), ("INSZ:", "national_id"),
    ("MRN", "mrn"), ("Hosp No.", "mrn"), ("Patient ID:", "mrn"), ("Fallnummer:", "mrn"),
    ("Tel:", "phone"), ("E-mail:", "email"), ("Postcode", "postcode"), ("Address:", "address"),
    ("Institution Name:", "institution"), ("SMITH^JOHN  DOB:", "date"),
])
def test_dangling_label(text: str, kind: str) -> None:
    assert dangling_label(text) == kind


@pytest.mark.parametrize("text", [
    "Protocol Name:", "Sex:", "Age", "DOB: 04/03/1961", "Name: SMITH", "kVp 120", "", "Gain 50", "Series",
    "St Mary's Hospital", "Royal Infirmary Hospital",  # ends with a label word, but is the value
])
def test_not_dangling(text: str) -> None:
    assert dangling_label(text) is None


# ---------------------------------------------------------------------------
# API contract and data

def test_span_contract() -> None:
    text = "Name: SMITH^JOHN MRN 12345678 DOB 01/02/1960 j.smith@nhs.net 07700 900123 SW1A 1AA"
    spans = find_identifiers(text)
    assert spans
    for s in spans:
        assert isinstance(s, Span)
        assert s.kind in IDENTIFIER_KINDS_TEXT
        assert 0.0 <= s.confidence <= 1.0
        assert 0 <= s.start < s.end <= len(text)
        value = text[s.start:s.end]
        assert value not in s.recognizer and value.lower() not in s.recognizer
    with pytest.raises(dataclasses.FrozenInstanceError):
        spans[0].start = 0  # type: ignore[misc]
    assert set(IDENTIFIER_KINDS_TEXT) == {
        "person_name", "national_id", "mrn", "date", "phone", "email", "postcode", "institution", "address"}


def test_odd_inputs_do_not_raise() -> None:
    for text in ["", " ", "\x00", "^^^", ",,,", "::::", "ü" * 500, "9" * 300, "@" * 50, "Dr", "NHS", "(((("]:
        find_identifiers(text)
        dangling_label(text)
        is_technical(text)


def test_gazetteer_files_are_compact_headed_and_clean() -> None:
    total = 0
    for name in ("given_names.txt.gz", "surnames.txt.gz"):
        path = PKG / "data" / name
        total += path.stat().st_size
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
        assert lines[0].startswith("# source: faker 40.54.0")
        words = set(lines[1:])
        assert len(words) > 1000
        assert all(w == w.lower() and len(w) >= 3 and w.isalpha() and w.isascii() for w in words)
        for stop in ("may", "long", "white", "gain", "depth", "head", "chest", "left", "right", "mark",
                     "will", "rose", "hall", "park", "field", "young", "ward", "bank", "page", "liver"):
            assert stop not in words, (name, stop)
    assert total < 300_000


def test_runtime_does_not_import_faker() -> None:
    code = ("import sys; from scrubgate.engine.recognizers import find_identifiers; "
            "find_identifiers('John Smith'); assert 'faker' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    for path in PKG.glob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.lstrip().startswith(("import faker", "from faker")), path


def test_gazetteer_build_is_reproducible() -> None:
    pytest.importorskip("faker")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_gazetteer.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------
# Regressions from the overlay corpus

@pytest.mark.parametrize(("text", "value"), [
    ("GARCÍA LÓPEZ^MARÍA", "GARCÍA LÓPEZ^MARÍA"),  # DICOM components may hold spaces
    ("PATIENT GARCIA LOPEZ^MARIA", "GARCIA LOPEZ^MARIA"),
    ("SMITH^JOHN PAUL", "SMITH^JOHN PAUL"),
])
def test_caret_name_components_with_spaces(text: str, value: str) -> None:
    span = assert_flagged(text, value, "person_name", "name.caret")
    assert text[span.start:span.end] == value


@pytest.mark.parametrize(("text", "value"), [
    ("SMITH J", "SMITH J"), ("J. Smith", "J. Smith"), ("J Smith", "J Smith"), ("J. SMITH", "J. SMITH"),
    ("Smith, J.", "Smith, J."), ("Mr J Smith", "J Smith"), ("Reported by: Dr A Khan", "Dr A Khan"),
])
def test_surname_with_initial(text: str, value: str) -> None:
    assert_flagged(text, value, "person_name")


@pytest.mark.parametrize("text", [
    f"{side} {part}" for side in ("R", "L", "RT", "LT", "Right", "Left")
    for part in ("LOBE", "OVARY", "TESTIS", "BREAST", "KIDNEY", "CALF", "GROIN", "AXILLA", "Lobe", "Ovary")
])
def test_side_markers_are_not_initials(text: str) -> None:
    assert find_identifiers(text) == []


def test_accession_without_colon_needs_a_long_number() -> None:
    assert_flagged("Patient ID 00123456  Acc 987654321", "987654321", "mrn", "mrn.label")
    assert "mrn" not in kinds("Acc 1200 cm/s2")


def test_overlapping_institution_keywords_merge() -> None:
    spans = [s for s in find_identifiers("Leeds Teaching Hospitals NHS Trust") if s.kind == "institution"]
    assert len(spans) == 1
    assert (spans[0].start, spans[0].end) == (0, len("Leeds Teaching Hospitals NHS Trust"))


def test_no_phone_inside_a_national_id() -> None:
    assert kinds("N° Sécu : 1 85 05 78 006 084 91") == {"national_id"}
    assert kinds("NHS No. 943-476-5919") == {"national_id"}


def test_dob_label_tolerates_missing_space() -> None:
    span = assert_flagged("DOB:12/03/1978", "12/03/1978", "date", "label.dob")
    assert span.confidence >= 0.9


def test_nine_digit_national_phones_and_what_is_not_one() -> None:
    # German and French area numbers have nine digits
    assert_flagged("bel 089 123456 terug", "089 123456", "phone", "phone.national")
    assert_flagged("appelle, 04 171 75 29, tu", "04 171 75 29", "phone", "phone.national")
    assert "phone" not in kinds("000-12-3456")  # 00 opens an international number, not a national one


def test_scale_marks_are_not_a_bare_number() -> None:
    for scale in ("0 10 20 30 40", "5 10 15 20", "1 2 3 4 5 6 7"):
        assert "mrn" not in kinds(scale), scale
    assert_flagged("66417165", "66417165", "mrn", "mrn.bare_number")


def test_codes_and_numbers_only_is_an_id_shape_not_a_measurement() -> None:
    from scrubgate.engine.recognizers import only_codes_and_numbers

    for id_like in ("RAD73410", "2 00 01 s0 550 672 61", "66417165"):
        assert only_codes_and_numbers(id_like), id_like
    for technical in ("12cm 45 30", "5.0MHz 12345", "W 400 L 40", "0 10 20 30 40", "C5-1", "S2000"):
        assert not only_codes_and_numbers(technical), technical


@pytest.mark.parametrize("text", ["NHS 943 476 591²", "PPS 1234567²A", "0 10 20 3²", "NIR 1 84 12 75 123 456 ²7",
                                  "scale 0 5 10 ¹⁵", "MBI 1EG4-TE5-MK7³"])
def test_superscript_digits_are_not_a_crash(text: str) -> None:
    """OCR reads 'cm²' and footnote marks: str.isdigit() takes '²', int() does not."""
    from scrubgate.engine.recognizers import checksums
    from scrubgate.engine.recognizers.technical import scale_marks

    find_identifiers(text)
    is_technical(text)
    compact = "".join(text.split()[1:])
    for check in (checksums.mod11_10, checksums.nir, checksums.ppsn, checksums.mbi):
        check(compact)
    scale_marks(text.split()[1:])


@pytest.mark.parametrize("text", ["Allergies: aucune", "Allergieën: geen", "Allergien: keine", "Allergy: Latex",
                                  "Geen allergieën", "Weight 72 kg", "Blood group: O+", "Groupe sanguin A"])
def test_a_banners_clinical_fields_are_not_identifiers(text: str) -> None:
    """Kept by the banner rules: a banner carries allergies and weight beside the name."""
    assert is_technical(text)


@pytest.mark.parametrize("text", ["Allergy: 12345678", "Dr Allergist", "Allerton Hospital"])
def test_clinical_field_words_do_not_hide_identifiers(text: str) -> None:
    assert not is_technical(text)


@pytest.mark.parametrize(("text", "value"), [("Pr Prythihoend", "Prythihoend"),
                                             ("8255 JalhayM30/07/1972(F)", "30/07/1972")])
def test_french_titles_and_dates_glued_to_a_word(text: str, value: str) -> None:
    """'Pr' (Professeur) takes no dot in French; OCR glues a date to the word before it."""
    spans = find_identifiers(text)
    assert any(text[s.start:s.end].endswith(value) for s in spans), spans


@pytest.mark.parametrize("text", ["PR 3.5kHz", "Pr 12", "SW12/03/2019"])
def test_pr_and_glued_numbers_that_are_not_identifiers(text: str) -> None:
    assert not find_identifiers(text)
