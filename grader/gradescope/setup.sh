#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image; the zip is then
# unpacked in $AUTOGRADER_ROOT/source (default /autograder/source), the kit in source/kit.
#
# 1. builds the kit's environment the way the kit's noxfile does (`_kit_python`): a venv,
#    `pip install -r requirements/lock.txt`, then @LAVA_DL@ with --no-deps
#    --ignore-requires-python, then the kit itself (editable);
# 2. records its interpreter in source/kit-python for run_autograder;
# 3. checks it (imports, numerical mode) and prepares the calibration of the course budget
#    (@EPOCHS@ epochs): shipped when this machine reproduces the kit's reference run bit for bit,
#    otherwise computed here once and kept in the image (a few minutes).
#
# For tests: S2S_KIT_PYTHON=/path/to/bin/python reuses an environment already built (step 1 is
# skipped, the others run); S2S_EPOCHS=N prepares budget N instead. S2S_BASE_PYTHON=python3.X
# names the interpreter the venv is made from (default: the first of python3.11, python3.10,
# python3 that is 3.10 or 3.11).
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
KIT="$ROOT/source/kit"
VENV="$ROOT/kit-env"
LAVA_DL="@LAVA_DL@"

log() { printf '[setup.sh] %s\n' "$*"; }

supported() {  # is $1 a Python 3.10 or 3.11 interpreter?
    command -v "$1" >/dev/null 2>&1 \
        && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 10), (3, 11)) else 1)' 2>/dev/null
}

if [ -n "${S2S_KIT_PYTHON:-}" ]; then
    PYTHON="$S2S_KIT_PYTHON"
    log "S2S_KIT_PYTHON is set: reusing the environment of $PYTHON (nothing installed)"
else
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Python and its venv module (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q python3 python3-venv python3-pip
    fi
    BASE=""
    for candidate in ${S2S_BASE_PYTHON:-} python3.11 python3.10 python3; do
        if supported "$candidate"; then BASE="$(command -v "$candidate")"; break; fi
    done
    if [ -z "$BASE" ]; then
        echo "setup.sh: error: the kit needs Python 3.10 or 3.11 and this image has neither" \
             "(choose Gradescope's Ubuntu 22.04 base image, whose python3 is 3.10)" >&2
        exit 1
    fi
    log "building the kit's environment in $VENV from $BASE ($("$BASE" -V 2>&1))"
    "$BASE" -m venv --clear "$VENV"
    PYTHON="$VENV/bin/python"
    pip=("$PYTHON" -m pip install --disable-pip-version-check -q)
    "${pip[@]}" -r "$KIT/requirements/lock.txt"
    # lava-dl 0.6.0 declares Python <3.11 and pins torch 2.3: installed beside the kit's pins.
    "${pip[@]}" --no-deps --ignore-requires-python "$LAVA_DL"
    "${pip[@]}" --no-deps --no-build-isolation -e "$KIT"
fi

if [ ! -x "$PYTHON" ]; then
    echo "setup.sh: error: $PYTHON is not an executable interpreter" >&2
    exit 1
fi
printf '%s\n' "$PYTHON" > "$ROOT/source/kit-python"
log "kit interpreter: $PYTHON (recorded in $ROOT/source/kit-python)"

cd "$KIT"
export AUTOGRADER_ROOT="$ROOT" PYTHONHASHSEED=0 PYTHONPATH="$KIT${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -m grader.gradescope setup
log "done"
