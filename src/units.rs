//! Unit systems. Everything the engine computes is in the *config's* units; these constants
//! convert between the pieces that do not share a unit (kinetic energy, acceleration, pressure).
//!
//! - `Physical`: length Å, time fs, mass amu (g/mol), energy eV, temperature K, charge e.
//! - `Lj`: reduced Lennard-Jones units (σ, ε, m, τ = σ√(m/ε)); k_B = 1.

use serde::Deserialize;

/// Boltzmann constant in eV/K (CODATA 2018, exact by SI definition).
pub const KB_EV_PER_K: f64 = 8.617_333_262e-5;
/// 1 eV/(Å·amu) in Å/fs²: e/(1e-10 m · u) is in m/s², and 1 m/s² = 1e10 Å / 1e30 fs².
pub const EV_PER_A_AMU_TO_A_PER_FS2: f64 =
    1.602_176_634e-19 / (1e-10 * 1.660_539_066_60e-27) * 1e-20;
/// 1 eV/Å³ in bar.
pub const EV_PER_A3_TO_BAR: f64 = 1.602_176_634e6;
/// 1 Hartree in eV (the constant TorchANI uses).
pub const HARTREE_EV: f64 = 27.211_386_024_367_243;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Units {
    /// Å, fs, amu, eV, K, e.
    #[default]
    Physical,
    /// Reduced LJ units σ, ε, m, τ.
    Lj,
}

impl Units {
    /// Boltzmann constant in energy units per temperature unit.
    pub fn kb(self) -> f64 {
        match self {
            Units::Physical => KB_EV_PER_K,
            Units::Lj => 1.0,
        }
    }
    /// Factor turning force/mass into acceleration (LAMMPS calls it ftm2v).
    pub fn ftm2v(self) -> f64 {
        match self {
            Units::Physical => EV_PER_A_AMU_TO_A_PER_FS2,
            Units::Lj => 1.0,
        }
    }
    /// Factor turning m·v² into energy (1/ftm2v).
    pub fn mvv2e(self) -> f64 {
        1.0 / self.ftm2v()
    }
    /// Hartree in this unit system's energy unit (ANI models work in Hartree and Å; only
    /// physical units are allowed with them, where this is eV per Hartree).
    pub fn ani_energy_scale(self) -> f64 {
        match self {
            Units::Physical => crate::forces::ani::HARTREE_EV,
            Units::Lj => 1.0,
        }
    }
    /// Factor turning energy/volume into the reported pressure unit.
    pub fn pressure_factor(self) -> f64 {
        match self {
            Units::Physical => EV_PER_A3_TO_BAR,
            Units::Lj => 1.0,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Units::Physical => "physical",
            Units::Lj => "lj",
        }
    }
    /// Human description of every column's unit, for machine-readable outputs.
    pub fn describe(self) -> &'static str {
        match self {
            Units::Physical => "length A, time fs, mass amu, energy eV, temperature K, pressure bar",
            Units::Lj => "reduced LJ: length sigma, time tau, mass m, energy epsilon, temperature epsilon/kB, pressure epsilon/sigma^3",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn acceleration_constant_matches_lammps_metal() {
        // LAMMPS metal units: ftm2v = 1/1.0364269e-4 (eV/Å/amu → Å/ps²); per fs² that is 1e-6 of it.
        let lammps = 1.0 / 1.036_426_9e-4 * 1e-6;
        assert!((EV_PER_A_AMU_TO_A_PER_FS2 / lammps - 1.0).abs() < 1e-7);
    }
}
