#!/usr/bin/env bash
# Coulomb (PME) A/B of engine switches beside OpenMM, in one device call: every variant (a
# space-separated list of VAR=value settings, "" = the defaults) at every size, twice in
# alternation, then OpenMM 8.6.1 once, then a table of steps/s and ratios to OpenMM.
# Prepare as for device_coulomb.sh (`bash tests/bench/device_coulomb.sh prepare`), then on the
# device with carry [".gl", ".whl", ".dev"], e.g.
#   bash tests/bench/device_ab.sh "" "WGMD_SPLIT_ROWS=1" "WGMD_PAIR_REBUILD=1"
# A variant may end in bench options after its settings: "WGMD_PAIR_REBUILD=1 --skin 0.8".
# SIZES="262144:1000 2097152:200" overrides the sizes (ions:steps).
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
out=${OUT:-/tmp}
[ $# -gt 0 ] || set -- ""
./.dev/wgmd --version
for round in 1 2; do
    for s in ${SIZES:-32768:4000 262144:1000 2097152:200}; do
        for v in "$@"; do
            settings=${v%%--*}
            opts=""
            [ "$settings" = "$v" ] || opts="--${v#*--}"
            r=$(env $settings timeout 180 ./.dev/wgmd bench coulomb --atoms "${s%%:*}" --steps "${s##*:}" $opts --json 2>/dev/null | grep '^{' | tail -1)
            echo "{\"variant\": \"$v\", \"round\": $round, \"run\": ${r:-null}}"
        done
    done
done | tee "$out/ab.jsonl"
PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site python3 .dev/openmm_nacl_pme.py "$out/openmm.json" | tee "$out/openmm.jsonl"
python3 - "$out/ab.jsonl" "$out/openmm.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
omm = {r["atoms"]: r["steps_per_s"] for r in map(json.loads, open(sys.argv[2])) if "steps_per_s" in r}
print(f"{'ions':>9} {'variant':<44} {'round':>5} {'steps/s':>9} {'ratio':>6} {'builds':>6} {'cap':>6} {'forces µs':>9}")
for r in rows:
    run = r["run"] or {}
    n = run.get("atoms", 0)
    sps = run.get("steps_per_s", float("nan"))
    print(f"{n:>9} {r['variant'] or '(defaults)':<44} {r['round']:>5} {sps:>9.1f} {sps / omm.get(n, float('nan')):>6.2f} {run.get('neighbor_builds_timed', '-'):>6} {str(run.get('pair_cap')):>6} {run.get('us_forces', float('nan')):>9.1f}")
print("OpenMM:", omm)
PY
