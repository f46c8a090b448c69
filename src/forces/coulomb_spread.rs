//! Coulomb real space and the PME charge spread in one dispatch (driver of
//! `shaders/coulomb_spread.wgsl`, which says why). Used where PME sums its charge grid with
//! f32 atomics ([`crate::forces::pme::PmeSpread::FloatAtomic`]); `WGMD_FUSE_SPREAD=0` keeps
//! the two dispatches apart (A/B runs). The float64 references are those of the two parts
//! (`forces::coulomb::reference`, `forces::pme::reference`); tests/coulomb_gpu.rs checks
//! that the fused dispatch adds the same forces as the separate ones. With rows by slot it
//! also drives `slot_interp`, PME's interpolation by slot ([`SpreadFusion::encode_interp`]).

use anyhow::Result;

use crate::forces::pme::PmeForce;
use crate::forces::spread_tile::{SpreadTile, TilePlan};
use crate::gpu::{self, GpuContext, Kernel, ShaderModule};

/// The fused kernels (with and without energies) and what the spread half needs from PME.
pub struct SpreadFusion {
    pub energy: Kernel,
    pub fast: Kernel,
    /// `slot_gather_splines`, where the list rows are by cell slot (else None: the engine
    /// then runs neighbor's slot_gather, if any, and PME's own splines).
    pub gather: Option<Kernel>,
    n_atoms: u32,
    /// Workgroups in the dispatch: real-space groups × (1 + spread groups per real group).
    pub groups: u32,
    /// PME's buffers by the names coulomb_spread.wgsl gives them.
    pub buffers: Vec<(&'static str, wgpu::Buffer)>,
    order: u32,
    grid: [u32; 3],
    spread_groups: u32,
    /// The spread by blocks of cells (`forces::spread_tile`) in a dispatch of its own after
    /// real space, instead of interleaved with it: where the rows are by slot and a plan gains.
    tile: Option<SpreadTile>,
    /// The plan asked for, kept across real-space rebuilds (a layout without slot rows drops
    /// the tile, the next one by slot brings it back).
    want_tile: Option<TilePlan>,
    /// Stands in for the tile's weight buffer, which slot_gather_splines always binds.
    no_wslot: wgpu::Buffer,
    /// `slot_interp` (with and without energy), where the rows are by slot: the gather then
    /// stores the splines by slot, so PME's interpolation by atom (pme_interp) must not run.
    interp: Option<[Kernel; 2]>,
    /// Atoms per slot_interp workgroup ([`interp_atoms_per_group`]).
    interp_atoms: u32,
}

impl SpreadFusion {
    /// `real` are the real-space kernel's override constants (`forces::coulomb`), which
    /// run `real_groups` workgroups of 64 threads. With a `tile` plan (and rows by slot) the
    /// spread runs by blocks of cells after real space instead of interleaved with it.
    pub fn new(
        ctx: &GpuContext,
        real: &[(&'static str, f64)],
        real_groups: u32,
        pme: &PmeForce,
        tile: Option<TilePlan>,
    ) -> Result<SpreadFusion> {
        let p = pme.params();
        Self::build(
            ctx,
            real,
            real_groups,
            pme.n_atoms(),
            p.order,
            p.grid,
            pme.spread_groups(),
            pme.spread_buffers(),
            tile,
        )
    }

    /// The same fusion for other real-space constants (threads per atom, list layout).
    pub fn rebuild(
        &self,
        ctx: &GpuContext,
        real: &[(&'static str, f64)],
        real_groups: u32,
    ) -> Result<SpreadFusion> {
        Self::build(
            ctx,
            real,
            real_groups,
            self.n_atoms,
            self.order,
            self.grid,
            self.spread_groups,
            self.buffers.clone(),
            self.want_tile,
        )
    }

    fn build(
        ctx: &GpuContext,
        real: &[(&'static str, f64)],
        real_groups: u32,
        n_atoms: u32,
        order: u32,
        grid: [u32; 3],
        spread_groups: u32,
        buffers: Vec<(&'static str, wgpu::Buffer)>,
        tile: Option<TilePlan>,
    ) -> Result<SpreadFusion> {
        let real_groups = real_groups.max(1);
        let slot_rows = real.iter().any(|&(n, v)| n == "SLOT_ROWS" && v != 0.0);
        // The tiled spread reads the slot order's weights, which only the slot gather writes.
        let want_tile = tile;
        // The splines by slot (then slot_interp replaces PME's pme_interp by atom, and the
        // tiled spread reads their weights).
        let slot_splines =
            slot_rows && std::env::var("WGMD_SLOT_SPLINES").map_or(true, |v| v != "0");
        let tile = match tile.filter(|_| slot_rows) {
            Some(p) => Some(SpreadTile::new(ctx, p, n_atoms, order, grid, slot_splines)?),
            None => None,
        };
        let per_real = if tile.is_some() {
            0
        } else {
            std::env::var("WGMD_FUSE_PER_REAL")
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or_else(|| per_real_group(real_groups, spread_groups))
                .max(1)
        };
        let module = ShaderModule::new(ctx, "coulomb_spread")?;
        let mut ov = real.to_vec();
        ov.extend([
            ("ORDER", order as f64),
            ("GX", grid[0] as f64),
            ("GY", grid[1] as f64),
            ("GZ", grid[2] as f64),
            ("FUSE_SPREAD", per_real as f64),
            ("TILE_SPREAD", if tile.is_some() { 1.0 } else { 0.0 }),
        ]);
        ov.push(("SLOT_SPLINES", if slot_splines { 1.0 } else { 0.0 }));
        // Splines computed where they are used (the tiled spread, slot_interp) instead of
        // stored by slot_gather_splines (`forces::spread_tile::TilePlan::fly_splines`).
        let (fly_spread, fly_interp) = match &tile {
            Some(t) if slot_splines => crate::forces::spread_tile::fly_parts(t.plan.fly_splines),
            _ => (false, false),
        };
        ov.push(("FLY_SPREAD", fly_spread as u32 as f64));
        ov.push(("INTERP_FLY", fly_interp as u32 as f64));
        // One thread per atom: the kernel without workgroup memory (real space alone where
        // the spread is tiled, FUSE_SPREAD = 0).
        let tpa = real
            .iter()
            .find(|&&(n, _)| n == "TPA")
            .map_or(0, |&(_, v)| v as u32);
        let entry = if crate::forces::coulomb::single_lane(tpa) {
            "coulomb_spread1"
        } else {
            "coulomb_spread"
        };
        let energy = Kernel::new(ctx, &module, entry, &ov)?;
        let gather = if slot_rows {
            Some(Kernel::new(ctx, &module, "slot_gather_splines", &ov)?)
        } else {
            None
        };
        let interp_atoms = interp_atoms_per_group();
        let mut iov = ov.clone();
        iov.push(("INTERP_WG", (interp_atoms * order) as f64));
        let interp_energy = if slot_splines {
            Some(Kernel::new(ctx, &module, "slot_interp", &iov)?)
        } else {
            None
        };
        ov.push(("ENERGY", 0.0));
        iov.push(("ENERGY", 0.0));
        let fast = Kernel::new(ctx, &module, entry, &ov)?;
        let interp = match interp_energy {
            Some(e) => Some([e, Kernel::new(ctx, &module, "slot_interp", &iov)?]),
            None => None,
        };
        Ok(SpreadFusion {
            energy,
            fast,
            gather,
            n_atoms,
            groups: if per_real == 0 {
                real_groups
            } else {
                real_groups.max(spread_groups.div_ceil(per_real)) * (1 + per_real)
            },
            buffers,
            order,
            grid,
            spread_groups,
            tile,
            want_tile,
            no_wslot: ctx.storage("wslot_unused", 16)?,
            interp,
            interp_atoms,
        })
    }

    /// Bytes of the buffers this fusion allocates (the tiled spread's weights by slot).
    pub fn gpu_bytes(&self) -> u64 {
        self.no_wslot.size() + self.tile.as_ref().map_or(0, |t| t.wslot_bytes())
    }

    /// The tiled spread's plan, where it runs (else the spread is interleaved).
    pub fn tile_plan(&self) -> Option<TilePlan> {
        self.tile.as_ref().map(|t| t.plan)
    }

    /// Bind groups (energy, fast, gather) from the real-space kernel's named buffers plus
    /// PME's; the gather writes "slot_pos" and PME's splines under names of their own.
    pub fn bind(&self, ctx: &GpuContext, real: &[(&str, &wgpu::Buffer)]) -> Result<FusionBinds> {
        let mut all = real.to_vec();
        all.extend(self.buffers.iter().map(|(n, b)| (*n, b)));
        if let Some(&(_, b)) = real.iter().find(|(n, _)| *n == "slot_pos") {
            all.push(("slot_pos_out", b));
        }
        if let Some((_, b)) = self.buffers.iter().find(|(n, _)| *n == "spl") {
            all.push(("spl_out", b));
        }
        all.push((
            "wslot_out",
            self.tile
                .as_ref()
                .and_then(|t| t.wslot.as_ref())
                .unwrap_or(&self.no_wslot),
        ));
        Ok(FusionBinds {
            tile: self.tile.as_ref().map(|t| t.bind(ctx, &all)).transpose()?,
            energy: self.energy.bind(ctx, &all)?,
            fast: self.fast.bind(ctx, &all)?,
            gather: self
                .gather
                .as_ref()
                .map(|k| k.bind(ctx, &all))
                .transpose()?,
            interp: match &self.interp {
                Some([e, f]) => Some([e.bind(ctx, &all)?, f.bind(ctx, &all)?]),
                None => None,
            },
        })
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, energy: bool, binds: &FusionBinds) {
        let (k, b) = if energy {
            (&self.energy, &binds.energy)
        } else {
            (&self.fast, &binds.fast)
        };
        gpu::dispatch(pass, k, b, self.groups);
        self.encode_tile(pass, binds);
    }

    /// The tiled spread's dispatch (part of [`encode`](Self::encode)); false where none.
    pub fn encode_tile(&self, pass: &mut wgpu::ComputePass<'_>, binds: &FusionBinds) -> bool {
        match (&self.tile, &binds.tile) {
            (Some(t), Some(tb)) => {
                t.encode(pass, tb);
                true
            }
            _ => false,
        }
    }

    /// Whether the splines are stored by slot: then [`encode_interp`](Self::encode_interp)
    /// replaces PME's pme_interp.
    pub fn slot_splines(&self) -> bool {
        self.interp.is_some()
    }

    /// PME's interpolation by slot (after PME's FFT passes, in place of its pme_interp);
    /// false (nothing encoded) where the rows are not by slot.
    pub fn encode_interp(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        energy: bool,
        binds: &FusionBinds,
    ) -> bool {
        match (&self.interp, &binds.interp) {
            (Some(k), Some(b)) => {
                let e = usize::from(!energy);
                let groups = self.n_atoms.div_ceil(self.interp_atoms).max(1);
                gpu::dispatch(pass, &k[e], &b[e], groups);
                true
            }
            _ => false,
        }
    }

    /// Slot positions and PME splines in one dispatch; false (nothing encoded) where the
    /// rows are not by slot.
    pub fn encode_gather(&self, pass: &mut wgpu::ComputePass<'_>, binds: &FusionBinds) -> bool {
        match (&self.gather, &binds.gather) {
            (Some(k), Some(b)) => {
                gpu::dispatch(pass, k, b, gpu::groups_for(self.n_atoms, gpu::WG));
                true
            }
            _ => false,
        }
    }
}

/// Atoms per slot_interp workgroup (ORDER threads each). Measured on the H200 (BENCHMARKS.md,
/// Coulomb, twelfth session, call 5; steps/s at 2,097,152 ions, lattice order / shuffled):
/// 12 atoms (64 threads, pme_interp's) 240.4 / 229.4, 32 244.2 / 234.2, 64 249.3 / 239.4,
/// 128 248.2 / 237.8. `WGMD_INTERP_ATOMS` overrides (A/B runs).
fn interp_atoms_per_group() -> u32 {
    std::env::var("WGMD_INTERP_ATOMS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&a| (1..=128).contains(&a))
        .unwrap_or(64)
}

/// [`SpreadFusion`]'s bind groups.
pub struct FusionBinds {
    energy: wgpu::BindGroup,
    fast: wgpu::BindGroup,
    gather: Option<wgpu::BindGroup>,
    tile: Option<wgpu::BindGroup>,
    interp: Option<[wgpu::BindGroup; 2]>,
}

/// Real-space threads up to which real space is about one wave of a large GPU (2¹⁹; an H200
/// holds ~270k resident threads): there the interleaved spread overlaps it well, beyond it the
/// two compete (`per_real_group`). (The engine tiles the spread instead wherever real space
/// runs one thread per atom.)
pub const ONE_WAVE: u64 = 1 << 19;

/// Spread workgroups after each real-space workgroup in the fused dispatch. Measured on the
/// H200 (BENCHMARKS.md, Coulomb, ninth session, calls 1–2; steps/s against the separate
/// dispatches): when real space fills the GPU several times over (2,097,152 ions, 2 M
/// threads) the even interleave — both kinds end together — is best (+3 %; a third or a
/// sixth of it lost 1–2 %); when it is about one wave (≤ 2¹⁹ threads: 32,768 ions at 8
/// threads per atom, 262,144 at 1) a sixth of that ratio is (+11–12 %; the even interleave
/// +2–5 %): every real-space workgroup then starts within the first wave and the spread
/// fills the rest of the GPU beside them and after them.
pub fn per_real_group(real_groups: u32, spread_groups: u32) -> u32 {
    let even = spread_groups.div_ceil(real_groups.max(1));
    if real_groups as u64 * gpu::WG as u64 <= ONE_WAVE {
        (even / 6).max(1)
    } else {
        even.max(1)
    }
}
