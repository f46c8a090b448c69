//! Single-point ANI energies and forces on the GPU (what `wgmd eval --potential ani2x` and
//! `wgmd bench ani` run), and the periodic water boxes the benchmark uses.
//!
//! A single point is a [`Simulation`] with no steps: the same neighbor list and kernels as MD,
//! so what is validated here is what MD uses.

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::ani::AniModel;
use crate::engine::{SimSpec, Simulation};
use crate::forces::ani::{AniPrecision, AniSpec, HARTREE_EV};
use crate::forces::lj::LjSpec;
use crate::gpu::GpuContext;
use crate::integrate::{Integrator, Method};
use crate::io::xyz;
use crate::system::System;
use crate::units::Units;

/// Energies in Hartree, forces in Hartree/Å, input atom order.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Network energy plus self energies (file values, summed in f64 on the host).
    pub energy: f64,
    /// Network energy only (ensemble mean).
    pub energy_nn: f64,
    pub atomic_nn: Vec<f64>,
    pub forces: Vec<[f64; 3]>,
}

/// A box for a molecule in vacuum: every edge exceeds the molecule's extent by more than the
/// cutoff plus `margin`, so minimum-image distances are true distances and no image of any atom
/// comes within the cutoff. Returns the box and the positions moved into it.
pub fn vacuum_box(positions: &[[f64; 3]], cutoff: f64, margin: f64) -> ([f64; 3], Vec<[f64; 3]>) {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in positions {
        for d in 0..3 {
            lo[d] = lo[d].min(p[d]);
            hi[d] = hi[d].max(p[d]);
        }
    }
    let mut edges = [0.0; 3];
    for d in 0..3 {
        // Also at least 2·cutoff: the engine's minimum-image rule (cutoff ≤ L/2).
        edges[d] = (hi[d] - lo[d] + cutoff + margin).max(2.0 * cutoff + margin);
    }
    let moved = positions
        .iter()
        .map(|p| {
            let mut q = [0.0; 3];
            for d in 0..3 {
                q[d] = p[d] - lo[d] + 0.5 * margin;
            }
            q
        })
        .collect();
    (edges, moved)
}

/// Builds the System (one type per element, masses from the element table) for ANI runs.
pub fn system_for(
    symbols: &[String],
    positions: &[[f64; 3]],
    box_lengths: [f64; 3],
) -> Result<System> {
    let mut sys = System {
        positions: positions.to_vec(),
        velocities: vec![[0.0; 3]; positions.len()],
        charges: vec![0.0; positions.len()],
        box_lengths,
        ..System::default()
    };
    for (i, s) in symbols.iter().enumerate() {
        let mass = xyz::element_mass(s)
            .ok_or_else(|| anyhow::anyhow!("atom {} has an unknown element symbol '{s}'", i + 1))?;
        let t = sys.type_index(s, mass);
        sys.types.push(t);
    }
    sys.validate()?;
    Ok(sys)
}

/// The spec of an ANI run on `sys` (LJ off, physical units).
pub fn ani_spec(
    sys: System,
    model: Arc<AniModel>,
    precision: AniPrecision,
    skin: f64,
    integrator: Integrator,
) -> Result<SimSpec> {
    let ani = AniSpec::new(model, precision, &sys.type_names)?;
    let rc = ani.model.aev.rcr;
    Ok(SimSpec {
        lj: LjSpec::off(sys.type_names.len(), rc),
        system: sys,
        units: Units::Physical,
        ani: Some(ani),
        coulomb: None,
        skin,
        neighbor_mode: Default::default(),
        integrator,
    })
}

/// Energy and forces of one structure. `box_lengths` = None means a molecule in vacuum;
/// otherwise an orthorhombic periodic box (every edge ≥ 2 × the radial cutoff).
pub fn evaluate(
    ctx: Arc<GpuContext>,
    model: Arc<AniModel>,
    precision: AniPrecision,
    symbols: &[String],
    positions: &[[f64; 3]],
    box_lengths: Option<[f64; 3]>,
) -> Result<Evaluation> {
    if symbols.len() != positions.len() {
        bail!(
            "internal: {} symbols for {} positions",
            symbols.len(),
            positions.len()
        );
    }
    // Name the first atom the model cannot handle before anything else.
    let species = model.species_for_atoms(symbols)?;
    for (i, p) in positions.iter().enumerate() {
        if p.iter().any(|x| !x.is_finite()) {
            bail!("atom {} has a non-finite coordinate {:?}", i + 1, p);
        }
    }
    let rc = model.aev.rcr;
    let (edges, pos) = match box_lengths {
        Some(b) => (b, positions.to_vec()),
        None => vacuum_box(positions, rc, 1.0),
    };
    let sys = system_for(symbols, &pos, edges)?;
    let integrator = Integrator {
        dt: 1.0,
        method: Method::VelocityVerlet,
    };
    let mut spec = ani_spec(sys, model.clone(), precision, 0.0, integrator)?;
    if let Some(a) = spec.ani.as_mut() {
        // A single point reports whatever forces it finds; only non-finite ones are errors.
        a.max_force = f64::INFINITY;
    }
    let sim = Simulation::new(ctx, spec)?;
    let atomic_nn = sim.ani_atom_energies()?;
    let (f, _) = sim.forces()?;
    let forces = f
        .iter()
        .map(|v| [v[0] / HARTREE_EV, v[1] / HARTREE_EV, v[2] / HARTREE_EV])
        .collect();
    let energy_nn: f64 = atomic_nn.iter().sum();
    let self_energy: f64 = species.iter().map(|&s| model.self_energies[s]).sum();
    Ok(Evaluation {
        energy: energy_nn + self_energy,
        energy_nn,
        atomic_nn,
        forces,
    })
}

/// A periodic box of ~`atoms` atoms of water at 1 g/cm³ (rigid-geometry molecules with random
/// orientations on a cubic lattice, seeded): the ANI benchmark workload. Returns symbols,
/// positions and the cubic box edge.
pub fn water_box(atoms: usize, seed: u64) -> (Vec<String>, Vec<[f64; 3]>, f64) {
    use rand::{Rng, SeedableRng};
    let n_mol = (atoms / 3).max(1);
    // 1 g/cm³: 18.015 g/mol / (0.602214 · ρ) = 29.915 Å³ per molecule.
    let volume = n_mol as f64 * 18.015 / 0.602214076;
    let edge = volume.cbrt();
    let per_side = (n_mol as f64).cbrt().ceil() as usize;
    let spacing = edge / per_side as f64;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let (r_oh, angle) = (0.9572f64, 104.52f64.to_radians());
    let mut symbols = Vec::with_capacity(3 * n_mol);
    let mut positions = Vec::with_capacity(3 * n_mol);
    // Visit lattice sites in a shuffled order so partial fills stay uniform.
    let mut sites: Vec<usize> = (0..per_side.pow(3)).collect();
    for k in (1..sites.len()).rev() {
        let j = rng.random_range(0..=k);
        sites.swap(k, j);
    }
    for &site in sites.iter().take(n_mol) {
        let (ix, iy, iz) = (
            site % per_side,
            (site / per_side) % per_side,
            site / per_side / per_side,
        );
        let o = [
            (ix as f64 + 0.5) * spacing,
            (iy as f64 + 0.5) * spacing,
            (iz as f64 + 0.5) * spacing,
        ];
        // Random orientation: a uniformly random rotation from a random unit quaternion.
        let q: [f64; 4] = {
            let (u1, u2, u3): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
            let tau = std::f64::consts::TAU;
            [
                (1.0 - u1).sqrt() * (tau * u2).sin(),
                (1.0 - u1).sqrt() * (tau * u2).cos(),
                u1.sqrt() * (tau * u3).sin(),
                u1.sqrt() * (tau * u3).cos(),
            ]
        };
        let rot = |v: [f64; 3]| -> [f64; 3] {
            let [x, y, z, w] = q;
            let m = [
                [
                    1.0 - 2.0 * (y * y + z * z),
                    2.0 * (x * y - z * w),
                    2.0 * (x * z + y * w),
                ],
                [
                    2.0 * (x * y + z * w),
                    1.0 - 2.0 * (x * x + z * z),
                    2.0 * (y * z - x * w),
                ],
                [
                    2.0 * (x * z - y * w),
                    2.0 * (y * z + x * w),
                    1.0 - 2.0 * (x * x + y * y),
                ],
            ];
            [0, 1, 2].map(|r| m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2])
        };
        let h = 0.5 * angle;
        let h1 = rot([r_oh * h.sin(), r_oh * h.cos(), 0.0]);
        let h2 = rot([-r_oh * h.sin(), r_oh * h.cos(), 0.0]);
        symbols.push("O".to_string());
        positions.push(o);
        for hv in [h1, h2] {
            symbols.push("H".to_string());
            positions.push([o[0] + hv[0], o[1] + hv[1], o[2] + hv[2]]);
        }
    }
    (symbols, positions, edge)
}
