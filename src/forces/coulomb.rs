//! Coulomb interactions (driver of `shaders/coulomb.wgsl` and `shaders/ewald.wgsl`).
//!
//! Methods (pair energies for qq = k·q_i·q_j, r < r_c; k = `coulomb_k`, energy·length/e²):
//! - `Cutoff`: qq/r, plainly truncated.
//! - `ReactionField { epsilon_rf }`: qq(1/r + k_rf r² − c_rf), k_rf = (ε_rf−1)/((2ε_rf+1) r_c³),
//!   c_rf = 1/r_c + k_rf r_c² (ε_rf = ∞: conducting surroundings, k_rf = 1/(2 r_c³)).
//! - `Dsf { alpha }`: damped shifted force (Fennell & Gezelter, J. Chem. Phys. 124, 234104
//!   (2006), eq. 19): energy and force both vanish at r_c; self term
//!   −k(erfc(α r_c)/(2 r_c) + α/√π) Σ q².
//! - `Ewald { alpha, kmax, k2max }`: real space qq·erfc(αr)/r; reciprocal space
//!   (2πk/V) Σ_{k≠0} exp(−k²/4α²)/k² |S(k)|², S(k) = Σ q_j exp(i k·r_j), over wave vectors
//!   k = 2π(n_x/L_x, n_y/L_y, n_z/L_z) with |n_a| ≤ kmax_a (and Σ n_a² < k2max when given, the
//!   NIST convention); tin-foil boundary; self term −kα/√π Σ q².
//! - `Pme`: real space as Ewald; reciprocal space from [`crate::forces::pme`].
//!
//! Excluded pairs (intramolecular, from [`CoulombSpec::exclusions`]) are skipped in real
//! space (Coulomb and LJ). For Ewald and PME, whose reciprocal sum includes every pair, the
//! excluded-pair correction −k q_i q_j erf(α r)/r removes them again. Cutoff, reaction field
//! and DSF simply skip them (no correction).
//!
//! A net charge Q with Ewald/PME is an error unless `neutralize` is set; then the uniform
//! neutralising background adds −πkQ²/(2α²V) (virial 3× that: it scales as 1/V).
//!
//! Virials follow W = Σ r·F (the pressure is (2 KE + W)/(3V)); the reciprocal virial tensor
//! is W_ab = Σ_k C A_k |S|² (δ_ab − 2 k_a k_b (1/k² + 1/(4α²))).

use std::collections::HashSet;
use std::f64::consts::PI;

use anyhow::{bail, Result};
use bytemuck::{Pod, Zeroable};

use crate::forces::coulomb_spread::{FusionBinds, SpreadFusion};
use crate::forces::lj::LjTable;
use crate::forces::pme::PmeForce;
use crate::forces::spread_tile::TilePlan;
use crate::gpu::{self, GpuContext, Kernel, ShaderModule};
use crate::neighbor::ListLayout;
use crate::system::System;

/// Coulomb constant e²/(4πε₀) in eV·Å (CODATA 2018).
pub const COULOMB_K_EV_A: f64 = 14.399_645_478_4;

/// The Coulomb method and its parameters (resolved: no "choose for me" left).
#[derive(Clone, Debug, PartialEq)]
pub enum CoulombMethod {
    Cutoff,
    ReactionField {
        /// Dielectric constant beyond the cutoff; `f64::INFINITY` = conducting.
        epsilon_rf: f64,
    },
    Dsf {
        alpha: f64,
    },
    Ewald {
        alpha: f64,
        kmax: [u32; 3],
        /// Keep only wave vectors with n_x² + n_y² + n_z² < k2max (None: the full box of n).
        k2max: Option<u32>,
    },
    Pme(PmeChoice),
}

/// PME parameters (α, grid, order) as the Coulomb spec carries them: the pme module's type.
pub type PmeChoice = crate::forces::pme::PmeParams;

impl CoulombMethod {
    pub fn name(&self) -> &'static str {
        match self {
            CoulombMethod::Cutoff => "cutoff",
            CoulombMethod::ReactionField { .. } => "reaction-field",
            CoulombMethod::Dsf { .. } => "dsf",
            CoulombMethod::Ewald { .. } => "ewald",
            CoulombMethod::Pme(_) => "pme",
        }
    }
    /// The Ewald splitting parameter of Ewald/PME (None for the pure real-space methods).
    pub fn ewald_alpha(&self) -> Option<f64> {
        match self {
            CoulombMethod::Ewald { alpha, .. } => Some(*alpha),
            CoulombMethod::Pme(p) => Some(p.alpha),
            _ => None,
        }
    }
    /// GPU code of the real-space pair function (`METHOD` in coulomb.wgsl).
    fn gpu_code(&self) -> u32 {
        match self {
            CoulombMethod::Cutoff => 1,
            CoulombMethod::ReactionField { .. } => 2,
            CoulombMethod::Dsf { .. } => 3,
            CoulombMethod::Ewald { .. } | CoulombMethod::Pme(_) => 4,
        }
    }
}

/// Everything the Coulomb term needs besides the System's charges.
#[derive(Clone, Debug, PartialEq)]
pub struct CoulombSpec {
    pub method: CoulombMethod,
    /// Real-space cutoff (length units).
    pub cutoff: f64,
    /// e²/(4πε₀) in the config's units (14.3996… eV·Å/e² in physical units).
    pub coulomb_k: f64,
    /// Excluded pairs (0-based, i < j): no real-space Coulomb or LJ between them.
    pub exclusions: Vec<[u32; 2]>,
    /// Accept a net charge with Ewald/PME by adding a uniform neutralising background.
    pub neutralize: bool,
}

fn check_tolerance(tol: f64) -> Result<()> {
    if !(tol > 0.0 && tol < 0.5) {
        bail!("forces.coulomb.tolerance is {tol}; it must be between 0 and 0.5 (e.g. 5e-4)");
    }
    Ok(())
}

/// OpenMM's Ewald/PME α for ewaldErrorTolerance `tol`: erfc(α r_c) ≈ tol, α = √(−ln(2 tol))/r_c.
pub fn ewald_alpha_for(cutoff: f64, tol: f64) -> f64 {
    (-(2.0 * tol).ln()).sqrt() / cutoff
}

/// Ewald wave-vector range per axis: the smallest n with exp(−(π n/(α L_a))²) ≤ tol.
pub fn kmax_for(box_l: [f64; 3], alpha: f64, tol: f64) -> [u32; 3] {
    box_l.map(|l| ((alpha * l * (-tol.ln()).sqrt() / PI).ceil() as u32).max(1))
}

/// Ewald α and wave-vector range for a requested accuracy (see [`ewald_alpha_for`],
/// [`kmax_for`]).
pub fn ewald_from_tolerance(box_l: [f64; 3], cutoff: f64, tol: f64) -> Result<CoulombMethod> {
    check_tolerance(tol)?;
    let alpha = ewald_alpha_for(cutoff, tol);
    Ok(CoulombMethod::Ewald {
        alpha,
        kmax: kmax_for(box_l, alpha, tol),
        k2max: None,
    })
}

impl CoulombSpec {
    /// One line saying what was chosen (printed by `wgmd run` and `wgmd eval`).
    pub fn describe(&self) -> String {
        let m = match &self.method {
            CoulombMethod::Cutoff => "plain cutoff".to_string(),
            CoulombMethod::ReactionField { epsilon_rf } => {
                format!("reaction field, epsilon_rf = {epsilon_rf}")
            }
            CoulombMethod::Dsf { alpha } => format!("damped shifted force, alpha = {alpha:.6}"),
            CoulombMethod::Ewald { alpha, kmax, k2max } => format!(
                "Ewald, alpha = {alpha:.6}, kmax = {kmax:?}{}",
                k2max.map_or(String::new(), |m| format!(", |n|^2 < {m}"))
            ),
            CoulombMethod::Pme(p) => format!(
                "smooth PME, alpha = {:.6}, grid = {:?}, order = {}",
                p.alpha, p.grid, p.order
            ),
        };
        format!(
            "coulomb: {m}, cutoff = {}, k = {}, {} excluded pairs{}",
            self.cutoff,
            self.coulomb_k,
            self.exclusions.len(),
            if self.neutralize {
                ", neutralising background"
            } else {
                ""
            }
        )
    }
}

/// A rock-salt crystal as a simple-cubic grid of `ions` (per axis, each even for a periodic
/// crystal) with nearest-neighbour spacing `d`: the ion at grid (i, j, k) is the cation
/// (charge +1) when i + j + k is even, else the anion (−1). Grid order i, j, k with k fastest,
/// as the OpenMM anchor script builds it. At rest.
pub fn rock_salt(ions: [usize; 3], d: f64, names: [&str; 2], masses: [f64; 2]) -> System {
    let mut s = System::default();
    let t = [
        s.type_index(names[0], masses[0]),
        s.type_index(names[1], masses[1]),
    ];
    for i in 0..ions[0] {
        for j in 0..ions[1] {
            for k in 0..ions[2] {
                let odd = (i + j + k) % 2;
                s.positions.push([i as f64 * d, j as f64 * d, k as f64 * d]);
                s.types.push(t[odd]);
                s.charges.push(if odd == 0 { 1.0 } else { -1.0 });
            }
        }
    }
    s.velocities = vec![[0.0; 3]; s.positions.len()];
    s.box_lengths = [0, 1, 2].map(|a| ions[a] as f64 * d);
    s
}

/// erfc in float64 (libm: full double precision).
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Real-space pair constants derived once from the spec.
#[derive(Clone, Copy, Debug)]
pub struct RealSpace {
    pub code: u32,
    pub cutoff: f64,
    pub alpha: f64,
    pub krf: f64,
    pub crf: f64,
    /// DSF: erfc(α r_c)/r_c and its force shift erfc(α r_c)/r_c² + 2α/√π·exp(−α² r_c²)/r_c.
    pub dsf_e: f64,
    pub dsf_f: f64,
}

impl RealSpace {
    pub fn new(spec: &CoulombSpec) -> RealSpace {
        let rc = spec.cutoff;
        let mut r = RealSpace {
            code: spec.method.gpu_code(),
            cutoff: rc,
            alpha: 0.0,
            krf: 0.0,
            crf: 0.0,
            dsf_e: 0.0,
            dsf_f: 0.0,
        };
        match &spec.method {
            CoulombMethod::ReactionField { epsilon_rf } => {
                r.krf = if epsilon_rf.is_infinite() {
                    1.0 / (2.0 * rc.powi(3))
                } else {
                    (epsilon_rf - 1.0) / ((2.0 * epsilon_rf + 1.0) * rc.powi(3))
                };
                r.crf = 1.0 / rc + r.krf * rc * rc;
            }
            CoulombMethod::Dsf { alpha } => {
                r.alpha = *alpha;
                r.dsf_e = erfc(alpha * rc) / rc;
                r.dsf_f = erfc(alpha * rc) / (rc * rc)
                    + 2.0 * alpha / PI.sqrt() * (-alpha * alpha * rc * rc).exp() / rc;
            }
            m => r.alpha = m.ewald_alpha().unwrap_or(0.0),
        }
        r
    }

    /// (energy, force/r) per unit qq at distance r < r_c. Twin of `coul_pair` in coulomb.wgsl.
    pub fn pair(&self, r: f64) -> (f64, f64) {
        let a = self.alpha;
        match self.code {
            1 => (1.0 / r, 1.0 / (r * r * r)),
            2 => (
                1.0 / r + self.krf * r * r - self.crf,
                1.0 / (r * r * r) - 2.0 * self.krf,
            ),
            3 => {
                let e = erfc(a * r);
                let g = 2.0 * a / PI.sqrt() * (-a * a * r * r).exp();
                (
                    e / r - self.dsf_e + self.dsf_f * (r - self.cutoff),
                    (e / (r * r) + g / r - self.dsf_f) / r,
                )
            }
            _ => {
                let e = erfc(a * r);
                let g = 2.0 * a / PI.sqrt() * (-a * a * r * r).exp();
                (e / r, (e / r + g) / (r * r))
            }
        }
    }

    /// Unshifted energy per unit qq at the cutoff: what a pair gains when it crosses it.
    pub fn cutoff_jump(&self) -> f64 {
        match self.code {
            1 => 1.0 / self.cutoff,
            4 => erfc(self.alpha * self.cutoff) / self.cutoff,
            _ => 0.0,
        }
    }
}

/// (energy, force/r) per unit qq of the excluded-pair correction −erf(αr)/r. Twin of
/// `excl_pair` in coulomb.wgsl.
pub fn exclusion_pair(alpha: f64, r: f64) -> (f64, f64) {
    let erf = 1.0 - erfc(alpha * r);
    let g = 2.0 * alpha / PI.sqrt() * (-alpha * alpha * r * r).exp();
    // E = −erf/r; F·r̂ = −dE/dr = g/r − erf/r².
    (-erf / r, (g / r - erf / (r * r)) / r)
}

/// Per-term results of the float64 reference (energies in the spec's units).
#[derive(Clone, Debug, Default)]
pub struct CoulombTerms {
    pub lj: f64,
    /// Σ |pair energy| of the LJ term: the scale of its f32 rounding (attractive and
    /// repulsive pairs can nearly cancel, like the real-space Coulomb term's).
    pub lj_abs: f64,
    pub coulomb_real: f64,
    pub coulomb_reciprocal: f64,
    pub coulomb_self: f64,
    pub coulomb_exclusion: f64,
    pub coulomb_background: f64,
    /// W = Σ r·F of everything above (tail corrections not included).
    pub virial: f64,
    /// Σ |pair energy| of the real-space Coulomb term: the scale of its f32 rounding (with
    /// charges of both signs the term itself can be a near-cancelling sum).
    pub coulomb_real_abs: f64,
    /// Σ |pair energy| of the excluded-pair correction (the same for that term).
    pub coulomb_exclusion_abs: f64,
    pub forces: Vec<[f64; 3]>,
}

impl CoulombTerms {
    pub fn total(&self) -> f64 {
        self.lj
            + self.coulomb_real
            + self.coulomb_reciprocal
            + self.coulomb_self
            + self.coulomb_exclusion
            + self.coulomb_background
    }
}

/// Checks a spec against a system; names what is wrong.
pub fn validate(spec: &CoulombSpec, sys: &System) -> Result<()> {
    let rc = spec.cutoff;
    if !(rc.is_finite() && rc > 0.0) {
        bail!("forces.coulomb.cutoff is {rc}; it must be a positive number");
    }
    if !(spec.coulomb_k.is_finite() && spec.coulomb_k > 0.0) {
        bail!(
            "forces.coulomb.coulomb_k is {}; it must be positive",
            spec.coulomb_k
        );
    }
    let half = sys
        .box_lengths
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        / 2.0;
    if rc > half {
        bail!(
            "forces.coulomb.cutoff = {rc} is larger than half the shortest box edge ({half}); \
             use a bigger box or a shorter cutoff"
        );
    }
    if let Some(q) = sys.charges.iter().position(|q| !q.is_finite()) {
        bail!("atom {} has a non-finite charge", q + 1);
    }
    match &spec.method {
        CoulombMethod::ReactionField { epsilon_rf } => {
            // Written so that NaN is rejected too.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let bad = !(*epsilon_rf >= 1.0);
            if bad {
                bail!(
                    "forces.coulomb.epsilon_rf is {epsilon_rf}; it must be >= 1 (inf = conducting)"
                );
            }
        }
        CoulombMethod::Dsf { alpha } => {
            if !(alpha.is_finite() && *alpha >= 0.0) {
                bail!("forces.coulomb.alpha is {alpha}; it must be zero or positive");
            }
        }
        CoulombMethod::Ewald { alpha, kmax, .. } => {
            if !(alpha.is_finite() && *alpha > 0.0) {
                bail!("forces.coulomb.alpha is {alpha}; it must be positive");
            }
            if kmax.iter().any(|&k| k == 0 || k > 200) {
                bail!("forces.coulomb.kmax is {kmax:?}; each must be between 1 and 200");
            }
        }
        CoulombMethod::Pme(p) => {
            if !(p.alpha.is_finite() && p.alpha > 0.0) {
                bail!("forces.coulomb.alpha is {}; it must be positive", p.alpha);
            }
            if !(4..=6).contains(&p.order) {
                bail!(
                    "forces.coulomb.order is {}; PME spreads with B-splines of order 4, 5 or 6",
                    p.order
                );
            }
        }
        CoulombMethod::Cutoff => {}
    }
    let n = sys.len() as u32;
    for &[i, j] in &spec.exclusions {
        if i >= n || j >= n || i == j {
            bail!(
                "exclusion ({}, {}) names an atom outside 1..={n} or an atom with itself",
                i + 1,
                j + 1
            );
        }
    }
    let q: f64 = sys.charges.iter().sum();
    let q_abs: f64 = sys.charges.iter().map(|q| q.abs()).sum();
    if spec.method.ewald_alpha().is_some() && q.abs() > 1e-6 * q_abs.max(1.0) && !spec.neutralize {
        bail!(
            "the system's net charge is {q:.6} e; {} sums need a neutral system: fix the charges, \
             or set forces.coulomb.neutralize = true to add a uniform neutralising background",
            spec.method.name()
        );
    }
    Ok(())
}

/// Per-atom exclusion lists (sorted, symmetric).
pub fn exclusion_lists(n: usize, excl: &[[u32; 2]]) -> Vec<Vec<u32>> {
    let mut lists = vec![Vec::new(); n];
    for &[i, j] in excl {
        lists[i as usize].push(j);
        lists[j as usize].push(i);
    }
    for l in &mut lists {
        l.sort_unstable();
        l.dedup();
    }
    lists
}

/// Self energy (host constant; no force, no virial): Ewald/PME −kα/√π Σq²; DSF
/// −k(erfc(α r_c)/(2 r_c) + α/√π) Σq²; 0 otherwise.
pub fn self_energy(spec: &CoulombSpec, charges: &[f64]) -> f64 {
    let q2: f64 = charges.iter().map(|q| q * q).sum();
    match &spec.method {
        CoulombMethod::Dsf { alpha } => {
            -spec.coulomb_k
                * (erfc(alpha * spec.cutoff) / (2.0 * spec.cutoff) + alpha / PI.sqrt())
                * q2
        }
        m => match m.ewald_alpha() {
            Some(a) => -spec.coulomb_k * a / PI.sqrt() * q2,
            None => 0.0,
        },
    }
}

/// Neutralising-background (energy, virial) for a net charge with Ewald (0 when neutral or not
/// requested). PME's reciprocal part already includes it (`forces::pme`), so 0 for PME.
pub fn background(spec: &CoulombSpec, sys: &System) -> (f64, f64) {
    match &spec.method {
        CoulombMethod::Ewald { alpha: a, .. } if spec.neutralize => {
            let q: f64 = sys.charges.iter().sum();
            let e = -PI * spec.coulomb_k * q * q / (2.0 * a * a * sys.volume());
            (e, 3.0 * e)
        }
        _ => (0.0, 0.0),
    }
}

/// Half-space wave vectors of an Ewald sum: (k_x, k_y, k_z, coef) with
/// coef = 2·(2πk/V)·exp(−k²/4α²)/k² (the 2 counts −k), so E = Σ coef |S(k)|².
pub fn ewald_kvectors(
    box_l: [f64; 3],
    alpha: f64,
    kmax: [u32; 3],
    k2max: Option<u32>,
    coulomb_k: f64,
) -> Vec<[f64; 4]> {
    let v = box_l[0] * box_l[1] * box_l[2];
    let [kx, ky, kz] = kmax.map(|k| k as i64);
    let mut out = Vec::new();
    for nx in 0..=kx {
        for ny in -ky..=ky {
            for nz in -kz..=kz {
                if nx == 0 && (ny < 0 || (ny == 0 && nz <= 0)) {
                    continue;
                }
                if let Some(m) = k2max {
                    if nx * nx + ny * ny + nz * nz >= m as i64 {
                        continue;
                    }
                }
                let k = [
                    2.0 * PI * nx as f64 / box_l[0],
                    2.0 * PI * ny as f64 / box_l[1],
                    2.0 * PI * nz as f64 / box_l[2],
                ];
                let k2 = k[0] * k[0] + k[1] * k[1] + k[2] * k[2];
                let coef =
                    2.0 * 2.0 * PI * coulomb_k / v * (-k2 / (4.0 * alpha * alpha)).exp() / k2;
                out.push([k[0], k[1], k[2], coef]);
            }
        }
    }
    out
}

/// Float64 Ewald reciprocal sum by direct k-summation: (energy, forces, virial tensor
/// xx, yy, zz, xy, xz, yz).
#[allow(clippy::needless_range_loop)]
pub fn ewald_reciprocal(
    pos: &[[f64; 3]],
    q: &[f64],
    kvecs: &[[f64; 4]],
    alpha: f64,
) -> (f64, Vec<[f64; 3]>, [f64; 6]) {
    let mut e = 0.0;
    let mut w = [0.0; 6];
    let mut f = vec![[0.0; 3]; pos.len()];
    let mut cs = vec![(0.0, 0.0); pos.len()];
    for kv in kvecs {
        let (mut sr, mut si) = (0.0, 0.0);
        for (i, p) in pos.iter().enumerate() {
            let th = kv[0] * p[0] + kv[1] * p[1] + kv[2] * p[2];
            let (s, c) = th.sin_cos();
            cs[i] = (c, s);
            sr += q[i] * c;
            si += q[i] * s;
        }
        let s2 = sr * sr + si * si;
        e += kv[3] * s2;
        let k2 = kv[0] * kv[0] + kv[1] * kv[1] + kv[2] * kv[2];
        let b = 2.0 * (1.0 / k2 + 1.0 / (4.0 * alpha * alpha));
        let pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)];
        for (m, &(a, c)) in pairs.iter().enumerate() {
            let d = if a == c { 1.0 } else { 0.0 };
            w[m] += kv[3] * s2 * (d - b * kv[a] * kv[c]);
        }
        for i in 0..pos.len() {
            let (c, s) = cs[i];
            let g = 2.0 * kv[3] * q[i] * (s * sr - c * si);
            for d in 0..3 {
                f[i][d] += g * kv[d];
            }
        }
    }
    (e, f, w)
}

fn min_image(a: &[f64; 3], b: &[f64; 3], l: &[f64; 3]) -> [f64; 3] {
    let mut d = [0.0; 3];
    for k in 0..3 {
        let x = a[k] - b[k];
        d[k] = x - l[k] * (x / l[k]).round();
    }
    d
}

/// The float64 reference of LJ + Coulomb: all pairs, minimum image (needs every cutoff ≤ L/2),
/// excluded pairs skipped, then the method's self, exclusion, background and (Ewald, PME)
/// reciprocal terms; PME's is [`crate::forces::pme::reference::reciprocal`], which includes
/// the neutralising background of a net charge.
#[allow(clippy::needless_range_loop)] // index loops mirror the formulas (i, j, component)
pub fn reference(sys: &System, lj: &LjTable, spec: &CoulombSpec) -> CoulombTerms {
    let n = sys.len();
    let l = sys.box_lengths;
    let rs = RealSpace::new(spec);
    let k = spec.coulomb_k;
    let excl: HashSet<(u32, u32)> = spec
        .exclusions
        .iter()
        .map(|&[i, j]| (i.min(j), i.max(j)))
        .collect();
    let mut t = CoulombTerms {
        forces: vec![[0.0; 3]; n],
        ..Default::default()
    };
    let rc2 = spec.cutoff * spec.cutoff;
    let q = &sys.charges;
    for i in 0..n {
        for j in (i + 1)..n {
            if excl.contains(&(i as u32, j as u32)) {
                continue;
            }
            let d = min_image(&sys.positions[i], &sys.positions[j], &l);
            let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            let mut fr = 0.0;
            let p = lj.pair(sys.types[i], sys.types[j]);
            if r2 < p.cutoff * p.cutoff {
                let (e, f) = crate::forces::lj::lj_pair(r2, p);
                t.lj += e;
                t.lj_abs += e.abs();
                fr += f;
            }
            if r2 < rc2 {
                let qq = k * q[i] * q[j];
                let (e, f) = rs.pair(r2.sqrt());
                t.coulomb_real += qq * e;
                t.coulomb_real_abs += (qq * e).abs();
                fr += qq * f;
            }
            t.virial += fr * r2;
            for c in 0..3 {
                t.forces[i][c] += fr * d[c];
                t.forces[j][c] -= fr * d[c];
            }
        }
    }
    if let Some(alpha) = spec.method.ewald_alpha() {
        for &(i, j) in &excl {
            let (i, j) = (i as usize, j as usize);
            let d = min_image(&sys.positions[i], &sys.positions[j], &l);
            let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            let qq = k * q[i] * q[j];
            let (e, f) = exclusion_pair(alpha, r2.sqrt());
            t.coulomb_exclusion += qq * e;
            t.coulomb_exclusion_abs += (qq * e).abs();
            t.virial += qq * f * r2;
            for c in 0..3 {
                t.forces[i][c] += qq * f * d[c];
                t.forces[j][c] -= qq * f * d[c];
            }
        }
    }
    if let CoulombMethod::Ewald { alpha, kmax, k2max } = &spec.method {
        let kv = ewald_kvectors(l, *alpha, *kmax, *k2max, k);
        let (e, f, w) = ewald_reciprocal(&sys.positions, q, &kv, *alpha);
        t.coulomb_reciprocal = e;
        t.virial += w[0] + w[1] + w[2];
        for i in 0..n {
            for c in 0..3 {
                t.forces[i][c] += f[i][c];
            }
        }
    }
    if let CoulombMethod::Pme(p) = &spec.method {
        let (e, f, w) = crate::forces::pme::reference::reciprocal(&sys.positions, q, l, p, k);
        t.coulomb_reciprocal = e;
        t.virial += w[0] + w[1] + w[2];
        for i in 0..n {
            for c in 0..3 {
                t.forces[i][c] += f[i][c];
            }
        }
    }
    t.coulomb_self = self_energy(spec, q);
    let (eb, wb) = background(spec, sys);
    t.coulomb_background = eb;
    t.virial += wb;
    t
}

/// GPU layout of the Coulomb uniform (mirrors `CoulombParams` in coulomb.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CoulombParams {
    pub n_excl: u32,
    pub n_kvec: u32,
    pub rc2: f32,
    pub alpha: f32,
    pub coulomb_k: f32,
    pub krf: f32,
    pub crf: f32,
    pub dsf_e: f32,
    pub dsf_f: f32,
    /// Unshifted pair energy at the cutoff per unit qq (for the conserved-energy bookkeeping).
    pub e_rc: f32,
    pub rc: f32,
    /// Ewald real space in a shape for the shader (coulomb.wgsl's `lj_ewald_force`):
    /// α² log₂ e (exp(−α²r²) = exp2(−ex2_c r²)), 0.38 α (erfc's t = 1 / (1 + t_c r)), 2α/√π.
    pub ex2_c: f32,
    pub t_c: f32,
    pub g_c: f32,
    pub _pad: [u32; 2],
}

/// No exclusion in this slot.
pub const NO_EXCL: u32 = u32::MAX;

/// Whether a pair kernel with one thread per atom runs on the entry point without workgroup
/// memory (coulomb.wgsl's `coulomb_force1`, coulomb_spread.wgsl's `coulomb_spread1`, lj.wgsl's
/// `lj_force_slots1`): the partial-sum arrays of the others, unused with one thread per atom,
/// are still allocated and take L1 cache from the resident workgroups (−55 µs of real space at
/// 2,097,152 ions on the H200: BENCHMARKS.md, Coulomb, fifteenth session).
/// `WGMD_REAL_NO_SHARED=0` keeps those entry points (A/B runs).
pub(crate) fn single_lane(tpa: u32) -> bool {
    tpa == 1 && !crate::neighbor::switched_off("WGMD_REAL_NO_SHARED")
}

/// GPU driver: the fused LJ + real-space Coulomb kernel (with the excluded-pair correction)
/// and, for Ewald, the reciprocal k-sum. PME's reciprocal part is a separate
/// [`crate::forces::pme`] driver that the engine encodes after this one.
pub struct CoulombForce {
    real: Kernel,
    /// The real-space kernel without energies and virial (`ENERGY` = false): the steps
    /// whose energy nobody reads.
    fast: Kernel,
    terms: Kernel,
    sk: Option<Kernel>,
    recip: Option<Kernel>,
    pub params: CoulombParams,
    params_buf: wgpu::Buffer,
    pub charge_buf: wgpu::Buffer,
    excl_buf: wgpu::Buffer,
    table_buf: wgpu::Buffer,
    rc_buf: wgpu::Buffer,
    kvec_buf: wgpu::Buffer,
    sk_buf: wgpu::Buffer,
    /// Per-atom (lj, coulomb real, exclusion, virial) written by the `coulomb_terms` entry.
    pub terms_buf: wgpu::Buffer,
    kvecs: Vec<[f64; 4]>,
    binds: Option<[Option<wgpu::BindGroup>; 5]>,
    n_atoms: u32,
    method_code: u32,
    /// Threads sharing one atom's neighbor row (the shader's `TPA`).
    threads_per_atom: u32,
    /// k q_i q_j per type pair when every atom of a type carries the same charge (`QQ_TABLE`
    /// in the shader: no per-neighbor charge gather); None otherwise.
    qq_table: Option<Vec<f32>>,
    qq_buf: wgpu::Buffer,
    /// Atom types (the LJ table's), for the kernels' SMALL_TYPES.
    n_types: usize,
    /// Every type pair's LJ cutoff is the Coulomb one (the kernels' ONE_CUT).
    one_cut: bool,
    outer_cut2: f32,
    /// No atom has an excluded partner (coulomb.wgsl's EXCL_FREE).
    no_excl: bool,
    /// The real-space kernels' override constants (for the fused kernel).
    real_overrides: Vec<(&'static str, f64)>,
    /// Real space and the PME spread in one dispatch (`forces::coulomb_spread`), with its
    /// (energy, fast) bind groups.
    fused: Option<(SpreadFusion, Option<FusionBinds>)>,
}

/// k q_i q_j per type pair (row-major, like the LJ table), or None when some type's atoms
/// carry different charges. `WGMD_QQ_TABLE=0` turns it off (A/B runs).
fn type_pair_charges(sys: &System, n_types: usize, k: f64) -> Option<Vec<f32>> {
    if std::env::var("WGMD_QQ_TABLE").is_ok_and(|v| v == "0") {
        return None;
    }
    let mut q: Vec<Option<f64>> = vec![None; n_types];
    for (&t, &c) in sys.types.iter().zip(&sys.charges) {
        let slot = q.get_mut(t as usize)?;
        match slot {
            Some(prev) if *prev != c => return None,
            _ => *slot = Some(c),
        }
    }
    let q: Vec<f64> = q.into_iter().map(|c| c.unwrap_or(0.0)).collect();
    Some(
        (0..n_types * n_types)
            .map(|p| (k * q[p / n_types] * q[p % n_types]) as f32)
            .collect(),
    )
}

/// The real-space kernels (with energies, without, per term) and their override constants.
type RealKernels = (Kernel, Kernel, Kernel, Vec<(&'static str, f64)>);

impl CoulombForce {
    pub fn new(
        ctx: &GpuContext,
        sys: &System,
        lj: &LjTable,
        spec: &CoulombSpec,
        threads_per_atom: u32,
        layout: ListLayout,
    ) -> Result<CoulombForce> {
        let n = sys.len();
        let rs = RealSpace::new(spec);
        let lists = exclusion_lists(n, &spec.exclusions);
        let n_excl = lists.iter().map(|l| l.len()).max().unwrap_or(0) as u32;
        // Row-major [atom][slot]: an atom's few exclusions sit in one cache line.
        let mut excl = vec![NO_EXCL; n * n_excl as usize];
        for (i, l) in lists.iter().enumerate() {
            for (s, &j) in l.iter().enumerate() {
                excl[i * n_excl as usize + s] = j;
            }
        }
        let kvecs = match &spec.method {
            CoulombMethod::Ewald { alpha, kmax, k2max } => {
                ewald_kvectors(sys.box_lengths, *alpha, *kmax, *k2max, spec.coulomb_k)
            }
            _ => vec![],
        };
        let params = CoulombParams {
            n_excl,
            n_kvec: kvecs.len() as u32,
            rc2: (spec.cutoff * spec.cutoff) as f32,
            alpha: rs.alpha as f32,
            coulomb_k: spec.coulomb_k as f32,
            krf: rs.krf as f32,
            crf: rs.crf as f32,
            dsf_e: rs.dsf_e as f32,
            dsf_f: rs.dsf_f as f32,
            e_rc: rs.cutoff_jump() as f32,
            rc: spec.cutoff as f32,
            ex2_c: (rs.alpha * rs.alpha * std::f64::consts::LOG2_E) as f32,
            t_c: (0.38 * rs.alpha) as f32,
            g_c: (2.0 * rs.alpha / PI.sqrt()) as f32,
            _pad: [0; 2],
        };
        let qq_table = type_pair_charges(sys, lj.n_types, spec.coulomb_k);
        let qq = qq_table.is_some();
        // Split rows: a shell entry beyond every cutoff is not computed.
        let outer_cut2 = lj.max_cut2().max(params.rc2);
        // One cutoff test per pair where every type pair's LJ cutoff is the Coulomb one (the
        // shader compares the same f32 squares).
        let one_cut = lj.gpu_data().iter().all(|p| p[2] == params.rc2)
            && !crate::neighbor::switched_off("WGMD_ONE_CUT");
        let (real, fast, terms, real_overrides) = Self::real_kernels(
            ctx,
            rs.code,
            threads_per_atom,
            layout,
            qq,
            (lj.n_types, one_cut, params.n_excl == 0, outer_cut2),
        )?;
        let (sk, recip) = if kvecs.is_empty() {
            (None, None)
        } else {
            let m = ShaderModule::new(ctx, "ewald")?;
            (
                Some(Kernel::new(ctx, &m, "ewald_structure", &[])?),
                Some(Kernel::new(ctx, &m, "ewald_force", &[])?),
            )
        };
        let charges: Vec<f32> = sys.charges.iter().map(|&q| q as f32).collect();
        let kv32: Vec<[f32; 4]> = kvecs.iter().map(|k| k.map(|x| x as f32)).collect();
        Ok(CoulombForce {
            real,
            fast,
            terms,
            sk,
            recip,
            params,
            params_buf: ctx.uniform("coul", &params),
            charge_buf: ctx.storage_init("charge", &charges)?,
            excl_buf: ctx.storage_init("excl", &excl)?,
            table_buf: ctx.storage_init("lj_pairs", &lj.gpu_data())?,
            rc_buf: ctx.storage_init("lj_rc", &lj.cutoff_jump())?,
            kvec_buf: ctx.storage_init("kvec", &kv32)?,
            sk_buf: ctx.storage("sk", 8 * kvecs.len().max(1) as u64)?,
            terms_buf: ctx.storage("atom_terms", 16 * n as u64)?,
            kvecs,
            binds: None,
            n_atoms: n as u32,
            method_code: rs.code,
            threads_per_atom,
            qq_buf: ctx.storage_init("pair_qq", qq_table.as_deref().unwrap_or(&[0.0]))?,
            qq_table,
            n_types: lj.n_types,
            one_cut,
            outer_cut2,
            no_excl: params.n_excl == 0,
            real_overrides,
            fused: None,
        })
    }

    fn real_kernels(
        ctx: &GpuContext,
        code: u32,
        tpa: u32,
        layout: ListLayout,
        qq_table: bool,
        (n_types, one_cut, no_excl, outer_cut2): (usize, bool, bool, f32),
    ) -> Result<RealKernels> {
        if ![1, 2, 4, 8, 16, 32, 64].contains(&tpa) {
            bail!("Coulomb threads per atom must be a power of two from 1 to 64, not {tpa}");
        }
        if !layout.allows(tpa) {
            bail!("the {layout:?} list layout needs one thread per atom, not {tpa}");
        }
        let module = ShaderModule::new(ctx, "coulomb")?;
        let o = [
            ("METHOD", code as f64),
            ("TPA", tpa as f64),
            ("SLOT_ROWS", layout.slot_rows() as u32 as f64),
            ("PACKED", layout.packed() as u32 as f64),
            ("QQ_TABLE", qq_table as u32 as f64),
            // Up to four types: per-type parameters in registers (coulomb.wgsl, SMALL_TYPES).
            (
                "SMALL_TYPES",
                if n_types <= 4 && !crate::neighbor::switched_off("WGMD_SMALL_TYPES") {
                    n_types as f64
                } else {
                    0.0
                },
            ),
            (
                "RCP_LJ",
                !crate::neighbor::switched_off("WGMD_RCP_LJ") as u32 as f64,
            ),
            ("ONE_CUT", one_cut as u32 as f64),
            (
                "LJ_EWALD",
                !crate::neighbor::switched_off("WGMD_LJ_EWALD") as u32 as f64,
            ),
            // No exclusions (ions): the per-entry exclusion test compiled out.
            (
                "EXCL_FREE",
                (no_excl && !crate::neighbor::switched_off("WGMD_NO_EXCL")) as u32 as f64,
            ),
        ];
        let mut o = o.to_vec();
        o.extend(layout.split_overrides(outer_cut2));
        let mut fast = o.clone();
        fast.push(("ENERGY", 0.0));
        let entry = if single_lane(tpa) {
            "coulomb_force1"
        } else {
            "coulomb_force"
        };
        Ok((
            Kernel::new(ctx, &module, entry, &o)?,
            Kernel::new(ctx, &module, entry, &fast)?,
            Kernel::new(ctx, &module, "coulomb_terms", &o)?,
            o.to_vec(),
        ))
    }

    /// Runs PME's charge spread inside the real-space dispatch from now on (`pme` must use
    /// f32 atomics), or with a `tile` plan by blocks of cells right after it (rows by slot
    /// only; otherwise interleaved); `None` separates them again. Rebind afterwards; the caller
    /// then encodes PME without its spread ([`PmeForce::encode_splines`],
    /// [`PmeForce::encode_after_spread`]).
    pub fn fuse_spread(
        &mut self,
        ctx: &GpuContext,
        pme: Option<&PmeForce>,
        tile: Option<TilePlan>,
    ) -> Result<()> {
        self.fused = match pme {
            Some(p) => {
                if !p.fusable() {
                    bail!("internal: only PME's f32-atomic spread runs inside the real-space dispatch");
                }
                let f = SpreadFusion::new(ctx, &self.real_overrides, self.real_groups(), p, tile)?;
                Some((f, None))
            }
            None => None,
        };
        self.binds = None;
        Ok(())
    }

    /// The tiled spread's plan where it runs (`forces::spread_tile`).
    pub fn spread_tile_plan(&self) -> Option<TilePlan> {
        self.fused.as_ref().and_then(|(f, _)| f.tile_plan())
    }

    /// With the spread fused and rows by cell slot: the step's slot positions and PME's
    /// splines in one dispatch (instead of neighbor's slot_gather and PME's splines). Returns
    /// false, encoding nothing, otherwise.
    pub fn encode_gather_splines(&self, pass: &mut wgpu::ComputePass<'_>) -> bool {
        match &self.fused {
            Some((f, Some(fb))) => f.encode_gather(pass, fb),
            _ => false,
        }
    }

    /// The tiled spread's dispatch alone (timing); false, encoding nothing, where the spread
    /// is not tiled.
    pub fn encode_tile_spread(&self, pass: &mut wgpu::ComputePass<'_>) -> bool {
        match &self.fused {
            Some((f, Some(fb))) => f.encode_tile(pass, fb),
            _ => false,
        }
    }

    /// PME's interpolation by cell slot, where the spread is fused and the rows are by slot
    /// (then [`encode_gather_splines`](Self::encode_gather_splines) stored PME's splines by
    /// slot): the caller encodes it after PME's FFT passes ([`PmeForce::encode_fft`]) instead
    /// of PME's own interpolation. False, encoding nothing, otherwise.
    pub fn encode_slot_interp(&self, pass: &mut wgpu::ComputePass<'_>, energy: bool) -> bool {
        match &self.fused {
            Some((f, Some(fb))) => f.encode_interp(pass, energy, fb),
            _ => false,
        }
    }

    /// Whether PME's splines are stored by cell slot: then
    /// [`encode_slot_interp`](Self::encode_slot_interp) replaces PME's own interpolation.
    pub fn slot_splines(&self) -> bool {
        self.fused.as_ref().is_some_and(|(f, _)| f.slot_splines())
    }

    /// Bytes of the Coulomb term's own GPU buffers (tables, charges, exclusions, Ewald's
    /// structure factors, per-atom terms, the tiled spread's weights), PME's not included.
    pub fn gpu_bytes(&self) -> u64 {
        let own: u64 = [
            &self.params_buf,
            &self.charge_buf,
            &self.excl_buf,
            &self.table_buf,
            &self.rc_buf,
            &self.kvec_buf,
            &self.sk_buf,
            &self.terms_buf,
            &self.qq_buf,
        ]
        .iter()
        .map(|b| b.size())
        .sum();
        own + self.fused.as_ref().map_or(0, |(f, _)| f.gpu_bytes())
    }

    /// Whether [`encode`](Self::encode) also spreads PME's charges.
    pub fn spread_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// Switches the real-space kernels to `tpa` threads per atom and the list `layout`;
    /// rebind afterwards.
    pub fn set_threads_per_atom(
        &mut self,
        ctx: &GpuContext,
        tpa: u32,
        layout: ListLayout,
    ) -> Result<()> {
        let qq = self.qq_table.is_some();
        (self.real, self.fast, self.terms, self.real_overrides) = Self::real_kernels(
            ctx,
            self.method_code,
            tpa,
            layout,
            qq,
            (self.n_types, self.one_cut, self.no_excl, self.outer_cut2),
        )?;
        self.threads_per_atom = tpa;
        if let Some((f, _)) = &self.fused {
            let f = f.rebuild(ctx, &self.real_overrides, self.real_groups())?;
            self.fused = Some((f, None));
        }
        self.binds = None;
        Ok(())
    }

    pub fn threads_per_atom(&self) -> u32 {
        self.threads_per_atom
    }

    fn real_groups(&self) -> u32 {
        gpu::groups_for(self.n_atoms, gpu::WG / self.threads_per_atom)
    }

    /// Own buffers by the names the shaders use (the engine adds "charge" to its list too).
    fn own<'a>(
        &'a self,
        buffers: &[(&'a str, &'a wgpu::Buffer)],
    ) -> Vec<(&'a str, &'a wgpu::Buffer)> {
        let mut all = buffers.to_vec();
        all.extend([
            ("C", &self.params_buf),
            ("charge", &self.charge_buf),
            ("excl", &self.excl_buf),
            ("lj_pairs", &self.table_buf),
            ("lj_rc", &self.rc_buf),
            ("pair_qq", &self.qq_buf),
            ("kvec", &self.kvec_buf),
            ("sk", &self.sk_buf),
            ("atom_terms", &self.terms_buf),
        ]);
        all
    }

    /// (Re)binds to the simulation's buffers (after creation or a neighbor-list regrow).
    pub fn bind(&mut self, ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> Result<()> {
        let all = self.own(buffers);
        let b = [
            Some(self.real.bind(ctx, &all)?),
            Some(self.terms.bind(ctx, &all)?),
            self.sk.as_ref().map(|k| k.bind(ctx, &all)).transpose()?,
            self.recip.as_ref().map(|k| k.bind(ctx, &all)).transpose()?,
            Some(self.fast.bind(ctx, &all)?),
        ];
        let fb = match &self.fused {
            Some((f, _)) => Some(f.bind(ctx, &all)?),
            None => None,
        };
        if let Some((_, slot)) = self.fused.as_mut() {
            *slot = fb;
        }
        self.binds = Some(b);
        Ok(())
    }

    /// Real space (overwrites force/atom_virial), then the Ewald k-sum (adds to them).
    /// Without `energy` the real-space energy and virial shares are written as zeros. With
    /// [`fuse_spread`](Self::fuse_spread) the same dispatch also spreads PME's charges.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, energy: bool) {
        let b = self
            .binds
            .as_ref()
            .expect("CoulombForce::bind before encode");
        if let Some((f, Some(fb))) = &self.fused {
            f.encode(pass, energy, fb);
            self.encode_reciprocal(pass);
            return;
        }
        let (k, bg) = if energy {
            (&self.real, &b[0])
        } else {
            (&self.fast, &b[4])
        };
        gpu::dispatch(pass, k, bg.as_ref().unwrap(), self.real_groups());
        self.encode_reciprocal(pass);
    }

    fn encode_reciprocal(&self, pass: &mut wgpu::ComputePass<'_>) {
        let b = self
            .binds
            .as_ref()
            .expect("CoulombForce::bind before encode");
        if let (Some(sk), Some(recip)) = (&self.sk, &self.recip) {
            gpu::dispatch(pass, sk, b[2].as_ref().unwrap(), self.kvecs.len() as u32);
            let groups = gpu::groups_for(self.n_atoms, gpu::WG);
            gpu::dispatch(pass, recip, b[3].as_ref().unwrap(), groups);
        }
    }

    /// The per-term pass for `eval`: writes `atom_terms` (lj, coulomb real, exclusion,
    /// virial) per atom and refreshes the structure factors.
    pub fn encode_terms(&self, pass: &mut wgpu::ComputePass<'_>) {
        let b = self
            .binds
            .as_ref()
            .expect("CoulombForce::bind before encode");
        gpu::dispatch(
            pass,
            &self.terms,
            b[1].as_ref().unwrap(),
            self.real_groups(),
        );
        if let Some(sk) = &self.sk {
            gpu::dispatch(pass, sk, b[2].as_ref().unwrap(), self.kvecs.len() as u32);
        }
    }

    /// Ewald reciprocal (energy, virial tensor) from the last structure factors, summed on
    /// the host in float64 (0 without an Ewald sum).
    pub fn read_reciprocal(&self, ctx: &GpuContext) -> Result<(f64, [f64; 6])> {
        if self.kvecs.is_empty() {
            return Ok((0.0, [0.0; 6]));
        }
        let s: Vec<[f32; 2]> = ctx.read_buffer(&self.sk_buf)?;
        let alpha = self.params.alpha as f64;
        let (mut e, mut w) = (0.0, [0.0; 6]);
        for (kv, s) in self.kvecs.iter().zip(&s) {
            let s2 = (s[0] as f64).powi(2) + (s[1] as f64).powi(2);
            e += kv[3] * s2;
            let k2 = kv[0] * kv[0] + kv[1] * kv[1] + kv[2] * kv[2];
            let b = 2.0 * (1.0 / k2 + 1.0 / (4.0 * alpha * alpha));
            for (m, (a, c)) in [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
                .into_iter()
                .enumerate()
            {
                let d = if a == c { 1.0 } else { 0.0 };
                w[m] += kv[3] * s2 * (d - b * kv[a] * kv[c]);
            }
        }
        Ok((e, w))
    }

    pub fn n_kvectors(&self) -> usize {
        self.kvecs.len()
    }

    /// Fills the per-term and structure-factor buffers with NaN bits (tests).
    pub fn poison(&self, ctx: &GpuContext) {
        for b in [&self.terms_buf, &self.sk_buf] {
            ctx.queue
                .write_buffer(b, 0, &vec![0xffu8; b.size() as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: CoulombMethod) -> CoulombSpec {
        CoulombSpec {
            method,
            cutoff: 3.0,
            coulomb_k: 1.0,
            exclusions: vec![],
            neutralize: false,
        }
    }

    #[test]
    fn pair_forces_are_minus_energy_derivatives() {
        for m in [
            CoulombMethod::Cutoff,
            CoulombMethod::ReactionField { epsilon_rf: 78.0 },
            CoulombMethod::ReactionField {
                epsilon_rf: f64::INFINITY,
            },
            CoulombMethod::Dsf { alpha: 0.4 },
            CoulombMethod::Ewald {
                alpha: 0.9,
                kmax: [5; 3],
                k2max: None,
            },
        ] {
            let rs = RealSpace::new(&spec(m.clone()));
            for &r in &[0.7, 1.3, 2.2, 2.9] {
                let h = 1e-6;
                let de = (rs.pair(r + h).0 - rs.pair(r - h).0) / (2.0 * h);
                let f = rs.pair(r).1 * r;
                assert!(
                    (f + de).abs() < 1e-7 * (1.0 + f.abs()),
                    "{m:?} r={r}: {f} vs {}",
                    -de
                );
            }
        }
        for &r in &[0.5, 1.0, 1.6] {
            let h = 1e-6;
            let de = (exclusion_pair(0.3, r + h).0 - exclusion_pair(0.3, r - h).0) / (2.0 * h);
            let f = exclusion_pair(0.3, r).1 * r;
            assert!((f + de).abs() < 1e-8, "exclusion r={r}");
        }
    }

    #[test]
    fn dsf_and_reaction_field_vanish_at_the_cutoff() {
        let dsf = RealSpace::new(&spec(CoulombMethod::Dsf { alpha: 0.3 }));
        let (e, f) = dsf.pair(3.0);
        assert!(e.abs() < 1e-14 && f.abs() < 1e-14);
        let rf = RealSpace::new(&spec(CoulombMethod::ReactionField { epsilon_rf: 1e300 }));
        assert!(rf.pair(3.0).0.abs() < 1e-14);
    }
}
