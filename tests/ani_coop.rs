//! The ANI networks' tensor-core GEMMs (`shaders/mlp_coop.wgsl`, wgpu's experimental
//! cooperative matrices) against float64 references: single products on random inputs, the
//! synthetic model's energies and forces on random structures, and the real ANI-2x on the 66
//! TorchANI molecules within the fp16 budget.
//!
//! Adapters without a usable cooperative-matrix configuration (lavapipe, browsers) cannot run
//! the tensor-core path: each test then says plainly that it did NOT run it, still checks the
//! plain f16 kernels where that is cheap, and fails when `WGMD_REQUIRE_COOP=1` (set it on a
//! GPU machine, where skipping would hide a broken feature request).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use wgmd::ani::{eval, neurochem, reference, AniModel, ANI2X_SYMBOLS};
use wgmd::engine::Simulation;
use wgmd::forces::ani::{self, AniPrecision, HARTREE_EV};
use wgmd::integrate::{Integrator, Method};

const KCAL: f64 = 627.5094738898777;

/// Whether the tensor-core path can run here; prints why not, and panics then if
/// WGMD_REQUIRE_COOP=1.
fn coop_here(test: &str) -> bool {
    let ctx = common::ctx();
    match ani::coop_support(&ctx) {
        Ok(()) => {
            println!(
                "{test}: tensor-core path available on {}: {:?}",
                ctx.info.name,
                ctx.adapter.cooperative_matrix_properties()
            );
            true
        }
        Err(why) => {
            println!("{test}: the tensor-core path did NOT run: {why}");
            assert!(
                std::env::var("WGMD_REQUIRE_COOP").as_deref() != Ok("1"),
                "WGMD_REQUIRE_COOP=1 but the tensor-core path cannot run: {why}"
            );
            false
        }
    }
}

fn f16_round(x: f64) -> f64 {
    half::f16::from_f64(x).to_f64()
}

/// Batched products with sizes that are not multiples of 16 (rows) or of the 64/128 tiles
/// (rows and columns), f16 inputs, against a float64 product of the same f16-rounded inputs.
/// Bound per element: the f16 rounding of the stored result (2⁻¹¹ relative) plus 2⁻¹⁶ of
/// Σ|a·b| for the f32 sums (K ≤ 1008 additions at 2⁻²⁴ each, with room for the tensor cores'
/// truncating adds); a wrong tile, stride or mask gives errors of order Σ|a·b| itself.
#[test]
fn gemm_f16_matches_float64_on_random_inputs() {
    let ctx = common::ctx();
    let coop = coop_here("gemm");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(common::fresh_seed("ani-coop-gemm"));
    // (wide, batch, m, n, k): the narrow kernel batched like layers 2–3, the wide one as wide
    // as layer 1's input gradient (n = 1008 + 4, k = AEV length).
    let cases = [
        (false, 2u32, 77u32, 100u32, 48u32),
        (false, 1, 5, 36, 16),
        (true, 1, 203, 660, 1008),
        (true, 2, 130, 1012, 208),
    ];
    for (wide, batch, m, n, k) in cases {
        let (m_, n_, k_) = (m as usize, n as usize, k as usize);
        let na = Normal::new(0.0, 1.0).unwrap();
        let nb = Normal::new(0.0, 1.0 / (k as f64).sqrt()).unwrap();
        let a: Vec<f64> = (0..batch as usize * m_ * k_)
            .map(|_| f16_round(na.sample(&mut rng)))
            .collect();
        let b: Vec<f64> = (0..batch as usize * n_ * k_)
            .map(|_| f16_round(nb.sample(&mut rng)))
            .collect();
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        // The plain kernels, then each tensor-core kernel of this width.
        let mut paths = vec![(false, if wide { "wide" } else { "narrow" })];
        if coop {
            if wide {
                paths.extend([(true, "wide"), (true, "staged")]);
            } else {
                paths.push((true, "narrow"));
            }
        }
        for (use_coop, tile) in paths {
            let got =
                ani::gemm_f16_for_test(&ctx, use_coop, tile, batch, m, n, k, &a32, &b32).unwrap();
            let mut worst = 0.0f64;
            for bt in 0..batch as usize {
                for i in 0..m_ {
                    for j in 0..n_ {
                        let (mut s, mut sabs) = (0.0f64, 0.0f64);
                        for kk in 0..k_ {
                            let p = a[(bt * m_ + i) * k_ + kk] * b[(bt * n_ + j) * k_ + kk];
                            s += p;
                            sabs += p.abs();
                        }
                        let g = got[(bt * m_ + i) * n_ + j] as f64;
                        let tol = s.abs() / 2048.0 + sabs / 65536.0 + 1e-7;
                        let e = (g - s).abs() / tol;
                        worst = worst.max(e);
                        assert!(
                            e <= 1.0,
                            "{} {tile} batch {bt} ({m}x{n}x{k}): C[{i}][{j}] = {g}, float64 {s} (bound {tol:.2e})",
                            if use_coop { "coop" } else { "plain" }
                        );
                    }
                }
            }
            println!(
                "gemm {} {tile} batch={batch} {m}x{n}x{k}: worst error {worst:.3} of the bound",
                if use_coop { "coop" } else { "plain" }
            );
        }
    }
}

/// GPU energies (Hartree per atom) and forces (Hartree/Å) after poisoning every ANI buffer,
/// with or without tensor cores; also which GEMM path ran.
fn gpu_eval(
    model: &Arc<AniModel>,
    symbols: &[String],
    positions: &[[f64; 3]],
    box_l: Option<f64>,
    allow_coop: bool,
) -> (Vec<f64>, Vec<[f64; 3]>, &'static str) {
    let (edges, pos) = match box_l {
        Some(l) => ([l; 3], positions.to_vec()),
        None => eval::vacuum_box(positions, model.aev.rcr, 1.0),
    };
    let sys = eval::system_for(symbols, &pos, edges).unwrap();
    let integ = Integrator {
        dt: 1.0,
        method: Method::VelocityVerlet,
    };
    let mut spec = eval::ani_spec(sys, model.clone(), AniPrecision::F16, 0.0, integ).unwrap();
    let a = spec.ani.as_mut().unwrap();
    a.max_force = f64::INFINITY;
    a.allow_coop = allow_coop;
    let mut sim = Simulation::new(common::ctx(), spec).unwrap();
    sim.poison_and_recompute().unwrap();
    let path = sim.ani().unwrap().gemm_path();
    let e = sim.ani_atom_energies().unwrap();
    let f = sim
        .forces()
        .unwrap()
        .0
        .iter()
        .map(|v| v.map(|x| x / HARTREE_EV))
        .collect();
    (e, f, path)
}

/// A synthetic ensemble wide enough for the 128-tile kernels (4 members × 128 = 512 layer-1
/// outputs), on random clusters and periodic boxes (sizes not multiples of 16), against the
/// float64 CPU reference with the f16 bounds of tests/ani_gpu.rs: 5e-3 of the largest atomic
/// energy, 5e-3 relative force norm, 2e-2 of the largest force component.
#[test]
fn network_f16_matches_float64_reference_synthetic() {
    let coop = coop_here("synthetic");
    let dir = tempfile::tempdir().unwrap();
    let seed = common::fresh_seed("ani-coop-synthetic");
    let info = neurochem::write_synthetic_model(dir.path(), 4, &[vec![128, 48, 32]], seed).unwrap();
    let model = Arc::new(AniModel::load(&info).unwrap());
    for (n, periodic) in [(77usize, false), (203, true)] {
        let l = (n as f64 / 0.1).cbrt().max(10.5);
        let sys = common::random_system(
            n,
            [l; 3],
            7,
            0.9,
            0.0,
            common::fresh_seed(&format!("ani-coop-structure-{n}")),
        );
        let symbols: Vec<String> = sys
            .types
            .iter()
            .map(|&t| ANI2X_SYMBOLS[t as usize].to_string())
            .collect();
        let box_l = periodic.then_some(l);
        let species = model.species_for_atoms(&symbols).unwrap();
        let cell = box_l.map(|l| [[l, 0.0, 0.0], [0.0, l, 0.0], [0.0, 0.0, l]]);
        let r = reference::evaluate(&model, &species, &sys.positions, cell).unwrap();
        let mut paths = vec![false];
        if coop {
            paths.push(true);
        }
        for allow in paths {
            let (e, f, path) = gpu_eval(&model, &symbols, &sys.positions, box_l, allow);
            assert!(
                if allow {
                    path.starts_with("coop")
                } else {
                    path == "plain"
                },
                "{path}"
            );
            let emax = r.atomic_nn.iter().map(|x| x.abs()).fold(0.0, f64::max);
            let de = r
                .atomic_nn
                .iter()
                .zip(&e)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                / emax;
            let (mut num, mut den, mut dmax, mut fmax) = (0.0, 0.0, 0.0f64, 0.0f64);
            for (a, b) in r.forces.iter().zip(&f) {
                for k in 0..3 {
                    num += (a[k] - b[k]).powi(2);
                    den += a[k] * a[k];
                    dmax = dmax.max((a[k] - b[k]).abs());
                    fmax = fmax.max(a[k].abs());
                }
            }
            let (df, dfm) = ((num / den).sqrt(), dmax / fmax);
            println!(
                "synthetic N={n} periodic={periodic} f16 {path}: energy {de:.1e}, force rel {df:.1e}, worst component {dfm:.1e}"
            );
            assert!(de < 5e-3, "{path}: atom energies off by {de:e} (relative)");
            assert!(df < 5e-3, "{path}: forces off by {df:e} (relative norm)");
            assert!(dfm < 2e-2, "{path}: worst force component off by {dfm:e}");
        }
    }
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// The real ANI-2x ensemble on the 66 TorchANI molecules (one batched evaluation, molecules
/// more than the cutoff apart) on tensor cores, against the float64 CPU reference of the same
/// model: within 1 kcal/mol per molecule and force RMSE ≤ 0.5 kcal/mol/Å (the fp16 budget).
/// Runs only where the tensor-core path does (tests/ani_gpu.rs covers the plain f16 path).
#[test]
fn ani2x_coop_within_fp16_budget() {
    let model_path = std::env::var_os("WGMD_ANI_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("models/ani-2x_8x.info"));
    let data_path = std::env::var_os("WGMD_ANI_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("data"))
        .join("ani2x_reference.json");
    if !coop_here("ani2x") {
        return;
    }
    if !model_path.is_file() || !data_path.is_file() {
        println!(
            "ani2x: the tensor-core ANI-2x check did NOT run: model {} or data {} missing",
            model_path.display(),
            data_path.display()
        );
        assert!(
            std::env::var("WGMD_REQUIRE_COOP").as_deref() != Ok("1"),
            "WGMD_REQUIRE_COOP=1 needs the model and the reference data"
        );
        return;
    }
    let model = Arc::new(AniModel::load(&model_path).unwrap());
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&data_path).unwrap()).unwrap();
    let mut mols: Vec<(Vec<String>, Vec<[f64; 3]>)> = Vec::new();
    for m in d["molecules"].as_array().unwrap() {
        let symbols: Vec<String> = m["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let positions: Vec<[f64; 3]> = m["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| [0, 1, 2].map(|k| r[k].as_f64().unwrap()))
            .collect();
        mols.push((symbols, positions));
    }
    // All molecules in one vacuum box on a grid, cutoff + 0.5 Å apart.
    let extent = mols
        .iter()
        .flat_map(|m| m.1.iter().flat_map(|p| p.iter().map(|x| x.abs())))
        .fold(0.0, f64::max);
    let pitch = 2.0 * extent + model.aev.rcr + 0.5;
    let side = (mols.len() as f64).cbrt().ceil() as usize;
    let (mut symbols, mut positions) = (Vec::new(), Vec::new());
    for (k, (s, p)) in mols.iter().enumerate() {
        let c = [k % side, (k / side) % side, k / side / side].map(|i| i as f64 * pitch);
        symbols.extend(s.iter().cloned());
        positions.extend(p.iter().map(|q| [q[0] + c[0], q[1] + c[1], q[2] + c[2]]));
    }
    let (e, f, path) = gpu_eval(&model, &symbols, &positions, None, true);
    assert!(path.starts_with("coop"), "{path}");
    let (mut at, mut worst_e, mut sq, mut cnt) = (0usize, 0.0f64, 0.0f64, 0usize);
    for (s, p) in &mols {
        let species = model.species_for_atoms(s).unwrap();
        let r = reference::evaluate(&model, &species, p, None).unwrap();
        let n = s.len();
        let de = (e[at..at + n].iter().sum::<f64>() - r.energy_nn).abs() * KCAL;
        worst_e = worst_e.max(de);
        assert!(
            de < 1.0,
            "molecule {}: f16 coop energy off by {de:.3} kcal/mol",
            s.join("")
        );
        for (g, rf) in f[at..at + n].iter().zip(&r.forces) {
            for k in 0..3 {
                sq += ((g[k] - rf[k]) * KCAL).powi(2);
                cnt += 1;
            }
        }
        at += n;
    }
    let rmse = (sq / cnt as f64).sqrt();
    println!(
        "ani2x f16 coop vs float64 reference, {} molecules: worst |ΔE| {worst_e:.3} kcal/mol, force RMSE {rmse:.3} kcal/mol/Å",
        mols.len()
    );
    assert!(rmse <= 0.5, "f16 coop force RMSE {rmse} kcal/mol/Å");
}
