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
    # Speed, f32 (the goal) and mixed precision, at the anchor's sizes and step counts.
    for p in f32 mixed; do
        for a in "32000 10000" "256000 2000" "2048000 400"; do
            set -- $a
            ./.dev/wgmd bench lj --atoms "$1" --steps "$2" --precision $p --json
        done
    done > "$out/wgmd.jsonl"
    # Memory: the largest systems, forces straight from the cell list (no Verlet list).
    for a in "50000000 30 5" "100000000 10 2"; do
        set -- $a
        timeout 200 ./.dev/wgmd bench lj --atoms "$1" --steps "$2" --warmup "$3" --neighbor cells --json
    done > "$out/wgmd_cells.jsonl" || true
    PYTHONUNBUFFERED=1 python3 .dev/openmm_lj.py "$out/openmm.json" > "$out/openmm.jsonl"
    # Energy conservation over 10,000 NVE steps at 32,000 atoms (the issue's "same physics"):
    # total energy every 100 steps, wgmd f32 and mixed beside OpenMM single and mixed.
    for p in f32 mixed; do
        ./.dev/wgmd bench lj --atoms 32000 --steps 10000 --energy-every 100 --precision $p --json
    done > "$out/wgmd_nve.jsonl"
    PYTHONUNBUFFERED=1 python3 tests/bench/openmm_lj_nve.py 20 10000 100 "$out/openmm_nve.json" > "$out/openmm_nve.jsonl"
    python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
rows = lambda f: [json.loads(l) for l in open(f"{d}/{f}") if l.startswith("{")]
w = {(r["atoms"], r["precision"]): r for r in rows("wgmd.jsonl")}
o = {(r["atoms"], r["precision"]): r for r in rows("openmm.jsonl") if "steps_per_s" in r}
print(f"{'atoms':>9} {'prec':>6} {'wgmd steps/s':>13} {'OpenMM steps/s':>15} {'ratio':>6} {'B/atom':>7} {'builds':>6}")
for (n, p) in sorted(w):
    r = w[(n, p)]
    om = o.get((n, "single" if p == "f32" else "mixed"), {}).get("steps_per_s", float("nan"))
    print(f"{n:>9} {p:>6} {r['steps_per_s']:>13.0f} {om:>15.0f} {r['steps_per_s']/om:>6.2f} {r['gpu_bytes_per_atom']:>7.0f} {r['neighbor_builds']:>6}")
print("profile f32 (µs): atoms, per step, forces, per rebuild (cell list + build), rebuilds per step, rest")
for (n, p) in sorted(w):
    r = w[(n, p)]
    if p == "f32":
        print(f"{n:>9} {r['us_per_step']:>8.1f} {r['us_forces']:>8.1f} {r['us_per_rebuild']:>9.1f} ({r['us_cell_list']:.1f} + {r['us_neighbor_build']:.1f}) {r['us_rebuild_per_step']:>8.1f} {r['us_rest_per_step']:>8.1f}  tpa={r['lj_threads_per_atom']}")
print("cell-list mode (no Verlet list):")
for r in rows("wgmd_cells.jsonl"):
    print(f"{r['atoms']:>10} atoms {r['gpu_bytes_per_atom']:.0f} B/atom {r['gpu_bytes']/1e9:.2f} GB {r['steps_per_s']:.2f} steps/s {r['atom_steps_per_s']:.2e} atom-steps/s")
print("NVE 32,000 atoms, 10,000 steps (energy per atom, epsilon): drift per 1000 steps, max excursion")
for r in rows("wgmd_nve.jsonl"):
    print(f"  wgmd {r['precision']:<6} total {r['total_drift_per_atom_per_1000_steps']:+.2e} {r['total_max_excursion_per_atom']:.2e}   conserved {r['conserved_drift_per_atom_per_1000_steps']:+.2e} {r['conserved_max_excursion_per_atom']:.2e}")
for r in rows("openmm_nve.jsonl"):
    if "error" in r:
        print("  OpenMM", r)
    else:
        print(f"  OpenMM {r['precision']:<6} total {r['total_drift_per_atom_per_1000_steps']:+.2e} {r['total_max_excursion_per_atom']:.2e}")
PY
    ;;
*)
    echo "usage: $0 prepare|device" >&2
    exit 2
    ;;
esac
