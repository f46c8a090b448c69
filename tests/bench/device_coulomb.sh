#!/usr/bin/env bash
# Coulomb (PME) speed, wgmd beside OpenMM 8.6.1 on the same molten-NaCl workload, in one device
# call (see BENCHMARKS.md): rock salt at molten density, LJ + PME, cutoff 10 Å, tolerance 5e-4,
# Langevin 1200 K, dt 2 fs, single precision; 32,768 / 262,144 / 2,097,152 ions.
#
# Here (once): the Vulkan loader into .gl/ and the OpenMM wheels into .whl/, as in
# ../shared/WGPU_NOTES.md and ../shared/anchors/README.md; this script builds the release
# binary and copies it and the anchor script into .dev/ (git-ignored).
#   tests/bench/device_coulomb.sh prepare
# Then run on the device with carry [".gl", ".whl", ".dev"]:
#   bash tests/bench/device_coulomb.sh device
set -euo pipefail
case "${1:-}" in
prepare)
    cargo build --release
    mkdir -p .dev
    cp target/release/wgmd .dev/wgmd
    install -m 644 ../shared/anchors/openmm_nacl_pme.py .dev/openmm_nacl_pme.py
    ;;
device)
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
    out=${OUT:-/tmp}
    ./.dev/wgmd --version
    for a in "32768 4000" "262144 1000" "2097152 200"; do
        set -- $a
        timeout 180 ./.dev/wgmd bench coulomb --atoms "$1" --steps "$2" --json || echo "{\"atoms\": $1, \"error\": \"wgmd failed\"}"
    done | tee "$out/wgmd.jsonl"
    # Same binary, A/B of the list layout: rows by atom as before 2026-12-02 s5 (AB="" skips it).
    if [ -n "${AB-WGMD_SLOT_ROWS=0}" ]; then
        for a in "262144 1000" "2097152 200"; do
            set -- $a
            env ${AB-WGMD_SLOT_ROWS=0} timeout 180 ./.dev/wgmd bench coulomb --atoms "$1" --steps "$2" --json || true
        done | tee "$out/wgmd_ab.jsonl"
    fi
    PYTHONUNBUFFERED=1 python3 .dev/openmm_nacl_pme.py "$out/openmm.json" | tee "$out/openmm.jsonl"
    python3 - "$out/wgmd.jsonl" "$out/openmm.jsonl" <<'PY'
import json, sys
w = {r["atoms"]: r for r in map(json.loads, open(sys.argv[1])) if "steps_per_s" in r}
o = {r["atoms"]: r for r in map(json.loads, open(sys.argv[2])) if "steps_per_s" in r}
print(f"{'ions':>9} {'wgmd steps/s':>13} {'OpenMM steps/s':>15} {'ratio':>6}  wgmd PME / OpenMM grid")
for n in sorted(set(w) | set(o)):
    ws = w.get(n, {}).get("steps_per_s", float("nan"))
    os_ = o.get(n, {}).get("steps_per_s", float("nan"))
    print(f"{n:>9} {ws:>13.0f} {os_:>15.0f} {ws/os_:>6.2f}  {w.get(n, {}).get('coulomb', '-')} / {o.get(n, {}).get('pme_grid', '-')}")
print("profile (µs): ions, per step, forces = real space + PME, per rebuild (neighbor build), rebuilds")
for n in sorted(w):
    r = w[n]
    if "us_forces" in r:
        print(f"{n:>9} {r['us_per_step']:>8.1f} {r['us_forces']:>8.1f} = {r['us_real_space']:.1f} + {r['us_pme']:.1f}  {r['us_per_rebuild']:>8.1f} ({r['us_neighbor_build']:.1f})  {r['neighbor_builds']}")
PY
    ;;
*)
    echo "usage: $0 prepare|device" >&2
    exit 2
    ;;
esac
