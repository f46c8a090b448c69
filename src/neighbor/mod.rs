//! Neighbor search: a cell list (`cell_list`) feeding a Verlet list with a skin
//! (driver of `shaders/neighbor.wgsl`), rebuilt when the GPU decides to.
//!
//! Correctness contract: the list holds every pair closer than cutoff + skin at build time
//! (minimum image), each pair in both rows; a rebuild happens before any atom has moved
//! more than skin/2, so no pair inside the cutoff is ever missing. Overflow of the
//! fixed per-atom capacity is reported (status MAX_NBRS) and the engine rolls back and regrows.

pub mod cell_list;

use anyhow::Result;

use crate::gpu::{self, GpuContext, Kernel, ShaderModule, WG};
use crate::system::System;

/// How pairs are found. A Verlet list costs `4·capacity` bytes per atom (~480 for liquid LJ)
/// but makes each force evaluation visit only the ~80 atoms inside cutoff + skin; the cell
/// list alone (~100 bytes per atom in all) makes the force kernel visit the ~500 atoms of the
/// 27 surrounding cells at every step. `Auto` takes the list unless it would not fit one
/// storage binding (millions of atoms), then the cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NeighborMode {
    #[default]
    Auto,
    Verlet,
    Cells,
}

impl std::str::FromStr for NeighborMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<NeighborMode> {
        match s {
            "auto" => Ok(NeighborMode::Auto),
            "verlet" => Ok(NeighborMode::Verlet),
            "cells" => Ok(NeighborMode::Cells),
            _ => anyhow::bail!("neighbor mode \"{s}\" is unknown (known: auto, verlet, cells)"),
        }
    }
}

/// An A/B switch set to 0 (`WGMD_…=0` turns a default optimisation off).
pub(crate) fn switched_off(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "0")
}

/// How the list's rows are ordered and their entries laid out (`list_word` in
/// `shaders/common.wgsl`). The force kernels that read the list must be built with the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListLayout {
    /// Row r belongs to atom r and holds atom indices; entry k of row r is word k·n + r.
    /// What ANI and browsers use.
    ByAtom,
    /// Row r belongs to the atom in cell slot r (`cell_atoms[r]`) and holds the slots of its
    /// neighbors, whose positions the force kernels read from the slot-ordered copy
    /// `slot_pos`; entries column-major as `ByAtom`.
    BySlot,
    /// As `BySlot`, each row's entries in groups of eight (32 bytes), group g of row r at
    /// words (g·n + r)·8: a build thread stores whole sectors, a force thread reads a group as
    /// two vec4u.
    BySlotPacked,
    /// As `BySlotPacked`, the entries inside the force cutoff at the build from the row's
    /// front and the skin's shell from its back (outer entry m at k = capacity − 8 − 8⌊m/8⌋ +
    /// m mod 8), `nbr_count` = inner | outer << 16 (`shaders/split_rows.wgsl`): the force
    /// kernels compute only the shell's entries that came inside. One thread per row only.
    BySlotSplit,
}

impl ListLayout {
    pub fn slot_rows(self) -> bool {
        self != ListLayout::ByAtom
    }
    pub fn packed(self) -> bool {
        matches!(self, ListLayout::BySlotPacked | ListLayout::BySlotSplit)
    }
    pub fn split(self) -> bool {
        self == ListLayout::BySlotSplit
    }
    /// Whether a build with `threads_per_atom` threads per row can write this layout (split
    /// rows keep their two ends in one thread's registers).
    pub fn allows(self, threads_per_atom: u32) -> bool {
        !self.split() || threads_per_atom == 1
    }
    /// The layout where rows by slot are possible: packed unless `WGMD_SLOT_ROWS=0` (rows by
    /// atom) or `WGMD_PACKED_LIST=0` (rows by slot, column-major) ask otherwise, split where
    /// one thread builds a row and `WGMD_SPLIT_ROWS=1` asks for it (A/B runs: split rows are
    /// opt-in until measured on a GPU; BENCHMARKS.md, Coulomb, sixteenth session).
    pub fn default_with_slots(threads_per_atom: u32) -> ListLayout {
        if switched_off("WGMD_SLOT_ROWS") {
            ListLayout::ByAtom
        } else if switched_off("WGMD_PACKED_LIST") {
            ListLayout::BySlot
        } else if threads_per_atom == 1 && std::env::var("WGMD_SPLIT_ROWS").is_ok_and(|v| v == "1")
        {
            ListLayout::BySlotSplit
        } else {
            ListLayout::BySlotPacked
        }
    }
    /// Row positions k (see [`word`](Self::word)) of the entries of a row whose
    /// `nbr_count` word is `count`, and the room the row needs (more than `capacity` is an
    /// overflow).
    pub fn row_entries(self, count: u32, capacity: usize) -> (Vec<usize>, usize) {
        if !self.split() {
            return ((0..count as usize).collect(), count as usize);
        }
        let (inner, outer) = split_counts(count);
        let (inner, outer) = (inner as usize, outer as usize);
        let need = inner.next_multiple_of(8) + outer.next_multiple_of(8);
        let k =
            (0..inner).chain((0..outer).map(|m| (capacity + (m & 7)).wrapping_sub(8 + (m & !7))));
        (k.collect(), need)
    }
    /// The shaders' overrides for this layout (`split_rows.wgsl`): `outer_cut2` is the
    /// largest force cutoff squared, as the f32 the force kernels compare with.
    pub fn split_overrides(self, outer_cut2: f32) -> [(&'static str, f64); 2] {
        [
            ("SPLIT", self.split() as u32 as f64),
            ("OUTER_CUT2", outer_cut2 as f64),
        ]
    }
    /// Word of entry k of row r in a list of n rows (`list_word` in `shaders/common.wgsl`).
    pub fn word(self, k: usize, r: usize, n: usize) -> usize {
        if self.packed() {
            ((k >> 3) * n + r) * 8 + (k & 7)
        } else {
            k * n + r
        }
    }
    /// Every layout, for tests.
    pub const ALL: [ListLayout; 4] = [
        ListLayout::ByAtom,
        ListLayout::BySlot,
        ListLayout::BySlotPacked,
        ListLayout::BySlotSplit,
    ];
}

/// (inner, outer) entries of a split row from its `nbr_count` word (`split_inner`,
/// `split_outer` in shaders/split_rows.wgsl).
pub fn split_counts(count: u32) -> (u32, u32) {
    (count & 0xffff, count >> 16)
}

/// How the list is laid out and built (see `shaders/neighbor.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BuildPlan {
    /// Threads sharing one atom's rows in the build (the shader's `TPA`).
    pub threads_per_atom: u32,
    pub layout: ListLayout,
    /// Workgroups of one build dispatch.
    pub groups: u32,
    /// Split rows: the largest force cutoff, squared (entries closer at the build are inner).
    pub outer_cut2: f32,
}

impl BuildPlan {
    pub fn new(
        n_atoms: u32,
        threads_per_atom: u32,
        layout: ListLayout,
        outer_cut2: f32,
    ) -> Result<BuildPlan> {
        if !layout.allows(threads_per_atom) {
            anyhow::bail!(
                "the {layout:?} list layout needs one build thread per atom, not {threads_per_atom}"
            );
        }
        Ok(BuildPlan {
            threads_per_atom,
            layout,
            groups: gpu::groups_for(n_atoms, WG / threads_per_atom),
            outer_cut2,
        })
    }
}

/// Storage buffers per shader stage that the slot-row force kernels need (the Coulomb one:
/// 14 with its charges, exclusions and type-pair tables).
pub const SLOT_ROWS_MIN_STORAGE: u32 = 14;

/// Neighbor slots per row are a multiple of this (a packed row's group; it also keeps the
/// list's size a multiple of 16 bytes, as its array<vec4u> binding needs).
pub const CAPACITY_STEP: u32 = 8;

/// Rebuild by pairs: at most this many atoms past skin/2 are checked per step (more: rebuild).
pub const FAST_CAP: u32 = 4096;

/// The pair check's cap for `n_atoms` atoms: [`FAST_CAP`], or `WGMD_PAIR_CAP` (≥ 1) for
/// experiments with the cap's effect on list lifetimes.
pub fn pair_cap(_n_atoms: u32) -> u32 {
    std::env::var("WGMD_PAIR_CAP")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&c| c >= 1)
        .unwrap_or(FAST_CAP)
}

/// Rebuild by pairs: the check's stencil, how far atoms may move before it no longer
/// covers them, and its cap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairRule {
    /// `PAIR_REACH` in shaders/neighbor.wgsl ([`pair_reach`]).
    pub reach: u32,
    /// `PAIR_DMAX`: the largest displacement (or forecast) the stencil covers ([`pair_dmax`]).
    pub dmax: f64,
    /// The most atoms past skin/2 checked in a step; more: rebuild ([`pair_cap`]).
    pub cap: u32,
}

impl PairRule {
    /// The rule for `cutoff` (the force cutoff), `skin` and cells whose smallest edge is
    /// `edge`, with the check's cap `cap`.
    pub fn new(cutoff: f64, skin: f64, edge: f64, cap: u32) -> PairRule {
        let reach = pair_reach(cutoff, skin, edge);
        PairRule {
            reach,
            dmax: pair_dmax(cutoff, reach, edge),
            cap,
        }
    }
}

/// Words of the pair check's list (`pair_list` in shaders/integrate.wgsl) for a cap: the
/// check's indirect dispatch arguments (listed atoms, 1, 1), the count of atoms past skin/2,
/// then the listed atoms.
pub fn pair_list_words(cap: u32) -> usize {
    4 + cap as usize
}

/// The pair list's head between steps: no workgroups, nothing listed.
pub fn pair_list_head() -> [u32; 4] {
    [0, 1, 1, 0]
}

/// Cells per axis on each side that the pair check visits (`PAIR_REACH` in
/// shaders/neighbor.wgsl): enough to cover `cutoff + 2 skin` with cells of `edge` or more.
pub fn pair_reach(cutoff: f64, skin: f64, edge: f64) -> u32 {
    // The margin covers the f32 list cutoff this is derived from.
    ((cutoff + 2.0 * skin) * (1.0 + 1e-6) / edge)
        .ceil()
        .max(1.0) as u32
}

/// The largest displacement that a check of `reach` cells per side (smallest edge `edge`)
/// covers: atom b can come within `cutoff` of atom a only if their build positions are within
/// cutoff + |d_a| + |d_b|, and the stencil holds every build position within reach · edge of
/// a's. Beyond it (≥ the skin, by [`pair_reach`]) the list is rebuilt. The 1e-4 margin covers
/// the shader's f32 cutoff and its own 1e-5 margins.
pub fn pair_dmax(cutoff: f64, reach: u32, edge: f64) -> f64 {
    0.5 * (reach as f64 * edge * (1.0 - 1e-4) - cutoff)
}

pub struct NeighborKernels {
    build: Kernel,
    /// `slot_gather` (rows by slot only): the positions in cell-slot order, every step.
    gather: Option<Kernel>,
    gather_bind: Option<wgpu::BindGroup>,
    n_atoms: u32,
    /// False in cell-list mode: there is no Verlet list to build.
    has_list: bool,
    plan: BuildPlan,
    /// `decide` at a rebuild opportunity, and the check-only variant for the steps between.
    decide: Kernel,
    check: Kernel,
    /// Rebuild by pairs: `pair_check`, run every step before `decide`.
    pair_check: Option<Kernel>,
    pairs: Option<PairRule>,
    build_bind: Option<wgpu::BindGroup>,
    decide_bind: Option<wgpu::BindGroup>,
    check_bind: Option<wgpu::BindGroup>,
    pairs_bind: Option<wgpu::BindGroup>,
}

impl NeighborKernels {
    /// `pairs`: rebuild by pairs with that rule, else None.
    pub fn new(
        ctx: &GpuContext,
        plan: BuildPlan,
        n_atoms: u32,
        has_list: bool,
        pairs: Option<PairRule>,
    ) -> Result<NeighborKernels> {
        let module = ShaderModule::new(ctx, "neighbor")?;
        let build = Kernel::new(
            ctx,
            &module,
            "nbr_build",
            &[
                ("TPA", plan.threads_per_atom as f64),
                ("SLOT_ROWS", plan.layout.slot_rows() as u32 as f64),
                ("PACKED", plan.layout.packed() as u32 as f64),
                ("PRUNE", !switched_off("WGMD_ROW_PRUNE") as u32 as f64),
                (
                    "SHIFT_IMAGES",
                    !switched_off("WGMD_NBR_SHIFT") as u32 as f64,
                ),
                ("WRAP_ONCE", !switched_off("WGMD_NBR_WRAP") as u32 as f64),
                (
                    "SHIFT_GROUP",
                    !switched_off("WGMD_NBR_SHIFT_GROUP") as u32 as f64,
                ),
            ]
            .into_iter()
            .chain(plan.layout.split_overrides(plan.outer_cut2))
            .collect::<Vec<_>>(),
        )?;
        let pair_ov = match pairs {
            Some(r) => vec![
                ("PAIRS", 1.0),
                ("PAIR_REACH", r.reach as f64),
                ("PAIR_DMAX2", r.dmax * r.dmax),
                ("FAST_CAP", r.cap as f64),
                (
                    "AHEAD_MARGIN",
                    std::env::var("WGMD_AHEAD_MARGIN")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(2.0),
                ),
            ],
            None => vec![],
        };
        let mut check_ov = pair_ov.clone();
        check_ov.push(("OPPORTUNITY", 0.0));
        let gather = if plan.layout.slot_rows() && has_list {
            Some(Kernel::new(ctx, &module, "slot_gather", &[])?)
        } else {
            None
        };
        Ok(NeighborKernels {
            build,
            gather,
            gather_bind: None,
            n_atoms,
            has_list,
            plan,
            decide: Kernel::new(ctx, &module, "decide", &pair_ov)?,
            check: Kernel::new(ctx, &module, "decide", &check_ov)?,
            pair_check: match pairs {
                Some(_) => Some(Kernel::new(ctx, &module, "pair_check", &pair_ov)?),
                None => None,
            },
            build_bind: None,
            decide_bind: None,
            check_bind: None,
            pairs_bind: None,
            pairs,
        })
    }

    pub fn plan(&self) -> BuildPlan {
        self.plan
    }

    pub fn bind(&mut self, ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> Result<()> {
        self.build_bind = Some(self.build.bind(ctx, buffers)?);
        self.gather_bind = self
            .gather
            .as_ref()
            .map(|k| k.bind(ctx, buffers))
            .transpose()?;
        self.decide_bind = Some(self.decide.bind(ctx, buffers)?);
        self.check_bind = Some(self.check.bind(ctx, buffers)?);
        self.pairs_bind = self
            .pair_check
            .as_ref()
            .map(|k| k.bind(ctx, buffers))
            .transpose()?;
        Ok(())
    }

    /// Rebuild by pairs: the check of the atoms the integrator listed (an indirect dispatch
    /// of one workgroup per listed atom, from the head of `pair_list`), before `decide`.
    pub fn encode_pair_check(&self, pass: &mut wgpu::ComputePass<'_>, pair_list: &wgpu::Buffer) {
        if let (Some(k), Some(bg)) = (&self.pair_check, &self.pairs_bind) {
            gpu::dispatch_indirect(pass, k, bg, pair_list, 0);
        }
    }

    /// Whether the list is rebuilt by pairs.
    pub fn by_pairs(&self) -> bool {
        self.pairs.is_some()
    }

    /// The rule the list is rebuilt by, if by pairs.
    pub fn pair_rule(&self) -> Option<PairRule> {
        self.pairs
    }

    pub fn encode_build(&self, pass: &mut wgpu::ComputePass<'_>, launch: cell_list::Launch<'_>) {
        if !self.has_list {
            return;
        }
        let bg = self.build_bind.as_ref().expect("bind before encode");
        match launch {
            cell_list::Launch::Direct { .. } => {
                gpu::dispatch(pass, &self.build, bg, self.plan.groups)
            }
            cell_list::Launch::Indirect(buf) => {
                gpu::dispatch_indirect(pass, &self.build, bg, buf, cell_list::args::BUILD)
            }
        }
    }

    /// Rows by slot: refreshes `slot_pos` from `pos` (before every force evaluation).
    pub fn encode_gather(&self, pass: &mut wgpu::ComputePass<'_>) {
        if let (Some(k), Some(bg)) = (&self.gather, &self.gather_bind) {
            gpu::dispatch(pass, k, bg, gpu::groups_for(self.n_atoms, WG));
        }
    }

    /// The per-step decision: at an `opportunity` it may trigger the (indirect) rebuild that
    /// follows; between opportunities it only verifies the list (see `decide` in the shader).
    pub fn encode_decide(&self, pass: &mut wgpu::ComputePass<'_>, opportunity: bool) {
        let (k, bg) = if opportunity {
            (&self.decide, &self.decide_bind)
        } else {
            (&self.check, &self.check_bind)
        };
        gpu::dispatch(pass, k, bg.as_ref().expect("bind before encode"), 1);
    }
}

/// Neighbor slots per atom to start with: the expected count in a sphere of cutoff + skin
/// at the mean density, with room for fluctuations. The engine regrows on overflow.
pub fn initial_capacity(sys: &System, list_cutoff: f64) -> u32 {
    let rho = sys.len() as f64 / sys.volume();
    let expected = rho * 4.0 / 3.0 * std::f64::consts::PI * list_cutoff.powi(3);
    ((1.3 * expected + 16.0).ceil() as u32)
        .min(sys.len() as u32)
        .max(8)
        .next_multiple_of(CAPACITY_STEP)
}

/// Float64 brute-force reference: for each atom, the sorted indices of every other atom
/// within `cutoff` under the minimum-image convention.
pub fn brute_force(sys: &System, cutoff: f64) -> Vec<Vec<u32>> {
    let n = sys.len();
    let l = sys.box_lengths;
    let c2 = cutoff * cutoff;
    let mut rows = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let mut r2 = 0.0;
            for k in 0..3 {
                let x = sys.positions[i][k] - sys.positions[j][k];
                let x = x - l[k] * (x / l[k]).round();
                r2 += x * x;
            }
            if r2 < c2 {
                rows[i].push(j as u32);
            }
        }
    }
    rows
}

/// True when every atom in `row` lies within `cutoff` of atom `i` (minimum image).
pub fn brute_force_pair_ok(sys: &System, i: usize, row: &[u32], cutoff: f64) -> bool {
    let l = sys.box_lengths;
    row.iter().all(|&j| {
        let j = j as usize;
        let mut r2 = 0.0;
        for k in 0..3 {
            let x = sys.positions[i][k] - sys.positions[j][k];
            let x = x - l[k] * (x / l[k]).round();
            r2 += x * x;
        }
        j != i && j < sys.len() && r2 < cutoff * cutoff
    })
}
