//! Every GPU kernel against its float64 CPU twin on random inputs: fresh seeds, sizes that
//! are not multiples of the workgroup size, poisoned outputs (NaN-filled force buffers are
//! overwritten only by the kernel under test).

mod common;

use common::*;
use wgmd::engine::{NeighborMode, SimSpec, Simulation};
use wgmd::forces::lj::{self, LjTable};
use wgmd::gpu::{params::Params, shaders};
use wgmd::integrate::{self, Method};
use wgmd::neighbor::{self, ListLayout};

/// Workgroup memory a kernel may use: 32 KiB (Apple GPUs, many browsers' adapters) for the
/// portable kernels; 48 KiB (NVIDIA's Vulkan limit) for the tensor-core ones, which only run
/// where the adapter offers cooperative matrices.
fn limit(name: &str) -> u32 {
    if name.starts_with("coop+") {
        48 << 10
    } else {
        32 << 10
    }
}

#[test]
fn every_shader_validates_and_params_layout_matches() {
    assert!(!shaders::KERNEL_FILES.is_empty());
    for name in shaders::KERNEL_FILES {
        let src = shaders::compose(name).unwrap();
        let (module, info) = shaders::validate(name, &src).unwrap();
        assert!(
            !module.entry_points.is_empty(),
            "{name} has no entry points"
        );
        // naga's SPIR-V writer as Vulkan adapters run it, including for kernels this machine's
        // adapter does not compile (tensor cores): its panics surface here, not on a device.
        // Every override of these files has a default, which the translation uses.
        for (k, ep) in module.entry_points.iter().enumerate() {
            let bytes = wgmd::gpu::workgroup_bytes(&module, &info, k);
            println!("{name} {}: {bytes} bytes of workgroup memory", ep.name);
            assert!(
                bytes <= limit(name),
                "{name} {}: {bytes} bytes of workgroup memory, over {}",
                ep.name,
                limit(name)
            );
            let (m, i) = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((ep.stage, &ep.name)),
                &Default::default(),
            )
            .unwrap_or_else(|e| panic!("{name}: overrides: {e}"));
            let pipeline = naga::back::spv::PipelineOptions {
                shader_stage: ep.stage,
                entry_point: ep.name.clone(),
            };
            naga::back::spv::write_vec(&m, &i, &Default::default(), Some(&pipeline))
                .unwrap_or_else(|e| panic!("{name} {}: SPIR-V: {e}", ep.name));
        }
        // The WGSL Params struct must have the Rust struct's size.
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (h, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .expect("Params");
        assert_eq!(
            layouter[h].size as usize,
            std::mem::size_of::<Params>(),
            "{name}: Params layout"
        );
    }
}

/// (global, worst-atom) relative force errors: ‖F_gpu − F_ref‖/‖F_ref‖ over all components,
/// and max over atoms of |ΔF_i| / max(|F_i|, F_rms).
///
/// Why the per-atom bound is wider: positions live in [0, L) in f32, so the distance of a
/// pair that straddles the periodic boundary carries an absolute error of ulp(L)/2 (~5e-7
/// for L ≈ 12) before imaging; r⁻¹³ turns that into ~7e-6 relative error of that pair force,
/// and an atom whose net force is a near-cancelling sum of such pairs shows it amplified.
fn force_errors(gpu: &[[f64; 3]], reference: &[[f64; 3]]) -> (f64, f64) {
    let norm2 = |v: &[f64; 3]| v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
    let diff = |g: &[f64; 3], r: &[f64; 3]| [g[0] - r[0], g[1] - r[1], g[2] - r[2]];
    let total: f64 = reference.iter().map(norm2).sum();
    let err: f64 = gpu
        .iter()
        .zip(reference)
        .map(|(g, r)| norm2(&diff(g, r)))
        .sum();
    let rms = (total / reference.len() as f64).sqrt();
    let worst = gpu
        .iter()
        .zip(reference)
        .map(|(g, r)| norm2(&diff(g, r)).sqrt() / norm2(r).sqrt().max(rms))
        .fold(0.0, f64::max);
    ((err / total).sqrt(), worst)
}

#[test]
fn lj_forces_energy_virial_match_reference_on_random_configs() {
    let ctx = ctx();
    let seed = fresh_seed("lj_forces");
    // (atoms, box, types, cutoff, shift): none a multiple of 64; one box near 2×cutoff.
    let cases = [
        (997usize, [11.3, 12.1, 10.7], 3usize, 2.5, false),
        (301, [7.9, 8.3, 9.1], 2, 3.0, true),
        (77, [5.1, 5.05, 6.0], 1, 2.5, false),
    ];
    // Every threads-per-atom variant of the kernel on every case (the atom count picks one
    // in real runs; all must agree with the reference), from a Verlet list and straight
    // from the cell list.
    let runs = cases.iter().enumerate().flat_map(|(k, c)| {
        [NeighborMode::Verlet, NeighborMode::Cells]
            .into_iter()
            .flat_map(move |m| [1u32, 2, 4, 8].map(|t| (k, *c, m, t)))
    });
    for (k, (n, l, nt, rc, shift), mode, tpa) in runs {
        // Closest approach 0.95σ, as in a thermal LJ liquid (g(r) ≈ 0 below it). Random packing
        // closer than that makes pair forces ~100 ε/σ that cancel in the net force, and the
        // f32 error relative to the net force grows with that cancellation, not with a bug.
        // The LJ term is plainly truncated: its force jumps at the cutoff, and a pair within
        // f32 rounding of it is inside for one arithmetic and outside for the other — a whole
        // pair force apart, not a kernel error (seed 1202651811160926948, case 1: a pair within
        // 3e-7 rc² of rc, force error 1.6e-5). Redraw until every pair is clear of the cutoff
        // by 1e-5 rc², as tests/coulomb_gpu.rs does; the kernel arithmetic is what is tested.
        let sys = (0..)
            .map(|j| {
                as_f32(random_system(
                    n,
                    l,
                    nt,
                    0.95,
                    0.0,
                    seed + k as u64 + 7919 * j,
                ))
            })
            .find(|s| clear_of_cutoffs(s, &[rc], 1e-5))
            .unwrap();
        let mut spec = spec(
            sys.clone(),
            lj_spec(nt, rc, shift),
            0.3,
            0.005,
            Method::VelocityVerlet,
        );
        spec.neighbor_mode = mode;
        let mut sim = Simulation::new(ctx.clone(), spec.clone()).unwrap();
        assert_eq!(sim.neighbor_mode(), mode);
        if mode == NeighborMode::Verlet {
            // Every list layout (rows by cell slot packed in groups of eight, split into the
            // entries inside the cutoff and the skin's shell with one thread per atom, the
            // default where the adapter allows it; by slot column-major; by atom, the
            // browsers'), spread over the threads-per-atom runs: one thread per atom reads
            // packed groups as vectors, several read them word by word.
            let layout = match tpa {
                1 => ListLayout::BySlotSplit,
                4 => ListLayout::BySlotPacked,
                2 => ListLayout::BySlot,
                _ => ListLayout::ByAtom,
            };
            sim.set_neighbor_build(tpa, layout).unwrap();
        } else {
            sim.set_threads_per_atom(tpa).unwrap();
        }
        sim.poison_and_recompute().unwrap();
        let (f_gpu, e_gpu) = sim.forces().unwrap();
        let table = LjTable::new(&spec.lj).unwrap();
        let r = lj::reference(&sys, &table);
        let (err, worst) = force_errors(&f_gpu, &r.forces);
        let e_sum: f64 = e_gpu.iter().sum();
        eprintln!("case {k}: n={n} {mode:?} threads/atom {tpa} layout {:?} force rel err {err:.2e} (worst atom {worst:.2e}), energy {e_sum} vs {}", sim.neighbor_layout(), r.energy);
        assert!(err < 1e-5, "case {k}: force relative error {err:.3e}");
        assert!(
            worst < 5e-5,
            "case {k}: worst-atom force relative error {worst:.3e}"
        );
        assert!(
            ((e_sum - r.energy) / r.energy).abs() < 1e-5,
            "case {k}: energy {e_sum} vs {}",
            r.energy
        );
        let th = sim.thermo().unwrap();
        // W sums repulsive (+) and attractive (−) pair virials and can cancel to a few tenths
        // of a percent of them (seed 11228982310345151607, case 2: W = 6.7, Σ|w| = 1654), so
        // f32 rounding is measured against Σ|w|: ~1e-7 per pair, summed with random signs.
        assert!(
            (th.virial - r.virial).abs() < 1e-6 * r.virial_abs,
            "case {k}: virial {} vs {} (Σ|w| = {})",
            th.virial,
            r.virial,
            r.virial_abs
        );
        assert!(((th.potential_energy - r.energy) / r.energy).abs() < 1e-5);
    }
}

#[test]
fn reference_forces_match_finite_differences() {
    let seed = fresh_seed("finite_differences");
    let sys = random_system(60, [6.0, 6.5, 7.0], 2, 0.95, 0.0, seed);
    let table = LjTable::new(&lj_spec(2, 2.8, true)).unwrap();
    let r = lj::reference(&sys, &table);
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for i in (0..sys.len()).step_by(7) {
        for d in 0..3 {
            let mut a = sys.clone();
            a.positions[i][d] += h;
            let mut b = sys.clone();
            b.positions[i][d] -= h;
            let fd =
                -(lj::reference(&a, &table).energy - lj::reference(&b, &table).energy) / (2.0 * h);
            worst = worst.max((fd - r.forces[i][d]).abs() / (1.0 + r.forces[i][d].abs()));
        }
    }
    assert!(worst < 1e-5, "finite-difference mismatch {worst:.3e}");
}

/// GPU rows equal brute force, ignoring pairs within f32 rounding of the list cutoff.
fn check_neighbors(
    sim: &Simulation,
    sys: &wgmd::system::System,
    (list_cut, cut): (f64, f64),
    tag: &str,
) {
    let rows = sim.neighbor_rows().unwrap();
    // Split rows: the front part holds the pairs inside the force cutoff, the back the rest.
    if let Some(inner) = sim.neighbor_inner_counts().unwrap() {
        let lo = neighbor::brute_force(sys, cut * (1.0 - 1e-5));
        let hi = neighbor::brute_force(sys, cut * (1.0 + 1e-5));
        for i in 0..sys.len() {
            let n = inner[i] as usize;
            assert!(
                lo[i].len() <= n && n <= hi[i].len(),
                "{tag}: atom {i} has {n} entries in front, {} pairs within the cutoff",
                lo[i].len()
            );
        }
    }
    let exact = neighbor::brute_force(sys, list_cut);
    let inner = neighbor::brute_force(sys, list_cut * (1.0 - 1e-5));
    let mut compared = 0;
    for i in 0..sys.len() {
        // Everything clearly inside must be there; nothing clearly outside may be.
        for j in &inner[i] {
            assert!(
                rows[i].binary_search(j).is_ok(),
                "{tag}: atom {i} misses neighbor {j}"
            );
        }
        let outer = neighbor::brute_force_pair_ok(sys, i, &rows[i], list_cut * (1.0 + 1e-5));
        assert!(outer, "{tag}: atom {i} lists a non-neighbor");
        let mut dedup = rows[i].clone();
        dedup.dedup();
        assert_eq!(
            dedup.len(),
            rows[i].len(),
            "{tag}: atom {i} lists a neighbor twice"
        );
        compared += exact[i].len();
    }
    assert!(compared > 0 || sys.len() < 10, "{tag}: no pairs compared");
}

#[test]
fn neighbor_list_equals_brute_force() {
    let ctx = ctx();
    let seed = fresh_seed("neighbors");
    // (atoms, box, cutoff, skin): boxes barely larger than 2×cutoff give 2 or 1 cells per
    // axis (the ±1 cell offsets alias), sizes are not multiples of 64.
    let cases = [
        (1usize, [6.0, 6.0, 6.0], 2.5, 0.3),
        (2, [6.0, 6.0, 6.0], 2.5, 0.3),
        (130, [5.02, 5.1, 5.3], 2.5, 0.3),
        (200, [5.01, 8.9, 12.5], 2.5, 0.5),
        (1001, [11.0, 9.7, 13.3], 2.5, 0.3),
        (4099, [17.3, 16.0, 18.7], 2.0, 0.4),
        // Crowded cells: hundreds of atoms per cell and thousands of candidates per atom.
        (2003, [14.0, 14.0, 14.0], 4.5, 0.5),
        (3001, [16.0, 16.0, 16.5], 4.5, 0.5),
    ];
    for (k, &(n, l, rc, skin)) in cases.iter().enumerate() {
        let sys = as_f32(random_system(n, l, 1, 0.8, 0.0, seed + 17 * k as u64));
        let mut sim = Simulation::new(
            ctx.clone(),
            spec(
                sys.clone(),
                lj_spec(1, rc, false),
                skin,
                0.005,
                Method::VelocityVerlet,
            ),
        )
        .unwrap();
        // Every variant of the build (the atom count picks one in real runs): threads per
        // atom, and each list layout.
        for (tpa, layout) in ListLayout::ALL
            .into_iter()
            .flat_map(|l| [1u32, 2, 8].map(|t| (t, l)))
            .filter(|&(t, l)| l.allows(t))
        {
            sim.set_neighbor_build(tpa, layout).unwrap();
            sim.poison_and_recompute().unwrap();
            let tag = format!(
                "case {k}: n={n} cells {:?} (reach {}) threads/atom {tpa}, layout {layout:?}",
                sim.grid().dims,
                sim.grid().reach
            );
            eprintln!("{tag}");
            check_neighbors(&sim, &sys, (rc + skin, rc), &tag);
        }
    }
}

#[test]
fn neighbor_list_stays_exact_while_atoms_move() {
    // After many steps with GPU-decided rebuilds, the list built last still covers every
    // pair inside the cutoff (checked at the current positions).
    let ctx = ctx();
    let seed = fresh_seed("moving_neighbors");
    let sys = random_system(515, [9.0, 9.5, 10.0], 2, 0.9, 4.0, seed);
    let mut sim = Simulation::new(
        ctx.clone(),
        spec(
            sys,
            lj_spec(2, 2.5, true),
            0.3,
            0.004,
            Method::VelocityVerlet,
        ),
    )
    .unwrap();
    sim.advance(300, false).unwrap();
    assert!(
        sim.stats().neighbor_builds > 2,
        "expected rebuilds, got {}",
        sim.stats().neighbor_builds
    );
    assert_list_covers_cutoff(&sim, 2.5);
}

#[test]
fn cell_list_forces_stay_exact_while_atoms_move() {
    // Cell-list mode keeps no Verlet list: after many steps with GPU-decided cell-list
    // rebuilds, the forces in place (not recomputed) must still be those of every pair
    // inside the cutoff at the current positions, and the energy must be the one a Verlet
    // list conserves.
    let ctx = ctx();
    let seed = fresh_seed("moving_cells");
    let sys = random_system(515, [9.0, 9.5, 10.0], 2, 0.9, 4.0, seed);
    let mut runs = Vec::new();
    // The Verlet list also with split rows and one thread per atom (the largest systems'
    // layout): the skin's entries that came inside the cutoff since the build must count.
    for (mode, split) in [
        (NeighborMode::Cells, false),
        (NeighborMode::Verlet, false),
        (NeighborMode::Verlet, true),
    ] {
        let mut sp = spec(
            sys.clone(),
            lj_spec(2, 2.5, true),
            0.3,
            0.004,
            Method::VelocityVerlet,
        );
        sp.neighbor_mode = mode;
        let table = LjTable::new(&sp.lj).unwrap();
        let mut sim = Simulation::new(ctx.clone(), sp).unwrap();
        assert_eq!(sim.neighbor_mode(), mode);
        if split {
            sim.set_neighbor_build(1, ListLayout::BySlotSplit).unwrap();
        }
        sim.advance(300, false).unwrap();
        assert!(
            sim.stats().neighbor_builds > 2,
            "{mode:?}: expected rebuilds, got {}",
            sim.stats().neighbor_builds
        );
        let now = as_f32(sim.system().unwrap());
        let (f_gpu, _) = sim.forces().unwrap();
        let r = lj::reference(&now, &table);
        let (err, worst) = force_errors(&f_gpu, &r.forces);
        eprintln!("{mode:?} (split {split}) after 300 steps: force rel err {err:.2e} (worst atom {worst:.2e})");
        assert!(err < 1e-5, "{mode:?}: force relative error {err:.3e}");
        assert!(worst < 5e-5, "{mode:?}: worst-atom error {worst:.3e}");
        runs.push((sim.thermo().unwrap(), now.len()));
    }
    // Same physics, different summation order: the trajectories part chaotically from f32
    // rounding (positions by ~1e-4 after these 300 steps, seed-dependent, so not asserted),
    // but both conserve the same energy.
    let (a, b, c) = (&runs[0].0, &runs[1].0, &runs[2].0);
    eprintln!(
        "cells vs verlet vs split rows: E {} vs {} vs {}",
        a.total_energy, b.total_energy, c.total_energy
    );
    assert!(((a.total_energy - b.total_energy) / b.total_energy).abs() < 1e-4);
    assert!(((c.total_energy - b.total_energy) / b.total_energy).abs() < 1e-4);
}

#[test]
fn rebuilds_by_pairs_keep_the_list_exact_and_come_less_often() {
    // The LAMMPS in.lj liquid (4,000 atoms, T* = 1.44): the same run with the list rebuilt
    // when twice the largest displacement passes the skin, and by pairs (each atom past
    // skin/2 against the largest displacement around it). By pairs the list must still hold
    // every pair inside the cutoff after every batch, with rebuild opportunities at every
    // step and every fourth, and must be rebuilt less often.
    let ctx = ctx();
    let spec = SimSpec::lammps_in_lj(10);
    let table = LjTable::new(&spec.lj).unwrap();
    let mut runs = Vec::new();
    for pairs in [false, true] {
        let mut sim = Simulation::new(ctx.clone(), spec.clone()).unwrap();
        sim.set_rebuild_by_pairs(pairs).unwrap();
        assert_eq!(sim.rebuilds_by_pairs(), pairs);
        for every in [1, 4] {
            sim.set_check_every(Some(every)).unwrap();
            for _ in 0..8 {
                sim.advance(25, false).unwrap();
                assert_list_covers_cutoff(&sim, 2.5);
            }
        }
        let now = as_f32(sim.system().unwrap());
        let (f_gpu, _) = sim.forces().unwrap();
        let (err, worst) = force_errors(&f_gpu, &lj::reference(&now, &table).forces);
        let st = sim.stats();
        eprintln!(
            "by pairs {pairs}: {} builds in 400 steps, {} replays; forces in place: rel err \
             {err:.2e} (worst atom {worst:.2e})",
            st.neighbor_builds, st.missed_replays
        );
        assert!(
            err < 1e-5 && worst < 5e-5,
            "by pairs {pairs}: forces in place"
        );
        runs.push(st.neighbor_builds);
    }
    assert!(
        runs[1] < runs[0],
        "rebuilds by pairs {} not fewer than by the largest displacement {}",
        runs[1],
        runs[0]
    );
}

#[test]
fn rebuilds_by_pairs_keep_the_list_exact_at_every_step() {
    // By pairs, with opportunities at every step, a list lives until a pair that it does not
    // hold comes inside the cutoff: after every step the list in place must hold every pair
    // inside the cutoff (checked in float64), and the lists must last longer than when twice
    // the largest displacement decides. A check that misses such a pair (a mutation that
    // shrinks the cutoff it tests against by 10 %) fails here within the run. With a cap of
    // one atom (more than one past skin/2: rebuild) the atoms beyond the cap are never
    // checked, so the list must be rebuilt as soon as there are any: exact again at every
    // step, and rebuilt more often than uncapped.
    let ctx = ctx();
    let spec = SimSpec::lammps_in_lj(8);
    let mut builds = Vec::new();
    for (pairs, cap) in [(false, None), (true, None), (true, Some(1))] {
        let mut sim = Simulation::new(ctx.clone(), spec.clone()).unwrap();
        sim.set_rebuild_by_pairs(pairs).unwrap();
        if let Some(c) = cap {
            sim.set_pair_cap(c).unwrap();
            assert_eq!(sim.pair_cap(), Some(c));
        }
        sim.set_check_every(Some(1)).unwrap();
        for _ in 0..150 {
            sim.advance(1, false).unwrap();
            if pairs {
                assert_list_covers_cutoff(&sim, spec.lj.cutoff);
            }
        }
        builds.push(sim.stats().neighbor_builds);
    }
    eprintln!(
        "2,048 atoms, 150 steps: {} builds by the largest displacement, {} by pairs, {} by \
         pairs with a cap of one atom",
        builds[0], builds[1], builds[2]
    );
    assert!(
        4 * builds[1] < 3 * builds[0],
        "lists by pairs ({} builds) do not last a third longer ({} builds)",
        builds[1],
        builds[0]
    );
    assert!(
        builds[2] > builds[1],
        "a cap of one atom ({} builds) does not rebuild more often than none ({})",
        builds[2],
        builds[1]
    );
}

#[test]
fn rebuilds_by_pairs_cover_atoms_that_fly_past_the_skin() {
    // The pair check's stencil (PAIR_REACH cells per side) holds every atom b that can have
    // come within the cutoff of a listed atom a as long as no atom moved more than PAIR_DMAX
    // (`neighbor::pair_dmax`, here ~3 skins); past it the list is rebuilt. Six pairs of atoms
    // fly at each other (3 σ/τ each, a little off head-on) from 5 to 8.5 σ apart, far from
    // the others: no list holds them at first, and nothing else ends a list. Each pair's
    // encounter must find its list exact at every step, while the lists outlive the textbook
    // bound (an atom past the skin). A check that lets atoms move 4 PAIR_DMAX (a mutation)
    // misses the closest pair, whose atoms start beyond the stencil and meet within it.
    let ctx = ctx();
    let seed = fresh_seed("pairs_fly_past_skin");
    let mut rng = <rand_pcg::Pcg64 as rand::SeedableRng>::seed_from_u64(seed);
    let mut sys = wgmd::system::System::default();
    sys.type_index("A", 1.0);
    sys.box_lengths = [48.3, 47.9, 48.7];
    let centres = [
        [8.0, 8.0, 8.0],
        [24.0, 8.0, 24.0],
        [40.0, 24.0, 8.0],
        [8.0, 40.0, 40.0],
        [24.0, 32.0, 40.0],
        [40.0, 40.0, 24.0],
    ];
    let axes = [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.6, 0.8, 0.0],
        [0.0, 0.6, -0.8],
        [-0.8, 0.0, 0.6],
    ];
    for (k, (c, u)) in centres.iter().zip(&axes).enumerate() {
        let half = 0.5 * (5.0 + 0.7 * k as f64);
        let off: [f64; 3] = [0, 1, 2].map(|_| 0.3 * (rand::Rng::random::<f64>(&mut rng) - 0.5));
        for side in [-1.0, 1.0] {
            sys.positions
                .push([0, 1, 2].map(|d| c[d] + side * half * u[d] + 0.5 * side * off[d]));
            sys.velocities.push([0, 1, 2].map(|d| -side * 3.0 * u[d]));
            sys.types.push(0);
            sys.charges.push(0.0);
        }
    }
    let sys = as_f32(sys);
    let lj = lj_spec(1, 2.5, false);
    let skin = 0.3;
    let sp = spec(sys, lj, skin, 0.002, Method::VelocityVerlet);
    let mut sim = Simulation::new(ctx, sp).unwrap();
    sim.set_rebuild_by_pairs(true).unwrap();
    sim.set_check_every(Some(1)).unwrap();
    let mut at_build = sim.system().unwrap();
    let mut builds = sim.stats().neighbor_builds;
    let mut farthest: f64 = 0.0;
    let mut closest = f64::INFINITY;
    for _ in 0..600 {
        sim.advance(1, false).unwrap();
        assert_list_covers_cutoff(&sim, 2.5);
        let now = sim.system().unwrap();
        let l = now.box_lengths;
        let dist = |p: &[f64; 3], q: &[f64; 3]| {
            (0..3)
                .map(|k| {
                    let x = p[k] - q[k];
                    let x = x - l[k] * (x / l[k]).round();
                    x * x
                })
                .sum::<f64>()
                .sqrt()
        };
        closest = closest.min(dist(&now.positions[0], &now.positions[1]));
        if sim.stats().neighbor_builds != builds {
            // Rebuilt this step, at this step's positions.
            builds = sim.stats().neighbor_builds;
            at_build = now;
            continue;
        }
        for (p, q) in now.positions.iter().zip(&at_build.positions) {
            farthest = farthest.max(dist(p, q));
        }
    }
    eprintln!(
        "six pairs in flight (seed {seed}), 600 steps: {builds} builds, largest displacement \
         under one list {farthest:.3} σ (skin {skin}), the closest pair met at {closest:.3} σ"
    );
    assert!(closest < 1.5, "the first pair never met ({closest})");
    assert!(
        farthest > 1.5 * skin,
        "no list outlived an atom's move past 1.5 skins (largest {farthest})"
    );
}

/// The list in place covers every pair inside `cutoff` at the current positions.
fn assert_list_covers_cutoff(sim: &Simulation, cutoff: f64) {
    let now = as_f32(sim.system().unwrap());
    let rows = sim.neighbor_rows().unwrap();
    let must = neighbor::brute_force(&now, cutoff * (1.0 - 1e-5));
    for i in 0..now.len() {
        for j in &must[i] {
            assert!(
                rows[i].binary_search(j).is_ok(),
                "atom {i} lost neighbor {j} inside the cutoff"
            );
        }
    }
}

#[test]
fn mixed_precision_integrates_free_flight_exactly() {
    // Free atoms (no forces) fly straight for 20,000 steps across the periodic box several
    // times. Mixed precision must follow x0 + n·Δ (Δ = the f32 step increment dt·v, which the
    // GPU forms in f32 in both modes) to 1e-9: the double-f32 sum rounds its low word by at
    // most ulp(ulp(x)/2)/2 ≈ 3e-14 per step for |x| < 16, ≤ 6e-10 after 20,000 steps even if
    // every rounding had the same sign. Plain f32 loses ~5e-7 per step to rounding against
    // the coordinate's magnitude (~1e-2 after these steps). Velocity Verlet and Langevin share
    // the drift code (`ds_add`, `ds_wrap`); `integrators_match_reference` runs both methods
    // in mixed precision against the float64 reference.
    let ctx = ctx();
    let seed = fresh_seed("mixed_free_flight");
    let steps = 20_000u64;
    let dt = 0.001f64;
    // Box lengths exact in f32, so wrapping shifts by the same L in both arithmetics.
    let sys = as_f32(random_system(333, [10.3, 9.7, 11.1], 1, 0.5, 1.5, seed));
    let l = sys.box_lengths;
    let mut errs = Vec::new();
    for mixed in [true, false] {
        let sp = spec(
            sys.clone(),
            wgmd::forces::lj::LjSpec::off(1, 2.5),
            0.3,
            dt,
            Method::VelocityVerlet,
        );
        let mut sim = Simulation::new(ctx.clone(), sp).unwrap();
        sim.set_mixed_precision(mixed).unwrap();
        let start = sim.system().unwrap();
        sim.advance(steps, false).unwrap();
        let end = sim.system().unwrap();
        let dtf = dt as f32;
        let mut worst = 0.0f64;
        for i in 0..sys.len() {
            for k in 0..3 {
                // The GPU's per-step increment: f32 dt times the f32 high word of v.
                let v_hi = start.velocities[i][k] as f32;
                let inc = (dtf * v_hi) as f64;
                let want = start.positions[i][k] + steps as f64 * inc;
                let d = end.positions[i][k] - want;
                worst = worst.max((d - l[k] * (d / l[k]).round()).abs());
                assert_eq!(end.velocities[i][k], start.velocities[i][k]);
            }
        }
        eprintln!("mixed={mixed}: worst coordinate error after {steps} steps {worst:.3e}");
        errs.push(worst);
    }
    assert!(errs[0] < 1e-9, "mixed precision drifted by {:.3e}", errs[0]);
    // The point of mixed precision: plain f32 is measurably worse on the same flight.
    assert!(
        errs[1] > 100.0 * errs[0].max(1e-12),
        "f32 {:.3e} vs mixed {:.3e}",
        errs[1],
        errs[0]
    );
}

#[test]
fn integrators_match_reference() {
    let ctx = ctx();
    let seed = fresh_seed("integrators");
    let methods = [
        Method::VelocityVerlet,
        Method::Langevin {
            temperature: 1.3,
            friction: 2.0,
            seed: seed ^ 0xabc,
        },
    ];
    // Both methods in f32 and in mixed precision (double-f32 positions and velocities).
    for (method, mixed) in methods
        .iter()
        .flat_map(|m| [(m.clone(), false), (m.clone(), true)])
    {
        let mut sys = as_f32(random_system(203, [7.0, 7.3, 7.7], 2, 0.95, 1.0, seed));
        for v in &mut sys.velocities {
            for x in v.iter_mut() {
                *x = *x as f32 as f64;
            }
        }
        let spec = spec(
            sys.clone(),
            lj_spec(2, 2.5, true),
            0.3,
            0.003,
            method.clone(),
        );
        let mut sim = Simulation::new(ctx.clone(), spec.clone()).unwrap();
        sim.set_mixed_precision(mixed).unwrap();
        let steps = 25;
        sim.advance(steps, false).unwrap();
        let mut cpu = sys.clone();
        let table = LjTable::new(&spec.lj).unwrap();
        integrate::reference_steps(
            &mut cpu,
            &table,
            spec.units,
            &spec.integrator,
            0,
            steps as u32,
        );
        let gp = sim.positions().unwrap();
        let gv = sim.velocities().unwrap();
        let (mut dx, mut dv): (f64, f64) = (0.0, 0.0);
        for i in 0..cpu.len() {
            for d in 0..3 {
                let l = cpu.box_lengths[d];
                let x = gp[i][d] - cpu.positions[i][d];
                dx = dx.max((x - l * (x / l).round()).abs());
                dv = dv.max((gv[i][d] - cpu.velocities[i][d]).abs());
            }
        }
        eprintln!("{method:?} mixed={mixed}: max |dx| {dx:.2e}, max |dv| {dv:.2e}");
        // f32 state over 25 steps of a chaotic system: deviations stay ~1e-5.
        assert!(
            dx < 1e-4 && dv < 1e-3,
            "{method:?}: GPU and reference diverged (dx {dx:.2e}, dv {dv:.2e})"
        );
    }
}

#[test]
fn neighbor_overflow_is_rolled_back_and_regrown() {
    let ctx = ctx();
    let seed = fresh_seed("overflow");
    let sys = random_system(700, [10.0, 10.0, 10.0], 1, 0.9, 2.0, seed);
    let spec = spec(
        sys,
        lj_spec(1, 2.5, true),
        0.3,
        0.004,
        Method::VelocityVerlet,
    );
    let mut a = Simulation::new(ctx.clone(), spec.clone()).unwrap();
    let mut b = Simulation::new(ctx.clone(), spec.clone()).unwrap();
    // c: split rows (whose room is counted in whole groups from both ends) and rebuilds by
    // pairs, one thread per atom.
    let mut c = Simulation::new(ctx.clone(), spec).unwrap();
    c.set_neighbor_build(1, ListLayout::BySlotSplit).unwrap();
    c.set_rebuild_by_pairs(true).unwrap();
    // Make b's and c's lists far too small; their next rebuild overflows inside a batch.
    for s in [&mut b, &mut c] {
        s.set_neighbor_capacity(4).unwrap();
        s.request_rebuild();
    }
    a.request_rebuild();
    let ta = a.advance(200, true).unwrap().unwrap();
    for (s, tag) in [(&mut b, "packed"), (&mut c, "split rows, by pairs")] {
        let t = s.advance(200, true).unwrap().unwrap();
        assert!(s.stats().regrows >= 1, "{tag}: no regrow happened");
        assert!(
            s.stats().neighbor_capacity >= s.stats().max_neighbors,
            "{tag}"
        );
        let rel = ((ta.total_energy - t.total_energy) / ta.total_energy).abs();
        assert!(
            rel < 1e-4,
            "{tag}: rolled-back run differs: {} vs {}",
            ta.total_energy,
            t.total_energy
        );
        assert_eq!(a.step_count(), s.step_count(), "{tag}");
    }
    assert_list_covers_cutoff(&c, 2.5);
}

#[test]
fn rebuild_opportunities_every_few_steps_keep_the_trajectory() {
    // Offering a rebuild only every k steps must not change the physics: a list that would
    // go stale between opportunities is caught and the batch replayed. A hot system with a
    // thin skin and k = 40 forces such misses; the result must equal the every-step run.
    let ctx = ctx();
    let seed = fresh_seed("check_every");
    let sys = random_system(613, [10.0, 10.0, 10.0], 2, 0.9, 3.0, seed);
    let spec = spec(
        sys,
        lj_spec(2, 2.5, true),
        0.2,
        0.004,
        Method::VelocityVerlet,
    );
    let mut every = Simulation::new(ctx.clone(), spec.clone()).unwrap();
    every.set_check_every(Some(1)).unwrap();
    let mut sparse = Simulation::new(ctx.clone(), spec.clone()).unwrap();
    sparse.set_check_every(Some(40)).unwrap();
    let mut adaptive = Simulation::new(ctx.clone(), spec.clone()).unwrap();
    adaptive.set_check_every(None).unwrap();
    // By pairs: the steps between opportunities check the list exactly, and a miss replays.
    let mut pairs = Simulation::new(ctx.clone(), spec).unwrap();
    pairs.set_rebuild_by_pairs(true).unwrap();
    pairs.set_check_every(Some(40)).unwrap();
    let t1 = every.advance(150, true).unwrap().unwrap();
    let t40 = sparse.advance(150, true).unwrap().unwrap();
    let ta = adaptive.advance(150, true).unwrap().unwrap();
    let tp = pairs.advance(150, true).unwrap().unwrap();
    assert_eq!(every.stats().missed_replays, 0);
    assert!(
        sparse.stats().missed_replays >= 1,
        "k = 40 with a 0.2 skin should have outrun the list at least once"
    );
    eprintln!(
        "builds: every step {}, k=40 {} ({} replays), adaptive {} (k now {}, {} replays)",
        every.stats().neighbor_builds,
        sparse.stats().neighbor_builds,
        sparse.stats().missed_replays,
        adaptive.stats().neighbor_builds,
        adaptive.stats().check_every,
        adaptive.stats().missed_replays
    );
    eprintln!(
        "by pairs, k=40: {} builds, {} replays",
        pairs.stats().neighbor_builds,
        pairs.stats().missed_replays
    );
    assert!(
        pairs.stats().missed_replays >= 1,
        "by pairs, k = 40 with a 0.2 skin should have outrun the list at least once"
    );
    for (t, tag) in [(t40, "k = 40"), (ta, "adaptive"), (tp, "by pairs, k = 40")] {
        let rel = ((t.total_energy - t1.total_energy) / t1.total_energy).abs();
        assert!(
            rel < 1e-4,
            "{tag}: total energy {} vs every-step {}",
            t.total_energy,
            t1.total_energy
        );
    }
    assert_eq!(every.step_count(), sparse.step_count());
    // The list in place at the end still covers every pair inside the cutoff.
    assert_list_covers_cutoff(&sparse, 2.5);
    assert_list_covers_cutoff(&pairs, 2.5);
}

/// A kernel that needs more workgroup memory than the adapter allows is refused with an error
/// naming the kernel and both sizes — wgpu 30 would hand it to the driver unchecked.
#[test]
fn kernel_over_the_workgroup_memory_limit_is_an_error() {
    let ctx = ctx();
    let limit = ctx.limits.max_compute_workgroup_storage_size;
    let words = limit / 4 + 64;
    let src = format!(
        "@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n\
         var<workgroup> big: array<f32, {words}>;\n\
         @compute @workgroup_size(64)\n\
         fn too_big(@builtin(local_invocation_index) lid: u32) {{\n\
             big[lid * 7u] = f32(lid);\n\
             workgroupBarrier();\n\
             out[lid] = big[{words}u - 1u - lid];\n\
         }}\n"
    );
    let (naga, info) = shaders::validate("too_big", &src).unwrap();
    assert_eq!(
        wgmd::gpu::workgroup_bytes(&naga, &info, 0),
        (words * 4).next_multiple_of(16)
    );
    let module = wgmd::gpu::ShaderModule {
        name: "too_big".into(),
        module: wgmd::gpu::compile_wgsl(&ctx, "too_big", src.clone()),
        naga,
        info,
    };
    let Err(err) = wgmd::gpu::Kernel::new(&ctx, &module, "too_big", &[]) else {
        panic!("a kernel over the workgroup-memory limit must be refused");
    };
    let msg = format!("{err:#}");
    assert!(
        msg.contains("too_big")
            && msg.contains(&format!("{}", words * 4))
            && msg.contains(&limit.to_string()),
        "unclear error: {msg}"
    );
}
