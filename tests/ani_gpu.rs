//! ANI on the GPU against TorchANI 2.9 (float64 reference data), against the float64 CPU
//! reference (`ani::reference`) on random structures with a synthetic model, and against
//! finite differences of its own energy. Tests needing the real ANI-2x files skip with one
//! line when they are absent; synthetic-model tests always run.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use wgmd::ani::{eval, AniModel};
use wgmd::forces::ani::AniPrecision;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

fn real_model() -> Option<Arc<AniModel>> {
    let p = std::env::var_os("WGMD_ANI_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("models/ani-2x_8x.info"));
    if !p.is_file() {
        println!("skipping: ANI-2x model not found at {}", p.display());
        return None;
    }
    Some(Arc::new(AniModel::load(&p).unwrap()))
}

fn reference_json() -> Option<serde_json::Value> {
    let p = std::env::var_os("WGMD_ANI_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("data"))
        .join("ani2x_reference.json");
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(serde_json::from_str(&t).unwrap()),
        Err(_) => {
            println!("skipping: TorchANI reference data not found at {}", p.display());
            None
        }
    }
}

fn vec3s(v: &serde_json::Value) -> Vec<[f64; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            [0, 1, 2].map(|k| r[k].as_f64().unwrap())
        })
        .collect()
}

fn symbol_of_z(z: u64) -> String {
    match z {
        1 => "H",
        6 => "C",
        7 => "N",
        8 => "O",
        9 => "F",
        16 => "S",
        17 => "Cl",
        _ => panic!("unexpected Z {z}"),
    }
    .to_string()
}

struct Molecule {
    id: String,
    symbols: Vec<String>,
    positions: Vec<[f64; 3]>,
    energy: f64,
    forces: Vec<[f64; 3]>,
}

fn molecules(d: &serde_json::Value) -> Vec<Molecule> {
    d["molecules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Molecule {
            id: m["id"].as_str().unwrap().to_string(),
            symbols: m["symbols"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
            positions: vec3s(&m["positions"]),
            energy: m["energy_ensemble"].as_f64().unwrap(),
            forces: vec3s(&m["forces_ensemble"]),
        })
        .collect()
}

/// Each molecule on its own (a vacuum box around it), as `wgmd eval` does. Energies with
/// TorchANI's f32-rounded self energies.
fn evaluate_each(
    model: &Arc<AniModel>,
    mols: &[Molecule],
    precision: AniPrecision,
) -> Vec<(f64, Vec<[f64; 3]>)> {
    mols.iter()
        .map(|m| {
            let e = eval::evaluate(common::ctx(), model.clone(), precision, &m.symbols, &m.positions, None)
                .unwrap();
            let species = model.species_for_atoms(&m.symbols).unwrap();
            let sae: f64 = species
                .iter()
                .map(|&s| model.self_energies_f32_rounded()[s])
                .sum();
            (e.energy_nn + sae, e.forces)
        })
        .collect()
}

/// All molecules on a 3-D grid in one vacuum box, more than the cutoff apart, so one GPU
/// evaluation gives every molecule's energy (sum of its atoms') and forces (no cross-molecule
/// pairs). Coordinates reach ~80 Å, so f32 positions carry ~4e-6 Å of rounding.
fn evaluate_together(
    model: &Arc<AniModel>,
    mols: &[Molecule],
    precision: AniPrecision,
) -> Vec<(f64, Vec<[f64; 3]>)> {
    let extent = mols
        .iter()
        .flat_map(|m| m.positions.iter().flat_map(|p| p.iter().map(|x| x.abs())))
        .fold(0.0, f64::max);
    let pitch = 2.0 * extent + model.aev.rcr + 0.5;
    let side = (mols.len() as f64).cbrt().ceil() as usize;
    let mut symbols = Vec::new();
    let mut positions = Vec::new();
    for (k, m) in mols.iter().enumerate() {
        let c = [k % side, (k / side) % side, k / side / side].map(|i| i as f64 * pitch);
        for (s, p) in m.symbols.iter().zip(&m.positions) {
            symbols.push(s.clone());
            positions.push([p[0] + c[0], p[1] + c[1], p[2] + c[2]]);
        }
    }
    let e = eval::evaluate(
        common::ctx(),
        model.clone(),
        precision,
        &symbols,
        &positions,
        None,
    )
    .unwrap();
    let mut out = Vec::new();
    let mut k = 0;
    for m in mols {
        let n = m.symbols.len();
        let species = model.species_for_atoms(&m.symbols).unwrap();
        let sae: f64 = species
            .iter()
            .map(|&s| model.self_energies_f32_rounded()[s])
            .sum();
        let e_nn: f64 = e.atomic_nn[k..k + n].iter().sum();
        out.push((e_nn + sae, e.forces[k..k + n].to_vec()));
        k += n;
    }
    out
}

fn max_abs_diff(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| (0..3).map(move |d| (x[d] - y[d]).abs()))
        .fold(0.0, f64::max)
}

fn check_f32(mols: &[Molecule], got: &[(f64, Vec<[f64; 3]>)], tag: &str) {
    let (mut worst_e, mut worst_f) = (0.0f64, 0.0f64);
    for (m, (e, f)) in mols.iter().zip(got) {
        let de = (e - m.energy).abs() / m.symbols.len() as f64;
        let df = max_abs_diff(f, &m.forces);
        worst_e = worst_e.max(de);
        worst_f = worst_f.max(df);
        assert!(de < 5e-6, "{}: energy off by {de:.2e} Ha/atom", m.id);
        assert!(df < 1e-4, "{}: forces off by {df:.2e} Ha/Å", m.id);
    }
    println!("f32 vs TorchANI ({tag}): worst |ΔE|/atom {worst_e:.2e} Ha, worst force {worst_f:.2e} Ha/Å");
}

/// fp32 ensemble vs TorchANI float64: the bounds are 5e-6 Ha per atom and 1e-4 Ha/Å
/// max-abs. Self energies: TorchANI's f32-rounded values, to compare like with like (ANI.md
/// §1.3). All 66 molecules in one batched evaluation, and every 6th one on its own, the way
/// `wgmd eval` runs it (each single point costs ~1 s on lavapipe).
#[test]
fn gpu_f32_matches_torchani_on_molecules() {
    let (Some(model), Some(d)) = (real_model(), reference_json()) else {
        return;
    };
    let mols = molecules(&d);
    check_f32(&mols, &evaluate_together(&model, &mols, AniPrecision::F32), "66 molecules batched");
    let some: Vec<Molecule> = mols.into_iter().step_by(6).collect();
    check_f32(&some, &evaluate_each(&model, &some, AniPrecision::F32), "11 single molecules");
}

/// fp16 storage: within 1 kcal/mol per molecule, force RMSE ≤ 0.5 kcal/mol/Å (the issue's
/// budget); the measured errors are printed.
#[test]
fn gpu_f16_within_budget_on_molecules() {
    let (Some(model), Some(d)) = (real_model(), reference_json()) else {
        return;
    };
    const KCAL: f64 = 627.5094738898777;
    let mols = molecules(&d);
    let got = evaluate_together(&model, &mols, AniPrecision::F16);
    let (mut worst_e, mut sq, mut cnt) = (0.0f64, 0.0f64, 0usize);
    for (m, (e, f)) in mols.iter().zip(&got) {
        let de = (e - m.energy).abs() * KCAL;
        worst_e = worst_e.max(de);
        assert!(de < 1.0, "{}: f16 energy off by {de:.3} kcal/mol", m.id);
        for (a, b) in f.iter().zip(&m.forces) {
            for k in 0..3 {
                sq += ((a[k] - b[k]) * KCAL).powi(2);
                cnt += 1;
            }
        }
    }
    let rmse = (sq / cnt as f64).sqrt();
    println!("f16 vs TorchANI: worst |ΔE| {worst_e:.3} kcal/mol, force RMSE {rmse:.3} kcal/mol/Å");
    assert!(rmse <= 0.5, "f16 force RMSE {rmse} kcal/mol/Å");
}

/// The 192-atom periodic water box (12.4 Å cube): periodic images through the engine's
/// minimum-image neighbor list.
#[test]
fn gpu_f32_matches_torchani_on_periodic_water() {
    let (Some(model), Some(d)) = (real_model(), reference_json()) else {
        return;
    };
    let w = &d["water64_pbc"];
    let l = w["box"].as_f64().unwrap();
    let symbols: Vec<String> = w["species"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| symbol_of_z(z.as_u64().unwrap()))
        .collect();
    let positions = vec3s(&w["positions"]);
    let e = eval::evaluate(
        common::ctx(),
        model.clone(),
        AniPrecision::F32,
        &symbols,
        &positions,
        Some([l; 3]),
    )
    .unwrap();
    let species = model.species_for_atoms(&symbols).unwrap();
    let sae: f64 = species
        .iter()
        .map(|&s| model.self_energies_f32_rounded()[s])
        .sum();
    let de = (e.energy_nn + sae - w["energy_ensemble"].as_f64().unwrap()).abs();
    let df = max_abs_diff(&e.forces, &vec3s(&w["forces_ensemble"]));
    println!("periodic water f32: |ΔE| {de:.2e} Ha ({:.2e}/atom), forces {df:.2e} Ha/Å", de / 192.0);
    assert!(de / 192.0 < 5e-6);
    assert!(df < 1e-4);
}
