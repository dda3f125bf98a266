#!/usr/bin/env bash
# `make gpu-bundle`: builds .carry/ (git-ignored) for a GPU machine without network whose Python is
# 3.12 with numpy 2 and CuPy 14, which Chainer 7.8.1 cannot use. .carry/site.tar.xz holds the
# Python 3.12 packages the GPU check needs; .carry/prelude.sh (reproduce/tools/gpu_prelude.sh)
# unpacks it there. On that machine, from the repository root:
#   source .carry/prelude.sh && python3 reproduce/gpu_check.py
# Carried: numpy 1.26.4, CuPy 13.6.0 for CUDA 13 (+ fastrlock), setuptools 69.5.1 (Chainer needs
# pkg_resources), Chainer 7.8.1 (an sdist: built here into a wheel with setuptools<70, no build
# isolation) and its small pure-Python needs (six, typing_extensions, filelock; not protobuf,
# which only its Caffe/ONNX export uses), pillow 11.3.0 (datasets/ imports PIL, so the GPU check
# cannot start without it; 5.4 MiB), pytest 8.3.5 and what it needs on Python 3.12 (pluggy,
# iniconfig, packaging; exceptiongroup and tomli only below 3.11). Measured: 57 MiB in all.
# Not carried: matplotlib (and so figures, which reproduce/report/plots.py draws): with kiwisolver,
# contourpy, fonttools (PDF output needs it), cycler, pyparsing, dateutil the bundle measured
# 68 MiB (66 MiB at xz -9e), over the 60 MiB that may travel. Nor cuDNN (Makefile), nor
# scikit-learn (only the digits data set uses it).
# Fails unless .carry/ stays under 60 MiB. CARRY_DIR=path writes elsewhere (the tests use it).
set -euo pipefail
cd "$(dirname "$0")/../.."
carry=${CARRY_DIR:-.carry}
PYTHON=${PYTHON:-python3}
PINS=(numpy==1.26.4 cupy-cuda13x==13.6.0 fastrlock==0.8.4 setuptools==69.5.1
      six==1.17.0 typing_extensions==4.15.0 filelock==3.19.1 pillow==11.3.0
      pytest==8.3.5 pluggy==1.5.0 iniconfig==2.0.0 packaging==24.2)
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux_2_28_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64)
LIMIT=$((60 * 1024 * 1024))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/bv"
pip=("$work/bv/bin/python" -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install 'setuptools<70' wheel
"${pip[@]}" wheel --no-deps --no-build-isolation -w "$work/whl" chainer==7.8.1
"${pip[@]}" download --no-deps "${TARGET[@]}" -d "$work/whl" "${PINS[@]}"
"${pip[@]}" install --no-index --no-deps --no-compile "${TARGET[@]}" --target "$work/site" \
  "$work"/whl/*.whl
mkdir -p "$work/carry"
tar -C "$work/site" -cf - . | xz -6 -T0 > "$work/carry/site.tar.xz"
cp reproduce/tools/gpu_prelude.sh "$work/carry/prelude.sh"
rm -rf "$carry" && mkdir -p "$(dirname "$carry")" && mv "$work/carry" "$carry"
size=$(du -sb "$carry" | cut -f1)
echo "carried packages:" $(ls "$work/site" | sed -n 's/\.dist-info$//p')
awk -v c="$carry" -v s="$size" \
  'BEGIN { printf "%s: %d bytes, %.1f MiB (limit 60 MiB)\n", c, s, s / 1048576 }'
if [ "$size" -ge "$LIMIT" ]; then
  echo "error: $carry is 60 MiB or more: too large to travel with the working tree" >&2
  exit 1
fi
echo "ready; on the GPU machine, from the repository root:"
echo "  source .carry/prelude.sh && python3 reproduce/gpu_check.py"
