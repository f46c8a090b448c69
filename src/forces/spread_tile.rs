//! PME's charge spread by blocks of cells, summed in workgroup memory before the grid
//! (driver of `shaders/spread_tile.wgsl`, which says why and how). Runs where the grid is
//! summed with f32 atomics, the neighbor list's rows are by cell slot and real space runs one
//! thread per atom (the engine's `tile_plan`), in a dispatch of its own after the real-space
//! one (`forces::coulomb_spread`; tried in one dispatch with it and reverted, BENCHMARKS.md,
//! Coulomb, fifteenth session); `WGMD_TILE_SPREAD=0` keeps the interleaved spread (A/B runs).
//! The float64 reference is PME's (`forces::pme::reference`); tests/coulomb_gpu.rs checks this
//! spread against it and against the other spreads.

use anyhow::Result;

use crate::forces::pme::{bspline, PmeParams};
use crate::gpu::{self, GpuContext, Kernel, ShaderModule};
use crate::neighbor::cell_list::CellGrid;

/// Fixed-point sums per workgroup at most (`TILE_WORDS` in spread_tile.wgsl: 47 KiB of
/// NVIDIA's 48; the driver sets the constant from the device's limit, [`tile_words`]).
pub const TILE_WORDS: u32 = 11_904;
/// Bytes of the kernel's other workgroup arrays, rounded up.
const OTHER_SHARED: u32 = 1024;

/// Threads per workgroup: 1,024 where the device allows (BENCHMARKS.md: 256 took 3.4 ms
/// at 2,097,152 ions, 1,024 1.5 ms, before the atoms' bounding box was dropped), else 256.
pub fn threads(limits: &wgpu::Limits) -> u32 {
    // `WGMD_TILE_WG=512|768` (A/B runs).
    if let Some(t) = std::env::var("WGMD_TILE_WG")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|t| [256, 512, 768].contains(t))
    {
        return t;
    }
    if limits.max_compute_invocations_per_workgroup >= 1024
        && limits.max_compute_workgroup_size_x >= 1024
    {
        1024
    } else {
        256
    }
}

/// The tile's words on a device: what fits beside the kernel's other workgroup arrays, at
/// most [`TILE_WORDS`] (lavapipe allows 32 KiB: 7,936).
pub fn tile_words(limits: &wgpu::Limits) -> u32 {
    (limits
        .max_compute_workgroup_storage_size
        .saturating_sub(OTHER_SHARED)
        / 4)
    .min(TILE_WORDS)
}
/// Runs of slots per block (`MAX_RUNS`): BY · BZ cells at most.
const MAX_RUNS: u32 = 64;

/// Block shape and fixed-point scale for one system.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TilePlan {
    /// Cells per block along x, y, z.
    pub block: [u32; 3],
    /// Blocks (workgroups) in the dispatch.
    pub groups: u32,
    /// max|q| times the largest product of three spline weights: the largest addition.
    pub qw: f64,
    /// Most atoms a block may hold and still sum in workgroup memory (the fixed-point scale
    /// of a block of n atoms is 2^30 / (n qw) rounded down to a power of two; above n_max it
    /// would fall below 2^20 / max|q|).
    pub n_max: u32,
    /// Box sides: the first grid points of positions within skin/2 of a block's cells, plus
    /// order − 1 (the kernel's EX, EY, EZ).
    pub box_sides: [u32; 3],
    /// Their product (≤ `tile_words`).
    pub box_points: u32,
    /// Words of the workgroup tile (the device's [`tile_words`]).
    pub tile_words: u32,
    /// Half the Verlet skin: how far atoms stray from their cells between rebuilds.
    pub half_skin: f64,
    /// Expected grid additions per global atomic (atoms · order³ / box points).
    pub gain: f64,
    /// The spread and the interpolation by slot compute the spline weights from the slot
    /// positions instead of reading them from PME's spline buffer, which slot_gather_splines
    /// then leaves unwritten but for the charges (spread_tile.wgsl's FLY). `WGMD_SPL_FLY=0`
    /// stores them (A/B runs; `=spread` or `=interp` computes them in one of the two only).
    pub fly_splines: bool,
}

/// Which of (the tiled spread, slot_interp) compute the splines for a plan with
/// `fly_splines` (`WGMD_SPL_FLY=spread|interp` picks one, A/B runs).
pub fn fly_parts(fly_splines: bool) -> (bool, bool) {
    match std::env::var("WGMD_SPL_FLY").as_deref() {
        _ if !fly_splines => (false, false),
        Ok("spread") => (true, false),
        Ok("interp") => (false, true),
        _ => (true, true),
    }
}

impl TilePlan {
    /// The plan for blocks of `block` cells; None where no charge is non-zero or the box of
    /// such a block (its atoms skin/2 out of it) would not fit in `tile_words` or would wrap
    /// onto itself.
    pub fn for_block(
        cells: &CellGrid,
        box_l: [f64; 3],
        pme: &PmeParams,
        skin: f64,
        charges: &[f64],
        block: [u32; 3],
        tile_words: u32,
    ) -> Option<TilePlan> {
        let max_q = charges.iter().fold(0.0f64, |m, q| m.max(q.abs()));
        if !(max_q > 0.0 && max_q.is_finite())
            || block[1] * block[2] > MAX_RUNS
            || (0..3).any(|a| block[a] == 0 || block[a] > cells.dims[a])
        {
            return None;
        }
        let order = pme.order;
        // Largest product of three spline weights: the cardinal B-spline peaks at its centre.
        let w1 = bspline(order, order as f64 / 2.0);
        let w_max = w1 * w1 * w1;
        let n_max = (2f64.powi(10) / w_max).floor() as u32;
        let mut points = 1u64;
        let mut box_sides = [0u32; 3];
        for a in 0..3 {
            // Grid spacings a block spans, plus skin/2 of drift on either side: an interval of
            // that length holds at most floor(span) + 2 first points, then ORDER - 1 more.
            // Sides within the grid's keep the box's points distinct (none aliases another
            // through the periodic wrap).
            let g = pme.grid[a] as f64 / box_l[a];
            let span = block[a] as f64 / cells.scale[a] * g + skin * g;
            let mut side = span.floor() as u32 + 1 + order;
            if a == 2 {
                side = bank_distinct_rows(side, order);
            }
            // The kernel wraps a box point at most once per axis: the box within the grid's
            // side, its first point (skin/2 before the block) within one grid of the origin.
            if side > pme.grid[a] || 0.5 * skin * g >= pme.grid[a] as f64 {
                return None;
            }
            box_sides[a] = side;
            points *= side as u64;
        }
        if points > tile_words as u64 {
            return None;
        }
        let atoms =
            charges.len() as f64 / cells.n_cells() as f64 * block.iter().product::<u32>() as f64;
        Some(TilePlan {
            block,
            groups: (0..3).map(|a| cells.dims[a].div_ceil(block[a])).product(),
            qw: max_q * w_max,
            n_max,
            box_sides,
            box_points: points as u32,
            tile_words,
            half_skin: 0.5 * skin,
            gain: atoms * (order * order * order) as f64 / points as f64,
            fly_splines: !crate::neighbor::switched_off("WGMD_SPL_FLY"),
        })
    }
}

/// The smallest box side along z (the row stride of the tile) from `side` on at which the
/// ORDER rows jy = 0..ORDER of one atom start in distinct banks of workgroup memory (32 banks
/// of 4 bytes): the kernel's ORDER threads of an atom add to those rows at once. With a
/// multiple of 8 (ORDER = 5) two or more rows share a bank: blocks of 3 × 3 × 6 cells at
/// skin 0.9 Å had a side of 32, every row in one bank, and took ~0.3 ms more per step at
/// 2,097,152 ions on the H200 (BENCHMARKS.md, Coulomb, thirteenth session) than the 2 × 5 × 5
/// blocks (side 28) at skin 1 Å.
pub fn bank_distinct_rows(side: u32, order: u32) -> u32 {
    let mut s = side;
    while (1..order.min(32)).any(|j| (0..j).any(|i| (j * s) % 32 == (i * s) % 32)) {
        s += 1;
    }
    s
}

/// The block of cells with the best expected gain whose box fits in workgroup memory even
/// when its atoms have moved skin/2 out of their cells; `None` where no block gains at least
/// 1.5x (tiny or dilute systems, cells far larger than the grid spacing) or no charge is
/// non-zero. Blocks expected to hold more than half of `n_max` atoms are passed over (dense
/// spots would fall back to the global atomics).
pub fn plan(
    cells: &CellGrid,
    box_l: [f64; 3],
    pme: &PmeParams,
    skin: f64,
    charges: &[f64],
    tile_words: u32,
) -> Option<TilePlan> {
    let order3 = pme.order.pow(3) as f64;
    let mut best: Option<TilePlan> = None;
    for bx in 1..=8u32 {
        for by in 1..=8u32 {
            for bz in 1..=8u32 {
                let Some(p) =
                    TilePlan::for_block(cells, box_l, pme, skin, charges, [bx, by, bz], tile_words)
                else {
                    continue;
                };
                let atoms = p.gain * p.box_points as f64 / order3;
                if atoms * 2.0 <= p.n_max as f64 && best.is_none_or(|b| p.gain > b.gain) {
                    best = Some(p);
                }
            }
        }
    }
    best.filter(|b| b.gain >= 1.5)
}

/// The tiled spread kernel and the buffer of slot-ordered weights it reads.
pub struct SpreadTile {
    pub plan: TilePlan,
    kernel: Kernel,
    /// (3 · order + 1) rows of n_atoms: weights by slot, then charges
    /// (coulomb_spread.wgsl's `wslot_out`, written by slot_gather_splines); None with
    /// `spl_layout`, where the kernel reads PME's splines by slot ("spl") instead.
    pub wslot: Option<wgpu::Buffer>,
}

impl SpreadTile {
    pub fn new(
        ctx: &GpuContext,
        plan: TilePlan,
        n_atoms: u32,
        order: u32,
        grid: [u32; 3],
        spl_layout: bool,
    ) -> Result<SpreadTile> {
        let module = ShaderModule::specialized(
            ctx,
            "spread_tile",
            &[
                ("TILE_WORDS", plan.tile_words),
                ("TILE_WG", threads(&ctx.limits)),
            ],
        )?;
        let ov = [
            ("ORDER", order as f64),
            ("GX", grid[0] as f64),
            ("GY", grid[1] as f64),
            ("GZ", grid[2] as f64),
            ("BX", plan.block[0] as f64),
            ("BY", plan.block[1] as f64),
            ("BZ", plan.block[2] as f64),
            ("QW", plan.qw),
            ("N_MAX", plan.n_max as f64),
            ("HALF_SKIN", plan.half_skin),
            ("EX", plan.box_sides[0] as f64),
            ("EY", plan.box_sides[1] as f64),
            ("EZ", plan.box_sides[2] as f64),
            ("SPL_LAYOUT", if spl_layout { 1.0 } else { 0.0 }),
            (
                "FLY",
                (spl_layout && fly_parts(plan.fly_splines).0) as u32 as f64,
            ),
            (
                "BY_COLUMN",
                !crate::neighbor::switched_off("WGMD_TILE_FLUSH") as u32 as f64,
            ),
        ];
        let kernel = Kernel::new(ctx, &module, "spread_tile", &ov)?;
        let rows = 3 * order as u64 + 1;
        let wslot = if spl_layout {
            None
        } else {
            Some(ctx.storage("wslot", 4 * rows * n_atoms.max(1) as u64)?)
        };
        Ok(SpreadTile {
            plan,
            kernel,
            wslot,
        })
    }

    pub fn bind(
        &self,
        ctx: &GpuContext,
        buffers: &[(&str, &wgpu::Buffer)],
    ) -> Result<wgpu::BindGroup> {
        let mut all = buffers.to_vec();
        let weights = match &self.wslot {
            Some(b) => b,
            None => buffers
                .iter()
                .find(|(n, _)| *n == "spl")
                .map(|&(_, b)| b)
                .ok_or_else(|| anyhow::anyhow!("internal: the tiled spread needs PME's 'spl'"))?,
        };
        all.push(("wslot", weights));
        self.kernel.bind(ctx, &all)
    }

    /// Bytes of the tile's own weight buffer (none where it reads PME's splines).
    pub fn wslot_bytes(&self) -> u64 {
        self.wslot.as_ref().map_or(0, |b| b.size())
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, bind: &wgpu::BindGroup) {
        gpu::dispatch(pass, &self.kernel, bind, self.plan.groups);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NaCl bench's largest system: box edge (Å), PME parameters, charges.
    fn molten_nacl_2m() -> (f64, PmeParams, Vec<f64>) {
        let pme = PmeParams {
            alpha: 0.26283,
            grid: [324; 3],
            order: 5,
        };
        let q: Vec<f64> = (0..2_097_152)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        (403.48, pme, q)
    }

    /// The NaCl bench's largest system: blocks that fit 47 KiB and gain ~3x.
    #[test]
    fn plan_for_molten_nacl() {
        let (l, pme, q) = molten_nacl_2m();
        let cells = CellGrid::for_cutoff([l; 3], 11.0);
        let p = plan(&cells, [l; 3], &pme, 1.0, &q, TILE_WORDS).unwrap();
        assert!(p.box_points <= TILE_WORDS);
        assert!(p.gain > 2.5, "{p:?}");
        // M_5 peaks at 115/192: 0.2149 of max|q|; 2^10 / 0.2149 = 4,765 atoms at most.
        assert!((p.qw - 0.214_877).abs() < 1e-5, "{p:?}");
        assert_eq!(p.n_max, 4_765);
        let q2: Vec<f64> = q.iter().map(|x| 1.7 * x).collect();
        let p2 = plan(&cells, [l; 3], &pme, 1.0, &q2, TILE_WORDS).unwrap();
        assert!((p2.qw - 1.7 * 0.214_877).abs() < 1e-5, "{p2:?}");
    }

    #[test]
    fn tile_rows_start_in_distinct_banks() {
        // 28 (the bench's side): rows at banks 0, 28, 24, 20, 16; multiples of 8 move on.
        assert_eq!(bank_distinct_rows(28, 5), 28);
        assert_eq!(bank_distinct_rows(32, 5), 33);
        assert_eq!(bank_distinct_rows(24, 5), 25);
        assert_eq!(bank_distinct_rows(16, 5), 17);
        assert_eq!(bank_distinct_rows(12, 4), 12);
        // Four rows fit at a stride of 8 (banks 0, 8, 16, 24), not at 16.
        assert_eq!(bank_distinct_rows(8, 4), 8);
        assert_eq!(bank_distinct_rows(16, 4), 17);
        for order in 4..=6 {
            for side in order..200 {
                let s = bank_distinct_rows(side, order);
                assert!(s >= side && s < side + 8, "{side} -> {s}");
                let mut banks: Vec<u32> = (0..order).map(|j| (j * s) % 32).collect();
                banks.sort();
                banks.dedup();
                assert_eq!(banks.len(), order as usize, "side {s}, order {order}");
            }
        }
        // Every plan's z side is such a stride (the skin 0.9 Å case picked 3 × 3 × 6 cells
        // with a side of 32 before).
        let (l, pme, q) = molten_nacl_2m();
        for skin in [0.8, 0.9, 1.0] {
            let cells = CellGrid::for_cutoff([l; 3], 10.0 + skin);
            let p = plan(&cells, [l; 3], &pme, skin, &q, TILE_WORDS).unwrap();
            assert_eq!(
                p.box_sides[2],
                bank_distinct_rows(p.box_sides[2], 5),
                "skin {skin}: {p:?}"
            );
        }
    }

    #[test]
    fn no_plan_without_charges_or_gain() {
        let cells = CellGrid::for_cutoff([40.0; 3], 11.0);
        let pme = PmeParams {
            alpha: 0.3,
            grid: [32; 3],
            order: 5,
        };
        assert!(plan(&cells, [40.0; 3], &pme, 1.0, &[0.0; 100], TILE_WORDS).is_none());
        // A dilute gas: ~0.4 atoms per block cell, no block gains 1.5x.
        let q: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!(plan(&cells, [40.0; 3], &pme, 1.0, &q, TILE_WORDS).is_none());
    }
}
