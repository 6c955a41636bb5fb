"""ZIP archives: every member cleaned, the archive rebuilt without its own metadata.

PACS exports, DICOM CDs and ultrasound cine loops leave the ward as ZIP files.
One archive goes through five steps, and any refusal refuses all of it (no
member of a refused archive is ever forwarded):

1. the central directory is judged before anything is inflated: member count,
   declared sizes and ratios, encryption, compression method, unsafe paths,
   and entries whose byte ranges overlap (the "zbsm" bomb reuses one
   compressed kernel for every member, so no single entry looks large);
2. first pass: each member's kind is sniffed from its bytes and looked up in
   the policy (a blocked kind refuses the archive before any work), and every
   DICOM header's identifying values are collected as study hints, so a name
   burned into one file's pixels is found with another file's header;
3. names: PACS exports name folders after patients ("SMITH_JOHN_19650412/").
   Every path component that the recognizers or the study hints flag is
   replaced by a neutral one, the same replacement wherever it occurs;
4. second pass: each member is inflated again in chunks under the caps
   (declared sizes lie), cleaned or copied as the policy says, and written into
   a new archive: same order, no comments, no extra fields, a fixed timestamp;
5. DICOMDIRs are done last: they name the other files by path and by SOP
   Instance UID, and chain their records by byte offsets. After cleaning, the
   references are pointed at the cleaned files and the offsets rebuilt.

Nothing here logs or raises with a member's name or an identifier's value:
members are named by their position and kind only.
"""

from __future__ import annotations

import copy
import io
import re
import zipfile
import zlib
from collections import Counter, deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable

from . import dicom, hints as hint_values
from .limits import EngineLimits
from .recognizers import find_identifiers
from .sniff import sniff
from .verdict import IDENTIFIER_KINDS, Finding, Refused, Verdict

__all__ = ["sanitize_zip"]

Hints = tuple[tuple[str, str], ...]
CleanMember = Callable[[bytes, Hints], Verdict]


# Deflate cannot do better than about 1:1032, but small members full of zeros
# (padding, blank frames) legitimately reach a few hundred. Ratios are only
# held against members and archives that inflate past this much.
_RATIO_FLOOR = 1024 * 1024
_CHUNK = 1024 * 1024
_SNIFF_BYTES = 512  # sniff() looks at most at bytes 257..262 (tar)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# bzip2 and LZMA members are refused: zipfile inflates them without an output
# cap per call, so a lying header could fill memory before any check runs.
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ZIP64_EXTRA = 0x0001
_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage: a DICOMDIR
_FILE_ID = 0x00041500  # Referenced File ID
_DESCRIPTOR_FILE_ID = 0x00041141  # File-set Descriptor File ID
# Byte offsets that chain a DICOMDIR's records: (owner, tag). Owner -1 is the
# top-level dataset, otherwise a record's index in the Directory Record Sequence.
_TOP_OFFSETS = (0x00041200, 0x00041202)  # first and last record of the root directory
_NEXT, _LOWER = 0x00041400, 0x00041420
_RECORD_OFFSETS = (_NEXT, _LOWER, 0x00041504)  # next, lower level, MRDR
_CHARSET = 0x00080005
_UID_NAME = re.compile(r"\d+(?:\.\d+){3,}")  # a file named after its original UID links back to it
_DATE_RUN = re.compile(r"(?<!\d)(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)")
# The names DICOM media and PACS exports give their folders and files
# (PT000000/ST000000/SE000000/IM00000J): the recognizers read them as record
# numbers. Only the shape check is skipped; the study hints still apply.
_MEDIA_NAME = re.compile(r"(?:PAT|STU|SER|IMG|PT|ST|SE|IM)\d{2,6}[0-9A-Z]?")
_SAFE_EXT = re.compile(r"\.[A-Za-z0-9]{1,5}")
_KIND_NAMES = {"image": "image", "dicom": "DICOM", "archive": "archive", "other": "unrecognised"}


@dataclass
class _Budget:
    """What one upload's whole tree of nested archives may still inflate.

    Each level's own caps are not enough: 42.zip-style bombs stay under every
    per-archive ratio and multiply level by level.
    """

    members_left: int
    bytes_left: int

    def take_members(self, n: int) -> None:
        self.members_left -= n
        if self.members_left < 0:
            raise Refused("too_large", "the archives in this upload hold more files than the limit")

    def take_bytes(self, n: int) -> None:
        self.bytes_left -= n
        if self.bytes_left < 0:
            raise Refused("too_large", "the archives in this upload inflate to more than the limit")


# Nested archives are cleaned through the engine's clean_member callback, which
# calls sanitize_zip again on the same thread: the budget travels with it here.
_BUDGET: ContextVar[_Budget | None] = ContextVar("scrubgate_archive_budget", default=None)


def sanitize_zip(data: bytes, clean_member: CleanMember, member_action: Callable[[str], str],
                 limits: EngineLimits = EngineLimits(), depth: int = 0, hints: Hints = ()) -> Verdict:
    """Clean a ZIP archive. Never raises: failures come back as a refused Verdict.

    `clean_member(bytes, study_hints)` cleans one member (nested archives
    included, at depth + 1); `member_action(content_kind)` is the policy's
    "allow", "sanitize", "block" or "monitor" for a member's sniffed kind.
    `depth` is the number of archives around this one; `hints` are study hints
    from an enclosing archive.
    """
    outer = _BUDGET.get() if depth > 0 else None
    token = _BUDGET.set(outer or _Budget(limits.max_archive_members, limits.max_archive_bytes))
    try:
        return _Archive(data, clean_member, member_action, limits, depth, hints, _BUDGET.get()).sanitize()
    except Refused as e:
        return Verdict(format="zip", content="archive", refused=e.reason, detail=e.detail)
    except Exception as e:  # a handler bug must not forward the archive
        return Verdict(format="zip", content="archive", refused="engine_error",
                       detail=f"internal error in the zip handler ({type(e).__name__})")
    finally:
        _BUDGET.reset(token)


@dataclass
class _Member:
    index: int  # 1-based, as shown in details
    info: zipfile.ZipInfo
    is_dir: bool
    kind: str = "other"  # sniffed content kind
    action: str = "allow"
    dicomdir: bool = False
    new_name: str = ""
    cleaned: _Cleaned | None = None  # what a DICOMDIR needs from this file once cleaned


@dataclass
class _Cleaned:
    """A cleaned DICOM file, as the DICOMDIR records that index it must show it."""

    sop_class: str
    sop_instance: str
    syntax: str
    values: dict[int, object]  # tag -> DataElement, for the tags the DICOMDIR's records carry


@dataclass
class _Output:
    info: zipfile.ZipInfo
    data: bytes | None  # None: a DICOMDIR, written once every file it names is cleaned
    stored: bool = False


@dataclass
class _Archive:
    data: bytes
    clean_member: CleanMember
    member_action: Callable[[str], str]
    limits: EngineLimits
    depth: int
    hints: Hints
    budget: _Budget
    members: list[_Member] = field(default_factory=list)
    removed: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    actions: set[str] = field(default_factory=set)
    names: dict[tuple[str, bool], str] = field(default_factory=dict)  # (component, is_dir) -> output name
    renamed_ci: dict[tuple[str, bool], str] = field(default_factory=dict)  # the same, upper-cased keys
    taken: set[str] = field(default_factory=set)  # upper-cased components, old and new
    present: set[tuple[str, bool]] = field(default_factory=set)  # (upper-cased component, is_dir) in the archive
    counts: Counter = field(default_factory=Counter)
    record_tags: set[int] = field(default_factory=set)  # tags the archive's DICOMDIR records carry

    # -- 1. the central directory ------------------------------------------------

    def sanitize(self) -> Verdict:
        if self.depth >= self.limits.max_archive_depth:
            raise Refused("too_large", f"archives are nested more than {self.limits.max_archive_depth} deep")
        try:
            zf = zipfile.ZipFile(io.BytesIO(self.data))
        except zipfile.LargeZipFile:
            raise Refused("too_large", "the ZIP archive is too large") from None
        except Exception:  # noqa: BLE001 -- zipfile raises many things on damage
            raise Refused("corrupt", "the ZIP archive is damaged or truncated") from None
        with zf:
            self._check_directory(zf)
            self._first_pass(zf)
            self._rename()
            output = self._second_pass(zf)
        if zf.comment:
            self.removed["archive_comment"] += 1
        verdict = Verdict(format="zip", content="archive", output=output, removed=self.removed,
                          findings=self.findings)
        # Timestamps, comments, extra fields and any bytes outside the members
        # are gone whenever the rebuilt archive differs from the upload.
        if output != self.data or self.removed or "metadata_removed" in self.actions:
            verdict.actions.append("metadata_removed")
        if "pixels_redacted" in self.actions:
            verdict.actions.append("pixels_redacted")
        return verdict

    def _check_directory(self, zf: zipfile.ZipFile) -> None:
        infos = zf.infolist()
        n = len(infos)
        if n > self.limits.max_archive_members:
            raise Refused("too_large", f"the archive holds {n} files, over the limit of {self.limits.max_archive_members}")
        self.budget.take_members(n)
        seen: set[str] = set()
        total = 0
        for i, info in enumerate(infos, 1):
            where = f"archive member {i} of {n}"
            if info.flag_bits & 0x41:  # traditional or strong encryption
                raise Refused("unsupported_format", "encrypted archive member")
            if info.compress_type not in _METHODS:
                raise Refused("unsupported_format", f"{where} uses a compression method scrubgate does not open")
            if _unsafe(info.orig_filename):  # zipfile cuts names at NUL; the original has it
                raise Refused("corrupt", f"{where} has an unsafe path (absolute, a drive, '..' or NUL)")
            key = _normalised(info.filename).upper()
            if key in seen:
                raise Refused("corrupt", f"{where} has the same path as an earlier member")
            seen.add(key)
            is_dir = info.is_dir()
            self.members.append(_Member(i, info, is_dir))
            if is_dir:
                continue
            if info.file_size > self.limits.max_archive_member_bytes:
                raise Refused("too_large", f"{where} inflates to more than the limit per file")
            if info.file_size > _RATIO_FLOOR and info.file_size > self.limits.max_archive_ratio * max(info.compress_size, 1):
                raise Refused("too_large", f"{where} inflates over {self.limits.max_archive_ratio:g} times its size "
                                           "(a zip bomb)")
            total += info.file_size
        if total > self.limits.max_archive_bytes:
            raise Refused("too_large", "the archive inflates to more than the limit")
        if total > _RATIO_FLOOR and total > self.limits.max_archive_ratio * len(self.data):
            raise Refused("too_large", f"the archive inflates over {self.limits.max_archive_ratio:g} times its size "
                                       "(a zip bomb)")
        self._check_layout(infos, zf.start_dir)

    def _check_layout(self, infos: list[zipfile.ZipInfo], start_dir: int) -> None:
        """Every member's bytes must lie apart, before the central directory.

        Overlapping entries are how a small archive makes many large members
        out of one compressed kernel. Extra fields in the local headers are
        counted here too (they may differ from the central directory's)."""
        spans = []
        for member, info in zip(self.members, infos):
            at = info.header_offset
            head = self.data[at:at + 30]
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                raise Refused("corrupt", "the ZIP archive is damaged or truncated")
            name_len = int.from_bytes(head[26:28], "little")
            extra_len = int.from_bytes(head[28:30], "little")
            start = at + 30 + name_len + extra_len
            end = start + info.compress_size
            if end > start_dir or end > len(self.data):
                raise Refused("corrupt", "the ZIP archive is damaged or truncated")
            spans.append((at, end))
            local_extra = self.data[at + 30 + name_len:start]
            if _has_extra(info.extra) or _has_extra(local_extra):
                self.removed["archive_extra_field"] += 1
            if info.comment:
                self.removed["archive_comment"] += 1
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                raise Refused("too_large", "archive members overlap each other (a zip bomb)")

    # -- 2. kinds, policy and study hints ----------------------------------------

    def _first_pass(self, zf: zipfile.ZipFile) -> None:
        n = len(self.members)
        hints: list[tuple[str, str]] = list(self.hints)
        for m in self.members:
            if m.is_dir or m.info.file_size == 0:
                continue  # no content to judge (the name is judged in step 3)
            head = self._read(zf, m, _SNIFF_BYTES)
            m.kind = sniff(head).content
            m.action = self.member_action(m.kind)
            if m.action not in ("allow", "sanitize", "monitor"):
                raise Refused("unsupported_format", f"the policy does not allow {_KIND_NAMES[m.kind]} files "
                                                    f"inside archives (archive member {m.index} of {n})")
            if m.kind != "dicom":
                continue
            data = self._inflate(zf, m, budgeted=False)
            hints.extend(dicom.hints_from_bytes(data))
            if _sop_class(data) == _DIRECTORY_STORAGE:
                m.dicomdir = True
                hints.extend(self._read_records(data))
        self.hints = tuple(dict.fromkeys((k, v) for k, v in hints if v))

    # -- 3. names ----------------------------------------------------------------

    def _rename(self) -> None:
        for m in self.members:
            parts = _components(m.info.filename)
            for k, part in enumerate(parts):
                self.taken.add(part.upper())
                self.present.add((part.upper(), m.is_dir or k < len(parts) - 1))
        for m in self.members:
            parts = _components(m.info.filename)
            new = [self._component(p, m.is_dir or k < len(parts) - 1) for k, p in enumerate(parts)]
            m.new_name = "/".join(new) + ("/" if m.is_dir else "")

    def _component(self, part: str, is_dir: bool) -> str:
        key = (part, is_dir)
        if key in self.names:
            return self.names[key]
        kind = _identifying(part, self.hints)
        if kind is None:
            self.names[key] = part
            return part
        ext = ""
        if not is_dir:
            dot = part.rfind(".")
            if dot > 0 and _SAFE_EXT.fullmatch(part[dot:]) and _identifying(part[dot + 1:], self.hints) is None:
                ext = part[dot:]
        while True:
            self.counts[is_dir] += 1
            new = (f"DIR{self.counts[is_dir]:05d}" if is_dir else f"FILE{self.counts[is_dir]:04d}") + ext
            if new.upper() not in self.taken:
                break
        self.taken.add(new.upper())
        self.names[key] = new
        self.renamed_ci.setdefault((part.upper(), is_dir), new)
        self.removed["archive_member_name"] += 1
        self.findings.append(Finding(kind if kind in IDENTIFIER_KINDS else "free_text",
                                     "archive_name", "archive.member_name"))
        return new

    # -- 4. cleaning and writing -------------------------------------------------

    def _second_pass(self, zf: zipfile.ZipFile) -> bytes:
        n = len(self.members)
        queue: deque[_Output] = deque()
        indexed = any(m.dicomdir for m in self.members)
        dicomdirs: list[tuple[_Output, _Member, bytes]] = []
        by_path = {_normalised(m.info.filename).upper(): m for m in self.members if not m.is_dir}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", allowZip64=True) as out:
            for m in self.members:
                info = _clean_info(m.new_name, m.is_dir)
                if m.is_dir:
                    queue.append(_Output(info, b""))
                    continue
                data = self._inflate(zf, m, budgeted=True) if m.info.file_size else b""
                stored = m.info.compress_type == zipfile.ZIP_STORED
                if m.dicomdir:
                    item = _Output(info, None, stored)
                    queue.append(item)
                    dicomdirs.append((item, m, data))
                    continue
                if m.action == "sanitize":
                    data = self._clean(m, data, n)
                    if indexed and m.kind == "dicom":
                        m.cleaned = _cleaned(data, self.record_tags)
                queue.append(_Output(info, data, stored))
                _flush(out, queue)
            for item, m, data in dicomdirs:
                original = data
                if m.action == "sanitize":
                    data = self._clean(m, data, n)
                item.data = self._fix_dicomdir(m, original, data, by_path)
            _flush(out, queue)
        return buf.getvalue()

    def _clean(self, m: _Member, data: bytes, n: int) -> bytes:
        verdict = self.clean_member(data, self.hints)
        if verdict.refused:
            raise Refused(verdict.refused, f"archive member {m.index} of {n} ({m.kind}) was refused: {verdict.detail}")
        if verdict.output is None:
            raise Refused("engine_error", f"archive member {m.index} of {n} ({m.kind}) came back without output")
        self.removed.update(verdict.removed)
        self.findings.extend(verdict.findings)
        self.actions.update(verdict.actions)
        return verdict.output

    def _read(self, zf: zipfile.ZipFile, m: _Member, size: int) -> bytes:
        try:
            with zf.open(m.info) as f:
                return f.read(size)
        except Exception:  # noqa: BLE001 -- zlib.error, BadZipFile, EOFError ...
            raise Refused("corrupt", f"archive member {m.index} of {len(self.members)} is damaged") from None

    def _inflate(self, zf: zipfile.ZipFile, m: _Member, budgeted: bool) -> bytes:
        """One member's bytes, inflated in chunks under the caps (declared sizes lie)."""
        where = f"archive member {m.index} of {len(self.members)}"
        cap = min(m.info.file_size, self.limits.max_archive_member_bytes)
        chunks: list[bytes] = []
        size = 0
        try:
            with zf.open(m.info) as f:
                while chunk := f.read(_CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise Refused("too_large", f"{where} inflates past its declared size or the limit")
                    chunks.append(chunk)
        except Refused:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError):
            raise Refused("corrupt", f"{where} is damaged (bad checksum or truncated)") from None
        if size != m.info.file_size:
            raise Refused("corrupt", f"{where} is damaged (its size does not match the directory)")
        if size > _RATIO_FLOOR and size > self.limits.max_archive_ratio * max(m.info.compress_size, 1):
            raise Refused("too_large", f"{where} inflates over {self.limits.max_archive_ratio:g} times its size (a zip bomb)")
        if budgeted:
            self.budget.take_bytes(size)
        return b"".join(chunks)

    # -- 5. DICOMDIR -------------------------------------------------------------

    def _read_records(self, data: bytes) -> Hints:
        """A DICOMDIR's identifying values (in its records: its top level has none),
        and the tags its records copy from the files they index."""
        from .dicom import header

        out: list[tuple[str, str]] = []
        for record in dicom.read(data).get("DirectoryRecordSequence") or ():
            out.extend(header.collect_hints(record))
            self.record_tags.update(int(tag) for tag in record.keys() if tag.group != 0x0004)
        return tuple(out)

    def _fix_dicomdir(self, m: _Member, original: bytes, cleaned: bytes, by_path: dict[str, _Member]) -> bytes:
        """Point the DICOMDIR's records at the cleaned files, and rebuild its offsets.

        A record repeats values of the files below it (patient ID, study date,
        series UID ...). They are taken from the cleaned files, so the directory
        matches them: cleaned on its own, the DICOMDIR would get other dates (its
        top level names no patient, so it gets another patient's date shift).

        The records are chained by byte offsets into the file; cleaning changes
        element lengths, and so every offset after the first change. The links
        are read from the original (offset -> record index), then the cleaned
        file is written once to learn where each record now starts, and again
        with the offsets set. Offsets are fixed-size (UL), so the second write
        keeps the first one's layout; the result is read back to be sure."""
        links = _record_links(dicom.read(original))
        ds = dicom.read(cleaned)
        records = list(ds.get("DirectoryRecordSequence") or [])
        if len(records) != links.count:
            raise Refused("engine_error", "the cleaned DICOMDIR lost directory records")
        path = _normalised(m.info.filename)
        base = path[:path.rfind("/") + 1]  # File IDs are relative to the DICOMDIR's folder
        files: dict[int, _Cleaned] = {}
        renamed = False
        for i, record in enumerate(records):
            if _FILE_ID in record:
                target, moved = self._repoint(record, base, by_path)
                renamed |= moved
                if target is not None and target.cleaned is not None:
                    files[i] = target.cleaned
        for record, source in zip(records, links.sources(files)):
            if source is not None:
                _refill(record, source)
        if _DESCRIPTOR_FILE_ID in ds:
            parts = _file_id_parts(ds[_DESCRIPTOR_FILE_ID].value)
            ds[_DESCRIPTOR_FILE_ID].value = self._file_id(parts)
            renamed |= _file_id_parts(ds[_DESCRIPTOR_FILE_ID].value) != parts
        if m.action != "sanitize" and not renamed:
            return original  # the policy lets DICOM through as it is, and no path changed
        for _ in range(3):
            data = dicom.write(ds)
            back = dicom.read(data)
            positions = [r.seq_item_tell for r in back.get("DirectoryRecordSequence") or []]
            if links.hold(back, positions):
                return data
            links.apply(ds, positions)
        raise Refused("engine_error", "the DICOMDIR's record offsets could not be rebuilt")

    def _repoint(self, record, base: str, by_path: dict[str, _Member]) -> tuple[_Member | None, bool]:
        """Give a record the new File ID and the cleaned file's UIDs.
        Returns the member the record names (if in the archive) and whether the File ID changed."""
        parts = _file_id_parts(record[_FILE_ID].value)
        target = by_path.get((base + "/".join(parts)).upper())
        record[_FILE_ID].value = self._file_id(parts)
        if target is not None and target.cleaned is not None:
            record.ReferencedSOPClassUIDInFile = target.cleaned.sop_class
            record.ReferencedSOPInstanceUIDInFile = target.cleaned.sop_instance
            record.ReferencedTransferSyntaxUIDInFile = target.cleaned.syntax
        return target, _file_id_parts(record[_FILE_ID].value) != parts

    def _file_id(self, parts: list[str]) -> list[str] | str:
        """A File ID with renamed components replaced (File IDs are upper case; zip names may not be)."""
        new = []
        for k, part in enumerate(parts):
            is_dir = k < len(parts) - 1
            key = (part.upper(), is_dir)
            if key in self.renamed_ci:
                new.append(self.renamed_ci[key])
            elif key in self.present:
                new.append(part)  # kept in the archive, so kept here (File IDs match case-blind)
            else:
                new.append(self._component(part, is_dir))  # a file not in the archive: same rules
        return new if len(new) > 1 else new[0]


# -- DICOMDIR record links --------------------------------------------------------


@dataclass
class _Links:
    count: int
    targets: dict[tuple[int, int], int | None]  # (owner, tag) -> record index, None for 0
    order: list[int] = field(default_factory=list)  # the records in the tree, parents first

    def apply(self, ds, positions: list[int]) -> None:
        from pydicom.dataelem import DataElement

        records = ds.DirectoryRecordSequence
        for (owner, tag), target in self.targets.items():
            where = ds if owner < 0 else records[owner]
            value = 0 if target is None else positions[target]
            if tag in where:
                where[tag].value = value
            else:
                where[tag] = DataElement(tag, "UL", value)

    def children(self, i: int):
        child = self.targets.get((i, _LOWER))
        while child is not None:
            yield child
            child = self.targets.get((child, _NEXT))

    def sources(self, files: dict[int, _Cleaned]) -> list[_Cleaned | None]:
        """For each record, the cleaned file it summarises: its own (a record with a
        File ID), else its first descendant's that has one."""
        found: list[_Cleaned | None] = [files.get(i) for i in range(self.count)]
        for i in reversed(self.order):  # descendants come after their ancestors in `order`
            if found[i] is None:
                found[i] = next((found[c] for c in self.children(i) if found[c] is not None), None)
        return found

    def hold(self, ds, positions: list[int]) -> bool:
        if len(positions) != self.count:
            return False
        records = ds.get("DirectoryRecordSequence") or []
        for (owner, tag), target in self.targets.items():
            where = ds if owner < 0 else records[owner]
            want = 0 if target is None else positions[target]
            if tag not in where or where[tag].value != want:
                return False
        return True


def _record_links(ds) -> _Links:
    """Which record each offset of the original DICOMDIR points at."""
    records = list(ds.get("DirectoryRecordSequence") or [])
    at = {r.seq_item_tell: i for i, r in enumerate(records)}
    targets: dict[tuple[int, int], int | None] = {}
    owners = [(-1, ds, _TOP_OFFSETS)] + [(i, r, _RECORD_OFFSETS) for i, r in enumerate(records)]
    for owner, where, tags in owners:
        for tag in tags:
            if tag not in where:
                continue
            value = where[tag].value
            if not value:
                targets[(owner, tag)] = None
            elif value in at:
                targets[(owner, tag)] = at[value]
            else:
                raise Refused("corrupt", "the DICOMDIR's record offsets do not point at its records")
    links = _Links(len(records), targets)
    # Walk the tree once: each record at most once, or the links loop (and
    # whatever reads this DICOMDIR next would loop with them).
    seen: set[int] = set()
    stack = [targets.get((-1, _TOP_OFFSETS[0]))]
    while stack:
        i = stack.pop()
        while i is not None:
            if i in seen:
                raise Refused("corrupt", "the DICOMDIR's records link in a loop")
            seen.add(i)
            links.order.append(i)
            stack.append(targets.get((i, _LOWER)))
            i = targets.get((i, _NEXT))
    return links


def _refill(record, source: _Cleaned) -> None:
    """Copy into a record the cleaned file's values for the tags the record carries."""
    copied = False
    for tag in [int(t) for t in record.keys()]:
        if tag >> 16 != 0x0004 and tag != _CHARSET and tag in source.values:
            record[tag] = copy.deepcopy(source.values[tag])
            copied = True
    if copied and _CHARSET in source.values:
        record[_CHARSET] = copy.deepcopy(source.values[_CHARSET])  # the values' repertoire comes along


def _sop_class(data: bytes) -> str | None:
    """The Media Storage SOP Class UID from a DICOM file's meta header, or None."""
    import pydicom

    try:
        meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=[0x00080016]).file_meta
        return str(meta.MediaStorageSOPClassUID)
    except Exception:  # noqa: BLE001 -- not readable as DICOM: not a DICOMDIR
        return None


def _cleaned(data: bytes, tags: set[int]) -> _Cleaned | None:
    """What the DICOMDIR needs from a cleaned file: its UIDs and the values its records repeat."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        meta = ds.file_meta
        return _Cleaned(str(meta.MediaStorageSOPClassUID), str(meta.MediaStorageSOPInstanceUID),
                        str(meta.TransferSyntaxUID),
                        {t: copy.deepcopy(ds[t]) for t in tags | {_CHARSET} if t in ds})
    except Exception:  # noqa: BLE001 -- the engine wrote and re-read it; a failure here leaves the record as cleaned
        return None


def _file_id_parts(value) -> list[str]:
    parts = [value] if isinstance(value, str) else list(value)
    return [str(p).strip() for p in parts]


# -- names --------------------------------------------------------------------------


def _unsafe(name: str) -> bool:
    if not name or "\x00" in name or name[0] in "/\\" or re.match(r"[A-Za-z]:", name):
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


def _normalised(name: str) -> str:
    """The path with Windows separators made '/' (what an unzipper would create)."""
    return name.replace("\\", "/")


def _components(name: str) -> list[str]:
    return _normalised(name).rstrip("/").split("/")


def _identifying(part: str, hints: Hints) -> str | None:
    """The identifier kind a path component carries, or None."""
    stem = part.rsplit(".", 1)[0] if "." in part[1:] else part
    if _UID_NAME.fullmatch(part) or _UID_NAME.fullmatch(stem):
        return "unique_id"
    media = _MEDIA_NAME.fullmatch(stem) is not None
    for text in dict.fromkeys((re.sub(r"[_^\-]+", " ", part), re.sub(r"[_^\-.]+", " ", part))):
        spans = [] if media else find_identifiers(text)
        if spans:
            return spans[0].kind
        if hints and (kind := hint_values.match(text, hints)):
            return kind
    if _DATE_RUN.search(part):
        return "date"
    return None


def _has_extra(extra: bytes) -> bool:
    """True when an extra field block holds anything but the Zip64 sizes."""
    i = 0
    while i + 4 <= len(extra):
        tag = int.from_bytes(extra[i:i + 2], "little")
        size = int.from_bytes(extra[i + 2:i + 4], "little")
        if tag != _ZIP64_EXTRA:
            return True
        i += 4 + size
    return i < len(extra)


# -- writing ----------------------------------------------------------------------


def _clean_info(name: str, is_dir: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.create_system = 3  # Unix, whatever this gateway runs on
    info.external_attr = ((0o40755 << 16) | 0x10) if is_dir else (0o100644 << 16)
    if is_dir:
        info.CRC = info.compress_size = info.file_size = 0
    return info


def _flush(out: zipfile.ZipFile, queue: deque[_Output]) -> None:
    """Write queued members in order, up to the first one still waiting (a DICOMDIR)."""
    while queue and queue[0].data is not None:
        item = queue.popleft()
        if item.info.is_dir():
            out.mkdir(item.info)
        else:
            method = zipfile.ZIP_STORED if item.stored else zipfile.ZIP_DEFLATED
            out.writestr(item.info, item.data, compress_type=method, compresslevel=6)
