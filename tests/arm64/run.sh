#!/usr/bin/env bash
# make test-arm64: the edge tests under an emulated Raspberry-Pi-like aarch64 Python 3.11
# (Debian Bookworm arm64 binaries run by qemu-user), with both TFLite runtimes, then a check
# that the aarch64 outputs match x86: the same argmax, int8 outputs within one quantization step.
#
# Nothing here touches the host's apt state: arm64 packages are fetched with a private apt
# configuration and unpacked into .arm64/rootfs; aarch64 wheels go into .arm64/site.
# Two facts make emulation faithful (see README): QEMU_CPU=cortex-a72 (qemu 7.2's default CPU
# advertises SME and ai-edge-litert 2.3 then gives wrong int8 results) and a Raspberry Pi
# /proc/cpuinfo inside the rootfs (ai-edge-litert >= 2.2 crashes on the host's x86 one).
# Emulated timings say nothing about a real Pi; only results are compared.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${ARM64_LAB:-$ROOT/.arm64}
ROOTFS=$LAB/rootfs SITE=$LAB/site APT=$LAB/apt
HOST_PY=${HOST_PY:-$ROOT/.venv/bin/python}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
WHEELS=("numpy==1.26.4" "pillow>=10,<14" "click>=8.1" "ai-edge-litert==2.3.*" "tflite-runtime==2.14.*"
        "opencv-python-headless==4.11.0.86" "pytest>=8")

step() { printf '\n== %s\n' "$*"; }

if ! command -v qemu-aarch64-static >/dev/null; then
  step "installing qemu-user-static"
  $SUDO apt-get install -y -q qemu-user-static >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q qemu-user-static >/dev/null; }
fi

if [[ ! -x $ROOTFS/usr/bin/python3.11 ]]; then
  step "building an arm64 Python 3.11 rootfs in $ROOTFS"
  mkdir -p "$APT"/{lists/partial,cache/archives/partial,etc/apt.conf.d,etc/preferences.d,etc/sources.list.d}
  : > "$APT/status"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mirrors=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n' | sort -u)
  [[ -n $mirrors ]] || mirrors=$(awk '$1 == "deb" {print $2}' /etc/apt/sources.list 2>/dev/null | sort -u)
  for m in $mirrors; do
    if [[ $m == *security* ]]; then echo "deb [arch=arm64 signed-by=$keyring] $m bookworm-security main"
    else printf 'deb [arch=arm64 signed-by=%s] %s bookworm main\ndeb [arch=arm64 signed-by=%s] %s bookworm-updates main\n' \
           "$keyring" "$m" "$keyring" "$m"; fi
  done > "$APT/etc/sources.list"
  apt_arm64=(apt-get -q -o "Dir::Etc=$APT/etc" -o "Dir::Etc::SourceList=$APT/etc/sources.list"
             -o "Dir::Etc::SourceParts=$APT/etc/sources.list.d" -o "Dir::Etc::Parts=$APT/etc/apt.conf.d"
             -o "Dir::Etc::PreferencesParts=$APT/etc/preferences.d" -o "Dir::State=$APT"
             -o "Dir::State::Lists=$APT/lists" -o "Dir::State::status=$APT/status" -o "Dir::Cache=$APT/cache"
             -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1)
  "${apt_arm64[@]}" update >/dev/null
  "${apt_arm64[@]}" install -y --download-only --no-install-recommends python3.11 libstdc++6 libgomp1 >/dev/null
  mkdir -p "$ROOTFS/proc"
  for deb in "$APT"/cache/archives/*.deb; do dpkg-deb -x "$deb" "$ROOTFS"; done
  for cpu in $(seq 0 $(($(nproc) - 1))); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$cpu"
  done > "$ROOTFS/proc/cpuinfo"
  printf 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' >> "$ROOTFS/proc/cpuinfo"
fi

if [[ ! -f $SITE/.installed ]] || [[ $(cat "$SITE/.installed") != "${WHEELS[*]}" ]]; then
  step "installing aarch64 wheels into $SITE"
  rm -rf "$SITE"
  platforms=()
  for tag in manylinux2014 manylinux_2_17 manylinux_2_27 manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_35 manylinux_2_36; do
    platforms+=(--platform "${tag}_aarch64")
  done
  "$HOST_PY" -m pip install -q --disable-pip-version-check --only-binary=:all: "${platforms[@]}" \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none --target "$SITE" "${WHEELS[@]}"
  echo "${WHEELS[*]}" > "$SITE/.installed"
fi

# A wrapper that is the emulated python: given to qemu as argv[0] (-0), it becomes
# sys.executable, so the tests' subprocesses ([sys.executable, "-m", ...]) are emulated too.
mkdir -p "$LAB/bin"
cat > "$LAB/bin/python3.11" <<WRAP
#!/bin/sh
export QEMU_LD_PREFIX="$ROOTFS" QEMU_CPU="\${QEMU_CPU:-cortex-a72}" PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="\${PYTHONPATH:+\$PYTHONPATH:}$SITE:$ROOT"
exec qemu-aarch64-static -0 "$LAB/bin/python3.11" "$ROOTFS/usr/bin/python3.11" "\$@"
WRAP
chmod +x "$LAB/bin/python3.11"
arm64_python() { "$LAB/bin/python3.11" "$@"; }

cd "$ROOT"
step "emulated interpreter"
arm64_python -c 'import platform, numpy, ai_edge_litert, tflite_runtime; print(platform.machine(), platform.python_version(), "numpy", numpy.__version__)'

step "edge tests on aarch64 (no TensorFlow)"
arm64_python -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/test_edge.py tests/test_preprocess.py tests/test_sidecar.py tests/test_atomic.py \
  tests/test_metrics.py tests/test_data.py

step "aarch64 vs x86 outputs, both runtimes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$HOST_PY" -m tests.arm64.crosscheck dump "$work/x86.npz"
arm64_python -m tests.arm64.crosscheck dump "$work/arm64.npz"
"$HOST_PY" -m tests.arm64.crosscheck compare "$work/x86.npz" "$work/arm64.npz"
