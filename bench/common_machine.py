"""Machine record and small statistics shared by the benchmarks (bench/proxy.py, bench/engine.py,
and the quality suite under evaluation/)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata as im
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["scrubgate", "mitmproxy", "pillow", "numpy", "opencv-python-headless", "pydicom", "tesserocr",
            "pytesseract", "httpx", "zxing-cpp"]


def machine(packages: list[str] = PACKAGES, tools=(("tesseract", ["--version"]),)) -> dict:
    """What the numbers were measured on: CPU, cores, RAM, load, OS, tool and package
    versions, and the git commit."""
    info = {"python": platform.python_version(), "os": platform.platform()}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    except OSError:
        pass
    try:
        cpu = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
               if ln.startswith("model name")]
        info["cpu"] = cpu[0] if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    try:
        info["cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
        info["ram_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    for tool, args in tools:
        try:
            out = subprocess.run([tool, *args], capture_output=True, text=True, timeout=20)
            info[tool] = (out.stdout or out.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            info[tool] = "not found"
    pkgs = {}
    for p in packages:
        try:
            pkgs[p] = im.version(p)
        except im.PackageNotFoundError:
            pkgs[p] = None
    info["packages"] = pkgs
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "addons"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["git"] = rev + (" (addons/ has uncommitted changes)" if dirty else "")
    except OSError:
        pass
    return info


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for an empty list."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def machine_md(m: dict) -> list[str]:
    lines = ["| | |", "| --- | --- |"]
    for k, v in m.items():
        if k == "packages":
            v = ", ".join(f"{p} {ver}" for p, ver in v.items() if ver)
        lines.append(f"| {k} | {v} |")
    return lines
