"""PS3.15 Annex E on a DICOM header: Table E.1-1 with the options the policy chose.

The table itself lives in annex_e.py, generated from the standard by
scripts/build_annex_e.py; this module only looks rows up and acts on them.

What happens to one dataset (the file meta information and every sequence
item, at any depth, get the same treatment; Annex E says the profile applies
at every nesting level):

* Rows of Table E.1-1. When an option the policy turned on has an action in
  its column for the row, that action replaces the Basic Profile one. If two
  active options disagree (e.g. Retain Device Identity "K" and Retain
  Longitudinal Modified Dates "C" on a calibration date), "C" wins: it is the
  more protective. `retain_longitudinal` "full" selects the Full Dates
  column, "modified" the Modified Dates column, "off" neither.

* Combined codes. Every alternative of a combined code removes the value
  (X removes the element, Z empties it, D puts a dummy in its place), so the
  choice does not change what leaks, only whether the result still conforms
  to its IOD. The attribute Type (1, 2, 3) is per IOD and not known here, so
  we take the alternative that is valid for every Type: the rightmost one.
  X/Z -> Z, X/D -> D, Z/D -> D, X/Z/D -> D, X/Z/U* -> U (the reference
  sequence is kept and every UID in it is remapped: references stay
  consistent with the remapped instances they point to).

* Actions. X removes. Z empties (a sequence becomes an empty sequence). D
  writes a dummy valid for the VR ("ANONYMOUS" for PN and text, 19000101 for
  DA, 000000 for TM, 0 for numbers, eight zero bytes for OB/OW/...); on a UI
  it is the same keyed remap as U, so Type 1 UIDs stay consistent across
  files; an element that was already empty is left alone. D on a sequence
  empties it: there is no dummy item valid in every IOD, and keeping the items
  would keep what the table does not list (the Text Value of SR content, the
  Code Value of a person's identification code). K keeps (a sequence's items
  are cleaned). U remaps UIDs (below).
  C depends on where it came from:
  - Retain Longitudinal Modified Dates: DA and DT are shifted back by a
    per-patient number of days (1..3650) derived from HMAC-SHA256(secret,
    original Patient ID + Patient's Name), so every file of one patient moves
    by the same amount and intervals survive; TM stays; any other VR gets the
    Basic Profile action. A date that does not parse is emptied.
  - Clean Descriptors / Structured Content / Graphics on text (LO, SH, ST,
    LT, UT, UC): the header's own identifying values (collect_hints: names and
    their components, IDs, institution; case-insensitive, whole words) are cut
    out, then the project's recognizers run; if they still see an identifier
    the value is emptied. On a sequence: its items are cleaned recursively and,
    inside it, every text element the table does not list (Text Value, Code
    Meaning, ...) is cleaned the same way. On any other VR: the Basic action.

* Not in the table. Standard public attributes that E.1-1 does not list are
  kept: Annex E lists what must change. Three safety nets on top:
  - any PN element not in the table is taken as a name and emptied (Z);
  - any UI element, anywhere, whose value is not a registered standard UID
    (pydicom's UID dictionary or the DICOM root 1.2.840.10008.) is remapped,
    unless it names a class rather than an instance (SOP Class, Transfer
    Syntax, Implementation Class, Coding Scheme, ... UIDs);
  - file meta information keeps only its structural elements (version, media
    storage SOP class and instance, transfer syntax, implementation class and
    version); Source/Sending/Receiving AE titles and private information go;
    and the 128-byte preamble is zeroed.
  Retain UIDs turns the UID safety net off (the U rows then follow the table).

* UIDs: new = "2.25." + the integer of the first 16 bytes of
  HMAC-SHA256(secret, old UID): valid, at most 44 characters, the same for the
  same input and secret in every file and every process, irreversible without
  the secret. Registered standard UIDs are never remapped (they identify no
  one and remapping would break their meaning).

* Private attributes are removed with their private creators. With Retain
  Safe Private, the Table E.3.10-1 attributes are kept when the block's
  private creator, the group and the element's low byte match a row and the
  VR is the table's (or UN, when the file does not say); creators of blocks
  with nothing left are removed.

* Overlays (even groups 6000-60FF), curves (even groups 5000-50FF) and the
  Icon Image Sequence (0088,0200) are removed at every depth whatever the
  options say. Retired group length elements (gggg,0000) are dropped
  (they would be wrong after editing).

Nothing here logs, raises or records an identifying value: findings carry the
kind and the table action only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue

from ..verdict import Finding
from . import annex_e
from .options import LONGITUDINAL, DicomOptions

__all__ = ["HeaderReport", "REMOVED_KEYS", "collect_hints", "deidentify", "mark_deidentified", "remap_uid",
           "resolve_code", "shift_days"]

REMOVED_KEYS = ("dicom_removed", "dicom_emptied", "dicom_replaced", "dicom_cleaned", "dicom_uid_remapped",
                "dicom_date_shifted", "dicom_private", "dicom_overlay", "dicom_curve", "dicom_icon")
SOURCE = "dicom_header"
MAX_DEPTH = 32
MAX_TEXT = 65536  # longer free text is emptied rather than scanned
DAY_RANGE = 3650

ICON_IMAGE_SEQUENCE = 0x00880200
_META_KEEP = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})
_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                         "UR", "UT"})
_BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW"})
# Unlisted elements of these VRs carry no free text: numbers, code strings, UIDs (remapped
# by the safety net), person names (emptied by the safety net).
_SAFE_UNLISTED_VRS = frozenset({"CS", "DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT", "UI", "PN",
                                "US or SS"})
_DUMMY = {"PN": "ANONYMOUS", "LO": "ANONYMOUS", "SH": "ANONYMOUS", "ST": "ANONYMOUS", "LT": "ANONYMOUS",
          "UT": "ANONYMOUS", "UC": "ANONYMOUS", "CS": "ANONYMOUS", "AE": "ANONYMOUS", "UR": "ANONYMOUS",
          "DA": "19000101", "DT": "19000101000000", "TM": "000000", "AS": "000D", "DS": "0", "IS": "0"}
# UI attributes that name a class or a definition, not an instance or a person.
_CLASS_UID = re.compile(r"SOPClass|TransferSyntax|ImplementationClassUID|CodingSchemeUID|^ContextUID$|"
                        r"MappingResourceUID|CreatorVersionUID|SegmentationTemplateUID")
# Text inside cleaned structured content that is structure, not content.
_STRUCTURAL = frozenset({"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "LongCodeValue",
                         "URNCodeValue", "ContextIdentifier", "MappingResource", "ContextGroupLocalVersion",
                         "TemplateIdentifier", "MappingResourceName", "TemplateVersion"})
_DICOM_ROOT = "1.2.840.10008."

_PERSON = re.compile(r"Physician|Operator|Person|Observer|Author|Performer|Reviewer|Approver|Participant|"
                     r"Recipient|Signer|Verif|ContentCreator|Responsible|Requesting|Evaluator|Reader|"
                     r"Attending|PatientName|BirthName|OtherPatientNames|Contact")
_KIND_RULES = (
    (re.compile(r"Mail"), "email"),
    (re.compile(r"Address|Residence"), "address"),
    (re.compile(r"Telephone|Telecom|Phone"), "phone"),
    (re.compile(r"Photo"), "face"),
    (re.compile(r"Serial|Device|Detector|Station|Equipment|Machine|Transducer|UDI|Generator|AETitle|"
                r"ApplicationEntity|Modifying|Plate|Cassette|Gantry|Console"), "device_serial"),
    (re.compile(r"Institution|Department|Organization|Location|Facility|Site|Sponsor|Coordinating|Ethics"),
     "institution"),
    (_PERSON, "person_name"),
    (re.compile(r"UID"), "unique_id"),
    (re.compile(r"ID$|IDs|Identifier|Number|Accession|Issuer|Alias|Insurance|Barcode|Label|Locator"), "mrn"),
    (re.compile(r"Date|Time"), "date"),
)

_CID_7050 = {  # option -> pydicom.sr.codedict attribute (PS3.16 CID 7050, scheme DCM)
    "basic": "BasicApplicationConfidentialityProfile",  # 113100
    "clean_pixel_data": "CleanPixelDataOption",  # 113101
    "clean_graphics": "CleanGraphicsOption",  # 113103
    "clean_structured_content": "CleanStructuredContentOption",  # 113104
    "clean_descriptors": "CleanDescriptorsOption",  # 113105
    "retain_longitudinal_full_dates": "RetainLongitudinalTemporalInformationFullDatesOption",  # 113106
    "retain_longitudinal_modified_dates": "RetainLongitudinalTemporalInformationModifiedDatesOption",  # 113107
    "retain_patient_characteristics": "RetainPatientCharacteristicsOption",  # 113108
    "retain_device_identity": "RetainDeviceIdentityOption",  # 113109
    "retain_uids": "RetainUidsOption",  # 113110
    "retain_safe_private": "RetainSafePrivateOption",  # 113111
    "retain_institution_identity": "RetainInstitutionIdentityOption",  # 113112
}


@dataclass
class HeaderReport:
    removed: Counter = field(default_factory=Counter)  # REMOVED_KEYS -> number of elements
    findings: list[Finding] = field(default_factory=list)


# ---------------------------------------------------------------- the table


def resolve_code(code: str) -> str:
    """One Table E.1-1 action code ("X", "X/Z/D", "X/Z/U*", ...) -> the single action applied.

    The rightmost alternative: the one that keeps the IOD valid whatever the
    attribute's Type (see the module docstring)."""
    parts = code.split("/")
    for part in parts:
        if part.rstrip("*") not in ("X", "Z", "D", "K", "C", "U") or part.count("*") > 1:
            raise ValueError(f"unknown PS3.15 action code {code!r}")
    return parts[-1].rstrip("*")


def _decide(rule: tuple[str, dict[str, str]], active: frozenset[str]) -> tuple[str, str, str]:
    """(action, the option column it came from or "basic", the Basic Profile action)."""
    basic_code, columns = rule
    basic = resolve_code(basic_code)
    chosen: tuple[str, str] | None = None
    for key in annex_e.OPTION_KEYS:
        if key in active and key in columns:
            action = resolve_code(columns[key])
            if chosen is None or (action == "C" and chosen[0] != "C"):
                chosen = (action, key)
    if chosen is None:
        return basic, "basic", basic
    return chosen[0], chosen[1], basic


def _tag_mask(key: str) -> tuple[int, int]:
    return (int("".join("0" if c == "x" else "F" for c in key), 16), int(key.replace("x", "0"), 16))


@lru_cache(maxsize=32)
def _plan(active: frozenset[str]) -> tuple[dict[int, tuple[str, str, str]], tuple]:
    exact: dict[int, tuple[str, str, str]] = {}
    masked = []
    for key, rule in annex_e.PROFILE.items():
        if key == "PRIVATE":
            continue
        decided = _decide(rule, active)
        if "x" in key:
            masked.append((*_tag_mask(key), decided))
        else:
            exact[int(key, 16)] = decided
    return exact, tuple(masked)


@lru_cache(maxsize=1)
def _safe_private() -> dict[tuple[int, str, int], str]:
    out = {}
    for (key, creator), (action, vr) in annex_e.SAFE_PRIVATE.items():
        if action == "K":
            out[(int(key[:4], 16), creator, int(key[6:], 16))] = vr
    return out


def _active(options: DicomOptions) -> frozenset[str]:
    keys = {name for name in ("clean_descriptors", "clean_structured_content", "clean_graphics",
                              "retain_patient_characteristics", "retain_device_identity",
                              "retain_institution_identity", "retain_uids", "retain_safe_private")
            if getattr(options, name)}
    if options.retain_longitudinal == "full":
        keys.add("retain_longitudinal_full_dates")
    elif options.retain_longitudinal == "modified":
        keys.add("retain_longitudinal_modified_dates")
    return frozenset(keys)


# ---------------------------------------------------------------- keyed transforms


@lru_cache(maxsize=65536)
def remap_uid(uid: str, secret: bytes) -> str:
    """The keyed replacement of one UID: "2.25." + int(HMAC-SHA256(secret, uid)[:16])."""
    if not secret:
        raise ValueError("the DICOM de-identification secret is empty")
    digest = hmac.new(secret, uid.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def shift_days(secret: bytes, patient_id: str, patient_name: str) -> int:
    """How many days (1..3650) this patient's dates move back."""
    if not secret:
        raise ValueError("the DICOM de-identification secret is empty")
    msg = b"scrubgate/dicom-date-shift\x00" + patient_id.encode("utf-8", "surrogateescape") + b"\x00" + \
        patient_name.encode("utf-8", "surrogateescape")
    return 1 + int.from_bytes(hmac.new(secret, msg, hashlib.sha256).digest()[:8], "big") % DAY_RANGE


def _registered(uid: str) -> bool:
    from pydicom.uid import UID_dictionary

    return uid.startswith(_DICOM_ROOT) or uid in UID_dictionary


_DA = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DT = re.compile(r"(\d{4})(?:(\d{2})(?:(\d{2})(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?")


def _back(y: str, m: str | None, d: str | None, days: int) -> date | None:
    try:
        when = date(int(y), int(m or 1), int(d or 1)) - timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return when


def _shift_da(value: str, days: int) -> str | None:
    value = value.strip()
    if not value:
        return value
    if "-" in value:  # a range (query context): shift both ends
        ends = value.split("-")
        if len(ends) != 2:
            return None
        shifted = [_shift_da(e, days) if e else "" for e in ends]
        return None if None in shifted else "-".join(shifted)  # type: ignore[arg-type]
    m = _DA.fullmatch(value)
    when = _back(*m.groups(), days) if m else None
    return None if when is None else f"{when.year:04d}{when.month:02d}{when.day:02d}"


def _shift_dt(value: str, days: int) -> str | None:
    value = value.strip()
    if not value:
        return value
    m = _DT.fullmatch(value)
    if not m:
        return None
    y, mo, d, rest, tz = m.groups()
    when = _back(y, mo, d, days)
    if when is None:
        return None
    out = f"{when.year:04d}" + (f"{when.month:02d}" if mo else "") + (f"{when.day:02d}" if d else "")
    return out + (rest or "") + (tz or "")


# ---------------------------------------------------------------- hints


_NAME_KEYWORDS = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
                  "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
                  "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician")
_ID_KEYWORDS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID")
_DATE_KEYWORDS = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
_INSTITUTION_KEYWORDS = ("InstitutionName", "IssuerOfPatientID")


def _values(ds, keyword: str) -> list:
    tag = tag_for_keyword(keyword)
    elem = ds.get(tag) if tag is not None else None
    if elem is None or elem.value is None or elem.VR == "SQ":
        return []
    value = elem.value
    return list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]


def collect_hints(ds) -> tuple[tuple[str, str], ...]:
    """(kind, value) pairs of the header's identifying values, read before cleaning.

    For the pixel scanner (burned-in text) and for cleaning descriptors. Names come
    whole and as components; dates as the raw YYYYMMDD. Values under 2 characters
    are skipped."""
    out: list[tuple[str, str]] = []

    def add(kind: str, value) -> None:
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        text = text.strip().strip("\x00").strip()
        if len(text) >= 2:
            out.append((kind, text))

    for keyword in _NAME_KEYWORDS:
        for name in _values(ds, keyword):
            whole = str(name)
            add("person_name", whole)
            for part in re.split(r"[\^=]", whole):
                add("person_name", part)
    for keyword in _ID_KEYWORDS:
        for value in _values(ds, keyword):
            add("mrn", value)
    for item in ds.get("OtherPatientIDsSequence", None) or ():
        for value in _values(item, "PatientID"):
            add("mrn", value)
    for keyword in _DATE_KEYWORDS:
        for value in _values(ds, keyword):
            add("date", value)
    for keyword in _INSTITUTION_KEYWORDS:
        for value in _values(ds, keyword):
            add("institution", value)
    return tuple(dict.fromkeys(out))


# ---------------------------------------------------------------- kinds


@lru_cache(maxsize=4096)
def _kind(tag: int, vr: str) -> str:
    if vr == "PN":
        return "person_name"
    if vr in ("DA", "DT", "TM"):
        return "date"
    if vr == "UI":
        return "unique_id"
    keyword = _keyword(tag)
    for rx, kind in _KIND_RULES:
        if rx.search(keyword):
            return kind
    return "free_text"


@lru_cache(maxsize=4096)
def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    try:
        return keyword_for_tag(tag) or ""
    except Exception:  # noqa: BLE001 -- odd tags
        return ""


# ---------------------------------------------------------------- the walk


@dataclass
class _Ctx:
    secret: bytes
    retain_uids: bool
    retain_safe_private: bool
    exact: dict
    masked: tuple
    days: int
    hint_re: re.Pattern | None
    hint_kind: dict[str, str]
    report: HeaderReport
    cleaned: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # text -> _clean_string

    def count(self, key: str) -> None:
        self.report.removed[key] += 1

    def find(self, tag: int, vr: str, action: str, kind: str | None = None) -> None:
        self.report.findings.append(Finding(kind or _kind(tag, vr), SOURCE, f"annex_e.{action}"))


def _is_empty(elem) -> bool:
    value = elem.value
    if value is None:
        return True
    if elem.VR == "SQ":
        return len(value) == 0
    if isinstance(value, (str, bytes, bytearray)):
        return not value.strip(b"\x00 " if isinstance(value, (bytes, bytearray)) else "\x00 ")
    try:
        return len(value) == 0 or all(not str(v).strip() for v in value)
    except TypeError:
        return False


def _empty_value(vr: str):
    if vr == "SQ":
        return []
    if vr in _STRING_VRS:
        return ""
    if vr in _BYTES_VRS or vr.startswith("O"):
        return b""
    return None


def _dummy_value(vr: str):
    if vr in _DUMMY:
        return _DUMMY[vr]
    if vr == "UN":
        return b""
    if vr in _BYTES_VRS or (("OB" in vr or "OW" in vr) and "US" not in vr):
        return b"\x00" * 8
    return 0  # US, SS, UL, SL, FL, FD, SV, UV, AT and "US or SS"


def deidentify(ds, options: DicomOptions) -> HeaderReport:
    """Apply Table E.1-1 with `options` to `ds` in place (file meta included)."""
    if not options.secret:
        raise ValueError("DicomOptions.secret is empty: UIDs and dates need a deployment secret")
    if options.retain_longitudinal not in LONGITUDINAL:
        raise ValueError(f"retain_longitudinal must be one of {LONGITUDINAL}")
    hints = collect_hints(ds)
    hint_re, hint_kind = _hint_pattern(hints)
    exact, masked = _plan(_active(options))
    pid = " ".join(str(v) for v in _values(ds, "PatientID"))
    pname = " ".join(str(v) for v in _values(ds, "PatientName"))
    report = HeaderReport()
    ctx = _Ctx(options.secret, options.retain_uids, options.retain_safe_private, exact, masked,
               shift_days(options.secret, pid, pname), hint_re, hint_kind, report)

    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for tag in list(meta.keys()):
            if int(tag) not in _META_KEEP:
                elem = meta[tag]
                if not _is_empty(elem):
                    ctx.find(int(tag), elem.VR, "X")
                del meta[tag]
                ctx.count("dicom_removed")
        _clean(meta, ctx, 0, False)
    preamble = getattr(ds, "preamble", None)
    if preamble and any(preamble):
        ds.preamble = b"\x00" * 128
        ctx.count("dicom_removed")
    _clean(ds, ctx, 0, False)
    return report


# Name components that are DICOM placeholders or titles, not identifiers (as in ..hints).
_NOT_NAMES = frozenset({"anonymous", "anon", "anonymized", "unknown", "none", "patient", "test", "mr", "mrs", "ms",
                        "dr", "prof"})


# Words of institution names that say nothing about which institution it is.
_GENERIC_INSTITUTION = frozenset("""
hospital hospitals clinic clinics klinik klinikum kliniek ziekenhuis hopital medical medicine center centre
centers centres university universitair universitaire universitats memorial general royal saint sankt sint
health healthcare trust foundation institute instituut institut imaging radiology radiologie department
children childrens regional community county city national teaching infirmary care group services practice
the and for van der des den het hospitalier hospitaliere universitario universitaria ospedale policlinico
""".split())


def _hint_pattern(hints) -> tuple[re.Pattern | None, dict[str, str]]:
    kinds: dict[str, str] = {}
    pairs = list(hints)
    for kind, value in hints:  # "Grimsbury" of "Grimsbury Memorial Hospital" is identifying by itself
        if kind == "institution":
            pairs += [(kind, w) for w in re.findall(r"[^\W\d_]{4,}", value) if w.lower() not in _GENERIC_INSTITUTION]
    for kind, value in pairs:
        if kind == "person_name" and value.lower() in _NOT_NAMES:
            continue
        if len(value) >= (2 if kind == "person_name" else 3) and value.lower() not in kinds:
            kinds[value.lower()] = kind
    if not kinds:
        return None, {}
    alternatives = "|".join(re.escape(v) for v in sorted(kinds, key=lambda v: (-len(v), v)))
    # whole words: not inside another word (letters of any script, digits), "_" and "^" separate
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE), kinds


def _clean(ds, ctx: _Ctx, depth: int, strict: bool) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("DICOM sequences nested too deeply")
    has_private = False
    for tag in list(ds.keys()):
        tag = int(tag)
        group = tag >> 16
        if group & 1:
            has_private = True
            continue
        if tag & 0xFFFF == 0 and group != 0x0002:
            del ds[tag]  # a retired group length: wrong once anything in the group changed
            continue
        hi = group >> 8
        if hi == 0x60 or hi == 0x50:
            del ds[tag]
            ctx.count("dicom_overlay" if hi == 0x60 else "dicom_curve")
            continue
        if tag == ICON_IMAGE_SEQUENCE:
            del ds[tag]
            ctx.count("dicom_icon")
            continue
        elem = ds[tag]
        decided = ctx.exact.get(tag)
        if decided is None:
            for mask, value, rule in ctx.masked:
                if tag & mask == value:
                    decided = rule
                    break
        if decided is None:
            _unlisted(ds, elem, tag, ctx, depth, strict)
        else:
            _apply(ds, elem, tag, decided, ctx, depth, strict)
    if has_private:
        _clean_private(ds, ctx, depth, strict)


def _recurse(elem, ctx: _Ctx, depth: int, strict: bool) -> None:
    for item in elem.value or ():
        _clean(item, ctx, depth + 1, strict)


def _unlisted(ds, elem, tag: int, ctx: _Ctx, depth: int, strict: bool) -> None:
    vr = elem.VR
    if vr == "SQ":
        _recurse(elem, ctx, depth, strict)
    elif vr == "PN":
        if not _is_empty(elem):
            elem.value = ""
            ctx.count("dicom_emptied")
            ctx.find(tag, vr, "Z")
    elif vr == "UI":
        if not ctx.retain_uids and not _CLASS_UID.search(_keyword(tag)) and _remap(elem, ctx):
            ctx.count("dicom_uid_remapped")
            ctx.find(tag, vr, "U")
    elif strict and vr in _TEXT_VRS and _keyword(tag) not in _STRUCTURAL:
        _clean_text(elem, tag, ctx, "C")


def _apply(ds, elem, tag: int, decided: tuple[str, str, str], ctx: _Ctx, depth: int, strict: bool) -> None:
    action, via, basic = decided
    vr = elem.VR
    if action == "C":
        if via == "retain_longitudinal_modified_dates":
            if vr in ("DA", "DT"):
                _shift(elem, tag, ctx)
                return
            if vr == "TM":
                return  # times stay
        elif via in ("clean_descriptors", "clean_structured_content", "clean_graphics"):
            if vr == "SQ":
                _recurse(elem, ctx, depth, True)
                return
            if vr in _TEXT_VRS:
                _clean_text(elem, tag, ctx, "C")
                return
        action = basic if basic not in ("C", "K") else "X"  # no way to clean this VR: the Basic action
    if action == "K":
        if vr == "SQ":
            _recurse(elem, ctx, depth, strict)
        return
    if action == "U":
        if vr == "SQ":
            _recurse(elem, ctx, depth, strict)
            return
        if vr == "UI":
            if _remap(elem, ctx):
                ctx.count("dicom_uid_remapped")
                ctx.find(tag, vr, "U")
            return
        action = "X"  # a UID row whose value is not a UID: remove it
    empty = _is_empty(elem)
    if action == "X":
        if not empty:
            ctx.find(tag, vr, "X")
        del ds[tag]
        ctx.count("dicom_removed")
        return
    if empty:
        return  # Z: nothing to empty; D: nothing to replace (no value to invent over)
    if action == "D" and vr == "SQ" and all(_covered(item, ctx, depth + 1) for item in elem.value):
        # The table governs everything in these items: cleaning them in place IS the dummy
        # (Verifying Observer Sequence: name D, organization X, date D, code sequence Z).
        _recurse(elem, ctx, depth, strict)
        ctx.count("dicom_replaced")
    elif action == "Z" or (action == "D" and vr in ("SQ", "UN")):
        elem.value = _empty_value(vr)
        ctx.count("dicom_emptied")
    elif vr == "UI":  # D on a UID: the keyed remap keeps references consistent
        _remap(elem, ctx)
        ctx.count("dicom_uid_remapped")
    else:
        elem.value = _dummy_value(vr)
        ctx.count("dicom_replaced")
    ctx.find(tag, vr, action)


def _covered(ds, ctx: _Ctx, depth: int) -> bool:
    """True when Table E.1-1 (or a safety net) decides every element of this item that could
    carry an identifier: no unlisted text, dates or binaries (an SR Text Value, a Code Value)."""
    if depth > MAX_DEPTH:
        return False
    for tag in ds.keys():
        tag = int(tag)
        if (tag >> 16) & 1 or (tag >> 24) in (0x50, 0x60) or tag == ICON_IMAGE_SEQUENCE or tag & 0xFFFF == 0:
            continue  # removed anyway
        if tag in ctx.exact or any(tag & mask == value for mask, value, _ in ctx.masked):
            continue
        elem = ds[tag]
        if elem.VR == "SQ":
            if not all(_covered(item, ctx, depth + 1) for item in elem.value):
                return False
        elif elem.VR not in _SAFE_UNLISTED_VRS:
            return False
    return True


def _multi(elem) -> tuple[list, bool]:
    value = elem.value
    if isinstance(value, (str, bytes)) or value is None or not hasattr(value, "__iter__"):
        return [value], False
    return list(value), True


def _set(elem, values: list, multi: bool) -> None:
    elem.value = values if multi else values[0]


def _remap(elem, ctx: _Ctx) -> bool:
    """Remap every UID value that is not a registered standard UID. True if any changed."""
    values, multi = _multi(elem)
    old = [(v.decode("ascii", "replace") if isinstance(v, bytes) else str(v or "")).strip().strip("\x00")
           for v in values]
    new = [remap_uid(uid, ctx.secret) if uid and not _registered(uid) else uid for uid in old]
    if new == old:
        return False
    _set(elem, new, multi)
    return True


def _shift(elem, tag: int, ctx: _Ctx) -> None:
    if _is_empty(elem):
        return
    values, multi = _multi(elem)
    fn = _shift_da if elem.VR == "DA" else _shift_dt
    shifted = [fn(str(v or ""), ctx.days) for v in values]
    if None in shifted:
        elem.value = ""
        ctx.count("dicom_emptied")
        ctx.find(tag, elem.VR, "Z")
        return
    _set(elem, shifted, multi)
    ctx.count("dicom_date_shifted")
    ctx.find(tag, elem.VR, "C")


def _clean_text(elem, tag: int, ctx: _Ctx, action: str) -> None:
    if _is_empty(elem):
        return
    values, multi = _multi(elem)
    out = []
    kind: str | None = None
    for v in values:
        text = v.decode("latin-1") if isinstance(v, bytes) else str(v or "")
        if text not in ctx.cleaned:
            ctx.cleaned[text] = _clean_string(text, ctx)
        cleaned, found = ctx.cleaned[text]
        kind = kind or found
        out.append(cleaned)
    if kind is None:
        return
    _set(elem, out, multi)
    ctx.count("dicom_cleaned")
    ctx.find(tag, elem.VR, action, kind)


def _clean_string(text: str, ctx: _Ctx) -> tuple[str, str | None]:
    """(the cleaned text, the kind of the first identifier seen or None if untouched)."""
    from ..recognizers import find_identifiers

    if len(text) > MAX_TEXT:
        return "", "free_text"
    kind: str | None = None
    out = text
    if ctx.hint_re is not None:
        def cut(m: re.Match) -> str:
            nonlocal kind
            kind = kind or ctx.hint_kind.get(m.group(0).lower(), "person_name")
            return " "

        out = ctx.hint_re.sub(cut, out)
        if kind is not None:
            out = re.sub(r"[ \t^]+", " ", out).strip(" ,;:-")
    for line in re.split(r"[\r\n]+", out):
        spans = find_identifiers(line) if line.strip() else []
        if spans:
            return "", kind or spans[0].kind
    return out, kind


def _clean_private(ds, ctx: _Ctx, depth: int, strict: bool) -> None:
    tags = [int(t) for t in ds.keys() if (int(t) >> 16) & 1]
    creators: dict[tuple[int, int], str] = {}
    for tag in tags:
        if 0x10 <= tag & 0xFFFF <= 0xFF:
            value = ds[tag].value
            creators[(tag >> 16, tag & 0xFF)] = (value.decode("latin-1") if isinstance(value, bytes)
                                                 else str(value or "")).strip().strip("\x00").strip()
    safe = _safe_private() if ctx.retain_safe_private else {}
    kept_blocks: set[tuple[int, int]] = set()
    for tag in tags:
        group, element = tag >> 16, tag & 0xFFFF
        if 0x10 <= element <= 0xFF:
            continue
        if element >= 0x1000 and safe:
            creator = creators.get((group, element >> 8))
            vr = safe.get((group, creator or "", element & 0xFF))
            elem = ds[tag]
            if vr is not None and elem.VR in (vr, "UN"):
                kept_blocks.add((group, element >> 8))
                if elem.VR == "SQ":
                    _recurse(elem, ctx, depth, strict)
                continue
        del ds[tag]
        ctx.count("dicom_private")
    for (group, block) in creators:
        if (group, block) not in kept_blocks:
            del ds[(group << 16) | block]
            ctx.count("dicom_private")


# ---------------------------------------------------------------- marking


def mark_deidentified(ds, options: DicomOptions, pixels_scanned: bool) -> None:
    """Say what was done, in the attributes PS3.15 E.1.1 asks for."""
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes

    used = ["basic"]
    if pixels_scanned:
        used.append("clean_pixel_data")
    used += [name for name in ("clean_graphics", "clean_structured_content", "clean_descriptors")
             if getattr(options, name)]
    if options.retain_longitudinal == "full":
        used.append("retain_longitudinal_full_dates")
    elif options.retain_longitudinal == "modified":
        used.append("retain_longitudinal_modified_dates")
    used += [name for name in ("retain_patient_characteristics", "retain_device_identity", "retain_uids",
                               "retain_safe_private", "retain_institution_identity") if getattr(options, name)]
    concepts = [getattr(codes.DCM, _CID_7050[name]) for name in used]

    methods = [f"scrubgate PS3.15 E.1-1 {annex_e.E1_1_EDITION}"]
    if options.retain_safe_private:
        methods.append(f"safe private: PS3.15 E.3.10-1 {annex_e.E3_10_1_EDITION}")
    if options.retain_longitudinal == "modified":
        methods.append("dates shifted by a keyed per-patient offset")
    if not options.retain_uids:
        methods.append("UIDs remapped by HMAC-SHA256 to 2.25")
    methods += [c.meaning for c in concepts]

    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [m[:64] for m in methods]
    items = []
    for c in concepts:
        item = Dataset()
        item.CodeValue = c.value
        item.CodingSchemeDesignator = c.scheme_designator
        item.CodeMeaning = c.meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    ds.LongitudinalTemporalInformationModified = {"full": "UNMODIFIED", "modified": "MODIFIED",
                                                  "off": "REMOVED"}[options.retain_longitudinal]
    if pixels_scanned:
        ds.BurnedInAnnotation = "NO"
