//! Integrators (driver of `shaders/integrate.wgsl`) and their float64 CPU twins.
//!
//! - Velocity Verlet (NVE): v += dt/2·a; x += dt·v; forces; v += dt/2·a.
//! - Langevin BAOAB (NVT; Leimkuhler & Matthews, AMRX 2013): B A O A, forces, B, with
//!   O: v ← c1·v + √((1−c1²)·kT/m)·ξ, c1 = exp(−γ·dt). ξ comes from Philox4x32-10 keyed by
//!   (seed, step, atom), so GPU and CPU draw the same numbers.

use anyhow::{bail, Result};

use crate::forces::lj::{self, LjTable};
use crate::system::System;
use crate::units::Units;

#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    VelocityVerlet,
    Langevin {
        temperature: f64,
        friction: f64,
        seed: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Integrator {
    pub dt: f64,
    pub method: Method,
}

impl Integrator {
    pub fn validate(&self) -> Result<()> {
        if !(self.dt.is_finite() && self.dt > 0.0) {
            bail!(
                "integrator.dt is {}; the time step must be a positive number",
                self.dt
            );
        }
        if let Method::Langevin {
            temperature,
            friction,
            ..
        } = self.method
        {
            if !(temperature.is_finite() && temperature >= 0.0) {
                bail!("integrator.temperature is {temperature}; it must be zero or positive");
            }
            if !(friction.is_finite() && friction > 0.0) {
                bail!(
                    "integrator.friction is {friction}; it must be a positive rate (1/time unit)"
                );
            }
        }
        Ok(())
    }

    /// exp(−γ dt) for Langevin, 1 otherwise.
    pub fn c1(&self) -> f64 {
        match self.method {
            Method::Langevin { friction, .. } => (-friction * self.dt).exp(),
            Method::VelocityVerlet => 1.0,
        }
    }

    /// Degrees of freedom for the temperature: momentum is conserved (3N−3) only without a
    /// thermostat.
    pub fn dof(&self, n: usize) -> f64 {
        match self.method {
            Method::VelocityVerlet => (3 * n).saturating_sub(3).max(1) as f64,
            Method::Langevin { .. } => (3 * n) as f64,
        }
    }
}

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// Philox4x32-10 (Salmon et al., SC'11).
pub fn philox4x32(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for _ in 0..10 {
        let p0 = PHILOX_M0 as u64 * c[0] as u64;
        let p1 = PHILOX_M1 as u64 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
    }
    c
}

fn to_unit(x: u32) -> f64 {
    ((x >> 8) as f64 + 0.5) / 16_777_216.0
}

/// The three standard normals atom `atom` draws at step `step` (twin of `gaussian3` in WGSL).
pub fn gaussian3(seed: u64, step: u32, atom: u32) -> [f64; 3] {
    let r = philox4x32(
        [atom, step, 0x5747_4d44, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    let tau = std::f64::consts::TAU;
    let m0 = (-2.0 * to_unit(r[0]).ln()).sqrt();
    let m1 = (-2.0 * to_unit(r[2]).ln()).sqrt();
    [
        m0 * (tau * to_unit(r[1])).cos(),
        m0 * (tau * to_unit(r[1])).sin(),
        m1 * (tau * to_unit(r[3])).cos(),
    ]
}

/// Float64 reference: `steps` steps of `integ` with LJ forces, starting at step number `step0`.
/// Positions are wrapped into the box like the GPU does.
pub fn reference_steps(
    sys: &mut System,
    table: &LjTable,
    units: Units,
    integ: &Integrator,
    step0: u32,
    steps: u32,
) {
    let n = sys.len();
    let ftm2v = units.ftm2v();
    let dt = integ.dt;
    let mut f = lj::reference(sys, table).forces;
    for s in 0..steps {
        let step = step0 + s;
        for i in 0..n {
            let a = ftm2v / sys.mass(i);
            for d in 0..3 {
                sys.velocities[i][d] += 0.5 * dt * a * f[i][d];
            }
            match integ.method {
                Method::VelocityVerlet => {
                    for d in 0..3 {
                        sys.positions[i][d] += dt * sys.velocities[i][d];
                    }
                }
                Method::Langevin {
                    temperature, seed, ..
                } => {
                    let c1 = integ.c1();
                    let sigma = ((1.0 - c1 * c1) * units.kb() * temperature * a).sqrt();
                    let xi = gaussian3(seed, step, i as u32);
                    for d in 0..3 {
                        sys.positions[i][d] += 0.5 * dt * sys.velocities[i][d];
                        sys.velocities[i][d] = c1 * sys.velocities[i][d] + sigma * xi[d];
                        sys.positions[i][d] += 0.5 * dt * sys.velocities[i][d];
                    }
                }
            }
        }
        sys.wrap();
        f = lj::reference(sys, table).forces;
        for i in 0..n {
            let a = ftm2v / sys.mass(i);
            for d in 0..3 {
                sys.velocities[i][d] += 0.5 * dt * a * f[i][d];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answers() {
        // Known-answer vectors from Random123's kat_vectors (philox4x32_10).
        assert_eq!(
            philox4x32([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn gaussians_have_unit_variance() {
        let (mut s1, mut s2, mut n) = (0.0, 0.0, 0.0);
        for atom in 0..20000u32 {
            for g in gaussian3(42, 7, atom) {
                s1 += g;
                s2 += g * g;
                n += 1.0;
            }
        }
        let mean = s1 / n;
        let var = s2 / n - mean * mean;
        // 60,000 samples: standard error of the mean 0.004, of the variance 0.006.
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
    }
}

/// GPU driver: the first-half kernel of the chosen method and the closing half kick.
pub struct IntegratorKernels {
    first: crate::gpu::Kernel,
    /// The first half with the previous step's closing half kick folded in (KICK = 1).
    fused: crate::gpu::Kernel,
    kick: crate::gpu::Kernel,
    binds: Option<[wgpu::BindGroup; 3]>,
}

impl IntegratorKernels {
    /// `mixed`: positions and velocities integrated as double-f32 sums (the shader's MIXED).
    /// `pair_cap`: rebuild by pairs, listing at most that many atoms past skin/2.
    pub fn new(
        ctx: &crate::gpu::GpuContext,
        method: &Method,
        mixed: bool,
        pair_cap: Option<u32>,
    ) -> Result<IntegratorKernels> {
        let module = crate::gpu::ShaderModule::new(ctx, "integrate")?;
        let first = match method {
            Method::VelocityVerlet => "vv_first",
            Method::Langevin { .. } => "baoab_first",
        };
        let m = if mixed { 1.0 } else { 0.0 };
        // Rebuild by pairs: the opening kernels list the atoms that may have passed skin/2.
        let p = [
            ("MIXED", m),
            ("PAIRS", pair_cap.is_some() as u32 as f64),
            ("FAST_CAP", pair_cap.unwrap_or(1) as f64),
        ];
        let pk = [p[0], p[1], p[2], ("KICK", 1.0)];
        Ok(IntegratorKernels {
            first: crate::gpu::Kernel::new(ctx, &module, first, &p)?,
            fused: crate::gpu::Kernel::new(ctx, &module, first, &pk)?,
            kick: crate::gpu::Kernel::new(ctx, &module, "kick", &[("MIXED", m)])?,
            binds: None,
        })
    }
    pub fn bind(
        &mut self,
        ctx: &crate::gpu::GpuContext,
        buffers: &[(&str, &wgpu::Buffer)],
    ) -> Result<()> {
        self.binds = Some([
            self.first.bind(ctx, buffers)?,
            self.fused.bind(ctx, buffers)?,
            self.kick.bind(ctx, buffers)?,
        ]);
        Ok(())
    }
    /// Opening half of a step; `fused` also applies the previous step's closing half kick.
    pub fn encode_first(&self, pass: &mut wgpu::ComputePass<'_>, n_atoms: u32, fused: bool) {
        let b = self.binds.as_ref().expect("bind before encode");
        let (k, bg) = if fused {
            (&self.fused, &b[1])
        } else {
            (&self.first, &b[0])
        };
        crate::gpu::dispatch(pass, k, bg, crate::gpu::groups_for(n_atoms, crate::gpu::WG));
    }
    pub fn encode_kick(&self, pass: &mut wgpu::ComputePass<'_>, n_atoms: u32) {
        let b = self.binds.as_ref().expect("bind before encode");
        crate::gpu::dispatch(
            pass,
            &self.kick,
            &b[2],
            crate::gpu::groups_for(n_atoms, crate::gpu::WG),
        );
    }
}
