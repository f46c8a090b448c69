//! Lennard-Jones 12-6 with per-type-pair parameters (driver of `shaders/lj.wgsl`).
//!
//! U(r) = 4ε[(σ/r)^12 − (σ/r)^6] − U_shift for r < r_c, with U_shift = U(r_c) when `shift`
//! is on and 0 when the potential is plainly truncated (LAMMPS `lj/cut`, NIST tables).
//! Unlike pairs mix by Lorentz–Berthelot (σ_ab = (σ_a+σ_b)/2, ε_ab = √(ε_a ε_b)) unless
//! an explicit pair override is given.

use anyhow::{bail, Result};

use crate::gpu::{self, GpuContext, Kernel, ShaderModule};
use crate::neighbor::ListLayout;
use crate::system::System;

/// Per-type inputs: what a config names.
#[derive(Clone, Debug)]
pub struct LjSpec {
    pub cutoff: f64,
    pub shift: bool,
    /// Long-range (tail) correction for energy and pressure, assuming g(r) = 1 beyond r_c.
    pub tail: bool,
    /// σ and ε of each type (index = type id).
    pub sigma: Vec<f64>,
    pub epsilon: Vec<f64>,
    /// Explicit (type a, type b, σ, ε) overrides of the mixing rule.
    pub pairs: Vec<(u32, u32, f64, f64)>,
}

impl LjSpec {
    /// No LJ interactions (all ε = 0) for `n_types` types; `cutoff` only sizes the table.
    pub fn off(n_types: usize, cutoff: f64) -> LjSpec {
        LjSpec {
            cutoff,
            shift: false,
            tail: false,
            sigma: vec![1.0; n_types],
            epsilon: vec![0.0; n_types],
            pairs: vec![],
        }
    }
    /// True when every pair has ε = 0, so the LJ term contributes nothing.
    pub fn is_off(&self) -> bool {
        self.epsilon.iter().all(|&e| e == 0.0) && self.pairs.iter().all(|p| p.3 == 0.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LjPair {
    pub sigma: f64,
    pub epsilon: f64,
    pub cutoff: f64,
    /// Energy subtracted inside the cutoff (U(r_c) or 0).
    pub shift: f64,
}

/// (energy, force/r) of one pair at squared distance `r2` (inside the cutoff). Twin of
/// `lj_pair` in lj.wgsl.
pub fn lj_pair(r2: f64, p: &LjPair) -> (f64, f64) {
    let sr2 = p.sigma * p.sigma / r2;
    let sr6 = sr2 * sr2 * sr2;
    let e = 4.0 * p.epsilon * (sr6 * sr6 - sr6) - p.shift;
    let f_over_r = 4.0 * p.epsilon * (12.0 * sr6 * sr6 - 6.0 * sr6) / r2;
    (e, f_over_r)
}

/// Resolved n_types × n_types table.
#[derive(Clone, Debug)]
pub struct LjTable {
    pub n_types: usize,
    pub pairs: Vec<LjPair>,
    pub cutoff: f64,
    pub tail: bool,
}

impl LjTable {
    pub fn new(spec: &LjSpec) -> Result<LjTable> {
        let n = spec.sigma.len();
        if spec.epsilon.len() != n {
            bail!("internal: sigma and epsilon lists differ in length");
        }
        if !(spec.cutoff.is_finite() && spec.cutoff > 0.0) {
            bail!(
                "forces.lj.cutoff is {}; it must be a positive number",
                spec.cutoff
            );
        }
        for t in 0..n {
            if !(spec.sigma[t].is_finite() && spec.sigma[t] > 0.0) {
                bail!(
                    "LJ sigma of type {t} is {}; it must be positive",
                    spec.sigma[t]
                );
            }
            if !(spec.epsilon[t].is_finite() && spec.epsilon[t] >= 0.0) {
                bail!(
                    "LJ epsilon of type {t} is {}; it must be zero or positive",
                    spec.epsilon[t]
                );
            }
        }
        let mut pairs = Vec::with_capacity(n * n);
        for a in 0..n {
            for b in 0..n {
                let mut sigma = 0.5 * (spec.sigma[a] + spec.sigma[b]);
                let mut epsilon = (spec.epsilon[a] * spec.epsilon[b]).sqrt();
                for &(pa, pb, s, e) in &spec.pairs {
                    if (pa as usize, pb as usize) == (a, b) || (pb as usize, pa as usize) == (a, b)
                    {
                        sigma = s;
                        epsilon = e;
                    }
                }
                let mut p = LjPair {
                    sigma,
                    epsilon,
                    cutoff: spec.cutoff,
                    shift: 0.0,
                };
                if spec.shift {
                    p.shift = lj_pair(spec.cutoff * spec.cutoff, &p).0;
                }
                pairs.push(p);
            }
        }
        Ok(LjTable {
            n_types: n,
            pairs,
            cutoff: spec.cutoff,
            tail: spec.tail,
        })
    }

    pub fn pair(&self, a: u32, b: u32) -> &LjPair {
        &self.pairs[a as usize * self.n_types + b as usize]
    }

    /// The largest pair cutoff squared, as the f32 the kernels compare with (0 without LJ).
    pub fn max_cut2(&self) -> f32 {
        self.gpu_data().iter().map(|p| p[2]).fold(0.0, f32::max)
    }

    /// GPU layout: (σ², 4ε, r_c², shift) per pair.
    pub fn gpu_data(&self) -> Vec<[f32; 4]> {
        self.pairs
            .iter()
            .map(|p| {
                [
                    (p.sigma * p.sigma) as f32,
                    (4.0 * p.epsilon) as f32,
                    (p.cutoff * p.cutoff) as f32,
                    p.shift as f32,
                ]
            })
            .collect()
    }

    /// Per pair: U(r_c) of the unshifted potential minus the applied shift — the energy a pair
    /// gains or loses when it crosses a plain truncation (0 for shifted pairs).
    pub fn cutoff_jump(&self) -> Vec<f32> {
        self.pairs
            .iter()
            .map(|p| {
                (lj_pair(p.cutoff * p.cutoff, &LjPair { shift: 0.0, ..*p }).0 - p.shift) as f32
            })
            .collect()
    }

    /// Largest |F| that a healthy run should never see: 1e5·ε/σ of the stiffest pair
    /// (an LJ pair reaches that near r = 0.55σ, far inside any thermal approach).
    pub fn max_force(&self) -> f64 {
        self.pairs
            .iter()
            .map(|p| 1e5 * p.epsilon.max(1e-30) / p.sigma)
            .fold(0.0, f64::max)
    }

    /// Tail corrections (energy, virial W = Σ r·f) for the type counts of `sys`.
    pub fn tail_corrections(&self, sys: &System) -> (f64, f64) {
        if !self.tail {
            return (0.0, 0.0);
        }
        let mut counts = vec![0.0f64; self.n_types];
        for &t in &sys.types {
            counts[t as usize] += 1.0;
        }
        let v = sys.volume();
        let (mut e, mut w) = (0.0, 0.0);
        for a in 0..self.n_types {
            for b in 0..self.n_types {
                let p = &self.pairs[a * self.n_types + b];
                let s3 = p.sigma.powi(3);
                let x3 = (p.sigma / p.cutoff).powi(3);
                let x9 = x3 * x3 * x3;
                let nn = counts[a] * counts[b];
                e += 8.0 / 3.0 * std::f64::consts::PI * nn / v * p.epsilon * s3 * (x9 / 3.0 - x3);
                // P_tail = 16π/3 · nn/V² · ε σ³ [2/3 x9 − x3]; W_tail = 3 V P_tail.
                w += 16.0 * std::f64::consts::PI * nn / v * p.epsilon * s3 * (2.0 / 3.0 * x9 - x3);
            }
        }
        (e, w)
    }
}

/// Float64 reference result.
#[derive(Clone, Debug)]
pub struct LjReference {
    pub energy: f64,
    /// W = Σ_{i<j} r_ij · f_ij (not divided by 3), excluding the tail.
    pub virial: f64,
    /// Σ_{i<j} |r_ij · f_ij|: the scale of f32 rounding in W, which can be a near-cancelling
    /// sum (repulsive and attractive pairs) far smaller than its terms.
    pub virial_abs: f64,
    pub forces: Vec<[f64; 3]>,
}

/// All-pairs minimum-image reference (clear, O(N²)). Requires r_c < L/2 so each pair has at
/// most one image inside the cutoff.
pub fn reference(sys: &System, table: &LjTable) -> LjReference {
    let n = sys.len();
    let l = sys.box_lengths;
    let mut forces = vec![[0.0f64; 3]; n];
    let (mut energy, mut virial, mut virial_abs) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let pi = sys.positions[i];
        for j in (i + 1)..n {
            let pj = sys.positions[j];
            let mut d = [0.0; 3];
            for k in 0..3 {
                let x = pi[k] - pj[k];
                d[k] = x - l[k] * (x / l[k]).round();
            }
            let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            let p = table.pair(sys.types[i], sys.types[j]);
            if r2 < p.cutoff * p.cutoff {
                let (e, f) = lj_pair(r2, p);
                energy += e;
                virial += f * r2;
                virial_abs += (f * r2).abs();
                for k in 0..3 {
                    forces[i][k] += f * d[k];
                    forces[j][k] -= f * d[k];
                }
            }
        }
    }
    LjReference {
        energy,
        virial,
        virial_abs,
        forces,
    }
}

/// GPU driver: one kernel, bound once to the simulation's buffers.
pub struct LjForce {
    /// `lj_force` (Verlet list) or `lj_force_cells` (straight from the cell list).
    kernel: Kernel,
    /// Threads sharing one atom's neighbor row (the shader's `TPA`).
    threads_per_atom: u32,
    pub table_buf: wgpu::Buffer,
    rc_buf: wgpu::Buffer,
    bind: Option<wgpu::BindGroup>,
}

impl LjForce {
    /// `from_cells`: gather over the cell list instead of a Verlet list (engine's
    /// `NeighborMode::Cells`); `layout`: how the list is laid out (`neighbor::ListLayout`).
    pub fn new(
        ctx: &GpuContext,
        table: &LjTable,
        threads_per_atom: u32,
        from_cells: bool,
        layout: ListLayout,
    ) -> Result<LjForce> {
        if ![1, 2, 4, 8, 16, 32, 64].contains(&threads_per_atom) {
            bail!(
                "LJ threads per atom must be a power of two from 1 to 64, not {threads_per_atom}"
            );
        }
        let module = ShaderModule::new(ctx, "lj")?;
        let kernel = Kernel::new(
            ctx,
            &module,
            if from_cells {
                "lj_force_cells"
            } else if layout.slot_rows() {
                if crate::forces::coulomb::single_lane(threads_per_atom) {
                    "lj_force_slots1"
                } else {
                    "lj_force_slots"
                }
            } else {
                "lj_force"
            },
            &if layout.slot_rows() {
                let mut o = vec![
                    ("TPA", threads_per_atom as f64),
                    ("PACKED", layout.packed() as u32 as f64),
                ];
                o.extend(layout.split_overrides(table.max_cut2()));
                o
            } else {
                vec![("TPA", threads_per_atom as f64)]
            },
        )?;
        let table_buf = ctx.storage_init("lj_pairs", &table.gpu_data())?;
        let rc_buf = ctx.storage_init("lj_rc", &table.cutoff_jump())?;
        Ok(LjForce {
            kernel,
            threads_per_atom,
            table_buf,
            rc_buf,
            bind: None,
        })
    }

    /// (Re)binds to the simulation's buffers (after creation or a neighbor-list regrow).
    pub fn bind(&mut self, ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> Result<()> {
        let mut all = buffers.to_vec();
        all.push(("lj_pairs", &self.table_buf));
        all.push(("lj_rc", &self.rc_buf));
        self.bind = Some(self.kernel.bind(ctx, &all)?);
        Ok(())
    }

    pub fn threads_per_atom(&self) -> u32 {
        self.threads_per_atom
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.table_buf.size() + self.rc_buf.size()
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, n_atoms: u32) {
        let bg = self.bind.as_ref().expect("LjForce::bind before encode");
        let atoms_per_group = gpu::WG / self.threads_per_atom;
        gpu::dispatch(
            pass,
            &self.kernel,
            bg,
            gpu::groups_for(n_atoms, atoms_per_group),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_override_and_shift() {
        let spec = LjSpec {
            cutoff: 2.5,
            shift: true,
            tail: false,
            sigma: vec![1.0, 2.0, 1.5],
            epsilon: vec![1.0, 4.0, 0.5],
            pairs: vec![(0, 2, 1.1, 0.7)],
        };
        let t = LjTable::new(&spec).unwrap();
        let p = t.pair(0, 1);
        assert!((p.sigma - 1.5).abs() < 1e-15 && (p.epsilon - 2.0).abs() < 1e-15);
        assert_eq!(t.pair(2, 0).sigma, 1.1);
        assert_eq!(t.pair(0, 2).epsilon, 0.7);
        // Shifted: energy vanishes at the cutoff.
        assert!(lj_pair(2.5 * 2.5, t.pair(1, 1)).0.abs() < 1e-14);
    }

    #[test]
    fn pair_force_is_minus_energy_derivative() {
        let p = LjPair {
            sigma: 1.1,
            epsilon: 0.9,
            cutoff: 3.0,
            shift: 0.0,
        };
        for &r in &[0.95, 1.1, 1.3, 2.0, 2.9] {
            let h = 1e-6;
            let de =
                (lj_pair((r + h) * (r + h), &p).0 - lj_pair((r - h) * (r - h), &p).0) / (2.0 * h);
            let f = lj_pair(r * r, &p).1 * r;
            assert!(
                (f + de).abs() < 1e-6 * (1.0 + f.abs()),
                "r={r}: F={f} -dU/dr={}",
                -de
            );
        }
    }
}
