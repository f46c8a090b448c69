//! Physics against external references (LAMMPS bench/in.lj log, NIST LJ reference
//! configurations) and statistical mechanics (NVE conservation, Langevin temperature).

mod common;

use common::*;
use wgmd::engine::{SimSpec, Simulation};
use wgmd::forces::lj::{self, LjSpec, LjTable};
use wgmd::integrate::{Integrator, Method};
use wgmd::io::xyz;
use wgmd::system::{lattice_system, Lattice};
use wgmd::units::Units;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// LAMMPS bench/in.lj (log.15Jul25.lj.fixed.g++.1): 32,000 atoms. Step 0 depends only on the
/// lattice and T = 1.44: E_pair/N = −6.7733681, P = −5.0197073. Step 100 depends on LAMMPS's
/// RNG for velocities: T ≈ 0.757 ± 0.005, E_pair/N ≈ −5.76.
#[test]
fn lammps_in_lj_thermo() {
    let spec = SimSpec::lammps_in_lj(20);
    assert_eq!(spec.system.len(), 32000);
    let n = 32000.0;
    // float64 reference at step 0, to LAMMPS's printed precision.
    let table = LjTable::new(&spec.lj).unwrap();
    let r = lj::reference(&spec.system, &table);
    let ke = spec.system.kinetic_energy(Units::Lj);
    let p = (2.0 * ke + r.virial) / (3.0 * spec.system.volume());
    assert!(
        (r.energy / n - -6.7733681).abs() < 1e-7,
        "reference E_pair/N {}",
        r.energy / n
    );
    assert!((p - -5.0197073).abs() < 1e-7, "reference P {p}");
    // GPU, f32.
    let mut sim = Simulation::new(ctx(), spec).unwrap();
    let t0 = sim.thermo().unwrap();
    eprintln!(
        "GPU step 0: E_pair/N {:.8} P {:.8} T {:.8}",
        t0.potential_energy / n,
        t0.pressure,
        t0.temperature
    );
    assert!((t0.potential_energy / n - -6.7733681).abs() < 1e-5);
    assert!((t0.pressure - -5.0197073).abs() < 1e-4);
    assert!((t0.temperature - 1.44).abs() < 1e-5);
    assert!((t0.total_energy / n - -4.6134356).abs() < 1e-5);
    let t100 = sim.advance(100, true).unwrap().unwrap();
    eprintln!(
        "GPU step 100: T {:.6} E_pair/N {:.6} E/N {:.6} P {:.6}",
        t100.temperature,
        t100.potential_energy / n,
        t100.total_energy / n,
        t100.pressure
    );
    assert!(
        (t100.temperature - 0.7574531).abs() < 0.005 * 2.0,
        "T {}",
        t100.temperature
    );
    assert!(
        (t100.potential_energy / n - -5.7585055).abs() < 0.01,
        "E_pair/N {}",
        t100.potential_energy / n
    );
    // Total energy as LAMMPS defines it (unshifted truncation) is not conserved: each pair
    // crossing r_c jumps by U(r_c). LAMMPS's own log drifts −0.0089257 ε/atom over these 100
    // steps; ours must drift the same way (statistically: other velocities).
    let drift = t100.total_energy / n - t0.total_energy / n;
    assert!(
        (drift - -0.0089257).abs() < 0.003,
        "unshifted total energy drift {drift} per atom"
    );
    // The energy the dynamics conserves (same forces as the shifted potential): < 1e-4 relative.
    let rel = (t100.conserved_energy - t0.conserved_energy) / t0.conserved_energy.abs();
    eprintln!("drift per atom {drift:.6}, conserved-energy relative drift {rel:.2e}");
    assert!(
        rel.abs() < 1e-4,
        "conserved energy drifted {rel:.2e} relative over 100 steps"
    );
}

/// NIST SRSW LJ reference configurations: energy and virial (plain truncation) and the
/// long-range correction, on the CPU reference and the GPU.
#[test]
fn nist_lj_reference_configurations() {
    // (file, rc, U, W, U_LRC) from NIST; values given to 5 significant digits.
    let cases = [
        ("lj-1.xyz", 3.0, -4351.5, -568.67, -198.49),
        ("lj-1.xyz", 4.0, -4467.5, -1263.9, -83.769),
        ("lj-2.xyz", 3.0, -690.0, -568.46, -24.23),
        ("lj-2.xyz", 4.0, -704.6, -655.99, -10.226),
    ];
    for (file, rc, u, w, ulrc) in cases {
        let frame =
            xyz::read_xyz_file(std::path::Path::new(&format!("{SHARED}/nist_lj/{file}"))).unwrap();
        let sys = frame.into_system(&|_| Some(1.0)).unwrap();
        let spec = SimSpec {
            system: sys.clone(),
            units: Units::Lj,
            lj: LjSpec {
                cutoff: rc,
                shift: false,
                tail: true,
                sigma: vec![1.0],
                epsilon: vec![1.0],
                pairs: vec![],
            },
            ani: None,
            coulomb: None,
            skin: 0.0,
            neighbor_mode: Default::default(),
            integrator: Integrator {
                dt: 0.001,
                method: Method::VelocityVerlet,
            },
        };
        let table = LjTable::new(&spec.lj).unwrap();
        let r = lj::reference(&sys, &table);
        let (tail_e, _) = table.tail_corrections(&sys);
        let close = |a: f64, b: f64, rel: f64| ((a - b) / b).abs() < rel;
        // 5 significant digits: half a unit in the last printed place.
        assert!(
            close(r.energy, u, 1.2e-4),
            "{file} rc={rc}: U {} vs {u}",
            r.energy
        );
        assert!(
            close(r.virial, w, 1.2e-4),
            "{file} rc={rc}: W {} vs {w}",
            r.virial
        );
        assert!(
            close(tail_e, ulrc, 1.2e-4),
            "{file} rc={rc}: U_LRC {tail_e} vs {ulrc}"
        );
        let mut sim = Simulation::new(ctx(), spec).unwrap();
        let th = sim.thermo().unwrap();
        assert!(
            close(th.potential_energy, u + ulrc, 1.2e-4),
            "GPU {file} rc={rc}: U {}",
            th.potential_energy
        );
        let (_, tail_w) = table.tail_corrections(&sys);
        assert!(
            close(th.virial - tail_w, w, 1.2e-4),
            "GPU {file} rc={rc}: W {}",
            th.virial - tail_w
        );
    }
}

/// Velocity Verlet with a shifted cutoff conserves energy: no drift beyond the O(dt²)
/// fluctuation over 5,000 steps of an LJ liquid. The cutoff is 3σ: a shifted (not
/// force-shifted) LJ still has a force jump at r_c, and each pair crossing it adds a random
/// energy error ∝ F(r_c); at 2.5σ that jump (0.039 ε/σ, 3.5× the one at 3σ) alone random-walks
/// the energy by ~1e-4 ε per atom over this run, which would measure the cutoff, not the engine.
#[test]
fn nve_energy_conservation() {
    let a = Lattice::Fcc.constant_for_density(0.8);
    let mut system = lattice_system(Lattice::Fcc, [5, 5, 6], a, "A", 1.0);
    system.maxwell_boltzmann(1.2, fresh_seed("nve"), Units::Lj);
    let n = system.len() as f64;
    let spec = SimSpec {
        system,
        units: Units::Lj,
        lj: LjSpec {
            cutoff: 3.0,
            shift: true,
            tail: false,
            sigma: vec![1.0],
            epsilon: vec![1.0],
            pairs: vec![],
        },
        ani: None,
        coulomb: None,
        skin: 0.3,
        neighbor_mode: Default::default(),
        integrator: Integrator {
            dt: 0.005,
            method: Method::VelocityVerlet,
        },
    };
    let mut sim = Simulation::new(ctx(), spec).unwrap();
    sim.advance(500, false).unwrap(); // melt the lattice
    let e0 = sim.thermo().unwrap().total_energy;
    let mut es = vec![];
    for _ in 0..50 {
        es.push(sim.advance(100, true).unwrap().unwrap().total_energy);
    }
    let max_dev = es.iter().map(|e| (e - e0).abs()).fold(0.0, f64::max) / n;
    // Drift = least-squares slope × run length: the end point alone is one sample of an
    // O(dt²) fluctuation, not a trend.
    let m = es.len() as f64;
    let tbar = (m - 1.0) / 2.0;
    let ebar = es.iter().sum::<f64>() / m;
    let slope = es
        .iter()
        .enumerate()
        .map(|(k, e)| (k as f64 - tbar) * (e - ebar))
        .sum::<f64>()
        / es.iter()
            .enumerate()
            .map(|(k, _)| (k as f64 - tbar).powi(2))
            .sum::<f64>();
    let drift = slope * m / n;
    eprintln!(
        "NVE: max |E-E0|/N {max_dev:.2e}, drift/N {drift:.2e}, builds {}",
        sim.stats().neighbor_builds
    );
    // Velocity Verlet at dt = 0.005 τ: shadow-Hamiltonian fluctuations ~1e-4 ε per atom.
    assert!(max_dev < 5e-4, "energy wandered by {max_dev:.2e} per atom");
    assert!(
        drift.abs() < 2e-4,
        "energy drifted by {drift:.2e} per atom over 5,000 steps"
    );
}

/// Langevin BAOAB holds the kinetic temperature at the target within its statistical error,
/// estimated from the run itself by block averaging.
#[test]
fn langevin_temperature() {
    let target = 1.5;
    let a = Lattice::Fcc.constant_for_density(0.7);
    let mut system = lattice_system(Lattice::Fcc, [4, 4, 5], a, "A", 1.0);
    system.maxwell_boltzmann(0.5, 3, Units::Lj);
    let n = system.len() as f64;
    let spec = SimSpec {
        system,
        units: Units::Lj,
        lj: LjSpec {
            cutoff: 2.5,
            shift: true,
            tail: false,
            sigma: vec![1.0],
            epsilon: vec![1.0],
            pairs: vec![],
        },
        ani: None,
        coulomb: None,
        skin: 0.3,
        neighbor_mode: Default::default(),
        integrator: Integrator {
            dt: 0.005,
            method: Method::Langevin {
                temperature: target,
                friction: 1.0,
                seed: fresh_seed("langevin"),
            },
        },
    };
    let mut sim = Simulation::new(ctx(), spec).unwrap();
    sim.advance(2000, false).unwrap();
    let samples: Vec<f64> = (0..400)
        .map(|_| sim.advance(25, true).unwrap().unwrap().temperature)
        .collect();
    let blocks = 10;
    let per = samples.len() / blocks;
    let means: Vec<f64> = samples
        .chunks(per)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let mean = means.iter().sum::<f64>() / blocks as f64;
    let var = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (blocks - 1) as f64;
    let sem = (var / blocks as f64).sqrt();
    // Canonical fluctuation of one sample: T·√(2/3N); the block SEM must be of that order.
    let one = target * (2.0 / (3.0 * n)).sqrt();
    eprintln!("Langevin: <T> {mean:.4} ± {sem:.4} (single-sample σ {one:.4}), target {target}");
    assert!(sem < one, "statistical error {sem} implausibly large");
    assert!(
        (mean - target).abs() < 4.0 * sem.max(one / 20.0),
        "<T> = {mean} ± {sem}, target {target}"
    );
}
