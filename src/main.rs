//! The `wgmd` command line: `view` (also with no arguments), `run`, `bench`, `info` (see
//! README.md for the contract).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use wgmd::config::Config;
use wgmd::engine::{SimSpec, Simulation};
use wgmd::forces::ani::AniPrecision;
use wgmd::gpu::{GpuContext, GpuOptions};
use wgmd::integrate::Method;
use wgmd::io::{xyz, AtomicFile};
use wgmd::observe::{Thermo, CSV_HEADER};
use wgmd::units::Units;

mod ani_cli;
mod eval_cli;

#[derive(Parser)]
#[command(name = "wgmd", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("WGMD_COMMIT"), ")"),
          about = "Portable GPU molecular dynamics: every kernel a WGSL compute shader run through wgpu")]
struct Cli {
    /// GPU adapter to use: a case-insensitive part of its name (also env WGMD_ADAPTER).
    #[arg(long, global = true)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run MD from a TOML config.
    Run {
        config: PathBuf,
        /// Number of steps (overrides run.steps).
        #[arg(long)]
        steps: Option<u64>,
        /// Thermodynamic log (CSV): step,time,temperature,potential_energy,kinetic_energy,total_energy,pressure.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Trajectory (extended XYZ), one frame every K steps.
        #[arg(long)]
        traj: Option<PathBuf>,
        /// Log/trajectory interval in steps (overrides run.every).
        #[arg(long)]
        every: Option<u64>,
        /// f32, or mixed: forces in f32, positions and velocities integrated as double-f32.
        #[arg(long, value_enum, default_value_t = Precision::F32)]
        precision: Precision,
    },
    /// Time a benchmark workload and print JSON.
    Bench {
        #[command(subcommand)]
        which: BenchKind,
    },
    /// Single-point energy and forces as JSON: `eval CONFIG.toml` (LJ/Coulomb configs) or
    /// `eval --potential ani2x --model FILE.info --xyz FILE.xyz`.
    Eval {
        /// A classical config (per-term energies and forces).
        config: Option<PathBuf>,
        /// Potential for --xyz structures (ani2x).
        #[arg(long)]
        potential: Option<String>,
        /// The model's NeuroChem .info file (e.g. ani-2x_8x.info from the ANI model zoo).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Use only this ensemble member (default: the whole ensemble).
        #[arg(long)]
        model_index: Option<usize>,
        /// Storage precision of AEVs, weights and activations: f32 or f16.
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Structure (XYZ; extended XYZ Lattice= makes it periodic).
        #[arg(long)]
        xyz: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print the GPU adapter, backend, driver, features and limits.
    Info,
    /// Open the desktop viewer on a config (default: the lj_melt preset).
    View {
        /// Config to open (default: assets/presets/lj_melt.toml, built in).
        config: Option<PathBuf>,
        /// Save the whole window as PNG after --frames frames, then exit.
        #[arg(long)]
        screenshot: Option<PathBuf>,
        /// Frames to run before the screenshot.
        #[arg(long, default_value_t = 60)]
        frames: u64,
        /// Fixed MD steps per frame (default: adapt to keep 10-25 frames per second).
        #[arg(long)]
        steps_per_frame: Option<u32>,
    },
}

#[derive(clap::Args)]
struct LjBench {
    /// Atoms (rounded to the nearest 4 n^3 fcc lattice).
    #[arg(long, default_value_t = 32000)]
    atoms: u64,
    #[arg(long, default_value_t = 1000)]
    steps: u64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Steps between neighbor-rebuild opportunities (0 = adaptive; default: the engine's,
    /// 4 below 131,072 atoms, else 1).
    #[arg(long)]
    check_every: Option<u32>,
    /// Verlet skin in sigma (in.lj uses 0.3). The list stays exact at any skin; the skin only
    /// trades rebuild frequency against list length.
    #[arg(long, default_value_t = 0.3)]
    skin: f64,
    /// Pair search: auto (Verlet list unless it cannot fit), verlet, or cells (no list:
    /// ~100 bytes per atom, for the largest systems).
    #[arg(long, default_value = "auto")]
    neighbor: String,
    /// Record the total energy every K timed steps (K > 0) and report its drift: the
    /// energy-conservation comparison with OpenMM. Each record is a readback, so timings of
    /// such a run are not the benchmark's.
    #[arg(long, default_value_t = 0)]
    energy_every: u64,
    /// Store the atoms in a random order (as after a long run's mixing) instead of the
    /// lattice's space order.
    #[arg(long)]
    shuffle: bool,
    /// Print one JSON object (otherwise a readable line).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum BenchKind {
    /// LAMMPS in.lj: fcc at rho*=0.8442, T*=1.44, rc=2.5 sigma, skin 0.3, dt 0.005, NVE.
    Lj(LjBench),
    /// Molten NaCl with PME (the OpenMM anchor workload: rock salt at molten density, cutoff
    /// 10 Å, tolerance 5e-4, Langevin 1200 K, dt 2 fs).
    Coulomb(eval_cli::CoulombBench),
    /// ANI-2x energy + forces on a periodic water box at 1 g/cm³ (ensemble of all members).
    Ani {
        /// The model's NeuroChem .info file.
        #[arg(long)]
        model: PathBuf,
        /// Atoms (rounded down to whole water molecules).
        #[arg(long, default_value_t = 3000)]
        atoms: usize,
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Timed repetitions.
        #[arg(long, default_value_t = 20)]
        reps: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Precision {
    F32,
    Mixed,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let gpu = GpuOptions {
        adapter: cli.adapter.clone(),
    };
    match cli.command {
        None => view(&gpu, None, None, 60, None),
        Some(Command::View {
            config,
            screenshot,
            frames,
            steps_per_frame,
        }) => view(&gpu, config, screenshot, frames, steps_per_frame),
        Some(Command::Info) => {
            let ctx = GpuContext::new(&gpu)?;
            println!("{}", ctx.describe());
            Ok(())
        }
        Some(Command::Run {
            config,
            steps,
            log,
            traj,
            every,
            precision,
        }) => run(&gpu, &config, steps, log, traj, every, precision),
        Some(Command::Bench {
            which: BenchKind::Lj(b),
        }) => bench_lj(&gpu, &b),
        Some(Command::Bench {
            which:
                BenchKind::Ani {
                    model,
                    atoms,
                    precision,
                    reps,
                    json,
                },
        }) => ani_cli::bench_ani(
            &gpu,
            &model,
            atoms,
            AniPrecision::parse(&precision)?,
            reps,
            json,
        ),
        Some(Command::Bench {
            which: BenchKind::Coulomb(b),
        }) => eval_cli::bench_coulomb(&gpu, &b),
        Some(Command::Eval {
            config: Some(config),
            potential,
            model,
            xyz,
            json,
            ..
        }) => {
            if potential.is_some() || model.is_some() || xyz.is_some() {
                bail!("wgmd eval CONFIG.toml takes its structure and force field from the config; drop --potential/--model/--xyz");
            }
            eval_cli::eval_config(&gpu, &config, json)
        }
        Some(Command::Eval {
            config: None,
            potential,
            model,
            model_index,
            precision,
            xyz,
            json,
        }) => {
            let (Some(potential), Some(model), Some(xyz)) = (potential, model, xyz) else {
                bail!("wgmd eval needs a config (wgmd eval CONFIG.toml) or --potential ani2x --model FILE.info --xyz FILE.xyz");
            };
            ani_cli::eval_ani(
                &gpu,
                &potential,
                &model,
                model_index,
                AniPrecision::parse(&precision)?,
                &xyz,
                json,
            )
        }
    }
}

#[cfg(feature = "viewer")]
fn view(
    gpu: &GpuOptions,
    config: Option<PathBuf>,
    screenshot: Option<PathBuf>,
    frames: u64,
    steps_per_frame: Option<u32>,
) -> Result<()> {
    wgmd::viewer::run(wgmd::viewer::ViewOptions {
        config,
        screenshot,
        frames,
        steps_per_frame,
        adapter: gpu.adapter.clone(),
    })
}

#[cfg(not(feature = "viewer"))]
fn view(
    _: &GpuOptions,
    _: Option<PathBuf>,
    _: Option<PathBuf>,
    _: u64,
    _: Option<u32>,
) -> Result<()> {
    bail!("this wgmd was built without the viewer (cargo feature `viewer`); use `wgmd run CONFIG.toml` or `wgmd --help`")
}

fn run(
    gpu: &GpuOptions,
    path: &PathBuf,
    steps: Option<u64>,
    log: Option<PathBuf>,
    traj: Option<PathBuf>,
    every: Option<u64>,
    precision: Precision,
) -> Result<()> {
    let cfg = Config::load(path)?;
    let spec = cfg.to_spec()?;
    let steps = steps.unwrap_or(cfg.run.steps);
    let every = every.unwrap_or(cfg.run.every);
    if every == 0 {
        bail!("--every must be at least 1");
    }
    let ctx = GpuContext::new(gpu)?;
    let units = spec.units;
    let mut log_file = log.as_deref().map(AtomicFile::create).transpose()?;
    let mut traj_file = traj.as_deref().map(AtomicFile::create).transpose()?;
    if let Some(c) = &spec.coulomb {
        eprintln!("wgmd: {}", c.describe());
    }
    let mut sim = Simulation::new(ctx.clone(), spec)?;
    sim.set_mixed_precision(precision == Precision::Mixed)?;
    eprintln!(
        "wgmd: {} atoms, {} types, units {}, {} on {} ({:?})",
        sim.n_atoms(),
        sim.spec.system.type_names.len(),
        units.name(),
        match sim.spec.integrator.method {
            Method::VelocityVerlet => "velocity Verlet (NVE)",
            Method::Langevin { .. } => "Langevin BAOAB (NVT)",
        },
        ctx.info.name,
        ctx.info.backend
    );
    let names: Vec<String> = sim
        .spec
        .system
        .types
        .iter()
        .map(|&t| sim.spec.system.type_names[t as usize].clone())
        .collect();
    let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let write_sample = |sim: &Simulation,
                        th: &Thermo,
                        log_file: &mut Option<AtomicFile>,
                        traj_file: &mut Option<AtomicFile>|
     -> Result<()> {
        if let Some(f) = log_file {
            writeln!(f.writer(), "{}", th.csv_row())
                .with_context(|| format!("cannot write '{}'", f.path().display()))?;
        }
        if let Some(f) = traj_file {
            let extra = format!("Time={} Step={} units={}", th.time, th.step, units.name());
            xyz::write_xyz(
                f.writer(),
                &names,
                &sim.positions()?,
                Some(&sim.velocities()?),
                sim.spec.system.box_lengths,
                &extra,
            )
            .with_context(|| format!("cannot write '{}'", f.path().display()))?;
        }
        Ok(())
    };
    if let Some(f) = &mut log_file {
        writeln!(f.writer(), "{CSV_HEADER}")?;
    }
    let first = sim.thermo()?;
    write_sample(&sim, &first, &mut log_file, &mut traj_file)?;
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let mut done = 0;
    let mut last = first;
    while done < steps {
        let n = every.min(steps - done);
        let th = sim.advance(n, true)?.expect("sampled");
        done += n;
        if !th.total_energy.is_finite() {
            bail!(
                "the total energy became non-finite at step {}: the simulation is unstable",
                th.step
            );
        }
        write_sample(&sim, &th, &mut log_file, &mut traj_file)?;
        bar.set_position(done);
        bar.set_message(format!("T={:.4} E={:.6e}", th.temperature, th.total_energy));
        last = th;
    }
    let secs = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(f) = log_file {
        f.commit()?;
    }
    if let Some(f) = traj_file {
        f.commit()?;
    }
    let n = sim.n_atoms() as f64;
    let sps = steps as f64 / secs.max(1e-12);
    let per_day = sps * sim.spec.integrator.dt * 86400.0;
    let rate = match units {
        Units::Physical => format!("{:.2} ns/day", per_day * 1e-6),
        Units::Lj => format!("{:.4e} tau/day", per_day),
    };
    println!(
        "step {} T {:.6} PE {:.8e} KE {:.8e} E {:.8e} P {:.6e}",
        last.step,
        last.temperature,
        last.potential_energy,
        last.kinetic_energy,
        last.total_energy,
        last.pressure
    );
    let truncated_lj = !sim.spec.lj.is_off() && !sim.spec.lj.shift;
    match sim.spec.integrator.method {
        Method::VelocityVerlet => println!(
            "conserved energy{} {:.8e} -> {:.8e}: relative drift {:.2e}",
            if truncated_lj {
                " (truncated pairs counted as shifted)"
            } else {
                ""
            },
            first.conserved_energy,
            last.conserved_energy,
            (last.conserved_energy - first.conserved_energy) / first.conserved_energy.abs()
        ),
        // The thermostat exchanges energy with the bath: there is no conserved energy to
        // report a drift of, only where the temperature went.
        Method::Langevin { temperature, .. } => println!(
            "Langevin thermostat at {}: temperature {:.4} -> {:.4} (no conserved energy)",
            match units {
                Units::Physical => format!("{temperature} K"),
                Units::Lj => format!("T* = {temperature}"),
            },
            first.temperature,
            last.temperature
        ),
    }
    let st = sim.stats();
    println!(
        "{} atoms, {} steps in {:.3} s: {}, {:.1} steps/s, {:.3e} atom-steps/s ({} neighbor builds)",
        sim.n_atoms(),
        steps,
        secs,
        rate,
        sps,
        sps * n,
        st.neighbor_builds
    );
    Ok(())
}

/// The LAMMPS in.lj workload with about `atoms` atoms (the nearest 4·n³).
/// NVE energy record of the bench workload: total energy (LJ truncated, not shifted, as
/// LAMMPS and OpenMM report it) and the shifted-pair energy the dynamics conserves, every
/// `energy_every` steps, with least-squares drift and the largest excursion from the start.
/// `first`: the state after the warm-up, already read back.
fn energy_trace(ctx: &GpuContext, sim: &mut Simulation, b: &LjBench, first: &Thermo) -> Result<()> {
    let n = sim.n_atoms() as f64;
    let mut rows: Vec<(u64, f64, f64)> = Vec::new();
    rows.push((0, first.total_energy / n, first.conserved_energy / n));
    let t0 = Instant::now();
    let mut done = 0;
    while done < b.steps {
        let k = b.energy_every.min(b.steps - done);
        let o = sim.advance(k, true)?.expect("sampled");
        done += k;
        rows.push((done, o.total_energy / n, o.conserved_energy / n));
    }
    let secs = t0.elapsed().as_secs_f64();
    let fit = |col: fn(&(u64, f64, f64)) -> f64| {
        let m = rows.len() as f64;
        let (sx, sy) = rows
            .iter()
            .fold((0.0, 0.0), |(a, c), r| (a + r.0 as f64, c + col(r)));
        let (mx, my) = (sx / m, sy / m);
        let (sxy, sxx) = rows.iter().fold((0.0, 0.0), |(a, c), r| {
            let dx = r.0 as f64 - mx;
            (a + dx * (col(r) - my), c + dx * dx)
        });
        let slope = sxy / sxx.max(1e-300);
        let e0 = col(&rows[0]);
        let max_dev = rows.iter().map(|r| (col(r) - e0).abs()).fold(0.0, f64::max);
        (slope * 1000.0, max_dev)
    };
    let (drift_total, dev_total) = fit(|r| r.1);
    let (drift_cons, dev_cons) = fit(|r| r.2);
    let out = serde_json::json!({
        "adapter": ctx.info.name,
        "backend": format!("{:?}", ctx.info.backend),
        "atoms": sim.n_atoms(),
        "steps": b.steps,
        "energy_every": b.energy_every,
        "precision": if sim.mixed_precision() { "mixed" } else { "f32" },
        "skin": b.skin,
        "wgmd_commit": env!("WGMD_COMMIT"),
        "seconds_with_readbacks": secs,
        "units": "lj (energy per atom in epsilon)",
        "total_drift_per_atom_per_1000_steps": drift_total,
        "total_max_excursion_per_atom": dev_total,
        "conserved_drift_per_atom_per_1000_steps": drift_cons,
        "conserved_max_excursion_per_atom": dev_cons,
        "trace": rows.iter().map(|r| [r.0 as f64, r.1, r.2]).collect::<Vec<_>>(),
    });
    println!("{out}");
    Ok(())
}

pub fn lj_bench_spec(atoms: u64) -> SimSpec {
    SimSpec::lammps_in_lj(((atoms as f64 / 4.0).cbrt().round() as usize).max(3))
}

fn bench_lj(gpu: &GpuOptions, b: &LjBench) -> Result<()> {
    let (steps, json) = (b.steps, b.json);
    let ctx = GpuContext::new(gpu)?;
    let mut spec = lj_bench_spec(b.atoms);
    spec.skin = b.skin;
    if b.shuffle {
        spec.system.shuffle(2027);
    }
    spec.neighbor_mode = b.neighbor.parse()?;
    let mut sim = Simulation::new(ctx.clone(), spec)?;
    sim.set_mixed_precision(b.precision == Precision::Mixed)?;
    if let Some(k) = b.check_every {
        sim.set_check_every((k > 0).then_some(k))?;
    }
    let e0 = sim.advance(b.warmup, true)?.expect("sampled");
    if b.energy_every > 0 {
        return energy_trace(&ctx, &mut sim, b, &e0);
    }
    let before = sim.stats();
    let t0 = Instant::now();
    let e1 = sim.advance(steps, true)?.expect("sampled");
    let secs = t0.elapsed().as_secs_f64();
    let after = sim.stats();
    let [t_force, t_cells, t_list, _, _] = sim.time_parts(200)?;
    let t_build = t_cells + t_list;
    let per_step = secs / steps.max(1) as f64;
    let builds = (after.neighbor_builds - before.neighbor_builds) as f64;
    let n = sim.n_atoms() as f64;
    let out = serde_json::json!({
        "adapter": ctx.info.name,
        "backend": format!("{:?}", ctx.info.backend),
        "atoms": sim.n_atoms(),
        "steps": steps,
        "seconds": secs,
        "steps_per_s": steps as f64 / secs,
        "atom_steps_per_s": steps as f64 * n / secs,
        "precision": if sim.mixed_precision() { "mixed" } else { "f32" },
        "wgmd_commit": env!("WGMD_COMMIT"),
        "neighbor_builds": sim.stats().neighbor_builds,
        "check_every": sim.stats().check_every,
        "missed_replays": after.missed_replays - before.missed_replays,
        "host_encode_s": after.encode_seconds - before.encode_seconds,
        "host_wait_s": after.wait_seconds - before.wait_seconds,
        "lj_threads_per_atom": sim.lj_threads_per_atom(),
        // The list's layout and rebuild rule (A/B switches WGMD_SPLIT_ROWS, WGMD_PAIR_REBUILD).
        "list_layout": (sim.neighbor_mode() == wgmd::engine::NeighborMode::Verlet)
            .then(|| format!("{:?}", sim.neighbor_layout())),
        "rebuild_by_pairs": sim.rebuilds_by_pairs(),
        "pair_cap": sim.pair_cap(),
        "neighbor_builds_timed": after.neighbor_builds - before.neighbor_builds,
        "skin": b.skin,
        "shuffled": b.shuffle,
        "neighbor_mode": format!("{:?}", sim.neighbor_mode()).to_lowercase(),
        "gpu_bytes": sim.gpu_bytes(),
        "gpu_bytes_per_atom": sim.gpu_bytes() as f64 / n,
        // Where a step's time goes (µs): forces and one rebuild timed alone (200 repetitions
        // each), rebuilds amortised over the timed steps, the rest (integration, decisions,
        // barriers) by difference.
        "us_per_step": per_step * 1e6,
        "us_forces": t_force * 1e6,
        "us_per_rebuild": t_build * 1e6,
        "us_cell_list": t_cells * 1e6,
        "us_neighbor_build": t_list * 1e6,
        "us_rebuild_per_step": t_build * 1e6 * builds / steps.max(1) as f64,
        "us_rest_per_step": (per_step - t_force - t_build * builds / steps.max(1) as f64) * 1e6,
        "energy_per_atom_start": e0.total_energy / n,
        "energy_per_atom_end": e1.total_energy / n,
        "units": "lj",
    });
    if json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
