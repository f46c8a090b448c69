//! Driver of `shaders/cell_list.wgsl`: counting-sort cell list (clear → count → scan →
//! scatter → per-cell sort). Used only inside neighbor-list rebuilds.

use anyhow::Result;

use crate::gpu::{self, GpuContext, Kernel, ShaderModule, WG};

/// Grid geometry: cells of edge ≥ `min_edge` tiling the box; pairs closer than
/// `reach · min_edge` lie within `reach` cells of each other along every axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellGrid {
    pub dims: [u32; 3],
    pub scale: [f64; 3],
    /// Stencil half-width in cells (1 or 2; `shaders/common.wgsl` `stencil_*`).
    pub reach: u32,
}

/// Cells in one scan block (`SCAN_WG` in WGSL).
pub const SCAN_BLOCK: u32 = 256;

impl CellGrid {
    pub fn new(box_lengths: [f64; 3], min_edge: f64) -> CellGrid {
        let mut dims = [1u32; 3];
        let mut scale = [0.0; 3];
        for d in 0..3 {
            // Cap keeps the cell count sane for dilute gases in huge boxes.
            dims[d] = ((box_lengths[d] / min_edge).floor() as u32).clamp(1, 1024);
            scale[d] = dims[d] as f64 / box_lengths[d];
        }
        CellGrid {
            dims,
            scale,
            reach: 1,
        }
    }

    /// The grid for pairs closer than `cutoff`: cells of edge ≥ cutoff/2 and a 5×5×5 stencil
    /// when every axis has at least 5 of them, else cells of edge ≥ cutoff and 3×3×3. The
    /// smaller cells cover 15.6 cutoff³ instead of 27 (a sphere is 4.2): ~40 % fewer
    /// candidates per atom, and each stencil row of 5 cells is one contiguous run of the
    /// cell-ordered positions, so the neighbor build visits 25 runs instead of 27 cells.
    pub fn for_cutoff(box_lengths: [f64; 3], cutoff: f64) -> CellGrid {
        let half = CellGrid::new(box_lengths, cutoff / 2.0);
        if half.dims.iter().all(|&d| d >= 5) {
            CellGrid { reach: 2, ..half }
        } else {
            CellGrid::new(box_lengths, cutoff)
        }
    }
    pub fn n_cells(&self) -> u32 {
        self.dims.iter().product()
    }
    pub fn n_blocks(&self) -> u32 {
        self.n_cells().div_ceil(SCAN_BLOCK)
    }
}

/// Rebuild dispatches come either straight from the host (setup) or through the indirect
/// arguments that the GPU's `decide` kernel wrote (inside the step loop).
#[derive(Clone, Copy)]
pub enum Launch<'a> {
    Direct {
        n_atoms: u32,
        n_cells: u32,
        n_blocks: u32,
    },
    Indirect(&'a wgpu::Buffer),
}

/// Byte offsets of the argument triples in the indirect buffer.
pub mod args {
    pub const ATOMS: u64 = 0;
    pub const CELLS: u64 = 12;
    pub const BLOCKS: u64 = 24;
    pub const ONE: u64 = 36;
    /// The neighbor build (`neighbor::BuildPlan::groups`).
    pub const BUILD: u64 = 48;
    pub const WORDS: usize = 15;
}

pub struct CellList {
    kernels: Vec<Kernel>,
    binds: Vec<wgpu::BindGroup>,
}

const ENTRIES: [&str; 7] = [
    "cell_clear",
    "cell_count_atoms",
    "scan_blocks",
    "scan_top",
    "cell_scatter",
    "cell_order",
    "cell_finish",
];

impl CellList {
    pub fn new(ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> Result<CellList> {
        let module = ShaderModule::new(ctx, "cell_list")?;
        let kernels = ENTRIES
            .iter()
            .map(|e| Kernel::new(ctx, &module, e, &[]))
            .collect::<Result<Vec<_>>>()?;
        let binds = kernels
            .iter()
            .map(|k| k.bind(ctx, buffers))
            .collect::<Result<Vec<_>>>()?;
        Ok(CellList { kernels, binds })
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, launch: Launch<'_>) {
        let plan: [(u64, fn(u32, u32, u32) -> u32); 7] = [
            (args::CELLS, |_, c, _| c.div_ceil(WG)),
            (args::ATOMS, |a, _, _| a.div_ceil(WG)),
            (args::BLOCKS, |_, _, b| b),
            (args::ONE, |_, _, _| 1),
            (args::ATOMS, |a, _, _| a.div_ceil(WG)),
            (args::ATOMS, |a, _, _| a.div_ceil(WG)),
            (args::CELLS, |_, c, _| c.div_ceil(WG)),
        ];
        for (k, ((offset, groups), bg)) in self.kernels.iter().zip(plan.iter().zip(&self.binds)) {
            match launch {
                Launch::Direct {
                    n_atoms,
                    n_cells,
                    n_blocks,
                } => gpu::dispatch(pass, k, bg, groups(n_atoms, n_cells, n_blocks)),
                Launch::Indirect(buf) => gpu::dispatch_indirect(pass, k, bg, buf, *offset),
            }
        }
    }
}

/// Host-computed indirect arguments for a rebuild (the `decide` kernel copies or zeroes them).
pub fn indirect_template(n_atoms: u32, grid: &CellGrid, build_groups: u32) -> Vec<u32> {
    let mut v = Vec::with_capacity(args::WORDS);
    for g in [
        n_atoms.div_ceil(WG),
        grid.n_cells().div_ceil(WG),
        grid.n_blocks(),
        1,
        build_groups,
    ] {
        v.extend_from_slice(&gpu::grid(g.max(1)));
    }
    v
}
