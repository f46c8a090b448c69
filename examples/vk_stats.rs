//! What the Vulkan driver makes of each wgmd kernel: the statistics it reports through
//! VK_KHR_pipeline_executable_properties (on NVIDIA: registers per thread, shared memory;
//! registers decide how many warps an SM keeps resident, which wgpu cannot tell). The lent
//! GPU has no profiler; this is the next best thing.
//!
//! ```text
//! WGMD_SPIRV_DUMP=/tmp/spv wgmd bench coulomb --atoms 2097152 --steps 1 --warmup 0
//! cargo run --release --example vk_stats -- /tmp/spv [adapter-name-part]
//! ```
//! The SPIR-V is naga's for the kernel as the engine specialized it (`gpu::dump_spirv`);
//! wgpu's own translation differs only in details (its writer flags), not in the code.
//! `VK_STATS_IR=part[,part...]` also asks for the driver's internal representations of the
//! kernels whose file name contains a part (Mesa's drivers give their shader IR; NVIDIA's
//! 580 driver on the H200 gives none).
use anyhow::{anyhow, bail, Context, Result};
use ash::vk;

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow!("usage: vk_stats DIR [adapter-name-part]"))?;
    let want = std::env::args().nth(2);
    // SAFETY: plain Vulkan calls in order on objects created here; every create info points to
    // locals that outlive the call.
    unsafe { run(&dir, want.as_deref()) }
}

unsafe fn run(dir: &str, want: Option<&str>) -> Result<()> {
    let entry = ash::Entry::load().context("no Vulkan loader")?;
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
    let instance = entry.create_instance(
        &vk::InstanceCreateInfo::default().application_info(&app),
        None,
    )?;
    let mut chosen = None;
    for pd in instance.enumerate_physical_devices()? {
        let props = instance.get_physical_device_properties(pd);
        let name = props.device_name_as_c_str()?.to_string_lossy().into_owned();
        let ok = match want {
            Some(w) => name.to_lowercase().contains(&w.to_lowercase()),
            None => props.device_type == vk::PhysicalDeviceType::DISCRETE_GPU || chosen.is_none(),
        };
        if ok {
            chosen = Some((pd, name));
        }
    }
    let (pd, name) = chosen.ok_or_else(|| anyhow!("no matching Vulkan device"))?;
    let exts = instance.enumerate_device_extension_properties(pd)?;
    let has = |e: &std::ffi::CStr| {
        exts.iter()
            .any(|p| p.extension_name_as_c_str().is_ok_and(|n| n == e))
    };
    if !has(ash::khr::pipeline_executable_properties::NAME) {
        bail!("{name}: no VK_KHR_pipeline_executable_properties");
    }
    let mut enable = vec![ash::khr::pipeline_executable_properties::NAME.as_ptr()];
    let atomic_float = has(ash::ext::shader_atomic_float::NAME);
    if atomic_float {
        enable.push(ash::ext::shader_atomic_float::NAME.as_ptr());
    }
    // Every feature the device has, so that any kernel's capabilities are enabled.
    let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
    let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
    let mut fa = vk::PhysicalDeviceShaderAtomicFloatFeaturesEXT::default();
    let mut fe = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default();
    let mut f2 = vk::PhysicalDeviceFeatures2::default()
        .push_next(&mut f11)
        .push_next(&mut f12)
        .push_next(&mut f13)
        .push_next(&mut fe);
    if atomic_float {
        f2 = f2.push_next(&mut fa);
    }
    instance.get_physical_device_features2(pd, &mut f2);
    let family = instance
        .get_physical_device_queue_family_properties(pd)
        .iter()
        .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
        .ok_or_else(|| anyhow!("{name}: no compute queue"))? as u32;
    let prio = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(family)
        .queue_priorities(&prio)];
    let info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queues)
        .enabled_extension_names(&enable)
        .push_next(&mut f2);
    let device = instance.create_device(pd, &info, None)?;
    let exec = ash::khr::pipeline_executable_properties::Device::new(&instance, &device);
    println!("# {name}: statistics per kernel (VK_KHR_pipeline_executable_properties)");

    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spv"))
        .collect();
    files.sort();
    for path in files {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let parts: Vec<&str> = stem.split('.').collect();
        let [module, entry_point, _hash] = parts[..] else {
            println!("{stem}: name not module.entry.hash, skipped");
            continue;
        };
        let bytes = std::fs::read(&path)?;
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let overrides =
            std::fs::read_to_string(path.with_extension("overrides")).unwrap_or_default();
        let mut bindings = Vec::new();
        for line in std::fs::read_to_string(path.with_extension("bindings"))?.lines() {
            let mut it = line.split_whitespace();
            let b: u32 = it.next().unwrap_or("").parse()?;
            let ty = match it.next() {
                Some("uniform") => vk::DescriptorType::UNIFORM_BUFFER,
                _ => vk::DescriptorType::STORAGE_BUFFER,
            };
            bindings.push(
                vk::DescriptorSetLayoutBinding::default()
                    .binding(b)
                    .descriptor_type(ty)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE),
            );
        }
        let dsl = device.create_descriptor_set_layout(
            &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
            None,
        )?;
        let dsls = [dsl];
        let layout = device.create_pipeline_layout(
            &vk::PipelineLayoutCreateInfo::default().set_layouts(&dsls),
            None,
        )?;
        let sm = device
            .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)?;
        let cname = std::ffi::CString::new(entry_point)?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(sm)
            .name(&cname);
        // VK_STATS_IR=part[,part...]: also the driver's internal representations (where it
        // gives any) of the kernels whose file name contains a part, written beside the SPIR-V.
        let want_ir = std::env::var("VK_STATS_IR")
            .is_ok_and(|p| p.split(',').any(|part| stem.contains(part)));
        let mut flags = vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR;
        if want_ir {
            flags |= vk::PipelineCreateFlags::CAPTURE_INTERNAL_REPRESENTATIONS_KHR;
        }
        let create = [vk::ComputePipelineCreateInfo::default()
            .flags(flags)
            .stage(stage)
            .layout(layout)];
        let line = match device.create_compute_pipelines(vk::PipelineCache::null(), &create, None) {
            Err((_, e)) => format!("pipeline failed: {e}"),
            Ok(p) => {
                let pipeline = p[0];
                let mut out = String::new();
                let pinfo = vk::PipelineInfoKHR::default().pipeline(pipeline);
                for (k, _) in exec
                    .get_pipeline_executable_properties(&pinfo)?
                    .iter()
                    .enumerate()
                {
                    let einfo = vk::PipelineExecutableInfoKHR::default()
                        .pipeline(pipeline)
                        .executable_index(k as u32);
                    for s in exec.get_pipeline_executable_statistics(&einfo)? {
                        let n = s.name_as_c_str()?.to_string_lossy().into_owned();
                        let v = match s.format {
                            vk::PipelineExecutableStatisticFormatKHR::BOOL32 => {
                                format!("{}", s.value.b32 != 0)
                            }
                            vk::PipelineExecutableStatisticFormatKHR::INT64 => {
                                format!("{}", s.value.i64)
                            }
                            vk::PipelineExecutableStatisticFormatKHR::UINT64 => {
                                format!("{}", s.value.u64)
                            }
                            _ => format!("{:.3}", s.value.f64),
                        };
                        out.push_str(&format!("{n}={v}; "));
                    }
                    if want_ir {
                        write_ir(&exec, &einfo, &path, k, &mut out)?;
                    }
                }
                device.destroy_pipeline(pipeline, None);
                out
            }
        };
        println!("{module} {entry_point} {}  | {line}", overrides.trim());
        device.destroy_shader_module(sm, None);
        device.destroy_pipeline_layout(layout, None);
        device.destroy_descriptor_set_layout(dsl, None);
    }
    device.destroy_device(None);
    instance.destroy_instance(None);
    Ok(())
}

/// Writes each internal representation the driver gives for one executable to
/// `<spv path>.<executable>.<i>.txt` (the two-call idiom: sizes first, then the data).
unsafe fn write_ir(
    exec: &ash::khr::pipeline_executable_properties::Device,
    einfo: &vk::PipelineExecutableInfoKHR<'_>,
    path: &std::path::Path,
    k: usize,
    out: &mut String,
) -> Result<()> {
    // Sizes first (ash's helper), then the data into buffers of those sizes.
    let mut reps = exec.get_pipeline_executable_internal_representations(einfo)?;
    let mut count = reps.len() as u32;
    let mut bufs: Vec<Vec<u8>> = reps.iter().map(|r| vec![0u8; r.data_size]).collect();
    for (r, b) in reps.iter_mut().zip(bufs.iter_mut()) {
        r.p_data = b.as_mut_ptr().cast();
    }
    (exec
        .fp()
        .get_pipeline_executable_internal_representations_khr)(
        exec.device(),
        einfo,
        &mut count,
        reps.as_mut_ptr(),
    )
    .result()?;
    for (i, (r, b)) in reps.iter().zip(&bufs).enumerate() {
        let name = r.name_as_c_str()?.to_string_lossy().into_owned();
        let file = path.with_extension(format!("{k}.{i}.txt"));
        let text = if r.is_text != 0 {
            String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(&[])).into_owned()
        } else {
            format!("({} bytes of binary data)\n", b.len())
        };
        std::fs::write(&file, text)?;
        out.push_str(&format!("IR '{name}' -> {}; ", file.display()));
    }
    Ok(())
}
