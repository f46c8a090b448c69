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
use crate::forces::lj::LjSpec;
use crate::integrate::{Integrator, Method};
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

#[derive(Debug, Deserialize)]
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeConfig {
    pub mass: Option<f64>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    pub skin: Option<f64>,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig { skin: None }
    }
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

    fn build_system(&self) -> Result<System> {
        let s = &self.system;
        let src = &self.source;
        let mut sys = match (&s.lattice, &s.structure) {
            (Some(_), Some(_)) => {
                bail!("{src}: [system] gives both lattice and structure; choose one")
            }
            (None, None) => bail!(
                "{src}: [system] needs either lattice = \"fcc\"/\"sc\" or structure = \"file.xyz\""
            ),
            (Some(kind), None) => {
                let lattice = Lattice::parse(kind).ok_or_else(|| {
                    anyhow!("{src}: system.lattice = \"{kind}\" is unknown (known: fcc, sc)")
                })?;
                let cells = s
                    .cells
                    .ok_or_else(|| anyhow!("{src}: system.cells = [nx, ny, nz] is missing"))?;
                if cells.iter().any(|&c| c == 0) {
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
                let mut frame = match &self.structure_frame {
                    Some(f) => f.clone(),
                    None => xyz::read_xyz_file(&path)?,
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
        for (name, t) in &self.types {
            if !sys.type_names.contains(name) {
                bail!(
                    "{src}: [types.{name}] names a type that no atom has (types: {})",
                    sys.type_names.join(", ")
                );
            }
            if let Some(m) = t.mass {
                let k = sys.type_names.iter().position(|n| n == name).unwrap();
                sys.type_masses[k] = m;
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
        Ok(sys)
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
        let system = self.build_system()?;
        let (lj_spec, ani, default_skin) = match (&self.forces.lj, &self.forces.ani) {
            (Some(_), Some(_)) => {
                bail!("{src}: [forces.lj] and [forces.ani] together are not supported: choose one")
            }
            (None, None) => bail!("{src}: [forces] needs [forces.lj] or [forces.ani]"),
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
        let spec = SimSpec {
            system,
            units: self.units,
            lj: lj_spec,
            ani,
            skin,
            integrator: Integrator { dt: ic.dt, method },
        };
        spec.validate().map_err(|e| anyhow!("{src}: {e}"))?;
        if self.run.every == 0 {
            bail!("{src}: run.every must be at least 1");
        }
        Ok(spec)
    }
}
