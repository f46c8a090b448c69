//! ANI-2x neural-network potential: model data, NeuroChem loader and float64 CPU reference.
//!
//! - [`neurochem`] reads the NeuroChem files of the ANI model zoo (`.info`, `.params`,
//!   `sae_linfit.dat`, `.nnf`, `.wparam`/`.bparam`) into an [`AniModel`]; it also writes small
//!   synthetic models for tests on machines without the real one.
//! - [`reference`] is the float64 oracle: pair list (TorchANI 2.9 periodic images), AEVs,
//!   atomic networks with backprop, and analytic forces. GPU kernels are checked against it.
//!
//! Units: lengths Å, energies Hartree, forces Hartree/Å. The specification followed throughout
//! is `shared/ANI.md` (section numbers in comments refer to it).
//!
//! Precision policy: weights are kept as the file's f32 values; everything the reference
//! computes is f64. AEV constants are the f32-rounded file values widened to f64, because
//! TorchANI 2.9 stores them in f32 buffers even in float64 mode; the cutoffs stay the f64
//! decimals, because TorchANI keeps them as Python floats (ANI.md §3.1, §6.4, App. A).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

pub mod neurochem;
pub mod reference;

/// ANI-2x species order (S before F: not atomic-number order). The `Atyp` line of the
/// `.params` file is authoritative; [`AniModel::symbols`] holds what was actually loaded.
pub const ANI2X_SYMBOLS: [&str; 7] = ["H", "C", "N", "O", "S", "F", "Cl"];

/// AEV hyper-parameters (ANI.md §3).
#[derive(Clone, Debug, PartialEq)]
pub struct AevParams {
    /// Radial cutoff (Å), f64 decimal (5.1 for ANI-2x).
    pub rcr: f64,
    /// Angular cutoff (Å), f64 decimal (3.5 for ANI-2x).
    pub rca: f64,
    pub eta_r: f64,
    pub shf_r: Vec<f64>,
    pub zeta: f64,
    pub shf_z: Vec<f64>,
    pub eta_a: f64,
    pub shf_a: Vec<f64>,
    /// Number of species the AEV layout is built for (length of the `Atyp` list). An addition
    /// to the agreed API: the block lengths below depend on it.
    pub n_species: usize,
}

impl AevParams {
    /// `n_species · len(ShfR)` (112 for ANI-2x).
    pub fn radial_len(&self) -> usize {
        self.n_species * self.shf_r.len()
    }

    /// Number of unordered species pairs, `n(n+1)/2` (28 for ANI-2x).
    pub fn n_species_pairs(&self) -> usize {
        self.n_species * (self.n_species + 1) / 2
    }

    /// `pairs · len(ShfA) · len(ShfZ)` (896 for ANI-2x).
    pub fn angular_len(&self) -> usize {
        self.n_species_pairs() * self.shf_a.len() * self.shf_z.len()
    }

    /// Radial plus angular length (1008 for ANI-2x).
    pub fn aev_len(&self) -> usize {
        self.radial_len() + self.angular_len()
    }

    /// Row-major upper-triangle index of the unordered species pair {a, b} (ANI.md §3.6).
    pub fn species_pair_index(&self, a: usize, b: usize) -> usize {
        let (u, v) = if a <= b { (a, b) } else { (b, a) };
        self.n_species * u - u * u.saturating_sub(1) / 2 + (v - u)
    }

    /// The ANI-2x constants as TorchANI 2.9 uses them (f32-rounded, widened).
    pub fn ani2x() -> AevParams {
        let f = |x: f64| x as f32 as f64;
        let lin = |start: f64, stop: f64, n: usize| -> Vec<f64> {
            (0..n)
                .map(|j| f(start + (stop - start) / n as f64 * j as f64))
                .collect()
        };
        let pi = std::f64::consts::PI;
        AevParams {
            rcr: 5.1,
            rca: 3.5,
            eta_r: f(19.7),
            shf_r: lin(0.8, 5.1, 16),
            zeta: f(14.1),
            shf_z: lin(pi / 8.0, pi + pi / 8.0, 4),
            eta_a: f(12.5),
            shf_a: lin(0.8, 3.5, 8),
            n_species: 7,
        }
    }
}

/// Activation of one layer. NeuroChem code 9 is CELU (α = 0.1, TorchANI's `TightCELU`),
/// code 6 is the identity used on the output layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Celu,
    Linear,
}

/// One dense layer: `y[o] = b[o] + Σ_i W[o][i]·x[i]`, then the activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub n_in: usize,
    pub n_out: usize,
    /// Row-major `[n_out][n_in]`, exactly as stored in the `.wparam` file.
    pub weights: Vec<f32>,
    pub biases: Vec<f32>,
    pub activation: Activation,
}

/// The network of one species in one ensemble member; the last layer has one output.
#[derive(Clone, Debug, PartialEq)]
pub struct AtomicNet {
    pub layers: Vec<Layer>,
}

/// A loaded ANI ensemble (or a single member of it).
#[derive(Clone, Debug)]
pub struct AniModel {
    /// Species order, e.g. H C N O S F Cl.
    pub symbols: Vec<String>,
    pub aev: AevParams,
    /// Hartree, per species, exact file values.
    pub self_energies: Vec<f64>,
    /// `[member][species]`.
    pub members: Vec<Vec<AtomicNet>>,
    /// The `.info` file the model came from.
    pub source: PathBuf,
}

impl AniModel {
    /// Load every ensemble member listed in the `.info` file.
    pub fn load(info: &Path) -> Result<AniModel> {
        neurochem::load_info(info, None)
    }

    /// Load only member `k` (error if `k` is not below the ensemble size).
    pub fn load_member(info: &Path, k: usize) -> Result<AniModel> {
        neurochem::load_info(info, Some(k))
    }

    pub fn species_of(&self, symbol: &str) -> Option<usize> {
        self.symbols.iter().position(|s| s == symbol)
    }

    /// Species index of each atom; the error names the first atom (1-based, as in the file)
    /// the model cannot handle.
    pub fn species_for_atoms(&self, symbols: &[String]) -> Result<Vec<usize>> {
        let mut out = Vec::with_capacity(symbols.len());
        for (i, s) in symbols.iter().enumerate() {
            match self.species_of(s) {
                Some(k) => out.push(k),
                None => bail!(
                    "atom {} is element {s}, which the ANI model ({}) does not cover",
                    i + 1,
                    self.symbols.join(" ")
                ),
            }
        }
        Ok(out)
    }

    /// The self energies TorchANI 2.9 actually adds: the file values rounded to f32
    /// (it keeps them in a float32 buffer even after `model.double()`, ANI.md §1.3).
    pub fn self_energies_f32_rounded(&self) -> Vec<f64> {
        self.self_energies
            .iter()
            .map(|&e| e as f32 as f64)
            .collect()
    }

    /// Number of loaded ensemble members.
    pub fn n_members(&self) -> usize {
        self.members.len()
    }
}
pub mod eval;
