//! GPU observables and steering kernels against their float64 CPU twins: the RDF and speed
//! histograms (`shaders/histogram.wgsl`) and the viewer's drag spring (`shaders/drag.wgsl`).
//! Fresh seeds (printed; replay with WGMD_TEST_SEED), poisoned outputs, atom counts that are
//! not multiples of the workgroup size.

mod common;

use rand::{Rng, SeedableRng};
use wgmd::engine::Simulation;
use wgmd::forces::drag::{self, Drag};
use wgmd::integrate::Method;
use wgmd::observe::histogram::{self, HistSpec, Histograms, MAX_BINS};

/// The standalone shaders validate, and their uniforms have the Rust mirrors' sizes.
#[test]
fn standalone_shaders_validate_and_layouts_match() {
    use wgmd::gpu::shaders;
    assert!(!shaders::STANDALONE_FILES.is_empty());
    let size_of = |file: &str, ty: &str| -> usize {
        let src = shaders::compose(file).unwrap();
        let (module, _) = shaders::validate(file, &src).unwrap();
        assert!(
            !module.entry_points.is_empty(),
            "{file} has no entry points"
        );
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (h, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(ty))
            .unwrap_or_else(|| panic!("{file} has no struct {ty}"));
        layouter[h].size as usize
    };
    for file in shaders::STANDALONE_FILES {
        shaders::validate(file, &shaders::compose(file).unwrap()).unwrap();
    }
    assert_eq!(
        size_of("histogram", "HistParams"),
        std::mem::size_of::<histogram::HistParams>()
    );
    assert_eq!(
        size_of("drag", "Drag"),
        std::mem::size_of::<drag::DragParams>()
    );
    #[cfg(feature = "viewer")]
    assert_eq!(
        size_of("render", "Camera"),
        std::mem::size_of::<wgmd::viewer::render::CameraUniform>()
    );
}

fn poison(ctx: &wgmd::gpu::GpuContext, buf: &wgpu::Buffer) {
    ctx.queue
        .write_buffer(buf, 0, &vec![0xffu8; buf.size() as usize]);
}

#[test]
fn histograms_match_float64_reference() {
    let ctx = common::ctx();
    let seed = common::fresh_seed("histograms");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    for round in 0..3 {
        // Not a multiple of 64; centers both fewer than and equal to the atoms.
        let n = 64 * rng.random_range(3..12) + rng.random_range(1..64);
        let l = [0, 1, 2].map(|_| rng.random_range(6.0..10.0f64) as f32 as f64);
        let sys = common::as_f32(common::random_system(n, l, 2, 0.0, 3.0, seed ^ round));
        let vel: Vec<[f64; 3]> = sys
            .velocities
            .iter()
            .map(|v| v.map(|x| x as f32 as f64))
            .collect();
        let pos4: Vec<[f32; 4]> = sys
            .positions
            .iter()
            .zip(&sys.types)
            .map(|(p, &t)| [p[0] as f32, p[1] as f32, p[2] as f32, f32::from_bits(t)])
            .collect();
        let vel4: Vec<[f32; 4]> = vel
            .iter()
            .map(|v| [v[0] as f32, v[1] as f32, v[2] as f32, 1.0])
            .collect();
        let pos_buf = ctx.storage_init("pos", &pos4).unwrap();
        let vel_buf = ctx.storage_init("vel", &vel4).unwrap();
        let mut h = Histograms::new(&ctx, &pos_buf, &vel_buf, n, sys.box_lengths).unwrap();
        let half = l.iter().cloned().fold(f64::INFINITY, f64::min) / 2.0;
        let spec = HistSpec {
            n_bins: [MAX_BINS, 100, 37][round as usize],
            n_centers: if round == 1 {
                n as u32
            } else {
                rng.random_range(1..n as u32)
            },
            r_max: rng.random_range(0.5 * half..half),
            v_max: rng.random_range(0.5..1.5),
        };
        h.set(&ctx, spec).unwrap();
        poison(&ctx, h.rdf_buffer());
        poison(&ctx, h.speed_buffer());
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            h.encode(&mut pass);
        }
        ctx.queue.submit([enc.finish()]);
        let gpu_rdf: Vec<u32> = ctx.read_buffer(h.rdf_buffer()).unwrap();
        let gpu_speed: Vec<u32> = ctx.read_buffer(h.speed_buffer()).unwrap();
        let (ref_rdf, ref_speed, ambiguous) =
            histogram::reference(&sys.positions, &vel, sys.box_lengths, &spec);
        let nb = spec.n_bins as usize;
        let diff = |g: &[u32], r: &[u64]| -> u64 {
            g[..nb]
                .iter()
                .zip(r)
                .map(|(&a, &b)| (a as i64 - b as i64).unsigned_abs())
                .sum()
        };
        let (dr, ds) = (diff(&gpu_rdf, &ref_rdf), diff(&gpu_speed, &ref_speed));
        eprintln!(
            "round {round}: n={n} centers={} bins={nb} pairs={} |Δrdf|={dr} |Δspeed|={ds} ambiguous={ambiguous}",
            spec.n_centers,
            ref_rdf.iter().sum::<u64>()
        );
        assert!(
            ref_rdf.iter().sum::<u64>() > 100,
            "too few pairs to test anything"
        );
        // A value on a bin edge may land in either neighbour in f32: each moves 2 counts.
        assert!(
            dr + ds <= 2 * ambiguous,
            "GPU and float64 histograms differ (seed {seed})"
        );
    }
}

#[test]
fn rdf_of_an_ideal_gas_is_one_and_mb_is_normalised() {
    // g(r) normalisation: uniform random points give g ≈ 1 at every r.
    let seed = common::fresh_seed("ideal gas");
    let n = 3000;
    let sys = common::random_system(n, [12.0; 3], 1, 0.0, 1.0, seed);
    let spec = HistSpec {
        n_bins: 20,
        n_centers: 1000,
        r_max: 6.0,
        v_max: 1.0,
    };
    let (rdf, _, _) = histogram::reference(&sys.positions, &sys.velocities, sys.box_lengths, &spec);
    let counts: Vec<u32> = rdf.iter().map(|&c| c as u32).collect();
    let g = histogram::rdf_curve(&counts, &spec, n, sys.volume());
    for [r, y] in &g[5..] {
        // ≥ 1000·(N/V)·shell ≈ 2000 pairs per bin from r = 1.5: 10% is > 4 standard errors.
        assert!((y - 1.0).abs() < 0.1, "g({r}) = {y}");
    }
    let dv = 0.001;
    let total: f64 = (0..20000)
        .map(|k| histogram::maxwell_boltzmann(k as f64 * dv, 1.3, 2.0, 1.0) * dv)
        .sum();
    assert!((total - 1.0).abs() < 1e-6, "∫f(v)dv = {total}");
}

#[test]
fn drag_spring_matches_float64_reference() {
    let ctx = common::ctx();
    let seed = common::fresh_seed("drag");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let n = 64 * 3 + 17;
    let l = [8.0, 9.0, 10.0];
    let sys = common::as_f32(common::random_system(n, l, 2, 0.9, 0.5, seed));
    let spec = common::spec(
        sys,
        common::lj_spec(2, 2.5, true),
        0.3,
        0.001,
        Method::VelocityVerlet,
    );
    let mut plain = Simulation::new(ctx.clone(), spec.clone()).unwrap();
    let mut pulled = Simulation::new(ctx.clone(), spec).unwrap();
    let d = Drag {
        atom: rng.random_range(0..n as u32),
        // Outside the box: the kernel must take the minimum image.
        target: [0, 1, 2].map(|k| rng.random_range(-0.5..1.5) * l[k]),
        k: rng.random_range(1.0..20.0),
    };
    pulled.set_drag(Some(d)).unwrap();
    assert!(pulled
        .set_drag(Some(Drag {
            atom: n as u32,
            ..d
        }))
        .is_err());
    // One step: both start from the same forces, so they drift to the same positions and
    // differ only by the spring in the force buffer.
    plain.advance(1, false).unwrap();
    pulled.advance(1, false).unwrap();
    let (f0, _) = plain.forces().unwrap();
    let (f1, _) = pulled.forces().unwrap();
    let x = pulled.positions().unwrap()[d.atom as usize];
    let want = drag::reference(x, &d, l);
    for i in 0..n {
        for k in 0..3 {
            let got = f1[i][k] - f0[i][k];
            let expect = if i == d.atom as usize { want[k] } else { 0.0 };
            assert!(
                (got - expect).abs() <= 1e-4 * (1.0 + expect.abs() + f0[i][k].abs()),
                "atom {i} axis {k}: force change {got}, expected {expect} (seed {seed})"
            );
        }
    }
    // Releasing stops the pull.
    pulled.set_drag(None).unwrap();
    pulled.advance(1, false).unwrap();
}
