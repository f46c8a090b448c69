"""NVE energy record of OpenMM (CUDA) on the LAMMPS in.lj workload, for the energy-conservation
comparison with `wgmd bench lj --energy-every K`: the same system, units and settings as the
speed anchor ../shared/anchors/openmm_lj.py (fcc rho*=0.8442, T*=1.44, LJ truncated at 2.5 sigma
without shift or dispersion correction, dt 0.005 tau), 200 untimed steps, then the total energy
every K steps. Energies are per atom in epsilon. Usage: openmm_lj_nve.py N_CELLS STEPS K OUT.json"""
import sys, json, math
import numpy as np
import openmm as mm
from openmm import unit as u


def fcc(n, rho):
    a = (4.0 / rho) ** (1.0 / 3.0)
    b = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    g = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 3)
    return (g[:, None, :] + b[None, :, :]).reshape(-1, 3) * a, a * n


def trace(n, precision, steps, every):
    sigma, eps, mass = 0.3405, 0.99774, 39.948
    pos, L = fcc(n, 0.8442)
    N = len(pos)
    s = mm.System()
    Lnm = L * sigma
    s.setDefaultPeriodicBoxVectors(mm.Vec3(Lnm, 0, 0), mm.Vec3(0, Lnm, 0), mm.Vec3(0, 0, Lnm))
    nb = mm.NonbondedForce()
    nb.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic)
    nb.setCutoffDistance(2.5 * sigma)
    nb.setUseDispersionCorrection(False)
    nb.setReactionFieldDielectric(1.0)
    for _ in range(N):
        s.addParticle(mass)
        nb.addParticle(0.0, sigma, eps)
    s.addForce(nb)
    tau = sigma * math.sqrt(mass / eps)
    integ = mm.VerletIntegrator(0.005 * tau)
    ctx = mm.Context(s, integ, mm.Platform.getPlatformByName("CUDA"), {"Precision": precision})
    ctx.setPositions(pos * sigma)
    R = u.MOLAR_GAS_CONSTANT_R.value_in_unit(u.kilojoule_per_mole / u.kelvin)
    ctx.setVelocitiesToTemperature(1.44 * eps / R, 87287)
    integ.step(200)

    def energy():
        st = ctx.getState(getEnergy=True)
        e = st.getPotentialEnergy() + st.getKineticEnergy()
        return e.value_in_unit(u.kilojoule_per_mole) / N / eps

    rows = [(0, energy())]
    done = 0
    while done < steps:
        k = min(every, steps - done)
        integ.step(k)
        done += k
        rows.append((done, energy()))
    x = np.array([r[0] for r in rows], float)
    y = np.array([r[1] for r in rows])
    slope = np.polyfit(x, y, 1)[0]
    return dict(code="openmm-" + mm.__version__, precision=precision, atoms=N, steps=steps,
                energy_every=every, total_drift_per_atom_per_1000_steps=slope * 1000.0,
                total_max_excursion_per_atom=float(np.abs(y - y[0]).max()),
                trace=[[float(a), float(b)] for a, b in rows])


n, steps, every = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = []
for prec in ("single", "mixed"):
    try:
        r = trace(n, prec, steps, every)
    except Exception as e:
        r = dict(error=str(e), precision=prec)
    print(json.dumps({k: v for k, v in r.items() if k != "trace"}), flush=True)
    out.append(r)
json.dump(out, open(sys.argv[4], "w"))
