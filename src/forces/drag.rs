//! A harmonic spring pulling one atom toward a point (driver of `shaders/drag.wgsl`): the
//! viewer's "drag an atom with the mouse". Dispatched after the force field in every step
//! while active; not part of the potential energy.

use anyhow::Result;
use bytemuck::{Pod, Zeroable};

use crate::gpu::{self, GpuContext, Kernel, ShaderModule};

/// Mirrors `Drag` in `shaders/drag.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DragParams {
    pub target_k: [f32; 4],
    pub atom: [u32; 4],
}

/// Which atom, toward where (wrapped or not: the kernel takes the minimum image), how stiff.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drag {
    pub atom: u32,
    pub target: [f64; 3],
    /// Spring constant, energy / length².
    pub k: f64,
}

pub struct DragForce {
    kernel: Kernel,
    params: wgpu::Buffer,
    bind: Option<wgpu::BindGroup>,
}

impl DragForce {
    pub fn new(ctx: &GpuContext) -> Result<DragForce> {
        let module = ShaderModule::new(ctx, "drag")?;
        Ok(DragForce {
            kernel: Kernel::new(ctx, &module, "drag_force", &[])?,
            params: ctx.uniform("drag", &DragParams::default()),
            bind: None,
        })
    }
    pub fn bind(&mut self, ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> Result<()> {
        let mut named = buffers.to_vec();
        named.push(("D", &self.params));
        self.bind = Some(self.kernel.bind(ctx, &named)?);
        Ok(())
    }
    pub fn set(&self, ctx: &GpuContext, d: &Drag) {
        let p = DragParams {
            target_k: [
                d.target[0] as f32,
                d.target[1] as f32,
                d.target[2] as f32,
                d.k as f32,
            ],
            atom: [d.atom, 0, 0, 0],
        };
        ctx.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
    }
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        let bg = self.bind.as_ref().expect("bind before encode");
        gpu::dispatch(pass, &self.kernel, bg, 1);
    }
}

/// Float64 twin: the spring force on the dragged atom at `x`.
pub fn reference(x: [f64; 3], d: &Drag, box_lengths: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|k| {
        let r = d.target[k] - x[k];
        d.k * (r - box_lengths[k] * (r / box_lengths[k]).round())
    })
}
