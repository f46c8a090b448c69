//! GPU context: adapter choice, device features/limits, shader composition and reflection.
//!
//! Every kernel is a WGSL entry point. `Kernel` reflects which module-scope bindings the entry
//! point really uses (through naga's analysis) so drivers bind buffers *by name* and a binding
//! list is never written twice (the vello pattern).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use wgpu::util::DeviceExt;

pub mod params;
pub mod shaders;

/// Threads per workgroup for per-atom kernels (WebGPU's default limit is 256).
pub const WG: u32 = 64;
/// Largest workgroup count in one dimension; larger grids fold into y.
pub const MAX_GROUPS_X: u32 = 65_535;

#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter name (also `WGMD_ADAPTER`).
    pub adapter: Option<String>,
}

/// Adapter, device and queue shared by every kernel of a simulation (and the viewer).
pub struct GpuContext {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    /// Compiled modules and pipelines by name: simulations built on one context (tests, the
    /// viewer's reset, `eval` of many structures) compile each kernel once.
    pub cache: KernelCache,
}

#[derive(Default)]
pub struct KernelCache {
    modules: std::sync::Mutex<HashMap<String, Arc<ShaderModule>>>,
    kernels: std::sync::Mutex<HashMap<String, Kernel>>,
}

const NO_ADAPTER: &str = "no GPU adapter found: install your GPU's Vulkan/Metal/DX12 driver, or on a \
machine without a GPU install the software rasterizer (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`)";

fn adapter_rank(info: &wgpu::AdapterInfo) -> u32 {
    use wgpu::DeviceType::*;
    let kind = match info.device_type {
        DiscreteGpu => 40,
        IntegratedGpu => 30,
        VirtualGpu => 20,
        Other => 10,
        Cpu => 5,
    };
    // Prefer the native compute APIs over GL, which has no compute-friendly limits.
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::BrowserWebGpu => 2,
        _ => 0,
    };
    kind + backend
}

/// What wgmd asks for wherever the adapter has it (asking for more panics): f16 for the ANI
/// layers, timestamps for profiles, f32 atomics for PME charge spreading (`forces::pme`).
pub const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::SHADER_FLOAT32_ATOMIC);

impl GpuContext {
    /// Picks the best adapter (or the one named by `opts.adapter` / `WGMD_ADAPTER`), asks for
    /// the [`OPTIONAL_FEATURES`] present and raises the limits to the adapter's.
    pub fn new(opts: &GpuOptions) -> Result<Arc<GpuContext>> {
        pollster::block_on(Self::new_async(opts))
    }

    pub async fn new_async(opts: &GpuOptions) -> Result<Arc<GpuContext>> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if std::env::var_os("WGPU_BACKEND").is_none() {
            desc.backends = wgpu::Backends::PRIMARY;
        }
        // Our indirect arguments come from host-computed templates (or zero), always within
        // limits, so wgpu's hidden validation dispatch before each indirect dispatch is pure
        // cost. DX12 needs it for @builtin(num_workgroups), so it stays on for Windows.
        if !cfg!(windows) && std::env::var_os("WGPU_VALIDATION_INDIRECT_CALL").is_none() {
            desc.flags
                .remove(wgpu::InstanceFlags::VALIDATION_INDIRECT_CALL);
        }
        let instance = wgpu::Instance::new(desc);
        let wanted = opts
            .adapter
            .clone()
            .or_else(|| std::env::var("WGMD_ADAPTER").ok())
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .map(|s| s.to_lowercase());
        let adapters = instance.enumerate_adapters(desc_backends()).await;
        let adapter = match &wanted {
            Some(w) => {
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(w.as_str()))
                    .ok_or_else(|| {
                        anyhow!(
                            "no GPU adapter's name contains '{w}' (adapters found: {})",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        )
                    })?
            }
            None => adapters
                .into_iter()
                .max_by_key(|a| adapter_rank(&a.get_info()))
                .ok_or_else(|| anyhow!(NO_ADAPTER))?,
        };
        let info = adapter.get_info();
        let available = adapter.features();
        let mut features = available & OPTIONAL_FEATURES;
        // Tensor cores for the ANI networks (forces::ani). Experimental in wgpu 30, and on
        // Vulkan it turns on the Vulkan memory model for every shader, so WGMD_COOP=0 leaves
        // it off (the device is then exactly the one without it, for A/B timing).
        let coop = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        if available.contains(coop) && std::env::var("WGMD_COOP").map_or(true, |v| v != "0") {
            features |= coop;
        }
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgmd"),
                required_features: features,
                required_limits: limits.clone(),
                // SAFETY (wgpu's contract for experimental features): only the cooperative
                // matrix feature is experimental here, used by one kernel family that is
                // checked against the float64 reference (tests/ani_coop.rs).
                experimental_features: if features.contains(coop) {
                    unsafe { wgpu::ExperimentalFeatures::enabled() }
                } else {
                    wgpu::ExperimentalFeatures::disabled()
                },
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .with_context(|| format!("could not open a device on adapter '{}'", info.name))?;
        log::info!(
            "adapter: {} ({:?}, {})",
            info.name,
            info.backend,
            info.driver
        );
        Ok(Arc::new(GpuContext {
            adapter,
            device,
            queue,
            info,
            features,
            limits,
            cache: KernelCache::default(),
        }))
    }

    /// Wraps a device someone else opened (the viewer takes eframe's, opened with
    /// [`device_descriptor`] on an adapter from [`pick_adapter`], so the simulation's buffers
    /// and the renderer share one device).
    pub fn from_device(
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Arc<GpuContext> {
        let info = adapter.get_info();
        let features = device.features();
        let limits = device.limits();
        Arc::new(GpuContext {
            adapter,
            device,
            queue,
            info,
            features,
            limits,
            cache: KernelCache::default(),
        })
    }

    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    pub fn has_f32_atomics(&self) -> bool {
        self.features
            .contains(wgpu::Features::SHADER_FLOAT32_ATOMIC)
    }

    /// Human-readable summary for `wgmd info`.
    pub fn describe(&self) -> String {
        let l = &self.limits;
        format!(
            "adapter: {}\nbackend: {:?}\ndevice type: {:?}\ndriver: {} {}\nfeatures: {:?}\n\
             limits: max_buffer_size={} max_storage_buffer_binding_size={} \
             max_storage_buffers_per_shader_stage={} max_compute_workgroup_storage_size={} \
             max_compute_invocations_per_workgroup={} max_compute_workgroups_per_dimension={}\n\
             subgroup sizes: {}..{}",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info,
            self.features,
            l.max_buffer_size,
            l.max_storage_buffer_binding_size,
            l.max_storage_buffers_per_shader_stage,
            l.max_compute_workgroup_storage_size,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension,
            self.info.subgroup_min_size,
            self.info.subgroup_max_size,
        )
    }

    /// A storage buffer of `bytes` bytes (at least 16), usable as copy source/destination.
    pub fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_size(label, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    pub fn storage_init<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes = bytemuck::cast_slice(data);
        self.check_size(label, bytes.len() as u64)?;
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().max(16).next_multiple_of(4), 0);
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &padded,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            }))
    }

    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    fn check_size(&self, label: &str, bytes: u64) -> Result<()> {
        let max = self.limits.max_storage_buffer_binding_size as u64;
        if bytes > max.min(self.limits.max_buffer_size) {
            bail!(
                "buffer '{label}' needs {} MiB but adapter '{}' allows at most {} MiB per storage buffer; use fewer atoms",
                bytes >> 20,
                self.info.name,
                max.min(self.limits.max_buffer_size) >> 20
            );
        }
        Ok(())
    }

    /// Synchronously reads a whole buffer (tests, setup and end-of-run only; never in the step loop).
    pub fn read_buffer<T: bytemuck::Pod>(&self, src: &wgpu::Buffer) -> Result<Vec<T>> {
        let size = src.size();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        map_blocking(&self.device, &staging)?;
        let out = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| anyhow!("GPU readback failed: {e}"))?;
            bytemuck::cast_slice::<u8, T>(
                &view[..(size as usize / std::mem::size_of::<T>()) * std::mem::size_of::<T>()],
            )
            .to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}

/// The device wgmd asks for on `adapter`: the optional features it uses where present, and
/// the adapter's own limits (for [`GpuContext::from_device`] users).
pub fn device_descriptor(adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'static> {
    wgpu::DeviceDescriptor {
        label: Some("wgmd"),
        required_features: adapter.features() & OPTIONAL_FEATURES,
        required_limits: adapter.limits(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }
}

/// Chooses among `adapters` like [`GpuContext::new`]: the one whose name contains `wanted`
/// (case-insensitive; else `WGMD_ADAPTER` / `WGPU_ADAPTER_NAME`), otherwise the best ranked.
/// `usable` filters out adapters that cannot serve (e.g. cannot present to a window).
pub fn pick_adapter(
    adapters: &[wgpu::Adapter],
    wanted: Option<&str>,
    usable: &dyn Fn(&wgpu::Adapter) -> bool,
) -> Result<wgpu::Adapter> {
    let wanted = wanted
        .map(str::to_string)
        .or_else(|| std::env::var("WGMD_ADAPTER").ok())
        .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
        .map(|s| s.to_lowercase());
    let candidates: Vec<&wgpu::Adapter> = adapters.iter().filter(|a| usable(a)).collect();
    match &wanted {
        Some(w) => candidates
            .iter()
            .find(|a| a.get_info().name.to_lowercase().contains(w.as_str()))
            .map(|a| (*a).clone())
            .ok_or_else(|| {
                let names: Vec<String> = candidates.iter().map(|a| a.get_info().name).collect();
                anyhow!(
                    "no GPU adapter's name contains '{w}' (adapters found: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            }),
        None => candidates
            .iter()
            .max_by_key(|a| adapter_rank(&a.get_info()))
            .map(|a| (*a).clone())
            .ok_or_else(|| anyhow!(NO_ADAPTER)),
    }
}

fn desc_backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

/// Maps a MAP_READ buffer and waits; turns device loss or a failed map into an error.
pub fn map_blocking(device: &wgpu::Device, buf: &wgpu::Buffer) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    buf.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: None,
        })
        .map_err(|e| anyhow!("GPU device error while waiting for results: {e}"))?;
    rx.recv()
        .map_err(|_| anyhow!("GPU readback was cancelled"))?
        .map_err(|e| anyhow!("GPU readback failed: {e}"))
}

/// Workgroup grid for `groups` workgroups: x ≤ 65,535, the rest folded into y.
pub fn grid(groups: u32) -> [u32; 3] {
    if groups <= MAX_GROUPS_X {
        [groups.max(1), 1, 1]
    } else {
        [MAX_GROUPS_X, groups.div_ceil(MAX_GROUPS_X), 1]
    }
}

/// Threads sharing one atom in the per-atom loops of the neighbor build and the LJ kernel:
/// enough threads in flight to fill a large GPU (~2^18; an H100/H200 holds ~270k resident
/// threads), at most 8 so each thread keeps work to overlap. Small systems otherwise leave
/// the GPU idle, latency-bound on each thread's chain of dependent loads.
pub fn threads_per_atom_for(n_atoms: u32) -> u32 {
    let want = (1u32 << 18) / n_atoms.max(1);
    if want >= 8 {
        8
    } else if want >= 2 {
        // Largest power of two not above `want`.
        1 << (31 - want.leading_zeros())
    } else {
        1
    }
}

pub fn groups_for(items: u32, wg: u32) -> u32 {
    items.div_ceil(wg).max(1)
}

/// One compute entry point with the names of the bindings it really uses.
#[derive(Clone)]
pub struct Kernel {
    pub name: String,
    pub pipeline: wgpu::ComputePipeline,
    /// (binding, variable name) of each group-0 resource the entry point uses.
    pub bindings: Vec<(u32, String)>,
}

impl Kernel {
    /// Builds `entry` from a composed shader module, with `overrides` for WGSL `override` constants.
    pub fn new(
        ctx: &GpuContext,
        module: &ShaderModule,
        entry: &str,
        overrides: &[(&str, f64)],
    ) -> Result<Kernel> {
        let key = format!("{}|{entry}|{overrides:?}", module.name);
        if let Some(k) = ctx.cache.kernels.lock().unwrap().get(&key) {
            return Ok(k.clone());
        }
        let ep = module
            .naga
            .entry_points
            .iter()
            .position(|e| e.name == entry)
            .ok_or_else(|| anyhow!("shader '{}' has no entry point '{entry}'", module.name))?;
        let fi = module.info.get_entry_point(ep);
        let mut bindings = Vec::new();
        for (h, var) in module.naga.global_variables.iter() {
            if fi[h].is_empty() {
                continue;
            }
            if let Some(rb) = &var.binding {
                if rb.group != 0 {
                    bail!(
                        "shader '{}': only @group(0) is used by wgmd kernels",
                        module.name
                    );
                }
                bindings.push((rb.binding, var.name.clone().unwrap_or_default()));
            }
        }
        check_kernel_limits(ctx, module, ep)?;
        #[cfg(not(target_arch = "wasm32"))]
        dump_spirv(module, entry, overrides)?;
        let pipeline = ctx
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module.module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: overrides,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        let k = Kernel {
            name: entry.to_string(),
            pipeline,
            bindings,
        };
        ctx.cache.kernels.lock().unwrap().insert(key, k.clone());
        Ok(k)
    }

    /// A bind group giving each used binding the buffer of the same name.
    pub fn bind(
        &self,
        ctx: &GpuContext,
        buffers: &[(&str, &wgpu::Buffer)],
    ) -> Result<wgpu::BindGroup> {
        let map: HashMap<&str, &wgpu::Buffer> = buffers.iter().copied().collect();
        let mut entries = Vec::new();
        for (b, name) in &self.bindings {
            let buf = map
                .get(name.as_str())
                .ok_or_else(|| anyhow!("internal: kernel '{}' needs buffer '{name}'", self.name))?;
            entries.push(wgpu::BindGroupEntry {
                binding: *b,
                resource: buf.as_entire_binding(),
            });
        }
        Ok(ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&self.name),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &entries,
        }))
    }
}

/// Refuses, with a message naming the kernel and the limit, an entry point that needs more
/// than the device allows (browsers give WebGPU's defaults: 8 storage buffers per stage, 256
/// invocations per workgroup), instead of a pipeline error at dispatch time.
fn check_kernel_limits(ctx: &GpuContext, module: &ShaderModule, ep: usize) -> Result<()> {
    let entry = &module.naga.entry_points[ep];
    let fi = module.info.get_entry_point(ep);
    let storage = module
        .naga
        .global_variables
        .iter()
        .filter(|(h, v)| {
            !fi[*h].is_empty() && matches!(v.space, naga::AddressSpace::Storage { .. })
        })
        .count() as u32;
    let l = &ctx.limits;
    let adapter = &ctx.info.name;
    if storage > l.max_storage_buffers_per_shader_stage {
        bail!(
            "kernel '{}' of shader '{}' needs {storage} storage buffers, but adapter '{adapter}' \
             allows {} per shader stage",
            entry.name,
            module.name,
            l.max_storage_buffers_per_shader_stage
        );
    }
    // wgpu 30 does not check workgroup memory against the limit; a pipeline over it reaches
    // the driver (a device call that hung ran a kernel needing 56 KiB against NVIDIA's usual
    // 48 KiB — the likely cause, not verified).
    let shared = workgroup_bytes(&module.naga, &module.info, ep);
    if shared > l.max_compute_workgroup_storage_size {
        bail!(
            "kernel '{}' of shader '{}' needs {shared} bytes of workgroup memory, but adapter \
             '{adapter}' allows {}",
            entry.name,
            module.name,
            l.max_compute_workgroup_storage_size
        );
    }
    let [x, y, z] = entry.workgroup_size;
    if x * y * z > l.max_compute_invocations_per_workgroup
        || x > l.max_compute_workgroup_size_x
        || y > l.max_compute_workgroup_size_y
        || z > l.max_compute_workgroup_size_z
    {
        bail!(
            "kernel '{}' of shader '{}' has workgroups of {x}x{y}x{z} invocations, more than \
             adapter '{adapter}' allows ({} in all)",
            entry.name,
            module.name,
            l.max_compute_invocations_per_workgroup
        );
    }
    Ok(())
}

/// Bytes of workgroup memory entry point `ep` of a validated module uses: the sizes of the
/// `var<workgroup>` arrays it touches (directly or through helpers), each 16-byte aligned.
pub fn workgroup_bytes(module: &naga::Module, info: &naga::valid::ModuleInfo, ep: usize) -> u32 {
    let fi = info.get_entry_point(ep);
    let mut layouter = naga::proc::Layouter::default();
    if layouter.update(module.to_ctx()).is_err() {
        return 0;
    }
    module
        .global_variables
        .iter()
        .filter(|(h, v)| !fi[*h].is_empty() && v.space == naga::AddressSpace::WorkGroup)
        .map(|(_, v)| layouter[v.ty].size.next_multiple_of(16))
        .sum()
}

/// With `WGMD_SPIRV_DUMP=DIR`: writes the SPIR-V of each kernel as the engine specializes it
/// (overrides applied, naga's runtime checks off as in [`compile_wgsl`]) to
/// `DIR/<module>.<entry>.<hash>.spv`, with its group-0 bindings (`binding kind` per line) in
/// a `.bindings` file and its override values in an `.overrides` file beside it, for `examples/vk_stats.rs`: what the Vulkan driver makes of
/// each kernel (registers per thread, hence how many warps an SM keeps resident), where wgpu
/// offers no such query.
#[cfg(not(target_arch = "wasm32"))]
fn dump_spirv(module: &ShaderModule, entry: &str, overrides: &[(&str, f64)]) -> Result<()> {
    use naga::back::spv;
    use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
    use std::hash::{Hash, Hasher};
    let Ok(dir) = std::env::var("WGMD_SPIRV_DUMP") else {
        return Ok(());
    };
    let mut constants = naga::back::PipelineConstants::default();
    for (k, v) in overrides {
        constants.insert(k.to_string(), *v);
    }
    let (m, info) = naga::back::pipeline_constants::process_overrides(
        &module.naga,
        &module.info,
        Some((naga::ShaderStage::Compute, entry)),
        &constants,
    )
    .map_err(|e| anyhow!("{}.{entry}: overrides: {e}", module.name))?;
    let unchecked = BoundsCheckPolicy::Unchecked;
    let options = spv::Options {
        lang_version: (1, 3),
        flags: spv::WriterFlags::empty(),
        bounds_check_policies: BoundsCheckPolicies {
            index: unchecked,
            buffer: unchecked,
            image_load: unchecked,
            binding_array: unchecked,
        },
        zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::None,
        force_loop_bounding: false,
        ..Default::default()
    };
    let pipeline = spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: entry.to_string(),
    };
    let words = spv::write_vec(&m, &info, &options, Some(&pipeline))
        .map_err(|e| anyhow!("{}.{entry}: SPIR-V: {e}", module.name))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{overrides:?}").hash(&mut h);
    // module.entry.hash: the dots only as separators (vk_stats splits on them).
    let safe = |t: &str| -> String {
        t.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    let stem = format!(
        "{}.{}.{:08x}",
        safe(&module.name),
        safe(entry),
        h.finish() as u32
    );
    let mut bindings = String::new();
    for (_, var) in module.naga.global_variables.iter() {
        if let Some(rb) = &var.binding {
            let kind = match var.space {
                naga::AddressSpace::Uniform => "uniform",
                naga::AddressSpace::Storage { .. } => "storage",
                _ => continue,
            };
            bindings.push_str(&format!("{} {kind}\n", rb.binding));
        }
    }
    let path = |ext: &str| std::path::Path::new(&dir).join(format!("{stem}.{ext}"));
    std::fs::write(path("spv"), bytemuck::cast_slice::<u32, u8>(&words))?;
    std::fs::write(path("bindings"), bindings)?;
    std::fs::write(path("overrides"), format!("{overrides:?}\n"))?;
    Ok(())
}

/// A composed, naga-validated WGSL module.
pub struct ShaderModule {
    pub name: String,
    pub module: wgpu::ShaderModule,
    pub naga: naga::Module,
    pub info: naga::valid::ModuleInfo,
}

/// Whether naga's runtime checks stay in the generated code: `WGMD_SHADER_CHECKS=1` keeps
/// them (index clamping of every dynamically indexed array, and a 64-bit iteration counter on
/// every loop — gfx-rs/wgpu#7698 measured 100× slowdowns from the latter).
pub fn shader_checks() -> bool {
    std::env::var("WGMD_SHADER_CHECKS").is_ok_and(|v| v != "0")
}

/// Compiles validated WGSL. By default without naga's injected runtime checks: every kernel's
/// indices are bounded by construction (counts clamped to capacities on the GPU, tested with
/// poisoned buffers and sizes off the workgroup multiple) and every loop ends (bounds from
/// uniforms or clamped counts). Storage-buffer accesses stay bounds-checked where the platform
/// does it itself (Vulkan robust buffer access, WebGPU in browsers), which wgpu still enables.
pub fn compile_wgsl(ctx: &GpuContext, name: &str, source: String) -> wgpu::ShaderModule {
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    if shader_checks() {
        ctx.device.create_shader_module(desc)
    } else {
        // SAFETY: the kernels' indices and loops are bounded as stated above; the checked
        // variant (WGMD_SHADER_CHECKS=1) is there to rule this out when chasing a bug.
        unsafe {
            ctx.device
                .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
        }
    }
}

impl ShaderModule {
    /// Composes, validates and compiles `name` once per context (later calls share it).
    pub fn new(ctx: &GpuContext, name: &str) -> Result<Arc<ShaderModule>> {
        Self::specialized(ctx, name, &[])
    }

    /// `name` with the values of some of its `const NAME: u32 = ...;` lines replaced: sizes of
    /// workgroup arrays, which WGSL's override constants cannot set portably, chosen from the
    /// device's limits (the spread's tile, `forces::spread_tile`).
    pub fn specialized(
        ctx: &GpuContext,
        name: &str,
        consts: &[(&str, u32)],
    ) -> Result<Arc<ShaderModule>> {
        let key = consts
            .iter()
            .fold(name.to_string(), |k, (c, v)| format!("{k}|{c}={v}"));
        if let Some(m) = ctx.cache.modules.lock().unwrap().get(&key) {
            return Ok(m.clone());
        }
        let mut source = shaders::compose(name)?;
        for (c, v) in consts {
            let head = format!("const {c}: u32 = ");
            let start = source
                .find(&head)
                .ok_or_else(|| anyhow!("internal: shader '{name}' has no line '{head}...'"))?;
            let end = start + source[start..].find(';').unwrap_or(0);
            source.replace_range(start..=end, &format!("{head}{v}u;"));
        }
        let name = key.as_str();
        let (naga, info) = shaders::validate(name, &source)?;
        let module = compile_wgsl(ctx, name, source);
        let m = Arc::new(ShaderModule {
            name: name.to_string(),
            module,
            naga,
            info,
        });
        ctx.cache
            .modules
            .lock()
            .unwrap()
            .insert(name.to_string(), m.clone());
        Ok(m)
    }
}

/// Seconds per repetition of `record` (one dispatch, or a few), run `reps` times in one
/// compute pass and timed by the wall clock up to the end of a wait: for per-dispatch
/// profiles in `wgmd bench`, launch overhead included (`reps` must be large enough to hide
/// the submit and the wait). Whatever the dispatches write is left meaningless.
pub fn time_alone(
    ctx: &GpuContext,
    reps: u32,
    mut record: impl FnMut(&mut wgpu::ComputePass<'_>),
) -> Result<f64> {
    let reps = reps.max(1);
    let t0 = web_time::Instant::now();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for _ in 0..reps {
            record(&mut pass);
        }
    }
    ctx.queue.submit([enc.finish()]);
    ctx.device
        .poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: None,
        })
        .map_err(|e| anyhow!("GPU device error while timing dispatches: {e}"))?;
    Ok(t0.elapsed().as_secs_f64() / reps as f64)
}

/// A compute dispatch recorded into a pass: kernel + bind group + grid.
pub fn dispatch(pass: &mut wgpu::ComputePass<'_>, k: &Kernel, bg: &wgpu::BindGroup, groups: u32) {
    pass.set_pipeline(&k.pipeline);
    pass.set_bind_group(0, bg, &[]);
    let [x, y, z] = grid(groups);
    pass.dispatch_workgroups(x, y, z);
}

pub fn dispatch_indirect(
    pass: &mut wgpu::ComputePass<'_>,
    k: &Kernel,
    bg: &wgpu::BindGroup,
    args: &wgpu::Buffer,
    offset: u64,
) {
    pass.set_pipeline(&k.pipeline);
    pass.set_bind_group(0, bg, &[]);
    pass.dispatch_workgroups_indirect(args, offset);
}
