//! Shared pieces of the Coulomb tests: reference data (tests/data/nist_spce, checked against
//! ../shared/data when that exists), the NIST presets as specs, random charged systems, molten
//! NaCl.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use wgmd::config::Config;
use wgmd::engine::SimSpec;
use wgmd::forces::coulomb::{self, CoulombMethod, CoulombSpec, PmeChoice};
use wgmd::forces::lj::LjSpec;
use wgmd::integrate::{Integrator, Method};
use wgmd::system::System;
use wgmd::units::Units;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nist_spce")
}

/// reference.json; when ../shared/data/classical_reference.json is present, the copied
/// entries must equal it.
pub fn reference() -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir().join("reference.json")).unwrap())
            .unwrap();
    let shared =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/classical_reference.json");
    if let Ok(t) = std::fs::read_to_string(&shared) {
        let s: serde_json::Value = serde_json::from_str(&t).unwrap();
        for k in ["nist_spce_10A", "madelung_rock_salt", "two_charge_ewald"] {
            assert_eq!(
                v[k],
                s[k],
                "tests/data/nist_spce/reference.json {k} differs from {}",
                shared.display()
            );
        }
    }
    v
}

pub fn preset_spec(name: &str) -> SimSpec {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/presets")
        .join(name);
    Config::load(&p).unwrap().to_spec().unwrap()
}

pub fn coulomb(spec: &SimSpec) -> &CoulombSpec {
    spec.coulomb.as_ref().expect("a Coulomb preset")
}

/// Random neutral charged system: `n` atoms (a multiple of 3 is not required), molecules of 3
/// consecutive atoms (the last partial one too) with their pairs excluded, charges uniform in
/// ±1 then shifted to sum to zero, closest approach `min_dist` between atoms of different
/// molecules; molecule members sit 0.8-1.2 apart.
pub fn random_charged(
    n: usize,
    l: [f64; 3],
    n_types: usize,
    min_dist: f64,
    seed: u64,
) -> (System, Vec<[u32; 2]>) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut s = System::default();
    for t in 0..n_types {
        s.type_index(&format!("T{t}"), 1.0 + t as f64);
    }
    let mut excl = Vec::new();
    let md2 = min_dist * min_dist;
    let far = |s: &System, p: &[f64; 3], skip_from: usize| {
        s.positions[..skip_from].iter().all(|q| {
            let mut r2 = 0.0;
            for d in 0..3 {
                let x = p[d] - q[d];
                let x = x - l[d] * (x / l[d]).round();
                r2 += x * x;
            }
            r2 >= md2
        })
    };
    let mut tries = 0;
    while s.positions.len() < n {
        tries += 1;
        assert!(tries < 100_000, "could not place the molecules");
        let start = s.positions.len();
        let size = 3.min(n - start);
        let c = [0, 1, 2].map(|d| rng.random::<f64>() * l[d]);
        let mut mol = vec![c];
        while mol.len() < size {
            let v = [0, 1, 2].map(|_| rng.random::<f64>() - 0.5);
            let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-3);
            let r = 0.8 + 0.4 * rng.random::<f64>();
            let p = [0, 1, 2].map(|d| (c[d] + r * v[d] / norm).rem_euclid(l[d]));
            mol.push(p);
        }
        if mol.iter().all(|p| far(&s, p, start)) {
            for (a, p) in mol.iter().enumerate() {
                s.positions.push(*p);
                s.velocities.push([0.0; 3]);
                s.types.push(rng.random_range(0..n_types as u32));
                s.charges.push(2.0 * rng.random::<f64>() - 1.0);
                for b in 0..a {
                    excl.push([(start + b) as u32, (start + a) as u32]);
                }
            }
        }
    }
    let mean = s.charges.iter().sum::<f64>() / n as f64;
    for q in &mut s.charges {
        *q -= mean;
    }
    s.box_lengths = l;
    (s, excl)
}

pub fn methods(alpha: f64) -> Vec<CoulombMethod> {
    vec![
        CoulombMethod::Cutoff,
        CoulombMethod::ReactionField { epsilon_rf: 78.5 },
        CoulombMethod::ReactionField {
            epsilon_rf: f64::INFINITY,
        },
        CoulombMethod::Dsf { alpha: 0.6 * alpha },
        CoulombMethod::Ewald {
            alpha,
            kmax: [7, 6, 8],
            k2max: None,
        },
        // A coarse, non-cubic grid: what is tested is the GPU against the float64 PME (and
        // the reference's forces against its energy), not PME against Ewald (coulomb_pme.rs).
        CoulombMethod::Pme(PmeChoice {
            alpha,
            grid: [18, 20, 16],
            order: 5,
        }),
    ]
}

/// `ions`³ ions of rock salt at molten density (Å; the bench's spacing,
/// `eval_cli::nacl_bench_spec`).
pub fn molten_nacl(ions: usize) -> System {
    let d = 2.82 * (2.165f64 / 1.55).cbrt();
    coulomb::rock_salt([ions; 3], d, ["Na", "Cl"], [22.99, 35.45])
}

/// 216 ions of rock salt at molten density (Å) and a cutoff just under half the box.
pub fn molten_nacl_216() -> (System, f64) {
    let sys = molten_nacl(6);
    let rc = 0.5 * sys.box_lengths[0] - 0.01;
    (sys, rc)
}

/// `system` (eV, Å) with Joung–Cheatham LJ shifted at `rc` and, if given, Coulomb by `method`
/// at `rc`; skin 1 Å, velocity Verlet at `dt` fs.
pub fn nacl_spec(system: System, rc: f64, method: Option<CoulombMethod>, dt: f64) -> SimSpec {
    SimSpec {
        system,
        units: Units::Physical,
        lj: joung_cheatham_nacl(rc, true),
        ani: None,
        coulomb: method.map(|method| CoulombSpec {
            method,
            cutoff: rc,
            coulomb_k: coulomb::COULOMB_K_EV_A,
            exclusions: vec![],
            neutralize: false,
        }),
        skin: 1.0,
        neighbor_mode: Default::default(),
        integrator: Integrator {
            dt,
            method: Method::VelocityVerlet,
        },
    }
}

/// Joung–Cheatham Na/Cl LJ (Lorentz–Berthelot) in eV and Å, cut at `rc`.
pub fn joung_cheatham_nacl(rc: f64, shift: bool) -> LjSpec {
    let kj = 1.0 / 96.485_332_12;
    LjSpec {
        cutoff: rc,
        shift,
        tail: false,
        sigma: vec![2.160, 4.830],
        epsilon: vec![1.4754 * kj, 0.0535 * kj],
        pairs: vec![],
    }
}
