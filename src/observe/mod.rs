//! Observables: GPU reductions (driver of `shaders/reduce.wgsl`) and the thermodynamic
//! quantities derived from them on the host; pair-distance and speed histograms
//! ([`histogram`]); non-blocking readback for interactive hosts ([`readback`]).

use anyhow::Result;

pub mod histogram;
pub mod readback;

use crate::gpu::{self, GpuContext, Kernel, ShaderModule};

/// First-stage workgroups of the reduction (grid-stride over atoms).
pub fn partials_for(n_atoms: u32) -> u32 {
    n_atoms.div_ceil(256).clamp(1, 1024)
}

pub struct Reducer {
    partial: Kernel,
    fin: Kernel,
    binds: Option<(wgpu::BindGroup, wgpu::BindGroup)>,
    n_partials: u32,
}

impl Reducer {
    pub fn new(ctx: &GpuContext, n_atoms: u32) -> Result<Reducer> {
        let module = ShaderModule::new(ctx, "reduce")?;
        Ok(Reducer {
            partial: Kernel::new(ctx, &module, "reduce_partial", &[])?,
            fin: Kernel::new(ctx, &module, "reduce_final", &[])?,
            binds: None,
            n_partials: partials_for(n_atoms),
        })
    }
    pub fn bind(&mut self, ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> Result<()> {
        self.binds = Some((
            self.partial.bind(ctx, buffers)?,
            self.fin.bind(ctx, buffers)?,
        ));
        Ok(())
    }
    /// Writes (pe, ke, virial, 0) of the current state into `observables[0]`.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        let (a, b) = self.binds.as_ref().expect("bind before encode");
        gpu::dispatch(pass, &self.partial, a, self.n_partials);
        gpu::dispatch(pass, &self.fin, b, 1);
    }
}

/// One sample of the thermodynamic state, totals for the whole system in the config's units.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Thermo {
    pub step: u64,
    pub time: f64,
    pub temperature: f64,
    pub potential_energy: f64,
    pub kinetic_energy: f64,
    pub total_energy: f64,
    pub pressure: f64,
    /// W = Σ_{i<j} r_ij·f_ij including tail corrections (energy units).
    pub virial: f64,
    /// Total energy with every plainly truncated pair counted as shifted: what velocity Verlet
    /// conserves (truncated and shifted LJ have the same forces). Equals `total_energy` for
    /// shifted potentials.
    pub conserved_energy: f64,
}

pub const CSV_HEADER: &str =
    "step,time,temperature,potential_energy,kinetic_energy,total_energy,pressure";

impl Thermo {
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{:.10e},{:.10e},{:.10e},{:.10e},{:.10e}",
            self.step,
            self.time,
            self.temperature,
            self.potential_energy,
            self.kinetic_energy,
            self.total_energy,
            self.pressure
        )
    }
}
