"""The neural text models: PP-OCR detection and recognition, as ONNX, from a wheel.

The weights ship inside the `rapidocr` wheel (PaddleOCR's PP-OCRv6 small
models, Apache-2.0); nothing is ever downloaded. We use only the files, not
rapidocr's pipeline: the model files are found without importing the package,
and run by onnxruntime with one thread (the worker pool is the parallelism;
more threads per worker only fight the other workers for the cores).

A session is built once per process (`lru_cache`), so a worker pays the
~0.3 s load at start (`engine.warm_up`), not on its first upload.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

_PACKAGE = "rapidocr"
DETECTOR_FILE = "PP-OCRv6_det_small.onnx"
RECOGNISER_FILE = "PP-OCRv6_rec_small.onnx"


class ModelUnavailable(RuntimeError):
    """The model files or onnxruntime are missing: a deployment error, not bad input."""


def model_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the {_PACKAGE} wheel (which carries the PP-OCR models) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def model_path(name: str) -> Path:
    """A file in the wheel's model folder (or, for benchmarks comparing models, any path)."""
    path = Path(name) if os.path.isabs(name) else model_dir() / name
    if not path.is_file():
        raise ModelUnavailable(f"model file {name} is missing from the {_PACKAGE} wheel")
    return path


@lru_cache(maxsize=4)
def session(name: str):
    """One single-threaded onnxruntime session per model file, per process."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ModelUnavailable("onnxruntime is not installed") from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # the models' benign shape-merge warnings are not ours to print
    options.enable_cpu_mem_arena = False  # an arena keeps the peak of the largest picture for ever
    return ort.InferenceSession(str(model_path(name)), options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=1)
def alphabet() -> tuple[str, ...]:
    """The recogniser's output classes: CTC blank, the model's characters, then space."""
    meta = session(RECOGNISER_FILE).get_modelmeta().custom_metadata_map
    chars = meta.get("character", "").splitlines()
    if not chars:
        raise ModelUnavailable(f"{RECOGNISER_FILE} carries no character list")
    return ("",) + tuple(_FULLWIDTH.get(c, c) for c in chars) + (" ",)


# The recogniser learned Chinese print too, and reads a colon after a label as the
# fullwidth '：' as often as not ("N°labo：46862499"); the recognizers' label patterns
# know ASCII. One character for one, so the word boxes stay where they were.
_FULLWIDTH = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {
    "\u3000": " ", "\u3001": ",", "\u3002": ".", "\u2236": ":"}


def versions() -> dict[str, str]:
    """For benchmark and quality reports: which models and runtime ran."""
    out = {"detector": DETECTOR_FILE, "recogniser": RECOGNISER_FILE}
    try:
        from importlib.metadata import version

        out[_PACKAGE] = version(_PACKAGE)
        out["onnxruntime"] = version("onnxruntime")
    except Exception:
        pass
    return out


os.environ.setdefault("OMP_NUM_THREADS", "1")
