//! Driver of `shaders/render.wgsl`: draws the atoms from the simulation's position buffer
//! inside egui's render pass (an `egui_wgpu` paint callback), plus the box outline and the
//! drag spring; and the orbit camera that feeds it.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use eframe::egui_wgpu;
use glam::{Mat4, Vec2, Vec3};

pub const MAX_TYPES: usize = 16;

/// Mirrors `Camera` in `shaders/render.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CameraUniform {
    pub view: [[f32; 4]; 4],
    pub proj: [[f32; 4]; 4],
    pub box_len: [f32; 4],
    pub light: [f32; 4],
    pub drag: [f32; 4],
    pub drag_atom: [u32; 4],
    pub types: [[f32; 4]; MAX_TYPES],
}

/// Pipelines and the camera buffer; one per viewer, rebound when the simulation is replaced.
pub struct AtomRenderer {
    atoms: wgpu::RenderPipeline,
    box_lines: wgpu::RenderPipeline,
    drag_line: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    camera: wgpu::Buffer,
}

/// What one frame draws: the renderer, the bind group of the current simulation's positions,
/// and the camera values for this frame.
pub struct AtomsCallback {
    pub renderer: Arc<AtomRenderer>,
    pub bind: wgpu::BindGroup,
    pub n_atoms: u32,
    pub camera: CameraUniform,
    pub dragging: bool,
}

impl AtomRenderer {
    pub fn new(
        device: &wgpu::Device,
        target: wgpu::TextureFormat,
        depth: wgpu::TextureFormat,
    ) -> anyhow::Result<AtomRenderer> {
        let source = crate::gpu::shaders::compose("render")?;
        crate::gpu::shaders::validate("render", &source)?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("render"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("render"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::VERTEX,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("render"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let make = |vs: &str, fs: &str, topology: wgpu::PrimitiveTopology, on_top: bool| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(vs),
                layout: Some(&pl),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some(vs),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState {
                    topology,
                    ..Default::default()
                },
                depth_stencil: Some(wgpu::DepthStencilState {
                    format: depth,
                    depth_write_enabled: Some(!on_top),
                    depth_compare: Some(if on_top {
                        wgpu::CompareFunction::Always
                    } else {
                        wgpu::CompareFunction::Less
                    }),
                    stencil: Default::default(),
                    bias: Default::default(),
                }),
                multisample: Default::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fs),
                    compilation_options: Default::default(),
                    targets: &[Some(target.into())],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        Ok(AtomRenderer {
            atoms: make(
                "vs_atom",
                "fs_atom",
                wgpu::PrimitiveTopology::TriangleList,
                false,
            ),
            box_lines: make(
                "vs_box",
                "fs_line",
                wgpu::PrimitiveTopology::LineList,
                false,
            ),
            // The spring stays visible when the atom is pulled behind others.
            drag_line: make(
                "vs_drag",
                "fs_line",
                wgpu::PrimitiveTopology::LineList,
                true,
            ),
            layout,
            camera: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("camera"),
                size: std::mem::size_of::<CameraUniform>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        })
    }

    /// Binds a simulation's position buffer (once per simulation, not per frame).
    pub fn bind(&self, device: &wgpu::Device, positions: &wgpu::Buffer) -> wgpu::BindGroup {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("render"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.camera.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: positions.as_entire_binding(),
                },
            ],
        })
    }
}

impl egui_wgpu::CallbackTrait for AtomsCallback {
    fn prepare(
        &self,
        _device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        _resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        queue.write_buffer(&self.renderer.camera, 0, bytemuck::bytes_of(&self.camera));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        _resources: &egui_wgpu::CallbackResources,
    ) {
        let r = &self.renderer;
        pass.set_bind_group(0, &self.bind, &[]);
        pass.set_pipeline(&r.atoms);
        pass.draw(0..6, 0..self.n_atoms);
        pass.set_pipeline(&r.box_lines);
        pass.draw(0..24, 0..1);
        if self.dragging {
            pass.set_pipeline(&r.drag_line);
            pass.draw(0..2, 0..1);
        }
    }
}

use eframe::egui;

/// Orbit camera around a target point: yaw/pitch/distance, perspective or orthographic.
#[derive(Clone, Copy, Debug)]
pub struct OrbitCamera {
    pub target: Vec3,
    pub yaw: f32,
    pub pitch: f32,
    pub distance: f32,
    pub orthographic: bool,
    pub fov_y: f32,
}

impl OrbitCamera {
    /// Frames a box of edges `l` from a pleasant three-quarter view.
    pub fn fit(l: [f64; 3]) -> OrbitCamera {
        let l = Vec3::new(l[0] as f32, l[1] as f32, l[2] as f32);
        let fov_y = 40f32.to_radians();
        OrbitCamera {
            target: 0.5 * l,
            yaw: 0.6,
            pitch: 0.45,
            // The box's bounding sphere is a loose fit: 95% of it still shows every corner from here.
            distance: 0.5 * l.length() / (0.5 * fov_y).sin() * 0.95,
            orthographic: false,
            fov_y,
        }
    }

    pub fn eye(&self) -> Vec3 {
        let dir = Vec3::new(
            self.pitch.cos() * self.yaw.sin(),
            self.pitch.sin(),
            self.pitch.cos() * self.yaw.cos(),
        );
        self.target + self.distance * dir
    }

    pub fn view(&self) -> Mat4 {
        Mat4::look_at_rh(self.eye(), self.target, Vec3::Y)
    }

    /// Half extents of the view at the target's depth (orthographic uses them as its window).
    fn half_extent(&self, aspect: f32) -> Vec2 {
        let h = self.distance * (0.5 * self.fov_y).tan();
        // A tall, narrow view keeps the field of view horizontally so `fit` still fits.
        let h = if aspect < 1.0 {
            h / aspect.max(1e-3)
        } else {
            h
        };
        Vec2::new(h * aspect, h)
    }

    /// Vertical field of view for `aspect` (see `half_extent`).
    fn fov_for(&self, aspect: f32) -> f32 {
        let e = self.half_extent(aspect);
        2.0 * (e.y / self.distance).atan()
    }

    pub fn proj(&self, aspect: f32) -> Mat4 {
        let near = (self.distance * 0.01).max(1e-3);
        let far = self.distance * 10.0 + 10.0;
        if self.orthographic {
            let e = self.half_extent(aspect);
            Mat4::orthographic_rh(-e.x, e.x, -e.y, e.y, near, far)
        } else {
            Mat4::perspective_rh(self.fov_for(aspect), aspect, near, far)
        }
    }

    pub fn orbit(&mut self, delta: egui::Vec2) {
        self.yaw -= delta.x * 0.008;
        self.pitch = (self.pitch + delta.y * 0.008).clamp(-1.55, 1.55);
    }

    /// Moves the target in the view plane by a drag of `delta` points in a view `height` tall.
    pub fn pan(&mut self, delta: egui::Vec2, height: f32) {
        let inv = self.view().inverse();
        let right = inv.transform_vector3(Vec3::X);
        let up = inv.transform_vector3(Vec3::Y);
        let scale = 2.0 * self.half_extent(1.0).y / height.max(1.0);
        self.target += (-delta.x * right + delta.y * up) * scale;
    }

    pub fn zoom(&mut self, scroll: f32) {
        self.distance = (self.distance * (-scroll * 0.002).exp()).clamp(0.1, 1e6);
    }

    /// World-space ray (origin, unit direction) through `ndc` (−1..1, y up).
    pub fn ray(&self, ndc: Vec2, aspect: f32) -> (Vec3, Vec3) {
        let inv = self.view().inverse();
        let e = self.half_extent(aspect);
        if self.orthographic {
            let o = Vec3::new(ndc.x * e.x, ndc.y * e.y, 0.0);
            (
                inv.transform_point3(o),
                inv.transform_vector3(-Vec3::Z).normalize(),
            )
        } else {
            let d = Vec3::new(ndc.x * e.x, ndc.y * e.y, -self.distance);
            (
                inv.transform_point3(Vec3::ZERO),
                inv.transform_vector3(d).normalize(),
            )
        }
    }

    /// Unit vector from the eye toward the target.
    pub fn forward(&self) -> Vec3 {
        (self.target - self.eye()).normalize()
    }
}

/// The atom nearest the eye whose sphere (radius `radius[type]`) the ray hits.
pub fn pick(
    origin: Vec3,
    dir: Vec3,
    positions: &[[f32; 4]],
    radius: &dyn Fn(u32) -> f32,
) -> Option<(u32, Vec3)> {
    let mut best: Option<(f32, u32, Vec3)> = None;
    for (i, p) in positions.iter().enumerate() {
        let c = Vec3::new(p[0], p[1], p[2]);
        let t = (c - origin).dot(dir);
        if t <= 0.0 {
            continue;
        }
        let r = radius(p[3].to_bits());
        if (origin + t * dir - c).length_squared() <= r * r && best.is_none_or(|b| t < b.0) {
            best = Some((t, i as u32, c));
        }
    }
    best.map(|(_, i, c)| (i, c))
}
