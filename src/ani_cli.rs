//! `wgmd eval --potential ani2x ...` and `wgmd bench ani ...` (kept out of main.rs so the CLI
//! entry point stays a readable dispatch table).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use wgmd::ani::{eval, AniModel};
use wgmd::engine::Simulation;
use wgmd::forces::ani::AniPrecision;
use wgmd::gpu::{GpuContext, GpuOptions};
use wgmd::integrate::{Integrator, Method};
use wgmd::io::xyz;

/// The model at `info`: all members, or only `index` when given.
pub fn load_model(info: &Path, index: Option<usize>) -> Result<Arc<AniModel>> {
    let m = match index {
        Some(k) => AniModel::load_member(info, k),
        None => AniModel::load(info),
    }
    .with_context(|| format!("cannot load the ANI model '{}'", info.display()))?;
    Ok(Arc::new(m))
}

pub fn eval_ani(
    gpu: &GpuOptions,
    potential: &str,
    model_path: &Path,
    model_index: Option<usize>,
    precision: AniPrecision,
    xyz_path: &Path,
    json: bool,
) -> Result<()> {
    if potential != "ani2x" && potential != "ani" {
        bail!("--potential {potential} is unknown (known: ani2x)");
    }
    let frame = xyz::read_xyz_file(xyz_path)?;
    let model = load_model(model_path, model_index)?;
    let ctx = GpuContext::new(gpu)?;
    let t0 = Instant::now();
    let e = eval::evaluate(
        ctx.clone(),
        model.clone(),
        precision,
        &frame.symbols,
        &frame.positions,
        frame.box_lengths,
    )
    .with_context(|| format!("{}", xyz_path.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "energy_hartree": e.energy,
        "energy_nn_hartree": e.energy_nn,
        "forces_hartree_per_angstrom": e.forces,
        "atoms": frame.symbols.len(),
        "periodic_box_angstrom": frame.box_lengths,
        "self_energies": "file values (sae_linfit.dat), summed in float64",
        "members": model.n_members(),
        "model": model.source.display().to_string(),
        "precision": precision.name(),
        "adapter": ctx.info.name,
        "backend": format!("{:?}", ctx.info.backend),
        "units": "energy Hartree, forces Hartree/Angstrom, positions Angstrom",
        "wgmd_commit": env!("WGMD_COMMIT"),
    });
    if json {
        println!("{out}");
    } else {
        println!(
            "{} atoms: E = {:.10} Ha (network {:.10} Ha), {} member(s), {}, {:.3} s",
            frame.symbols.len(),
            e.energy,
            e.energy_nn,
            model.n_members(),
            precision.name(),
            secs
        );
    }
    Ok(())
}

pub fn bench_ani(
    gpu: &GpuOptions,
    model_path: &Path,
    atoms: usize,
    precision: AniPrecision,
    reps: u32,
    json: bool,
) -> Result<()> {
    if reps == 0 {
        bail!("--reps must be at least 1");
    }
    let model = load_model(model_path, None)?;
    let ctx = GpuContext::new(gpu)?;
    let (symbols, positions, edge) = eval::water_box(atoms, 2026);
    let sys = eval::system_for(&symbols, &positions, [edge; 3])?;
    let integrator = Integrator {
        dt: 0.5,
        method: Method::VelocityVerlet,
    };
    let spec = eval::ani_spec(sys, model.clone(), precision, 1.0, integrator)?;
    let t_setup = Instant::now();
    let mut sim = Simulation::new(ctx.clone(), spec)?;
    let setup = t_setup.elapsed().as_secs_f64();
    // Warm-up (pipelines, clocks), then the timed force evaluations and MD steps.
    sim.time_force_evaluations(2)?;
    let force_s = sim.time_force_evaluations(reps)? / reps as f64;
    // Where the time goes: timed prefixes of the pipeline (the differences are the stages).
    let aev_s = sim.time_ani_stages(reps, 1)? / reps as f64;
    let nets_s = sim.time_ani_stages(reps, 2)? / reps as f64;
    sim.advance(2, false)?;
    let t0 = Instant::now();
    sim.advance(reps as u64, true)?;
    let step_s = t0.elapsed().as_secs_f64() / reps as f64;
    let ani = sim.ani().expect("ANI run");
    // Each dispatch alone (ms, `reps` repetitions in one pass); last, since it leaves the
    // buffers dirty.
    let profile: serde_json::Map<String, serde_json::Value> = ani
        .profile(&ctx, reps)?
        .into_iter()
        .map(|(name, s)| (name, serde_json::json!(s * 1e3)))
        .collect();
    let out = serde_json::json!({
        "adapter": ctx.info.name,
        "backend": format!("{:?}", ctx.info.backend),
        "atoms": sim.n_atoms(),
        "box_angstrom": edge,
        "members": model.n_members(),
        "precision": precision.name(),
        "reps": reps,
        "ms_per_energy_forces": force_s * 1e3,
        "ms_per_md_step": step_s * 1e3,
        "ms_breakdown": {
            "aev": aev_s * 1e3,
            "networks": (nets_s - aev_s) * 1e3,
            "forces": (force_s - nets_s) * 1e3,
        },
        "setup_s": setup,
        "ani_gpu_bytes": ani.gpu_bytes(),
        "ani_dispatches_per_evaluation": ani.dispatches(),
        "chunk_rows": ani.chunk_rows(),
        "aev_columns": ani.aev_columns(),
        "gemm": ani.gemm_path(),
        "ms_dispatches": profile,
        "wgmd_commit": env!("WGMD_COMMIT"),
    });
    if json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
