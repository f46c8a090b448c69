#!/usr/bin/env bash
# ANI-2x speed, wgmd beside TorchANI 2.9, in one device call (see BENCHMARKS.md).
#
# Here (once): the Vulkan loader into .gl/ (../shared/WGPU_NOTES.md) and the TorchANI + ASE
# wheels into .anidev/whl/ (../shared/anchors/README.md). `prepare` builds the release binary
# and packs it (stripped, xz) with the anchor script and the ANI-2x files into .anidev/
# (git-ignored; ~62 MB, inside the 64 MiB a device call may carry).
#   tests/bench/device_ani.sh prepare
# Then on the device, with carry [".gl", ".anidev"]:
#   bash tests/bench/device_ani.sh device
set -euo pipefail
SIZES="300 3000 10002 30000 100002"
case "${1:-}" in
prepare)
    # Headless binary (no viewer): smaller, and the device has no display anyway.
    cargo build --release --no-default-features --target-dir target/headless
    mkdir -p .anidev/models
    strip -o .anidev/wgmd target/headless/release/wgmd
    xz -f -9 -T2 .anidev/wgmd
    install -m 644 ../shared/anchors/torchani_bench.py .anidev/torchani_bench.py
    cp -r ../shared/models/ani-2x_8x.info ../shared/models/ani-2x_8x .anidev/models/
    du -sh .anidev
    ;;
device)
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
    out=${OUT:-/tmp}
    python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.anidev/wgmd.xz'), open('/tmp/wgmd','wb'))"
    chmod +x /tmp/wgmd
    /tmp/wgmd --version
    info=.anidev/models/ani-2x_8x.info
    # Untimed runs first: the call's first f16 (tensor-core) benchmark ran every kernel 3-4x
    # slower, even ones no precision choice touches (calls 5 and 11 at 300 atoms; call 2 at
    # 3,000) — a cold start, not a property of the size.
    for p in f32 f16; do
        timeout 120 /tmp/wgmd bench ani --model "$info" --atoms 3000 --precision "$p" --reps 5 --json > /dev/null || true
    done
    for n in $SIZES; do
        for p in f32 f16; do
            # A time limit per run: a hung kernel must not take the whole device call.
            timeout 120 /tmp/wgmd bench ani --model "$info" --atoms "$n" --precision "$p" --reps 20 --json || true
        done
    done | tee "$out/wgmd_ani.jsonl"
    [ "${WGMD_ONLY:-0}" = 1 ] && exit 0
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .anidev/whl/*.whl
    export PYTHONPATH=/tmp/site TORCHANI_DATA_DIR=/tmp/tadata
    mkdir -p /tmp/tadata/Neurochem
    cp -r .anidev/models/* /tmp/tadata/Neurochem/
    (python3 -c "import sys; from torchani.cli import main; sys.argv=['ani','build-extensions','-s','9.0']; main()" \
        > "$out/torchani_build.log" 2>&1 || echo "torchani extension build failed (see torchani_build.log)")
    PYTHONUNBUFFERED=1 python3 .anidev/torchani_bench.py /tmp/tadata/Neurochem "$out/torchani.json" | tee "$out/torchani.jsonl"
    python3 - "$out/wgmd_ani.jsonl" "$out/torchani.jsonl" <<'PY'
import json, sys
w = {}
for line in open(sys.argv[1]):
    r = json.loads(line); w[(r["atoms"], r["precision"])] = r
t = {}
for line in open(sys.argv[2]):
    if not line.startswith("{"): continue
    r = json.loads(line)
    if "ms_per_eval" in r:
        t[r["atoms"]] = min(t.get(r["atoms"], 1e30), r["ms_per_eval"])
print(f"{'atoms':>7} {'TorchANI ms':>11} {'wgmd f32 ms':>11} {'f16 ms':>8} {'f32 x':>6} {'f16 x':>6} {'f32 MB':>7} {'f16 MB':>7}")
for n in sorted({k[0] for k in w}):
    a, b = w.get((n, "f32")), w.get((n, "f16"))
    ta = t.get(n)
    fa = a["ms_per_energy_forces"] if a else float("nan")
    fb = b["ms_per_energy_forces"] if b else float("nan")
    print(f"{n:>7} {ta if ta else float('nan'):>11.2f} {fa:>11.2f} {fb:>8.2f} {(ta or float('nan'))/fa:>6.2f} {(ta or float('nan'))/fb:>6.2f}"
          f" {a['ani_gpu_bytes']/1e6 if a else 0:>7.0f} {b['ani_gpu_bytes']/1e6 if b else 0:>7.0f}")
PY
    ;;
*)
    echo "usage: $0 prepare|device" >&2
    exit 2
    ;;
esac
