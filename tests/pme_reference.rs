//! The float64 smooth-PME reference against a direct Ewald k-sum written here, against
//! external lattice sums (rock-salt Madelung constant, Wigner simple-cubic constant, a
//! published two-charge Ewald result) and against finite differences of its own energy.

use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::f64::consts::PI;
use wgmd::forces::pme::{reference, PmeParams};

fn fresh_seed(tag: &str) -> u64 {
    let seed = std::env::var("WGMD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("{tag}: seed {seed}");
    seed
}

fn refs() -> Value {
    serde_json::from_str(include_str!("data/pme/reference_values.json")).unwrap()
}

/// erfc to ~1e-15 absolute: Taylor series of erf below 2.5, continued fraction above.
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 {
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term.abs() > 1e-18 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        1.0 - 2.0 / PI.sqrt() * sum
    } else {
        let mut t = x;
        for k in (1..=80).rev() {
            t = x + (k as f64 / 2.0) / t;
        }
        (-x * x).exp() / (PI.sqrt() * t)
    }
}

/// Direct Ewald reciprocal sum over |m| ≤ 6.2 α / π (every term above 1e-16 of the
/// largest), tin-foil, with the same neutralising background as the PME reference.
fn ewald_recip(
    pos: &[[f64; 3]],
    q: &[f64],
    l: [f64; 3],
    alpha: f64,
    k: f64,
) -> (f64, Vec<[f64; 3]>, [f64; 6]) {
    let n = pos.len();
    let v = l[0] * l[1] * l[2];
    let mmax = 6.2 * alpha / PI;
    let kmax = [0, 1, 2].map(|a| (mmax * l[a]).ceil() as i64);
    // e^{2πi m_a x_a / L_a} for every atom, axis and m_a in [-kmax, kmax].
    let phase = |a: usize, i: usize, m: i64| {
        let t = 2.0 * PI * m as f64 * pos[i][a] / l[a];
        [t.cos(), t.sin()]
    };
    let tabs: Vec<Vec<Vec<[f64; 2]>>> = (0..3)
        .map(|a| {
            (0..n)
                .map(|i| (-kmax[a]..=kmax[a]).map(|m| phase(a, i, m)).collect())
                .collect()
        })
        .collect();
    let cm = |x: [f64; 2], y: [f64; 2]| [x[0] * y[0] - x[1] * y[1], x[0] * y[1] + x[1] * y[0]];
    let mut e = 0.0;
    let mut f = vec![[0.0; 3]; n];
    let mut w = [0.0; 6];
    let mut ph = vec![[0.0; 2]; n];
    for mx in -kmax[0]..=kmax[0] {
        for my in -kmax[1]..=kmax[1] {
            for mz in -kmax[2]..=kmax[2] {
                if mx == 0 && my == 0 && mz == 0 {
                    continue;
                }
                let m = [mx as f64 / l[0], my as f64 / l[1], mz as f64 / l[2]];
                let m2 = m[0] * m[0] + m[1] * m[1] + m[2] * m[2];
                if m2 > mmax * mmax {
                    continue;
                }
                let g = (-PI * PI * m2 / (alpha * alpha)).exp() / m2;
                let mut s = [0.0; 2];
                for i in 0..n {
                    let p = cm(
                        cm(
                            tabs[0][i][(mx + kmax[0]) as usize],
                            tabs[1][i][(my + kmax[1]) as usize],
                        ),
                        tabs[2][i][(mz + kmax[2]) as usize],
                    );
                    ph[i] = p;
                    s[0] += q[i] * p[0];
                    s[1] += q[i] * p[1];
                }
                let em = k / (2.0 * PI * v) * g * (s[0] * s[0] + s[1] * s[1]);
                e += em;
                let c = 2.0 * (1.0 + PI * PI * m2 / (alpha * alpha)) / m2;
                let pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)];
                for (t, &(a, b)) in pairs.iter().enumerate() {
                    w[t] += em * (if a == b { 1.0 } else { 0.0 } - c * m[a] * m[b]);
                }
                for i in 0..n {
                    // F_i = (2 k q_i / V) g m (S_re sin θ_i − S_im cos θ_i)
                    let s_ = 2.0 * k * q[i] / v * g * (s[0] * ph[i][1] - s[1] * ph[i][0]);
                    for a in 0..3 {
                        f[i][a] += s_ * m[a];
                    }
                }
            }
        }
    }
    let qn: f64 = q.iter().sum();
    let ebg = -k * PI * qn * qn / (2.0 * v * alpha * alpha);
    e += ebg;
    for c in w.iter_mut().take(3) {
        *c += ebg;
    }
    (e, f, w)
}

/// Real-space Ewald sum over periodic images with r < rc (energy, forces), excluding only
/// the i = j, n = 0 term.
fn ewald_real(
    pos: &[[f64; 3]],
    q: &[f64],
    l: [f64; 3],
    alpha: f64,
    k: f64,
    rc: f64,
) -> (f64, Vec<[f64; 3]>) {
    let n = pos.len();
    let nim = [0, 1, 2].map(|a| (rc / l[a]).ceil() as i64 + 1);
    let mut e = 0.0;
    let mut f = vec![[0.0; 3]; n];
    for i in 0..n {
        for j in 0..n {
            for ix in -nim[0]..=nim[0] {
                for iy in -nim[1]..=nim[1] {
                    for iz in -nim[2]..=nim[2] {
                        if i == j && ix == 0 && iy == 0 && iz == 0 {
                            continue;
                        }
                        let d = [
                            pos[i][0] - pos[j][0] + ix as f64 * l[0],
                            pos[i][1] - pos[j][1] + iy as f64 * l[1],
                            pos[i][2] - pos[j][2] + iz as f64 * l[2],
                        ];
                        let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                        if r >= rc {
                            continue;
                        }
                        let qq = k * q[i] * q[j];
                        e += 0.5 * qq * erfc(alpha * r) / r;
                        let fr = qq
                            * (erfc(alpha * r) / r
                                + 2.0 * alpha / PI.sqrt() * (-alpha * alpha * r * r).exp())
                            / (r * r);
                        for a in 0..3 {
                            f[i][a] += fr * d[a];
                        }
                    }
                }
            }
        }
    }
    (e, f)
}

fn self_energy(q: &[f64], alpha: f64, k: f64) -> f64 {
    -k * alpha / PI.sqrt() * q.iter().map(|x| x * x).sum::<f64>()
}

/// `n` ions (alternating ±1 or random neutral charges) at least `dmin` apart.
fn random_ions(
    n: usize,
    l: [f64; 3],
    dmin: f64,
    rng: &mut impl Rng,
    unit: bool,
) -> (Vec<[f64; 3]>, Vec<f64>) {
    let mut pos: Vec<[f64; 3]> = Vec::new();
    while pos.len() < n {
        let p = [0, 1, 2].map(|a| rng.random::<f64>() * l[a]);
        let ok = pos.iter().all(|x| {
            let mut r2 = 0.0;
            for a in 0..3 {
                let d = p[a] - x[a];
                let d = d - l[a] * (d / l[a]).round();
                r2 += d * d;
            }
            r2 >= dmin * dmin
        });
        if ok {
            pos.push(p);
        }
    }
    let mut q: Vec<f64> = if unit {
        (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect()
    } else {
        (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
    };
    let mean = q.iter().sum::<f64>() / n as f64;
    q.iter_mut().for_each(|x| *x -= mean);
    (pos, q)
}

fn rms(f: &[[f64; 3]]) -> f64 {
    (f.iter()
        .map(|v| v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
        .sum::<f64>()
        / f.len() as f64)
        .sqrt()
}

fn rms_diff(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    let d: Vec<[f64; 3]> = a
        .iter()
        .zip(b)
        .map(|(x, y)| [x[0] - y[0], x[1] - y[1], x[2] - y[2]])
        .collect();
    rms(&d)
}

const KE: f64 = 14.399645;

#[test]
fn erfc_matches_tabulated_values() {
    // Abramowitz & Stegun / mpmath values.
    for (x, want) in [
        (0.5, 0.4795001221869535),
        (1.0, 0.15729920705028513),
        (2.5, 4.069520174449590e-4),
        (3.0, 2.209049699858544e-5),
        (6.0, 2.151973671249892e-17),
    ] {
        let got = erfc(x);
        assert!(
            ((got - want) / want).abs() < 1e-12,
            "erfc({x}) = {got}, want {want}"
        );
    }
}

/// OpenMM defines ewaldErrorTolerance as the relative error of the forces: PME's reciprocal
/// forces are compared with the exact Ewald ones, relative to the total Coulomb force.
#[test]
fn pme_matches_direct_ewald_within_requested_tolerance() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(fresh_seed("pme_vs_ewald"));
    let l = [20.0, 23.0, 18.5];
    let cutoff = 8.0;
    for (tol, unit) in [(5e-4, true), (1e-5, false)] {
        let (pos, q) = random_ions(150, l, 2.0, &mut rng, unit);
        let p = PmeParams::from_tolerance(l, cutoff, tol).unwrap();
        let (e_pme, f_pme, w_pme) = reference::reciprocal(&pos, &q, l, &p, KE);
        let (e_ew, f_ew, w_ew) = ewald_recip(&pos, &q, l, p.alpha, KE);
        let (_, f_real) = ewald_real(&pos, &q, l, p.alpha, KE, cutoff);
        let f_total: Vec<[f64; 3]> = f_ew
            .iter()
            .zip(&f_real)
            .map(|(a, b)| [a[0] + b[0], a[1] + b[1], a[2] + b[2]])
            .collect();
        let ferr = rms_diff(&f_pme, &f_ew) / rms(&f_total);
        let eerr = (e_pme - e_ew).abs() / e_ew.abs();
        let werr = (0..6)
            .map(|c| (w_pme[c] - w_ew[c]).abs())
            .fold(0.0, f64::max)
            / e_ew.abs();
        eprintln!(
            "tol {tol:e}: alpha {:.4}, grid {:?}: force error {ferr:.2e}, energy {eerr:.2e}, \
             virial {werr:.2e}",
            p.alpha, p.grid
        );
        assert!(ferr <= tol, "relative force error {ferr} > tolerance {tol}");
        assert!(
            eerr <= tol,
            "relative energy error {eerr} > tolerance {tol}"
        );
        assert!(
            werr <= tol,
            "relative virial error {werr} > tolerance {tol}"
        );
    }
}

#[test]
fn pme_converges_to_ewald_with_grid_and_order() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(fresh_seed("pme_convergence"));
    let l = [15.0, 17.0, 16.0];
    let (pos, q) = random_ions(80, l, 1.8, &mut rng, false);
    let alpha = 0.35;
    let (_, f_ew, _) = ewald_recip(&pos, &q, l, alpha, KE);
    let err = |grid: [u32; 3], order: u32| {
        let p = PmeParams { alpha, grid, order };
        let (_, f, _) = reference::reciprocal(&pos, &q, l, &p, KE);
        rms_diff(&f, &f_ew) / rms(&f_ew)
    };
    let mut last = f64::INFINITY;
    for order in 4..=6 {
        let e = err([16, 18, 16], order);
        eprintln!("order {order}, grid 16x18x16: {e:.2e}");
        assert!(e < last, "error did not fall with the order");
        last = e;
    }
    let mut last = f64::INFINITY;
    for grid in [[12, 12, 12], [16, 18, 16], [24, 27, 25], [36, 40, 36]] {
        let e = err(grid, 5);
        eprintln!("order 5, grid {grid:?}: {e:.2e}");
        assert!(e < 0.5 * last, "error did not fall with the grid");
        last = e;
    }
    // Order-p splines interpolate forces to O(h^(p-1)): a grid 36/16 times finer must cut
    // the order-5 error by at least (36/16)^4 ≈ 25.
    let coarse = err([16, 18, 16], 5);
    assert!(
        last < coarse / (36.0f64 / 16.0).powi(4),
        "order-5 error fell from {coarse} only to {last}"
    );
}

#[test]
fn forces_and_virial_match_finite_differences() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(fresh_seed("pme_fd"));
    let l = [14.0, 15.0, 13.0];
    let (pos, q) = random_ions(40, l, 1.8, &mut rng, false);
    for (order, grid) in [(4, [16, 15, 14]), (5, [18, 20, 16]), (6, [15, 16, 14])] {
        let p = PmeParams {
            alpha: 0.4,
            grid,
            order,
        };
        let (_, f, w) = reference::reciprocal(&pos, &q, l, &p, KE);
        let scale = rms(&f);
        let h = 1e-5;
        for i in [0, 7, 23, 39] {
            for a in 0..3 {
                let mut pp = pos.clone();
                pp[i][a] += h;
                let ep = reference::reciprocal(&pp, &q, l, &p, KE).0;
                pp[i][a] -= 2.0 * h;
                let em = reference::reciprocal(&pp, &q, l, &p, KE).0;
                let fd = -(ep - em) / (2.0 * h);
                assert!(
                    (fd - f[i][a]).abs() < 1e-6 * scale,
                    "order {order} atom {i} axis {a}: analytic {} vs FD {fd}",
                    f[i][a]
                );
            }
        }
        // W_aa = −dE/dε_aa under a uniaxial strain (box and positions scaled, grid fixed).
        let e_of = |a: usize, eps: f64| {
            let mut ll = l;
            ll[a] *= 1.0 + eps;
            let pp: Vec<[f64; 3]> = pos
                .iter()
                .map(|x| {
                    let mut y = *x;
                    y[a] *= 1.0 + eps;
                    y
                })
                .collect();
            reference::reciprocal(&pp, &q, ll, &p, KE).0
        };
        let e0 = reference::reciprocal(&pos, &q, l, &p, KE).0;
        for a in 0..3 {
            let fd = -(e_of(a, h) - e_of(a, -h)) / (2.0 * h);
            assert!(
                (fd - w[a]).abs() < 1e-6 * e0.abs(),
                "order {order} W[{a}{a}]: analytic {} vs FD {fd}",
                w[a]
            );
        }
    }
}

#[test]
fn rock_salt_madelung_constant() {
    let m_ref = refs()["madelung_rock_salt"]["value"].as_f64().unwrap();
    let mut pos = Vec::new();
    let mut q = Vec::new();
    for x in 0..2 {
        for y in 0..2 {
            for z in 0..2 {
                pos.push([x as f64, y as f64, z as f64]);
                q.push(if (x + y + z) % 2 == 0 { 1.0 } else { -1.0 });
            }
        }
    }
    let l = [2.0; 3];
    let alpha = 2.0;
    let (e_real, _) = ewald_real(&pos, &q, l, alpha, 1.0, 4.0);
    let e_self = self_energy(&q, alpha, 1.0);
    let mut last = f64::INFINITY;
    for (grid, order) in [(8u32, 4u32), (16, 5), (32, 6)] {
        let p = PmeParams {
            alpha,
            grid: [grid; 3],
            order,
        };
        let (e_rec, f, _) = reference::reciprocal(&pos, &q, l, &p, 1.0);
        let per_pair = (e_real + e_rec + e_self) / 4.0;
        let err = (per_pair + m_ref).abs() / m_ref;
        eprintln!("grid {grid}, order {order}: E per ion pair {per_pair:.15} (error {err:.1e})");
        // Falls with grid and order until it reaches float64 rounding.
        assert!(err < last || err < 1e-13, "error grew: {err} after {last}");
        last = err;
        // Every ion sits at a centre of symmetry: no net reciprocal force.
        assert!(rms(&f) < 1e-9, "rock salt forces {}", rms(&f));
    }
    assert!(last < 1e-9, "PME Madelung error {last}");
}

#[test]
fn two_charge_reference() {
    let r = &refs()["two_charge_ewald"];
    let e_ref = r["E_over_ke"].as_f64().unwrap();
    let f_ref = r["Fx_over_ke"].as_f64().unwrap();
    let pos = vec![[5.5, 5.0, 5.0], [4.5, 5.0, 5.0]];
    let q = vec![1.0, -1.0];
    let l = [10.0; 3];
    let alpha = 0.8;
    // Grid fine enough that PME's own error (~1e-7 at 64³) is below the reference's digits.
    let p = PmeParams {
        alpha,
        grid: [96; 3],
        order: 6,
    };
    let (e_rec, f_rec, _) = reference::reciprocal(&pos, &q, l, &p, 1.0);
    let (e_real, f_real) = ewald_real(&pos, &q, l, alpha, 1.0, 9.9);
    let e = e_rec + e_real + self_energy(&q, alpha, 1.0);
    let fx = f_rec[0][0] + f_real[0][0];
    eprintln!("two charges: E {e:.9} (ref {e_ref}), Fx {fx:.9} (ref {f_ref})");
    // The reference is given to 8 significant digits.
    assert!((e - e_ref).abs() < 1e-7, "E {e} vs {e_ref}");
    assert!((fx - f_ref).abs() < 1e-7, "Fx {fx} vs {f_ref}");
    assert!((f_rec[0][0] + f_rec[1][0]).abs() < 1e-10);
}

#[test]
fn single_charge_background_matches_wigner_constant() {
    let xi = refs()["wigner_simple_cubic"]["value"].as_f64().unwrap();
    let l = [7.0; 3];
    let pos = vec![[1.3, 2.9, 4.4]];
    let q = vec![0.8];
    // A small alpha and a fine grid keep PME's discretisation error (~(alpha h)^6) below 1e-9.
    let alpha = 0.6;
    let p = PmeParams {
        alpha,
        grid: [64; 3],
        order: 6,
    };
    let (e_rec, _, w) = reference::reciprocal(&pos, &q, l, &p, KE);
    let (e_real, _) = ewald_real(&pos, &q, l, alpha, KE, 7.0 * 1.7);
    let e = e_rec + e_real + self_energy(&q, alpha, KE);
    let want = -xi * KE * q[0] * q[0] / (2.0 * l[0]);
    eprintln!("one charge: E {e:.12}, Wigner {want:.12}");
    assert!(((e - want) / want).abs() < 1e-9);
    // Direct Ewald with the same background term agrees on the energy.
    let (e_ew, _, _) = ewald_recip(&pos, &q, l, alpha, KE);
    assert!(((e_rec - e_ew) / e_ew).abs() < 1e-9);
    // The background's virial: W_aa = −dE/dε_aa of the (non-neutral) PME energy.
    let h = 1e-5;
    for a in 0..3 {
        let e_at = |eps: f64| {
            let mut ll = l;
            ll[a] *= 1.0 + eps;
            let mut pp = pos.clone();
            pp[0][a] *= 1.0 + eps;
            reference::reciprocal(&pp, &q, ll, &p, KE).0
        };
        let fd = -(e_at(h) - e_at(-h)) / (2.0 * h);
        assert!(
            (fd - w[a]).abs() < 1e-7 * e_rec.abs(),
            "W[{a}{a}] {} vs FD {fd}",
            w[a]
        );
    }
}
