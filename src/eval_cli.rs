//! `wgmd eval CONFIG.toml [--json]` for classical configs (LJ, Coulomb) and
//! `wgmd bench coulomb` (molten NaCl with PME, the OpenMM anchor's workload).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};

use wgmd::config::Config;
use wgmd::engine::{SimSpec, Simulation};
use wgmd::forces::coulomb::{self, CoulombMethod, CoulombSpec, PmeChoice};
use wgmd::forces::lj::LjSpec;
use wgmd::gpu::{GpuContext, GpuOptions};
use wgmd::integrate::{Integrator, Method};
use wgmd::units::Units;

/// Single point of a classical config: per-term energies and forces (input atom order).
pub fn eval_config(gpu: &GpuOptions, path: &Path, json: bool) -> Result<()> {
    let cfg = Config::load(path)?;
    let spec = cfg.to_spec()?;
    if spec.ani.is_some() {
        bail!(
            "{}: wgmd eval CONFIG takes classical force fields (LJ, Coulomb); for ANI use \
             wgmd eval --potential ani2x --model FILE.info --xyz FILE.xyz",
            path.display()
        );
    }
    let (unit, scale) = cfg.eval_energy_unit()?;
    if let Some(c) = &spec.coulomb {
        eprintln!("wgmd: {}", c.describe());
    }
    let ctx = GpuContext::new(gpu)?;
    let t0 = Instant::now();
    let sim = Simulation::new(ctx.clone(), spec)?;
    let (forces, _) = sim.forces()?;
    let t = sim.energy_terms()?;
    let secs = t0.elapsed().as_secs_f64();
    let mut terms = serde_json::Map::new();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            terms.insert(k.into(), serde_json::json!(v / scale));
        }
    };
    put("lj", t.lj);
    put("lj_tail", sim.table.tail.then_some(t.lj_tail));
    put("coulomb_real", t.coulomb_real);
    put("coulomb_reciprocal", t.coulomb_reciprocal);
    put("coulomb_self", t.coulomb_self);
    put("coulomb_exclusion", t.coulomb_exclusion);
    put("coulomb_background", t.coulomb_background);
    let forces: Vec<[f64; 3]> = forces.iter().map(|f| f.map(|x| x / scale)).collect();
    let units_note = match unit.as_str() {
        "K" => "energy K (E/k_B), forces K/Angstrom, lengths Angstrom".to_string(),
        "eV" => "energy eV, forces eV/Angstrom, lengths Angstrom".to_string(),
        _ => "reduced LJ units: energy epsilon, forces epsilon/sigma".to_string(),
    };
    let out = serde_json::json!({
        "atoms": sim.n_atoms(),
        "units": unit,
        "total": t.total() / scale,
        "terms": terms,
        "virial": t.virial / scale,
        "forces": forces,
        "units_note": units_note,
        "coulomb": sim.spec.coulomb.as_ref().map(|c| c.describe()),
        "adapter": ctx.info.name,
        "wgmd_commit": env!("WGMD_COMMIT"),
    });
    if json {
        println!("{out}");
    } else {
        println!(
            "{} atoms: total {:.10e} {unit} ({:.3} s)",
            sim.n_atoms(),
            t.total() / scale,
            secs
        );
        for (k, v) in out["terms"].as_object().unwrap() {
            println!("  {k:<20} {v}");
        }
    }
    Ok(())
}

/// kJ/mol in eV.
const KJ_MOL_EV: f64 = 1.0 / 96.485_332_12;

/// The OpenMM anchor's molten NaCl (../shared/anchors/openmm_nacl_pme.py): n³ ions (n even)
/// on a rock-salt grid at spacing 2.82·(2.165/1.55)^(1/3) Å (molten density, ~1.55 g/cm³),
/// Joung–Cheatham (2008, SPC/E set) LJ σ/ε for Na⁺ (2.160 Å, 1.4754 kJ/mol) and Cl⁻
/// (4.830 Å, 0.0535 kJ/mol) mixed by Lorentz–Berthelot, plainly truncated at 10 Å without
/// dispersion correction, PME at tolerance 5e-4, Langevin 1200 K, γ = 1/ps, dt 2 fs.
pub fn nacl_bench_spec(ions_per_edge: usize, method: &str, seed: u64) -> Result<SimSpec> {
    let n = ions_per_edge;
    let d = 2.82 * (2.165f64 / 1.55).cbrt();
    let mut system = coulomb::rock_salt([n; 3], d, ["Na", "Cl"], [22.99, 35.45]);
    system.maxwell_boltzmann(1200.0, seed, Units::Physical);
    let l = system.box_lengths;
    let (rc, tol) = (10.0, 5e-4);
    let method = match method {
        "pme" => CoulombMethod::Pme(PmeChoice::from_tolerance(l, rc, tol)?),
        "ewald" => coulomb::ewald_from_tolerance(l, rc, tol)?,
        other => bail!("--method {other} is unknown (pme or ewald)"),
    };
    Ok(SimSpec {
        system,
        units: Units::Physical,
        lj: LjSpec {
            cutoff: rc,
            shift: false,
            tail: false,
            sigma: vec![2.160, 4.830],
            epsilon: vec![1.4754 * KJ_MOL_EV, 0.0535 * KJ_MOL_EV],
            pairs: vec![],
        },
        ani: None,
        coulomb: Some(CoulombSpec {
            method,
            cutoff: rc,
            coulomb_k: coulomb::COULOMB_K_EV_A,
            exclusions: vec![],
            neutralize: false,
        }),
        skin: 1.0,
        neighbor_mode: Default::default(),
        integrator: Integrator {
            dt: 2.0,
            method: Method::Langevin {
                temperature: 1200.0,
                friction: 0.001,
                seed: 7,
            },
        },
    })
}

/// `wgmd bench coulomb`'s options.
#[derive(clap::Args)]
pub struct CoulombBench {
    /// Ions (rounded to the nearest even n^3).
    #[arg(long, default_value_t = 32768)]
    pub atoms: u64,
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    /// Reciprocal-space method: pme or ewald.
    #[arg(long, default_value = "pme")]
    pub method: String,
    /// Verlet skin in Å (list cutoff 10 Å + skin).
    #[arg(long, default_value_t = 1.0)]
    pub skin: f64,
    /// Steps between neighbor-rebuild opportunities (0 = adaptive; default: the engine's,
    /// 4 below 131,072 atoms, else 1).
    #[arg(long)]
    pub check_every: Option<u32>,
    /// Store the ions in a random order (as after a long run's mixing) instead of the
    /// lattice's space order.
    #[arg(long)]
    pub shuffle: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn bench_coulomb(gpu: &GpuOptions, b: &CoulombBench) -> Result<()> {
    let CoulombBench {
        atoms,
        steps,
        warmup,
        ref method,
        skin,
        check_every,
        shuffle,
        json,
    } = *b;
    let mut n = (atoms as f64).cbrt().round() as usize;
    n += n % 2;
    if n < 4 {
        bail!("--atoms {atoms} is too small: the rock-salt box needs at least 4^3 = 64 ions");
    }
    let ctx = GpuContext::new(gpu)?;
    let mut spec = nacl_bench_spec(n, method, 2026)?;
    spec.skin = skin;
    if shuffle {
        spec.system.shuffle(2027);
    }
    let describe = spec.coulomb.as_ref().unwrap().describe();
    eprintln!("wgmd: {} ions, {describe}", n * n * n);
    let t_setup = Instant::now();
    let mut sim = Simulation::new(ctx.clone(), spec)?;
    if let Some(k) = check_every {
        sim.set_check_every((k > 0).then_some(k))?;
    }
    let setup = t_setup.elapsed().as_secs_f64();
    let e0 = sim.advance(warmup, true)?.expect("sampled");
    let builds_before = sim.stats().neighbor_builds;
    let t0 = Instant::now();
    let e1 = sim.advance(steps, true)?.expect("sampled");
    let secs = t0.elapsed().as_secs_f64();
    let builds = sim.stats().neighbor_builds;
    // PME's dispatches one at a time (before time_parts, whose closing rebuild recomputes
    // the forces that this profile leaves dirty).
    let pme_profile: serde_json::Map<String, serde_json::Value> = match sim.pme() {
        Some(p) => p
            .profile(&ctx, 200)?
            .into_iter()
            .map(|(name, s)| (name, serde_json::json!(s * 1e6)))
            .collect(),
        None => Default::default(),
    };
    let [t_force, t_cells, t_list, t_pme, t_tile] = sim.time_parts(50)?;
    let na = sim.n_atoms() as f64;
    let sps = steps as f64 / secs;
    let out = serde_json::json!({
        "adapter": ctx.info.name,
        "backend": format!("{:?}", ctx.info.backend),
        "system": "molten NaCl (OpenMM anchor workload)",
        "atoms": sim.n_atoms(),
        "steps": steps,
        "seconds": secs,
        "steps_per_s": sps,
        "atom_steps_per_s": sps * na,
        "ns_per_day": sps * 2.0e-6 * 86400.0,
        "coulomb": describe,
        "setup_s": setup,
        "skin": skin,
        "shuffled": shuffle,
        "check_every": sim.stats().check_every,
        "missed_replays": sim.stats().missed_replays,
        "threads_per_atom": sim.lj_threads_per_atom(),
        "precision": "f32",
        "neighbor_builds": builds,
        "neighbor_builds_timed": builds - builds_before,
        // The list's layout and rebuild rule (A/B switches WGMD_SPLIT_ROWS, WGMD_PAIR_REBUILD).
        "list_layout": format!("{:?}", sim.neighbor_layout()),
        "rebuild_by_pairs": sim.rebuilds_by_pairs(),
        "pair_cap": sim.pair_cap(),
        // Where a step's time goes (µs; each part alone, 50 repetitions in one pass).
        "us_per_step": 1e6 / sps,
        "us_forces": t_force * 1e6,
        "us_real_space": (t_force - t_pme) * 1e6,
        "us_pme": t_pme * 1e6,
        "pme_spread": sim.pme().map(|p| p.spread_kind().to_string()),
        // Separate, Interleaved (with real space) or Tiled (by blocks of cells).
        "spread_mode": format!("{:?}", sim.spread_mode()),
        "spread_tile": sim.spread_tile_plan().map(|p| serde_json::json!({
            "block": p.block, "groups": p.groups, "box_points": p.box_points,
            "tile_words": p.tile_words, "gain": p.gain,
        })),
        "us_spread_tile": t_tile * 1e6,
        // Each PME dispatch alone (µs per dispatch, 200 repetitions in one pass).
        "us_pme_dispatches": pme_profile,
        "gpu_bytes_per_atom": sim.gpu_bytes() as f64 / na,
        "us_per_rebuild": (t_cells + t_list) * 1e6,
        "us_neighbor_build": t_list * 1e6,
        "temperature_start": e0.temperature,
        "temperature_end": e1.temperature,
        "potential_energy_per_ion_ev": e1.potential_energy / na,
        "wgmd_commit": env!("WGMD_COMMIT"),
    });
    if json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
