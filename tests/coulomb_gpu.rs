//! The GPU Coulomb kernels (shaders/coulomb.wgsl, shaders/ewald.wgsl) against the float64
//! references: random charged systems with exclusions for every method (fresh seeds, poisoned
//! outputs, N not a multiple of 64), the NIST SPC/E configurations, the Madelung constant, and
//! NVE energy conservation of molten NaCl.

mod common;
mod coulomb_support;

use common::*;
use coulomb_support::*;
use wgmd::engine::{SimSpec, Simulation, SpreadMode};
use wgmd::forces::coulomb::{self, CoulombMethod, CoulombParams, CoulombSpec};
use wgmd::forces::lj::{LjSpec, LjTable};
use wgmd::forces::spread_tile::{self, TilePlan};
use wgmd::gpu::shaders;
use wgmd::integrate::{Integrator, Method};
use wgmd::neighbor::ListLayout;
use wgmd::units::{Units, KB_EV_PER_K};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// ‖ΔF‖/‖F‖ over all components.
fn force_error(gpu: &[[f64; 3]], r: &[[f64; 3]]) -> f64 {
    let mut e = 0.0;
    let mut t = 0.0;
    for (g, r) in gpu.iter().zip(r) {
        for d in 0..3 {
            e += (g[d] - r[d]).powi(2);
            t += r[d] * r[d];
        }
    }
    (e / t).sqrt()
}

#[test]
fn coulomb_params_layout_matches_wgsl() {
    for name in ["coulomb", "ewald"] {
        let src = shaders::compose(name).unwrap();
        let (module, _) = shaders::validate(name, &src).unwrap();
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (h, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("CoulombParams"))
            .expect("CoulombParams");
        assert_eq!(
            layouter[h].size as usize,
            std::mem::size_of::<CoulombParams>(),
            "{name}"
        );
    }
}

fn sim_spec(system: wgmd::system::System, lj: LjSpec, c: CoulombSpec) -> SimSpec {
    SimSpec {
        system,
        units: Units::Lj,
        lj,
        ani: None,
        coulomb: Some(c),
        skin: 0.3,
        neighbor_mode: Default::default(),
        integrator: Integrator {
            dt: 0.001,
            method: Method::VelocityVerlet,
        },
    }
}

/// f32 budget: positions carry ulp(L)/2 ≈ 5e-7 absolute error and each pair term ~1e-7
/// relative; net forces are sums of ~100 pair forces of both signs (cancellation ~10x), so
/// 2e-5 of ‖F‖ globally. Energies: per-atom shares summed in f64; each term within 2e-6 of
/// the sum of its absolute pair contributions — checked so for the real-space Coulomb term,
/// which with charges of both signs can cancel (reaction field, seed 7122801367501987906:
/// 1.3e-5 of |term|); the excluded-pair correction within 1e-5 of the sum of its absolute
/// pair contributions (with per-type charges its pairs of both signs cancel: seed
/// 1604492724043664828, N = 181, 2.5e-5 of |term|); as 1e-5 of |term| for the others, which
/// do not cancel here. The total
/// is held to the sum of its terms' budgets: LJ and real-space Coulomb can cancel each other
/// (per-type charges, seed 8406795453731199316: −16.45 + 18.51 = 2.06, where 1e-5 of the
/// total would ask 1e-6 of its terms).
#[test]
fn every_method_matches_reference_on_random_charged_systems() {
    let ctx = ctx();
    let seed = fresh_seed("coulomb_random");
    // The last flag gives every atom of a type the same charge (neutral overall), as ionic
    // and water systems have: the real-space kernel then reads k q_i q_j from a per-type-pair
    // table (`QQ_TABLE`) instead of gathering each neighbor's charge. The type counts cover
    // the kernel's per-type registers (SMALL_TYPES = 2, 3, 4: picked by compares) and the
    // table loads it keeps for more than four types.
    let cases = [
        (203usize, [12.0, 12.5, 13.0], 5.0, 0.7, 2usize, false),
        (77, [10.0, 10.5, 11.0], 4.5, 0.8, 2, false),
        (181, [11.0, 12.0, 11.5], 5.0, 0.7, 2, true),
        (133, [10.5, 11.0, 11.5], 4.5, 0.7, 3, false),
        (119, [10.5, 11.5, 11.0], 4.5, 0.7, 4, true),
        (141, [11.0, 11.0, 12.0], 4.5, 0.7, 5, true),
    ];
    for (c, &(n, l, rc, alpha, n_types, per_type)) in cases.iter().enumerate() {
        // Plainly truncated terms jump at their cutoffs, and a pair within f32 rounding of
        // one (|r² − rc²| ~ 1e-7 rc²) is inside for one arithmetic and outside for the other:
        // a whole pair force apart, not a kernel error (seed 4546521723951600042 had an LJ
        // pair at 4.4999997 for a 4.5 cutoff). Redraw until every pair is clear of both
        // cutoffs by 1e-5 rc², far beyond f32 rounding; the kernel arithmetic is what is tested.
        let (sys, excl) = (0..)
            .map(|k| random_charged(n, l, n_types, 1.1, seed + c as u64 + 7919 * k))
            .map(|(mut s, e)| {
                if per_type {
                    // Type t > 0 carries −(0.5 + 0.25 t) scaled so that the total is zero.
                    let n0 = s.types.iter().filter(|&&t| t == 0).count() as f64;
                    let neg: f64 = s
                        .types
                        .iter()
                        .filter(|&&t| t > 0)
                        .map(|&t| 0.5 + 0.25 * t as f64)
                        .sum();
                    let k = 1.2 * n0 / neg;
                    s.charges = s
                        .types
                        .iter()
                        .map(|&t| {
                            if t == 0 {
                                1.2
                            } else {
                                -k * (0.5 + 0.25 * t as f64)
                            }
                        })
                        .collect();
                }
                (as_f32(s), e)
            })
            .find(|(s, _)| clear_of_cutoffs(s, &[rc, rc - 0.5], 1e-5))
            .unwrap();
        // Case 2 gives LJ the Coulomb cutoff: the real-space kernel then tests each pair once
        // for both terms (`ONE_CUT`).
        let lj = LjSpec {
            cutoff: if c == 2 { rc } else { rc - 0.5 },
            shift: false,
            tail: false,
            sigma: (0..n_types).map(|t| 1.0 + 0.125 * t as f64).collect(),
            epsilon: (0..n_types).map(|t| 0.25 / (1.0 + t as f64)).collect(),
            pairs: vec![],
        };
        let table = LjTable::new(&lj).unwrap();
        for method in methods(alpha) {
            let cs = CoulombSpec {
                method: method.clone(),
                cutoff: rc,
                coulomb_k: 1.0,
                exclusions: excl.clone(),
                neutralize: false,
            };
            let r = coulomb::reference(&sys, &table, &cs);
            // Budget of the total: the sum of its terms' (see above).
            let total_budget = 1e-5 * (r.coulomb_exclusion_abs + r.coulomb_reciprocal.abs())
                + 2e-6 * (r.coulomb_real_abs + r.lj_abs)
                + 1e-12 * r.coulomb_self.abs();
            let total_ok = |e: f64| (e - r.total()).abs() < total_budget;
            let mut sim =
                Simulation::new(ctx.clone(), sim_spec(sys.clone(), lj.clone(), cs)).unwrap();
            sim.poison_and_recompute().unwrap();
            let (f, _) = sim.forces().unwrap();
            let t = sim.energy_terms().unwrap();
            let ef = force_error(&f, &r.forces);
            eprintln!(
                "N={n} {}: force err {ef:.2e}, lj {:.2e} (of Σ|pair| {:.2e}), real {:.2e}, excl {:.2e}, recip {:.2e}, W {:.2e}",
                method.name(),
                rel(t.lj.unwrap(), r.lj),
                (t.lj.unwrap() - r.lj).abs() / r.lj_abs,
                rel(t.coulomb_real.unwrap(), r.coulomb_real),
                t.coulomb_exclusion.map_or(0.0, |e| rel(e, r.coulomb_exclusion)),
                t.coulomb_reciprocal.map_or(0.0, |e| rel(e, r.coulomb_reciprocal)),
                rel(t.virial, r.virial),
            );
            assert!(ef < 2e-5, "{method:?}: force error {ef}");
            // LJ, like the real-space Coulomb term, can be a near-cancelling sum of repulsive
            // and attractive pairs (seed 9718935519566171705, N = 141, five types: 1.25e-5 of
            // the sum off, far less of Σ|pair|): budget on Σ|pair|, where f32 rounding lives.
            assert!(
                (t.lj.unwrap() - r.lj).abs() < 2e-6 * r.lj_abs,
                "{method:?} lj: {} vs {} (Σ|pair| = {})",
                t.lj.unwrap(),
                r.lj,
                r.lj_abs
            );
            assert!(
                (t.coulomb_real.unwrap() - r.coulomb_real).abs() < 2e-6 * r.coulomb_real_abs,
                "{method:?} real: {} vs {} (Σ|pair| = {})",
                t.coulomb_real.unwrap(),
                r.coulomb_real,
                r.coulomb_real_abs
            );
            if method.ewald_alpha().is_some() {
                assert!(
                    (t.coulomb_exclusion.unwrap() - r.coulomb_exclusion).abs()
                        < 1e-5 * r.coulomb_exclusion_abs,
                    "{method:?} exclusion: {} vs {} (Σ|pair| = {})",
                    t.coulomb_exclusion.unwrap(),
                    r.coulomb_exclusion,
                    r.coulomb_exclusion_abs
                );
                assert!(rel(t.coulomb_reciprocal.unwrap(), r.coulomb_reciprocal) < 1e-5);
                assert!(rel(t.coulomb_self.unwrap(), r.coulomb_self) < 1e-12);
            }
            assert!(
                total_ok(t.total()),
                "{method:?} total: {} vs {} (budget {total_budget:.2e})",
                t.total(),
                r.total()
            );
            // The virial, like the total, can be a near-cancelling sum of its terms (seed
            // 11420525292947130574, Ewald with four per-type charges: W = −0.0428 from terms
            // of 4–22, f32 off by 8e-6 = 1.7e-7 of them): 1e-4 of W plus 1e-6 of the terms'
            // scale (f32 rounding is ~1e-7 of it; a wrong term is off by a whole term).
            let w_scale = r.lj_abs
                + r.coulomb_real_abs
                + r.coulomb_exclusion_abs
                + r.coulomb_reciprocal.abs()
                + r.coulomb_self.abs();
            assert!(
                (t.virial - r.virial).abs() < 1e-4 * r.virial.abs() + 1e-6 * w_scale,
                "{method:?} virial: {} vs {} (terms' scale {w_scale:.3e})",
                t.virial,
                r.virial
            );
            // The engine's own reduction (what `run` logs) agrees with the per-term sum.
            let th = sim.thermo().unwrap();
            assert!(
                total_ok(th.potential_energy),
                "{method:?} thermo PE: {} vs {}",
                th.potential_energy,
                r.total()
            );
            // PME with f32 atomics spreads its charges beside real space: by blocks of cells
            // (spread_tile.wgsl) where that gains, else interleaved in the real-space
            // dispatch (coulomb_spread.wgsl). Every way must give the same answer: the
            // separate dispatch, the interleaved one, the tiled one with blocks of one cell
            // (these systems are too small for the planner's blocks) summing in workgroup
            // memory (its splines computed where used, and stored), the same with n_max = 1, which sends every block's atoms straight to the
            // grid (its fallback), and with a box 1 length unit short of the cells on every
            // side, which sends the atoms near the cells' faces (as atoms that strayed
            // further than half the skin) straight to the grid and the others to the box.
            let fusion_on = std::env::var("WGMD_FUSE_SPREAD").map_or(true, |v| v != "0");
            if let CoulombMethod::Pme(pp) = &method {
                let default = sim.spread_mode();
                assert_eq!(
                    default != SpreadMode::Separate,
                    ctx.has_f32_atomics() && fusion_on
                );
                let one = TilePlan::for_block(
                    &sim.grid(),
                    sys.box_lengths,
                    pp,
                    0.3,
                    &sys.charges,
                    [1, 1, 1],
                    spread_tile::tile_words(&ctx.limits),
                )
                .expect("a block of one cell fits");
                let mut ways = vec![(SpreadMode::Separate, None)];
                if default != SpreadMode::Separate {
                    ways.extend([
                        (SpreadMode::Interleaved, None),
                        (SpreadMode::Tiled, Some(one)),
                        (SpreadMode::Tiled, Some(TilePlan { n_max: 1, ..one })),
                        // The splines stored by slot_gather_splines, not computed where used.
                        (
                            SpreadMode::Tiled,
                            Some(TilePlan {
                                fly_splines: false,
                                ..one
                            }),
                        ),
                        (
                            SpreadMode::Tiled,
                            Some(TilePlan {
                                half_skin: -1.0,
                                ..one
                            }),
                        ),
                    ]);
                }
                for (mode, plan) in ways {
                    let got = match plan {
                        Some(p) => sim.set_spread_tile(p).unwrap(),
                        None => sim.set_spread_mode(mode).unwrap(),
                    };
                    assert_eq!(got, mode);
                    sim.poison_and_recompute().unwrap();
                    let (f2, _) = sim.forces().unwrap();
                    let t2 = sim.energy_terms().unwrap();
                    let tag = format!("{mode:?} spread (plan {plan:?})");
                    assert!(force_error(&f2, &r.forces) < 2e-5, "{tag}");
                    assert!(
                        rel(t2.coulomb_reciprocal.unwrap(), r.coulomb_reciprocal) < 1e-5,
                        "{tag}"
                    );
                    // The same f32 sums apart from the order of the atomic additions (and
                    // the tile's fixed-point rounding, 1.2e-7 of max|q| per addition).
                    let d = force_error(&f2, &f);
                    eprintln!("{tag}: vs default {d:.2e}");
                    assert!(d < 1e-6, "{tag}: {d:.2e} from the default spread");
                    // The kernels of the steps that read no energy, at the same positions.
                    sim.recompute_forces_without_energy().unwrap();
                    let (f3, _) = sim.forces().unwrap();
                    let d3 = force_error(&f3, &f2);
                    assert!(d3 < 1e-6, "{tag}: without energies {d3:.2e} from with");
                    sim.poison_and_recompute().unwrap();
                    // The per-atom energy and virial shares of every way, summed.
                    let th = sim.thermo().unwrap();
                    assert!(
                        total_ok(th.potential_energy),
                        "{tag} thermo PE: {} vs {}",
                        th.potential_energy,
                        r.total()
                    );
                    assert!(
                        (th.virial - r.virial).abs() < 1e-4 * r.virial.abs() + 1e-6 * w_scale,
                        "{tag} thermo virial: {} vs {}",
                        th.virial,
                        r.virial
                    );
                }
                // The tiled mode with one thread per atom and split rows (the largest
                // systems' configuration; these small ones default to 8 threads per atom).
                if default != SpreadMode::Separate {
                    sim.set_spread_tile(one).unwrap();
                    sim.set_neighbor_build(1, ListLayout::BySlotSplit).unwrap();
                    sim.poison_and_recompute().unwrap();
                    let (f2, _) = sim.forces().unwrap();
                    let th = sim.thermo().unwrap();
                    let d = force_error(&f2, &f);
                    assert!(d < 1e-6, "tiled, TPA 1: {d:.2e} from the default spread");
                    assert!(total_ok(th.potential_energy), "tiled, TPA 1: thermo PE");
                    sim.set_neighbor_build(8, ListLayout::BySlotPacked).unwrap();
                }
                assert_eq!(sim.set_spread_mode(default).unwrap(), default);
            }
            // Every threads-per-atom variant (the default here is 8: small systems).
            assert_eq!(sim.lj_threads_per_atom(), 8);
            // And the list layouts: rows by cell slot packed in groups of eight (the default;
            // one thread per atom reads them as vectors, several word by word), by slot
            // column-major, and by atom.
            for (tpa, layout) in [
                (1, ListLayout::BySlotSplit),
                (1, ListLayout::BySlotPacked),
                (2, ListLayout::BySlotPacked),
                (1, ListLayout::BySlot),
                (1, ListLayout::ByAtom),
                (8, ListLayout::ByAtom),
            ] {
                sim.set_neighbor_build(tpa, layout).unwrap();
                sim.poison_and_recompute().unwrap();
                let (f, _) = sim.forces().unwrap();
                let t = sim.energy_terms().unwrap();
                let tag = format!("{method:?} TPA {tpa} layout {layout:?}");
                assert!(force_error(&f, &r.forces) < 2e-5, "{tag}");
                assert!((t.lj.unwrap() - r.lj).abs() < 2e-6 * r.lj_abs, "{tag} lj");
                assert!(
                    (t.coulomb_real.unwrap() - r.coulomb_real).abs() < 2e-6 * r.coulomb_real_abs,
                    "{tag} real"
                );
                assert!(
                    total_ok(t.total()),
                    "{tag} total: {} vs {}",
                    t.total(),
                    r.total()
                );
            }
        }
    }
}

/// The tiled spread between rebuilds: atoms have strayed from the cells they were listed in
/// (up to skin/2), some across the box's faces, so each block's box reaches points before
/// the grid's first and past its last, and those points wrap when the box is flushed to the
/// grid. A large skin (2, so that a box reaches two points before the first, and the points
/// there carry weights of ~0.2, not the ~1e-4 that a skin of 0.3 leaves them), fast atoms, a
/// one-cell block, and every step compared with the float64 reference at its positions.
/// 605 random charged atoms (two types, closest approach 1.1, clear of the cutoffs rc and
/// rc - 0.5) moving up to 0.012 length units per step: a rebuild every ~80 steps at skin 2.
fn fast_charged_605(seed: u64, rc: f64) -> (wgmd::system::System, Vec<[u32; 2]>) {
    use rand::{Rng, SeedableRng};
    let (mut sys, excl) = (0..)
        .map(|k| random_charged(605, [16.0, 16.5, 17.0], 2, 1.1, seed + 7919 * k))
        .map(|(s, e)| (as_f32(s), e))
        .find(|(s, _)| clear_of_cutoffs(s, &[rc, rc - 0.5], 1e-5))
        .unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed ^ 0x5eed);
    for v in sys.velocities.iter_mut() {
        *v = [0; 3].map(|_| rng.random_range(-12.0..12.0));
    }
    (sys, excl)
}

/// Coulomb with k = 1 at `cutoff`, charges as they are (no neutralizing background).
fn unit_coulomb(method: CoulombMethod, cutoff: f64, exclusions: Vec<[u32; 2]>) -> CoulombSpec {
    CoulombSpec {
        method,
        cutoff,
        coulomb_k: 1.0,
        exclusions,
        neutralize: false,
    }
}

/// `sys` with a `skin`, one thread per atom and split rows (the largest systems' build).
fn split_rows_sim(
    ctx: &std::sync::Arc<wgmd::gpu::GpuContext>,
    sys: &wgmd::system::System,
    lj: LjSpec,
    cs: &CoulombSpec,
    skin: f64,
) -> Simulation {
    let mut spec = sim_spec(sys.clone(), lj, cs.clone());
    spec.skin = skin;
    let mut sim = Simulation::new(ctx.clone(), spec).unwrap();
    sim.set_neighbor_build(1, ListLayout::BySlotSplit).unwrap();
    sim
}

/// Two LJ types (σ 1, 1.125; ε 0.25, 0.125) cut at `cutoff`.
fn two_types_lj(cutoff: f64, shift: bool) -> LjSpec {
    LjSpec {
        cutoff,
        shift,
        tail: false,
        sigma: vec![1.0, 1.125],
        epsilon: vec![0.25, 0.125],
        pairs: vec![],
    }
}

#[test]
fn tiled_spread_matches_reference_while_atoms_stray() {
    let ctx = ctx();
    if !ctx.has_f32_atomics() {
        eprintln!("no f32 atomics: no tiled spread on this adapter");
        return;
    }
    let seed = fresh_seed("tiled_stray");
    let (rc, skin) = (5.0, 2.0);
    let (mut sys, excl) = fast_charged_605(seed, rc);
    let lj = two_types_lj(rc - 0.5, false);
    let table = LjTable::new(&lj).unwrap();
    let method = methods(0.7).pop().unwrap();
    let CoulombMethod::Pme(pp) = method.clone() else {
        panic!("the last method is PME");
    };
    let cs = unit_coulomb(method, rc, excl);
    // One thread per atom with split rows, as the largest systems run: the skin's entries
    // (LJ cutoff 4.5, Coulomb 5) that come inside between builds must count.
    let mut sim = split_rows_sim(&ctx, &sys, lj, &cs, skin);
    let one = TilePlan::for_block(
        &sim.grid(),
        sys.box_lengths,
        &pp,
        skin,
        &sys.charges,
        [1, 1, 1],
        spread_tile::tile_words(&ctx.limits),
    )
    .expect("a block of one cell fits");
    assert_eq!(sim.set_spread_tile(one).unwrap(), SpreadMode::Tiled);
    let mut crossed = 0;
    let (mut worst_f, mut worst_e) = (0.0f64, 0.0f64);
    let mut last = sys.positions.clone();
    for step in 1..=160 {
        sim.advance(1, false).unwrap();
        sys.positions = sim.positions().unwrap();
        // Steps on which an atom came through a face (its coordinate jumped by ~L).
        crossed += sys
            .positions
            .iter()
            .zip(&last)
            .any(|(p, q)| (0..3).any(|a| (p[a] - q[a]).abs() > 0.5 * sys.box_lengths[a]))
            as u32;
        last = sys.positions.clone();
        let r = coulomb::reference(&sys, &table, &cs);
        let (f, _) = sim.forces().unwrap();
        let e = force_error(&f, &r.forces);
        assert!(e < 2e-5, "step {step}: force error {e:.2e}");
        // The reciprocal energy sees one misplaced point of one atom (the forces barely do).
        let t = sim.energy_terms().unwrap();
        let de = rel(t.coulomb_reciprocal.unwrap(), r.coulomb_reciprocal);
        assert!(de < 1e-5, "step {step}: reciprocal energy off by {de:.2e}");
        (worst_f, worst_e) = (worst_f.max(e), worst_e.max(de));
    }
    eprintln!(
        "{crossed} of 160 steps had atoms crossing a face; worst force error {worst_f:.2e}, \
         reciprocal energy {worst_e:.2e}"
    );
    assert!(
        crossed >= 30,
        "only {crossed} steps with atoms crossing a face"
    );
}

#[test]
fn split_rows_count_the_shell_entries_that_come_inside() {
    // Split rows keep the skin's shell at the back of each row and compute only its entries
    // that are inside the cutoff now. Methods whose force goes to zero at the cutoff (so that
    // pairs crossing it between checks do not make f32 and float64 disagree) but not before:
    // a dropped shell entry at 0.9 rc costs a third of its full-strength pair force.
    let ctx = ctx();
    let seed = fresh_seed("split_shell");
    let (rc, skin) = (5.0, 2.0);
    for (k, method) in [
        CoulombMethod::ReactionField {
            epsilon_rf: f64::INFINITY,
        },
        CoulombMethod::Dsf { alpha: 0.3 },
    ]
    .into_iter()
    .enumerate()
    {
        let (mut sys, excl) = fast_charged_605(seed + 31 * k as u64, rc);
        let lj = two_types_lj(rc - 0.5, true);
        let table = LjTable::new(&lj).unwrap();
        let cs = unit_coulomb(method, rc, excl);
        let mut sim = split_rows_sim(&ctx, &sys, lj, &cs, skin);
        // Pairs inside the cutoff now that were in a row's shell at its build (at least).
        let mut came_in = 0usize;
        let mut worst = 0.0f64;
        for step in 1..=40 {
            sim.advance(3, false).unwrap();
            sys.positions = sim.positions().unwrap();
            let r = coulomb::reference(&sys, &table, &cs);
            let (f, _) = sim.forces().unwrap();
            let e = force_error(&f, &r.forces);
            assert!(
                e < 2e-5,
                "{:?} step {}: force error {e:.2e}",
                cs.method,
                3 * step
            );
            worst = worst.max(e);
            let inner = sim.neighbor_inner_counts().unwrap().expect("split rows");
            let now = wgmd::neighbor::brute_force(&sys, rc);
            let shell: usize = (0..sys.len())
                .map(|i| now[i].len().saturating_sub(inner[i] as usize))
                .sum();
            came_in = came_in.max(shell);
        }
        eprintln!(
            "{:?}: worst force error {worst:.2e}; up to {came_in} shell pairs inside the cutoff",
            cs.method
        );
        assert!(
            came_in >= 20,
            "only {came_in} shell pairs came inside the cutoff"
        );
    }
}

/// f32 tolerance 2e-6 of each term: the GPU's f32 pair sums with f32-rounded k and charges
/// (~1e-7 systematic) land near 1e-6 of each term (measured: at most 8e-7).
#[test]
fn nist_spce_on_the_gpu() {
    let ctx = ctx();
    let r = reference();
    for (k, c) in r["nist_spce_10A"]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let spec = preset_spec(&format!("nist_spce_{}.toml", k + 1));
        let table = LjTable::new(&spec.lj).unwrap();
        let mut sys32 = as_f32(spec.system.clone());
        sys32.charges = spec.system.charges.clone();
        let reference = coulomb::reference(&sys32, &table, coulomb(&spec));
        let mut sim = Simulation::new(ctx.clone(), spec).unwrap();
        sim.poison_and_recompute().unwrap();
        let t = sim.energy_terms().unwrap();
        let kel = |e: f64| e / KB_EV_PER_K;
        let got = [
            ("E_disp", kel(t.lj.unwrap())),
            ("E_LRC", kel(t.lj_tail)),
            ("E_real", kel(t.coulomb_real.unwrap())),
            ("E_fourier", kel(t.coulomb_reciprocal.unwrap())),
            (
                "E_self_plus_intra",
                kel(t.coulomb_self.unwrap() + t.coulomb_exclusion.unwrap()),
            ),
            ("E_total", kel(t.total())),
        ];
        // E_self_plus_intra cancels the host's float64 self term (-2.8e6 K) against the
        // GPU's f32 exclusion sum (+2.8e6 K) down to -3.5e4 K: its error budget is 2e-6 of
        // E_intra (f32 parameters k, q alone are rounded by ~6e-8 each), not of the difference.
        let intra = kel(t.coulomb_exclusion.unwrap()).abs();
        for (name, v) in got {
            let want = c[name].as_f64().unwrap();
            let scale = if name == "E_self_plus_intra" {
                intra
            } else {
                want.abs()
            };
            eprintln!(
                "GPU config {}: {name} = {v:.4} K (NIST {want}, rel {:.1e}, of scale {:.1e})",
                k + 1,
                rel(v, want),
                (v - want).abs() / scale
            );
            assert!(
                (v - want).abs() < 2e-6 * scale,
                "config {}: {name} = {v}, NIST {want}",
                k + 1
            );
        }
        let (f, _) = sim.forces().unwrap();
        let ef = force_error(&f, &reference.forces);
        eprintln!("GPU config {}: force error vs float64 {ef:.2e}", k + 1);
        assert!(ef < 1e-5);
    }
}

#[test]
fn madelung_constant_on_the_gpu() {
    let ctx = ctx();
    let m = reference()["madelung_rock_salt"]["value"].as_f64().unwrap();
    let sys = coulomb::rock_salt([6; 3], 1.0, ["Na", "Cl"], [1.0, 1.0]);
    let cs = CoulombSpec {
        method: CoulombMethod::Ewald {
            alpha: 2.0,
            kmax: [14; 3],
            k2max: None,
        },
        cutoff: 3.0,
        coulomb_k: 1.0,
        exclusions: vec![],
        neutralize: false,
    };
    let mut sim = Simulation::new(ctx, sim_spec(sys.clone(), LjSpec::off(2, 3.0), cs)).unwrap();
    let t = sim.energy_terms().unwrap();
    let per_pair = t.total() / (sys.len() as f64 / 2.0);
    eprintln!("GPU Madelung {per_pair:.9} (rel {:.1e})", rel(-per_pair, m));
    assert!(rel(-per_pair, m) < 1e-6);
    let th = sim.thermo().unwrap();
    assert!(rel(-th.potential_energy / 108.0, m) < 1e-6);
}

/// The steps that compute no energy take LJ + Ewald real space in one expression where every
/// type has one charge and the LJ cutoff is the Coulomb one (coulomb.wgsl's `lj_ewald_force`):
/// jittered rock salt with Joung–Cheatham LJ, PME and Ewald, each of a few steps' forces
/// against the float64 reference at that step's positions.
#[test]
fn lj_ewald_force_of_energy_free_steps_matches_reference() {
    use rand::{Rng, SeedableRng};
    let ctx = ctx();
    let (mut sys, rc) = molten_nacl_216();
    let seed = fresh_seed("lj_ewald");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    for p in sys.positions.iter_mut() {
        for (a, x) in p.iter_mut().enumerate() {
            *x = (*x + 0.6 * (rng.random::<f64>() - 0.5)).rem_euclid(sys.box_lengths[a]);
        }
    }
    sys.maxwell_boltzmann(1200.0, seed, Units::Physical);
    let sys = as_f32(sys);
    let lj = joung_cheatham_nacl(rc, false);
    let table = LjTable::new(&lj).unwrap();
    let tol = 1e-5;
    let alpha = coulomb::ewald_alpha_for(rc, tol);
    let pme = wgmd::forces::pme::PmeParams::from_tolerance(sys.box_lengths, rc, tol).unwrap();
    for method in [
        CoulombMethod::Pme(pme),
        CoulombMethod::Ewald {
            alpha,
            kmax: coulomb::kmax_for(sys.box_lengths, alpha, tol),
            k2max: None,
        },
    ] {
        let cs = CoulombSpec {
            method: method.clone(),
            cutoff: rc,
            coulomb_k: coulomb::COULOMB_K_EV_A,
            exclusions: vec![],
            neutralize: false,
        };
        let mut spec = sim_spec(sys.clone(), lj.clone(), cs.clone());
        spec.units = Units::Physical;
        spec.integrator.dt = 1.0;
        let mut sim = Simulation::new(ctx.clone(), spec).unwrap();
        let mut s = sys.clone();
        for step in 1..=4 {
            sim.advance(1, false).unwrap();
            s.positions = sim.positions().unwrap();
            let r = coulomb::reference(&s, &table, &cs);
            // The step's own forces (with energies: the last step of a batch), then the same
            // positions' without.
            let (f_energy, _) = sim.forces().unwrap();
            sim.recompute_forces_without_energy().unwrap();
            let (f, _) = sim.forces().unwrap();
            let e = force_error(&f, &r.forces);
            eprintln!("{method:?} step {step}: force error {e:.2e}");
            assert!(e < 2e-5, "{method:?} step {step}: force error {e:.2e}");
            assert!(
                force_error(&f_energy, &r.forces) < 2e-5,
                "{method:?} step {step}"
            );
            assert!(force_error(&f, &f_energy) < 2e-6, "{method:?} step {step}");
        }
    }
}

/// Molten NaCl (216 ions, Joung–Cheatham LJ + Ewald) in NVE: the total energy stays within
/// 2e-4 of the kinetic energy scale over 1 ps (dt 1 fs) — with the defaults at this size, with
/// the list rebuilt by pairs (the default for Coulomb from 131,072 atoms), and with that and
/// split rows (one thread per atom).
#[test]
fn molten_nacl_nve_conserves_energy_with_ewald() {
    for (split, pairs) in [(false, false), (false, true), (true, true)] {
        nacl_nve_ewald(split, pairs);
    }
}

fn nacl_nve_ewald(split: bool, pairs: bool) {
    let ctx = ctx();
    let (mut sys, rc) = molten_nacl_216();
    sys.maxwell_boltzmann(1200.0, fresh_seed("nacl_nve"), Units::Physical);
    let tol = 1e-5;
    let alpha = coulomb::ewald_alpha_for(rc, tol);
    let ewald = CoulombMethod::Ewald {
        alpha,
        kmax: coulomb::kmax_for(sys.box_lengths, alpha, tol),
        k2max: None,
    };
    let mut sim = Simulation::new(ctx, nacl_spec(sys, rc, Some(ewald), 1.0)).unwrap();
    if split {
        sim.set_neighbor_build(1, ListLayout::BySlotSplit).unwrap();
    }
    sim.set_rebuild_by_pairs(pairs).unwrap();
    let e0 = sim.thermo().unwrap();
    let mut worst: f64 = 0.0;
    for _ in 0..10 {
        let th = sim.advance(100, true).unwrap().unwrap();
        worst = worst.max((th.conserved_energy - e0.conserved_energy).abs());
    }
    let scale = e0.kinetic_energy;
    eprintln!(
        "NaCl NVE (split rows {split}, rebuilds by pairs {pairs}): worst |dE| {worst:.3e} eV, \
         KE {scale:.3} eV, ratio {:.2e}, {} builds",
        worst / scale,
        sim.stats().neighbor_builds
    );
    assert!(worst / scale < 2e-4, "{worst} vs KE {scale}");
}

/// Which rule rebuilds the list by default (`engine::default_rebuild_by_pairs`): by pairs for
/// Coulomb systems from 131,072 atoms while opportunities come at every step — measured faster
/// there on an H200 (BENCHMARKS.md, eighteenth session) and slower with opportunities every 4
/// steps — else by the largest displacement; a choice made with `set_rebuild_by_pairs` stands.
/// Molten NaCl with a reaction field cut at 5 Å keeps the 140,608-ion list within lavapipe's
/// buffer limit; two steps show the default runs.
#[test]
fn rebuilds_by_pairs_are_the_default_for_large_coulomb_systems_only() {
    assert!(
        std::env::var_os("WGMD_PAIR_REBUILD").is_none(),
        "this test checks the defaults: unset WGMD_PAIR_REBUILD"
    );
    let spec = |ions: usize, charged: bool| {
        let mut system = molten_nacl(ions);
        system.maxwell_boltzmann(1200.0, fresh_seed("pair_default"), Units::Physical);
        let rf = CoulombMethod::ReactionField {
            epsilon_rf: f64::INFINITY,
        };
        nacl_spec(system, 5.0, charged.then_some(rf), 2.0)
    };
    let ctx = ctx();
    let mut large = Simulation::new(ctx.clone(), spec(52, true)).unwrap();
    assert!(large.rebuilds_by_pairs(), "140,608 ions with Coulomb");
    let th = large.advance(2, true).unwrap().unwrap();
    assert!(th.potential_energy.is_finite());
    large.set_check_every(Some(4)).unwrap();
    assert!(!large.rebuilds_by_pairs(), "opportunities every 4 steps");
    large.set_check_every(None).unwrap();
    assert!(!large.rebuilds_by_pairs(), "adaptive opportunities");
    large.set_check_every(Some(1)).unwrap();
    assert!(
        large.rebuilds_by_pairs(),
        "opportunities at every step again"
    );
    large.set_rebuild_by_pairs(false).unwrap();
    large.set_check_every(Some(1)).unwrap();
    assert!(!large.rebuilds_by_pairs(), "a choice stands");
    drop(large);
    let lj_only = Simulation::new(ctx.clone(), spec(52, false)).unwrap();
    assert!(
        !lj_only.rebuilds_by_pairs(),
        "LJ only: not measured, not the default"
    );
    drop(lj_only);
    let mut small = Simulation::new(ctx, spec(32, true)).unwrap();
    assert!(!small.rebuilds_by_pairs(), "32,768 ions");
    small.set_check_every(Some(1)).unwrap();
    assert!(
        !small.rebuilds_by_pairs(),
        "32,768 ions, opportunities at every step"
    );
}
