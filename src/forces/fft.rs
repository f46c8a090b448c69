//! 3-D complex FFT on the GPU (driver of `shaders/fft.wgsl`) and its float64 twin
//! ([`reference`]).
//!
//! Sizes: every axis length n in 1..=[`MAX_AXIS`] whose prime factors are 2, 3, 5 and 7
//! (81, 162, 324, …). Each axis is one dispatch of one of two kernel kinds:
//! - **Stockham** (any size): a workgroup of [`workgroup_threads`] threads (512, or 256 within
//!   WebGPU's default limits) loads `batch = ⌊1024 / n⌋` whole lines into 16 KiB of workgroup
//!   memory (two 1024-value tiles, WebGPU's default limit), runs every mixed-radix stage there
//!   (radices 4, 9, 2, 3, 5, 7) and writes the lines back.
//! - **Two-level** ([`RegPlan`], where n = N1·N2 with both factors register codelets, e.g.
//!   324 = 18·18): each thread loads N1 values at once and transforms them in registers, one
//!   exchange through workgroup memory, then N2-point transforms; up to 16 adjacent lines per
//!   workgroup. 1.8× faster on PME's strided y passes at 324³ (BENCHMARKS.md, Coulomb, eighth
//!   session); PME uses it for the y passes and the convolve, [`Fft3d`] on every axis that
//!   has a plan ([`FftPath`]).
//!
//! Twiddles are exp(−2πi t/n) computed in float64 on the host and stored as f32.
//! Forward is exp(−2πi jk/n) like numpy; the inverse is unnormalised (exp(+2πi jk/n)).
//!
//! Layout: element (ix, iy, iz) of an (nx, ny, nz) grid is at `(ix·ny + iy)·nz + iz`, one
//! `vec2f` (stored as its `vec2u` bits) per element.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use bytemuck::{Pod, Zeroable};

use crate::gpu::{self, shaders, GpuContext, Kernel, ShaderModule};

/// Threads per FFT workgroup where the device allows no more (WebGPU's default limit of 256
/// invocations per workgroup); [`workgroup_threads`] takes 512 where it may.
pub const FFT_WG: u32 = 256;

/// Threads per FFT workgroup on a device with these limits: 512 where it allows them, else
/// [`FFT_WG`]; `WGMD_FFT_WG=128|256|512` picks one (A/B runs; [`check_dims`] checks it).
/// Measured on an H200 (BENCHMARKS.md, Coulomb, fifth session, calls 5 and 6): the passes
/// are bound by each thread's chain of dependent element steps, so more threads on the same
/// 16 KiB tile help: 128 → 256 → 512 threads, FFT passes at 324³ 1,814 → 1,322 → 1,167 µs.
pub fn workgroup_threads(limits: &wgpu::Limits) -> u32 {
    match std::env::var("WGMD_FFT_WG").as_deref() {
        Ok("128") => 128,
        Ok("256") => 256,
        Ok("512") => 512,
        _ if limits.max_compute_invocations_per_workgroup >= 512 => 512,
        _ => FFT_WG,
    }
}

pub const FFT_TILE: u32 = 1024;
/// Longest axis supported.
pub const MAX_AXIS: u32 = FFT_TILE;
/// Workgroup memory the FFT kernels need (two tiles of vec2f).
pub const WORKGROUP_BYTES: u32 = 2 * FFT_TILE * 8;
const MAX_STAGES: usize = 16;

/// The 1-D transforms along one axis; fft.wgsl receives it as override constants
/// ([`overrides`]), one pipeline per axis.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FftAxis {
    pub n: u32,
    pub stride: u32,
    pub c1: u32,
    pub s1: u32,
    pub s2: u32,
    pub n_lines: u32,
    pub batch: u32,
    pub n_stages: u32,
    pub tw_off: u32,
    pub contiguous: u32,
    pub _pad: [u32; 2],
    pub radix: [u32; MAX_STAGES],
}

/// Stage radices of an n-point transform: 4s first, then 9s, then 2, 3, 5, 7 (fewer stages:
/// each is a workgroup-memory round trip and a barrier). Errors name the factor that is not
/// supported. `WGMD_FFT_RADIX9=0` splits 9s into 3s (A/B runs).
pub fn factorize(n: u32) -> Result<Vec<u32>> {
    if n == 0 {
        bail!("FFT length 0: every grid axis needs at least one point");
    }
    let mut r = Vec::new();
    let mut m = n;
    while m % 4 == 0 {
        r.push(4);
        m /= 4;
    }
    if std::env::var("WGMD_FFT_RADIX9").map_or(true, |v| v != "0") {
        while m % 9 == 0 {
            r.push(9);
            m /= 9;
        }
    }
    for p in [2u32, 3, 5, 7] {
        while m % p == 0 {
            r.push(p);
            m /= p;
        }
    }
    if m != 1 {
        bail!(
            "FFT length {n} has the prime factor {} (only 2, 3, 5 and 7 are supported; \
             choose a size like {})",
            smallest_prime_factor(m),
            next_fft_size(n)
        );
    }
    Ok(r)
}

fn smallest_prime_factor(m: u32) -> u32 {
    (2..=m).find(|p| m % p == 0).unwrap_or(m)
}

/// Smallest n' ≥ n of the form 2^a 3^b 5^c 7^d.
pub fn next_fft_size(n: u32) -> u32 {
    let mut k = n.max(1);
    loop {
        let mut m = k;
        for p in [2u32, 3, 5, 7] {
            while m % p == 0 {
                m /= p;
            }
        }
        if m == 1 {
            return k;
        }
        k += 1;
    }
}

/// Checks that an (nx, ny, nz) grid can be transformed on this device: supported axis
/// lengths, workgroup memory, and the grid buffer within the storage-binding limit.
pub fn check_dims(limits: &wgpu::Limits, dims: [u32; 3], what: &str) -> Result<()> {
    for (a, &n) in dims.iter().enumerate() {
        if n > MAX_AXIS {
            bail!(
                "{what} axis {} has {n} points; the GPU FFT handles at most {MAX_AXIS} per axis",
                ["x", "y", "z"][a]
            );
        }
        factorize(n).map_err(|e| anyhow!("{what} axis {}: {e}", ["x", "y", "z"][a]))?;
    }
    if limits.max_compute_workgroup_storage_size < WORKGROUP_BYTES {
        bail!(
            "the GPU FFT needs {WORKGROUP_BYTES} bytes of workgroup memory; this device allows {}",
            limits.max_compute_workgroup_storage_size
        );
    }
    let wg = workgroup_threads(limits);
    if limits.max_compute_invocations_per_workgroup < wg {
        bail!(
            "the GPU FFT needs {wg} invocations per workgroup; this device allows {}",
            limits.max_compute_invocations_per_workgroup
        );
    }
    let bytes = dims.iter().map(|&n| n as u64).product::<u64>() * 8;
    let max = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    if bytes > max {
        bail!(
            "{what} {}×{}×{} needs {} MiB of complex values but this device allows at most {} MiB \
             per storage buffer (max_storage_buffer_binding_size); use a coarser grid",
            dims[0],
            dims[1],
            dims[2],
            bytes.div_ceil(1 << 20),
            max >> 20
        );
    }
    Ok(())
}

/// The three per-axis descriptors (x, y, z) of a grid, with twiddle offsets into one table
/// that concatenates the x, y and z roots (see [`twiddles`]).
pub fn axes(dims: [u32; 3]) -> Result<[FftAxis; 3]> {
    Ok([axis(dims, 0)?, axis(dims, 1)?, axis(dims, 2)?])
}

/// The descriptor of the 1-D transforms along axis `a` (0 = x, 1 = y, 2 = z) of a grid of
/// `dims` laid out as `(ix·ny + iy)·nz + iz`; its twiddles start after those of the axes
/// before it (`nx`, `nx + ny`).
pub fn axis(dims: [u32; 3], a: usize) -> Result<FftAxis> {
    let [nx, ny, nz] = dims;
    // (n, stride, c1, s1, s2, lines, twiddle offset, contiguous)
    let (n, stride, c1, s1, s2, n_lines, tw_off, contiguous) = match a {
        // x: line l = iy·nz + iz starts at l, stride ny·nz.
        0 => (nx, ny * nz, ny * nz, 0, 1, ny * nz, 0, 0),
        // y: line l = ix·nz + iz starts at ix·ny·nz + iz, stride nz.
        1 => (ny, nz, nz, ny * nz, 1, nx * nz, nx, 0),
        // z: line l = ix·ny + iy starts at l·nz, contiguous.
        _ => (nz, 1, 1, nz, 0, nx * ny, nx + ny, 1),
    };
    let r = factorize(n)?;
    let mut radix = [0u32; MAX_STAGES];
    radix[..r.len()].copy_from_slice(&r);
    Ok(FftAxis {
        n,
        stride,
        c1,
        s1,
        s2,
        n_lines,
        // Full tiles even where that leaves few workgroups: PME's 81³ passes with 3 lines per
        // workgroup instead of 12 (~1,100 workgroups instead of ~277 on the H200's 132 SMs)
        // were 10 % slower (BENCHMARKS.md, Coulomb, call 17).
        batch: (FFT_TILE / n).clamp(1, n_lines.max(1)),
        n_stages: r.len() as u32,
        tw_off,
        contiguous,
        _pad: [0; 2],
        radix,
    })
}

/// exp(−2πi t/n) for t < n, for n = nx, ny, nz in turn (float64, stored as f32).
pub fn twiddles(dims: [u32; 3]) -> Vec<[f32; 2]> {
    let mut out = Vec::new();
    for &n in &dims {
        for t in 0..n {
            let a = -2.0 * std::f64::consts::PI * t as f64 / n as f64;
            out.push([a.cos() as f32, a.sin() as f32]);
        }
    }
    out
}

/// Register codelet lengths of the two-level kernels: a product p · q of two of
/// [`REG_SMALL`], at most [`REG_MAX`] (fft.wgsl `dft_reg`, `dft_small`).
pub const REG_SMALL: [u32; 7] = [1, 2, 3, 4, 5, 7, 9];
/// Most values one thread of a two-level kernel holds (fft.wgsl's `Reg`).
pub const REG_MAX: u32 = 18;
/// Lines per two-level workgroup at most: 16 adjacent lines make 128-byte runs on a strided
/// axis.
const REG_LINES: u32 = 16;

/// A two-level register FFT of one axis (fft.wgsl `fft2_*`, pme.wgsl `pme_convolve2`):
/// n = n1 · n2, each factor a codelet length `p · q`; `lines` lines per workgroup of
/// `threads` threads, `line_stride` workgroup-memory values per line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegPlan {
    pub n1: u32,
    pub n2: u32,
    pub pq1: [u32; 2],
    pub pq2: [u32; 2],
    pub lines: u32,
    pub line_stride: u32,
    pub threads: u32,
}

/// `r` as p · q with p ≥ q both in [`REG_SMALL`] (q the smallest such), if it is one.
fn codelet(r: u32) -> Option<[u32; 2]> {
    if r > REG_MAX {
        return None;
    }
    REG_SMALL
        .iter()
        .filter(|&&q| r % q == 0 && REG_SMALL.contains(&(r / q)) && r / q >= q)
        .map(|&q| [r / q, q])
        .next()
}

impl RegPlan {
    /// The two-level plan of `axis` on a device with `limits`: the most balanced split of n
    /// into two codelet lengths, up to 16 lines per workgroup as workgroup memory and
    /// invocations allow. None where n has no such split (factors 5 · 5, 7 · 7, 2¹⁰, …, or
    /// a factor above 18) or where `WGMD_FFT_REG=0` (A/B runs): the Stockham kernels run then.
    pub fn new(axis: &FftAxis, limits: &wgpu::Limits) -> Option<RegPlan> {
        if std::env::var("WGMD_FFT_REG").is_ok_and(|v| v == "0") {
            return None;
        }
        Self::for_limits(axis, limits)
    }

    /// As [`new`](Self::new) without the environment switch.
    pub fn for_limits(axis: &FftAxis, limits: &wgpu::Limits) -> Option<RegPlan> {
        let n = axis.n;
        let (n1, n2) = (1..=REG_MAX)
            .filter(|&n2| n % n2 == 0 && n / n2 >= n2)
            .filter(|&n2| codelet(n2).is_some() && codelet(n / n2).is_some())
            .map(|n2| (n / n2, n2))
            .min_by_key(|&(n1, _)| n1)?;
        let line_stride = n + 1;
        let per_line = n1.max(n2);
        let by_memory = limits.max_compute_workgroup_storage_size / (8 * line_stride);
        let by_threads = limits.max_compute_invocations_per_workgroup / per_line;
        // `WGMD_FFT_REG_LINES=N` caps the lines per workgroup elsewhere (A/B runs).
        let cap = std::env::var("WGMD_FFT_REG_LINES")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&c| c >= 1)
            .unwrap_or(REG_LINES);
        let lines = cap.min(by_memory).min(by_threads).min(axis.n_lines.max(1));
        if lines == 0 {
            return None;
        }
        Some(RegPlan {
            n1,
            n2,
            pq1: codelet(n1)?,
            pq2: codelet(n2)?,
            lines,
            line_stride,
            threads: lines * per_line,
        })
    }

    /// Workgroup-memory values of one workgroup.
    pub fn tile(&self) -> u32 {
        self.lines * self.line_stride
    }

    /// Workgroups of one pass over `axis`.
    pub fn groups(&self, axis: &FftAxis) -> u32 {
        axis.n_lines.div_ceil(self.lines)
    }

    /// fft.wgsl's `FFT2_*` override constants (add them to [`overrides`] of the same axis).
    pub fn overrides(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("FFT2_N1", self.n1 as f64),
            ("FFT2_N2", self.n2 as f64),
            ("FFT2_P1", self.pq1[0] as f64),
            ("FFT2_Q1", self.pq1[1] as f64),
            ("FFT2_P2", self.pq2[0] as f64),
            ("FFT2_Q2", self.pq2[1] as f64),
            ("FFT2_B", self.lines as f64),
            ("FFT2_LS", self.line_stride as f64),
            ("FFT2_TILE", self.tile() as f64),
            ("FFT2_WG", self.threads as f64),
        ]
    }
}

/// Stages fft.wgsl can run (`FFT_R0`..`FFT_R7`); n ≤ 1024 needs at most 6 (729 = 3⁶).
const SHADER_STAGES: u32 = 8;

/// The override constants of fft.wgsl that describe `a` (its pipelines are built per axis).
pub fn overrides(a: &FftAxis, limits: &wgpu::Limits) -> Result<Vec<(&'static str, f64)>> {
    if a.n_stages > SHADER_STAGES {
        bail!(
            "FFT length {} needs {} stages; the shader runs at most {SHADER_STAGES}",
            a.n,
            a.n_stages
        );
    }
    let mut o = vec![
        ("FFT_N", a.n as f64),
        ("FFT_STRIDE", a.stride as f64),
        ("FFT_C1", a.c1 as f64),
        ("FFT_S1", a.s1 as f64),
        ("FFT_S2", a.s2 as f64),
        ("FFT_LINES", a.n_lines as f64),
        ("FFT_BATCH", a.batch as f64),
        ("FFT_STAGES", a.n_stages as f64),
        ("FFT_TW", a.tw_off as f64),
        ("FFT_CONTIG", a.contiguous as f64),
        ("FFT_WG", workgroup_threads(limits) as f64),
    ];
    const R: [&str; SHADER_STAGES as usize] = [
        "FFT_R0", "FFT_R1", "FFT_R2", "FFT_R3", "FFT_R4", "FFT_R5", "FFT_R6", "FFT_R7",
    ];
    for (s, name) in R.iter().enumerate().take(a.n_stages as usize) {
        o.push((name, a.radix[s] as f64));
    }
    Ok(o)
}

/// Workgroups of one axis pass.
pub fn groups(axis: &FftAxis) -> u32 {
    axis.n_lines.div_ceil(axis.batch)
}

const SOURCES: &[(&str, &str)] = &[
    ("fft", include_str!("../../shaders/fft.wgsl")),
    ("pme", include_str!("../../shaders/pme.wgsl")),
    ("pme_fixed", include_str!("../../shaders/pme_fixed.wgsl")),
    ("pme_float", include_str!("../../shaders/pme_float.wgsl")),
    ("spread_f32", include_str!("../../shaders/spread_f32.wgsl")),
    ("bspline", include_str!("../../shaders/bspline.wgsl")),
    ("interp", include_str!("../../shaders/interp.wgsl")),
];

/// The composable FFT/PME programs: PME comes with one of its two charge-grid snippets
/// (`forces::pme::PmeSpread`).
pub const PROGRAMS: &[&str] = &["fft", "pme+pme_fixed", "pme+pme_float"];

/// Composes (`#import` of `fft`), validates with naga and compiles one of the FFT/PME shader
/// files, which carry their own uniforms instead of the engine's `Params`.
pub fn shader_module(ctx: &GpuContext, name: &str) -> Result<Arc<ShaderModule>> {
    let source = compose(name)?;
    let (naga, info) = shaders::validate(name, &source)?;
    let module = crate::gpu::compile_wgsl(ctx, name, source);
    Ok(Arc::new(ShaderModule {
        name: name.to_string(),
        module,
        naga,
        info,
    }))
}

/// The composed WGSL of one of [`PROGRAMS`]; `a+b` composes `a` then `b`.
pub fn compose(name: &str) -> Result<String> {
    let mut seen = Vec::new();
    let mut out = String::new();
    for part in name.split('+') {
        compose_into(part, &mut seen, &mut out)?;
    }
    Ok(out)
}

fn compose_into(name: &str, seen: &mut Vec<String>, out: &mut String) -> Result<()> {
    if seen.iter().any(|s| s == name) {
        return Ok(());
    }
    seen.push(name.to_string());
    let src = SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| anyhow!("internal: no FFT/PME shader named '{name}'"))?;
    for line in src.lines() {
        if let Some(rest) = line.trim().strip_prefix("#import ") {
            compose_into(rest.trim(), seen, out)?;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(())
}

/// A forward/inverse 3-D FFT of one grid buffer (`dims` product × vec2f), in place.
pub struct Fft3d {
    dims: [u32; 3],
    /// Per axis (x, y, z): workgroups of one pass.
    groups: [u32; 3],
    /// Per axis (x, y, z).
    forward: Vec<Kernel>,
    inverse: Vec<Kernel>,
    twiddle: wgpu::Buffer,
    binds: Option<Vec<wgpu::BindGroup>>,
}

/// Which kernels an [`Fft3d`] runs along each axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FftPath {
    /// Two-level register kernels where the axis length has a [`RegPlan`], else Stockham.
    Auto,
    /// The workgroup-memory Stockham kernels on every axis.
    Stockham,
}

/// The kernels of a forward/inverse pass along one axis ([`pass_kernels`]).
pub struct AxisPass {
    /// Forward and inverse entry points.
    pub entries: [&'static str; 2],
    pub overrides: Vec<(&'static str, f64)>,
    pub groups: u32,
}

/// The kernel names, override constants and workgroups of a forward/inverse pass along
/// `axis`: the two-level kernels where `path` allows and a plan exists, else Stockham.
pub fn pass_kernels(axis: &FftAxis, limits: &wgpu::Limits, path: FftPath) -> Result<AxisPass> {
    let mut overrides = overrides(axis, limits)?;
    Ok(
        match RegPlan::new(axis, limits).filter(|_| path == FftPath::Auto) {
            Some(plan) => {
                overrides.extend(plan.overrides());
                AxisPass {
                    entries: ["fft2_forward", "fft2_inverse"],
                    overrides,
                    groups: plan.groups(axis),
                }
            }
            None => AxisPass {
                entries: ["fft_forward", "fft_inverse"],
                overrides,
                groups: groups(axis),
            },
        },
    )
}

impl Fft3d {
    pub fn new(ctx: &GpuContext, dims: [u32; 3]) -> Result<Fft3d> {
        Self::with_path(ctx, dims, FftPath::Auto)
    }

    pub fn with_path(ctx: &GpuContext, dims: [u32; 3], path: FftPath) -> Result<Fft3d> {
        check_dims(&ctx.limits, dims, "FFT grid")?;
        let axes = axes(dims)?;
        let module = shader_module(ctx, "fft")?;
        let mut forward = Vec::new();
        let mut inverse = Vec::new();
        let mut groups = [0; 3];
        for (a, g) in axes.iter().zip(&mut groups) {
            let p = pass_kernels(a, &ctx.limits, path)?;
            forward.push(Kernel::new(ctx, &module, p.entries[0], &p.overrides)?);
            inverse.push(Kernel::new(ctx, &module, p.entries[1], &p.overrides)?);
            *g = p.groups;
        }
        let twiddle = ctx.storage_init("twiddle", &twiddles(dims))?;
        Ok(Fft3d {
            dims,
            groups,
            forward,
            inverse,
            twiddle,
            binds: None,
        })
    }

    pub fn dims(&self) -> [u32; 3] {
        self.dims
    }

    /// Bytes of the complex grid this transform works on.
    pub fn grid_bytes(&self) -> u64 {
        self.dims.iter().map(|&n| n as u64).product::<u64>() * 8
    }

    /// Binds the grid buffer (`grid_bytes()` bytes of vec2f) for both directions.
    pub fn bind(&mut self, ctx: &GpuContext, grid: &wgpu::Buffer) -> Result<()> {
        if grid.size() < self.grid_bytes() {
            bail!(
                "internal: FFT grid buffer has {} bytes, needs {}",
                grid.size(),
                self.grid_bytes()
            );
        }
        let mut binds = Vec::new();
        for k in self.forward.iter().chain(&self.inverse) {
            binds.push(k.bind(ctx, &[("grid", grid), ("twiddle", &self.twiddle)])?);
        }
        self.binds = Some(binds);
        Ok(())
    }

    /// Three dispatches (z, y, x for forward; x, y, z for inverse).
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, inverse: bool) {
        let binds = self.binds.as_ref().expect("Fft3d::bind before encode");
        let order: [usize; 3] = if inverse { [0, 1, 2] } else { [2, 1, 0] };
        let (k, off) = if inverse {
            (&self.inverse, 3)
        } else {
            (&self.forward, 0)
        };
        for a in order {
            gpu::dispatch(pass, &k[a], &binds[off + a], self.groups[a]);
        }
    }
}

/// Float64 twins: a naive DFT (the oracle) and the same mixed-radix Stockham algorithm the
/// shader runs (so a GPU bug can be bisected stage by stage).
pub mod reference {
    use super::factorize;
    use anyhow::Result;

    pub type C64 = [f64; 2];

    fn cmul(a: C64, b: C64) -> C64 {
        [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]]
    }

    fn root(t: usize, n: usize, inverse: bool) -> C64 {
        let s = if inverse { 1.0 } else { -1.0 };
        let a = s * 2.0 * std::f64::consts::PI * t as f64 / n as f64;
        [a.cos(), a.sin()]
    }

    /// y_k = Σ_j x_j exp(∓2πi jk/n) (− forward, + inverse, unnormalised), O(n²).
    pub fn dft(x: &[C64], inverse: bool) -> Vec<C64> {
        let n = x.len();
        (0..n)
            .map(|k| {
                let mut acc = [0.0, 0.0];
                for (j, v) in x.iter().enumerate() {
                    let w = root((j * k) % n, n, inverse);
                    let p = cmul(*v, w);
                    acc[0] += p[0];
                    acc[1] += p[1];
                }
                acc
            })
            .collect()
    }

    /// Same result as [`dft`] through the shader's Stockham stages.
    pub fn fft(x: &[C64], inverse: bool) -> Result<Vec<C64>> {
        let n = x.len();
        let radices = factorize(n as u32)?;
        let mut src = x.to_vec();
        let mut dst = vec![[0.0; 2]; n];
        let mut m = 1usize;
        for &p in &radices {
            let p = p as usize;
            let nb = n / p;
            // Roots of order m·p (twiddles) and of order p (the small DFT), once per stage.
            let tw: Vec<C64> = (0..m * p).map(|t| root(t, m * p, inverse)).collect();
            let wp: Vec<C64> = (0..p).map(|t| root(t, p, inverse)).collect();
            for j in 0..nb {
                let k = j % m;
                let mut xs = [[0.0; 2]; 9];
                for (q, x) in xs.iter_mut().enumerate().take(p) {
                    *x = cmul(src[j + q * nb], tw[(k * q) % (m * p)]);
                }
                let ob = (j / m) * m * p + k;
                for r in 0..p {
                    let mut acc = [0.0; 2];
                    for (q, x) in xs.iter().enumerate().take(p) {
                        let v = cmul(*x, wp[(r * q) % p]);
                        acc[0] += v[0];
                        acc[1] += v[1];
                    }
                    dst[ob + r * m] = acc;
                }
            }
            std::mem::swap(&mut src, &mut dst);
            m *= p;
        }
        Ok(src)
    }

    /// In-place 3-D transform of a grid laid out as `(ix·ny + iy)·nz + iz`.
    pub fn fft3(data: &mut [C64], dims: [usize; 3], inverse: bool) -> Result<()> {
        let [nx, ny, nz] = dims;
        assert_eq!(data.len(), nx * ny * nz);
        let strides = [ny * nz, nz, 1];
        for (a, &n) in dims.iter().enumerate() {
            let s = strides[a];
            let mut line = vec![[0.0; 2]; n];
            for start in 0..data.len() {
                // A line starts wherever the coordinate along axis a is zero.
                if (start / s) % n != 0 {
                    continue;
                }
                for i in 0..n {
                    line[i] = data[start + i * s];
                }
                let out = fft(&line, inverse)?;
                for i in 0..n {
                    data[start + i * s] = out[i];
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_factors() {
        assert_eq!(next_fft_size(11), 12);
        assert_eq!(next_fft_size(79), 80);
        assert_eq!(next_fft_size(81), 81);
        assert_eq!(next_fft_size(323), 324);
        // 4s first, then 9s (one radix-9 stage instead of two radix-3 ones), then the rest.
        assert_eq!(factorize(324).unwrap(), vec![4, 9, 9]);
        assert_eq!(factorize(162).unwrap(), vec![9, 9, 2]);
        assert_eq!(factorize(27 * 5).unwrap(), vec![9, 3, 5]);
        assert_eq!(factorize(1).unwrap(), Vec::<u32>::new());
        let e = factorize(22).unwrap_err().to_string();
        assert!(e.contains("prime factor 11"), "{e}");
    }
}
