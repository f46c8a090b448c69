//! Shared helpers for the integration tests: a GPU context (lavapipe in CI) and random,
//! overlap-free configurations.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use rand::{Rng, SeedableRng};
use wgmd::engine::SimSpec;
use wgmd::forces::lj::LjSpec;
use wgmd::gpu::{GpuContext, GpuOptions};
use wgmd::integrate::{Integrator, Method};
use wgmd::system::System;
use wgmd::units::Units;

/// A device with exactly WebGPU's default limits and no optional features (what a browser may
/// give: 8 storage buffers per stage, 128 MiB per storage binding, 256 invocations per
/// workgroup, no shader-f16), on this machine's adapter.
pub fn webgpu_default_ctx() -> Arc<GpuContext> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let adapter = wgmd::gpu::pick_adapter(&adapters, None, &|_| true).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("webgpu defaults"),
        required_features: wgpu::Features::empty(),
        required_limits: wgpu::Limits::default(),
        ..Default::default()
    }))
    .unwrap();
    GpuContext::from_device(adapter, device, queue)
}

/// One device for the whole test binary. No adapter is a test failure, not a skip.
pub fn ctx() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let c = GpuContext::new(&GpuOptions::default())
            .expect("a GPU adapter (CI: mesa-vulkan-drivers)");
        eprintln!(
            "test adapter: {} ({:?}), f16: {}",
            c.info.name,
            c.info.backend,
            c.has_f16()
        );
        c
    })
    .clone()
}

/// A fresh seed per run (printed so a failure can be replayed with WGMD_TEST_SEED).
pub fn fresh_seed(tag: &str) -> u64 {
    // WGMD_TEST_SEED_<TAG> (tag upper-cased, other characters as '_') replays one seed of a
    // test that draws several; WGMD_TEST_SEED sets them all.
    let own: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let seed = std::env::var(format!("WGMD_TEST_SEED_{own}"))
        .or_else(|_| std::env::var("WGMD_TEST_SEED"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("{tag}: seed {seed}");
    seed
}

/// `n` atoms of `n_types` types placed uniformly in `box_lengths`, no pair closer than
/// `min_dist` (minimum image), random velocities of scale `vscale`.
pub fn random_system(
    n: usize,
    box_lengths: [f64; 3],
    n_types: usize,
    min_dist: f64,
    vscale: f64,
    seed: u64,
) -> System {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut s = System::default();
    for t in 0..n_types {
        s.type_index(&format!("T{t}"), 1.0 + 0.5 * t as f64);
    }
    let md2 = min_dist * min_dist;
    let mut tries = 0;
    while s.positions.len() < n {
        tries += 1;
        assert!(
            tries < 1000 * n,
            "could not place {n} atoms without overlap"
        );
        let p = [0, 1, 2].map(|d| rng.random::<f64>() * box_lengths[d]);
        let ok = s.positions.iter().all(|q| {
            let mut r2 = 0.0;
            for d in 0..3 {
                let x = p[d] - q[d];
                let x = x - box_lengths[d] * (x / box_lengths[d]).round();
                r2 += x * x;
            }
            r2 >= md2
        });
        if ok {
            s.positions.push(p);
            s.velocities
                .push([0, 1, 2].map(|_| vscale * (rng.random::<f64>() - 0.5)));
            s.types.push(rng.random_range(0..n_types as u32));
            s.charges.push(0.0);
        }
    }
    s.box_lengths = box_lengths;
    s
}

/// LJ parameters for up to 3 types with distinct σ/ε and one explicit override. Values are
/// dyadic so that σ², 4ε and the mixed values are exact in f32: GPU-vs-reference tests then
/// measure kernel arithmetic, not parameter rounding (which r⁻¹² amplifies sixfold).
pub fn lj_spec(n_types: usize, cutoff: f64, shift: bool) -> LjSpec {
    assert!(n_types <= 3);
    let sigma = [1.0, 1.125, 0.875][..n_types].to_vec();
    let epsilon = [1.0, 0.5625, 0.25][..n_types].to_vec();
    let pairs = if n_types > 1 {
        vec![(0, n_types as u32 - 1, 0.9375, 1.25)]
    } else {
        vec![]
    };
    LjSpec {
        cutoff,
        shift,
        tail: false,
        sigma,
        epsilon,
        pairs,
    }
}

pub fn spec(system: System, lj: LjSpec, skin: f64, dt: f64, method: Method) -> SimSpec {
    SimSpec {
        system,
        units: Units::Lj,
        lj,
        ani: None,
        coulomb: None,
        skin,
        neighbor_mode: Default::default(),
        integrator: Integrator { dt, method },
    }
}

/// True when no pair distance r (minimum image) has |r² − rc²| < `margin`·rc² for any rc.
pub fn clear_of_cutoffs(sys: &System, cuts: &[f64], margin: f64) -> bool {
    let l = sys.box_lengths;
    (0..sys.len()).all(|i| {
        (0..i).all(|j| {
            let r2: f64 = (0..3)
                .map(|k| {
                    let x = sys.positions[i][k] - sys.positions[j][k];
                    let x = x - l[k] * (x / l[k]).round();
                    x * x
                })
                .sum();
            cuts.iter()
                .all(|rc| (r2 - rc * rc).abs() >= margin * rc * rc)
        })
    })
}

/// Rounds positions and box lengths to f32 like the GPU stores them, so references test the
/// arithmetic and not the input rounding.
pub fn as_f32(mut s: System) -> System {
    s.box_lengths = s.box_lengths.map(|l| l as f32 as f64);
    s.wrap();
    for p in &mut s.positions {
        for x in p.iter_mut() {
            *x = *x as f32 as f64;
        }
    }
    s
}
