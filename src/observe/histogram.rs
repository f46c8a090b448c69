//! Pair-distance and speed histograms (driver of `shaders/histogram.wgsl`), their float64 CPU
//! twin, and the host-side curves built from them: g(r) and the Maxwell–Boltzmann speed
//! distribution. The viewer reads the counts back asynchronously (see [`super::readback`]).

use anyhow::{bail, Result};
use bytemuck::{Pod, Zeroable};

use crate::gpu::{self, GpuContext, Kernel, ShaderModule};

/// Largest number of bins (the kernels keep one workgroup-local copy of a histogram).
pub const MAX_BINS: u32 = 256;
const HWG: u32 = 64;

/// Mirrors `HistParams` in `shaders/histogram.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct HistParams {
    pub box_len: [f32; 4],
    pub inv_box: [f32; 4],
    pub n_atoms: u32,
    pub n_centers: u32,
    pub n_bins: u32,
    pub _pad0: u32,
    pub r_max: f32,
    pub v_max: f32,
    pub _pad1: f32,
    pub _pad2: f32,
}

/// What to histogram: `n_bins` bins over [0, r_max) for distances from the first `n_centers`
/// atoms, and over [0, v_max) for speeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistSpec {
    pub n_bins: u32,
    pub n_centers: u32,
    pub r_max: f64,
    pub v_max: f64,
}

impl HistSpec {
    pub fn validate(&self, n_atoms: usize, box_lengths: [f64; 3]) -> Result<()> {
        if self.n_bins == 0 || self.n_bins > MAX_BINS {
            bail!("histogram bins must be 1..={MAX_BINS}, not {}", self.n_bins);
        }
        if self.n_centers as usize > n_atoms {
            bail!("{} RDF centers but only {n_atoms} atoms", self.n_centers);
        }
        let half = box_lengths.iter().cloned().fold(f64::INFINITY, f64::min) / 2.0;
        if !(self.r_max > 0.0 && self.r_max <= half) {
            bail!(
                "RDF range {} must be positive and at most half the box ({half})",
                self.r_max
            );
        }
        if !(self.v_max > 0.0 && self.v_max.is_finite()) {
            bail!("speed range {} must be a positive number", self.v_max);
        }
        Ok(())
    }
}

/// GPU histograms over a position and a velocity buffer (layout of the engine's).
pub struct Histograms {
    params: wgpu::Buffer,
    rdf: wgpu::Buffer,
    speed: wgpu::Buffer,
    kernels: [Kernel; 3],
    binds: [wgpu::BindGroup; 3],
    n_atoms: u32,
    box_lengths: [f64; 3],
    spec: Option<HistSpec>,
}

impl Histograms {
    pub fn new(
        ctx: &GpuContext,
        pos: &wgpu::Buffer,
        vel: &wgpu::Buffer,
        n_atoms: usize,
        box_lengths: [f64; 3],
    ) -> Result<Histograms> {
        let module = ShaderModule::new(ctx, "histogram")?;
        let kernels = [
            Kernel::new(ctx, &module, "hist_clear", &[])?,
            Kernel::new(ctx, &module, "rdf_count", &[])?,
            Kernel::new(ctx, &module, "speed_count", &[])?,
        ];
        let params = ctx.uniform("hist_params", &HistParams::default());
        let rdf = ctx.storage("rdf_hist", 4 * MAX_BINS as u64)?;
        let speed = ctx.storage("speed_hist", 4 * MAX_BINS as u64)?;
        let named = [
            ("H", &params),
            ("pos", pos),
            ("vel", vel),
            ("rdf_hist", &rdf),
            ("speed_hist", &speed),
        ];
        let binds = [
            kernels[0].bind(ctx, &named)?,
            kernels[1].bind(ctx, &named)?,
            kernels[2].bind(ctx, &named)?,
        ];
        Ok(Histograms {
            params,
            rdf,
            speed,
            kernels,
            binds,
            n_atoms: n_atoms as u32,
            box_lengths,
            spec: None,
        })
    }

    /// Sets the ranges for the next [`Histograms::encode`]s.
    pub fn set(&mut self, ctx: &GpuContext, spec: HistSpec) -> Result<()> {
        spec.validate(self.n_atoms as usize, self.box_lengths)?;
        let l = self.box_lengths;
        let p = HistParams {
            box_len: [l[0] as f32, l[1] as f32, l[2] as f32, 0.0],
            inv_box: [
                (1.0 / l[0]) as f32,
                (1.0 / l[1]) as f32,
                (1.0 / l[2]) as f32,
                0.0,
            ],
            n_atoms: self.n_atoms,
            n_centers: spec.n_centers,
            n_bins: spec.n_bins,
            r_max: spec.r_max as f32,
            v_max: spec.v_max as f32,
            ..Default::default()
        };
        ctx.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        self.spec = Some(spec);
        Ok(())
    }

    pub fn spec(&self) -> Option<HistSpec> {
        self.spec
    }

    /// Clears and fills both histograms (call [`Histograms::set`] first).
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        let spec = self.spec.expect("Histograms::set before encode");
        let [clear, rdf, speed] = &self.kernels;
        gpu::dispatch(pass, clear, &self.binds[0], 1);
        if spec.n_centers > 0 {
            gpu::dispatch(
                pass,
                rdf,
                &self.binds[1],
                gpu::groups_for(spec.n_centers, HWG),
            );
        }
        gpu::dispatch(
            pass,
            speed,
            &self.binds[2],
            gpu::groups_for(self.n_atoms, HWG),
        );
    }

    /// Pair-distance counts (`n_bins` u32 words are meaningful).
    pub fn rdf_buffer(&self) -> &wgpu::Buffer {
        &self.rdf
    }
    pub fn speed_buffer(&self) -> &wgpu::Buffer {
        &self.speed
    }
}

/// Float64 twin of the kernels: (pair-distance counts, speed counts, count of values within a
/// relative 2e-6 of a bin edge or range end, which f32 may put in the neighbouring bin).
pub fn reference(
    positions: &[[f64; 3]],
    velocities: &[[f64; 3]],
    box_lengths: [f64; 3],
    spec: &HistSpec,
) -> (Vec<u64>, Vec<u64>, u64) {
    let nb = spec.n_bins as usize;
    let mut rdf = vec![0u64; nb];
    let mut speed = vec![0u64; nb];
    let mut ambiguous = 0u64;
    let mut put = |hist: &mut Vec<u64>, x: f64, x_max: f64| {
        let f = x / x_max * nb as f64;
        if (f - f.round()).abs() < 2e-6 * nb as f64 {
            ambiguous += 1;
        }
        if x < x_max {
            hist[(f as usize).min(nb - 1)] += 1;
        }
    };
    for i in 0..spec.n_centers as usize {
        for (j, pj) in positions.iter().enumerate() {
            if j == i {
                continue;
            }
            let mut r2 = 0.0;
            for d in 0..3 {
                let x = pj[d] - positions[i][d];
                let x = x - box_lengths[d] * (x / box_lengths[d]).round();
                r2 += x * x;
            }
            // Pairs far beyond the range cannot be ambiguous; skip the sqrt.
            if r2 < 1.01 * spec.r_max * spec.r_max {
                put(&mut rdf, r2.sqrt(), spec.r_max);
            }
        }
    }
    for v in velocities {
        put(
            &mut speed,
            (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt(),
            spec.v_max,
        );
    }
    (rdf, speed, ambiguous)
}

/// g(r) at the bin centres from pair counts of `n_centers` centers among `n_atoms` atoms in
/// `volume`: counts / (centers · ρ · shell volume), ρ = (N−1)/V (a center is not its own partner).
pub fn rdf_curve(counts: &[u32], spec: &HistSpec, n_atoms: usize, volume: f64) -> Vec<[f64; 2]> {
    let nb = spec.n_bins as usize;
    let dr = spec.r_max / nb as f64;
    let rho = (n_atoms.saturating_sub(1)) as f64 / volume;
    let norm = spec.n_centers.max(1) as f64 * rho;
    counts
        .iter()
        .take(nb)
        .enumerate()
        .map(|(k, &c)| {
            let (r0, r1) = (k as f64 * dr, (k + 1) as f64 * dr);
            let shell = 4.0 / 3.0 * std::f64::consts::PI * (r1.powi(3) - r0.powi(3));
            [(k as f64 + 0.5) * dr, c as f64 / (norm * shell)]
        })
        .collect()
}

/// Speed histogram as a probability density (per unit speed) at the bin centres.
pub fn speed_density(counts: &[u32], spec: &HistSpec, n_atoms: usize) -> Vec<[f64; 2]> {
    let nb = spec.n_bins as usize;
    let dv = spec.v_max / nb as f64;
    counts
        .iter()
        .take(nb)
        .enumerate()
        .map(|(k, &c)| {
            [
                (k as f64 + 0.5) * dv,
                c as f64 / (n_atoms.max(1) as f64 * dv),
            ]
        })
        .collect()
}

/// Maxwell–Boltzmann speed density f(v) = 4π (m/2πkT)^{3/2} v² exp(−m v²/2kT), with mass ×
/// velocity² converted to energy by `mvv2e` (see [`crate::units::Units::mvv2e`]).
pub fn maxwell_boltzmann(v: f64, kt: f64, mass: f64, mvv2e: f64) -> f64 {
    if !(kt > 0.0) {
        return 0.0;
    }
    let a = mass * mvv2e / (2.0 * kt);
    4.0 * std::f64::consts::PI * (a / std::f64::consts::PI).powf(1.5) * v * v * (-a * v * v).exp()
}
