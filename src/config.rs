//! The TOML config schema (documented in README.md) and its translation into a
//! [`SimSpec`]. Unknown keys are errors; every error names the file and what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use std::sync::Arc;

use crate::ani::AniModel;
use crate::engine::SimSpec;
use crate::forces::ani::{AniPrecision, AniSpec};
use crate::forces::coulomb::{self, CoulombMethod, CoulombSpec, COULOMB_K_EV_A};
use crate::forces::lj::LjSpec;
use crate::integrate::{Integrator, Method};
use crate::io::nist_spce;
use crate::io::xyz;
use crate::system::{lattice_system, Lattice, System};
use crate::units::Units;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub units: Units,
    /// Free-text description shown by the viewer and logs.
    #[serde(default)]
    pub description: Option<String>,
    pub system: SystemConfig,
    #[serde(default)]
    pub types: BTreeMap<String, TypeConfig>,
    #[serde(default)]
    pub velocities: Option<VelocityConfig>,
    pub forces: ForcesConfig,
    #[serde(default)]
    pub neighbor: NeighborConfig,
    pub integrator: IntegratorConfig,
    #[serde(default)]
    pub run: RunConfig,
    /// `[eval]`: how `wgmd eval` reports (energy unit).
    #[serde(default)]
    pub eval: EvalConfig,
    /// Teaching text the viewers show beside the simulation (desktop and browser).
    #[serde(default)]
    pub about: Option<AboutConfig>,
    /// The `[system] structure` already in memory (the browser has no files to read it from):
    /// used instead of reading the file when set.
    #[serde(skip)]
    pub structure_frame: Option<xyz::XyzFrame>,
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub source: String,
}

/// `[about]`: a title and a short explanation of what the preset shows and what to try.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AboutConfig {
    pub title: String,
    pub text: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    pub lattice: Option<String>,
    pub cells: Option<[usize; 3]>,
    pub density: Option<f64>,
    pub lattice_constant: Option<f64>,
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    pub structure: Option<PathBuf>,
    #[serde(rename = "box")]
    pub box_lengths: Option<[f64; 3]>,
    /// Structure file format: "xyz" (plain/extended XYZ) or "nist-spce" (the NIST SPC/E
    /// reference text format, box read from the file). Default: by extension (.xyz) or content.
    pub format: Option<String>,
    /// Consecutive groups of this many atoms are rigid molecules: every pair inside a group
    /// is excluded from real-space Coulomb and LJ (NIST SPC/E files imply 3).
    pub molecule_size: Option<usize>,
    /// `lattice = "rocksalt"`: the cation and anion type names, e.g. ["Na", "Cl"].
    pub species: Option<[String; 2]>,
    /// Extra excluded pairs, 1-based atom numbers: [[1, 2], [1, 3]].
    pub exclusions: Option<Vec<[u32; 2]>>,
}

/// `[eval]`: reporting options for `wgmd eval`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// "K" reports energies as E/k_B in kelvin (forces in K/Å), as NIST tables do.
    pub energy_unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeConfig {
    pub mass: Option<f64>,
    /// Charge (e) of every atom of this type (overrides a structure's charge column).
    pub charge: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityConfig {
    pub temperature: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    12345
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcesConfig {
    pub lj: Option<LjConfig>,
    pub ani: Option<AniConfig>,
    pub coulomb: Option<CoulombConfig>,
}

/// `[forces.coulomb]`: see `forces::coulomb` for the methods.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoulombConfig {
    /// "cutoff", "reaction-field", "dsf", "ewald" or "pme".
    pub method: String,
    /// Real-space cutoff (length units).
    pub cutoff: f64,
    /// Requested relative accuracy for ewald/pme (like OpenMM's ewaldErrorTolerance);
    /// chooses alpha, kmax / grid and order unless they are given. Default 5e-4.
    pub tolerance: Option<f64>,
    /// Ewald/PME splitting or DSF damping (1/length).
    pub alpha: Option<f64>,
    /// alpha as a multiple of 1/min(L) (NIST: 5.6), so a preset follows the file's box.
    pub alpha_l: Option<f64>,
    /// Ewald: largest |n| per axis (one number or three).
    pub kmax: Option<KmaxConfig>,
    /// Ewald: keep only wave vectors with n_x²+n_y²+n_z² < k2max (NIST: 27).
    pub k2max: Option<u32>,
    /// PME grid points per axis and B-spline order (4-6).
    pub grid: Option<[u32; 3]>,
    pub order: Option<u32>,
    /// Reaction field: dielectric constant beyond the cutoff (inf = conducting, the default).
    pub epsilon_rf: Option<f64>,
    /// Allow a net charge with ewald/pme (uniform neutralising background).
    #[serde(default)]
    pub neutralize: bool,
    /// e²/(4πε₀) in the config's units; physical units default to 14.3996454784 eV·Å.
    pub coulomb_k: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum KmaxConfig {
    One(u32),
    Three([u32; 3]),
}

/// `[forces.ani]`: an ANI model in NeuroChem format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AniConfig {
    /// The `.info` file: relative to the config, or a file name found in `$WGMD_MODEL_DIR`.
    pub model: PathBuf,
    /// Use one ensemble member only (default: all).
    pub model_index: Option<usize>,
    /// "f32" (default) or "f16".
    #[serde(default = "default_ani_precision")]
    pub precision: String,
}

fn default_ani_precision() -> String {
    "f32".into()
}

/// Where to get ANI-2x when a config names a model file that is not there.
pub const ANI_MODEL_HELP: &str = "ANI-2x is published (MIT licence) in the ANI model zoo, \
https://github.com/aiqm/ani-model-zoo (resources/ani-2x_8x.info and resources/ani-2x_8x/); \
point [forces.ani] model at its .info file or set WGMD_MODEL_DIR to the folder holding it";

impl AniConfig {
    /// The model file: as written (relative to the config's folder), else in $WGMD_MODEL_DIR.
    pub fn resolve(&self, base_dir: &Path, src: &str) -> Result<PathBuf> {
        let direct = base_dir.join(&self.model);
        if direct.is_file() {
            return Ok(direct);
        }
        if let Some(dir) = std::env::var_os("WGMD_MODEL_DIR") {
            let p = Path::new(&dir).join(&self.model);
            if p.is_file() {
                return Ok(p);
            }
        }
        bail!(
            "{src}: forces.ani.model '{}' was not found (looked in {} and $WGMD_MODEL_DIR). {ANI_MODEL_HELP}",
            self.model.display(),
            base_dir.display()
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LjConfig {
    pub cutoff: f64,
    #[serde(default)]
    pub shift: bool,
    #[serde(default)]
    pub tail: bool,
    pub types: BTreeMap<String, LjTypeConfig>,
    #[serde(default)]
    pub pairs: Vec<LjPairConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LjTypeConfig {
    pub sigma: f64,
    pub epsilon: Option<f64>,
    /// ε/k_B in kelvin (physical units only).
    pub epsilon_kelvin: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LjPairConfig {
    pub types: [String; 2],
    pub sigma: f64,
    pub epsilon: Option<f64>,
    pub epsilon_kelvin: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    pub skin: Option<f64>,
    /// "auto" (default), "verlet" or "cells" (no Verlet list: for tens of millions of atoms).
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegratorConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub dt: f64,
    pub temperature: Option<f64>,
    pub friction: Option<f64>,
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default = "default_steps")]
    pub steps: u64,
    #[serde(default = "default_every")]
    pub every: u64,
}

fn default_steps() -> u64 {
    1000
}
fn default_every() -> u64 {
    100
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            steps: default_steps(),
            every: default_every(),
        }
    }
}

fn energy(units: Units, what: &str, eps: Option<f64>, eps_k: Option<f64>) -> Result<f64> {
    match (eps, eps_k, units) {
        (Some(e), None, _) => Ok(e),
        (None, Some(k), Units::Physical) => Ok(k * crate::units::KB_EV_PER_K),
        (None, Some(_), Units::Lj) => {
            bail!("{what}: epsilon_kelvin needs units = \"physical\"; give epsilon")
        }
        (Some(_), Some(_), _) => bail!("{what}: give epsilon or epsilon_kelvin, not both"),
        (None, None, _) => bail!("{what}: epsilon (or epsilon_kelvin) is missing"),
    }
}

impl Config {
    pub fn from_str(text: &str, source: &str, base_dir: &Path) -> Result<Config> {
        let mut c: Config =
            toml::from_str(text).map_err(|e| anyhow!("{source}: {}", e.to_string().trim_end()))?;
        c.base_dir = base_dir.to_path_buf();
        c.source = source.to_string();
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config '{}'", path.display()))?;
        Config::from_str(
            &text,
            &path.display().to_string(),
            path.parent().unwrap_or(Path::new(".")),
        )
    }

    fn mass_of(&self, name: &str) -> Option<f64> {
        self.types
            .get(name)
            .and_then(|t| t.mass)
            .or_else(|| match self.units {
                Units::Physical => xyz::element_mass(name),
                Units::Lj => None,
            })
    }

    /// The system and its excluded pairs (0-based).
    fn build_system(&self) -> Result<(System, Vec<[u32; 2]>)> {
        let s = &self.system;
        let src = &self.source;
        let mut excl: Vec<[u32; 2]> = Vec::new();
        let mut sys = match (&s.lattice, &s.structure) {
            (Some(_), Some(_)) => {
                bail!("{src}: [system] gives both lattice and structure; choose one")
            }
            (None, None) => bail!(
                "{src}: [system] needs either lattice = \"fcc\"/\"sc\" or structure = \"file.xyz\""
            ),
            (Some(kind), None) if kind == "rocksalt" => {
                let cells = s
                    .cells
                    .ok_or_else(|| anyhow!("{src}: system.cells = [nx, ny, nz] is missing"))?;
                let a = s.lattice_constant.filter(|a| a.is_finite() && *a > 0.0).ok_or_else(|| {
                    anyhow!("{src}: lattice = \"rocksalt\" needs a positive system.lattice_constant (conventional cell edge)")
                })?;
                let [cat, an] = s.species.clone().ok_or_else(|| {
                    anyhow!("{src}: lattice = \"rocksalt\" needs system.species = [\"cation\", \"anion\"]")
                })?;
                let mass = |name: &str| {
                    self.mass_of(name).ok_or_else(|| {
                        anyhow!("{src}: no mass for type '{name}': add [types.{name}] mass = ...")
                    })
                };
                if cells.contains(&0) {
                    bail!("{src}: system.cells must all be at least 1");
                }
                coulomb::rock_salt(
                    cells.map(|c| 2 * c),
                    a / 2.0,
                    [&cat, &an],
                    [mass(&cat)?, mass(&an)?],
                )
            }
            (Some(kind), None) => {
                let lattice = Lattice::parse(kind).ok_or_else(|| {
                    anyhow!(
                        "{src}: system.lattice = \"{kind}\" is unknown (known: fcc, sc, rocksalt)"
                    )
                })?;
                let cells = s
                    .cells
                    .ok_or_else(|| anyhow!("{src}: system.cells = [nx, ny, nz] is missing"))?;
                if cells.contains(&0) {
                    bail!("{src}: system.cells must all be at least 1");
                }
                let a = match (s.density, s.lattice_constant) {
                    (Some(d), None) if d > 0.0 && d.is_finite() => lattice.constant_for_density(d),
                    (None, Some(a)) if a > 0.0 && a.is_finite() => a,
                    (Some(_), Some(_)) => {
                        bail!("{src}: give system.density or system.lattice_constant, not both")
                    }
                    (None, None) => {
                        bail!("{src}: system.density or system.lattice_constant is missing")
                    }
                    _ => {
                        bail!("{src}: system.density / lattice_constant must be a positive number")
                    }
                };
                let name = s.type_name.clone().unwrap_or_else(|| "A".into());
                let mass = self.mass_of(&name).ok_or_else(|| {
                    anyhow!("{src}: no mass for type '{name}': add [types.{name}] mass = ...")
                })?;
                lattice_system(lattice, cells, a, &name, mass)
            }
            (None, Some(file)) => {
                let path = self.base_dir.join(file);
                let is_xyz = path.extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("xyz") || e.eq_ignore_ascii_case("extxyz")
                });
                let nist = match s.format.as_deref() {
                    Some("nist-spce") => true,
                    Some("xyz") => false,
                    Some(other) => bail!(
                        "{src}: system.format = \"{other}\" is unknown (known: xyz, nist-spce)"
                    ),
                    None if is_xyz || self.structure_frame.is_some() => false,
                    None => std::fs::read_to_string(&path)
                        .map(|t| nist_spce::looks_like_nist(&t))
                        .unwrap_or(false),
                };
                let mut frame = if let Some(f) = &self.structure_frame {
                    // Already parsed in memory (the browser has no files to read).
                    f.clone()
                } else if nist {
                    let c = nist_spce::read_nist_spce_file(&path)?;
                    excl = c.exclusions();
                    c.frame
                } else {
                    xyz::read_xyz_file(&path)?
                };
                if let Some(b) = s.box_lengths {
                    frame.box_lengths = Some(b);
                }
                frame
                    .into_system(&|name| self.mass_of(name))
                    .with_context(|| format!("{src}: structure '{}'", path.display()))?
            }
        };
        if let (Some(b), Some(_)) = (s.box_lengths, &s.lattice) {
            sys.box_lengths = b;
        }
        let n = sys.len();
        if let Some(m) = s.molecule_size {
            if m == 0 || n % m != 0 {
                bail!("{src}: system.molecule_size = {m} does not divide the {n} atoms into whole molecules");
            }
            for start in (0..n).step_by(m) {
                for a in start..start + m {
                    for b in a + 1..start + m {
                        excl.push([a as u32, b as u32]);
                    }
                }
            }
        }
        for &[a, b] in s.exclusions.iter().flatten() {
            if a == 0 || b == 0 || a as usize > n || b as usize > n || a == b {
                bail!("{src}: system.exclusions pair [{a}, {b}] must name two different atoms in 1..={n}");
            }
            excl.push([a.min(b) - 1, a.max(b) - 1]);
        }
        excl.sort_unstable();
        excl.dedup();
        for (name, t) in &self.types {
            if !sys.type_names.contains(name) {
                bail!(
                    "{src}: [types.{name}] names a type that no atom has (types: {})",
                    sys.type_names.join(", ")
                );
            }
            let k = sys.type_names.iter().position(|n| n == name).unwrap();
            if let Some(m) = t.mass {
                sys.type_masses[k] = m;
            }
            if let Some(q) = t.charge {
                if !q.is_finite() {
                    bail!("{src}: types.{name}.charge is {q}; it must be a finite number");
                }
                for (i, &ti) in sys.types.iter().enumerate() {
                    if ti as usize == k {
                        sys.charges[i] = q;
                    }
                }
            }
        }
        if let Some(v) = &self.velocities {
            if !(v.temperature.is_finite() && v.temperature >= 0.0) {
                bail!(
                    "{src}: velocities.temperature is {}; it must be zero or positive",
                    v.temperature
                );
            }
            sys.maxwell_boltzmann(v.temperature, v.seed, self.units);
        }
        sys.validate().map_err(|e| anyhow!("{src}: {e}"))?;
        Ok((sys, excl))
    }

    fn coulomb_spec(
        &self,
        c: &CoulombConfig,
        system: &System,
        exclusions: Vec<[u32; 2]>,
    ) -> Result<CoulombSpec> {
        let src = &self.source;
        let coulomb_k = match (c.coulomb_k, self.units) {
            (Some(k), _) => k,
            (None, Units::Physical) => COULOMB_K_EV_A,
            (None, Units::Lj) => bail!(
                "{src}: forces.coulomb.coulomb_k is missing: reduced LJ units need e²/(4πε₀) in ε·σ/q²"
            ),
        };
        let l = system.box_lengths;
        let lmin = l.iter().cloned().fold(f64::INFINITY, f64::min);
        let alpha = match (c.alpha, c.alpha_l) {
            (Some(_), Some(_)) => bail!("{src}: give forces.coulomb.alpha or alpha_l, not both"),
            (Some(a), None) => Some(a),
            (None, Some(al)) => Some(al / lmin),
            (None, None) => None,
        };
        let tol = c.tolerance.unwrap_or(5e-4);
        let unused = |what: &str, set: bool| -> Result<()> {
            if set {
                bail!(
                    "{src}: forces.coulomb.{what} does not apply to method = \"{}\"",
                    c.method
                );
            }
            Ok(())
        };
        let method = match c.method.as_str() {
            "cutoff" => {
                unused("alpha", alpha.is_some())?;
                CoulombMethod::Cutoff
            }
            "reaction-field" | "rf" => {
                unused("alpha", alpha.is_some())?;
                CoulombMethod::ReactionField {
                    epsilon_rf: c.epsilon_rf.unwrap_or(f64::INFINITY),
                }
            }
            "dsf" => CoulombMethod::Dsf {
                // Fennell & Gezelter's recommended damping for r_c ≈ 9-12 Å is 0.2 Å⁻¹ (≈ 2/r_c).
                alpha: alpha.unwrap_or(2.0 / c.cutoff),
            },
            "ewald" => {
                unused("grid", c.grid.is_some())?;
                unused("order", c.order.is_some())?;
                if !(tol > 0.0 && tol < 0.5) {
                    bail!("{src}: forces.coulomb.tolerance is {tol}; it must be between 0 and 0.5 (e.g. 5e-4)");
                }
                let alpha = alpha.unwrap_or(coulomb::ewald_alpha_for(c.cutoff, tol));
                let kmax = match &c.kmax {
                    Some(KmaxConfig::One(k)) => [*k; 3],
                    Some(KmaxConfig::Three(k)) => *k,
                    None => coulomb::kmax_for(l, alpha, tol),
                };
                CoulombMethod::Ewald {
                    alpha,
                    kmax,
                    k2max: c.k2max,
                }
            }
            "pme" => {
                unused("kmax", c.kmax.is_some())?;
                unused("k2max", c.k2max.is_some())?;
                let mut p = coulomb::PmeChoice::from_tolerance(l, c.cutoff, tol)
                    .map_err(|e| anyhow!("{src}: {e}"))?;
                if let Some(a) = alpha {
                    p.alpha = a;
                }
                if let Some(g) = c.grid {
                    p.grid = g;
                }
                if let Some(o) = c.order {
                    p.order = o;
                }
                p.validate_host()
                    .map_err(|e| anyhow!("{src}: forces.coulomb: {e}"))?;
                CoulombMethod::Pme(p)
            }
            other => bail!(
                "{src}: forces.coulomb.method = \"{other}\" is unknown (known: cutoff, reaction-field, dsf, ewald, pme)"
            ),
        };
        if !matches!(method, CoulombMethod::ReactionField { .. }) {
            unused("epsilon_rf", c.epsilon_rf.is_some())?;
        }
        if !matches!(method, CoulombMethod::Ewald { .. } | CoulombMethod::Pme(_)) {
            unused("tolerance", c.tolerance.is_some())?;
            unused("neutralize", c.neutralize)?;
        }
        Ok(CoulombSpec {
            method,
            cutoff: c.cutoff,
            coulomb_k,
            exclusions,
            neutralize: c.neutralize,
        })
    }

    /// Energy scale of `wgmd eval` output: (unit name, factor dividing the run's energies).
    pub fn eval_energy_unit(&self) -> Result<(String, f64)> {
        match (self.eval.energy_unit.as_deref(), self.units) {
            (None, Units::Physical) => Ok(("eV".into(), 1.0)),
            (None, Units::Lj) => Ok(("lj".into(), 1.0)),
            (Some("K"), Units::Physical) => Ok(("K".into(), crate::units::KB_EV_PER_K)),
            (Some("eV"), Units::Physical) => Ok(("eV".into(), 1.0)),
            (Some(other), _) => bail!(
                "{}: eval.energy_unit = \"{other}\" is not available (physical units: \"eV\" or \"K\")",
                self.source
            ),
        }
    }

    fn lj_spec(&self, lj: &LjConfig, system: &System) -> Result<LjSpec> {
        let src = &self.source;
        let mut sigma = Vec::new();
        let mut epsilon = Vec::new();
        for name in &system.type_names {
            let t = lj.types.get(name).ok_or_else(|| {
                anyhow!("{src}: type '{name}' has no LJ parameters: add [forces.lj.types.{name}] sigma = ..., epsilon = ...")
            })?;
            sigma.push(t.sigma);
            epsilon.push(energy(
                self.units,
                &format!("{src}: forces.lj.types.{name}"),
                t.epsilon,
                t.epsilon_kelvin,
            )?);
        }
        for name in lj.types.keys() {
            if !system.type_names.contains(name) {
                bail!("{src}: [forces.lj.types.{name}] names a type that no atom has");
            }
        }
        let mut pairs = Vec::new();
        for p in &lj.pairs {
            let idx = |n: &String| {
                system
                    .type_names
                    .iter()
                    .position(|t| t == n)
                    .map(|k| k as u32)
                    .ok_or_else(|| anyhow!("{src}: forces.lj.pairs names unknown type '{n}'"))
            };
            let e = energy(
                self.units,
                &format!("{src}: forces.lj.pairs {:?}", p.types),
                p.epsilon,
                p.epsilon_kelvin,
            )?;
            pairs.push((idx(&p.types[0])?, idx(&p.types[1])?, p.sigma, e));
        }
        Ok(LjSpec {
            cutoff: lj.cutoff,
            shift: lj.shift,
            tail: lj.tail,
            sigma,
            epsilon,
            pairs,
        })
    }

    /// The simulation this config describes.
    pub fn to_spec(&self) -> Result<SimSpec> {
        let src = &self.source;
        let (system, exclusions) = self.build_system()?;
        let coulomb = match &self.forces.coulomb {
            Some(c) => Some(self.coulomb_spec(c, &system, exclusions)?),
            None => {
                if !exclusions.is_empty() {
                    log::info!("{src}: exclusions are only used by [forces.coulomb]");
                }
                None
            }
        };
        let (lj_spec, ani, default_skin) = match (&self.forces.lj, &self.forces.ani) {
            (Some(_), Some(_)) => {
                bail!("{src}: [forces.lj] and [forces.ani] together are not supported: choose one")
            }
            (None, None) => match &coulomb {
                Some(c) => (
                    LjSpec::off(system.type_names.len(), c.cutoff),
                    None,
                    0.1 * c.cutoff,
                ),
                None => {
                    bail!("{src}: [forces] needs [forces.lj], [forces.coulomb] or [forces.ani]")
                }
            },
            (Some(lj), None) => (self.lj_spec(lj, &system)?, None, 0.1 * lj.cutoff),
            (None, Some(a)) => {
                if self.units != Units::Physical {
                    bail!("{src}: [forces.ani] needs units = \"physical\" (Å, fs, eV)");
                }
                let path = a.resolve(&self.base_dir, src)?;
                let model = match a.model_index {
                    Some(k) => AniModel::load_member(&path, k),
                    None => AniModel::load(&path),
                }
                .map_err(|e| anyhow!("{src}: {e:#}"))?;
                let precision = AniPrecision::parse(&a.precision)
                    .map_err(|e| anyhow!("{src}: forces.ani.precision: {e}"))?;
                let spec = AniSpec::new(Arc::new(model), precision, &system.type_names)
                    .map_err(|e| anyhow!("{src}: {e}"))?;
                let rc = spec.model.aev.rcr;
                (LjSpec::off(system.type_names.len(), rc), Some(spec), 1.0)
            }
        };
        let ic = &self.integrator;
        let method = match ic.kind.as_str() {
            "verlet" | "velocity-verlet" | "nve" => {
                if ic.temperature.is_some() || ic.friction.is_some() || ic.seed.is_some() {
                    bail!("{src}: integrator.type = \"{}\" takes no temperature/friction/seed (use \"langevin\")", ic.kind);
                }
                Method::VelocityVerlet
            }
            "langevin" | "baoab" => Method::Langevin {
                temperature: ic.temperature.ok_or_else(|| {
                    anyhow!("{src}: integrator.temperature is missing for langevin")
                })?,
                friction: ic.friction.ok_or_else(|| {
                    anyhow!("{src}: integrator.friction (1/time unit) is missing for langevin")
                })?,
                seed: ic.seed.unwrap_or(1),
            },
            other => {
                bail!("{src}: integrator.type = \"{other}\" is unknown (known: verlet, langevin)")
            }
        };
        let skin = self.neighbor.skin.unwrap_or(default_skin);
        let neighbor_mode = match &self.neighbor.mode {
            Some(m) => m
                .parse::<crate::neighbor::NeighborMode>()
                .map_err(|e| anyhow!("{src}: neighbor.mode: {e}"))?,
            None => Default::default(),
        };
        let spec = SimSpec {
            system,
            units: self.units,
            lj: lj_spec,
            ani,
            coulomb,
            skin,
            neighbor_mode,
            integrator: Integrator { dt: ic.dt, method },
        };
        spec.validate().map_err(|e| anyhow!("{src}: {e}"))?;
        if self.run.every == 0 {
            bail!("{src}: run.every must be at least 1");
        }
        Ok(spec)
    }
}
