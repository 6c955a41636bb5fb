"""What the policy can choose for DICOM: the PS3.15 Annex E options, and the key.

Field names follow the option columns of Table E.1-1, so a reader can hold
the two side by side. Defaults are the Basic Profile plus the cleaning
options, with dates shifted rather than blanked (intervals between studies
survive; the calendar dates do not).
"""

from __future__ import annotations

from dataclasses import dataclass

LONGITUDINAL = ("off", "full", "modified")


@dataclass(frozen=True)
class DicomOptions:
    clean_pixel_data: bool = True  # burned-in text in every frame
    clean_descriptors: bool = True  # free text (descriptions, comments) is cleaned, not just removed
    clean_structured_content: bool = True
    clean_graphics: bool = True  # overlays, curves, graphic annotations
    # "off": dates follow the Basic Profile (emptied, dummied or removed);
    # "full": Retain Longitudinal Temporal Information with Full Dates;
    # "modified": ... with Modified Dates: shifted by a keyed per-patient offset.
    retain_longitudinal: str = "modified"
    retain_patient_characteristics: bool = False  # sex, age, size, weight ...
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    retain_uids: bool = False
    retain_safe_private: bool = False  # Table E.3.10-1 safe private attributes
    # Deployment secret for the keyed UID remap and date shift. Replicas that
    # share it produce the same new UIDs for the same study.
    secret: bytes = b""
