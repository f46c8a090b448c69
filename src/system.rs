//! Host-side System: the plain-data description of atoms in an orthorhombic periodic box.
//!
//! Shapes: `positions`/`velocities` are one `[f64; 3]` per atom, in the config's units
//! (Å and Å/fs, or σ and σ/τ). `types[i]` indexes `type_names`/`type_masses`. Order is the
//! input order and is what every output uses, whatever the GPU does internally.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::units::Units;

#[derive(Clone, Debug, Default)]
pub struct System {
    pub positions: Vec<[f64; 3]>,
    pub velocities: Vec<[f64; 3]>,
    pub types: Vec<u32>,
    pub type_names: Vec<String>,
    /// Mass of each type (amu or m).
    pub type_masses: Vec<f64>,
    /// Per-atom charge (e); zero for neutral LJ systems.
    pub charges: Vec<f64>,
    /// Orthorhombic box edge lengths; every direction is periodic.
    pub box_lengths: [f64; 3],
}

impl System {
    pub fn len(&self) -> usize {
        self.positions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
    pub fn volume(&self) -> f64 {
        self.box_lengths.iter().product()
    }
    pub fn mass(&self, i: usize) -> f64 {
        self.type_masses[self.types[i] as usize]
    }
    /// Number of a type name, adding it (with the given mass) when new.
    pub fn type_index(&mut self, name: &str, mass: f64) -> u32 {
        if let Some(t) = self.type_names.iter().position(|n| n == name) {
            return t as u32;
        }
        self.type_names.push(name.to_string());
        self.type_masses.push(mass);
        (self.type_names.len() - 1) as u32
    }

    /// Checks that the system is physically meaningful; names the first offending item.
    pub fn validate(&self) -> Result<()> {
        let n = self.len();
        if n == 0 {
            bail!("the system has no atoms");
        }
        if self.velocities.len() != n || self.types.len() != n || self.charges.len() != n {
            bail!("internal: per-atom arrays have different lengths");
        }
        for (d, &l) in self.box_lengths.iter().enumerate() {
            if !(l.is_finite() && l > 0.0) {
                bail!(
                    "box length {} is {l}; it must be a positive number",
                    ["x", "y", "z"][d]
                );
            }
        }
        for (t, &m) in self.type_masses.iter().enumerate() {
            if !(m.is_finite() && m > 0.0) {
                bail!(
                    "mass of type '{}' is {m}; it must be positive",
                    self.type_names[t]
                );
            }
        }
        for (i, (p, v)) in self.positions.iter().zip(&self.velocities).enumerate() {
            if p.iter().chain(v.iter()).any(|x| !x.is_finite()) {
                bail!("atom {} has a non-finite position or velocity", i + 1);
            }
        }
        Ok(())
    }

    /// Wraps every position into [0, L) along each axis.
    pub fn wrap(&mut self) {
        for p in &mut self.positions {
            for d in 0..3 {
                let l = self.box_lengths[d];
                p[d] -= l * (p[d] / l).floor();
                if p[d] >= l {
                    p[d] = 0.0;
                }
            }
        }
    }

    /// Kinetic energy in the config's energy unit.
    pub fn kinetic_energy(&self, units: Units) -> f64 {
        let mut ke = 0.0;
        for i in 0..self.len() {
            let v = self.velocities[i];
            ke += 0.5 * self.mass(i) * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        }
        ke * units.mvv2e()
    }

    /// Sets Maxwell–Boltzmann velocities for temperature `t` from `seed`, removes the
    /// centre-of-mass momentum and rescales so the instantaneous temperature (with 3N−3
    /// degrees of freedom) is exactly `t`, as LAMMPS's `velocity ... create` does.
    pub fn maxwell_boltzmann(&mut self, t: f64, seed: u64, units: Units) {
        let n = self.len();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let kb = units.kb();
        for i in 0..n {
            let s = (kb * t / self.mass(i) * units.ftm2v()).sqrt();
            for d in 0..3 {
                let g: f64 = StandardNormal.sample(&mut rng);
                self.velocities[i][d] = s * g;
            }
        }
        self.zero_momentum();
        if n > 1 && t > 0.0 {
            let dof = (3 * n - 3) as f64;
            let now = 2.0 * self.kinetic_energy(units) / (dof * kb);
            let scale = (t / now).sqrt();
            for v in &mut self.velocities {
                for x in v.iter_mut() {
                    *x *= scale;
                }
            }
        }
    }

    /// Stores the atoms in a random order (from `seed`): the state of a liquid after a long
    /// run, whose atom indices no longer say where the atoms are. Lattice builders number
    /// atoms in space order, which flatters any kernel that reads by atom index (benches'
    /// `--shuffle`).
    pub fn shuffle(&mut self, seed: u64) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut rand_pcg::Pcg64::seed_from_u64(seed));
        let take = |v: &Vec<[f64; 3]>| order.iter().map(|&i| v[i]).collect::<Vec<_>>();
        self.positions = take(&self.positions);
        self.velocities = take(&self.velocities);
        self.types = order.iter().map(|&i| self.types[i]).collect();
        if self.charges.len() == order.len() {
            self.charges = order.iter().map(|&i| self.charges[i]).collect();
        }
    }

    pub fn zero_momentum(&mut self) {
        let mut p = [0.0; 3];
        let mut mtot = 0.0;
        for i in 0..self.len() {
            let m = self.mass(i);
            mtot += m;
            for d in 0..3 {
                p[d] += m * self.velocities[i][d];
            }
        }
        for v in &mut self.velocities {
            for d in 0..3 {
                v[d] -= p[d] / mtot;
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lattice {
    /// Simple cubic: 1 atom per cell.
    Sc,
    /// Face-centred cubic: 4 atoms per cell.
    Fcc,
}

impl Lattice {
    pub fn basis(self) -> &'static [[f64; 3]] {
        match self {
            Lattice::Sc => &[[0.0, 0.0, 0.0]],
            Lattice::Fcc => &[
                [0.0, 0.0, 0.0],
                [0.5, 0.5, 0.0],
                [0.5, 0.0, 0.5],
                [0.0, 0.5, 0.5],
            ],
        }
    }
    /// Lattice constant that gives `density` atoms per unit volume.
    pub fn constant_for_density(self, density: f64) -> f64 {
        (self.basis().len() as f64 / density).cbrt()
    }
    pub fn parse(s: &str) -> Option<Lattice> {
        match s {
            "sc" => Some(Lattice::Sc),
            "fcc" => Some(Lattice::Fcc),
            _ => None,
        }
    }
}

/// Fills a box of `cells` unit cells of lattice constant `a` with atoms of one type, at rest.
/// Atom order: cell x fastest-varying last (LAMMPS-like: basis within a cell, then x, y, z).
pub fn lattice_system(
    lattice: Lattice,
    cells: [usize; 3],
    a: f64,
    name: &str,
    mass: f64,
) -> System {
    let mut s = System::default();
    let t = s.type_index(name, mass);
    for k in 0..cells[2] {
        for j in 0..cells[1] {
            for i in 0..cells[0] {
                for b in lattice.basis() {
                    s.positions.push([
                        (i as f64 + b[0]) * a,
                        (j as f64 + b[1]) * a,
                        (k as f64 + b[2]) * a,
                    ]);
                }
            }
        }
    }
    let n = s.positions.len();
    s.velocities = vec![[0.0; 3]; n];
    s.types = vec![t; n];
    s.charges = vec![0.0; n];
    s.box_lengths = [
        cells[0] as f64 * a,
        cells[1] as f64 * a,
        cells[2] as f64 * a,
    ];
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn shuffle_permutes_atoms_together() {
        let mut s = lattice_system(Lattice::Fcc, [3, 3, 3], 1.6, "A", 1.0);
        s.maxwell_boltzmann(1.0, 3, Units::Lj);
        for (i, q) in s.charges.iter_mut().enumerate() {
            *q = i as f64;
        }
        let before = s.clone();
        s.shuffle(11);
        let n = s.len();
        assert_eq!(n, before.len());
        // Atom k now is atom charges[k] of before: position and velocity came with it, and
        // every atom appears once.
        let mut seen = vec![false; n];
        let mut moved = 0;
        for k in 0..n {
            let i = s.charges[k] as usize;
            assert!(!seen[i]);
            seen[i] = true;
            assert_eq!(s.positions[k], before.positions[i]);
            assert_eq!(s.velocities[k], before.velocities[i]);
            assert_eq!(s.types[k], before.types[i]);
            moved += usize::from(i != k);
        }
        assert!(moved > n / 2, "only {moved} of {n} atoms moved");
    }
    #[test]
    fn fcc_count_density_and_exact_temperature() {
        let a = Lattice::Fcc.constant_for_density(0.8442);
        let mut s = lattice_system(Lattice::Fcc, [5, 4, 3], a, "A", 1.0);
        assert_eq!(s.len(), 4 * 60);
        assert!((s.len() as f64 / s.volume() - 0.8442).abs() < 1e-12);
        s.maxwell_boltzmann(1.44, 7, Units::Lj);
        let dof = (3 * s.len() - 3) as f64;
        assert!((2.0 * s.kinetic_energy(Units::Lj) / dof - 1.44).abs() < 1e-12);
        let mut p = [0.0; 3];
        for v in &s.velocities {
            for d in 0..3 {
                p[d] += v[d];
            }
        }
        assert!(p.iter().all(|x| x.abs() < 1e-10));
    }
}
