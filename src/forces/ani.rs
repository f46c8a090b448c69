//! ANI neural-network potential on the GPU: driver of `shaders/aev.wgsl` (AEVs and analytic
//! forces) and `shaders/mlp.wgsl` (dense layers), for models loaded by [`crate::ani`].
//!
//! Per force evaluation, all in the step's compute pass:
//! 1. `aev_compute`: one workgroup per atom writes its AEV row. Rows are grouped by species
//!    (`row_of`), so each species' network sees one contiguous block of rows. The row holds
//!    only the columns of the elements present (`AevColumns`: the shaders see the model as
//!    if it had only those species; layer 1 gets the matching weight columns).
//! 2. Per species and per chunk of rows: layer 1 of all ensemble members as one wide GEMM
//!    (members stacked along the output), layers 2–3 as a GEMM batched over members, the
//!    output layer + ensemble mean (`mlp_energy`), then the backward pass down to dE/dAEV,
//!    which overwrites the chunk's AEV rows (they are no longer needed). Chunking bounds the
//!    activation memory independently of the system size.
//! 3. `aev_force`: one workgroup per atom gathers −∂E/∂r from pairs and from the triples it
//!    centres (each triple evaluated once), and stores what each angular neighbor's move
//!    costs it; `aev_force_sides` (one thread per atom) adds those as seen from the sides.
//!
//! With f16 storage on an adapter that has wgpu's experimental cooperative matrices with a
//! 16×16×16 f16 → f32 configuration and 32-lane subgroups ([`coop_support`]), the products
//! of step 2 run on tensor cores (`shaders/mlp_coop.wgsl`); elsewhere (lavapipe, browsers,
//! f32) on the plain kernels. Both are checked against float64 in `tests/ani_coop.rs`.
//!
//! Energies are Hartree inside; `energy_scale` converts forces (Hartree/Å) and per-atom
//! energies to the engine's units. Self energies are constant and added on the host in f64.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use bytemuck::{Pod, Zeroable};

use crate::ani::{Activation, AniModel};
use crate::gpu::{self, GpuContext, Kernel, ShaderModule, WG};

/// 1 Hartree in eV (the value TorchANI and ASE use).
pub const HARTREE_EV: f64 = 27.211386024367243;

/// Storage precision of AEVs, weights and activations (sums are always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AniPrecision {
    F32,
    /// f16 storage, native `f16` types where the adapter has SHADER_F16.
    F16,
    /// f16 storage packed in u32 words (what adapters without SHADER_F16 run); selectable so
    /// tests cover that path on every machine.
    F16Packed,
}

impl AniPrecision {
    pub fn parse(s: &str) -> Result<AniPrecision> {
        match s {
            "f32" | "fp32" => Ok(AniPrecision::F32),
            "f16" | "fp16" => Ok(AniPrecision::F16),
            "f16-packed" => Ok(AniPrecision::F16Packed),
            other => bail!("precision \"{other}\" is unknown for ANI (known: f32, f16)"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AniPrecision::F32 => "f32",
            AniPrecision::F16 => "f16",
            AniPrecision::F16Packed => "f16-packed",
        }
    }
    fn bytes(self) -> u64 {
        match self {
            AniPrecision::F32 => 4,
            AniPrecision::F16 | AniPrecision::F16Packed => 2,
        }
    }
}

/// What a simulation needs to run ANI forces.
#[derive(Clone, Debug)]
pub struct AniSpec {
    pub model: Arc<AniModel>,
    pub precision: AniPrecision,
    /// Model species index of each system type.
    pub type_species: Vec<usize>,
    /// |F| (engine units) above which a step counts as a blow-up (infinite for single points).
    pub max_force: f64,
    /// Let f16 runs use the tensor-core GEMMs where the adapter has them ([`coop_support`]);
    /// false forces the plain kernels (tests compare the two on one device).
    pub allow_coop: bool,
    /// Lay the AEV out for the species this system has (`AevColumns`); false keeps all of
    /// the model's columns (same result, tests compare the two; WGMD_ANI_FULL_AEV=1).
    pub compact_aev: bool,
    /// Upper bound on the rows of one network chunk (tests: several chunks on a small system).
    pub max_chunk_rows: Option<u32>,
}

impl AniSpec {
    /// Maps the system's type names (element symbols) to model species; the error names the
    /// first type the model does not cover.
    pub fn new(
        model: Arc<AniModel>,
        precision: AniPrecision,
        type_names: &[String],
    ) -> Result<AniSpec> {
        let type_species = model.species_for_atoms(type_names).map_err(|_| {
            let bad = type_names
                .iter()
                .find(|t| model.species_of(t).is_none())
                .cloned()
                .unwrap_or_default();
            anyhow!(
                "element {bad} is not covered by the ANI model {} (elements: {})",
                model.source.display(),
                model.symbols.join(" ")
            )
        })?;
        Ok(AniSpec {
            model,
            precision,
            type_species,
            max_force: 1e4,
            allow_coop: true,
            compact_aev: std::env::var("WGMD_ANI_FULL_AEV").map_or(true, |v| v != "1"),
            max_chunk_rows: None,
        })
    }

    /// Σ of the self energies (Hartree) of atoms with these types, summed in f64.
    pub fn self_energy(&self, types: &[u32]) -> f64 {
        types
            .iter()
            .map(|&t| self.model.self_energies[self.type_species[t as usize]])
            .sum()
    }
}

/// Mirrors `AniParams` in aev.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AniParamsGpu {
    rcr: f32,
    rca: f32,
    eta_r: f32,
    eta_a: f32,
    zeta: f32,
    n_species: u32,
    n_shf_r: u32,
    n_shf_a: u32,
    n_shf_z: u32,
    radial_len: u32,
    aev_len: u32,
    energy_scale: f32,
    half_pi_rcr: f32,
    half_pi_rca: f32,
    max_ang: u32,
    _pad: u32,
    shf_r: [f32; 32],
    shf_a: [f32; 16],
    cos_z: [f32; 8],
    sin_z: [f32; 8],
}

/// Mirrors `Gemm` in mlp.wgsl (offsets and strides in elements).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_off: u32,
    lda: u32,
    a_bs: u32,
    row0: u32,
    b_off: u32,
    ldb: u32,
    b_bs: u32,
    scale: f32,
    c_off: u32,
    ldc: u32,
    c_bs: u32,
    _pad: u32,
    bias_off: u32,
    bias_bs: u32,
    w4_off: u32,
    w4_bs: u32,
}

/// Where one species' networks (all members) live in the packed weight buffer.
#[derive(Clone, Copy, Debug)]
struct NetLayout {
    h: [u32; 3],
    w1: u32,
    b1: u32,
    w2: u32,
    b2: u32,
    w3: u32,
    b3: u32,
    w4: u32,
    b4: u32,
    w1t: u32,
    w2t: u32,
    w3t: u32,
}

/// Limits of the WGSL kernels (workgroup caches and lane mappings), checked against the model.
const MAX_SPECIES: usize = 7;
/// Angular neighbors (within R_ca) per atom: the workgroup cache of `aev.wgsl` (`MAX_ANG`) and
/// the per-atom slots of `ang_d`. Condensed matter has ~20 within ANI-2x's 3.5 Å; more is
/// reported as an error, never dropped silently.
pub const MAX_ANG_NEIGHBORS: u32 = 64;

fn check_model(model: &AniModel) -> Result<()> {
    let p = &model.aev;
    let src = model.source.display();
    let ok = p.n_species <= MAX_SPECIES
        && p.shf_r.len() <= 32
        && p.shf_r.len() % 2 == 0
        && p.shf_a.len() <= 16
        && p.shf_z.len() <= 8
        && p.shf_z.len() % 2 == 0
        && p.shf_a.len() * p.shf_z.len() <= 32
        && p.radial_len() <= 128
        && p.angular_len() <= 896
        && p.aev_len() % 16 == 0;
    if !ok {
        bail!(
            "the AEV layout of {src} ({} species, {} radial and {}×{} angular shifts) is outside what \
             the GPU kernels support (≤ 7 species, ≤ 32 even radial shifts, ≤ 32 angular terms \
             with an even number of sections, AEV length a multiple of 16)",
            p.n_species,
            p.shf_r.len(),
            p.shf_a.len(),
            p.shf_z.len()
        );
    }
    if model.members.is_empty() {
        bail!("the ANI model {src} has no ensemble members");
    }
    for s in 0..p.n_species {
        let first = &model.members[0][s];
        for (m, member) in model.members.iter().enumerate() {
            let net = &member[s];
            let shape_ok = net.layers.len() == 4
                && net.layers[..3]
                    .iter()
                    .all(|l| l.activation == Activation::Celu && l.n_out % 16 == 0)
                && net.layers[3].activation == Activation::Linear
                && net.layers[3].n_out == 1
                && net.layers[0].n_in == p.aev_len();
            if !shape_ok {
                bail!(
                    "the {} network of member {m} in {src} is not AEV → 3 CELU layers (widths multiple \
                     of 16) → 1 linear output, which is what the GPU kernels implement",
                    model.symbols[s]
                );
            }
            if net
                .layers
                .iter()
                .zip(&first.layers)
                .any(|(a, b)| a.n_out != b.n_out)
            {
                bail!(
                    "ensemble members of {src} differ in the {} network's layer widths",
                    model.symbols[s]
                );
            }
        }
    }
    Ok(())
}

/// The AEV layout the GPU uses for one system: the model's layout as if the model had only the
/// species present (in model order), padded with zero columns to a multiple of 16. Exact: a
/// feature of an absent species (radial block) or of a pair with an absent species (angular
/// block) is zero for every atom, and so is its derivative; dropping it drops only products
/// with zero. A water box keeps 128 of ANI-2x's 1008 columns, an H/C/N/O system 384, so the
/// first layer and its backward product (half of the network FLOPs with all 1008) shrink with it.
#[derive(Clone, Debug)]
struct AevColumns {
    /// Compact species index of each model species (absent ones: never looked up, 0).
    compact_species: Vec<u32>,
    n_species: usize,
    /// Model-layout column of each compact column (radial blocks, then angular, then None for
    /// the padding to a multiple of 16).
    full: Vec<Option<usize>>,
}

impl AevColumns {
    /// The layout for the species occurring in `species` (model indices, any order or count).
    fn new(p: &crate::ani::AevParams, species: &[usize]) -> AevColumns {
        let kept: Vec<usize> = (0..p.n_species).filter(|s| species.contains(s)).collect();
        let mut compact_species = vec![0u32; p.n_species];
        for (c, &s) in kept.iter().enumerate() {
            compact_species[s] = c as u32;
        }
        let nr = p.shf_r.len();
        let n_az = p.shf_a.len() * p.shf_z.len();
        let mut full = Vec::new();
        for &s in &kept {
            full.extend((0..nr).map(|k| Some(s * nr + k)));
        }
        // Upper-triangle pair order over compact indices = the model's order restricted to
        // kept species (the compact index is monotone in the model index).
        for (a, &u) in kept.iter().enumerate() {
            for &v in &kept[a..] {
                let base = p.radial_len() + p.species_pair_index(u, v) * n_az;
                full.extend((0..n_az).map(|k| Some(base + k)));
            }
        }
        let len = full.len().next_multiple_of(16).max(16);
        full.resize(len, None);
        AevColumns {
            compact_species,
            n_species: kept.len(),
            full,
        }
    }

    /// Padded length (a multiple of 16).
    fn len(&self) -> usize {
        self.full.len()
    }
}

/// Packs every species' weights (forward layout + transposed copies for the backward pass),
/// each segment aligned to 8 elements so vec4 loads of f32 and f16 stay aligned. Layer 1 keeps
/// only the AEV columns in `cols`, in their order (zero weights for padding).
fn pack_weights(model: &AniModel, cols: &AevColumns) -> (Vec<f32>, Vec<NetLayout>) {
    let mut buf: Vec<f32> = Vec::new();
    let push = |buf: &mut Vec<f32>, data: &[f32]| -> u32 {
        while buf.len() % 8 != 0 {
            buf.push(0.0);
        }
        let off = buf.len() as u32;
        buf.extend_from_slice(data);
        off
    };
    let members = &model.members;
    let mut layouts = Vec::new();
    for s in 0..model.aev.n_species {
        let l = |m: usize, k: usize| &members[m][s].layers[k];
        let h = [l(0, 0).n_out, l(0, 1).n_out, l(0, 2).n_out];
        let k_full = l(0, 0).n_in;
        let k_in = cols.len();
        let cat = |k: usize, f: &dyn Fn(&crate::ani::Layer) -> &Vec<f32>| -> Vec<f32> {
            (0..members.len())
                .flat_map(|m| f(l(m, k)).clone())
                .collect()
        };
        let transpose = |w: &[f32], rows: usize, cols: usize| -> Vec<f32> {
            let mut t = vec![0.0; rows * cols];
            for r in 0..rows {
                for c in 0..cols {
                    t[c * rows + r] = w[r * cols + c];
                }
            }
            t
        };
        // Layer 1 over members, [M·h1][k_in], its columns picked from the model's k_full.
        let w1_all: Vec<f32> = cat(0, &|x| &x.weights)
            .chunks_exact(k_full)
            .flat_map(|row| cols.full.iter().map(|c| c.map_or(0.0, |c| row[c])))
            .collect();
        let w1 = push(&mut buf, &w1_all);
        let b1 = push(&mut buf, &cat(0, &|x| &x.biases));
        let w2 = push(&mut buf, &cat(1, &|x| &x.weights));
        let b2 = push(&mut buf, &cat(1, &|x| &x.biases));
        let w3 = push(&mut buf, &cat(2, &|x| &x.weights));
        let b3 = push(&mut buf, &cat(2, &|x| &x.biases));
        let w4 = push(&mut buf, &cat(3, &|x| &x.weights));
        let b4 = push(&mut buf, &cat(3, &|x| &x.biases));
        // Layer 1 stacked over members is [M·h1][K]; its transpose is [K][M·h1].
        let w1t = push(&mut buf, &transpose(&w1_all, members.len() * h[0], k_in));
        let w2t_all: Vec<f32> = (0..members.len())
            .flat_map(|m| transpose(&l(m, 1).weights, h[1], h[0]))
            .collect();
        let w2t = push(&mut buf, &w2t_all);
        let w3t_all: Vec<f32> = (0..members.len())
            .flat_map(|m| transpose(&l(m, 2).weights, h[2], h[1]))
            .collect();
        let w3t = push(&mut buf, &w3t_all);
        layouts.push(NetLayout {
            h: h.map(|x| x as u32),
            w1,
            b1,
            w2,
            b2,
            w3,
            b3,
            w4,
            b4,
            w1t,
            w2t,
            w3t,
        });
    }
    while buf.len() % 8 != 0 {
        buf.push(0.0);
    }
    (buf, layouts)
}

fn to_storage_bytes(data: &[f32], precision: AniPrecision) -> Vec<u8> {
    match precision {
        AniPrecision::F32 => bytemuck::cast_slice(data).to_vec(),
        AniPrecision::F16 | AniPrecision::F16Packed => data
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
    }
}

/// Why this context cannot run the tensor-core GEMMs of `shaders/mlp_coop.wgsl`, or Ok:
/// wgpu's experimental cooperative matrices on the device (gpu::GpuContext asks for them where
/// the adapter has them, unless WGMD_COOP=0), native f16, a 16×16×16 configuration with f16
/// inputs and f32 accumulation, and subgroups of exactly 32 lanes (the kernels give each
/// 32-lane slice of a 128-lane workgroup its own tiles).
pub fn coop_support(ctx: &GpuContext) -> std::result::Result<(), String> {
    if !ctx
        .features
        .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
    {
        return Err(format!(
            "the device has no cooperative matrices (adapter {}: {})",
            ctx.info.name,
            if ctx
                .adapter
                .features()
                .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            {
                "not requested, WGMD_COOP=0"
            } else {
                "not offered"
            }
        ));
    }
    if !ctx.has_f16() {
        return Err("the device has no SHADER_F16".into());
    }
    let props = ctx.adapter.cooperative_matrix_properties();
    let fits = props.iter().any(|p| {
        p.m_size == 16
            && p.n_size == 16
            && p.k_size == 16
            && p.ab_type == wgpu::CooperativeScalarType::F16
            && p.cr_type == wgpu::CooperativeScalarType::F32
    });
    if !fits {
        return Err(format!(
            "no 16x16x16 f16 -> f32 cooperative matrix configuration (offered: {props:?})"
        ));
    }
    let (lo, hi) = (ctx.info.subgroup_min_size, ctx.info.subgroup_max_size);
    if (lo, hi) != (32, 32) {
        return Err(format!(
            "subgroup sizes {lo}..{hi}, the kernels need exactly 32"
        ));
    }
    Ok(())
}

/// One dispatch of an evaluation (`AniForce::dispatch_list`).
struct Dispatch<'a> {
    name: &'a str,
    stage: u32,
    pipeline: &'a wgpu::ComputePipeline,
    bind: &'a wgpu::BindGroup,
    grid: [u32; 3],
}

impl Dispatch<'_> {
    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(self.pipeline);
        pass.set_bind_group(0, self.bind, &[]);
        pass.dispatch_workgroups(self.grid[0], self.grid[1], self.grid[2]);
    }
}

struct Job {
    kernel: usize,
    bind: wgpu::BindGroup,
    grid: [u32; 3],
    _uniform: wgpu::Buffer,
    /// For profiles: position, kernel and product shape "m×n×k" (× batch when batched).
    label: String,
}

pub struct AniForce {
    pub spec: AniSpec,
    n_atoms: u32,
    aev_k: Kernel,
    force_k: Kernel,
    sides_k: Kernel,
    /// gemm MODE 0..3, mlp_energy, gemm_wide MODE 0..3, then with tensor cores gemm_coop
    /// MODE 0..3 and gemm_coop_wide MODE 0..3.
    mlp_k: Vec<Kernel>,
    coop: bool,
    coop_wide: bool,
    coop_staged: bool,
    jobs: Vec<Job>,
    aev_bind: Option<wgpu::BindGroup>,
    force_bind: Option<wgpu::BindGroup>,
    sides_bind: Option<wgpu::BindGroup>,
    ani_params: wgpu::Buffer,
    species_of_type: wgpu::Buffer,
    row_of: wgpu::Buffer,
    aev: wgpu::Buffer,
    pub atom_energy: wgpu::Buffer,
    /// Per atom: Σ ∂E/∂v_j for each angular neighbor j, and their count (`aev_force`).
    ang_d: wgpu::Buffer,
    ang_n: wgpu::Buffer,
    /// Activation buffers (h1, d1, h2, d2, h3, d3), kept for `poison`.
    acts: Vec<wgpu::Buffer>,
    gpu_bytes: u64,
    chunk_rows: u32,
    aev_len: u32,
}

/// Index of `mlp_energy` in `mlp_k`; `gemm` modes come before it, `gemm_wide` modes after.
const ENERGY_KERNEL: usize = 4;
const WIDE_OFFSET: usize = 5;
/// Index of `gemm_coop` MODE 0 in `mlp_k`; `gemm_coop_wide` MODE 0 is 4 further,
/// `gemm_coop_wide_s` 8.
const COOP_OFFSET: usize = 9;
/// Workgroup tile edge of the wide kernels (plain and coop): the most rows or columns a
/// product's unmasked cooperative loads may reach past its matrix, hence the padding.
const WIDE_TILE: u32 = 128;
/// Output width from which a product uses `gemm_wide` (its 128-wide tiles waste too much on
/// the 96–256-wide hidden layers: f32 networks 53.1 → 56.6 ms at 100,002 atoms with them).
const WIDE_MIN_N: u32 = 512;
/// The same for the tensor-core kernels: every product takes the staged 128-wide tiles, which
/// beat the 64-wide ones even at 62–75 % tile use (H200, ANI call 8: f16 networks 19.70 →
/// 18.94 ms at 100,002 atoms, 2.28 → 2.19 at 10,002, 0.81 → 0.75 at 3,000).
const COOP_WIDE_MIN_N: u32 = 0;

impl AniForce {
    /// `types` is the per-atom type id (fixed for the run); `energy_scale` converts Hartree to
    /// the engine's energy unit.
    pub fn new(
        ctx: &GpuContext,
        spec: &AniSpec,
        types: &[u32],
        energy_scale: f64,
    ) -> Result<AniForce> {
        let model = &*spec.model;
        check_model(model)?;
        let p = &model.aev;
        let n = types.len();
        let n_members = model.members.len() as u32;
        let prec = spec.precision;
        let eb = prec.bytes();
        let coop = prec == AniPrecision::F16 && spec.allow_coop && coop_support(ctx).is_ok();
        // A/B knobs for benchmarks: WGMD_COOP_WIDE=0 runs every product on the 64-wide
        // tensor-core tiles; WGMD_COOP_STAGED=0 runs the wide ones without staging their slabs
        // in workgroup memory (`gemm_coop_wide`, fragments loaded straight from storage).
        let coop_wide = coop && std::env::var("WGMD_COOP_WIDE").map_or(true, |v| v != "0");
        let coop_staged = coop_wide && std::env::var("WGMD_COOP_STAGED").map_or(true, |v| v != "0");
        // WGMD_WIDE_MIN_N=n: products from n output columns on take the 128-wide tiles, plain or
        // tensor-core (A/B for the 96–256-wide hidden layers).
        let wide_min_n = std::env::var("WGMD_WIDE_MIN_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if coop { COOP_WIDE_MIN_N } else { WIDE_MIN_N });

        // Species-sorted rows.
        let species: Vec<usize> = types
            .iter()
            .map(|&t| spec.type_species[t as usize])
            .collect();
        let mut atom_of_row: Vec<u32> = Vec::with_capacity(n);
        let mut species_rows = Vec::new();
        for s in 0..p.n_species {
            let start = atom_of_row.len() as u32;
            atom_of_row.extend((0..n as u32).filter(|&i| species[i as usize] == s));
            species_rows.push((start, atom_of_row.len() as u32 - start));
        }
        let cols = if spec.compact_aev {
            AevColumns::new(p, &species)
        } else {
            AevColumns::new(p, &(0..p.n_species).collect::<Vec<_>>())
        };
        let aev_len = cols.len() as u32;
        log::debug!(
            "ANI AEV: {} of the model's {} columns ({} species present)",
            aev_len,
            p.aev_len(),
            cols.n_species
        );
        let mut row_of = vec![0u32; n];
        for (r, &a) in atom_of_row.iter().enumerate() {
            row_of[a as usize] = r as u32;
        }

        let t0 = std::time::Instant::now();
        let (weights, layouts) = pack_weights(model, &cols);
        log::debug!("ANI weights packed in {:.3} s", t0.elapsed().as_secs_f64());
        let max_binding = ctx.limits.max_storage_buffer_binding_size as u64;
        let check_size =
            |what: &str, bytes: u64| -> Result<()> {
                if bytes > max_binding {
                    bail!(
                    "the ANI {what} needs {:.1} MiB in one GPU buffer, more than this adapter's \
                     {:.1} MiB storage-binding limit ({} atoms, {}): use fewer atoms{}",
                    bytes as f64 / 1048576.0,
                    max_binding as f64 / 1048576.0,
                    n,
                    prec.name(),
                    if prec == AniPrecision::F32 { " or --precision f16" } else { "" }
                );
                }
                Ok(())
            };
        let mut weights = weights;
        if coop {
            // Unmasked tile loads may read up to a wide tile past the last weight matrix.
            let max_ld = layouts
                .iter()
                .map(|l| l.h[0] * n_members)
                .max()
                .unwrap_or(0)
                .max(aev_len);
            weights.resize(weights.len() + (WIDE_TILE * max_ld) as usize, 0.0);
        }
        let wbytes = to_storage_bytes(&weights, prec);
        check_size("weights", wbytes.len() as u64)?;
        // With tensor cores, a wide tile's loads may reach WIDE_TILE rows past the last atom.
        let aev_rows = n as u64 + if coop { WIDE_TILE as u64 } else { 0 };
        let aev_bytes = (aev_rows * aev_len as u64 * eb)
            .next_multiple_of(16)
            .max(16);
        check_size("AEV buffer", aev_bytes)?;

        // Activation chunk: bounded memory whatever the system size.
        let hmax = |k: usize| layouts.iter().map(|l| l.h[k]).max().unwrap_or(16) as u64;
        let row_elems = n_members as u64 * 2 * (hmax(0) + hmax(1) + hmax(2));
        // 512 MiB: ~27k rows in f16, ~14k in f32. Fewer, larger chunks fill the GPU better
        // (the narrow layer-1 backward product has one column of tiles). At 100,002 atoms on an
        // H200 (ANI calls 3 and 4, 2026-12-02), 192 / 384 / 512 MiB: f16 16.7 / 15.0 / 14.6 ms,
        // f32 23.3 / 20.4 / 19.6 ms, for 348 / 550 / 684 MB (f16) in all — inside the 1 GB
        // the issue allows at that size. WGMD_ANI_CHUNK_MB: A/B.
        let budget: u64 = std::env::var("WGMD_ANI_CHUNK_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&mb| mb >= 1)
            .unwrap_or(512)
            << 20;
        let largest = species_rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as u64;
        let per_buffer_rows = max_binding / (n_members as u64 * hmax(0) * eb);
        let chunk_rows = (budget / (row_elems * eb))
            .min(per_buffer_rows)
            .min(largest.next_multiple_of(64))
            .min(spec.max_chunk_rows.map_or(u64::MAX, u64::from))
            .max(64) as u32
            / 64
            * 64;

        let c = ctx;
        // Tensor-core tiles read whole 128-row blocks of a chunk (the plain kernels mask).
        let act_rows = if coop {
            chunk_rows.next_multiple_of(WIDE_TILE)
        } else {
            chunk_rows
        };
        let act = |label: &str, k: usize| {
            c.storage(
                label,
                (act_rows as u64 * n_members as u64 * hmax(k) * eb).next_multiple_of(16),
            )
        };
        let h1 = act("ani_h1", 0)?;
        let d1 = act("ani_d1", 0)?;
        let h2 = act("ani_h2", 1)?;
        let d2 = act("ani_d2", 1)?;
        let h3 = act("ani_h3", 2)?;
        let d3 = act("ani_d3", 2)?;
        let aev = c.storage("ani_aev", aev_bytes)?;
        let atom_energy = c.storage("ani_atom_energy", 4 * n.max(1) as u64)?;
        let ang_d_bytes = n.max(1) as u64 * MAX_ANG_NEIGHBORS as u64 * 16;
        let ang_d = c.storage("ani_ang_d", ang_d_bytes)?;
        let ang_n = c.storage("ani_ang_n", 4 * n.max(1) as u64)?;
        let wts = {
            use wgpu::util::DeviceExt;
            c.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("ani_weights"),
                    contents: &wbytes,
                    usage: wgpu::BufferUsages::STORAGE,
                })
        };
        let atom_of_row_buf = c.storage_init("atom_of_row", &pad_u32(&atom_of_row))?;
        let row_of_buf = c.storage_init("row_of", &pad_u32(&row_of))?;
        // The shaders see compact species indices (the AEV layout of `cols`).
        let sot: Vec<u32> = spec
            .type_species
            .iter()
            .map(|&s| cols.compact_species[s])
            .collect();
        let species_of_type = c.storage_init("species_of_type", &pad_u32(&sot))?;

        let mut gp = AniParamsGpu::zeroed();
        gp.rcr = p.rcr as f32;
        gp.rca = p.rca as f32;
        gp.eta_r = p.eta_r as f32;
        gp.eta_a = p.eta_a as f32;
        gp.zeta = p.zeta as f32;
        gp.n_species = cols.n_species as u32;
        gp.n_shf_r = p.shf_r.len() as u32;
        gp.n_shf_a = p.shf_a.len() as u32;
        gp.n_shf_z = p.shf_z.len() as u32;
        gp.radial_len = (cols.n_species * p.shf_r.len()) as u32;
        gp.aev_len = aev_len;
        gp.energy_scale = energy_scale as f32;
        gp.half_pi_rcr = (std::f64::consts::PI / (2.0 * p.rcr)) as f32;
        gp.half_pi_rca = (std::f64::consts::PI / (2.0 * p.rca)) as f32;
        gp.max_ang = MAX_ANG_NEIGHBORS;
        for (k, &x) in p.shf_r.iter().enumerate() {
            gp.shf_r[k] = x as f32;
        }
        for (k, &x) in p.shf_a.iter().enumerate() {
            gp.shf_a[k] = x as f32;
        }
        for (k, &x) in p.shf_z.iter().enumerate() {
            gp.cos_z[k] = x.cos() as f32;
            gp.sin_z[k] = x.sin() as f32;
        }
        let ani_params = c.uniform("ani_params", &gp);

        let prelude = match prec {
            AniPrecision::F32 => "prec_f32",
            AniPrecision::F16 if ctx.has_f16() => "prec_f16n",
            AniPrecision::F16 | AniPrecision::F16Packed => "prec_f16",
        };
        let aev_module = ShaderModule::new(c, &format!("{prelude}+aev"))?;
        let mlp_module = ShaderModule::new(c, &format!("{prelude}+mlp"))?;
        let aev_k = Kernel::new(c, &aev_module, "aev_compute", &[])?;
        let force_k = Kernel::new(c, &aev_module, "aev_force", &[])?;
        let sides_k = Kernel::new(c, &aev_module, "aev_force_sides", &[])?;
        let mut mlp_k = Vec::new();
        for mode in 0..4 {
            mlp_k.push(Kernel::new(
                c,
                &mlp_module,
                "gemm",
                &[("MODE", mode as f64)],
            )?);
        }
        mlp_k.push(Kernel::new(c, &mlp_module, "mlp_energy", &[])?);
        for mode in 0..4 {
            mlp_k.push(Kernel::new(
                c,
                &mlp_module,
                "gemm_wide",
                &[("MODE", mode as f64)],
            )?);
        }
        if coop {
            let coop_module = ShaderModule::new(c, "coop+prec_f16n+mlp+mlp_coop")?;
            for entry in ["gemm_coop", "gemm_coop_wide", "gemm_coop_wide_s"] {
                for mode in 0..4 {
                    mlp_k.push(Kernel::new(
                        c,
                        &coop_module,
                        entry,
                        &[("MODE", mode as f64)],
                    )?);
                }
            }
        }

        // The per-chunk job list (fixed for the run: atom species do not change).
        let mut jobs = Vec::new();
        let nm = n_members;
        let mut add = |kernel: usize,
                       g: GemmParams,
                       a: &wgpu::Buffer,
                       cbuf: &wgpu::Buffer,
                       dbuf: &wgpu::Buffer|
         -> Result<()> {
            for v in [
                g.a_off, g.lda, g.a_bs, g.b_off, g.ldb, g.b_bs, g.c_off, g.ldc, g.c_bs,
            ] {
                if v % 4 != 0 {
                    bail!("internal: ANI GEMM offset/stride {v} is not a multiple of 4");
                }
            }
            if kernel != ENERGY_KERNEL && g.k % 16 != 0 {
                bail!(
                    "internal: ANI GEMM inner size {} is not a multiple of 16",
                    g.k
                );
            }
            // Products from wide_min_n columns take the 128 × 128 tiles (with tensor cores: all).
            let wide = kernel != ENERGY_KERNEL && g.n >= wide_min_n && (coop_wide || !coop);
            // The staged kernel fetches 8-element (16-byte) pieces.
            let staged = coop_staged
                && [g.a_off, g.lda, g.a_bs, g.b_off, g.ldb, g.b_bs]
                    .iter()
                    .all(|v| v % 8 == 0);
            let kernel = match (kernel == ENERGY_KERNEL, coop, wide) {
                (true, ..) => kernel,
                (false, false, false) => kernel,
                (false, false, true) => kernel + WIDE_OFFSET,
                (false, true, false) => kernel + COOP_OFFSET,
                (false, true, true) if staged => kernel + COOP_OFFSET + 8,
                (false, true, true) => kernel + COOP_OFFSET + 4,
            };
            let uniform = c.uniform("ani_gemm", &g);
            let bind = mlp_k[kernel].bind(
                c,
                &[
                    ("G", &uniform),
                    ("wts", &wts),
                    ("a_in", a),
                    ("a16", a),
                    ("w16", &wts),
                    ("a_v", a),
                    ("w_v", &wts),
                    ("c_out", cbuf),
                    ("d_aux", dbuf),
                    ("atom_of_row", &atom_of_row_buf),
                    ("atom_energy", &atom_energy),
                ],
            )?;
            let grid = if kernel == ENERGY_KERNEL {
                gpu::grid(g.m.div_ceil(WG))
            } else if wide {
                [g.n.div_ceil(WIDE_TILE), g.m.div_ceil(WIDE_TILE), g.batch]
            } else {
                [g.n.div_ceil(64), g.m.div_ceil(64), g.batch]
            };
            let batch = if g.batch > 1 {
                format!(" x{}", g.batch)
            } else {
                String::new()
            };
            let label = format!(
                "{:02} {} {}x{}x{}{batch}",
                jobs.len(),
                mlp_k[kernel].name,
                g.m,
                g.n,
                g.k
            );
            jobs.push(Job {
                kernel,
                bind,
                grid,
                _uniform: uniform,
                label,
            });
            Ok(())
        };
        for (s, &(start, count)) in species_rows.iter().enumerate() {
            let lay = layouts[s];
            let [h1w, h2w, h3w] = lay.h;
            let mut r0 = start;
            while r0 < start + count {
                let m = chunk_rows.min(start + count - r0);
                let base = GemmParams {
                    m,
                    batch: nm,
                    row0: r0,
                    ..Default::default()
                };
                // Layer 1, all members at once: [m × K] · [M·h1 × K]ᵀ.
                add(
                    0,
                    GemmParams {
                        n: nm * h1w,
                        k: aev_len,
                        batch: 1,
                        a_off: r0 * aev_len,
                        lda: aev_len,
                        b_off: lay.w1,
                        ldb: aev_len,
                        ldc: nm * h1w,
                        bias_off: lay.b1,
                        ..base
                    },
                    &aev,
                    &h1,
                    &d1,
                )?;
                // Layers 2 and 3, batched over members.
                add(
                    0,
                    GemmParams {
                        n: h2w,
                        k: h1w,
                        lda: nm * h1w,
                        a_bs: h1w,
                        b_off: lay.w2,
                        ldb: h1w,
                        b_bs: h2w * h1w,
                        ldc: nm * h2w,
                        c_bs: h2w,
                        bias_off: lay.b2,
                        bias_bs: h2w,
                        ..base
                    },
                    &h1,
                    &h2,
                    &d2,
                )?;
                add(
                    1,
                    GemmParams {
                        n: h3w,
                        k: h2w,
                        lda: nm * h2w,
                        a_bs: h2w,
                        b_off: lay.w3,
                        ldb: h2w,
                        b_bs: h3w * h2w,
                        ldc: nm * h3w,
                        c_bs: h3w,
                        bias_off: lay.b3,
                        bias_bs: h3w,
                        w4_off: lay.w4,
                        w4_bs: h3w,
                        ..base
                    },
                    &h2,
                    &h3,
                    &d3,
                )?;
                // Output layer and ensemble mean → atom_energy (Hartree).
                add(
                    ENERGY_KERNEL,
                    GemmParams {
                        n: h3w,
                        lda: nm * h3w,
                        a_bs: h3w,
                        bias_off: lay.b4,
                        bias_bs: 1,
                        w4_off: lay.w4,
                        w4_bs: h3w,
                        scale: 1.0 / nm as f32,
                        ..base
                    },
                    &h3,
                    &h1,
                    &d1,
                )?;
                // Backward: δ2 = (δ3 · W3) ⊙ CELU′(z2), δ1 = (δ2 · W2) ⊙ CELU′(z1) in place of
                // the activations, then dE/dAEV = mean over members of δ1 · W1 over the AEV rows.
                add(
                    2,
                    GemmParams {
                        n: h2w,
                        k: h3w,
                        lda: nm * h3w,
                        a_bs: h3w,
                        b_off: lay.w3t,
                        ldb: h3w,
                        b_bs: h2w * h3w,
                        ldc: nm * h2w,
                        c_bs: h2w,
                        ..base
                    },
                    &d3,
                    &h2,
                    &d2,
                )?;
                add(
                    2,
                    GemmParams {
                        n: h1w,
                        k: h2w,
                        lda: nm * h2w,
                        a_bs: h2w,
                        b_off: lay.w2t,
                        ldb: h2w,
                        b_bs: h1w * h2w,
                        ldc: nm * h1w,
                        c_bs: h1w,
                        ..base
                    },
                    &h2,
                    &h1,
                    &d1,
                )?;
                add(
                    3,
                    GemmParams {
                        n: aev_len,
                        k: nm * h1w,
                        batch: 1,
                        lda: nm * h1w,
                        b_off: lay.w1t,
                        ldb: nm * h1w,
                        c_off: r0 * aev_len,
                        ldc: aev_len,
                        scale: 1.0 / nm as f32,
                        ..base
                    },
                    &h1,
                    &aev,
                    &d2,
                )?;
                r0 += m;
            }
        }
        log::debug!("ANI setup done in {:.3} s", t0.elapsed().as_secs_f64());
        let gpu_bytes = wbytes.len() as u64
            + aev_bytes
            + [&h1, &d1, &h2, &d2, &h3, &d3]
                .iter()
                .map(|b| b.size())
                .sum::<u64>()
            + 4 * n as u64 * 3
            + ang_d_bytes
            + 4 * n as u64;
        Ok(AniForce {
            spec: spec.clone(),
            n_atoms: n as u32,
            aev_k,
            force_k,
            sides_k,
            mlp_k,
            coop,
            coop_wide,
            coop_staged,
            jobs,
            aev_bind: None,
            force_bind: None,
            sides_bind: None,
            ani_params,
            species_of_type,
            row_of: row_of_buf,
            aev,
            atom_energy,
            ang_d,
            ang_n,
            acts: vec![h1, d1, h2, d2, h3, d3],
            gpu_bytes,
            chunk_rows,
            aev_len,
        })
    }

    /// Binds the engine's buffers (by WGSL name: P, pos, nbr_list, nbr_count, force,
    /// atom_virial, status); call again when any of them is replaced.
    pub fn bind(&mut self, ctx: &GpuContext, engine: &[(&str, &wgpu::Buffer)]) -> Result<()> {
        let mut named: Vec<(&str, &wgpu::Buffer)> = engine.to_vec();
        named.extend_from_slice(&[
            ("A", &self.ani_params),
            ("species_of_type", &self.species_of_type),
            ("row_of", &self.row_of),
            ("aev", &self.aev),
            ("grad", &self.aev),
            ("atom_energy", &self.atom_energy),
            ("ang_d", &self.ang_d),
            ("ang_n", &self.ang_n),
        ]);
        self.aev_bind = Some(self.aev_k.bind(ctx, &named)?);
        self.force_bind = Some(self.force_k.bind(ctx, &named)?);
        self.sides_bind = Some(self.sides_k.bind(ctx, &named)?);
        Ok(())
    }

    /// Records one force evaluation (reads pos + neighbor list, writes force and atom_virial).
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.encode_stages(pass, 3);
    }

    /// The first `stages` of the evaluation (1: AEVs, 2: + networks, 3: + forces); the
    /// benchmark times the prefixes to report where the time goes.
    pub fn encode_stages(&self, pass: &mut wgpu::ComputePass<'_>, stages: u32) {
        for d in self.dispatch_list().filter(|d| d.stage <= stages) {
            d.record(pass);
        }
    }

    /// An evaluation's dispatches in order, each with its stage (1 AEVs, 2 networks,
    /// 3 forces) and a name for profiles. An iterator: `encode` runs it every step.
    fn dispatch_list(&self) -> impl Iterator<Item = Dispatch<'_>> + '_ {
        fn bind(b: &Option<wgpu::BindGroup>) -> &wgpu::BindGroup {
            b.as_ref().expect("AniForce::bind before encode")
        }
        fn per_atom<'a>(
            k: &'a Kernel,
            b: &'a Option<wgpu::BindGroup>,
            stage: u32,
            groups: u32,
        ) -> Dispatch<'a> {
            Dispatch {
                name: &k.name,
                stage,
                pipeline: &k.pipeline,
                bind: bind(b),
                grid: gpu::grid(groups),
            }
        }
        let n = self.n_atoms;
        std::iter::once(per_atom(&self.aev_k, &self.aev_bind, 1, n))
            .chain(self.jobs.iter().map(|job| Dispatch {
                name: &job.label,
                stage: 2,
                pipeline: &self.mlp_k[job.kernel].pipeline,
                bind: &job.bind,
                grid: job.grid,
            }))
            .chain([
                per_atom(&self.force_k, &self.force_bind, 3, n),
                per_atom(&self.sides_k, &self.sides_bind, 3, n.div_ceil(WG)),
            ])
    }

    /// Fills every buffer the kernels write (AEV/gradient rows, activations, atom energies)
    /// with NaN bits, so tests prove each output is written before it is read.
    pub fn poison(&self, ctx: &GpuContext) {
        for b in self
            .acts
            .iter()
            .chain([&self.aev, &self.atom_energy, &self.ang_d, &self.ang_n])
        {
            ctx.queue
                .write_buffer(b, 0, &vec![0xffu8; b.size() as usize]);
        }
    }

    /// Bytes of GPU memory this term allocated (weights, AEV/gradient rows, activations).
    pub fn gpu_bytes(&self) -> u64 {
        self.gpu_bytes
    }
    /// AEV columns the GPU computes and feeds layer 1 (`AevColumns`: the species present).
    pub fn aev_columns(&self) -> u32 {
        self.aev_len
    }

    pub fn chunk_rows(&self) -> u32 {
        self.chunk_rows
    }
    /// Which GEMM kernels the networks run on: "coop" (tensor cores, wide products staged in
    /// workgroup memory), "coop-direct" (WGMD_COOP_STAGED=0), "coop-narrow" (64-wide tiles
    /// only: WGMD_COOP_WIDE=0) or "plain".
    pub fn gemm_path(&self) -> &'static str {
        match (self.coop, self.coop_wide, self.coop_staged) {
            (true, true, true) => "coop",
            (true, true, false) => "coop-direct",
            (true, false, _) => "coop-narrow",
            _ => "plain",
        }
    }
    pub fn dispatches(&self) -> usize {
        self.dispatch_list().count()
    }

    /// Profile for `wgmd bench ani`: seconds per dispatch of each of an evaluation's
    /// dispatches in order, each repeated `reps` times alone (`gpu::time_alone`), named by
    /// entry point (and product shape for the networks). Leaves every output meaningless:
    /// recompute before reading forces.
    pub fn profile(&self, ctx: &GpuContext, reps: u32) -> Result<Vec<(String, f64)>> {
        self.dispatch_list()
            .map(|d| {
                Ok((
                    d.name.to_string(),
                    gpu::time_alone(ctx, reps, |p| d.record(p))?,
                ))
            })
            .collect()
    }
}

/// One batched product `C[b] = A[b] · B[b]ᵀ` (A `batch × m × k`, B `batch × n × k`, both
/// row-major, C `batch × m × n`) in f16 storage through the networks' kernels with the
/// input-gradient epilogue at scale 1 (C = the f32 sum, stored as f16): the tensor-core ones
/// (`coop`) or the plain ones; `tile` is "narrow" (64 × 64), "wide" (128 × 128) or "staged"
/// (128 × 128 with slabs in workgroup memory; the plain path has no such variant and runs
/// "wide"). For the GEMM-level tests; k must be a multiple of 16 and n of 4, like every
/// product the networks run.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn gemm_f16_for_test(
    ctx: &GpuContext,
    coop: bool,
    tile: &str,
    batch: u32,
    m: u32,
    n: u32,
    k: u32,
    a: &[f32],
    b: &[f32],
) -> Result<Vec<f32>> {
    let wide = match tile {
        "narrow" => false,
        "wide" | "staged" => true,
        other => bail!("gemm test: unknown tile variant {other}"),
    };
    if k % 16 != 0 || n % 4 != 0 || m == 0 || n == 0 || batch == 0 {
        bail!("gemm test sizes: k must be a multiple of 16, n of 4, all positive");
    }
    let (mn, nk, mk) = ((m * n) as usize, (n * k) as usize, (m * k) as usize);
    if a.len() != batch as usize * mk || b.len() != batch as usize * nk {
        bail!("gemm test: A or B has the wrong length");
    }
    if coop {
        coop_support(ctx).map_err(|e| anyhow!("no tensor-core path here: {e}"))?;
    }
    // Tile loads reach up to one wide tile past the last row of A and of B: zero padding.
    let pad = |v: &[f32], rows: u32| {
        let mut v = v.to_vec();
        v.resize(v.len() + (WIDE_TILE * rows) as usize, 0.0);
        to_storage_bytes(&v, AniPrecision::F16)
    };
    let a_buf = ctx.storage_init("gemm_test_a", &pad(a, k))?;
    let b_buf = ctx.storage_init("gemm_test_b", &pad(b, k))?;
    let c_buf = ctx.storage("gemm_test_c", 2 * (batch as u64) * mn as u64)?;
    let d_buf = ctx.storage("gemm_test_d", 16)?;
    let g = GemmParams {
        m,
        n,
        k,
        batch,
        a_off: 0,
        lda: k,
        a_bs: m * k,
        b_off: 0,
        ldb: k,
        b_bs: n * k,
        scale: 1.0,
        c_off: 0,
        ldc: n,
        c_bs: m * n,
        ..Default::default()
    };
    let (module, entry) = if coop {
        (
            ShaderModule::new(ctx, "coop+prec_f16n+mlp+mlp_coop")?,
            match tile {
                "narrow" => "gemm_coop",
                "wide" => "gemm_coop_wide",
                _ => "gemm_coop_wide_s",
            },
        )
    } else {
        let prelude = if ctx.has_f16() {
            "prec_f16n"
        } else {
            "prec_f16"
        };
        (
            ShaderModule::new(ctx, &format!("{prelude}+mlp"))?,
            if wide { "gemm_wide" } else { "gemm" },
        )
    };
    let kernel = Kernel::new(ctx, &module, entry, &[("MODE", 3.0)])?;
    let uniform = ctx.uniform("gemm_test_g", &g);
    let bind = kernel.bind(
        ctx,
        &[
            ("G", &uniform),
            ("wts", &b_buf),
            ("w16", &b_buf),
            ("a_in", &a_buf),
            ("a16", &a_buf),
            ("a_v", &a_buf),
            ("w_v", &b_buf),
            ("c_out", &c_buf),
            ("d_aux", &d_buf),
        ],
    )?;
    let tile = if wide { WIDE_TILE } else { 64 };
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(n.div_ceil(tile), m.div_ceil(tile), batch);
    }
    ctx.queue.submit([enc.finish()]);
    let raw: Vec<u16> = ctx.read_buffer(&c_buf)?;
    Ok(raw[..batch as usize * mn]
        .iter()
        .map(|&h| half::f16::from_bits(h).to_f32())
        .collect())
}

/// Storage buffers may not be empty: pad zero-length arrays to one element.
fn pad_u32(v: &[u32]) -> Vec<u32> {
    if v.is_empty() {
        vec![0]
    } else {
        v.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::AevColumns;
    use crate::ani::{reference, AevParams};
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    /// The compact layout against the float64 reference AEV: computed as if the model had only
    /// the present species, every column equals the full AEV's column it names, padding is
    /// zero, and every full column it drops is zero for every atom. ANI-2x's layout and one
    /// whose compact length needs padding (6 radial shifts, 2 × 4 angular terms).
    #[test]
    fn compact_aev_columns_match_the_full_layout() {
        let seed = std::env::var("WGMD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("compact-aev: seed {seed}");
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let small = AevParams {
            shf_r: vec![0.9, 1.6, 2.3, 3.0, 3.7, 4.4],
            shf_z: vec![0.4, 1.2, 2.0, 2.8],
            shf_a: vec![1.0, 2.2],
            ..AevParams::ani2x()
        };
        for p in [AevParams::ani2x(), small] {
            for round in 0..6 {
                let mut kinds: Vec<usize> = (0..p.n_species).collect();
                kinds.shuffle(&mut rng);
                kinds.truncate(1 + round % p.n_species.min(6));
                let n = 40;
                let species: Vec<usize> = (0..n)
                    .map(|_| kinds[rng.random_range(0..kinds.len())])
                    .collect();
                let pos: Vec<[f64; 3]> = (0..n)
                    .map(|_| [0; 3].map(|_| rng.random_range(0.0..8.0)))
                    .collect();
                let cols = AevColumns::new(&p, &species);
                assert_eq!(cols.len() % 16, 0);
                let full = reference::aevs(&p, &species, p.n_species, &pos, None).unwrap();
                let pc = AevParams {
                    n_species: cols.n_species,
                    ..p.clone()
                };
                let cs: Vec<usize> = species
                    .iter()
                    .map(|&s| cols.compact_species[s] as usize)
                    .collect();
                let compact = reference::aevs(&pc, &cs, cols.n_species, &pos, None).unwrap();
                let kept: std::collections::HashSet<usize> =
                    cols.full.iter().flatten().copied().collect();
                let mut nonzero = 0;
                for i in 0..n {
                    for (c, f) in cols.full.iter().enumerate() {
                        let got = if c < pc.aev_len() { compact[i][c] } else { 0.0 };
                        let want = f.map_or(0.0, |f| full[i][f]);
                        assert!(
                            (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                            "atom {i}, compact column {c} (full {f:?}): {got} vs {want}, species {kinds:?}"
                        );
                        nonzero += (want != 0.0) as usize;
                    }
                    for (f, &x) in full[i].iter().enumerate() {
                        assert!(
                            kept.contains(&f) || x == 0.0,
                            "dropped column {f} is {x} for atom {i}"
                        );
                    }
                }
                assert!(nonzero > 0, "the structure has no AEV terms at all");
            }
        }
    }
}
