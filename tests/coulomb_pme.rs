//! PME in the engine against the Ewald reference: energy and forces within the requested
//! tolerance (random charged systems with exclusions, the NIST SPC/E configurations), and NVE
//! energy conservation of molten NaCl with PME.

mod common;
mod coulomb_support;

use common::*;
use coulomb_support::*;
use wgmd::engine::{SimSpec, Simulation};
use wgmd::forces::coulomb::{self, CoulombMethod, CoulombSpec, PmeChoice};
use wgmd::forces::lj::{LjSpec, LjTable};
use wgmd::integrate::{Integrator, Method};
use wgmd::units::{Units, KB_EV_PER_K};

fn rms(v: &[[f64; 3]]) -> f64 {
    (v.iter().flatten().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
}

fn diff_rms(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    let d: Vec<[f64; 3]> = a
        .iter()
        .zip(b)
        .map(|(x, y)| [0, 1, 2].map(|k| x[k] - y[k]))
        .collect();
    rms(&d)
}

/// OpenMM's tolerance δ bounds the relative force error of PME against exact Ewald: we ask
/// ‖F_PME − F_Ewald‖_rms ≤ δ ‖F_Ewald‖_rms and |E_PME − E_Ewald| ≤ δ·Σ|Coulomb terms|.
#[test]
fn pme_matches_ewald_within_the_requested_tolerance() {
    let ctx = ctx();
    let seed = fresh_seed("pme_vs_ewald");
    for (c, &(n, l, tol)) in [
        (301usize, [16.0, 17.0, 18.0], 5e-4),
        (150, [14.0, 14.5, 15.0], 1e-5),
    ]
    .iter()
    .enumerate()
    {
        let (sys, excl) = random_charged(n, l, 2, 1.3, seed + c as u64);
        let sys = as_f32(sys);
        let rc = 7.0;
        let lj = LjSpec::off(2, rc);
        let table = LjTable::new(&lj).unwrap();
        let pme = PmeChoice::from_tolerance(l, rc, tol).unwrap();
        let exact = CoulombSpec {
            method: CoulombMethod::Ewald {
                alpha: pme.alpha,
                kmax: coulomb::kmax_for(l, pme.alpha, 1e-12),
                k2max: None,
            },
            cutoff: rc,
            coulomb_k: 1.0,
            exclusions: excl.clone(),
            neutralize: false,
        };
        let r = coulomb::reference(&sys, &table, &exact);
        let mut cs = exact.clone();
        cs.method = CoulombMethod::Pme(pme);
        let spec = SimSpec {
            system: sys.clone(),
            units: Units::Lj,
            lj,
            ani: None,
            coulomb: Some(cs),
            skin: 0.3,
            neighbor_mode: Default::default(),
            integrator: Integrator {
                dt: 0.001,
                method: Method::VelocityVerlet,
            },
        };
        let mut sim = Simulation::new(ctx.clone(), spec).unwrap();
        sim.poison_and_recompute().unwrap();
        let (f, _) = sim.forces().unwrap();
        let t = sim.energy_terms().unwrap();
        let fe = diff_rms(&f, &r.forces) / rms(&r.forces);
        let scale = r.coulomb_real.abs()
            + r.coulomb_reciprocal.abs()
            + r.coulomb_self.abs()
            + r.coulomb_exclusion.abs();
        let ee = (t.total() - r.total()).abs() / scale;
        let er = (t.coulomb_reciprocal.unwrap() - r.coulomb_reciprocal).abs() / scale;
        eprintln!("N={n} tol {tol:.0e} grid {:?}: force err {fe:.2e}, energy err {ee:.2e} (recip {er:.2e})", pme.grid);
        assert!(fe < tol, "force error {fe} > {tol}");
        assert!(ee < tol, "energy error {ee} > {tol}");
        // Pressure: the virial agrees to the same order.
        assert!(
            (t.virial - r.virial).abs() / scale < 2.0 * tol,
            "virial {} vs {}",
            t.virial,
            r.virial
        );
    }
}

/// The NIST configurations with PME at tolerance 1e-5 instead of NIST's Ewald: the total
/// within 1e-5 of the Coulomb scale (Σ|terms|), the forces within 1e-5 of the exact forces.
#[test]
fn nist_spce_with_pme() {
    let ctx = ctx();
    let r = reference();
    for (k, c) in r["nist_spce_10A"]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let mut spec = preset_spec(&format!("nist_spce_{}.toml", k + 1));
        let tol = 1e-5;
        let l = spec.system.box_lengths;
        let table = LjTable::new(&spec.lj).unwrap();
        let mut exact = coulomb(&spec).clone();
        let p = PmeChoice::from_tolerance(l, 10.0, tol).unwrap();
        exact.method = CoulombMethod::Ewald {
            alpha: p.alpha,
            kmax: coulomb::kmax_for(l, p.alpha, 1e-12),
            k2max: None,
        };
        let mut sys32 = as_f32(spec.system.clone());
        sys32.charges = spec.system.charges.clone();
        let rf = coulomb::reference(&sys32, &table, &exact);
        spec.coulomb.as_mut().unwrap().method = CoulombMethod::Pme(p);
        let sim = Simulation::new(ctx.clone(), spec).unwrap();
        let t = sim.energy_terms().unwrap();
        let scale = (t.coulomb_self.unwrap().abs()
            + t.coulomb_exclusion.unwrap().abs()
            + t.coulomb_real.unwrap().abs())
            / KB_EV_PER_K;
        let want = c["E_total"].as_f64().unwrap();
        let got = t.total() / KB_EV_PER_K;
        let (f, _) = sim.forces().unwrap();
        let fe = diff_rms(&f, &rf.forces) / rms(&rf.forces);
        eprintln!(
            "PME config {}: E_total {got:.3} K (NIST {want}), err/scale {:.1e}, force err {fe:.1e}",
            k + 1,
            (got - want).abs() / scale
        );
        assert!((got - want).abs() < tol * scale);
        assert!(fe < tol);
    }
}

/// Molten NaCl (216 ions, Joung–Cheatham LJ shifted, PME at tolerance 1e-4) in NVE: the total
/// energy stays within 2e-3 of the kinetic energy over 0.6 ps (dt 1 fs).
#[test]
fn molten_nacl_nve_conserves_energy_with_pme() {
    let ctx = ctx();
    let (mut sys, rc) = molten_nacl_216();
    sys.maxwell_boltzmann(1200.0, fresh_seed("nacl_nve_pme"), Units::Physical);
    let p = PmeChoice::from_tolerance(sys.box_lengths, rc, 1e-4).unwrap();
    let spec = nacl_spec(sys, rc, Some(CoulombMethod::Pme(p)), 1.0);
    let mut sim = Simulation::new(ctx, spec).unwrap();
    let e0 = sim.thermo().unwrap();
    let mut worst: f64 = 0.0;
    for _ in 0..6 {
        let th = sim.advance(100, true).unwrap().unwrap();
        worst = worst.max((th.conserved_energy - e0.conserved_energy).abs());
    }
    eprintln!(
        "NaCl NVE PME {:?}: worst |dE| {worst:.3e} eV, KE {:.3} eV, ratio {:.2e}",
        p.grid,
        e0.kinetic_energy,
        worst / e0.kinetic_energy
    );
    assert!(worst / e0.kinetic_energy < 2e-3);
}
