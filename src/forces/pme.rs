//! Smooth particle-mesh Ewald, reciprocal-space part (driver of `shaders/pme.wgsl`; float64
//! twin in [`reference`]). Essmann et al., J. Chem. Phys. 103, 8577 (1995).
//!
//! E_rec = ½ Σ_{m≠0} θ(m) |S(m)|², θ(m) = k exp(−π²m²/α²) B(m) / (π V m²), S = FFT of the
//! B-spline charge grid, B(m) = |b_x|²|b_y|²|b_z|² the Euler exponential-spline factors.
//! Tin-foil boundary; for a net charge Q the neutralising-background energy
//! −kπQ²/(2Vα²) is added (it vanishes for neutral systems). The self term and the
//! excluded-pair corrections are NOT here: the Coulomb term computes them for Ewald and PME.
//! Orthorhombic boxes only; the box is fixed at construction (no barostat yet).
//!
//! ## GPU work per step, and its floor
//! Eight dispatches (`shaders/pme.wgsl` says what each does): B-splines (one thread per
//! atom), spread (order² threads per atom, order grid additions each: "Charge grid" below),
//! z-forward FFT of the real grid (which it also clears), two real lines per complex
//! transform, keeping only kz ≤ Kz/2, y-forward on that half spectrum,
//! x-forward+influence+x-inverse fused in workgroup memory (with energy/virial partial sums),
//! y-inverse, z-inverse of the Hermitian-completed lines (two per complex transform) writing
//! the real potential, whose workgroup 0 first reduces the partial sums, and interpolation
//! (order threads per atom, order² reads of `phi` each). The FFT kernels are compiled per
//! axis (line length, strides, radices as override constants), and every PME kernel with
//! the grid sizes and Kz/2 + 1 as constants (wraps and index divisions by constants are
//! cheap). Steps that read no energy ([`PmeForce::encode`] with `energy = false`, all but
//! the last of a batch) run convolve, last pass and interpolation without the energy and
//! virial terms (pme.wgsl's `ENERGY`). Grid traffic per step per
//! point of the K³ grid: 8 B read + 8 B cleared (fixed point; 4 + 4 B for the f32 grid) + 4 B
//! written (half spectrum) by the first pass, 8 B by each of the three middle passes (half
//! spectrum read + written), 4 B read + 4 B of `phi` written by the last ≈ 52 B/point, plus
//! the spread's atomics (order³ = 125 per atom at order 5: f32, or ~1.5 u32 fixed-point
//! words) and the interpolation's order³ reads per atom — 28 MB for 81³ (≈ 6 µs at the H200's
//! 4.8 TB/s; it all fits in its 50 MB L2), 1.8 GB for 324³
//! (≈ 0.4 ms). At ~3.3 µs per dispatch the eight dispatches cost ~26 µs of fixed overhead per
//! step. BENCHMARKS.md (Coulomb) has the measured per-dispatch profile. In the engine, where
//! the grid is summed with f32 atomics, the spread runs inside the Coulomb real-space dispatch
//! and the splines beside the slot-position copy (`forces::coulomb_spread`:
//! [`PmeForce::encode_after_spread`] encodes the rest), six dispatches of PME's own. With the
//! neighbor rows by cell slot that copy stores the splines by slot, and
//! `coulomb_spread.wgsl`'s `slot_interp` interpolates by slot after the FFT passes
//! ([`PmeForce::encode_fft`]): the grid reads of neighboring threads then stay neighbors
//! whatever order the atoms are stored in (by atom index they lost that order in a mixed
//! liquid: 364 → 1,337 µs at 2,097,152 ions, BENCHMARKS.md, Coulomb, twelfth session).
//!
//! ## Charge grid ([`PmeSpread`])
//! Where the adapter has f32 atomics (wgpu's SHADER_FLOAT32_ATOMIC: Vulkan, Metal), the spread
//! adds q·w to an f32 grid with atomics that return nothing (`shaders/pme_float.wgsl`); the
//! rounding of each point's sum then depends on the order of the additions (≈ 1e-7 relative,
//! as the f32 FFT that follows), so runs are not bit-reproducible. Elsewhere (browsers) it
//! adds q·w to a 64-bit two's-complement value with 32 fractional bits (low word with carry
//! into the high word, both u32 atomics — core WebGPU; `shaders/pme_fixed.wgsl`): resolution
//! 2⁻³² ≈ 2.3·10⁻¹⁰ e per contribution, range ±2³¹ e per grid point, independent of the
//! order of the additions; the grid is converted to f32 (negative values negated in integer
//! arithmetic first, so small values keep their digits). The carry needs the low word's old
//! value, so every fixed-point addition waits for its atomic's round trip: 60 µs for the
//! 81³ grid of 32,768 ions on the H200, ten times its memory floor.
//!
//! ## Accuracy (f32 GPU vs this module's float64 reference, tests/pme_gpu.rs)
//! Both charge grids alike: forces 3–6e-7 relative RMS (worst atom ~2e-6 of max(|F_i|,
//! F_rms)), energy ~2e-7 relative, virial components ≤ 3e-7 of |E| (orders 4–6). Until the
//! fixed-point spread converted negative contributions by magnitude (pme_fixed.wgsl), its
//! grid carried ~3e-8 e of rounding per negative contribution: forces 1.5–4e-6, energy
//! biased high by up to 7e-6. PME itself at
//! OpenMM's parameters for tolerance 5e-4 is ~5e-5 from exact Ewald (tests/pme_reference.rs),
//! so the f32 error is far below the method's.

use anyhow::{bail, Result};
use bytemuck::{Pod, Zeroable};

use crate::forces::fft::{self, FftPath, RegPlan};
use crate::gpu::{self, GpuContext, Kernel};

/// Smooth-PME parameters: Ewald splitting α (1/length), grid points per axis, B-spline order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PmeParams {
    pub alpha: f64,
    pub grid: [u32; 3],
    pub order: u32,
}

impl PmeParams {
    /// OpenMM's recipe for ewaldErrorTolerance `tol`: α = √(−ln(2 tol)) / cutoff;
    /// n_axis = max(⌈2αL / (3 tol^(1/5))⌉, 6) (OpenMM's `NonbondedForceImpl::calcPMEParameters`)
    /// rounded up to the next 2^a 3^b 5^c 7^d (what its GPU platforms then pick); order 5.
    pub fn from_tolerance(box_l: [f64; 3], cutoff: f64, tol: f64) -> Result<PmeParams> {
        if !(tol.is_finite() && tol > 0.0 && tol < 0.5) {
            bail!("PME tolerance is {tol}; it must be a number in (0, 0.5), e.g. 5e-4");
        }
        if !(cutoff.is_finite() && cutoff > 0.0) {
            bail!("PME real-space cutoff is {cutoff}; it must be a positive number");
        }
        for (a, &l) in box_l.iter().enumerate() {
            if !(l.is_finite() && l > 0.0) {
                bail!(
                    "box length along {} is {l}; PME needs a positive periodic box",
                    ["x", "y", "z"][a]
                );
            }
        }
        let order = 5;
        let alpha = (-(2.0 * tol).ln()).sqrt() / cutoff;
        let mut grid = [0u32; 3];
        for a in 0..3 {
            let n = (2.0 * alpha * box_l[a] / (3.0 * tol.powf(0.2))).ceil();
            if n > fft::MAX_AXIS as f64 {
                bail!(
                    "PME tolerance {tol} with cutoff {cutoff} needs {n} grid points along {} \
                     (box {}); the GPU FFT handles at most {} — raise the tolerance or the cutoff",
                    ["x", "y", "z"][a],
                    box_l[a],
                    fft::MAX_AXIS
                );
            }
            grid[a] = fft::next_fft_size((n as u32).max(6).max(order));
        }
        Ok(PmeParams { alpha, grid, order })
    }

    /// Clear errors for parameters the GPU path cannot run: order outside 4..=6, grid axes
    /// shorter than the order, with prime factors other than 2, 3, 5, 7, longer than the FFT
    /// tile, or a grid larger than the device's storage-binding limit.
    pub fn validate(&self, limits: &wgpu::Limits) -> Result<()> {
        self.validate_host()?;
        fft::check_dims(limits, self.grid, "PME grid")?;
        // The potential grid is f32 (half the complex grid).
        Ok(())
    }

    /// The device-independent part of [`validate`](Self::validate) (the float64 reference
    /// needs only this).
    pub fn validate_host(&self) -> Result<()> {
        if !(4..=6).contains(&self.order) {
            bail!(
                "PME order is {}; it must be 4, 5 or 6 (B-spline interpolation order)",
                self.order
            );
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            bail!("PME alpha is {}; it must be a positive number", self.alpha);
        }
        for (a, &n) in self.grid.iter().enumerate() {
            if n < self.order {
                bail!(
                    "PME grid has {n} points along {}, fewer than the order {}",
                    ["x", "y", "z"][a],
                    self.order
                );
            }
            fft::factorize(n)
                .map_err(|e| anyhow::anyhow!("PME grid along {}: {e}", ["x", "y", "z"][a]))?;
        }
        Ok(())
    }
}

/// One line for `wgmd info`-style printouts: `alpha 0.262830 /length, grid 81x81x81, order 5`.
impl std::fmt::Display for PmeParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "alpha {:.6} /length, grid {}x{}x{}, order {}",
            self.alpha, self.grid[0], self.grid[1], self.grid[2], self.order
        )
    }
}

/// Cardinal B-spline M_n(x) (nonzero on (0, n)), by the recursion of Essmann eq. (4.1).
pub fn bspline(n: u32, x: f64) -> f64 {
    if n == 2 {
        return if (0.0..=2.0).contains(&x) {
            1.0 - (x - 1.0).abs()
        } else {
            0.0
        };
    }
    let nf = n as f64;
    (x * bspline(n - 1, x) + (nf - x) * bspline(n - 1, x - 1.0)) / (nf - 1.0)
}

/// dM_n/dx = M_{n−1}(x) − M_{n−1}(x − 1).
pub fn bspline_deriv(n: u32, x: f64) -> f64 {
    bspline(n - 1, x) - bspline(n - 1, x - 1.0)
}

/// |b(m)|² of Essmann eq. (4.4) for m = 0..K: 1 / |Σ_{k=0}^{p−2} M_p(k+1) exp(2πi mk/K)|².
/// For odd orders the sum vanishes at m = K/2; like OpenMM, such a point takes the mean of
/// its neighbours' denominators.
pub fn bspline_moduli(order: u32, k_len: u32) -> Vec<f64> {
    let n = k_len as usize;
    let mut den = vec![0.0f64; n];
    for (m, d) in den.iter_mut().enumerate() {
        let (mut re, mut im) = (0.0, 0.0);
        for k in 0..(order - 1) as usize {
            let a = 2.0 * std::f64::consts::PI * (m * k) as f64 / n as f64;
            let w = bspline(order, k as f64 + 1.0);
            re += w * a.cos();
            im += w * a.sin();
        }
        *d = re * re + im * im;
    }
    for m in 0..n {
        if den[m] < 1e-7 {
            den[m] = 0.5 * (den[(m + n - 1) % n] + den[(m + 1) % n]);
        }
    }
    den.iter().map(|d| 1.0 / d).collect()
}

/// Signed frequency of grid index i on an axis of K points (OpenMM's convention:
/// i < (K+1)/2 → i, else i − K).
pub fn frequency(i: u32, k_len: u32) -> i64 {
    if i < k_len.div_ceil(2) {
        i as i64
    } else {
        i as i64 - k_len as i64
    }
}

/// Per axis (x, y, z concatenated): (m/L, exp(−π²(m/L)²/α²) |b(m)|²) for every grid index.
pub fn influence_tables(box_l: [f64; 3], p: &PmeParams) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    for (&k_len, &l) in p.grid.iter().zip(&box_l) {
        let b2 = bspline_moduli(p.order, k_len);
        for i in 0..k_len {
            let mh = frequency(i, k_len) as f64 / l;
            let pa = std::f64::consts::PI * mh / p.alpha;
            out.push([mh, (-pa * pa).exp() * b2[i as usize]]);
        }
    }
    out
}

pub mod reference {
    //! Float64 smooth PME, written for clarity (Essmann's conventions throughout).
    use super::{bspline, bspline_deriv, influence_tables, PmeParams};
    use crate::forces::fft::reference::{fft3, C64};

    /// Reciprocal-space energy, forces and virial tensor (xx, yy, zz, xy, xz, yz; W = Σ r·F,
    /// i.e. −dE/dstrain) of point charges `q` at `pos` in an orthorhombic box, with Coulomb
    /// constant `coulomb_k`. Tin-foil; a net charge Q adds the neutralising background
    /// −kπQ²/(2Vα²) (energy and diagonal virial; no force), zero for neutral systems.
    /// Panics on invalid parameters (callers validate with [`PmeParams::validate_host`]).
    pub fn reciprocal(
        pos: &[[f64; 3]],
        q: &[f64],
        box_l: [f64; 3],
        p: &PmeParams,
        coulomb_k: f64,
    ) -> (f64, Vec<[f64; 3]>, [f64; 6]) {
        p.validate_host().expect("valid PME parameters");
        let dims = [p.grid[0] as usize, p.grid[1] as usize, p.grid[2] as usize];
        let n_grid = dims[0] * dims[1] * dims[2];
        let order = p.order as usize;
        let idx = |g: [usize; 3]| (g[0] * dims[1] + g[1]) * dims[2] + g[2];

        // Grid points (Essmann: floor(u) − j) and weights M_p(frac(u) + j) of each atom.
        struct Sp {
            pts: [Vec<usize>; 3],
            w: [Vec<f64>; 3],
            dw: [Vec<f64>; 3],
        }
        let splines: Vec<Sp> = pos
            .iter()
            .map(|x| {
                let mut sp = Sp {
                    pts: Default::default(),
                    w: Default::default(),
                    dw: Default::default(),
                };
                for a in 0..3 {
                    let k = dims[a] as f64;
                    let frac = (x[a] / box_l[a]).rem_euclid(1.0);
                    let u = frac * k;
                    let fl = u.floor();
                    let t = u - fl;
                    for j in 0..order {
                        let g = (fl as i64 - j as i64).rem_euclid(dims[a] as i64) as usize;
                        sp.pts[a].push(g);
                        sp.w[a].push(bspline(p.order, t + j as f64));
                        sp.dw[a].push(bspline_deriv(p.order, t + j as f64));
                    }
                }
                sp
            })
            .collect();

        let mut grid: Vec<C64> = vec![[0.0, 0.0]; n_grid];
        for (sp, &qi) in splines.iter().zip(q) {
            for jx in 0..order {
                for jy in 0..order {
                    for jz in 0..order {
                        let g = idx([sp.pts[0][jx], sp.pts[1][jy], sp.pts[2][jz]]);
                        grid[g][0] += qi * sp.w[0][jx] * sp.w[1][jy] * sp.w[2][jz];
                    }
                }
            }
        }
        fft3(&mut grid, dims, false).expect("PME grid sizes are valid");

        let v = box_l[0] * box_l[1] * box_l[2];
        let pi = std::f64::consts::PI;
        let tab = influence_tables(box_l, p);
        let (ox, oy, oz) = (0, dims[0], dims[0] + dims[1]);
        let mut energy = 0.0;
        let mut vir = [0.0f64; 6];
        for ix in 0..dims[0] {
            for iy in 0..dims[1] {
                for iz in 0..dims[2] {
                    let g = idx([ix, iy, iz]);
                    if g == 0 {
                        grid[g] = [0.0, 0.0];
                        continue;
                    }
                    let (tx, ty, tz) = (tab[ox + ix], tab[oy + iy], tab[oz + iz]);
                    let m = [tx[0], ty[0], tz[0]];
                    let m2 = m[0] * m[0] + m[1] * m[1] + m[2] * m[2];
                    let theta = coulomb_k / (pi * v) * tx[1] * ty[1] * tz[1] / m2;
                    let s = grid[g];
                    let em = 0.5 * theta * (s[0] * s[0] + s[1] * s[1]);
                    energy += em;
                    let c = 2.0 * (1.0 + pi * pi * m2 / (p.alpha * p.alpha)) / m2;
                    let pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)];
                    for (t, &(a, b)) in pairs.iter().enumerate() {
                        let delta = if a == b { 1.0 } else { 0.0 };
                        vir[t] += em * (delta - c * m[a] * m[b]);
                    }
                    grid[g] = [theta * s[0], theta * s[1]];
                }
            }
        }
        // Φ = (θ S) transformed back: E = ½ Σ_k Q(k) Φ(k), ∂E/∂Q(k) = Φ(k).
        fft3(&mut grid, dims, true).expect("PME grid sizes are valid");

        let scale = [
            dims[0] as f64 / box_l[0],
            dims[1] as f64 / box_l[1],
            dims[2] as f64 / box_l[2],
        ];
        let forces = splines
            .iter()
            .zip(q)
            .map(|(sp, &qi)| {
                let mut grad = [0.0f64; 3];
                for jx in 0..order {
                    for jy in 0..order {
                        for jz in 0..order {
                            let phi = grid[idx([sp.pts[0][jx], sp.pts[1][jy], sp.pts[2][jz]])][0];
                            grad[0] += sp.dw[0][jx] * sp.w[1][jy] * sp.w[2][jz] * phi;
                            grad[1] += sp.w[0][jx] * sp.dw[1][jy] * sp.w[2][jz] * phi;
                            grad[2] += sp.w[0][jx] * sp.w[1][jy] * sp.dw[2][jz] * phi;
                        }
                    }
                }
                [
                    -qi * grad[0] * scale[0],
                    -qi * grad[1] * scale[1],
                    -qi * grad[2] * scale[2],
                ]
            })
            .collect();

        let qnet: f64 = q.iter().sum();
        let ebg = -coulomb_k * pi * qnet * qnet / (2.0 * v * p.alpha * p.alpha);
        energy += ebg;
        for c in vir.iter_mut().take(3) {
            *c += ebg;
        }
        (energy, forces, vir)
    }
}

/// How the charge grid is summed (module docs, "Charge grid").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmeSpread {
    /// f32 grid, float atomics (`shaders/pme_float.wgsl`); needs SHADER_FLOAT32_ATOMIC.
    FloatAtomic,
    /// 64-bit fixed point from u32 atomics (`shaders/pme_fixed.wgsl`); runs everywhere.
    FixedPoint,
}

impl PmeSpread {
    /// Float atomics where the device has them, unless `WGMD_PME_FIXED=1` asks for fixed
    /// point (an A/B switch for benchmarks).
    pub fn best(ctx: &GpuContext) -> PmeSpread {
        if ctx.has_f32_atomics() && std::env::var("WGMD_PME_FIXED").map_or(true, |v| v != "1") {
            PmeSpread::FloatAtomic
        } else {
            PmeSpread::FixedPoint
        }
    }

    /// The composed shader program (`forces::fft::PROGRAMS`).
    fn program(self) -> &'static str {
        match self {
            PmeSpread::FloatAtomic => "pme+pme_float",
            PmeSpread::FixedPoint => "pme+pme_fixed",
        }
    }

    /// Bytes per point of the charge grid.
    fn point_bytes(self) -> u64 {
        match self {
            PmeSpread::FloatAtomic => 4,
            PmeSpread::FixedPoint => 8,
        }
    }
}

impl std::fmt::Display for PmeSpread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PmeSpread::FloatAtomic => "f32 atomics",
            PmeSpread::FixedPoint => "64-bit fixed point",
        })
    }
}

/// Mirrors `PmeUniform` in pme.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PmeUniform {
    pub dims: [u32; 4],
    pub scale: [f32; 4],
    pub coef: [f32; 4],
    pub n_partials: u32,
    pub nzh: u32,
    pub _pad: [u32; 2],
}

/// GPU smooth PME: eight dispatches per step, bound once to the simulation's buffers.
pub struct PmeForce {
    params: PmeParams,
    n_atoms: u32,
    spread_kind: PmeSpread,
    /// Workgroups of the convolve (x), of each y pass and of each z pass.
    groups: [u32; 3],
    // Kernels in dispatch order.
    splines: Kernel,
    spread: Kernel,
    first: Kernel,
    fwd: Kernel,
    convolve: Kernel,
    inv: Kernel,
    last: Kernel,
    interp: Kernel,
    /// The same three without energy and virial (pme.wgsl's ENERGY = false): the steps that
    /// read neither.
    convolve_fast: Kernel,
    last_fast: Kernel,
    interp_fast: Kernel,
    uniform: wgpu::Buffer,
    twiddle: wgpu::Buffer,
    /// The real charge grid (f32 or fixed point, [`PmeSpread`]).
    charge_grid: wgpu::Buffer,
    grid: wgpu::Buffer,
    phi: wgpu::Buffer,
    partials: wgpu::Buffer,
    result: wgpu::Buffer,
    infl: wgpu::Buffer,
    /// Per-atom spline weights and derivatives (6·order floats), see `pme_splines`.
    spl: wgpu::Buffer,
    binds: Option<Vec<wgpu::BindGroup>>,
}

impl PmeForce {
    /// With the device's fastest charge grid ([`PmeSpread::best`]).
    pub fn new(
        ctx: &GpuContext,
        n_atoms: u32,
        box_l: [f64; 3],
        p: &PmeParams,
        coulomb_k: f64,
    ) -> Result<PmeForce> {
        Self::with_spread(ctx, n_atoms, box_l, p, coulomb_k, PmeSpread::best(ctx))
    }

    pub fn with_spread(
        ctx: &GpuContext,
        n_atoms: u32,
        box_l: [f64; 3],
        p: &PmeParams,
        coulomb_k: f64,
        kind: PmeSpread,
    ) -> Result<PmeForce> {
        p.validate(&ctx.limits)?;
        if kind == PmeSpread::FloatAtomic && !ctx.has_f32_atomics() {
            bail!(
                "PME spreading with f32 atomics needs SHADER_FLOAT32_ATOMIC, which adapter '{}' \
                 does not have",
                ctx.info.name
            );
        }
        for (a, &l) in box_l.iter().enumerate() {
            if !(l.is_finite() && l > 0.0) {
                bail!(
                    "box length along {} is {l}; PME needs a positive periodic box",
                    ["x", "y", "z"][a]
                );
            }
        }
        if !coulomb_k.is_finite() {
            bail!("Coulomb constant is {coulomb_k}; it must be a finite number");
        }
        if n_atoms == 0 {
            bail!("PME needs at least one atom");
        }
        if n_atoms as u64 * (p.order * p.order) as u64 > u32::MAX as u64 {
            bail!(
                "{n_atoms} atoms are too many for PME spreading at order {} (at most {})",
                p.order,
                u32::MAX / (p.order * p.order)
            );
        }
        // x and y transforms run on the half spectrum (kz ≤ Kz/2), z on full lines.
        let [kx, ky, kz] = p.grid;
        let nzh = kz / 2 + 1;
        let half = [kx, ky, nzh];
        let axes = [
            fft::axis(half, 0)?,
            fft::axis(half, 1)?,
            fft::axis(p.grid, 2)?,
        ];
        let module = fft::shader_module(ctx, kind.program())?;
        // The FFT kernels are built per axis (fft.wgsl's override constants). The y passes
        // and the convolve (x) run the two-level register kernels where the axis length has
        // a `RegPlan` (the convolve's partial sums need 4 values of its tile per thread).
        let limits = &ctx.limits;
        let y = fft::pass_kernels(&axes[1], limits, FftPath::Auto)?;
        let gy = y.groups;
        let mut x_ov = fft::overrides(&axes[0], limits)?;
        let (convolve_name, gx) =
            match RegPlan::new(&axes[0], limits).filter(|r| r.tile() >= 4 * r.threads) {
                Some(r) => {
                    x_ov.extend(r.overrides());
                    ("pme_convolve2", r.groups(&axes[0]))
                }
                None => ("pme_convolve", fft::groups(&axes[0])),
            };
        // The z passes stay on the Stockham kernels: two-level versions (pme_fft_first2 /
        // pme_fft_last2 in 5b95098) were slower at 162³ and gained 4 % at 324³ (BENCHMARKS.md,
        // Coulomb, eighth session). They put two real lines in each complex line.
        let z_ov = fft::overrides(&axes[2], limits)?;
        let gz = axes[2].n_lines.div_ceil(2 * axes[2].batch);
        let kernel = |name: &str, axis_ov: &[(&'static str, f64)], energy: bool| {
            let mut ov = vec![
                ("ORDER", p.order as f64),
                ("NZH", nzh as f64),
                ("GX", p.grid[0] as f64),
                ("GY", p.grid[1] as f64),
                ("GZ", p.grid[2] as f64),
            ];
            ov.extend_from_slice(axis_ov);
            if !energy {
                ov.push(("ENERGY", 0.0));
            }
            Kernel::new(ctx, &module, name, &ov)
        };
        let k = |name: &str, axis_ov: &[(&'static str, f64)]| kernel(name, axis_ov, true);
        let splines = k("pme_splines", &[])?;
        let spread = k("pme_spread", &[])?;
        let first = k("pme_fft_first", &z_ov)?;
        let fwd = k(y.entries[0], &y.overrides)?;
        let convolve = k(convolve_name, &x_ov)?;
        let inv = k(y.entries[1], &y.overrides)?;
        let last = k("pme_fft_last", &z_ov)?;
        let interp = k("pme_interp", &[])?;
        let convolve_fast = kernel(convolve_name, &x_ov, false)?;
        let last_fast = kernel("pme_fft_last", &z_ov, false)?;
        let interp_fast = kernel("pme_interp", &[], false)?;

        let v = box_l[0] * box_l[1] * box_l[2];
        let pi = std::f64::consts::PI;
        let n_partials = gx;
        let u = PmeUniform {
            dims: [p.grid[0], p.grid[1], p.grid[2], n_atoms],
            scale: [
                (p.grid[0] as f64 / box_l[0]) as f32,
                (p.grid[1] as f64 / box_l[1]) as f32,
                (p.grid[2] as f64 / box_l[2]) as f32,
                (1.0 / n_atoms as f64) as f32,
            ],
            coef: [
                (coulomb_k / (pi * v)) as f32,
                (pi * pi / (p.alpha * p.alpha)) as f32,
                (-coulomb_k * pi / (v * p.alpha * p.alpha)) as f32,
                0.0,
            ],
            n_partials,
            nzh,
            _pad: [0; 2],
        };
        let n_grid: u64 = p.grid.iter().map(|&n| n as u64).product();
        let n_half = kx as u64 * ky as u64 * nzh as u64;
        let infl: Vec<[f32; 2]> = influence_tables(box_l, p)
            .iter()
            .map(|t| [t[0] as f32, t[1] as f32])
            .collect();
        Ok(PmeForce {
            params: *p,
            n_atoms,
            spread_kind: kind,
            groups: [gx, gy, gz],
            splines,
            spread,
            first,
            fwd,
            convolve,
            inv,
            last,
            interp,
            convolve_fast,
            last_fast,
            interp_fast,
            uniform: ctx.uniform("pme", &u),
            twiddle: ctx.storage_init("twiddle", &fft::twiddles(p.grid))?,
            // Zeroed at creation; pme_fft_first clears it again after every use.
            charge_grid: ctx.storage("pme_charge_grid", n_grid * kind.point_bytes())?,
            grid: ctx.storage("pme_grid", n_half * 8)?,
            phi: ctx.storage("pme_phi", n_grid * 4)?,
            partials: ctx.storage("pme_partials", n_partials as u64 * 32)?,
            result: ctx.storage("pme_result", 32)?,
            infl: ctx.storage_init("pme_infl", &infl)?,
            // 6·order rows of weights and derivatives, and one of charges (written only by
            // coulomb_spread.wgsl's slot_gather_splines, for its readers by slot).
            spl: ctx.storage("pme_spl", 4 * (6 * p.order as u64 + 1) * n_atoms as u64)?,
            binds: None,
        })
    }

    /// Binds by name: "pos" (array<vec4f>, xyz in [0, L)), "charge" (array<f32>, one per
    /// atom), "force" (array<vec4f>), "atom_virial" (array<vec2f>).
    pub fn bind(&mut self, ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> Result<()> {
        let find = |name: &str| -> Result<&wgpu::Buffer> {
            buffers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| *b)
                .ok_or_else(|| anyhow::anyhow!("internal: PmeForce::bind needs buffer '{name}'"))
        };
        let (pos, charge, force, atom_virial) = (
            find("pos")?,
            find("charge")?,
            find("force")?,
            find("atom_virial")?,
        );
        let n = self.n_atoms as u64;
        for (name, buf, bytes) in [
            ("pos", pos, 16 * n),
            ("charge", charge, 4 * n),
            ("force", force, 16 * n),
            ("atom_virial", atom_virial, 8 * n),
        ] {
            if buf.size() < bytes {
                bail!(
                    "internal: PME buffer '{name}' has {} bytes, {} atoms need {bytes}",
                    buf.size(),
                    self.n_atoms
                );
            }
        }
        let me: &PmeForce = self;
        let bufs = [pos, charge, force, atom_virial];
        let binds = vec![
            me.spread.bind(ctx, &me.entries(bufs))?,
            me.first.bind(ctx, &me.entries(bufs))?,
            me.fwd.bind(ctx, &me.entries(bufs))?,
            me.convolve.bind(ctx, &me.entries(bufs))?,
            me.inv.bind(ctx, &me.entries(bufs))?,
            me.last.bind(ctx, &me.entries(bufs))?,
            me.interp.bind(ctx, &me.entries(bufs))?,
            me.splines.bind(ctx, &me.entries(bufs))?,
            me.convolve_fast.bind(ctx, &me.entries(bufs))?,
            me.last_fast.bind(ctx, &me.entries(bufs))?,
            me.interp_fast.bind(ctx, &me.entries(bufs))?,
        ];
        self.binds = Some(binds);
        Ok(())
    }

    /// Every buffer a PME kernel may use.
    fn entries<'b>(&'b self, ext: [&'b wgpu::Buffer; 4]) -> Vec<(&'static str, &'b wgpu::Buffer)> {
        vec![
            ("grid", &self.grid),
            ("grid_fx", &self.charge_grid),
            ("grid_fx_words", &self.charge_grid),
            ("grid_f", &self.charge_grid),
            ("grid_f_words", &self.charge_grid),
            ("twiddle", &self.twiddle),
            ("P", &self.uniform),
            ("pos", ext[0]),
            ("charge", ext[1]),
            ("force", ext[2]),
            ("atom_virial", ext[3]),
            ("phi", &self.phi),
            ("partials", &self.partials),
            ("result", &self.result),
            ("infl", &self.infl),
            ("spl", &self.spl),
        ]
    }

    /// Encodes the whole reciprocal part into `pass`; must come AFTER the real-space kernel
    /// that overwrites `force`. It ADDS the reciprocal force to force[i].xyz and, with
    /// `energy`, ADDS ½ q_i φ(r_i) to force[i].w (these sum to the reciprocal energy,
    /// background included) and W_recip / N to atom_virial[i].x, and leaves the energy and
    /// virial tensor for [`read_energy_virial`](Self::read_energy_virial). Without `energy`
    /// it adds forces alone (for steps that read no energy).
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, energy: bool) {
        for (k, b, g) in self.dispatches(energy) {
            gpu::dispatch(pass, k, b, g);
        }
    }

    pub fn n_atoms(&self) -> u32 {
        self.n_atoms
    }

    /// Whether the spread can run inside the real-space dispatch (`forces::coulomb_spread`):
    /// the f32-atomic grid only.
    pub fn fusable(&self) -> bool {
        self.spread_kind == PmeSpread::FloatAtomic
    }

    /// Workgroups of 64 threads of the spread (order² threads per atom).
    pub fn spread_groups(&self) -> u32 {
        let o = self.params.order;
        gpu::groups_for(self.n_atoms * o * o, gpu::WG)
    }

    /// The buffers a fused spread reads and writes, by the names coulomb_spread.wgsl uses.
    pub fn spread_buffers(&self) -> Vec<(&'static str, wgpu::Buffer)> {
        vec![
            ("spread_u", self.uniform.clone()),
            ("spl", self.spl.clone()),
            ("grid_f", self.charge_grid.clone()),
            ("phi", self.phi.clone()),
            ("result", self.result.clone()),
        ]
    }

    /// The splines alone: the first dispatch of [`encode`](Self::encode), for a caller that
    /// spreads inside the real-space dispatch, which must come next.
    pub fn encode_splines(&self, pass: &mut wgpu::ComputePass<'_>) {
        let (k, b, g) = self.dispatches(false)[0];
        gpu::dispatch(pass, k, b, g);
    }

    /// Everything after the spread (FFTs, convolution, interpolation): the rest of
    /// [`encode`](Self::encode) once the charge grid holds this step's charges.
    pub fn encode_after_spread(&self, pass: &mut wgpu::ComputePass<'_>, energy: bool) {
        for (k, b, g) in self.dispatches(energy).into_iter().skip(2) {
            gpu::dispatch(pass, k, b, g);
        }
    }

    /// The FFT passes alone: after a spread that the caller ran, before an interpolation
    /// that it runs itself (`forces::coulomb_spread`'s slot_interp, with the splines by slot).
    pub fn encode_fft(&self, pass: &mut wgpu::ComputePass<'_>, energy: bool) {
        let d = self.dispatches(energy);
        for &(k, b, g) in &d[2..d.len() - 1] {
            gpu::dispatch(pass, k, b, g);
        }
    }

    /// The step's dispatches in order: (kernel, bind group, workgroups).
    fn dispatches(&self, energy: bool) -> Vec<(&Kernel, &wgpu::BindGroup, u32)> {
        let b = self.binds.as_ref().expect("PmeForce::bind before encode");
        let [gx, gy, gz] = self.groups;
        let o = self.params.order;
        // The three kernels that have a variant without energy and virial.
        let (convolve, last, interp) = if energy {
            (
                (&self.convolve, &b[3]),
                (&self.last, &b[5]),
                (&self.interp, &b[6]),
            )
        } else {
            (
                (&self.convolve_fast, &b[8]),
                (&self.last_fast, &b[9]),
                (&self.interp_fast, &b[10]),
            )
        };
        let mut d = vec![(&self.splines, &b[7], gpu::groups_for(self.n_atoms, gpu::WG))];
        d.extend([
            (&self.spread, &b[0], self.spread_groups()),
            (&self.first, &b[1], gz),
            (&self.fwd, &b[2], gy),
            (convolve.0, convolve.1, gx),
            (&self.inv, &b[4], gy),
            (last.0, last.1, gz),
            // pme_interp: 64 / order atoms per workgroup of 64 threads.
            (
                interp.0,
                interp.1,
                self.n_atoms.div_ceil(gpu::WG / o).max(1),
            ),
        ]);
        d
    }

    /// Profile for `wgmd bench`: seconds per dispatch of each of the step's dispatches,
    /// named by entry point (a name that occurs twice, like the y-axis FFT, gets its position
    /// appended). Each is repeated `reps` times alone in one compute pass and timed by the wall
    /// clock up to the end of a wait, so per-dispatch overhead is included and `reps` must be
    /// large enough to hide the submit and wait. The buffers are left with meaningless
    /// contents (spread adds to the charge grid, interpolation to `force`): recompute the
    /// forces afterwards.
    pub fn profile(&self, ctx: &GpuContext, reps: u32) -> Result<Vec<(String, f64)>> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for (i, (k, b, g)) in self.dispatches(true).into_iter().enumerate() {
            let secs = gpu::time_alone(ctx, reps, |pass| gpu::dispatch(pass, k, b, g))?;
            let mut name = k.name.clone();
            if out.iter().any(|(n, _)| *n == name) {
                name = format!("{name}_{i}");
            }
            out.push((name, secs));
        }
        Ok(out)
    }

    /// Reciprocal energy and virial tensor (xx, yy, zz, xy, xz, yz) of the last encode.
    pub fn read_energy_virial(&self, ctx: &GpuContext) -> Result<(f64, [f64; 6])> {
        let r: Vec<f32> = ctx.read_buffer(&self.result)?;
        let mut w = [0.0; 6];
        for (k, c) in w.iter_mut().enumerate() {
            *c = r[1 + k] as f64;
        }
        Ok((r[0] as f64, w))
    }

    pub fn params(&self) -> PmeParams {
        self.params
    }

    pub fn spread_kind(&self) -> PmeSpread {
        self.spread_kind
    }

    /// Bytes of grid storage: the charge grid (4 B per point as f32, 8 B as fixed point), the
    /// half spectrum (8 B per point of Kx·Ky·(Kz/2+1)) and the potential grid (4 B per point).
    pub fn grid_bytes(&self) -> u64 {
        self.charge_grid.size() + self.grid.size() + self.phi.size()
    }

    /// Every buffer PME allocates.
    pub fn gpu_bytes(&self) -> u64 {
        self.grid_bytes()
            + [
                &self.twiddle,
                &self.partials,
                &self.result,
                &self.infl,
                &self.spl,
                &self.uniform,
            ]
            .iter()
            .map(|b| b.size())
            .sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bspline_partition_of_unity_and_moduli() {
        for order in 4..=6u32 {
            for &t in &[0.0, 0.3, 0.77] {
                let s: f64 = (0..order).map(|j| bspline(order, t + j as f64)).sum();
                assert!((s - 1.0).abs() < 1e-14, "order {order}: Σ M = {s}");
                let d: f64 = (0..order).map(|j| bspline_deriv(order, t + j as f64)).sum();
                assert!(d.abs() < 1e-14);
            }
            let b = bspline_moduli(order, 16);
            assert!(b.iter().all(|x| x.is_finite() && *x >= 1.0 - 1e-12));
            assert!((b[0] - 1.0).abs() < 1e-14);
        }
    }

    #[test]
    fn tolerance_recipe() {
        let p = PmeParams::from_tolerance([30.0, 30.0, 45.0], 10.0, 5e-4).unwrap();
        let alpha = (-(1e-3f64).ln()).sqrt() / 10.0;
        assert!((p.alpha - alpha).abs() < 1e-15);
        // ⌈2·0.26283·30 / (3·0.21867)⌉ = ⌈24.04⌉ = 25; 45 Å → ⌈36.06⌉ = 37 → 40.
        assert_eq!(p.grid, [25, 25, 40]);
        assert_eq!(p.order, 5);
        assert!(PmeParams::from_tolerance([30.0; 3], 10.0, 0.0).is_err());
        // Tiny boxes get OpenMM's minimum of 6 points.
        let p = PmeParams::from_tolerance([3.0; 3], 10.0, 5e-4).unwrap();
        assert_eq!(p.grid, [6, 6, 6]);
        // The benchmark boxes (molten NaCl, 0.0319 ions/Å³): OpenMM picks 81, 162, 324.
        for (n, k) in [(32768.0f64, 81), (262144.0, 162), (2097152.0, 324)] {
            let l = (n / 0.0319).cbrt();
            let p = PmeParams::from_tolerance([l; 3], 10.0, 5e-4).unwrap();
            assert_eq!(p.grid, [k; 3], "{n} ions, box {l}");
        }
        let bad = PmeParams {
            alpha: 0.3,
            grid: [22, 24, 24],
            order: 5,
        };
        assert!(bad.validate_host().unwrap_err().to_string().contains("11"));
        let bad = PmeParams {
            alpha: 0.3,
            grid: [24, 24, 24],
            order: 7,
        };
        assert!(bad
            .validate_host()
            .unwrap_err()
            .to_string()
            .contains("order"));
    }
}
