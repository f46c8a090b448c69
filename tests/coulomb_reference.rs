//! The float64 Coulomb references against external numbers: NIST SPC/E (every term, 1e-6),
//! LAMMPS per-atom forces, the rock-salt Madelung constant, a two-charge Ewald sum; OpenMM's
//! PME grid choice; finite-difference forces and virials of every method.

mod common;
mod coulomb_support;

use coulomb_support::*;
use wgmd::forces::coulomb::{self, CoulombMethod, CoulombSpec, PmeChoice};
use wgmd::forces::lj::{LjSpec, LjTable};
use wgmd::system::System;
use wgmd::units::KB_EV_PER_K;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn nist_spce_every_term_within_1e6() {
    let r = reference();
    for (k, c) in r["nist_spce_10A"]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let spec = preset_spec(&format!("nist_spce_{}.toml", k + 1));
        let cs = coulomb(&spec);
        assert_eq!(
            spec.system.len(),
            3 * c["molecules"].as_u64().unwrap() as usize
        );
        let table = LjTable::new(&spec.lj).unwrap();
        let t = coulomb::reference(&spec.system, &table, cs);
        let (tail, _) = table.tail_corrections(&spec.system);
        let kel = |e: f64| e / KB_EV_PER_K;
        let got = [
            ("E_disp", kel(t.lj)),
            ("E_LRC", kel(tail)),
            ("E_real", kel(t.coulomb_real)),
            ("E_fourier", kel(t.coulomb_reciprocal)),
            (
                "E_self_plus_intra",
                kel(t.coulomb_self + t.coulomb_exclusion),
            ),
            ("E_total", kel(t.total() + tail)),
        ];
        for (name, v) in got {
            let want = c[name].as_f64().unwrap();
            eprintln!(
                "config {}: {name} = {v:.6} K (NIST {want}, rel {:.1e})",
                k + 1,
                rel(v, want)
            );
            assert!(
                rel(v, want) < 1e-6,
                "config {}: {name} = {v} K, NIST {want}",
                k + 1
            );
        }
        // The rounded NIST split of self and intramolecular terms (6 significant digits).
        assert!(rel(kel(t.coulomb_self), c["E_self"].as_f64().unwrap()) < 1e-6);
        assert!(rel(kel(t.coulomb_exclusion), c["E_intra"].as_f64().unwrap()) < 1e-6);
    }
}

/// LAMMPS forces (kcal/mol/Å) with LAMMPS's own α, our Ewald converged in k-space.
#[test]
fn nist_spce_forces_match_lammps() {
    const KCAL_MOL_PER_EV: f64 = 23.060_547_830_619_03;
    for (k, alpha) in [(1, 0.326983), (2, 0.332241)] {
        let spec = preset_spec(&format!("nist_spce_{k}.toml"));
        let mut cs = coulomb(&spec).clone();
        cs.method = CoulombMethod::Ewald {
            alpha,
            kmax: coulomb::kmax_for(spec.system.box_lengths, alpha, 1e-10),
            k2max: None,
        };
        let table = LjTable::new(&spec.lj).unwrap();
        let t = coulomb::reference(&spec.system, &table, &cs);
        let text =
            std::fs::read_to_string(data_dir().join(format!("lammps_forces_10A_config{k}.xyz")))
                .unwrap();
        let lammps: Vec<[f64; 3]> = text
            .lines()
            .skip(2)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Vec<f64> = l
                    .split_whitespace()
                    .skip(1)
                    .map(|x| x.parse().unwrap())
                    .collect();
                [v[0], v[1], v[2]]
            })
            .collect();
        assert_eq!(lammps.len(), spec.system.len());
        let mut worst: f64 = 0.0;
        let mut sum2 = 0.0;
        for f in &lammps {
            sum2 += f.iter().map(|x| x * x).sum::<f64>();
        }
        let rms = (sum2 / lammps.len() as f64).sqrt();
        for (a, b) in t.forces.iter().zip(&lammps) {
            let d: f64 = (0..3)
                .map(|c| (a[c] * KCAL_MOL_PER_EV - b[c]).powi(2))
                .sum::<f64>()
                .sqrt();
            let n: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            worst = worst.max(d / n.max(rms));
        }
        eprintln!("config {k}: worst |dF|/max(|F|, F_rms) vs LAMMPS = {worst:.2e} (F_rms {rms:.2} kcal/mol/A)");
        // LAMMPS's own Ewald (accuracy ~1e-5 relative, its real-space cutoff truncation) and the
        // 6 digits it printed bound the agreement; lumol asserts 5e-3.
        assert!(worst < 1e-3, "config {k}: {worst}");
    }
}

fn point_charges(pos: Vec<[f64; 3]>, q: Vec<f64>, l: f64) -> System {
    let n = pos.len();
    let mut s = System::default();
    s.type_index("X", 1.0);
    s.positions = pos;
    s.charges = q;
    s.velocities = vec![[0.0; 3]; n];
    s.types = vec![0; n];
    s.box_lengths = [l; 3];
    s
}

fn ewald_spec(alpha: f64, kmax: u32, cutoff: f64) -> CoulombSpec {
    CoulombSpec {
        method: CoulombMethod::Ewald {
            alpha,
            kmax: [kmax; 3],
            k2max: None,
        },
        cutoff,
        coulomb_k: 1.0,
        exclusions: vec![],
        neutralize: false,
    }
}

#[test]
fn madelung_constant_of_rock_salt() {
    let m = reference()["madelung_rock_salt"]["value"].as_f64().unwrap();
    // 3x3x3 conventional cells of edge 2 (216 ions, r0 = 1); any alpha gives the same sum.
    for alpha in [1.6, 2.0] {
        let sys = coulomb::rock_salt([6; 3], 1.0, ["Na", "Cl"], [1.0, 1.0]);
        let spec = ewald_spec(
            alpha,
            coulomb::kmax_for(sys.box_lengths, alpha, 1e-15)[0],
            3.0,
        );
        let t = coulomb::reference(&sys, &LjTable::new(&LjSpec::off(2, 3.0)).unwrap(), &spec);
        let per_pair = t.total() / (sys.len() as f64 / 2.0);
        eprintln!("alpha {alpha}: E per ion pair {per_pair:.15} (−M = {})", -m);
        assert!(rel(-per_pair, m) < 1e-10, "alpha {alpha}: {per_pair}");
        // A perfect crystal has no net force on any ion.
        assert!(t.forces.iter().flatten().all(|f| f.abs() < 1e-9));
    }
}

#[test]
fn two_charge_ewald_energy_and_force() {
    let r = &reference()["two_charge_ewald"];
    let sys = point_charges(
        vec![[0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]],
        vec![1.0, -1.0],
        10.0,
    );
    let spec = ewald_spec(0.8, 14, 5.0);
    let t = coulomb::reference(&sys, &LjTable::new(&LjSpec::off(1, 5.0)).unwrap(), &spec);
    let (e, fx) = (
        r["E_over_ke"].as_f64().unwrap(),
        r["Fx_over_ke"].as_f64().unwrap(),
    );
    eprintln!(
        "E = {:.9} (ref {e}), Fx = {:.9} (ref {fx})",
        t.total(),
        t.forces[0][0]
    );
    // The reference gives 8 significant digits.
    assert!((t.total() - e).abs() < 1e-7);
    assert!((t.forces[0][0] - fx).abs() < 1e-7);
    assert!((t.forces[1][0] + fx).abs() < 1e-7);
}

/// OpenMM 8.6.1 chose these grids for the anchor's NaCl boxes (../shared/anchors/README.md).
#[test]
fn pme_parameters_follow_openmm() {
    let d = 2.82 * (2.165f64 / 1.55).cbrt();
    for (n, grid) in [(32usize, 81u32), (64, 162), (128, 324)] {
        let l = n as f64 * d;
        let p = PmeChoice::from_tolerance([l; 3], 10.0, 5e-4).unwrap();
        assert_eq!(p.grid, [grid; 3], "{n}^3 ions");
        assert_eq!(p.order, 5);
        assert!(rel(p.alpha, (-(1e-3f64).ln()).sqrt() / 10.0) < 1e-15);
    }
    assert!(PmeChoice::from_tolerance([30.0; 3], 10.0, 0.0).is_err());
}

fn energy(sys: &System, table: &LjTable, spec: &CoulombSpec) -> f64 {
    coulomb::reference(sys, table, spec).total()
}

/// Forces = −∇E and W = −dE/ds under uniform scaling, for every method, with exclusions.
#[test]
fn finite_difference_forces_and_virial_every_method() {
    let seed = common::fresh_seed("fd_every_method");
    // LJ's force jumps at its cutoff (shifted energy, unshifted force): a pair within the
    // scaling step of it (r changes by 4e-5 at h = 1e-5) makes -dE/ds straddle the jump
    // (seed 5736878181969396644: a pair at r = 3.99998, W off by 2e-5). Redraw until every
    // pair is clear of the cutoff by 1e-4 rc², as the GPU tests do.
    let (mut sys, excl) = (0..)
        .map(|j| random_charged(61, [9.0, 9.5, 10.0], 2, 1.2, seed + 7919 * j))
        .find(|(s, _)| common::clear_of_cutoffs(s, &[4.0], 1e-4))
        .unwrap();
    sys.types.iter_mut().for_each(|t| *t = 0);
    let lj = LjSpec {
        cutoff: 4.0,
        shift: true,
        tail: false,
        sigma: vec![1.0, 1.2],
        epsilon: vec![0.2, 0.1],
        pairs: vec![],
    };
    let table = LjTable::new(&lj).unwrap();
    for method in methods(0.7) {
        let spec = CoulombSpec {
            method: method.clone(),
            cutoff: 4.0,
            coulomb_k: 1.0,
            exclusions: excl.clone(),
            neutralize: false,
        };
        let t = coulomb::reference(&sys, &table, &spec);
        let h = 1e-5;
        let mut worst: f64 = 0.0;
        for i in [0usize, 7, 30, 60] {
            for d in 0..3 {
                let mut p = sys.clone();
                p.positions[i][d] += h;
                let ep = energy(&p, &table, &spec);
                p.positions[i][d] -= 2.0 * h;
                let em = energy(&p, &table, &spec);
                let fd = -(ep - em) / (2.0 * h);
                worst = worst.max((fd - t.forces[i][d]).abs() / (1.0 + t.forces[i][d].abs()));
            }
        }
        assert!(
            worst < 1e-6,
            "{method:?}: force vs finite difference {worst}"
        );
        // Plain truncation jumps at r_c: scaling moves pairs across it. Skip its virial.
        if matches!(
            method,
            CoulombMethod::Dsf { .. } | CoulombMethod::Ewald { .. }
        ) {
            let scaled = |s: f64| {
                let mut p = sys.clone();
                p.positions.iter_mut().flatten().for_each(|x| *x *= s);
                p.box_lengths = p.box_lengths.map(|x| x * s);
                energy(&p, &table, &spec)
            };
            let dw = -(scaled(1.0 + h) - scaled(1.0 - h)) / (2.0 * h);
            assert!(
                (dw - t.virial).abs() < 1e-6 * (1.0 + t.virial.abs()),
                "{method:?}: W {} vs -dE/ds {dw}",
                t.virial
            );
        }
    }
}

#[test]
fn net_charge_needs_neutralize_and_background_is_exact() {
    let sys = point_charges(vec![[1.0, 2.0, 3.0], [4.0, 5.0, 1.0]], vec![1.0, 0.5], 10.0);
    let mut spec = ewald_spec(0.6, 8, 5.0);
    let e = coulomb::validate(&spec, &sys).unwrap_err().to_string();
    assert!(
        e.contains("net charge is 1.5") && e.contains("neutralize"),
        "{e}"
    );
    spec.neutralize = true;
    coulomb::validate(&spec, &sys).unwrap();
    let (eb, _) = coulomb::background(&spec, &sys);
    let want = -std::f64::consts::PI * 2.25 / (2.0 * 0.36 * 1000.0);
    assert!(rel(eb, want) < 1e-14);
    // The total no longer depends on alpha once the background is included.
    let t1 = coulomb::reference(&sys, &LjTable::new(&LjSpec::off(1, 5.0)).unwrap(), &spec).total();
    let mut spec2 = ewald_spec(0.8, 10, 5.0);
    spec2.neutralize = true;
    let t2 = coulomb::reference(&sys, &LjTable::new(&LjSpec::off(1, 5.0)).unwrap(), &spec2).total();
    assert!((t1 - t2).abs() < 1e-6 * t1.abs(), "{t1} vs {t2}");
}
