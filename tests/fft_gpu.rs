//! The WGSL 3-D FFT against a float64 DFT on random data: sizes with every supported prime
//! factor, non-cubic grids, forward and inverse.
//!
//! Tolerance: ‖y_gpu − y_dft‖ / ‖y_dft‖ ≤ 1e-6. An f32 FFT's relative RMS error grows like
//! ε·√(number of stages) (ε = 6e-8; about a dozen stages over three axes here, twiddles
//! rounded to f32 included): ~3e-7 with a constant of order one; measured ≤ 1.5e-7.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use wgmd::forces::fft::{self, reference, Fft3d, FftPath, RegPlan};
use wgmd::gpu::GpuContext;

fn rel_err(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for (x, y) in a.iter().zip(b) {
        num += (x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2);
        den += y[0] * y[0] + y[1] * y[1];
    }
    (num / den.max(1e-300)).sqrt()
}

/// Separable float64 DFT of a 3-D grid (the oracle).
fn dft3(data: &[[f64; 2]], dims: [usize; 3], inverse: bool) -> Vec<[f64; 2]> {
    let mut out = data.to_vec();
    let strides = [dims[1] * dims[2], dims[2], 1];
    for a in 0..3 {
        let (n, s) = (dims[a], strides[a]);
        for start in 0..out.len() {
            if (start / s) % n != 0 {
                continue;
            }
            let line: Vec<[f64; 2]> = (0..n).map(|i| out[start + i * s]).collect();
            let y = reference::dft(&line, inverse);
            for i in 0..n {
                out[start + i * s] = y[i];
            }
        }
    }
    out
}

#[test]
fn stockham_twin_matches_dft() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(fresh_seed("stockham"));
    for n in [
        1usize, 2, 3, 4, 5, 7, 8, 12, 16, 27, 30, 45, 64, 81, 100, 125, 162, 196, 324,
    ] {
        let x: Vec<[f64; 2]> = (0..n)
            .map(|_| [rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5])
            .collect();
        for inverse in [false, true] {
            let e = rel_err(
                &reference::fft(&x, inverse).unwrap(),
                &reference::dft(&x, inverse),
            );
            assert!(e < 1e-13, "n={n} inverse={inverse}: {e}");
        }
    }
}

#[test]
fn gpu_fft_matches_float64_dft() {
    let ctx = ctx();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(fresh_seed("fft_gpu"));
    // Every size along every axis (small partner axes keep the O(n²) oracle cheap), plus
    // cubic and non-cubic grids.
    let mut cases: Vec<[u32; 3]> = vec![
        [1, 1, 1],
        [12, 12, 12],
        [27, 27, 27],
        [30, 30, 30],
        [12, 7, 30],
        [49, 36, 10],
        [81, 20, 9],
    ];
    for n in [1u32, 2, 7, 12, 27, 30, 45, 64, 81, 100, 125, 162, 324, 1024] {
        cases.extend([[n, 3, 5], [5, n, 3], [3, 5, n]]);
    }
    for &dims in &cases {
        let d = [dims[0] as usize, dims[1] as usize, dims[2] as usize];
        let n = d[0] * d[1] * d[2];
        let x: Vec<[f64; 2]> = (0..n)
            .map(|_| [rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5])
            .collect();
        let x32: Vec<[f32; 2]> = x.iter().map(|v| [v[0] as f32, v[1] as f32]).collect();
        // The oracle transforms the f32-rounded input so only the FFT's own error remains.
        let x_r: Vec<[f64; 2]> = x32.iter().map(|v| [v[0] as f64, v[1] as f64]).collect();
        for path in [FftPath::Auto, FftPath::Stockham] {
            check_fft(&ctx, dims, &x32, &x_r, path, "");
        }
    }
}

/// Runs the GPU transform of `x32` both ways on `ctx` and compares it with the float64 DFT of
/// `x` (the same values) to 1e-6 relative.
fn check_fft(
    ctx: &GpuContext,
    dims: [u32; 3],
    x32: &[[f32; 2]],
    x: &[[f64; 2]],
    path: FftPath,
    tag: &str,
) {
    let d = [dims[0] as usize, dims[1] as usize, dims[2] as usize];
    let n = d[0] * d[1] * d[2];
    let mut f = Fft3d::with_path(ctx, dims, path).unwrap();
    let buf = ctx.storage_init("grid", x32).unwrap();
    f.bind(ctx, &buf).unwrap();
    let tol = 1e-6;
    for inverse in [false, true] {
        ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(x32));
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            f.encode(&mut pass, inverse);
        }
        ctx.queue.submit([enc.finish()]);
        let out: Vec<[f32; 2]> = ctx.read_buffer(&buf).unwrap();
        let got: Vec<[f64; 2]> = out[..n]
            .iter()
            .map(|v| [v[0] as f64, v[1] as f64])
            .collect();
        let e = rel_err(&got, &dft3(x, d, inverse));
        eprintln!(
            "{tag}{dims:?} {path:?} inverse={inverse}: relative error {e:.2e} (tol {tol:.1e})"
        );
        assert!(
            e < tol,
            "{tag}{dims:?} {path:?} inverse={inverse}: {e} > {tol}"
        );
    }
}

/// The same on a device with WebGPU's default limits (what browsers get): 256 threads per
/// FFT workgroup instead of 512.
#[test]
fn gpu_fft_within_webgpu_default_limits() {
    let ctx = webgpu_default_ctx();
    assert_eq!(fft::workgroup_threads(&ctx.limits), 256);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(fresh_seed("fft_webgpu"));
    for dims in [[81u32, 3, 5], [5, 162, 3], [3, 5, 324], [30, 27, 12]] {
        let n = dims.iter().product::<u32>() as usize;
        let x32: Vec<[f32; 2]> = (0..n)
            .map(|_| [rng.random::<f32>() - 0.5, rng.random::<f32>() - 0.5])
            .collect();
        let x: Vec<[f64; 2]> = x32.iter().map(|v| [v[0] as f64, v[1] as f64]).collect();
        for path in [FftPath::Auto, FftPath::Stockham] {
            check_fft(&ctx, dims, &x32, &x, path, "WebGPU limits ");
        }
    }
}

/// Which axis lengths run the two-level register kernels (the GPU tests above cover both
/// kinds only if these hold), and their workgroups within the device limits.
#[test]
fn register_plans() {
    let native = wgpu::Limits {
        max_compute_workgroup_storage_size: 49152,
        max_compute_invocations_per_workgroup: 1024,
        ..wgpu::Limits::default()
    };
    let web = wgpu::Limits::default();
    for (n, split) in [
        (324u32, Some((18, 18))),
        (162, Some((18, 9))),
        (81, Some((9, 9))),
        (100, Some((10, 10))),
        (45, Some((9, 5))),
        (30, Some((6, 5))),
        (12, Some((4, 3))),
        (7, Some((7, 1))),
        (1, Some((1, 1))),
        (125, None),
        (1024, None),
    ] {
        let axis = fft::axis([n, 5, 3], 0).unwrap();
        for limits in [&native, &web] {
            let plan = RegPlan::for_limits(&axis, limits);
            assert_eq!(plan.map(|p| (p.n1, p.n2)), split, "n = {n}");
            if let Some(p) = plan {
                assert!(p.tile() * 8 <= limits.max_compute_workgroup_storage_size);
                assert!(p.threads <= limits.max_compute_invocations_per_workgroup);
                assert!(p.lines >= 1 && p.lines <= 16);
            }
        }
    }
    let axis = fft::axis([324, 324, 163], 1).unwrap();
    assert_eq!(RegPlan::for_limits(&axis, &native).unwrap().lines, 16);
    assert_eq!(RegPlan::for_limits(&axis, &web).unwrap().lines, 6);
}

#[test]
fn bad_sizes_are_clear_errors() {
    let ctx = ctx();
    let e = Fft3d::new(&ctx, [22, 8, 8]).err().unwrap().to_string();
    assert!(e.contains("prime factor 11"), "{e}");
    let e = Fft3d::new(&ctx, [2048, 2, 2]).err().unwrap().to_string();
    assert!(e.contains("at most 1024"), "{e}");
    let e = Fft3d::new(&ctx, [0, 2, 2]).err().unwrap().to_string();
    assert!(e.contains("0"), "{e}");
    // Larger than the storage-binding limit of a WebGPU-default device (128 MiB).
    let limits = wgpu::Limits::default();
    let e = fft::check_dims(&limits, [1024, 1024, 32], "grid")
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_storage_buffer_binding_size"), "{e}");
    assert!(fft::check_dims(&limits, [324, 324, 120], "grid").is_ok());
}

#[test]
fn shaders_validate() {
    for &name in fft::PROGRAMS {
        let src = fft::compose(name).unwrap();
        let (m, _) = wgmd::gpu::shaders::validate(name, &src).unwrap();
        assert!(!m.entry_points.is_empty());
    }
}

/// The generic workgroup-memory check (`gpu::workgroup_bytes`) still sizes the Stockham
/// kernels of a module that also holds the two-level kernels' override-sized tile.
#[test]
fn workgroup_memory_is_still_measured() {
    let src = fft::compose("fft").unwrap();
    let (m, info) = wgmd::gpu::shaders::validate("fft", &src).unwrap();
    let ep = m
        .entry_points
        .iter()
        .position(|e| e.name == "fft_forward")
        .unwrap();
    assert_eq!(
        wgmd::gpu::workgroup_bytes(&m, &info, ep),
        fft::WORKGROUP_BYTES
    );
}
