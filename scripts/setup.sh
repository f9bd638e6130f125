#!/usr/bin/env bash
# Set up fluxmusic in a virtual environment (.venv, or the one already active).
#   bash scripts/setup.sh          # the library and CLI
#   bash scripts/setup.sh --dev    # plus test, training and dataset-building tools
# torch is installed first as the CPU build (torch==2.13.0) so that no multi-GB CUDA build is pulled in;
# install a CUDA build yourself beforehand to run on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi

if [ "$dev" = 1 ]; then
  # FluidSynth and the FluidR3 GM SoundFont render the bundled model's training data (and its tests).
  if ! command -v fluidsynth >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq --no-install-recommends fluidsynth fluid-soundfont-gm \
      || echo "setup: could not install fluidsynth (dataset-builder tests will be skipped)" >&2
  fi
  # Debian's Chromium and its driver run the web UI's browser test (tests/web/test_browser.py).
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation \
      || echo "setup: could not install chromium (the browser test will fail in CI, be skipped elsewhere)" >&2
  fi
fi

python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
if [ "$dev" = 1 ]; then
  python -m pip install -q -e ".[dev,train,data,web]"
  # basic-pitch's wheel carries the ONNX note model `fluxmusic evaluate --embedding basic-pitch` runs with
  # onnxruntime; its own requirements would pull in TensorFlow, so it comes without them.
  python -m pip install -q --no-deps "basic-pitch>=0.4"
else
  python -m pip install -q -e .
fi
echo "setup: done ($(python -c 'import fluxmusic, torch; print("fluxmusic", fluxmusic.__version__, "torch", torch.__version__)'))"
