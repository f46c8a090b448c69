//! Float64 CPU reference of ANI (ANI.md §3–§7): the oracle the GPU kernels are tested against.
//!
//! Written for clarity, not speed: one pass builds the pair list with TorchANI 2.9's explicit
//! periodic images, the AEV is accumulated pair by pair and triple by triple, the atomic
//! networks run in f64 on the file's f32 weights, and forces come from closed-form derivatives
//! (no autograd). Agreement with TorchANI 2.9 in float64 is at the 1e-12 level for energies;
//! forces differ from TorchANI's by ≤ ~3e-9 Ha/Å because PyTorch's f64 CELU backward uses
//! 1/α rounded to f32 (ANI.md §6.5), while this code uses the exact derivative.
//!
//! Units: positions and cells in Å, energies in Hartree, forces in Hartree/Å.

use anyhow::{bail, ensure, Result};

use super::{Activation, AevParams, AniModel, AtomicNet};

/// One pair within the cutoff. Each unordered pair appears once; under PBC `i == j` is a
/// self-image pair (atom i and its own image), and the same (i, j) may appear with several
/// shifts.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub i: usize,
    pub j: usize,
    /// Cartesian lattice translation (zero without PBC), relative to the *input* positions:
    /// it already includes the wrapping of both atoms into the cell, so `v` equals
    /// `r_i - r_j + shift` with the unwrapped coordinates (up to rounding).
    pub shift: [f64; 3],
    /// `r_i - r_j + shift` (Å), computed from the wrapped coordinates as TorchANI does.
    pub v: [f64; 3],
    /// `|v|` (Å).
    pub r: f64,
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// `x · m` for a row vector x (fractional → cartesian when m = cell).
fn row_times(x: [f64; 3], m: &[[f64; 3]; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        *o = x[0] * m[0][k] + x[1] * m[1][k] + x[2] * m[2][k];
    }
    out
}

fn inverse3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let c = |r: usize, k: usize| {
        let (r1, r2, k1, k2) = ((r + 1) % 3, (r + 2) % 3, (k + 1) % 3, (k + 2) % 3);
        m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]
    };
    let det = m[0][0] * c(0, 0) + m[0][1] * c(0, 1) + m[0][2] * c(0, 2);
    let scale: f64 = m.iter().map(|r| dot(*r, *r).sqrt()).product();
    // A cell whose volume is a negligible fraction of its edge-length product is flat: no
    // meaningful lattice planes, and the image count below would explode.
    if !det.is_finite() || scale == 0.0 || det.abs() <= 1e-10 * scale {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for (r, row) in inv.iter_mut().enumerate() {
        for (k, x) in row.iter_mut().enumerate() {
            // inverse = adjugate / det, adjugate = transpose of cofactors
            *x = c(k, r) / det;
        }
    }
    Some(inv)
}

fn check_positions(positions: &[[f64; 3]]) -> Result<()> {
    if let Some(i) = positions
        .iter()
        .position(|p| p.iter().any(|x| !x.is_finite()))
    {
        bail!("position of atom {i} is not finite: {:?}", positions[i]);
    }
    Ok(())
}

/// Pairs closer than this (Å) are reported as coincident atoms instead of being evaluated.
pub const COINCIDENT_DISTANCE: f64 = 1e-6;

/// Pair list with TorchANI 2.9 semantics (ANI.md §7): without a cell, all i < j with
/// r ≤ cutoff. With a cell (rows = lattice vectors, periodic in all three directions), the
/// coordinates are wrapped into the cell, and the pairs are the home-cell pairs i < j plus,
/// for every integer shift n in the half space "first non-zero component > 0" with
/// |n_k| ≤ ceil(cutoff / d_k) (d_k = lattice-plane spacing), all (i, j) including i = j.
///
/// Candidates come from cutoff-sized bins of the wrapped coordinates, so the cost is
/// O(N · shifts) for dense systems; the result (including its order) is identical to the
/// all-pairs enumeration, which a unit test checks.
pub fn pairs(
    positions: &[[f64; 3]],
    cell: Option<[[f64; 3]; 3]>,
    cutoff: f64,
) -> Result<Vec<Pair>> {
    pairs_impl(positions, cell, cutoff, true)
}

/// Spatial hash of points into cubes of edge `size`: every point within `size` of a query
/// lies in the query's cube or one of its 26 neighbours.
struct Bins {
    size: f64,
    map: std::collections::HashMap<[i64; 3], Vec<usize>>,
}

impl Bins {
    fn key(&self, q: [f64; 3]) -> [i64; 3] {
        q.map(|x| (x / self.size).floor() as i64)
    }

    fn new(points: &[[f64; 3]], size: f64) -> Bins {
        let mut b = Bins {
            size,
            map: Default::default(),
        };
        for (i, &q) in points.iter().enumerate() {
            let k = b.key(q);
            b.map.entry(k).or_default().push(i);
        }
        b
    }

    /// Candidate indices near `q`, ascending (so the pair order matches the brute force).
    fn near(&self, q: [f64; 3], out: &mut Vec<usize>) {
        out.clear();
        let k = self.key(q);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    if let Some(v) = self.map.get(&[k[0] + dx, k[1] + dy, k[2] + dz]) {
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        out.sort_unstable();
    }
}

fn pairs_impl(
    positions: &[[f64; 3]],
    cell: Option<[[f64; 3]; 3]>,
    cutoff: f64,
    binned: bool,
) -> Result<Vec<Pair>> {
    check_positions(positions)?;
    ensure!(
        cutoff.is_finite() && cutoff > 0.0,
        "pair cutoff {cutoff} must be a positive number"
    );
    let n = positions.len();
    // Wrapped coordinates, the lattice translation each atom was moved by (in lattice units),
    // and the half-space shift vectors n (ANI.md §7). Without a cell: identity, no shifts.
    let mut wrapped = positions.to_vec();
    let mut lat = vec![[0.0; 3]; n];
    let mut shifts: Vec<[f64; 3]> = Vec::new();
    let lattice = cell.unwrap_or([[0.0; 3]; 3]);
    if let Some(cell) = cell {
        ensure!(
            cell.iter().flatten().all(|x| x.is_finite()),
            "periodic cell {cell:?} has a non-finite entry"
        );
        let inv = inverse3(&cell)
            .ok_or_else(|| anyhow::anyhow!("periodic cell {cell:?} is singular (zero volume)"))?;
        // Wrap: frac = remainder(r · cell⁻¹, 1), keeping the translation removed so shifts
        // can be reported relative to the caller's unwrapped coordinates.
        for (p, (w, k)) in positions.iter().zip(wrapped.iter_mut().zip(lat.iter_mut())) {
            let f = row_times(*p, &inv);
            let mut fw = [0.0; 3];
            for d in 0..3 {
                k[d] = f[d].floor();
                fw[d] = f[d] - k[d];
                // Tiny negative values round up to exactly 1.0; TorchANI maps those to 0.
                if fw[d] >= 1.0 {
                    fw[d] = 0.0;
                    k[d] += 1.0;
                }
            }
            *w = row_times(fw, &cell);
        }
        // ‖column k of cell⁻¹‖ = 1 / (spacing of lattice planes k).
        let reps: [i64; 3] = std::array::from_fn(|k| {
            let col = [inv[0][k], inv[1][k], inv[2][k]];
            (cutoff * dot(col, col).sqrt()).ceil() as i64
        });
        ensure!(
            reps.iter().product::<i64>() <= 1_000_000,
            "periodic cell {cell:?} is too thin for cutoff {cutoff} Å ({reps:?} images per direction)"
        );
        for a in -reps[0]..=reps[0] {
            for b in -reps[1]..=reps[1] {
                for c in -reps[2]..=reps[2] {
                    if matches!([a, b, c].into_iter().find(|&x| x != 0), Some(x) if x > 0) {
                        shifts.push([a as f64, b as f64, c as f64]);
                    }
                }
            }
        }
    }
    let bins = binned.then(|| Bins::new(&wrapped, cutoff));
    let mut out = Vec::new();
    let mut cand: Vec<usize> = Vec::new();
    // The home cell (n = 0, i < j) first, then each shift with all (i, j).
    for nv in std::iter::once(None).chain(shifts.iter().map(Some)) {
        let t = nv.map_or([0.0; 3], |nv| row_times(*nv, &lattice));
        for i in 0..n {
            match &bins {
                // w_j must lie within the cutoff of w_i + t.
                Some(b) => b.near(add(wrapped[i], t), &mut cand),
                None => {
                    cand.clear();
                    cand.extend(0..n);
                }
            }
            for &j in &cand {
                if nv.is_none() && j <= i {
                    continue;
                }
                let v = add(sub(wrapped[i], wrapped[j]), t);
                let r = dot(v, v).sqrt();
                if r > cutoff {
                    continue;
                }
                // Below this the pair direction is rounding noise (wrapping alone leaves
                // ~1e-15 Å), and no physical configuration has two nuclei this close.
                if r < COINCIDENT_DISTANCE {
                    if i == j {
                        bail!("atom {i} coincides with its own periodic image (degenerate cell)");
                    }
                    bail!("atoms {i} and {j} coincide (distance {r:.1e} Å); ANI is undefined for them");
                }
                let nvec = nv.copied().unwrap_or([0.0; 3]);
                let shift = row_times(add(sub(nvec, lat[i]), lat[j]), &lattice);
                out.push(Pair { i, j, shift, v, r });
            }
        }
    }
    Ok(out)
}

/// Cosine cutoff, evaluated as TorchANI does: `0.5·cos(r·(π/R_c)) + 0.5`.
fn fc(r: f64, rc: f64) -> f64 {
    0.5 * (r * (std::f64::consts::PI / rc)).cos() + 0.5
}

fn fc_deriv(r: f64, rc: f64) -> f64 {
    let k = std::f64::consts::PI / rc;
    -0.5 * k * (r * k).sin()
}

/// A neighbor in an angular list: `d` points from the center to the neighbor's image.
struct AngNeighbor {
    atom: usize,
    d: [f64; 3],
    r: f64,
}

/// Everything the AEV and its gradient need: the radial pair list and, per center, its
/// angular neighbors (both directions of each pair within Rca, self-images included).
struct Geometry {
    pairs: Vec<Pair>,
    angular: Vec<Vec<AngNeighbor>>,
}

impl Geometry {
    fn new(
        p: &AevParams,
        species: &[usize],
        n_species: usize,
        positions: &[[f64; 3]],
        cell: Option<[[f64; 3]; 3]>,
    ) -> Result<Geometry> {
        ensure!(
            species.len() == positions.len(),
            "{} species for {} positions",
            species.len(),
            positions.len()
        );
        ensure!(
            n_species == p.n_species,
            "n_species = {n_species}, but the AEV parameters are laid out for {} species",
            p.n_species
        );
        if let Some(i) = species.iter().position(|&s| s >= n_species) {
            bail!(
                "atom {i} has species index {}, but the model has {n_species} species",
                species[i]
            );
        }
        let pairs = pairs(positions, cell, p.rcr)?;
        let mut angular: Vec<Vec<AngNeighbor>> = (0..positions.len()).map(|_| Vec::new()).collect();
        for pr in pairs.iter().filter(|pr| pr.r <= p.rca) {
            // v = r_i − r_j + shift: from center j, i's image is at +v; from center i, −v.
            angular[pr.i].push(AngNeighbor {
                atom: pr.j,
                d: scale(pr.v, -1.0),
                r: pr.r,
            });
            angular[pr.j].push(AngNeighbor {
                atom: pr.i,
                d: pr.v,
                r: pr.r,
            });
        }
        Ok(Geometry { pairs, angular })
    }
}

/// Per-triple quantities shared by the AEV and its derivative (ANI.md §3.4, §6.3).
struct Triple {
    cos_theta: f64,
    /// α = 0.95·cos θ; θ′ = arccos α.
    alpha: f64,
    /// σ = sin θ′.
    sigma: f64,
}

impl Triple {
    fn new(dj: [f64; 3], rj: f64, dk: [f64; 3], rk: f64) -> Triple {
        let cos_theta = dot(dj, dk) / (rj * rk).max(1e-10);
        let alpha = 0.95 * cos_theta;
        Triple {
            cos_theta,
            alpha,
            sigma: ((1.0 - alpha) * (1.0 + alpha)).sqrt(),
        }
    }
}

/// AEVs of all atoms, `N × aev_len` (ANI.md §3): radial block `[species][ShfR]` then angular
/// block `[species pair][ShfA][ShfZ]`. Atoms without neighbors get an all-zero AEV.
pub fn aevs(
    p: &AevParams,
    species: &[usize],
    n_species: usize,
    positions: &[[f64; 3]],
    cell: Option<[[f64; 3]; 3]>,
) -> Result<Vec<Vec<f64>>> {
    let geo = Geometry::new(p, species, n_species, positions, cell)?;
    Ok(aevs_from_geometry(p, species, &geo))
}

fn aevs_from_geometry(p: &AevParams, species: &[usize], geo: &Geometry) -> Vec<Vec<f64>> {
    let n = species.len();
    let (nr, na, nz) = (p.shf_r.len(), p.shf_a.len(), p.shf_z.len());
    let rlen = p.radial_len();
    let mut out = vec![vec![0.0; p.aev_len()]; n];
    for pr in &geo.pairs {
        let f = fc(pr.r, p.rcr);
        for (k, &shf) in p.shf_r.iter().enumerate() {
            let g = 0.25 * (-p.eta_r * (pr.r - shf).powi(2)).exp() * f;
            out[pr.i][nr * species[pr.j] + k] += g;
            out[pr.j][nr * species[pr.i] + k] += g;
        }
    }
    for (i, list) in geo.angular.iter().enumerate() {
        for a in 0..list.len() {
            for b in a + 1..list.len() {
                let (nj, nk) = (&list[a], &list[b]);
                let t = Triple::new(nj.d, nj.r, nk.d, nk.r);
                // TorchANI's path: θ′ = arccos(0.95 cos θ), then cos(θ′ − θ_z).
                let theta = t.alpha.acos();
                let fcc = fc(nj.r, p.rca) * fc(nk.r, p.rca);
                let mean = 0.5 * (nj.r + nk.r);
                let base =
                    rlen + na * nz * p.species_pair_index(species[nj.atom], species[nk.atom]);
                for (ia, &shf_a) in p.shf_a.iter().enumerate() {
                    let f2 = (-p.eta_a * (mean - shf_a).powi(2)).exp();
                    for (iz, &shf_z) in p.shf_z.iter().enumerate() {
                        let f1 = (0.5 * (1.0 + (theta - shf_z).cos())).powf(p.zeta);
                        out[i][base + nz * ia + iz] += 2.0 * f1 * f2 * fcc;
                    }
                }
            }
        }
    }
    out
}

fn celu(x: f64) -> f64 {
    // α = 0.1; PyTorch evaluates the negative branch as α·expm1(x/α) with 1/α = 10 exactly.
    if x > 0.0 {
        x
    } else {
        0.1 * (10.0 * x).exp_m1()
    }
}

fn celu_deriv(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else {
        (10.0 * x).exp()
    }
}

fn layer_forward(l: &super::Layer, x: &[f64]) -> Vec<f64> {
    (0..l.n_out)
        .map(|o| {
            let row = &l.weights[o * l.n_in..(o + 1) * l.n_in];
            l.biases[o] as f64
                + row
                    .iter()
                    .zip(x)
                    .map(|(&w, &xi)| w as f64 * xi)
                    .sum::<f64>()
        })
        .collect()
}

/// Output of one atomic network for one AEV (f64 arithmetic on the f32 weights).
pub fn net_forward(net: &AtomicNet, aev: &[f64]) -> f64 {
    let mut x = aev.to_vec();
    for l in &net.layers {
        x = layer_forward(l, &x);
        if l.activation == Activation::Celu {
            x.iter_mut().for_each(|v| *v = celu(*v));
        }
    }
    x.first().copied().unwrap_or(0.0)
}

/// Network output and its gradient with respect to the AEV, by backpropagation with the
/// exact CELU derivative (ANI.md §6.1).
pub fn net_energy_and_grad(net: &AtomicNet, aev: &[f64]) -> (f64, Vec<f64>) {
    // Keep each layer's pre-activation; the backward pass needs CELU′(z).
    let mut pre: Vec<Vec<f64>> = Vec::with_capacity(net.layers.len());
    let mut x = aev.to_vec();
    for l in &net.layers {
        let z = layer_forward(l, &x);
        x = match l.activation {
            Activation::Celu => z.iter().map(|&v| celu(v)).collect(),
            Activation::Linear => z.clone(),
        };
        pre.push(z);
    }
    let energy = x.first().copied().unwrap_or(0.0);
    let mut delta = vec![1.0; x.len()];
    for (l, z) in net.layers.iter().zip(&pre).rev() {
        if l.activation == Activation::Celu {
            delta
                .iter_mut()
                .zip(z)
                .for_each(|(d, &zv)| *d *= celu_deriv(zv));
        }
        let mut back = vec![0.0; l.n_in];
        for (o, &d) in delta.iter().enumerate() {
            let row = &l.weights[o * l.n_in..(o + 1) * l.n_in];
            back.iter_mut()
                .zip(row)
                .for_each(|(b, &w)| *b += w as f64 * d);
        }
        delta = back;
    }
    (energy, delta)
}

/// Energies (without self energies) and forces of one configuration.
#[derive(Clone, Debug)]
pub struct AniResult {
    /// Ensemble mean of Σ_i ε_i (Hartree); add Σ self energies for the total.
    pub energy_nn: f64,
    /// Per-atom ensemble-mean network energies (Hartree).
    pub atomic_nn: Vec<f64>,
    /// −∂energy_nn/∂r (Hartree/Å).
    pub forces: Vec<[f64; 3]>,
    /// Σ_i ε_i of each loaded member (Hartree).
    pub member_energy_nn: Vec<f64>,
}

/// Shapes a hand-built model could get wrong (the loader guarantees them); checked so that a
/// bad model is an error rather than an out-of-bounds panic.
fn check_model(model: &AniModel) -> Result<()> {
    let n_species = model.symbols.len();
    let aev_len = model.aev.aev_len();
    ensure!(
        !model.members.is_empty(),
        "ANI model '{}' has no members loaded",
        model.source.display()
    );
    for (m, member) in model.members.iter().enumerate() {
        ensure!(
            member.len() == n_species,
            "ANI model member {m} has {} networks for {n_species} species",
            member.len()
        );
        for (s, net) in member.iter().enumerate() {
            let mut width = aev_len;
            for (l, layer) in net.layers.iter().enumerate() {
                ensure!(
                    layer.n_in == width
                        && layer.weights.len() == layer.n_in * layer.n_out
                        && layer.biases.len() == layer.n_out,
                    "ANI model member {m}, species {}, layer {}: shape does not chain from width {width}",
                    model.symbols[s],
                    l + 1
                );
                width = layer.n_out;
            }
            ensure!(
                width == 1 && !net.layers.is_empty(),
                "ANI model member {m}, species {}: the network must end in one output",
                model.symbols[s]
            );
        }
    }
    Ok(())
}

/// Ensemble-mean network energy only (no backprop, no forces): cheaper than [`evaluate`]
/// for finite differences. Self energies are not included.
pub fn energy_nn(
    model: &AniModel,
    species: &[usize],
    positions: &[[f64; 3]],
    cell: Option<[[f64; 3]; 3]>,
) -> Result<f64> {
    check_model(model)?;
    let aev = aevs(&model.aev, species, model.symbols.len(), positions, cell)?;
    let total: f64 = model
        .members
        .iter()
        .map(|member| {
            aev.iter()
                .zip(species)
                .map(|(a, &s)| net_forward(&member[s], a))
                .sum::<f64>()
        })
        .sum();
    Ok(total / model.members.len() as f64)
}

/// Ensemble-mean network energy and analytic forces over all loaded members (ANI.md §4.2,
/// §6). Self energies are not included.
pub fn evaluate(
    model: &AniModel,
    species: &[usize],
    positions: &[[f64; 3]],
    cell: Option<[[f64; 3]; 3]>,
) -> Result<AniResult> {
    check_model(model)?;
    let p = &model.aev;
    let n_species = model.symbols.len();
    let geo = Geometry::new(p, species, n_species, positions, cell)?;
    let aev = aevs_from_geometry(p, species, &geo);
    let n = species.len();
    let n_members = model.members.len();
    let mut atomic_nn = vec![0.0; n];
    let mut member_energy_nn = vec![0.0; n_members];
    let mut grad = vec![vec![0.0; p.aev_len()]; n];
    for (m, member) in model.members.iter().enumerate() {
        for i in 0..n {
            let (e, g) = net_energy_and_grad(&member[species[i]], &aev[i]);
            member_energy_nn[m] += e;
            atomic_nn[i] += e;
            grad[i].iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
    }
    let inv = 1.0 / n_members as f64;
    atomic_nn.iter_mut().for_each(|e| *e *= inv);
    grad.iter_mut().flatten().for_each(|g| *g *= inv);
    let energy_nn = member_energy_nn.iter().sum::<f64>() * inv;
    let forces = forces_from_geometry(p, species, &geo, &grad);
    Ok(AniResult {
        energy_nn,
        atomic_nn,
        forces,
        member_energy_nn,
    })
}

/// Forces `F = −dE/dr` given `grad[i] = ∂E/∂AEV_i` (N × aev_len), by the closed-form chain
/// rule of ANI.md §6.2–6.3. Lets the GPU force kernel be checked in isolation.
pub fn forces_from_aev_grad(
    p: &AevParams,
    species: &[usize],
    n_species: usize,
    positions: &[[f64; 3]],
    cell: Option<[[f64; 3]; 3]>,
    grad: &[Vec<f64>],
) -> Result<Vec<[f64; 3]>> {
    ensure!(
        grad.len() == positions.len(),
        "{} AEV gradients for {} atoms",
        grad.len(),
        positions.len()
    );
    if let Some(i) = grad.iter().position(|g| g.len() != p.aev_len()) {
        bail!(
            "AEV gradient of atom {i} has length {}, expected {}",
            grad[i].len(),
            p.aev_len()
        );
    }
    let geo = Geometry::new(p, species, n_species, positions, cell)?;
    Ok(forces_from_geometry(p, species, &geo, grad))
}

fn forces_from_geometry(
    p: &AevParams,
    species: &[usize],
    geo: &Geometry,
    grad: &[Vec<f64>],
) -> Vec<[f64; 3]> {
    let n = species.len();
    let (nr, na, nz) = (p.shf_r.len(), p.shf_a.len(), p.shf_z.len());
    let rlen = p.radial_len();
    // dE/dr, negated at the end.
    let mut de = vec![[0.0; 3]; n];
    for pr in &geo.pairs {
        let (f, df) = (fc(pr.r, p.rcr), fc_deriv(pr.r, p.rcr));
        let (gi, gj) = (
            &grad[pr.i][nr * species[pr.j]..],
            &grad[pr.j][nr * species[pr.i]..],
        );
        let mut s = 0.0;
        for (k, &shf) in p.shf_r.iter().enumerate() {
            let x = pr.r - shf;
            let dg = 0.25 * (-p.eta_r * x * x).exp() * (-2.0 * p.eta_r * x * f + df);
            s += (gi[k] + gj[k]) * dg;
        }
        let u = scale(pr.v, s / pr.r);
        de[pr.i] = add(de[pr.i], u);
        de[pr.j] = sub(de[pr.j], u);
    }
    let (cz, sz): (Vec<f64>, Vec<f64>) = p.shf_z.iter().map(|t| (t.cos(), t.sin())).unzip();
    let mut f1 = vec![0.0; nz];
    let mut df1 = vec![0.0; nz];
    let mut f2 = vec![0.0; na];
    let mut df2 = vec![0.0; na];
    for (i, list) in geo.angular.iter().enumerate() {
        for a in 0..list.len() {
            for b in a + 1..list.len() {
                let (nj, nk) = (&list[a], &list[b]);
                let (rj, rk) = (nj.r, nk.r);
                let t = Triple::new(nj.d, rj, nk.d, rk);
                for z in 0..nz {
                    let c = t.alpha * cz[z] + t.sigma * sz[z];
                    let s = t.sigma * cz[z] - t.alpha * sz[z];
                    let base = 0.5 * (1.0 + c);
                    f1[z] = base.powf(p.zeta);
                    df1[z] = -0.5 * p.zeta * f1[z] * s / base;
                }
                let mean = 0.5 * (rj + rk);
                for (ia, &shf) in p.shf_a.iter().enumerate() {
                    f2[ia] = (-p.eta_a * (mean - shf).powi(2)).exp();
                    df2[ia] = -p.eta_a * (mean - shf) * f2[ia];
                }
                let (fj, fk) = (fc(rj, p.rca), fc(rk, p.rca));
                let fcc = fj * fk;
                let dfcc_j = fc_deriv(rj, p.rca) * fk;
                let dfcc_k = fj * fc_deriv(rk, p.rca);
                let off = rlen + na * nz * p.species_pair_index(species[nj.atom], species[nk.atom]);
                let gamma = &grad[i][off..off + na * nz];
                let (mut d_theta, mut bj, mut bk) = (0.0, 0.0, 0.0);
                for ia in 0..na {
                    let row = &gamma[nz * ia..nz * (ia + 1)];
                    let h: f64 = row.iter().zip(&f1).map(|(g, f)| g * f).sum();
                    let kz: f64 = row.iter().zip(&df1).map(|(g, d)| g * d).sum();
                    d_theta += kz * f2[ia];
                    bj += h * (df2[ia] * fcc + f2[ia] * dfcc_j);
                    bk += h * (df2[ia] * fcc + f2[ia] * dfcc_k);
                }
                let d_theta = 2.0 * fcc * d_theta;
                let (bj, bk) = (2.0 * bj, 2.0 * bk);
                let dtheta_dc = -0.95 / t.sigma;
                let c = t.cos_theta;
                let dc_dj = sub(scale(nk.d, 1.0 / (rj * rk)), scale(nj.d, c / (rj * rj)));
                let dc_dk = sub(scale(nj.d, 1.0 / (rj * rk)), scale(nk.d, c / (rk * rk)));
                let gj = add(scale(dc_dj, d_theta * dtheta_dc), scale(nj.d, bj / rj));
                let gk = add(scale(dc_dk, d_theta * dtheta_dc), scale(nk.d, bk / rk));
                de[nj.atom] = add(de[nj.atom], gj);
                de[nk.atom] = add(de[nk.atom], gk);
                de[i] = sub(de[i], add(gj, gk));
            }
        }
    }
    de.into_iter().map(|d| scale(d, -1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn water() -> (Vec<usize>, Vec<[f64; 3]>) {
        (
            vec![3, 0, 0],
            vec![
                [0.0, 0.0, 0.119262],
                [0.0, 0.763239, -0.477047],
                [0.0, -0.763239, -0.477047],
            ],
        )
    }

    #[test]
    fn water_aev_matches_spec_values() {
        let p = AevParams::ani2x();
        let (s, x) = water();
        let a = aevs(&p, &s, 7, &x, None).unwrap();
        // ANI.md §4.2, from TorchANI 2.9 f64 (11 significant digits printed).
        let want_radial = [0.26099564143, 0.37485268331, 0.03127554375, 0.00015158801];
        let want_angular = [4.3865735e-4, 0.23442841668, 0.86612510867, 0.03566210180];
        for k in 0..4 {
            assert!(
                (a[0][k] - want_radial[k]).abs() < 1e-11,
                "radial {k}: {}",
                a[0][k]
            );
            assert!(
                (a[0][112 + k] - want_angular[k]).abs() < 1e-11,
                "angular {k}: {}",
                a[0][112 + k]
            );
        }
        // O has no O neighbors; H's only angular triple is H-centred (O, H): pair index 3.
        assert!(a[0][48..64].iter().all(|&v| v == 0.0));
        assert!(a[1][112 + 32 * 3..112 + 32 * 4].iter().any(|&v| v > 0.0));
        assert!(a[1][112..112 + 32 * 3].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn species_pair_index_is_the_upper_triangle() {
        let p = AevParams::ani2x();
        let mut seen = Vec::new();
        for u in 0..7 {
            for v in u..7 {
                seen.push(p.species_pair_index(u, v));
                assert_eq!(p.species_pair_index(u, v), p.species_pair_index(v, u));
            }
        }
        assert_eq!(seen, (0..28).collect::<Vec<_>>());
        assert_eq!(p.species_pair_index(3, 6), 21); // O-Cl, ANI.md §3.6 table
    }

    #[test]
    fn coincident_atoms_are_an_error_naming_them() {
        let p = AevParams::ani2x();
        let x = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]];
        let e = aevs(&p, &[0, 0, 0], 7, &x, None).unwrap_err().to_string();
        assert!(e.contains("atoms 1 and 2 coincide"), "{e}");
        // Coincident through a lattice translation.
        let cell = [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]];
        let x = [[0.5, 0.5, 0.5], [3.5, 0.5, 0.5]];
        let e = pairs(&x, Some(cell), 5.1).unwrap_err().to_string();
        assert!(e.contains("atoms 0 and 1 coincide"), "{e}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let p = AevParams::ani2x();
        let (s, x) = water();
        assert!(aevs(&p, &[3, 0, 7], 7, &x, None)
            .unwrap_err()
            .to_string()
            .contains("atom 2"));
        assert!(aevs(&p, &s, 4, &x, None).is_err());
        assert!(aevs(&p, &s[..2], 7, &x, None).is_err());
        let mut y = x.clone();
        y[1][2] = f64::NAN;
        assert!(aevs(&p, &s, 7, &y, None)
            .unwrap_err()
            .to_string()
            .contains("atom 1"));
        let flat = [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [4.0, 4.0, 0.0]];
        assert!(pairs(&x, Some(flat), 5.1)
            .unwrap_err()
            .to_string()
            .contains("singular"));
        let g = vec![vec![0.0; 1008]; 2];
        assert!(forces_from_aev_grad(&p, &s, 7, &x, None, &g).is_err());
    }

    #[test]
    fn isolated_atom_has_zero_aev() {
        let p = AevParams::ani2x();
        let (mut s, mut x) = water();
        s.push(6);
        x.push([20.0, 0.0, 0.0]);
        let a = aevs(&p, &s, 7, &x, None).unwrap();
        assert!(a[3].iter().all(|&v| v == 0.0));
        assert!(a[0].iter().any(|&v| v != 0.0));
        let g = vec![vec![1.0; 1008]; 4];
        let f = forces_from_aev_grad(&p, &s, 7, &x, None, &g).unwrap();
        assert_eq!(f[3], [0.0; 3]);
        // A single atom: no pairs at all.
        assert!(aevs(&p, &[0], 7, &[[0.0; 3]], None).unwrap()[0]
            .iter()
            .all(|&v| v == 0.0));
    }

    #[test]
    fn pair_shift_refers_to_unwrapped_positions() {
        let cell = [[6.5, 0.0, 0.0], [1.2, 6.1, 0.0], [0.7, -0.9, 5.8]];
        let x = [
            [-3.0, 8.0, 1.0],
            [0.5, 0.5, 12.0],
            [14.0, -7.0, -6.0],
            [2.0, 2.0, 2.0],
        ];
        let ps = pairs(&x, Some(cell), 5.1).unwrap();
        assert!(ps.len() >= 10, "{}", ps.len());
        for pr in &ps {
            let v = add(sub(x[pr.i], x[pr.j]), pr.shift);
            for d in 0..3 {
                assert!((v[d] - pr.v[d]).abs() < 1e-12, "{pr:?}");
            }
            assert!(pr.r <= 5.1);
        }
    }

    /// E(r) = Σ_i g_i · AEV_i(r) with fixed random g: its gradient is exactly what
    /// forces_from_aev_grad computes, so central differences check the AEV derivative alone.
    fn check_aev_grad_fd(species: &[usize], x: &[[f64; 3]], cell: Option<[[f64; 3]; 3]>) -> f64 {
        let p = AevParams::ani2x();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        let g: Vec<Vec<f64>> = x
            .iter()
            .map(|_| {
                (0..p.aev_len())
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect()
            })
            .collect();
        let energy = |y: &[[f64; 3]]| -> f64 {
            let a = aevs(&p, species, 7, y, cell).unwrap();
            a.iter()
                .zip(&g)
                .map(|(ai, gi)| ai.iter().zip(gi).map(|(u, v)| u * v).sum::<f64>())
                .sum()
        };
        let f = forces_from_aev_grad(&p, species, 7, x, cell, &g).unwrap();
        let h = 1e-5;
        let mut worst = 0.0f64;
        for i in 0..x.len() {
            for d in 0..3 {
                let mut y = x.to_vec();
                y[i][d] += h;
                let ep = energy(&y);
                y[i][d] -= 2.0 * h;
                let em = energy(&y);
                let fd = -(ep - em) / (2.0 * h);
                worst = worst.max((fd - f[i][d]).abs());
            }
        }
        worst
    }

    #[test]
    fn aev_gradient_matches_finite_differences() {
        // All seven species, bond lengths 0.9–3 Å, and a near-linear triple (the 0.95 trick).
        let species = [1, 0, 2, 3, 4, 5, 6, 0];
        let x = [
            [0.0, 0.0, 0.0],
            [1.09, 0.0, 0.0],
            [-1.47, 0.02, 0.0],
            [0.3, 1.4, 0.2],
            [-0.5, -1.6, 0.9],
            [0.4, 0.3, -1.5],
            [-2.2, 1.9, -1.0],
            [-2.55, 0.04, 0.01],
        ];
        let worst = check_aev_grad_fd(&species, &x, None);
        println!("AEV-gradient forces vs central differences (h = 1e-5 Å): molecule {worst:.1e}");
        assert!(worst < 1e-7, "max |F_fd - F| = {worst:e}");
        // Periodic 4 Å cube: self-images and several images of each neighbor.
        let cell = [[4.0, 0.0, 0.0], [0.2, 4.1, 0.0], [-0.3, 0.4, 3.9]];
        let worst = check_aev_grad_fd(&species[..5], &x[..5], Some(cell));
        println!("AEV-gradient forces vs central differences (h = 1e-5 Å): periodic {worst:.1e}");
        assert!(worst < 1e-7, "periodic: max |F_fd - F| = {worst:e}");
    }

    #[test]
    fn binned_pairs_equal_all_pairs() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let cells = [
            None,
            Some([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]]),
            Some([[9.0, 0.0, 0.0], [2.5, 8.0, 0.0], [-1.5, 2.0, 7.5]]),
            Some([[13.0, 0.0, 0.0], [0.0, 12.0, 0.0], [0.0, 0.0, 11.0]]),
        ];
        for cell in cells {
            // Periodic: many atoms far outside the cell, so wrapping and negative bins are
            // exercised. Free molecule: a denser cloud, so there is something to find.
            let (lo, hi) = if cell.is_some() {
                (-15.0, 25.0)
            } else {
                (-8.0, 8.0)
            };
            let x: Vec<[f64; 3]> = (0..150)
                .map(|_| std::array::from_fn(|_| rng.random_range(lo..hi)))
                .collect();
            let a = pairs_impl(&x, cell, 5.1, true).unwrap();
            let b = pairs_impl(&x, cell, 5.1, false).unwrap();
            assert!(a.len() > 150, "{cell:?}: only {} pairs", a.len());
            assert_eq!(a, b, "{cell:?}");
        }
    }

    #[test]
    fn celu_is_c1_at_zero() {
        assert_eq!(celu(0.0), 0.0);
        assert!((celu(-1e-9) + 1e-9).abs() < 1e-17);
        assert_eq!(celu_deriv(0.0), 1.0);
        assert!((celu(-1.0) - 0.1 * ((-10.0f64).exp() - 1.0)).abs() < 1e-16);
        assert_eq!(celu_deriv(-800.0), 0.0);
    }
}
