//! The GPU-resident simulation: buffers, the step loop and its safety nets.
//!
//! One MD step = integrator opening kernel (kick + drift) → `decide` (rebuild or not, on the GPU) → indirect
//! cell-list + neighbor-list rebuild (zero workgroups when not needed) → forces → closing half
//! kick. The rebuild dispatches can be encoded only every `check_every` steps (default 1;
//! adaptive: ~70 % of the list lifetime seen so far); the steps between only verify the list,
//! and a batch in which the list went stale is undone and replayed with opportunities twice
//! as often. A batch of steps is one command buffer holding one compute pass; the host reads back
//! only a 64-byte status/observables record after the batch. Before each batch the state is
//! snapshotted on the GPU, so a neighbor-list overflow found afterwards is undone, the list is
//! regrown and the batch replayed: no step ever runs with dropped neighbors.

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::forces::ani::{AniForce, AniSpec, MAX_ANG_NEIGHBORS};
use crate::forces::coulomb::{self, CoulombForce, CoulombMethod, CoulombSpec};
use crate::forces::drag::DragForce;
use crate::forces::lj::{LjForce, LjSpec, LjTable};
use crate::forces::pme::PmeForce;
use crate::forces::spread_tile::{self, TilePlan};
use crate::gpu::params::{status, Params};
use crate::gpu::{self, GpuContext};
use crate::integrate::{Integrator, IntegratorKernels, Method};
use crate::neighbor::cell_list::{self, CellGrid, CellList, Launch};
pub use crate::neighbor::NeighborMode;
use crate::neighbor::{self, BuildPlan, ListLayout, NeighborKernels, PairRule};
use crate::observe::{self, Reducer, Thermo};
use crate::system::System;
use crate::units::Units;

/// Steering and non-blocking stepping for interactive hosts (the viewer).
pub mod live;

/// Everything a simulation is made from (plain data; configs and tests build it).
#[derive(Clone, Debug)]
pub struct SimSpec {
    pub system: System,
    pub units: Units,
    /// Lennard-Jones parameters; [`LjSpec::off`] when the run has no LJ term.
    pub lj: LjSpec,
    /// ANI neural-network potential (physical units only; not combined with LJ).
    pub ani: Option<AniSpec>,
    /// Coulomb interactions (charges from `system.charges`); LJ and Coulomb then run in one
    /// fused kernel (`forces::coulomb`).
    pub coulomb: Option<CoulombSpec>,
    /// Verlet skin (length units).
    pub skin: f64,
    /// Verlet list or cell list only (see [`NeighborMode`]).
    pub neighbor_mode: NeighborMode,
    pub integrator: Integrator,
}

impl SimSpec {
    /// The LAMMPS `bench/in.lj` workload on `cells`³ fcc unit cells (4·cells³ atoms):
    /// ρ* = 0.8442, T* = 1.44 (seed 87287), LJ truncated at 2.5σ, skin 0.3σ, dt 0.005τ, NVE.
    pub fn lammps_in_lj(cells: usize) -> SimSpec {
        let a = crate::system::Lattice::Fcc.constant_for_density(0.8442);
        let mut system =
            crate::system::lattice_system(crate::system::Lattice::Fcc, [cells; 3], a, "A", 1.0);
        system.maxwell_boltzmann(1.44, 87287, Units::Lj);
        SimSpec {
            system,
            units: Units::Lj,
            lj: LjSpec {
                cutoff: 2.5,
                shift: false,
                tail: false,
                sigma: vec![1.0],
                epsilon: vec![1.0],
                pairs: vec![],
            },
            ani: None,
            coulomb: None,
            skin: 0.3,
            neighbor_mode: NeighborMode::Auto,
            integrator: Integrator {
                dt: 0.005,
                method: Method::VelocityVerlet,
            },
        }
    }

    /// Checks the parameters that the GPU code relies on; names what is wrong.
    pub fn validate(&self) -> Result<()> {
        self.system.validate()?;
        self.integrator.validate()?;
        let half = self
            .system
            .box_lengths
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min)
            / 2.0;
        if let Some(ani) = &self.ani {
            if !self.lj.is_off() {
                bail!(
                    "forces.lj and forces.ani together are not supported: choose one force field"
                );
            }
            if self.units != Units::Physical {
                bail!("ANI potentials need units = \"physical\" (Å, fs, eV)");
            }
            let rc = ani.model.aev.rcr;
            if rc > half {
                bail!(
                    "the ANI radial cutoff ({rc} Å) is larger than half the shortest box edge \
                     ({half} Å); the GPU path uses minimum images, so periodic boxes need every \
                     edge >= {} Å",
                    2.0 * rc
                );
            }
        }
        if self.neighbor_mode == NeighborMode::Cells
            && (self.ani.is_some() || self.coulomb.is_some())
        {
            bail!(
                "neighbor.mode = \"cells\" (no Verlet list) is implemented for Lennard-Jones \
                 only; ANI and Coulomb need mode \"verlet\" or \"auto\""
            );
        }
        if let Some(c) = &self.coulomb {
            if self.ani.is_some() {
                bail!("forces.coulomb and forces.ani together are not supported");
            }
            coulomb::validate(c, &self.system)?;
        }
        if self.lj.cutoff > half {
            bail!(
                "forces.lj.cutoff = {} is larger than half the shortest box edge ({half}); \
                 minimum-image forces need cutoff <= L/2: use a bigger box or a shorter cutoff",
                self.lj.cutoff
            );
        }
        if !(self.skin.is_finite() && self.skin >= 0.0) {
            bail!(
                "neighbor.skin is {}; it must be zero or positive",
                self.skin
            );
        }
        if self.lj.sigma.len() != self.system.type_names.len() {
            bail!(
                "internal: LJ parameters for {} types, system has {}",
                self.lj.sigma.len(),
                self.system.type_names.len()
            );
        }
        if self.system.len() >= (u32::MAX / 2) as usize {
            bail!("{} atoms is more than wgmd can index", self.system.len());
        }
        Ok(())
    }
}

struct Buffers {
    params: wgpu::Buffer,
    pos: wgpu::Buffer,
    vel: wgpu::Buffer,
    /// Low words of mixed-precision positions and velocities (16-byte placeholders in f32).
    pos_lo: wgpu::Buffer,
    vel_lo: wgpu::Buffer,
    force: wgpu::Buffer,
    atom_virial: wgpu::Buffer,
    ref_pos: wgpu::Buffer,
    status: wgpu::Buffer,
    cell_count: wgpu::Buffer,
    cell_start: wgpu::Buffer,
    block_sum: wgpu::Buffer,
    atom_cell: wgpu::Buffer,
    atom_rank: wgpu::Buffer,
    cell_atoms: wgpu::Buffer,
    /// Positions in cell-slot order, refreshed before every force evaluation (rows by slot).
    slot_pos: wgpu::Buffer,
    cell_unsorted: wgpu::Buffer,
    cell_pos: wgpu::Buffer,
    nbr_list: wgpu::Buffer,
    nbr_count: wgpu::Buffer,
    indirect_template: wgpu::Buffer,
    indirect: wgpu::Buffer,
    /// Rebuild by pairs (`pair_check` in shaders/neighbor.wgsl): the check's indirect
    /// dispatch arguments, then the atoms that may have passed skin/2 this step
    /// (`neighbor::pair_list_words`).
    pair_list: wgpu::Buffer,
    partials: wgpu::Buffer,
    observables: wgpu::Buffer,
    snap_pos: wgpu::Buffer,
    snap_vel: wgpu::Buffer,
    snap_force: wgpu::Buffer,
    snap_status: wgpu::Buffer,
    snap_pos_lo: wgpu::Buffer,
    snap_vel_lo: wgpu::Buffer,
    /// False in cell-list mode (the snap_* atom buffers are then placeholders).
    has_snapshots: bool,
    staging: wgpu::Buffer,
}

impl Buffers {
    /// Copies the state a batch may have to be undone to (positions, velocities, forces,
    /// status) into the snapshot buffers (`save`), or back (`!save`).
    fn encode_snapshot(&self, enc: &mut wgpu::CommandEncoder, save: bool) {
        if !self.has_snapshots {
            return;
        }
        for (live, snap) in [
            (&self.pos, &self.snap_pos),
            (&self.vel, &self.snap_vel),
            (&self.force, &self.snap_force),
            (&self.status, &self.snap_status),
            (&self.pos_lo, &self.snap_pos_lo),
            (&self.vel_lo, &self.snap_vel_lo),
        ] {
            let size = snap.size().min(live.size());
            if save {
                enc.copy_buffer_to_buffer(live, 0, snap, 0, size);
            } else {
                enc.copy_buffer_to_buffer(snap, 0, live, 0, size);
            }
        }
    }

    /// Name → buffer, matching the WGSL variable names that kernels bind by.
    fn named(&self) -> Vec<(&'static str, &wgpu::Buffer)> {
        vec![
            ("P", &self.params),
            ("pos", &self.pos),
            ("vel", &self.vel),
            ("pos_lo", &self.pos_lo),
            ("vel_lo", &self.vel_lo),
            ("force", &self.force),
            ("atom_virial", &self.atom_virial),
            ("ref_pos", &self.ref_pos),
            ("status", &self.status),
            ("cell_count", &self.cell_count),
            ("cell_start", &self.cell_start),
            ("block_sum", &self.block_sum),
            ("atom_cell", &self.atom_cell),
            ("atom_rank", &self.atom_rank),
            ("cell_atoms", &self.cell_atoms),
            ("slot_pos", &self.slot_pos),
            ("cell_unsorted", &self.cell_unsorted),
            ("cell_pos", &self.cell_pos),
            ("nbr_list", &self.nbr_list),
            ("nbr_count", &self.nbr_count),
            ("indirect_template", &self.indirect_template),
            ("indirect", &self.indirect),
            ("pair_list", &self.pair_list),
            ("pair_list_ro", &self.pair_list),
            ("partials", &self.partials),
            ("observables", &self.observables),
        ]
    }
}

/// Bytes of the status + observables record read back after each batch.
const STAGING_BYTES: u64 = (status::LEN * 4 + 16) as u64;

/// Counters the engine keeps for reports and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineStats {
    pub neighbor_builds: u32,
    pub neighbor_capacity: u32,
    pub max_neighbors: u32,
    pub regrows: u32,
    /// Batches replayed because a step between rebuild opportunities outran the skin.
    pub missed_replays: u32,
    /// Steps between rebuild opportunities used by the last batch.
    pub check_every: u32,
    /// Host seconds spent recording and submitting batches (encoding is CPU work the GPU
    /// waits for: the next batch is recorded only after the previous one is read back).
    pub encode_seconds: f64,
    /// Host seconds spent waiting for batches to finish on the GPU.
    pub wait_seconds: f64,
}

/// Largest number of steps between rebuild opportunities the adaptive policy picks.
const MAX_CHECK_EVERY: u32 = 16;

/// How PME's charge spread runs where its grid is summed with f32 atomics
/// ([`Simulation::set_spread_mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpreadMode {
    /// A dispatch of its own after real space (`shaders/pme_float.wgsl`; always possible).
    Separate,
    /// Its workgroups interleaved with real space's in one dispatch (`forces::coulomb_spread`).
    Interleaved,
    /// By blocks of cells, summed in workgroup memory first, right after real space
    /// (`forces::spread_tile`): the default where it applies.
    Tiled,
}

/// The tiled spread's plan for this system (rows by slot only), where real space runs one
/// thread per atom (`threads_per_atom` 1: 262,144 atoms and more, `gpu::threads_per_atom_for`).
/// Measured on the H200 (BENCHMARKS.md, Coulomb, fifteenth session, call 5), steps/s tiled /
/// interleaved: 2,097,152 ions 300 / —, 262,144 ions 2,024–2,030 / 1,954–1,957 (tenth
/// session, before the splines were computed where used: 1,705 / 1,836), 32,768 ions (8
/// threads per atom) 9,013–9,170 / 9,596–9,642 (there the interleave hides the spread
/// behind real space).
fn tile_plan(
    grid: &CellGrid,
    spec: &SimSpec,
    sys: &System,
    pme: &PmeForce,
    limits: &wgpu::Limits,
    threads_per_atom: u32,
) -> Option<TilePlan> {
    // WGMD_TILE_SPREAD=0 never tiles, =1 tiles whatever the size (A/B runs).
    let forced = std::env::var("WGMD_TILE_SPREAD").is_ok_and(|v| v == "1");
    if crate::neighbor::switched_off("WGMD_TILE_SPREAD") || (threads_per_atom > 1 && !forced) {
        return None;
    }
    spread_tile::plan(
        grid,
        sys.box_lengths,
        &pme.params(),
        spec.skin,
        &sys.charges,
        spread_tile::tile_words(limits),
    )
}

/// Fuses PME's spread with real space: tiled where `tile` is given and builds, else
/// interleaved; a device that cannot build either (short of storage-buffer slots, 15, or of
/// workgroup memory) keeps the separate dispatches.
fn set_spread(
    k: &mut CoulombForce,
    ctx: &GpuContext,
    p: &PmeForce,
    tile: Option<TilePlan>,
) -> Result<()> {
    if tile.is_some() {
        match k.fuse_spread(ctx, Some(p), tile) {
            Ok(()) => return Ok(()),
            Err(e) => log::info!("PME's spread is not tiled: {e:#}"),
        }
    }
    if let Err(e) = k.fuse_spread(ctx, Some(p), None) {
        log::info!("PME's spread stays a dispatch of its own: {e:#}");
        k.fuse_spread(ctx, None, None)?;
    }
    Ok(())
}

pub struct Simulation {
    pub ctx: Arc<GpuContext>,
    pub spec: SimSpec,
    pub table: LjTable,
    params: Params,
    grid: CellGrid,
    bufs: Buffers,
    cells: CellList,
    nbr: NeighborKernels,
    lj: LjForce,
    ani: Option<AniForce>,
    coul: Option<CoulombForce>,
    pme: Option<PmeForce>,
    integ: IntegratorKernels,
    reduce: Reducer,
    step: u64,
    stats: EngineStats,
    /// The viewer's mouse spring, dispatched after the forces while set (see `live`).
    drag: Option<DragForce>,
    /// Steps between rebuild opportunities fixed by the user; None = adaptive.
    fixed_check_every: Option<u32>,
    /// Rebuild by pairs: the check's cap (`set_pair_cap`; `pair_list` holds that many atoms).
    pair_cap: u32,
    /// Rebuild by pairs chosen (`set_rebuild_by_pairs`, `WGMD_PAIR_REBUILD`), not the default
    /// that follows `set_check_every` (`default_rebuild_by_pairs`).
    pairs_chosen: bool,
    /// Adaptive ceiling on check_every: halved by a replayed batch, +1 per clean one.
    check_cap: u32,
    /// Steps between rebuild opportunities for the batches recorded next (the GPU's copy,
    /// `params.check_every`, follows when such a batch is submitted).
    check_every: u32,
    /// Forces straight from the cell list, no Verlet list (`NeighborMode::Cells`, resolved).
    from_cells: bool,
    /// Mixed precision: double-f32 positions and velocities in the integrator.
    pub(crate) mixed: bool,
    /// Energies at every step, not only at the last of a batch (`WGMD_ENERGY_EVERY_STEP=1`,
    /// an A/B switch for benchmarks).
    energy_every_step: bool,
}

/// Steps between neighbor-rebuild opportunities unless the user fixes them. Every step that
/// is no opportunity skips the rebuild's eight (indirect, mostly empty) dispatches; every
/// opportunity skipped can make the rebuild come earlier than needed (the forecast in
/// `decide`). Measured on an H200 (BENCHMARKS.md, Coulomb, sixth session, call 6): every 4
/// steps is 7 % faster for molten NaCl at 32,768 ions and 20 % for LJ at 32,000 atoms; at
/// 256,000+ atoms the extra rebuilds cost more (LJ −15 % at 256,000 with 4, Coulomb −3 % at
/// 2,097,152), so large systems keep an opportunity at every step. Adaptive is opt-in.
pub fn default_check_every(n_atoms: u32) -> u32 {
    if n_atoms < 131_072 {
        4
    } else {
        1
    }
}

/// Whether the Verlet list is rebuilt by pairs (`neighbor::PairRule`) unless the user says: for
/// Coulomb systems of ≥ 131,072 atoms (`default_check_every` = 1) while opportunities come at every
/// step (`check_every`: the steps between them, fixed, or None = adaptive). Measured on an H200
/// (BENCHMARKS.md, eighteenth session): molten NaCl with PME 3 % faster at 262,144 ions and 4 % at
/// 2,097,152 (builds 119 → 72 and 23 → 15); at 32,768 ions, with opportunities every 4 steps, 10 %
/// slower — the forecasts over the 3 steps between opportunities list many more atoms, and their
/// checks cost more than the builds they save. LJ-only systems keep the largest-displacement rule
/// until measured (a device A/B is prepared, not yet run). `WGMD_PAIR_REBUILD=1` or `=0` overrides
/// it (A/B runs).
pub fn default_rebuild_by_pairs(n_atoms: u32, coulomb: bool, check_every: Option<u32>) -> bool {
    match pair_rebuild_override() {
        Some(on) => on,
        None => coulomb && default_check_every(n_atoms) == 1 && check_every == Some(1),
    }
}

/// `WGMD_PAIR_REBUILD=1` / `=0`: rebuild by pairs, or not, whatever the defaults say.
fn pair_rebuild_override() -> Option<bool> {
    match std::env::var("WGMD_PAIR_REBUILD").as_deref() {
        Ok("1") => Some(true),
        Ok("0") => Some(false),
        _ => None,
    }
}

/// The largest force cutoff squared, as the f32 the force kernels compare with: split rows
/// (`neighbor::ListLayout::BySlotSplit`) put the entries closer at the build in front.
fn outer_cut2(table: &LjTable, coulomb: Option<&CoulombSpec>) -> f32 {
    let c = coulomb.map_or(0.0, |c| (c.cutoff * c.cutoff) as f32);
    table.max_cut2().max(c)
}

/// Rebuild by pairs: the pair check's cells per side (`neighbor::pair_reach`) on this grid,
/// from the list cutoff (every force term's cutoff + skin, ANI's too).
fn pair_rule_of(grid: &CellGrid, params: &Params, skin: f64, cap: u32) -> PairRule {
    let edge = grid
        .scale
        .iter()
        .map(|s| 1.0 / s)
        .fold(f64::INFINITY, f64::min);
    let cutoff = (params.list_cut2 as f64).sqrt() - skin;
    PairRule::new(cutoff, skin, edge, cap)
}

/// A batch recorded ahead of its submission.
struct Recorded {
    cmd: wgpu::CommandBuffer,
    n: u32,
    sample: bool,
    every: u32,
}

fn storage_indirect(ctx: &GpuContext, label: &str, words: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (words * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::INDIRECT
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl Simulation {
    pub fn new(ctx: Arc<GpuContext>, spec: SimSpec) -> Result<Simulation> {
        let mut sim = Self::new_unbuilt(ctx, spec)?;
        sim.rebuild_and_forces()?;
        Ok(sim)
    }

    /// Buffers and kernels, without the first neighbor build and forces (see `new` and
    /// `live::new_nonblocking`).
    fn new_unbuilt(ctx: Arc<GpuContext>, spec: SimSpec) -> Result<Simulation> {
        spec.validate()?;
        let mut sys = spec.system.clone();
        sys.wrap();
        let n = sys.len() as u32;
        let table = LjTable::new(&spec.lj)?;
        let force_cut = match (&spec.ani, &spec.coulomb) {
            (Some(a), _) => a.model.aev.rcr,
            (None, Some(c)) => table.cutoff.max(c.cutoff),
            (None, None) => table.cutoff,
        };
        let list_cut = force_cut + spec.skin;
        let capacity = neighbor::initial_capacity(&sys, list_cut);
        let list_bytes = 4 * sys.len() as u64 * capacity as u64;
        let max_binding = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        let from_cells = match spec.neighbor_mode {
            NeighborMode::Cells => true,
            NeighborMode::Verlet => false,
            NeighborMode::Auto => {
                let lj_only = spec.ani.is_none() && spec.coulomb.is_none();
                let too_big = list_bytes > max_binding;
                if lj_only && too_big {
                    log::info!(
                        "a Verlet list for {n} atoms needs {} MiB, more than one storage \
                         binding ({} MiB): forces come straight from the cell list",
                        list_bytes >> 20,
                        max_binding >> 20
                    );
                }
                lj_only && too_big
            }
        };
        // Forces straight from the cells visit whole cells every step: the large ones.
        // WGMD_CELL_REACH=1 keeps them for the Verlet build too (A/B switch).
        let grid = if from_cells || std::env::var("WGMD_CELL_REACH").is_ok_and(|v| v == "1") {
            CellGrid::new(sys.box_lengths, list_cut)
        } else {
            CellGrid::for_cutoff(sys.box_lengths, list_cut)
        };
        // Cell-list mode keeps no list, so nothing can overflow and (rebuild opportunities
        // at every step) nothing goes stale: no batch is ever undone, no snapshots needed.
        let (capacity, per_atom_list, snap_atoms) = if from_cells {
            (0, 0, 0)
        } else {
            (capacity, capacity as u64, n as u64)
        };
        let units = spec.units;
        let (lang_c1, lang_kt, seed) = match spec.integrator.method {
            Method::Langevin {
                temperature, seed, ..
            } => (spec.integrator.c1(), units.kb() * temperature, seed),
            Method::VelocityVerlet => (1.0, 0.0, 0),
        };
        let l = sys.box_lengths;
        let params = Params {
            // w: an opaque 1.0 for the mixed-precision integrator (see `ds_add`).
            box_len: [l[0] as f32, l[1] as f32, l[2] as f32, 1.0],
            inv_box: [
                (1.0 / l[0]) as f32,
                (1.0 / l[1]) as f32,
                (1.0 / l[2]) as f32,
                0.0,
            ],
            cell_scale: [
                grid.scale[0] as f32,
                grid.scale[1] as f32,
                grid.scale[2] as f32,
                grid.reach as f32,
            ],
            cell_dims: [grid.dims[0], grid.dims[1], grid.dims[2], grid.n_cells()],
            n_atoms: n,
            n_types: table.n_types as u32,
            nbr_capacity: capacity,
            n_blocks: grid.n_blocks(),
            list_cut2: (list_cut * list_cut) as f32,
            half_skin2: (0.25 * spec.skin * spec.skin) as f32,
            max_force2: {
                let fmax = spec.ani.as_ref().map_or(table.max_force(), |a| a.max_force);
                let fmax = fmax.max(
                    spec.coulomb
                        .as_ref()
                        .map_or(0.0, |c| coulomb_max_force(c, &sys)),
                );
                (fmax * fmax).min(f32::MAX as f64) as f32
            },
            dt: spec.integrator.dt as f32,
            ftm2v: units.ftm2v() as f32,
            mvv2e: units.mvv2e() as f32,
            lang_c1: lang_c1 as f32,
            lang_kt: lang_kt as f32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            n_partials: observe::partials_for(n),
            check_every: 1,
        };
        let pos: Vec<[f32; 4]> = (0..sys.len())
            .map(|i| {
                let p = sys.positions[i];
                [
                    p[0] as f32,
                    p[1] as f32,
                    p[2] as f32,
                    f32::from_bits(sys.types[i]),
                ]
            })
            .collect();
        let vel: Vec<[f32; 4]> = (0..sys.len())
            .map(|i| {
                let v = sys.velocities[i];
                [
                    v[0] as f32,
                    v[1] as f32,
                    v[2] as f32,
                    (1.0 / sys.mass(i)) as f32,
                ]
            })
            .collect();
        let nu = n as u64;
        // Threads per atom of the neighbor build and the LJ kernel (small systems: several).
        // `WGMD_TPA=T` pins it (A/B runs; a power of two from 1 to 64).
        let tpa = std::env::var("WGMD_TPA")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| gpu::threads_per_atom_for(n));
        // ANI's kernels index the list by atom; LJ and Coulomb take rows by cell slot where
        // the adapter lets their kernels bind the extra buffers (not within WebGPU's default
        // 8 storage buffers per stage: browsers keep rows by atom).
        let slots_possible = !from_cells
            && spec.ani.is_none()
            && ctx.limits.max_storage_buffers_per_shader_stage >= neighbor::SLOT_ROWS_MIN_STORAGE;
        let layout = if slots_possible {
            ListLayout::default_with_slots(tpa)
        } else {
            ListLayout::ByAtom
        };
        let slot_rows = layout.slot_rows();
        let plan = BuildPlan::new(n, tpa, layout, outer_cut2(&table, spec.coulomb.as_ref()))?;
        let ncell = grid.n_cells() as u64;
        let c = &ctx;
        let mut st = vec![0u32; status::LEN];
        st[status::BLOWUP_ATOM] = u32::MAX;
        let pair_cap = neighbor::pair_cap(n);
        let bufs = Buffers {
            params: c.uniform("params", &params),
            pos: c.storage_init("pos", &pos)?,
            vel: c.storage_init("vel", &vel)?,
            pos_lo: c.storage("pos_lo", 0)?,
            vel_lo: c.storage("vel_lo", 0)?,
            force: c.storage("force", 16 * nu)?,
            atom_virial: c.storage("atom_virial", 8 * nu)?,
            ref_pos: c.storage("ref_pos", 16 * nu)?,
            status: c.storage_init("status", &st)?,
            cell_count: c.storage("cell_count", 4 * ncell)?,
            cell_start: c.storage("cell_start", 4 * (ncell + 1))?,
            block_sum: c.storage("block_sum", 4 * grid.n_blocks() as u64)?,
            atom_cell: c.storage("atom_cell", 4 * nu)?,
            atom_rank: c.storage("atom_rank", 4 * nu)?,
            cell_atoms: c.storage("cell_atoms", 4 * nu)?,
            slot_pos: c.storage("slot_pos", if slot_rows { 16 * nu } else { 0 })?,
            cell_unsorted: c.storage("cell_unsorted", 4 * nu)?,
            cell_pos: c.storage("cell_pos", 16 * nu)?,
            nbr_list: c.storage("nbr_list", 4 * nu * per_atom_list)?,
            nbr_count: c.storage("nbr_count", if from_cells { 0 } else { 4 * nu })?,
            indirect_template: c.storage_init(
                "indirect_template",
                &cell_list::indirect_template(n, &grid, plan.groups),
            )?,
            indirect: storage_indirect(c, "indirect", cell_list::args::WORDS),
            pair_list: {
                let b = storage_indirect(c, "pair_list", neighbor::pair_list_words(pair_cap));
                c.queue
                    .write_buffer(&b, 0, bytemuck::cast_slice(&neighbor::pair_list_head()));
                b
            },
            partials: c.storage("partials", 16 * params.n_partials as u64)?,
            observables: c.storage("observables", 16)?,
            snap_pos: c.storage("snap_pos", 16 * snap_atoms)?,
            snap_vel: c.storage("snap_vel", 16 * snap_atoms)?,
            snap_force: c.storage("snap_force", 16 * snap_atoms)?,
            has_snapshots: !from_cells,
            snap_status: c.storage("snap_status", 4 * status::LEN as u64)?,
            snap_pos_lo: c.storage("snap_pos_lo", 0)?,
            snap_vel_lo: c.storage("snap_vel_lo", 0)?,
            staging: c.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: STAGING_BYTES,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let named = bufs.named();
        let cells = CellList::new(c, &named)?;
        // Rebuild by pairs (`default_rebuild_by_pairs`); lists only (the cell-list mode's
        // stencil relies on each atom's own displacement).
        let check_every = default_check_every(n);
        let pairs = (!from_cells
            && default_rebuild_by_pairs(n, spec.coulomb.is_some(), Some(check_every)))
        .then(|| pair_rule_of(&grid, &params, spec.skin, pair_cap));
        let mut nbr = NeighborKernels::new(c, plan, n, !from_cells, pairs)?;
        let mut lj = LjForce::new(c, &table, tpa, from_cells, layout)?;
        let mut ani = match &spec.ani {
            Some(a) => Some(AniForce::new(c, a, &sys.types, units.ani_energy_scale())?),
            None => None,
        };
        let mut coul = match &spec.coulomb {
            Some(cs) => Some(CoulombForce::new(c, &sys, &table, cs, tpa, layout)?),
            None => None,
        };
        let mut pme = match spec.coulomb.as_ref().map(|c| (&c.method, c.coulomb_k)) {
            Some((CoulombMethod::Pme(p), k)) => Some(PmeForce::new(c, n, sys.box_lengths, p, k)?),
            _ => None,
        };
        let mut integ = IntegratorKernels::new(
            c,
            &spec.integrator.method,
            false,
            nbr.pair_rule().map(|r| r.cap),
        )?;
        let mut reduce = Reducer::new(c, n)?;
        nbr.bind(c, &named)?;
        lj.bind(c, &named)?;
        if let Some(a) = ani.as_mut() {
            a.bind(c, &named)?;
        }
        if let Some(k) = coul.as_mut() {
            if let Some(p) = pme.as_ref().filter(|p| p.fusable()) {
                if !crate::neighbor::switched_off("WGMD_FUSE_SPREAD") {
                    let tile = tile_plan(&grid, &spec, &sys, p, &c.limits, tpa);
                    set_spread(k, c, p, tile)?;
                }
            }
            k.bind(c, &named)?;
            if let Some(p) = pme.as_mut() {
                let mut with_q = named.clone();
                with_q.push(("charge", &k.charge_buf));
                p.bind(c, &with_q)?;
            }
        }
        integ.bind(c, &named)?;
        reduce.bind(c, &named)?;
        drop(named);
        let mut sim = Simulation {
            ctx,
            spec,
            table,
            params,
            grid,
            bufs,
            cells,
            nbr,
            lj,
            ani,
            coul,
            pme,
            integ,
            reduce,
            step: 0,
            drag: None,
            fixed_check_every: Some(check_every),
            pair_cap,
            pairs_chosen: pair_rebuild_override().is_some(),
            check_cap: MAX_CHECK_EVERY,
            check_every,
            from_cells,
            mixed: false,
            energy_every_step: std::env::var("WGMD_ENERGY_EVERY_STEP").is_ok_and(|v| v == "1"),
            stats: EngineStats {
                neighbor_capacity: capacity,
                check_every,
                ..Default::default()
            },
        };
        sim.spec.system = sys;
        Ok(sim)
    }

    pub fn n_atoms(&self) -> usize {
        self.params.n_atoms as usize
    }
    pub fn step_count(&self) -> u64 {
        self.step
    }
    pub fn stats(&self) -> EngineStats {
        self.stats
    }
    pub fn units(&self) -> Units {
        self.spec.units
    }
    pub fn grid(&self) -> CellGrid {
        self.grid
    }

    fn launch_direct(&self) -> Launch<'static> {
        Launch::Direct {
            n_atoms: self.params.n_atoms,
            n_cells: self.grid.n_cells(),
            n_blocks: self.grid.n_blocks(),
        }
    }

    /// Host-driven full rebuild + force evaluation (setup and after a rollback); grows the
    /// neighbor list until it fits.
    fn rebuild_and_forces(&mut self) -> Result<()> {
        loop {
            let mut st: Vec<u32> = self.ctx.read_buffer(&self.bufs.status)?;
            st.truncate(status::LEN);
            st[status::MAX_DISP2] = 0;
            st[status::MAX_NBRS] = 0;
            st[status::FORCE_REBUILD] = 0;
            st[status::REBUILDS] += 1;
            st[status::LAST_BUILD] = st[status::STEP];
            st[status::MISSED] = 0;
            self.ctx
                .queue
                .write_buffer(&self.bufs.status, 0, bytemuck::cast_slice(&st));
            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                self.cells.encode(&mut pass, self.launch_direct());
                self.nbr.encode_build(&mut pass, self.launch_direct());
                self.encode_forces(&mut pass, true);
            }
            let st = self.submit_and_read(enc)?;
            // Overflow first: forces from a truncated list can look like a blow-up.
            if st.max_nbrs > self.params.nbr_capacity {
                self.regrow(st.max_nbrs)?;
                continue;
            }
            self.check_blowup(&st)?;
            self.note(&st);
            return Ok(());
        }
    }

    fn regrow(&mut self, needed: u32) -> Result<()> {
        let cap =
            ((needed as f64 * 1.25).ceil() as u32 + 8).next_multiple_of(neighbor::CAPACITY_STEP);
        log::info!(
            "neighbor list overflow ({needed} > {}): regrowing to {cap} per atom",
            self.params.nbr_capacity
        );
        self.set_neighbor_capacity(cap)?;
        self.stats.regrows += 1;
        Ok(())
    }

    /// The forces at the current positions; with `energy` also the per-atom energy and
    /// virial shares (`force.w`, `atom_virial`), else (Coulomb) zero real-space shares.
    fn encode_forces(&self, pass: &mut wgpu::ComputePass<'_>, energy: bool) {
        // With the spread fused, the slot positions come with PME's splines in one dispatch.
        let gathered = self.pme.is_some()
            && self
                .coul
                .as_ref()
                .is_some_and(|c| c.encode_gather_splines(pass));
        if !gathered {
            self.nbr.encode_gather(pass);
        }
        match (&self.ani, &self.coul) {
            (Some(a), _) => a.encode(pass),
            (None, Some(c)) => {
                // Tried (BENCHMARKS.md, Coulomb call 19): the real space split into seven
                // chunks placed between PME's dispatches, which share no written buffer with
                // them, hoping each would run beside a latency-bound FFT pass. The real-space
                // share of a step went 41 → 157 µs at 32,768 ions (520 → 1,289 at 262,144):
                // no overlap (the chunks likely lose their caches to the passes in between).
                let energy = energy || self.energy_every_step;
                match &self.pme {
                    // Real space and the charge spread in one dispatch (coulomb_spread.wgsl).
                    // The splines by slot: the FFTs, then the interpolation by slot.
                    Some(p) if c.spread_fused() && c.slot_splines() => {
                        c.encode(pass, energy);
                        p.encode_fft(pass, energy);
                        c.encode_slot_interp(pass, energy);
                    }
                    Some(p) if c.spread_fused() => {
                        if !gathered {
                            p.encode_splines(pass);
                        }
                        c.encode(pass, energy);
                        p.encode_after_spread(pass, energy);
                    }
                    Some(p) => {
                        c.encode(pass, energy);
                        p.encode(pass, energy);
                    }
                    None => c.encode(pass, energy),
                }
            }
            (None, None) => self.lj.encode(pass, self.params.n_atoms),
        }
    }

    /// Encodes `n` whole steps. Inside the batch each step's closing half kick is folded
    /// into the next step's opening kernel; the last one is a separate kick so velocities
    /// are at full steps when the batch ends (for sampling and the snapshot). Only the last
    /// step computes energies and virial (what sampling reads, and what `force.w` holds
    /// when a batch ends); the others need forces alone.
    fn encode_steps(&self, pass: &mut wgpu::ComputePass<'_>, n: u32, every: u32) {
        let atoms = self.params.n_atoms;
        let launch = Launch::Indirect(&self.bufs.indirect);
        let every = every.max(1);
        for s in 0..n {
            self.integ.encode_first(pass, atoms, s > 0);
            self.nbr.encode_pair_check(pass, &self.bufs.pair_list);
            let opportunity = s % every == 0;
            self.nbr.encode_decide(pass, opportunity);
            if opportunity {
                self.cells.encode(pass, launch);
                self.nbr.encode_build(pass, launch);
            }
            self.encode_forces(pass, s + 1 == n);
            if let Some(d) = &self.drag {
                d.encode(pass);
            }
        }
        if n > 0 {
            self.integ.encode_kick(pass, atoms);
        }
    }

    /// Largest number of steps per submission: keeps each command buffer well under GPU
    /// watchdog limits on desktops (~2e7 atom-steps) while amortising the per-batch sync.
    pub fn max_batch(&self) -> u32 {
        (20_000_000 / self.params.n_atoms.max(1)).clamp(1, 1000)
    }

    /// Runs `steps` MD steps; returns the thermodynamic state after the last one when `sample`.
    ///
    /// Recording a batch is CPU work of the same order as the GPU's (tens of µs per step for
    /// small systems), so the next batch is recorded while the GPU runs the current one and
    /// submitted once the current one has been read back and found valid; an invalid batch
    /// discards the pre-recorded one and is replayed.
    pub fn advance(&mut self, steps: u64, sample: bool) -> Result<Option<Thermo>> {
        let max = self.max_batch() as u64;
        let mut plan = Vec::new();
        let mut left = steps;
        while left > 0 || plan.is_empty() {
            let n = left.min(max);
            left -= n;
            plan.push((n as u32, sample && left == 0));
        }
        if steps == 0 && !sample {
            return Ok(None);
        }
        let mut out = None;
        let mut next: Option<Recorded> = None;
        let mut k = 0;
        while k < plan.len() {
            let cur = match next.take() {
                Some(r) => r,
                None => self.record_batch(plan[k].0, plan[k].1),
            };
            let Recorded {
                cmd,
                n,
                sample,
                every,
            } = cur;
            self.submit_recorded(every, cmd);
            if let Some(&(n, s)) = plan.get(k + 1) {
                next = Some(self.record_batch(n, s));
            }
            let (st, waited) = self.read_status()?;
            self.stats.wait_seconds += waited;
            match self.accept_batch(&st, n, sample)? {
                Some(t) => {
                    out = t;
                    k += 1;
                }
                // Undone: the pre-recorded batch started from the wrong state.
                None => next = None,
            }
        }
        Ok(out)
    }

    /// The current thermodynamic state (no steps taken).
    pub fn thermo(&mut self) -> Result<Thermo> {
        Ok(self.advance(0, true)?.expect("sampled"))
    }

    /// Records one batch: snapshot copies, `n` steps, the optional reduction and the copy of
    /// the status record to the staging buffer.
    fn record_batch(&mut self, n: u32, sample: bool) -> Recorded {
        let t0 = web_time::Instant::now();
        let every = self.check_every;
        let b = &self.bufs;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        b.encode_snapshot(&mut enc, true);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            self.encode_steps(&mut pass, n, every);
            if sample {
                self.reduce.encode(&mut pass);
            }
        }
        enc.copy_buffer_to_buffer(&b.status, 0, &b.staging, 0, 4 * status::LEN as u64);
        enc.copy_buffer_to_buffer(&b.observables, 0, &b.staging, 4 * status::LEN as u64, 16);
        let cmd = enc.finish();
        self.stats.encode_seconds += t0.elapsed().as_secs_f64();
        Recorded {
            cmd,
            n,
            sample,
            every,
        }
    }

    /// Submits a recorded batch, first giving the GPU the batch's check_every and a fresh
    /// list-lifetime estimate (queue writes land before the submitted commands).
    fn submit_recorded(&mut self, every: u32, cmd: wgpu::CommandBuffer) {
        self.sync_check_every(every);
        self.reset_lifetime();
        self.ctx.queue.submit([cmd]);
    }

    /// Makes the GPU's `check_every` the one the next submitted steps were encoded with.
    fn sync_check_every(&mut self, every: u32) {
        if self.params.check_every != every {
            self.params.check_every = every;
            self.ctx
                .queue
                .write_buffer(&self.bufs.params, 0, bytemuck::bytes_of(&self.params));
        }
    }

    /// Waits for the submitted batch and decodes its status record; also returns the wait.
    fn read_status(&self) -> Result<(StatusRecord, f64)> {
        let t0 = web_time::Instant::now();
        let b = &self.bufs;
        gpu::map_blocking(&self.ctx.device, &b.staging)?;
        let words: Vec<u32> = {
            let view = b
                .staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| anyhow::anyhow!("GPU readback failed: {e}"))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        b.staging.unmap();
        Ok((StatusRecord::from_words(&words), t0.elapsed().as_secs_f64()))
    }

    /// Judges a finished batch of `n` steps: None when it was undone (replay it), otherwise
    /// the sampled state if asked for.
    fn accept_batch(
        &mut self,
        st: &StatusRecord,
        n: u32,
        sample: bool,
    ) -> Result<Option<Option<Thermo>>> {
        // Overflow and a stale list first: a blow-up inside such a batch may be their artefact.
        if self.undo_if_invalid(st, true)? {
            return Ok(None);
        }
        self.check_blowup(st)?;
        self.adapt_check_every(st);
        self.note(st);
        self.step += n as u64;
        if st.step as u64 != self.step & 0xffff_ffff {
            bail!(
                "internal: GPU step counter {} disagrees with host {}",
                st.step,
                self.step
            );
        }
        Ok(Some(sample.then(|| self.to_thermo(st.obs))))
    }

    /// A batch is invalid when the neighbor list overflowed or a step between rebuild
    /// opportunities outran the skin. Then the whole batch is undone from its snapshot, the
    /// list rebuilt (and regrown, or opportunities offered at every step) and the caller
    /// replays it. Returns whether it undid the batch.
    fn undo_if_invalid(&mut self, st: &StatusRecord, blocking: bool) -> Result<bool> {
        let overflow = st.max_nbrs > self.params.nbr_capacity;
        if !overflow && !st.missed {
            return Ok(false);
        }
        if self.from_cells {
            bail!("internal: a cell-list-mode batch reported an overflow or a stale list");
        }
        let b = &self.bufs;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        b.encode_snapshot(&mut enc, false);
        self.ctx.queue.submit([enc.finish()]);
        if overflow {
            self.regrow(st.max_nbrs)?;
        }
        if st.missed {
            self.stats.missed_replays += 1;
            self.check_cap = (self.check_every / 2).max(1);
            self.set_check_every_now(self.check_cap);
        }
        if blocking {
            self.rebuild_and_forces()?;
        } else {
            self.submit_rebuild_and_forces();
        }
        Ok(true)
    }

    /// Fixes the steps between rebuild opportunities (default 1; None = adaptive). The
    /// result does not depend on it: a list that would go stale is caught and the batch
    /// replayed; only the number of dispatches per step changes.
    /// In cell-list mode it stays 1: there are no snapshots to replay a stale batch from.
    /// Unless rebuilds by pairs were chosen, their default follows (on for Coulomb from
    /// 131,072 atoms with opportunities at every step only: `default_rebuild_by_pairs`).
    pub fn set_check_every(&mut self, every: Option<u32>) -> Result<()> {
        if self.from_cells {
            return Ok(());
        }
        self.fixed_check_every = every.map(|e| e.max(1));
        self.set_check_every_now(self.fixed_check_every.unwrap_or(1));
        if !self.pairs_chosen {
            let on = default_rebuild_by_pairs(
                self.params.n_atoms,
                self.spec.coulomb.is_some(),
                self.fixed_check_every,
            );
            if on != self.rebuilds_by_pairs() {
                self.apply_rebuild_by_pairs(on)?;
            }
        }
        Ok(())
    }

    fn set_check_every_now(&mut self, every: u32) {
        self.check_every = every;
        self.stats.check_every = every;
    }

    /// Adaptive policy: the rebuilds of the last batch estimated how many steps a list lasts
    /// (ST_LIFETIME); offer a rebuild every 70 % of that, so most opportunities rebuild and few
    /// empty ones are paid for, under a ceiling that a replayed batch halves and each clean
    /// batch raises by one.
    fn adapt_check_every(&mut self, st: &StatusRecord) {
        if let Some(fixed) = self.fixed_check_every {
            self.set_check_every_now(fixed);
            return;
        }
        self.check_cap = (self.check_cap + 1).min(MAX_CHECK_EVERY);
        if st.lifetime.is_finite() {
            let target = ((0.7 * st.lifetime) as u32).clamp(1, self.check_cap);
            self.set_check_every_now(target);
        }
    }

    /// Starts a batch's list-lifetime estimate afresh (before its snapshot is taken).
    fn reset_lifetime(&self) {
        self.ctx.queue.write_buffer(
            &self.bufs.status,
            4 * status::LIFETIME as u64,
            bytemuck::bytes_of(&f32::INFINITY.to_bits()),
        );
    }

    fn note(&mut self, st: &StatusRecord) {
        self.stats.neighbor_builds = st.rebuilds;
        self.stats.max_neighbors = st.max_nbrs;
    }

    /// Submits `enc` with the status copy appended and waits for the record (setup and
    /// rebuilds outside the step loop).
    fn submit_and_read(&self, mut enc: wgpu::CommandEncoder) -> Result<StatusRecord> {
        let b = &self.bufs;
        enc.copy_buffer_to_buffer(&b.status, 0, &b.staging, 0, 4 * status::LEN as u64);
        enc.copy_buffer_to_buffer(&b.observables, 0, &b.staging, 4 * status::LEN as u64, 16);
        self.ctx.queue.submit([enc.finish()]);
        Ok(self.read_status()?.0)
    }

    fn check_blowup(&self, st: &StatusRecord) -> Result<()> {
        if st.blowup {
            let name = self.spec.system.type_names
                [self.spec.system.types[st.blowup_atom as usize] as usize]
                .clone();
            if st.crowded {
                bail!(
                    "at step {}: atom {} ({name}) has more than {MAX_ANG_NEIGHBORS} neighbors within the ANI \
                     angular cutoff ({} Å), more than the GPU kernels hold; atoms overlap (check the \
                     structure's units and density) or the simulation became unstable",
                    st.blowup_step,
                    st.blowup_atom as u64 + 1,
                    self.spec.ani.as_ref().map_or(0.0, |a| a.model.aev.rca),
                );
            }
            bail!(
                "the simulation became unstable at step {}: atom {} ({name}) has a non-finite force or one above \
                 {:.3e} (energy/length); atoms overlap or the time step is too large",
                st.blowup_step,
                st.blowup_atom as u64 + 1,
                self.spec.ani.as_ref().map_or(self.table.max_force(), |a| a.max_force),
            );
        }
        Ok(())
    }

    fn to_thermo(&self, obs: [f32; 4]) -> Thermo {
        let sys = &self.spec.system;
        let units = self.spec.units;
        let (mut tail_e, tail_w) = self.table.tail_corrections(sys);
        if let Some(a) = &self.spec.ani {
            // Constant self energies, summed in f64 (far too large for an f32 GPU sum).
            tail_e += a.self_energy(&sys.types) * units.ani_energy_scale();
        }
        let (mut const_e, mut const_w) = (0.0, 0.0);
        if let Some(c) = &self.spec.coulomb {
            let (eb, wb) = coulomb::background(c, sys);
            const_e = coulomb::self_energy(c, &sys.charges) + eb;
            const_w = wb;
        }
        let pe = obs[0] as f64 + tail_e + const_e;
        let ke = obs[1] as f64;
        let w = obs[2] as f64 + tail_w + const_w;
        let dof = self.spec.integrator.dof(sys.len());
        Thermo {
            step: self.step,
            time: self.step as f64 * self.spec.integrator.dt,
            temperature: 2.0 * ke / (dof * units.kb()),
            potential_energy: pe,
            kinetic_energy: ke,
            total_energy: pe + ke,
            pressure: (2.0 * ke + w) / (3.0 * sys.volume()) * units.pressure_factor(),
            virial: w,
            conserved_energy: pe + ke - obs[3] as f64,
        }
    }

    /// Positions (wrapped into the box), input order.
    pub fn positions(&self) -> Result<Vec<[f64; 3]>> {
        self.read_ds(&self.bufs.pos, &self.bufs.pos_lo)
    }
    pub fn velocities(&self) -> Result<Vec<[f64; 3]>> {
        self.read_ds(&self.bufs.vel, &self.bufs.vel_lo)
    }
    /// hi (+ lo in mixed precision) as float64.
    fn read_ds(&self, hi: &wgpu::Buffer, lo: &wgpu::Buffer) -> Result<Vec<[f64; 3]>> {
        let n = self.n_atoms();
        let hi = self.ctx.read_buffer::<[f32; 4]>(hi)?;
        let lo = if self.mixed {
            self.ctx.read_buffer::<[f32; 4]>(lo)?
        } else {
            vec![[0.0; 4]; n]
        };
        Ok(hi[..n]
            .iter()
            .zip(&lo[..n])
            .map(|(h, l)| std::array::from_fn(|k| h[k] as f64 + l[k] as f64))
            .collect())
    }

    /// Switches the integrator to mixed precision (OpenMM's "mixed": forces in f32,
    /// positions and velocities integrated as double-f32 sums, ~48 bits) or back. Before the
    /// first step the low words start from the float64 input; later from zero.
    pub fn set_mixed_precision(&mut self, mixed: bool) -> Result<()> {
        if mixed == self.mixed {
            return Ok(());
        }
        let n = self.n_atoms();
        let c = &self.ctx;
        if mixed {
            let fresh = self.step == 0;
            let lo = |v: &[[f64; 3]]| -> Vec<[f32; 4]> {
                v.iter()
                    .map(|p| {
                        let r = |k: usize| {
                            if fresh {
                                (p[k] - p[k] as f32 as f64) as f32
                            } else {
                                0.0
                            }
                        };
                        [r(0), r(1), r(2), 0.0]
                    })
                    .collect()
            };
            // The host copy was wrapped with the same box before upload, so its residuals
            // belong to the uploaded high words.
            self.bufs.pos_lo = c.storage_init("pos_lo", &lo(&self.spec.system.positions))?;
            self.bufs.vel_lo = c.storage_init("vel_lo", &lo(&self.spec.system.velocities))?;
            let snap = if self.bufs.has_snapshots {
                16 * n as u64
            } else {
                0
            };
            self.bufs.snap_pos_lo = c.storage("snap_pos_lo", snap)?;
            self.bufs.snap_vel_lo = c.storage("snap_vel_lo", snap)?;
        } else {
            for b in [
                &mut self.bufs.pos_lo,
                &mut self.bufs.vel_lo,
                &mut self.bufs.snap_pos_lo,
                &mut self.bufs.snap_vel_lo,
            ] {
                *b = c.storage("lo", 0)?;
            }
        }
        self.mixed = mixed;
        let mut integ = IntegratorKernels::new(
            c,
            &self.spec.integrator.method,
            mixed,
            self.nbr.pair_rule().map(|r| r.cap),
        )?;
        integ.bind(c, &self.bufs.named())?;
        self.integ = integ;
        Ok(())
    }

    pub fn mixed_precision(&self) -> bool {
        self.mixed
    }
    /// Forces of the current positions and each atom's share of the potential energy.
    pub fn forces(&self) -> Result<(Vec<[f64; 3]>, Vec<f64>)> {
        let raw = self.ctx.read_buffer::<[f32; 4]>(&self.bufs.force)?;
        let raw = &raw[..self.n_atoms()];
        Ok((
            raw.iter()
                .map(|f| [f[0] as f64, f[1] as f64, f[2] as f64])
                .collect(),
            raw.iter().map(|f| f[3] as f64).collect(),
        ))
    }
    /// The current neighbor rows (sorted), for tests against `neighbor::brute_force`.
    pub fn neighbor_rows(&self) -> Result<Vec<Vec<u32>>> {
        if self.from_cells {
            bail!("this simulation runs in cell-list mode: it keeps no Verlet list");
        }
        let n = self.n_atoms();
        let counts: Vec<u32> = self.ctx.read_buffer(&self.bufs.nbr_count)?;
        let list: Vec<u32> = self.ctx.read_buffer(&self.bufs.nbr_list)?;
        // Row r belongs to atom r, or to the atom in cell slot r.
        let layout = self.nbr.plan().layout;
        let slot_rows = layout.slot_rows();
        let owner: Vec<u32> = if slot_rows {
            self.ctx.read_buffer(&self.bufs.cell_atoms)?
        } else {
            (0..n as u32).collect()
        };
        let cap = self.params.nbr_capacity as usize;
        let mut rows = vec![None; n];
        for r in 0..n {
            let i = owner[r] as usize;
            let (ks, need) = layout.row_entries(counts[r], cap);
            if need > cap {
                bail!("atom {i} needs {need} neighbor slots, more than the capacity {cap}");
            }
            // Entries are atoms, or with rows by slot the slots of the neighbors.
            let mut row: Vec<u32> = ks
                .into_iter()
                .map(|k| list[layout.word(k, r, n)])
                .map(|e| {
                    if slot_rows {
                        owner.get(e as usize).copied().unwrap_or(u32::MAX)
                    } else {
                        e
                    }
                })
                .collect();
            row.sort_unstable();
            if i >= n || rows[i].replace(row).is_some() {
                bail!(
                    "the list's row owners are not a permutation of the atoms (row {r}: atom {i})"
                );
            }
        }
        Ok(rows.into_iter().map(|r| r.unwrap_or_default()).collect())
    }
    /// Split rows (`ListLayout::BySlotSplit`): each atom's count of entries in the row's
    /// front part (closer than the largest force cutoff at the build), for tests; None with
    /// another layout.
    pub fn neighbor_inner_counts(&self) -> Result<Option<Vec<u32>>> {
        if self.from_cells || !self.nbr.plan().layout.split() {
            return Ok(None);
        }
        let counts: Vec<u32> = self.ctx.read_buffer(&self.bufs.nbr_count)?;
        let owner: Vec<u32> = self.ctx.read_buffer(&self.bufs.cell_atoms)?;
        let mut inner = vec![0; self.n_atoms()];
        for (r, &i) in owner.iter().take(self.n_atoms()).enumerate() {
            inner[i as usize] = neighbor::split_counts(counts[r]).0;
        }
        Ok(Some(inner))
    }
    /// Fills every kernel output buffer with NaN bit patterns, then rebuilds the lists and
    /// recomputes forces: tests use it to prove kernels write everything they are read for.
    pub fn poison_and_recompute(&mut self) -> Result<()> {
        let b = &self.bufs;
        for buf in [
            &b.force,
            &b.atom_virial,
            &b.ref_pos,
            &b.cell_start,
            &b.block_sum,
            &b.atom_cell,
            &b.atom_rank,
            &b.cell_atoms,
            &b.cell_unsorted,
            &b.cell_pos,
            &b.slot_pos,
            &b.nbr_list,
            &b.nbr_count,
            &b.partials,
            &b.observables,
        ] {
            let junk = vec![0xffu8; buf.size() as usize];
            self.ctx.queue.write_buffer(buf, 0, &junk);
        }
        if let Some(a) = &self.ani {
            a.poison(&self.ctx);
        }
        if let Some(c) = &self.coul {
            c.poison(&self.ctx);
        }
        self.rebuild_and_forces()
    }

    /// Recomputes the forces at the current positions (list as it is) the way the steps that
    /// read no energy do (the last step of a batch computes energies too, so `advance` alone
    /// never leaves those steps' forces behind; tests read them after this).
    pub fn recompute_forces_without_energy(&mut self) -> Result<()> {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            self.encode_forces(&mut pass, false);
        }
        self.ctx.queue.submit([enc.finish()]);
        Ok(())
    }

    /// Replaces the neighbor capacity (tests use a tiny one to exercise overflow recovery;
    /// the next rebuild that needs more rolls back and regrows).
    pub fn set_neighbor_capacity(&mut self, cap: u32) -> Result<()> {
        if self.from_cells {
            bail!("this simulation runs in cell-list mode: it keeps no Verlet list");
        }
        let cap = cap.max(1).next_multiple_of(neighbor::CAPACITY_STEP);
        self.params.nbr_capacity = cap;
        self.bufs.nbr_list = self
            .ctx
            .storage("nbr_list", 4 * self.params.n_atoms as u64 * cap as u64)?;
        self.ctx
            .queue
            .write_buffer(&self.bufs.params, 0, bytemuck::bytes_of(&self.params));
        let named = self.bufs.named();
        self.nbr.bind(&self.ctx, &named)?;
        self.lj.bind(&self.ctx, &named)?;
        if let Some(a) = self.ani.as_mut() {
            a.bind(&self.ctx, &named)?;
        }
        if let Some(c) = self.coul.as_mut() {
            c.bind(&self.ctx, &named)?;
        }
        self.stats.neighbor_capacity = self.params.nbr_capacity;
        Ok(())
    }
    /// The resolved pair search: `Verlet` or `Cells` (never `Auto`).
    pub fn neighbor_mode(&self) -> NeighborMode {
        if self.from_cells {
            NeighborMode::Cells
        } else {
            NeighborMode::Verlet
        }
    }

    /// Bytes of GPU memory this simulation allocated: engine buffers, LJ tables, ANI's, the
    /// Coulomb term's and PME's buffers (PME's were left out before 2026-12-04's twelfth
    /// session, so Coulomb benches reported less than they used).
    pub fn gpu_bytes(&self) -> u64 {
        let b = &self.bufs;
        let engine: u64 = b
            .named()
            .iter()
            .map(|(_, buf)| buf.size())
            .chain(
                [
                    &b.snap_pos,
                    &b.snap_vel,
                    &b.snap_force,
                    &b.snap_status,
                    &b.snap_pos_lo,
                    &b.snap_vel_lo,
                    &b.staging,
                ]
                .iter()
                .map(|buf| buf.size()),
            )
            .sum();
        engine
            + self.lj.gpu_bytes()
            + self.ani.as_ref().map_or(0, |a| a.gpu_bytes())
            + self.coul.as_ref().map_or(0, |c| c.gpu_bytes())
            + self.pme.as_ref().map_or(0, |p| p.gpu_bytes())
    }

    /// The neighbor list's layout (see [`ListLayout`]).
    pub fn neighbor_layout(&self) -> ListLayout {
        self.nbr.plan().layout
    }

    pub fn lj_threads_per_atom(&self) -> u32 {
        self.lj.threads_per_atom()
    }

    /// Replaces the threads per atom of the neighbor build and the LJ kernel (normally
    /// chosen from the atom count; tests pin it to check every variant against the
    /// references) and rebuilds the list with it.
    /// Split rows need one thread per atom: with more they become packed rows.
    pub fn set_threads_per_atom(&mut self, tpa: u32) -> Result<()> {
        let layout = match self.nbr.plan().layout {
            l if !l.allows(tpa) => ListLayout::BySlotPacked,
            l => l,
        };
        self.set_neighbor_build(tpa, layout)
    }

    /// How PME's charge spread runs (`mode`, or the nearest this system and device allow:
    /// Tiled needs rows by cell slot, a block that gains and more real-space threads than one
    /// wave of a large GPU (else it is slower than Interleaved), Interleaved and Tiled need f32
    /// atomics), then recomputes the forces; tests run every mode against the references.
    /// Returns the mode now in use.
    pub fn set_spread_mode(&mut self, mode: SpreadMode) -> Result<SpreadMode> {
        let tile = match (&self.pme, mode) {
            (Some(p), SpreadMode::Tiled) => tile_plan(
                &self.grid,
                &self.spec,
                &self.spec.system,
                p,
                &self.ctx.limits,
                self.lj_threads_per_atom(),
            ),
            _ => None,
        };
        self.apply_spread(mode, tile)
    }

    /// The tiled spread with a given plan (tests: blocks too small to gain, or `n_max`
    /// forcing the global-atomic fallback, on systems too small for [`spread_tile::plan`]).
    pub fn set_spread_tile(&mut self, plan: TilePlan) -> Result<SpreadMode> {
        self.apply_spread(SpreadMode::Tiled, Some(plan))
    }

    fn apply_spread(&mut self, mode: SpreadMode, tile: Option<TilePlan>) -> Result<SpreadMode> {
        let (Some(c), Some(p)) = (self.coul.as_mut(), self.pme.as_ref()) else {
            return Ok(SpreadMode::Separate);
        };
        if mode == SpreadMode::Separate || !p.fusable() {
            c.fuse_spread(&self.ctx, None, None)?;
        } else {
            set_spread(c, &self.ctx, p, tile)?;
        }
        let named = self.bufs.named();
        c.bind(&self.ctx, &named)?;
        drop(named);
        self.rebuild_and_forces()?;
        Ok(self.spread_mode())
    }

    /// How PME's charge spread runs now (Separate without PME).
    pub fn spread_mode(&self) -> SpreadMode {
        match &self.coul {
            Some(c) if c.spread_tile_plan().is_some() => SpreadMode::Tiled,
            Some(c) if c.spread_fused() => SpreadMode::Interleaved,
            _ => SpreadMode::Separate,
        }
    }

    /// The tiled spread's blocks and gain, where it runs (`wgmd bench` reports them).
    pub fn spread_tile_plan(&self) -> Option<TilePlan> {
        self.coul.as_ref().and_then(|c| c.spread_tile_plan())
    }

    /// Whether PME's charge spread runs inside the real-space dispatch.
    pub fn spread_fused(&self) -> bool {
        self.coul.as_ref().is_some_and(|c| c.spread_fused())
    }

    /// Rebuilds the list by pairs (`pair_check` in shaders/neighbor.wgsl: each atom that may
    /// have passed skin/2 against the largest displacement around it) or, `false`, when twice
    /// the largest displacement passes the skin. Verlet lists only. A choice that stands:
    /// `set_check_every` no longer changes it.
    pub fn set_rebuild_by_pairs(&mut self, on: bool) -> Result<()> {
        self.apply_rebuild_by_pairs(on)?;
        self.pairs_chosen = true;
        Ok(())
    }

    fn apply_rebuild_by_pairs(&mut self, on: bool) -> Result<()> {
        if self.from_cells {
            bail!("this simulation runs in cell-list mode: it keeps no Verlet list");
        }
        let pairs =
            on.then(|| pair_rule_of(&self.grid, &self.params, self.spec.skin, self.pair_cap));
        let mut nbr =
            NeighborKernels::new(&self.ctx, self.nbr.plan(), self.params.n_atoms, true, pairs)?;
        let method = self.spec.integrator.method.clone();
        let mut integ =
            IntegratorKernels::new(&self.ctx, &method, self.mixed, pairs.map(|r| r.cap))?;
        let named = self.bufs.named();
        nbr.bind(&self.ctx, &named)?;
        integ.bind(&self.ctx, &named)?;
        drop(named);
        self.nbr = nbr;
        self.integ = integ;
        Ok(())
    }

    /// Whether the list is rebuilt by pairs ([`set_rebuild_by_pairs`](Self::set_rebuild_by_pairs)).
    pub fn rebuilds_by_pairs(&self) -> bool {
        self.nbr.by_pairs()
    }

    /// Rebuild by pairs: the most atoms past skin/2 checked in a step before the list is
    /// rebuilt anyway (`neighbor::pair_cap`); None when the list is not rebuilt by pairs.
    pub fn pair_cap(&self) -> Option<u32> {
        self.nbr.pair_rule().map(|r| r.cap)
    }

    /// Sets the pair check's cap (see [`pair_cap`](Self::pair_cap)), kept for a later
    /// [`set_rebuild_by_pairs`](Self::set_rebuild_by_pairs) and applied now if the list is
    /// rebuilt by pairs.
    pub fn set_pair_cap(&mut self, cap: u32) -> Result<()> {
        if cap == 0 {
            bail!("the pair check's cap must be at least 1 atom");
        }
        let words = neighbor::pair_list_words(cap);
        if self.bufs.pair_list.size() < 4 * words as u64 {
            let b = storage_indirect(&self.ctx, "pair_list", words);
            self.ctx
                .queue
                .write_buffer(&b, 0, bytemuck::cast_slice(&neighbor::pair_list_head()));
            self.bufs.pair_list = b;
        }
        self.pair_cap = cap;
        self.apply_rebuild_by_pairs(self.rebuilds_by_pairs())
    }

    /// Replaces the neighbor build and list layout (see [`BuildPlan`]: threads per atom and
    /// [`ListLayout`]) and rebuilds the list with it; tests run every variant against the
    /// references. ANI keeps rows by atom.
    pub fn set_neighbor_build(&mut self, tpa: u32, layout: ListLayout) -> Result<()> {
        let slot_rows = layout.slot_rows();
        if slot_rows && self.ani.is_some() {
            bail!("ANI reads the neighbor list by atom: rows by cell slot are not available");
        }
        let plan = BuildPlan::new(
            self.params.n_atoms,
            tpa,
            layout,
            outer_cut2(&self.table, self.spec.coulomb.as_ref()),
        )?;
        let need = if slot_rows {
            16 * self.params.n_atoms as u64
        } else {
            0
        };
        if self.bufs.slot_pos.size() < need {
            self.bufs.slot_pos = self.ctx.storage("slot_pos", need)?;
        }
        let mut lj = LjForce::new(&self.ctx, &self.table, tpa, self.from_cells, layout)?;
        let pairs = self.nbr.pair_rule();
        let mut nbr = NeighborKernels::new(
            &self.ctx,
            plan,
            self.params.n_atoms,
            !self.from_cells,
            pairs,
        )?;
        let template = cell_list::indirect_template(self.params.n_atoms, &self.grid, plan.groups);
        self.ctx.queue.write_buffer(
            &self.bufs.indirect_template,
            0,
            bytemuck::cast_slice(&template),
        );
        let named = self.bufs.named();
        lj.bind(&self.ctx, &named)?;
        nbr.bind(&self.ctx, &named)?;
        if let Some(c) = self.coul.as_mut() {
            c.set_threads_per_atom(&self.ctx, tpa, layout)?;
            c.bind(&self.ctx, &named)?;
        }
        drop(named);
        self.lj = lj;
        self.nbr = nbr;
        self.rebuild_and_forces()
    }

    /// Asks for a neighbor rebuild at the next step (e.g. after the host moved atoms).
    pub fn request_rebuild(&self) {
        self.ctx.queue.write_buffer(
            &self.bufs.status,
            4 * status::FORCE_REBUILD as u64,
            bytemuck::bytes_of(&1u32),
        );
    }
    /// The PME reciprocal term, when the Coulomb method is PME (for its dispatch profile).
    pub fn pme(&self) -> Option<&PmeForce> {
        self.pme.as_ref()
    }

    /// Profile for `wgmd bench`: seconds per repetition of (forces, cell list, neighbor
    /// build, PME reciprocal part or 0, tiled spread or 0), each repeated `reps` times in one compute pass (wall time including the wait
    /// and one readback, so use enough repetitions). Both parts are idempotent; the state is
    /// left consistent (a fresh list and forces at the current positions).
    pub fn time_parts(&mut self, reps: u32) -> Result<[f64; 5]> {
        let reps = reps.max(1);
        let mut out = [0.0; 5];
        for (part, slot) in out.iter_mut().enumerate() {
            let t0 = web_time::Instant::now();
            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for _ in 0..reps {
                    match part {
                        // The forces of a step that reads no energy (most steps).
                        0 => self.encode_forces(&mut pass, false),
                        1 => self.cells.encode(&mut pass, self.launch_direct()),
                        2 => self.nbr.encode_build(&mut pass, self.launch_direct()),
                        // PME's reciprocal part alone (it accumulates into the forces; the
                        // final rebuild below recomputes them).
                        3 => match &self.pme {
                            Some(p) => p.encode(&mut pass, false),
                            None => break,
                        },
                        // The tiled spread alone (it accumulates into the charge grid, which
                        // the final rebuild's first FFT pass reads and clears).
                        _ => {
                            if !self
                                .coul
                                .as_ref()
                                .is_some_and(|c| c.encode_tile_spread(&mut pass))
                            {
                                break;
                            }
                        }
                    }
                }
            }
            self.submit_and_read(enc)?;
            *slot = t0.elapsed().as_secs_f64() / reps as f64;
        }
        self.rebuild_and_forces()?;
        Ok(out)
    }

    /// Evaluates the forces `reps` times at the current positions (one compute pass, no
    /// neighbor rebuild) and returns the wall time including the final wait: the force-only
    /// figure of `wgmd bench`.
    pub fn time_force_evaluations(&mut self, reps: u32) -> Result<f64> {
        self.time_ani_stages(reps, 3)
    }

    /// Like [`Self::time_force_evaluations`], but only the first `stages` of the ANI pipeline
    /// (1: AEVs, 2: + networks, 3: everything); LJ runs ignore `stages`.
    pub fn time_ani_stages(&mut self, reps: u32, stages: u32) -> Result<f64> {
        let t0 = web_time::Instant::now();
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                match &self.ani {
                    Some(a) => a.encode_stages(&mut pass, stages),
                    None => self.encode_forces(&mut pass, true),
                }
            }
        }
        let st = self.submit_and_read(enc)?;
        let secs = t0.elapsed().as_secs_f64();
        self.check_blowup(&st)?;
        Ok(secs)
    }

    /// Per-term energies and the virial of the current positions, summed in float64 from
    /// per-atom GPU shares (the forces themselves are [`Self::forces`]). Host constants
    /// (LJ tail, Coulomb self energy, neutralising background) come from the spec.
    pub fn energy_terms(&self) -> Result<EnergyTerms> {
        let sys = &self.spec.system;
        let n = self.n_atoms();
        let (lj_tail, tail_w) = self.table.tail_corrections(sys);
        let mut t = EnergyTerms {
            lj_tail,
            ..Default::default()
        };
        match (&self.coul, &self.spec.coulomb) {
            (Some(c), Some(cs)) => {
                let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    c.encode_terms(&mut pass);
                    // PmeForce adds into `force`/`atom_virial`: recompute all forces so those
                    // buffers hold one evaluation again (its energy/virial read-out is the same).
                    if self.pme.is_some() {
                        self.encode_forces(&mut pass, true);
                    }
                }
                self.ctx.queue.submit([enc.finish()]);
                let a: Vec<[f32; 4]> = self.ctx.read_buffer(&c.terms_buf)?;
                let (mut lj, mut real, mut excl, mut w) = (0.0, 0.0, 0.0, 0.0);
                for v in &a[..n] {
                    lj += v[0] as f64;
                    real += v[1] as f64;
                    excl += v[2] as f64;
                    w += v[3] as f64;
                }
                let (recip, wt) = match &self.pme {
                    Some(p) => p.read_energy_virial(&self.ctx)?,
                    None => c.read_reciprocal(&self.ctx)?,
                };
                let (eb, wb) = coulomb::background(cs, sys);
                t.lj = Some(lj);
                t.coulomb_real = Some(real);
                if cs.method.ewald_alpha().is_some() {
                    t.coulomb_reciprocal = Some(recip);
                    t.coulomb_exclusion = Some(excl);
                    if cs.neutralize {
                        t.coulomb_background = Some(eb);
                    }
                }
                let s = coulomb::self_energy(cs, &sys.charges);
                if s != 0.0 {
                    t.coulomb_self = Some(s);
                }
                t.virial = w + wt[0] + wt[1] + wt[2] + wb + tail_w;
            }
            _ => {
                let th = self.clone_thermo()?;
                t.virial = th.virial;
                if self.ani.is_none() {
                    t.lj = Some(th.potential_energy - lj_tail);
                }
            }
        }
        if !self.table.tail {
            t.lj_tail = 0.0;
        }
        Ok(t)
    }

    fn clone_thermo(&self) -> Result<Thermo> {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            self.reduce.encode(&mut pass);
        }
        let st = self.submit_and_read(enc)?;
        Ok(self.to_thermo(st.obs))
    }

    /// The Coulomb term, when the run has one.
    pub fn coulomb(&self) -> Option<&CoulombForce> {
        self.coul.as_ref()
    }

    /// The ANI term, when the run has one.
    pub fn ani(&self) -> Option<&AniForce> {
        self.ani.as_ref()
    }
    /// Per-atom ANI network energies (Hartree, without self energies), input order.
    pub fn ani_atom_energies(&self) -> Result<Vec<f64>> {
        let a = self
            .ani
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("this simulation has no ANI term"))?;
        let e: Vec<f32> = self.ctx.read_buffer(&a.atom_energy)?;
        Ok(e[..self.n_atoms()].iter().map(|&x| x as f64).collect())
    }
    /// The current state as a host System (input order, wrapped positions).
    pub fn system(&self) -> Result<System> {
        let mut s = self.spec.system.clone();
        s.positions = self.positions()?;
        s.velocities = self.velocities()?;
        Ok(s)
    }
}

/// Single-point energy terms (the spec's energy unit); `None` = the run has no such term.
#[derive(Clone, Debug, Default)]
pub struct EnergyTerms {
    pub lj: Option<f64>,
    pub lj_tail: f64,
    pub coulomb_real: Option<f64>,
    pub coulomb_reciprocal: Option<f64>,
    pub coulomb_self: Option<f64>,
    pub coulomb_exclusion: Option<f64>,
    pub coulomb_background: Option<f64>,
    /// W = Σ r·F including tail and reciprocal parts.
    pub virial: f64,
}

impl EnergyTerms {
    pub fn total(&self) -> f64 {
        [
            self.lj,
            Some(self.lj_tail),
            self.coulomb_real,
            self.coulomb_reciprocal,
            self.coulomb_self,
            self.coulomb_exclusion,
            self.coulomb_background,
        ]
        .iter()
        .flatten()
        .sum()
    }
}

/// A force no healthy charged run reaches: two of the largest charges 0.05 length units apart.
fn coulomb_max_force(c: &CoulombSpec, sys: &System) -> f64 {
    let q = sys.charges.iter().fold(0.0f64, |m, q| m.max(q.abs()));
    c.coulomb_k * q * q / 0.0025
}

impl StatusRecord {
    /// Decodes the staging record: the status words, then the four observables.
    fn from_words(words: &[u32]) -> StatusRecord {
        StatusRecord {
            step: words[status::STEP],
            rebuilds: words[status::REBUILDS],
            max_nbrs: words[status::MAX_NBRS],
            blowup: words[status::BLOWUP] != 0,
            crowded: words[status::BLOWUP] & 2 != 0,
            blowup_atom: words[status::BLOWUP_ATOM],
            blowup_step: words[status::BLOWUP_STEP],
            missed: words[status::MISSED] != 0,
            lifetime: f32::from_bits(words[status::LIFETIME]),
            obs: [0, 1, 2, 3].map(|k| f32::from_bits(words[status::LEN + k])),
        }
    }
}

struct StatusRecord {
    step: u32,
    rebuilds: u32,
    max_nbrs: u32,
    blowup: bool,
    /// The stop was (also) more ANI angular neighbors than the kernels hold.
    crowded: bool,
    blowup_atom: u32,
    blowup_step: u32,
    missed: bool,
    lifetime: f32,
    obs: [f32; 4],
}
