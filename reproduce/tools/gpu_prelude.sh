# Sourced (bash) on a Python 3.12 GPU machine without network, from the repository root:
#   source .carry/prelude.sh && python3 reproduce/gpu_check.py
# `make gpu-bundle` copies it to .carry/prelude.sh, next to .carry/site.tar.xz. It unpacks that
# tarball once into ${TMPDIR:-/tmp}/mixup-carry-site/<checksum> (no root needed; a new bundle has a
# new checksum, so it is unpacked afresh and the old copy removed), then puts the carried numpy
# 1.26 / CuPy 13.6 (CUDA 13 build, no cuDNN) / Chainer 7.8.1 / pytest first on PYTHONPATH, the
# checkout next, and points CuPy at CUDA 13 (CUDA_PATH, and the nvidia/cu13/lib wheel libraries
# of the machine's own Python). Without the tarball it returns 1 with a one-line message.
_carry_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -f "$_carry_dir/site.tar.xz" ]; then
  echo "prelude.sh: $_carry_dir/site.tar.xz is missing: run make gpu-bundle (with network) first" >&2
  return 1 2>/dev/null || exit 1
fi
_carry_sum=$(sha256sum "$_carry_dir/site.tar.xz" | cut -c1-16)
_carry_site=${TMPDIR:-/tmp}/mixup-carry-site/$_carry_sum
if [ ! -f "$_carry_site/.unpacked" ]; then
  rm -rf "${_carry_site%/*}" && mkdir -p "$_carry_site" &&
    tar -xJf "$_carry_dir/site.tar.xz" -C "$_carry_site" && touch "$_carry_site/.unpacked" || {
    echo "prelude.sh: could not unpack $_carry_dir/site.tar.xz into $_carry_site" >&2
    return 1 2>/dev/null || exit 1
  }
fi
export PYTHONPATH=$_carry_site:${_carry_dir%/*}${PYTHONPATH:+:$PYTHONPATH}
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
_carry_nv=$(python3 -c 'import glob, site
print(":".join(p for s in site.getsitepackages() for p in glob.glob(s + "/nvidia/cu13/lib")))' \
  2>/dev/null)
export LD_LIBRARY_PATH=$CUDA_PATH/lib64${_carry_nv:+:$_carry_nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CHAINER_CUDNN=0 PYTHONUNBUFFERED=1
unset _carry_dir _carry_sum _carry_site _carry_nv
