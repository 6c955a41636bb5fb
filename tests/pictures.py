"""Pictures with identifiers planted in the pixels, for the pixel tests.

The builders are scrubgate.samples' (shared with the demo and the benchmarks),
with the tests' own banner and a handheld phone. Small and deterministic; the
broad corpus (fonts, layouts, distortions, languages) is the quality harness's.
"""

from __future__ import annotations

from PIL import Image

from scrubgate import samples
from scrubgate.samples import encode, font, wristband  # noqa: F401 (re-exported for the tests)

# Valid checksums: 943 476 5919 passes NHS mod 11; 111222333 passes the BSN 11-test.
IDENTIFIERS = ["KOWALSKI^ANNA", "NHS 943 476 5919", "DOB: 04-Mar-1962", "MRN: RX0042113",
               "St Mary's Hospital", "Study 2018-03-04 14:32"]
TECHNICAL = ["kVp 120 mAs 250", "W 400 L 40", "Se: 3 Im: 12/240", "Zoom 150%"]


def viewer_screen(identifiers=IDENTIFIERS, technical=TECHNICAL, size=(1280, 960), text_px=16,
                  dark=True) -> Image.Image:
    """A PACS-like screen: identifiers top-left, technical text top- and bottom-right."""
    return samples.viewer_screen(identifiers, technical, size, text_px, dark)


def photograph(im: Image.Image, seed: int = 1) -> Image.Image:
    """The screen as a handheld phone sees it: tilt, moire, vignetting, blur, noise."""
    return samples.phone_photo(im, seed, samples.HANDHELD)
