#!/usr/bin/env bash
# Installs everything synthssl needs into ./.venv; safe to re-run (skips what is done).
#   - Debian packages: headless GL (Mesa EGL + OSMesa), Fashion-MNIST, sample photos.
#   - A Python 3.11 virtual environment with torch, torchvision and synthssl[all,test] (editable).
# Sourced by scripts/demo.sh and scripts/test.sh; run directly to only install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SYNTHSSL_VENV:-$ROOT/.venv}"

APT_PACKAGES=(
  python3-venv python3-pip          # virtual environment
  libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libgles2  # headless rendering through Mesa EGL (llvmpipe)
  libosmesa6                        # OSMesa fallback renderer
  libglu1-mesa                      # pyrender imports its viewer, which needs libGLU
  dataset-fashion-mnist             # the default real labeled benchmark (IDX files)
  mate-backgrounds                  # a few dozen real photos for the demo's domain adaptation
  hdf5-tools                        # h5dump: the interop test reads a shard without h5py
)
# unpack_from_deb PACKAGE DIR PATH...: copy the files PATH... (paths inside the package,
# globs allowed; a folder is copied whole) of the Debian package PACKAGE into DIR, without
# installing the package.
# Done once: DIR/.unpacked marks it.
unpack_from_deb() {
  local package="$1" dir="$2"
  shift 2
  [ -f "$dir/.unpacked" ] && return 0
  echo "[setup] unpacking files of $package into $dir"
  local SUDO="" tmp p
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -q "$package" >/dev/null 2>&1) \
    || { $SUDO apt-get update -q >/dev/null && (cd "$tmp" && apt-get download -q "$package"); }
  dpkg-deb -x "$tmp"/"$package"_*.deb "$tmp/x"
  local files=()
  for p in "$@"; do files+=("$tmp"/x/$p); done  # unquoted $p: globs expand
  $SUDO mkdir -p "$dir"
  $SUDO cp -r "${files[@]}" "$dir"/
  $SUDO touch "$dir/.unpacked"
  rm -rf "$tmp"
}

# The photo-patches evaluation task (docs/eval.md): the photographs of this package are
# unpacked into their own folder, not installed into /usr/share/backgrounds, so that no
# photo folder a user trains on ever holds them.
PATCHES_PACKAGE=lomiri-wallpapers-16.04
PATCHES_DIR=/usr/share/synthssl/photo-patches

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

unpack_from_deb "$PATCHES_PACKAGE" "$PATCHES_DIR" "usr/share/backgrounds/*.jpg" \
  "usr/share/doc/$PATCHES_PACKAGE/copyright"

# Real depth ground truth for `train-ssl predict zero_shot=true` (docs/eval.md): the Middlebury
# 2014 "Motorcycle" pair with its disparity, as scikit-image ships it in its package data.
# Only those files (and the package's copyright file) are unpacked; scikit-image is not installed.
STEREO_PACKAGE=python3-skimage
STEREO_DIR=/usr/share/synthssl/middlebury-motorcycle
unpack_from_deb "$STEREO_PACKAGE" "$STEREO_DIR" \
  usr/lib/python3/dist-packages/skimage/data/motorcycle_{left.png,right.png,disp.npz} \
  "usr/share/doc/$STEREO_PACKAGE/copyright"

# Real RGB-D frames with sensor depth (docs/eval.md): ViSP's castel sequence, 30 frames and the two
# cameras' calibration (28 MB of the 75 MB package visp-images-data, which is not installed).
CASTEL_PACKAGE=visp-images-data
CASTEL_DIR=/usr/share/synthssl/visp-castel
unpack_from_deb "$CASTEL_PACKAGE" "$CASTEL_DIR" \
  usr/share/visp-images-data/ViSP-images/mbt-depth/castel/{chateau.xml,chateau_depth.xml,depth_M_color.txt,castel} \
  "usr/share/doc/$CASTEL_PACKAGE/copyright"

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null && PY="$c" && break; done
fi
[ -n "$PY" ] || { echo "[setup] error: no python3 found; install Python 3.11" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi

# Re-install Python packages only when pyproject.toml or this script changed.
STAMP="$VENV/.synthssl-setup-stamp"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch/torchvision pinned to a release pair that imports together.
  "$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  # [all]: rendering and training (a plain install is the shard format only; README "Installing")
  "$VENV/bin/python" -m pip install -q -e "$ROOT[all,test]"
  # pyrender 0.1.45 pins PyOpenGL 3.1.0, whose OSMesa binding is broken; 3.1.10 works
  # with pyrender's EGL and OSMesa paths (see render/gl_compat.py).
  "$VENV/bin/python" -m pip install -q --no-deps "PyOpenGL==3.1.10"
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
