"""What the engine will take on, and the two policy switches it obeys: defined once.

`EngineLimits` is the one record of the engine's bounds (decompression bombs,
animations, archives). The policy's `limits:` block nests it
(`policy.Limits.engine`); the format decoders, the DICOM reader and the
archive reader all take it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

TextMode = Literal["identifiers", "all", "none"]  # burned-in text to paint out
FacesMode = Literal["blur", "block", "keep"]  # faces in photographs
TEXT_MODES: tuple[str, ...] = get_args(TextMode)
FACES_MODES: tuple[str, ...] = get_args(FacesMode)


@dataclass(frozen=True)
class EngineLimits:
    max_pixels: int = 100_000_000  # per frame: 100 MP, above any phone camera
    max_frames: int = 500  # GIF frames, TIFF pages, HEIC images, DICOM frames
    max_total_pixels: int = 400_000_000  # summed over frames: an animation is no bomb either
    max_archive_members: int = 10_000
    max_archive_bytes: int = 2 * 1024**3  # uncompressed, summed (over nested archives too)
    max_archive_member_bytes: int = 512 * 1024**2
    max_archive_ratio: float = 200.0  # uncompressed/compressed, per member and overall
    max_archive_depth: int = 3  # archive levels: a zip in a zip in a zip
