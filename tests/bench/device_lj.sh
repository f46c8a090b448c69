#!/usr/bin/env bash
# LJ speed, wgmd beside OpenMM, in one device call (see BENCHMARKS.md).
#
# Here (once): the Vulkan loader into .gl/ and the OpenMM wheels into .whl/, as in
# ../shared/WGPU_NOTES.md and ../shared/anchors/README.md; this script builds the release
# binary and copies it and the anchor script into .dev/ (git-ignored).
#   tests/bench/device_lj.sh prepare
# Then run on the device with carry [".gl", ".whl", ".dev"]:
#   bash tests/bench/device_lj.sh device
set -euo pipefail
case "${1:-}" in
prepare)
    cargo build --release
    mkdir -p .dev
    cp target/release/wgmd .dev/wgmd
    install -m 644 ../shared/anchors/openmm_lj.py .dev/openmm_lj.py
    ;;
device)
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
    out=${OUT:-/tmp}
    ./.dev/wgmd --version
    # check-every 0 = adaptive rebuild opportunities, for the record; the default (an
    # opportunity every step) is the one compared.
    for a in "32000 10000" "256000 2000" "2048000 400"; do
        set -- $a
        ./.dev/wgmd bench lj --atoms "$1" --steps "$2" --check-every 0 --json >> "$out/wgmd_adaptive.jsonl"
        ./.dev/wgmd bench lj --atoms "$1" --steps "$2" --json
    done | tee "$out/wgmd.jsonl"
    PYTHONUNBUFFERED=1 python3 .dev/openmm_lj.py "$out/openmm.json" | grep '"single"' | tee "$out/openmm.jsonl"
    python3 - "$out/wgmd.jsonl" "$out/openmm.jsonl" <<'PY'
import json, sys
w = {r["atoms"]: r for r in map(json.loads, open(sys.argv[1]))}
o = {r["atoms"]: r for r in map(json.loads, open(sys.argv[2]))}
e = {}
try:
    e = {r["atoms"]: r for r in map(json.loads, open(sys.argv[1].replace("wgmd.jsonl", "wgmd_adaptive.jsonl")))}
except OSError:
    pass
print(f"{'atoms':>9} {'wgmd steps/s':>13} {'k':>3} {'builds':>6} {'replays':>7} {'encode s':>8} {'wait s':>7} {'adaptive':>12} {'OpenMM steps/s':>15} {'ratio':>6}")
for n in sorted(w):
    if n in o:
        r = w[n]
        k1 = e.get(n, {}).get("steps_per_s", float("nan"))
        print(f"{n:>9} {r['steps_per_s']:>13.0f} {r.get('check_every', 1):>3} {r['neighbor_builds']:>6} {r.get('missed_replays', 0):>7} {r.get('host_encode_s', 0):>8.3f} {r.get('host_wait_s', 0):>7.3f} {k1:>12.0f} {o[n]['steps_per_s']:>15.0f} {r['steps_per_s']/o[n]['steps_per_s']:>6.2f}")
print("profile (µs): atoms, per step, forces, per rebuild (cell list + build), rebuilds per step, rest")
for n in sorted(w):
    r = w[n]
    if "us_forces" in r:
        print(f"{n:>9} {r['us_per_step']:>8.1f} {r['us_forces']:>8.1f} {r['us_per_rebuild']:>9.1f} ({r.get('us_cell_list', 0):.1f} + {r.get('us_neighbor_build', 0):.1f}) {r['us_rebuild_per_step']:>8.1f} {r['us_rest_per_step']:>8.1f}  tpa={r['lj_threads_per_atom']}")
PY
    # Energy conservation over 10,000 NVE steps at 32,000 atoms (the issue's "same physics"):
    # wgmd f32 beside OpenMM single and mixed, total energy every 100 steps.
    ./.dev/wgmd bench lj --atoms 32000 --steps 10000 --energy-every 100 --json > "$out/wgmd_nve.json"
    PYTHONUNBUFFERED=1 python3 tests/bench/openmm_lj_nve.py 20 10000 100 "$out/openmm_nve.json" > "$out/openmm_nve.jsonl"
    python3 - "$out/wgmd_nve.json" "$out/openmm_nve.jsonl" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
print("NVE 32,000 atoms, 10,000 steps (energy per atom in epsilon): drift per 1000 steps, max excursion")
print(f"  wgmd f32 total      {w['total_drift_per_atom_per_1000_steps']:+.2e}  {w['total_max_excursion_per_atom']:.2e}")
print(f"  wgmd f32 conserved  {w['conserved_drift_per_atom_per_1000_steps']:+.2e}  {w['conserved_max_excursion_per_atom']:.2e}")
for line in open(sys.argv[2]):
    r = json.loads(line)
    if "error" in r:
        print("  OpenMM", r); continue
    print(f"  OpenMM {r['precision']:<6} total {r['total_drift_per_atom_per_1000_steps']:+.2e}  {r['total_max_excursion_per_atom']:.2e}")
PY
    ;;
*)
    echo "usage: $0 prepare|device" >&2
    exit 2
    ;;
esac
