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
            println!(
                "skipping: TorchANI reference data not found at {}",
                p.display()
            );
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
            let e = eval::evaluate(
                common::ctx(),
                model.clone(),
                precision,
                &m.symbols,
                &m.positions,
                None,
            )
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
    println!(
        "f32 vs TorchANI ({tag}): worst |ΔE|/atom {worst_e:.2e} Ha, worst force {worst_f:.2e} Ha/Å"
    );
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
    check_f32(
        &mols,
        &evaluate_together(&model, &mols, AniPrecision::F32),
        "66 molecules batched",
    );
    let some: Vec<Molecule> = mols.into_iter().step_by(6).collect();
    check_f32(
        &some,
        &evaluate_each(&model, &some, AniPrecision::F32),
        "11 single molecules",
    );
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
    println!(
        "periodic water f32: |ΔE| {de:.2e} Ha ({:.2e}/atom), forces {df:.2e} Ha/Å",
        de / 192.0
    );
    assert!(de / 192.0 < 5e-6);
    assert!(df < 1e-4);
}

// ---------------------------------------------------------------------------------------
// Synthetic model (always runs): GPU kernels against the float64 reference.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64 as StdRng;
use wgmd::ani::{neurochem, reference, ANI2X_SYMBOLS};
use wgmd::engine::Simulation;
use wgmd::integrate::{Integrator, Method};

/// A 2-member model with small layers (multiples of 16, as the GPU GEMM needs), random
/// weights from a fresh seed; the real ANI-2x AEV constants.
fn synthetic(dir: &std::path::Path, tag: &str) -> Arc<AniModel> {
    let seed = common::fresh_seed(tag);
    let info = neurochem::write_synthetic_model(dir, 2, &[vec![48, 32, 16]], seed).unwrap();
    Arc::new(AniModel::load(&info).unwrap())
}

/// `n` atoms of random ANI species, no two closer than 0.9 Å: a cluster in vacuum
/// (`periodic` false) or a periodic cube at about water's atom density.
fn random_structure(n: usize, periodic: bool, seed: u64) -> (Vec<String>, Vec<[f64; 3]>, f64) {
    random_structure_of(n, periodic, seed, &[0, 1, 2, 3, 4, 5, 6])
}

/// The same with species drawn from `kinds` only (model species indices).
fn random_structure_of(
    n: usize,
    periodic: bool,
    seed: u64,
    kinds: &[usize],
) -> (Vec<String>, Vec<[f64; 3]>, f64) {
    let l = (n as f64 / 0.1).cbrt().max(10.5);
    let sys = common::random_system(n, [l; 3], kinds.len(), 0.9, 0.0, seed);
    let symbols = sys
        .types
        .iter()
        .map(|&t| ANI2X_SYMBOLS[kinds[t as usize]].to_string())
        .collect();
    // In vacuum (no images) the same cube is simply a cluster.
    let _ = periodic;
    (symbols, sys.positions, l)
}

/// GPU single point after poisoning every output and intermediate buffer, with at most
/// `max_chunk_rows` rows per network chunk.
fn gpu_poisoned_chunked(
    model: &Arc<AniModel>,
    precision: AniPrecision,
    symbols: &[String],
    positions: &[[f64; 3]],
    box_l: Option<f64>,
    max_chunk_rows: Option<u32>,
) -> (Vec<f64>, Vec<[f64; 3]>) {
    let (edges, pos) = match box_l {
        Some(l) => ([l; 3], positions.to_vec()),
        None => eval::vacuum_box(positions, model.aev.rcr, 1.0),
    };
    let sys = eval::system_for(symbols, &pos, edges).unwrap();
    let integ = Integrator {
        dt: 1.0,
        method: Method::VelocityVerlet,
    };
    let mut spec = eval::ani_spec(sys, model.clone(), precision, 0.0, integ).unwrap();
    spec.ani.as_mut().unwrap().max_force = f64::INFINITY;
    spec.ani.as_mut().unwrap().max_chunk_rows = max_chunk_rows;
    let mut sim = Simulation::new(common::ctx(), spec).unwrap();
    sim.poison_and_recompute().unwrap();
    let e = sim.ani_atom_energies().unwrap();
    let f = sim
        .forces()
        .unwrap()
        .0
        .iter()
        .map(|v| v.map(|x| x / wgmd::forces::ani::HARTREE_EV))
        .collect();
    (e, f)
}

/// Errors of GPU against reference: (max |Δe_i| / max |e_i|, ‖ΔF‖ / ‖F‖, max |ΔF| / max |F|).
fn compare(
    model: &AniModel,
    symbols: &[String],
    positions: &[[f64; 3]],
    box_l: Option<f64>,
    gpu: &(Vec<f64>, Vec<[f64; 3]>),
) -> (f64, f64, f64) {
    let species = model.species_for_atoms(symbols).unwrap();
    let cell = box_l.map(|l| [[l, 0.0, 0.0], [0.0, l, 0.0], [0.0, 0.0, l]]);
    let r = reference::evaluate(model, &species, positions, cell).unwrap();
    let emax = r.atomic_nn.iter().map(|x| x.abs()).fold(0.0, f64::max);
    let de = r
        .atomic_nn
        .iter()
        .zip(&gpu.0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let (mut num, mut den, mut dmax, mut fmax) = (0.0, 0.0, 0.0f64, 0.0f64);
    for (a, b) in r.forces.iter().zip(&gpu.1) {
        for k in 0..3 {
            num += (a[k] - b[k]).powi(2);
            den += a[k] * a[k];
            dmax = dmax.max((a[k] - b[k]).abs());
            fmax = fmax.max(a[k].abs());
        }
    }
    (de / emax, (num / den).sqrt(), dmax / fmax)
}

/// Random vacuum clusters and periodic boxes (sizes not multiples of 64, poisoned buffers,
/// fresh seeds), f32 and both f16 paths. Bounds: f32 storage rounds AEVs and activations at
/// ~6e-8 relative, which the networks amplify to ~1e-6; f16 rounds at ~5e-4.
#[test]
fn gpu_matches_float64_reference_on_random_structures() {
    let dir = tempfile::tempdir().unwrap();
    let model = synthetic(dir.path(), "ani-synthetic");
    // The last two keep a random subset of species (2 to 4 of 7, not contiguous in general):
    // the GPU lays the AEV out for the species present only.
    for (n, periodic, subset) in [
        (77usize, false, false),
        (150, true, false),
        (131, true, false),
        (93, false, true),
        (141, true, true),
    ] {
        let seed = common::fresh_seed(&format!("ani-structure-{n}"));
        let (symbols, positions, l) = if subset {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
            let mut kinds: Vec<usize> = (0..7).collect();
            kinds.shuffle(&mut rng);
            kinds.truncate(rng.random_range(2..=4));
            kinds.sort();
            println!("N={n}: species {kinds:?}");
            random_structure_of(n, periodic, seed, &kinds)
        } else {
            random_structure(n, periodic, seed)
        };
        let box_l = periodic.then_some(l);
        for (precision, tol) in [
            (AniPrecision::F32, [2e-5, 2e-5, 1e-4]),
            (AniPrecision::F16, [5e-3, 5e-3, 2e-2]),
            (AniPrecision::F16Packed, [5e-3, 5e-3, 2e-2]),
        ] {
            // The subsets also run in network chunks of 64 rows (2–3 per species here), as
            // large systems do.
            let chunk = subset.then_some(64);
            let gpu = gpu_poisoned_chunked(&model, precision, &symbols, &positions, box_l, chunk);
            let (de, df, dfmax) = compare(&model, &symbols, &positions, box_l, &gpu);
            println!(
                "N={n} periodic={periodic} {}: energy {de:.1e}, force rel {df:.1e}, worst component {dfmax:.1e}",
                precision.name()
            );
            assert!(
                de < tol[0],
                "{}: atom energies off by {de:e} (relative)",
                precision.name()
            );
            assert!(
                df < tol[1],
                "{}: forces off by {df:e} (relative norm)",
                precision.name()
            );
            assert!(
                dfmax < tol[2],
                "{}: worst force component off by {dfmax:e}",
                precision.name()
            );
        }
    }
}

/// Central finite differences of the GPU's own energy against its forces (f32; h = 4e-3 Å,
/// where truncation ~h² and f32 energy noise ~1e-7/h balance).
#[test]
fn gpu_forces_match_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let model = synthetic(dir.path(), "ani-fd");
    let seed = common::fresh_seed("ani-fd-structure");
    let (symbols, positions, _) = random_structure(23, false, seed);
    let energy = |p: &[[f64; 3]]| -> f64 {
        eval::evaluate(
            common::ctx(),
            model.clone(),
            AniPrecision::F32,
            &symbols,
            p,
            None,
        )
        .unwrap()
        .energy_nn
    };
    let f = eval::evaluate(
        common::ctx(),
        model.clone(),
        AniPrecision::F32,
        &symbols,
        &positions,
        None,
    )
    .unwrap()
    .forces;
    let fscale = f
        .iter()
        .flat_map(|v| v.iter().map(|x| x.abs()))
        .fold(0.0, f64::max);
    let h = 4e-3;
    let mut worst = 0.0f64;
    for i in [0usize, 7, 22] {
        for k in 0..3 {
            let mut p = positions.clone();
            p[i][k] += h;
            let ep = energy(&p);
            p[i][k] -= 2.0 * h;
            let em = energy(&p);
            let fd = -(ep - em) / (2.0 * h);
            worst = worst.max((fd - f[i][k]).abs() / fscale);
        }
    }
    println!("GPU forces vs finite differences: worst {worst:.2e} of the largest force component");
    assert!(
        worst < 1e-3,
        "GPU forces differ from finite differences by {worst:e} (relative)"
    );
}

/// Runs `steps` velocity-Verlet steps of ethanol in vacuum (300 K start), sampling every 5
/// steps; returns (worst |E − E0| per atom in eV, std(E_total) / std(KE)).
fn ethanol_nve(model: Arc<AniModel>, dt: f64, steps: u64, seed: u64) -> (f64, f64) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/structures/ethanol.xyz");
    let frame = wgmd::io::xyz::read_xyz_file(&path).unwrap();
    let mut sys =
        eval::system_for(&frame.symbols, &frame.positions, frame.box_lengths.unwrap()).unwrap();
    sys.maxwell_boltzmann(300.0, seed, wgmd::units::Units::Physical);
    let integ = Integrator {
        dt,
        method: Method::VelocityVerlet,
    };
    let spec = eval::ani_spec(sys, model, AniPrecision::F32, 1.0, integ).unwrap();
    let mut sim = Simulation::new(common::ctx(), spec).unwrap();
    let e0 = sim.thermo().unwrap();
    let n = sim.n_atoms() as f64;
    let (mut es, mut ks) = (vec![], vec![]);
    for _ in 0..steps / 5 {
        let th = sim.advance(5, true).unwrap().unwrap();
        es.push(th.total_energy);
        ks.push(th.kinetic_energy);
    }
    let std = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let worst = es
        .iter()
        .map(|e| (e - e0.total_energy).abs() / n)
        .fold(0.0, f64::max);
    (worst, std(&es) / std(&ks))
}

/// NVE with the real ANI-2x (member 0: one member keeps lavapipe time low): ethanol, dt 0.5 fs,
/// 200 steps. Verlet's total energy oscillates by O((ω dt)²) of the vibrational energy (here
/// ~1e-4 eV/atom for C–H stretches), so the criterion is the usual scale-free one: total-energy
/// fluctuations below 5% of the kinetic-energy fluctuations.
#[test]
fn ani2x_nve_conserves_energy() {
    let Some(p) = std::env::var_os("WGMD_ANI_MODEL")
        .map(PathBuf::from)
        .or_else(|| Some(shared().join("models/ani-2x_8x.info")))
        .filter(|p| p.is_file())
    else {
        println!("skipping: ANI-2x model not found");
        return;
    };
    let model = Arc::new(AniModel::load_member(&p, 0).unwrap());
    let (worst, ratio) = ethanol_nve(model, 0.5, 200, common::fresh_seed("ani2x-nve"));
    println!("ANI-2x NVE, 200 steps of 0.5 fs: worst |E - E0| = {worst:.2e} eV/atom, std(E)/std(KE) = {ratio:.3}");
    assert!(
        ratio < 0.05,
        "total energy fluctuates {ratio} as much as kinetic energy"
    );
}

/// The same scale-free criterion with a synthetic model (always runs; dt 0.25 fs for its
/// stiffer surface).
///
/// A plain random network is no molecule's energy surface: it drops ethanol's potential energy
/// by ~8 eV within 10 fs (to ~8,000 K), and having no repulsive wall it lets atoms pass within
/// 0.02–0.07 Å of each other (about 1 run in 10), into the 1/r cusp every ANI model has at
/// r_ij → 0 (the angle of an angular term is undefined there), where no fixed time step
/// conserves energy. So the network is shaped like a trained one (`SyntheticSurface`): the
/// random part scaled to 0.1 (ethanol's largest initial force drops from ~3 to ~0.3 eV/Å) and
/// a repulsion of 0.05 Ha on the first radial AEV term (a 0.65 eV barrier per pair at 0.8 Å,
/// ~25 kT at 300 K). Measured on lavapipe (2026-12-02): the pair that failed before
/// (WGMD_TEST_SEED_ANI_NVE=10257666685766673098, WGMD_TEST_SEED_ANI_NVE_V=7814388006239841658:
/// 0.58 with the plain network, atoms 0.066 Å apart, 8,700 K) and 32 fresh seed pairs all
/// pass with std(E)/std(KE) ≤ 0.001 (the bound is 0.05) and |E − E0| ≤ 1.5e-4 eV/atom; in a
/// scan of 22 other seed pairs (positions every 5 steps) the closest approach stayed ≥ 0.96 Å
/// (the O–H bond) and the hottest sample ≤ 2,000 K. It is still a random network with fresh weights
/// every run, evaluated by the same kernels.
#[test]
fn ani_nve_conserves_energy_synthetic() {
    let dir = tempfile::tempdir().unwrap();
    let seed = common::fresh_seed("ani-nve");
    let surface = neurochem::SyntheticSurface {
        random_scale: 0.1,
        repulsion: 0.05,
    };
    let info =
        neurochem::write_synthetic_model_with(dir.path(), 2, &[vec![48, 32, 16]], seed, surface)
            .unwrap();
    let model = Arc::new(AniModel::load(&info).unwrap());
    let (worst, ratio) = ethanol_nve(model, 0.25, 200, common::fresh_seed("ani-nve-v"));
    println!("synthetic NVE, 200 steps of 0.25 fs: worst |E - E0| = {worst:.2e} eV/atom, std(E)/std(KE) = {ratio:.3}");
    assert!(
        ratio < 0.05,
        "total energy fluctuates {ratio} as much as kinetic energy"
    );
}

/// More angular neighbors than the kernels hold (`MAX_ANG_NEIGHBORS`) is an error naming that
/// limit, not silently dropped triples: a 5×5×5 grid of atoms 0.8 Å apart gives the centre
/// atom 124 neighbors within R_ca; a 4×4×4 grid still evaluates.
#[test]
fn too_many_angular_neighbors_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let model = synthetic(tmp.path(), "ani-crowded");
    let grid = |n: usize, h: f64| -> Vec<[f64; 3]> {
        let mut p = Vec::new();
        for a in 0..n {
            for b in 0..n {
                for c in 0..n {
                    p.push([a as f64 * h, b as f64 * h, c as f64 * h]);
                }
            }
        }
        p
    };
    let crowded = grid(5, 0.8);
    let symbols = vec![model.symbols[0].clone(); crowded.len()];
    let err = eval::evaluate(
        common::ctx(),
        model.clone(),
        AniPrecision::F32,
        &symbols,
        &crowded,
        None,
    )
    .err()
    .expect("124 angular neighbors must be refused");
    let msg = format!("{err:#}");
    let limit = wgmd::forces::ani::MAX_ANG_NEIGHBORS;
    // The error names this limit, not the force blow-up it would otherwise look like.
    assert!(
        msg.contains(&format!(
            "more than {limit} neighbors within the ANI angular cutoff"
        )) && !msg.contains("non-finite"),
        "{msg}"
    );
    // 64 atoms: no atom can have more than 63 neighbors.
    let fits = grid(4, 1.1);
    let symbols = vec![model.symbols[0].clone(); fits.len()];
    eval::evaluate(
        common::ctx(),
        model,
        AniPrecision::F32,
        &symbols,
        &fits,
        None,
    )
    .expect("63 angular neighbors fit");
}
