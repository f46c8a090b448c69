//! NeuroChem model files (ANI.md §2): the `.info` index, `.params` AEV constants,
//! `sae_linfit.dat` self energies, bzip2-compressed `.nnf` network descriptions and the raw
//! little-endian f32 `.wparam`/`.bparam` arrays.
//!
//! Every malformed input is an error whose message names the file (and line or field) at
//! fault; nothing here panics on bad data.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::{Activation, AevParams, AniModel, AtomicNet, Layer, ANI2X_SYMBOLS};

/// The four lines of a `.info` file, paths resolved against its directory.
#[derive(Clone, Debug, PartialEq)]
pub struct InfoFile {
    pub params: PathBuf,
    pub sae: PathBuf,
    /// Member `m` lives in `<prefix><m>/networks/`.
    pub prefix: PathBuf,
    pub n_members: usize,
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} '{}'", path.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow!("{what} '{}' is not UTF-8 text", path.display()))
}

pub fn parse_info(info: &Path) -> Result<InfoFile> {
    let text = read_text(info, "ANI model info file")?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() < 4 {
        bail!(
            "ANI model info file '{}' has {} non-empty lines; it needs 4 (params file, self-energy file, ensemble prefix, ensemble size)",
            info.display(),
            lines.len()
        );
    }
    let dir = info.parent().unwrap_or(Path::new("."));
    let n_members: usize = lines[3].parse().map_err(|_| {
        anyhow!(
            "ANI model info file '{}' line 4: ensemble size '{}' is not a non-negative integer",
            info.display(),
            lines[3]
        )
    })?;
    if n_members == 0 {
        bail!(
            "ANI model info file '{}' line 4: ensemble size is 0",
            info.display()
        );
    }
    Ok(InfoFile {
        params: dir.join(lines[0]),
        sae: dir.join(lines[1]),
        prefix: dir.join(lines[2]),
        n_members,
    })
}

impl InfoFile {
    /// Directory holding member `m`'s `ANN-<Sym>.nnf` files.
    pub fn networks_dir(&self, m: usize) -> PathBuf {
        let mut s = self.prefix.clone().into_os_string();
        s.push(m.to_string());
        PathBuf::from(s).join("networks")
    }
}

fn parse_f64(s: &str, path: &Path, line: usize, key: &str) -> Result<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            anyhow!(
                "AEV params file '{}' line {line}: {key} value '{}' is not a finite number",
                path.display(),
                s.trim()
            )
        })
}

fn parse_list(s: &str, path: &Path, line: usize, key: &str) -> Result<Vec<String>> {
    let s = s.trim();
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| {
            anyhow!(
                "AEV params file '{}' line {line}: {key} must be a list like [a,b,c], found '{s}'",
                path.display()
            )
        })?;
    let items: Vec<String> = inner
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect();
    if items.is_empty() {
        bail!(
            "AEV params file '{}' line {line}: {key} is an empty list",
            path.display()
        );
    }
    Ok(items)
}

/// Parse a `.params` file into the AEV constants and the species list (`Atyp`).
///
/// TorchANI keeps every list constant as an f32 buffer, so they are rounded to f32 here;
/// the cutoffs stay f64 (ANI.md §3.1).
pub fn parse_params(path: &Path) -> Result<(AevParams, Vec<String>)> {
    let text = read_text(path, "AEV params file")?;
    let mut scalars: HashMap<&str, f64> = HashMap::new();
    let mut lists: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut atyp: Option<Vec<String>> = None;
    for (ln, raw) in text.lines().enumerate() {
        let line = ln + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let Some((key, value)) = raw.split_once('=') else {
            bail!(
                "AEV params file '{}' line {line}: expected 'KEY = VALUE', found '{raw}'",
                path.display()
            );
        };
        let key = key.trim();
        match key {
            "Rcr" | "Rca" => {
                scalars.insert(key, parse_f64(value, path, line, key)?);
            }
            "EtaR" | "ShfR" | "Zeta" | "ShfZ" | "EtaA" | "ShfA" => {
                let vals = parse_list(value, path, line, key)?
                    .iter()
                    .map(|x| parse_f64(x, path, line, key).map(|v| v as f32 as f64))
                    .collect::<Result<Vec<f64>>>()?;
                lists.insert(key, vals);
            }
            "Atyp" => atyp = Some(parse_list(value, path, line, key)?),
            // NeuroChem flags (DESC, TM, CG, RP, AC) that TorchANI ignores.
            _ => {}
        }
    }
    let missing = |k: &str| anyhow!("AEV params file '{}' has no {k} line", path.display());
    let scalar = |k: &str| scalars.get(k).copied().ok_or_else(|| missing(k));
    let list = |k: &str| lists.get(k).cloned().ok_or_else(|| missing(k));
    let single = |k: &str| -> Result<f64> {
        let v = list(k)?;
        if v.len() != 1 {
            bail!(
                "AEV params file '{}': {k} has {} values; only one is supported (as in TorchANI)",
                path.display(),
                v.len()
            );
        }
        Ok(v[0])
    };
    let symbols = atyp.ok_or_else(|| missing("Atyp"))?;
    for (i, s) in symbols.iter().enumerate() {
        if symbols[..i].contains(s) {
            bail!(
                "AEV params file '{}': Atyp lists element {s} twice",
                path.display()
            );
        }
    }
    let p = AevParams {
        rcr: scalar("Rcr")?,
        rca: scalar("Rca")?,
        eta_r: single("EtaR")?,
        shf_r: list("ShfR")?,
        zeta: single("Zeta")?,
        shf_z: list("ShfZ")?,
        eta_a: single("EtaA")?,
        shf_a: list("ShfA")?,
        n_species: symbols.len(),
    };
    if !(p.rcr > 0.0 && p.rca > 0.0 && p.rca <= p.rcr) {
        bail!(
            "AEV params file '{}': cutoffs Rcr = {} and Rca = {} must satisfy 0 < Rca <= Rcr",
            path.display(),
            p.rcr,
            p.rca
        );
    }
    Ok((p, symbols))
}

/// Parse `sae_linfit.dat` (`SYM,IDX=VALUE` lines) into energies ordered by the `.params`
/// species list; every species must appear exactly once with the matching index.
pub fn parse_sae(path: &Path, symbols: &[String]) -> Result<Vec<f64>> {
    let text = read_text(path, "self-energy file")?;
    let mut out: Vec<Option<f64>> = vec![None; symbols.len()];
    for (ln, raw) in text.lines().enumerate() {
        let line = ln + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let bad = || {
            anyhow!(
                "self-energy file '{}' line {line}: expected 'SYMBOL,INDEX=VALUE', found '{raw}'",
                path.display()
            )
        };
        let (lhs, value) = raw.split_once('=').ok_or_else(bad)?;
        let (sym, idx) = lhs.split_once(',').ok_or_else(bad)?;
        let (sym, idx) = (sym.trim(), idx.trim());
        let idx: usize = idx.parse().map_err(|_| bad())?;
        let value: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(bad)?;
        let Some(k) = symbols.iter().position(|s| s == sym) else {
            bail!(
                "self-energy file '{}' line {line}: element {sym} is not in the model's species list ({})",
                path.display(),
                symbols.join(" ")
            );
        };
        if k != idx {
            bail!(
                "self-energy file '{}' line {line}: element {sym} has index {idx}, but the params file puts it at {k}",
                path.display()
            );
        }
        if out[k].replace(value).is_some() {
            bail!(
                "self-energy file '{}' line {line}: element {sym} appears twice",
                path.display()
            );
        }
    }
    out.iter()
        .enumerate()
        .map(|(k, v)| {
            v.ok_or_else(|| {
                anyhow!(
                    "self-energy file '{}' has no line for element {}",
                    path.display(),
                    symbols[k]
                )
            })
        })
        .collect()
}

/// Decompress a `.nnf` file: ASCII length, `=`, one newline byte, then a bzip2 stream whose
/// decompressed text ends in a NUL that is stripped here.
pub fn read_nnf_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read network file '{}'", path.display()))?;
    let eq = bytes
        .iter()
        .position(|&b| b == b'=')
        .filter(|&p| p > 0 && p <= 20)
        .ok_or_else(|| {
            anyhow!(
                "network file '{}' does not start with '<length>=' (not a NeuroChem .nnf file)",
                path.display()
            )
        })?;
    let declared: usize = std::str::from_utf8(&bytes[..eq])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "network file '{}': header length before '=' is not a number",
                path.display()
            )
        })?;
    // TorchANI skips the '=' and the byte after it ('\n').
    let stream = bytes.get(eq + 2..).unwrap_or(&[]);
    // The header is untrusted: cap the up-front allocation (real files are ~1.1 kB).
    let mut text = Vec::with_capacity(declared.min(1 << 20));
    bzip2::read::BzDecoder::new(stream)
        .take(declared as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| {
            anyhow!(
                "network file '{}': corrupt bzip2 data ({e})",
                path.display()
            )
        })?;
    if text.len() != declared {
        bail!(
            "network file '{}': header says {declared} bytes but the bzip2 stream holds {}",
            path.display(),
            text.len()
        );
    }
    while text.last() == Some(&0) {
        text.pop();
    }
    String::from_utf8(text).map_err(|_| {
        anyhow!(
            "network file '{}': decompressed text is not UTF-8",
            path.display()
        )
    })
}

/// One `layer [ … ]` block of an `.nnf` description, before its parameters are read.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    pub nodes: usize,
    pub blocksize: usize,
    pub activation_code: i64,
    pub weights_file: String,
    pub weights_count: usize,
    pub biases_file: String,
    pub biases_count: usize,
}

fn parse_file_ref(value: &str, path: &Path, layer: usize, key: &str) -> Result<(String, usize)> {
    let bad = || {
        anyhow!(
            "network file '{}' layer {layer}: field {key} must look like FILE:<name>[<count>], found '{value}'",
            path.display()
        )
    };
    let rest = value.strip_prefix("FILE:").ok_or_else(bad)?;
    let open = rest.rfind('[').ok_or_else(bad)?;
    let name = rest[..open].trim();
    let count: usize = rest[open + 1..]
        .strip_suffix(']')
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(bad)?;
    if name.is_empty() || name.contains('/') || name.contains('\\') {
        return Err(bad());
    }
    Ok((name.to_string(), count))
}

/// Parse the decompressed `.nnf` text and perform TorchANI's consistency checks (ANI.md §2.4).
pub fn parse_nnf(text: &str, path: &Path) -> Result<Vec<LayerSpec>> {
    let mut blocks = text.split("layer [");
    blocks.next();
    let mut specs = Vec::new();
    for (l, block) in blocks.enumerate() {
        let layer = l + 1;
        // Fields are `key=value;` pairs; the closing `]` and the trailing `$` carry no `=`.
        // (Splitting at `]` would be wrong: the FILE references contain `[count]`.)
        let mut fields: HashMap<String, String> = HashMap::new();
        for f in block.split(';') {
            let f = f.trim();
            if f.is_empty() {
                continue;
            }
            if let Some((k, v)) = f.split_once('=') {
                fields.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let get = |k: &str| {
            fields.get(k).ok_or_else(|| {
                anyhow!(
                    "network file '{}' layer {layer}: field {k} is missing",
                    path.display()
                )
            })
        };
        let int = |k: &str| -> Result<i64> {
            let v = get(k)?;
            v.parse().map_err(|_| {
                anyhow!(
                    "network file '{}' layer {layer}: field {k} = '{v}' is not an integer",
                    path.display()
                )
            })
        };
        let positive = |k: &str| -> Result<usize> {
            let v = int(k)?;
            if v <= 0 {
                bail!(
                    "network file '{}' layer {layer}: field {k} = {v} must be positive",
                    path.display()
                );
            }
            Ok(v as usize)
        };
        let (weights_file, weights_count) =
            parse_file_ref(get("weights")?, path, layer, "weights")?;
        let (biases_file, biases_count) = parse_file_ref(get("biases")?, path, layer, "biases")?;
        specs.push(LayerSpec {
            nodes: positive("nodes")?,
            blocksize: positive("blocksize")?,
            activation_code: int("activation")?,
            weights_file,
            weights_count,
            biases_file,
            biases_count,
        });
    }
    if specs.is_empty() {
        bail!("network file '{}' describes no layers", path.display());
    }
    for (l, s) in specs.iter().enumerate() {
        let layer = l + 1;
        if s.blocksize.checked_mul(s.nodes) != Some(s.weights_count) {
            bail!(
                "network file '{}' layer {layer}: blocksize {} x nodes {} != weight count {}",
                path.display(),
                s.blocksize,
                s.nodes,
                s.weights_count
            );
        }
        if s.nodes != s.biases_count {
            bail!(
                "network file '{}' layer {layer}: nodes {} != bias count {}",
                path.display(),
                s.nodes,
                s.biases_count
            );
        }
        if l > 0 && s.blocksize != specs[l - 1].nodes {
            bail!(
                "network file '{}' layer {layer}: blocksize {} does not match the previous layer's {} nodes",
                path.display(),
                s.blocksize,
                specs[l - 1].nodes
            );
        }
    }
    let last = specs.len() - 1;
    if specs[last].activation_code != 6 {
        bail!(
            "network file '{}' layer {}: the output layer must be linear (activation 6), found activation {}",
            path.display(),
            last + 1,
            specs[last].activation_code
        );
    }
    if specs[last].nodes != 1 {
        bail!(
            "network file '{}' layer {}: the output layer must have 1 node, found {}",
            path.display(),
            last + 1,
            specs[last].nodes
        );
    }
    for (l, s) in specs[..last].iter().enumerate() {
        if s.activation_code != specs[0].activation_code {
            bail!(
                "network file '{}' layer {}: hidden layers must share one activation, found {} after {}",
                path.display(),
                l + 1,
                s.activation_code,
                specs[0].activation_code
            );
        }
        if s.activation_code != 9 {
            bail!(
                "network file '{}' layer {}: activation code {} is not supported (only 9 = CELU on hidden layers, 6 = linear on the output)",
                path.display(),
                l + 1,
                s.activation_code
            );
        }
    }
    Ok(specs)
}

/// Read exactly `count` little-endian f32 values; the file size must be `4·count`.
pub fn read_f32_file(path: &Path, count: usize) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read parameter file '{}'", path.display()))?;
    if Some(bytes.len()) != count.checked_mul(4) {
        bail!(
            "parameter file '{}' has {} bytes, expected {} (4 x {count} float32 values)",
            path.display(),
            bytes.len(),
            count.saturating_mul(4)
        );
    }
    let vals: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(k) = vals.iter().position(|v| !v.is_finite()) {
        bail!(
            "parameter file '{}': value {k} is not finite",
            path.display()
        );
    }
    Ok(vals)
}

/// Load one `ANN-<Sym>.nnf` network with its parameter files (same directory).
pub fn load_atomic_net(nnf: &Path, expected_inputs: usize) -> Result<AtomicNet> {
    let text = read_nnf_text(nnf)?;
    let specs = parse_nnf(&text, nnf)?;
    if specs[0].blocksize != expected_inputs {
        bail!(
            "network file '{}' layer 1: blocksize {} does not match the AEV length {expected_inputs} of the params file",
            nnf.display(),
            specs[0].blocksize
        );
    }
    let dir = nnf.parent().unwrap_or(Path::new("."));
    let last = specs.len() - 1;
    let mut layers = Vec::with_capacity(specs.len());
    for (l, s) in specs.iter().enumerate() {
        layers.push(Layer {
            n_in: s.blocksize,
            n_out: s.nodes,
            weights: read_f32_file(&dir.join(&s.weights_file), s.weights_count)?,
            biases: read_f32_file(&dir.join(&s.biases_file), s.biases_count)?,
            activation: if l == last {
                Activation::Linear
            } else {
                Activation::Celu
            },
        });
    }
    Ok(AtomicNet { layers })
}

/// Load the model named by `info`: all members (`only = None`) or just member `k`.
pub fn load_info(info: &Path, only: Option<usize>) -> Result<AniModel> {
    let inf = parse_info(info)?;
    let (aev, symbols) = parse_params(&inf.params)?;
    let self_energies = parse_sae(&inf.sae, &symbols)?;
    let members: Vec<usize> = match only {
        Some(k) if k >= inf.n_members => bail!(
            "ANI model '{}' has {} ensemble members; member {k} does not exist",
            info.display(),
            inf.n_members
        ),
        Some(k) => vec![k],
        None => (0..inf.n_members).collect(),
    };
    let mut nets = Vec::with_capacity(members.len());
    for m in members {
        let dir = inf.networks_dir(m);
        let member = symbols
            .iter()
            .map(|s| load_atomic_net(&dir.join(format!("ANN-{s}.nnf")), aev.aev_len()))
            .collect::<Result<Vec<_>>>()?;
        nets.push(member);
    }
    Ok(AniModel {
        symbols,
        aev,
        self_energies,
        members: nets,
        source: info.to_path_buf(),
    })
}

/// The real ANI-2x `.params` text (ANI.md §2.2).
pub const ANI2X_PARAMS_TEXT: &str = "DESC = ANI_NORMAL
TM = 1
CG = 0
RP = 0
AC = 0
Rcr = 5.1000e+00
Rca = 3.5000e+00
EtaR = [1.9700000e+01]
ShfR = [8.0000000e-01,1.0687500e+00,1.3375000e+00,1.6062500e+00,1.8750000e+00,2.1437500e+00,2.4125000e+00,2.6812500e+00,2.9500000e+00,3.2187500e+00,3.4875000e+00,3.7562500e+00,4.0250000e+00,4.2937500e+00,4.5625000e+00,4.8312500e+00]
Zeta = [1.4100000e+01]
ShfZ = [3.9269908e-01,1.1780972e+00,1.9634954e+00,2.7488936e+00]
EtaA = [1.2500000e+01]
ShfA = [8.0000000e-01,1.1375000e+00,1.4750000e+00,1.8125000e+00,2.1500000e+00,2.4875000e+00,2.8250000e+00,3.1625000e+00]
Atyp = [H,C,N,O,S,F,Cl]
";

/// The real ANI-2x `sae_linfit.dat` values (Hartree).
pub const ANI2X_SELF_ENERGIES: [f64; 7] = [
    -0.5978583943827134,
    -38.08933878049795,
    -54.711968298621066,
    -75.19106774742086,
    -398.1577125334925,
    -99.80348506781634,
    -460.1681939421027,
];

/// Compress `text` (plus the trailing NUL NeuroChem writes) into `.nnf` bytes.
pub fn encode_nnf(text: &str) -> Result<Vec<u8>> {
    let mut raw = text.as_bytes().to_vec();
    raw.push(0);
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    enc.write_all(&raw)?;
    let stream = enc.finish()?;
    let mut out = format!("{}=\n", raw.len()).into_bytes();
    out.extend_from_slice(&stream);
    Ok(out)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Write a complete small NeuroChem model (species H C N O S F Cl, the real ANI-2x AEV
/// constants and self energies, random weights) into `dir`; returns the `.info` path.
///
/// `widths_per_species` gives the hidden-layer widths, either one list for all species or
/// one per species; the input width is the AEV length (1008) and a 1-node linear output
/// layer is appended. Weights are N(0, 1/√n_in), biases N(0, 0.1), from a seeded PCG so the
/// same seed gives the same model on every machine.
#[doc(hidden)]
pub fn write_synthetic_model(
    dir: &Path,
    n_members: usize,
    widths_per_species: &[Vec<usize>],
    seed: u64,
) -> Result<PathBuf> {
    write_synthetic_model_with(
        dir,
        n_members,
        widths_per_species,
        seed,
        SyntheticSurface::default(),
    )
}

/// How a synthetic model's random network is shaped into an energy surface
/// ([`write_synthetic_model_with`]). The default is the plain random network.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyntheticSurface {
    /// Factor on the output layer's random weights and bias: the energy scale of the random
    /// part (1 = N(0, 1/√n_in) like the hidden layers, which makes atomic energies of several
    /// eV that vary by eV over a bond length: far steeper than a trained network).
    pub random_scale: f64,
    /// Hartree. When positive, hidden unit 0 of every layer becomes a separate linear channel
    /// (its incoming and outgoing random weights replaced) that adds
    /// `repulsion · Σ_j 0.25·exp(−η_R (r_ij − ShfR₀)²)·f_C(r_ij)` to each atom's energy:
    /// the first radial AEV term of every neighbor species, a barrier of ≈ 0.47·`repulsion`
    /// per pair at r = ShfR₀ (0.8 Å). Trained ANI networks learn such a wall from their data;
    /// a random one has none, so atoms can pass through each other into the 1/r cusp of the
    /// angular terms (their angle is undefined at r_ij = 0), which no fixed time step follows.
    pub repulsion: f64,
}

impl Default for SyntheticSurface {
    fn default() -> Self {
        SyntheticSurface {
            random_scale: 1.0,
            repulsion: 0.0,
        }
    }
}

/// [`write_synthetic_model`] with a shaped surface. The random draws are the same as the
/// plain model's for the same seed; the surface only rescales or overwrites some of them.
#[doc(hidden)]
pub fn write_synthetic_model_with(
    dir: &Path,
    n_members: usize,
    widths_per_species: &[Vec<usize>],
    seed: u64,
    surface: SyntheticSurface,
) -> Result<PathBuf> {
    let n_species = ANI2X_SYMBOLS.len();
    if n_members == 0 {
        bail!("a synthetic ANI model needs at least one member");
    }
    if widths_per_species.len() != 1 && widths_per_species.len() != n_species {
        bail!(
            "widths_per_species must hold 1 or {n_species} lists of hidden widths, got {}",
            widths_per_species.len()
        );
    }
    if widths_per_species.iter().flatten().any(|&w| w == 0) {
        bail!("hidden-layer widths must be positive");
    }
    if surface.repulsion > 0.0 && widths_per_species.iter().any(|w| w.is_empty()) {
        bail!("a synthetic repulsion needs at least one hidden layer (it uses unit 0 of each)");
    }
    let root = dir.join("synthetic");
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create directory '{}'", root.display()))?;
    let write = |p: &Path, bytes: &[u8]| {
        std::fs::write(p, bytes).with_context(|| format!("cannot write '{}'", p.display()))
    };
    let params_name = "rHCNOSFCl-5.1R_16-3.5A_a8-4.params";
    write(&root.join(params_name), ANI2X_PARAMS_TEXT.as_bytes())?;
    let sae: String = ANI2X_SYMBOLS
        .iter()
        .zip(ANI2X_SELF_ENERGIES)
        .enumerate()
        .map(|(k, (s, e))| format!("{s},{k}={e:?}\n"))
        .collect();
    write(&root.join("sae_linfit.dat"), sae.as_bytes())?;
    let aev_len = AevParams::ani2x().aev_len();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    for m in 0..n_members {
        let net_dir = root.join(format!("train{m}")).join("networks");
        std::fs::create_dir_all(&net_dir)
            .with_context(|| format!("cannot create directory '{}'", net_dir.display()))?;
        for (s, sym) in ANI2X_SYMBOLS.iter().enumerate() {
            let hidden = &widths_per_species[if widths_per_species.len() == 1 { 0 } else { s }];
            let mut widths = vec![aev_len];
            widths.extend_from_slice(hidden);
            widths.push(1);
            let mut text = format!("inputsize={aev_len};\natom_net {sym} $\n");
            for l in 0..widths.len() - 1 {
                let (n_in, n_out) = (widths[l], widths[l + 1]);
                let act = if l + 2 == widths.len() { 6 } else { 9 };
                let wname = format!("ANN-{sym}.nnf-l{}.wparam", l + 1);
                let bname = format!("ANN-{sym}.nnf-l{}.bparam", l + 1);
                text.push_str(&format!(
                    "layer [\nnodes={n_out};\nactivation={act};\ntype=0;\nblocksize={n_in};\n\
                     dropout=0;\nweights=FILE:{wname}[{}];\nbiases=FILE:{bname}[{n_out}];\n]\n",
                    n_in * n_out
                ));
                let wd = Normal::new(0.0, 1.0 / (n_in as f64).sqrt())?;
                let bd = Normal::new(0.0, 0.1)?;
                let mut w: Vec<f32> = (0..n_in * n_out)
                    .map(|_| wd.sample(&mut rng) as f32)
                    .collect();
                let mut b: Vec<f32> = (0..n_out).map(|_| bd.sample(&mut rng) as f32).collect();
                shape_layer(&mut w, &mut b, n_in, l, l + 2 == widths.len(), &surface);
                write(&net_dir.join(&wname), &f32_bytes(&w))?;
                write(&net_dir.join(&bname), &f32_bytes(&b))?;
            }
            text.push_str(" $\n");
            write(&net_dir.join(format!("ANN-{sym}.nnf")), &encode_nnf(&text)?)?;
        }
    }
    let info = dir.join("synthetic.info");
    write(
        &info,
        format!(
            "synthetic/{params_name}\nsynthetic/sae_linfit.dat\nsynthetic/train\n{n_members}\n"
        )
        .as_bytes(),
    )?;
    Ok(info)
}

/// Applies [`SyntheticSurface`] to layer `l` (weights `[n_out][n_in]`, biases).
fn shape_layer(
    w: &mut [f32],
    b: &mut [f32],
    n_in: usize,
    l: usize,
    last: bool,
    surface: &SyntheticSurface,
) {
    let n_out = b.len();
    if last {
        for x in w.iter_mut().chain(b.iter_mut()) {
            *x = (*x as f64 * surface.random_scale) as f32;
        }
    }
    if surface.repulsion <= 0.0 {
        return;
    }
    let aev = AevParams::ani2x();
    if last {
        // The output adds the channel with weight 1 (Hartree) and removes its offset 0.5.
        w[0] = 1.0;
        b[0] -= 0.5;
    } else if l == 0 {
        // Unit 0 = repulsion · Σ_s G[s, radial shift 0] + 0.5: positive, so CELU passes it
        // unchanged (CELU(z) = z for z > 0).
        w[..n_in].fill(0.0);
        for s in 0..aev.n_species {
            w[s * aev.shf_r.len()] = surface.repulsion as f32;
        }
        b[0] = 0.5;
    } else {
        // Unit 0 copies unit 0 of the layer below (still positive); no other unit reads it.
        for o in 0..n_out {
            w[o * n_in] = if o == 0 { 1.0 } else { 0.0 };
        }
        w[1..n_in].fill(0.0);
        b[0] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_model(dir: &Path) -> PathBuf {
        write_synthetic_model(dir, 2, &[vec![8, 4]], 7).unwrap()
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        format!("{:#}", r.expect_err("expected an error"))
    }

    #[test]
    fn synthetic_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let info = small_model(dir.path());
        let m = AniModel::load(&info).unwrap();
        assert_eq!(m.symbols, ANI2X_SYMBOLS.map(String::from).to_vec());
        assert_eq!(m.aev, AevParams::ani2x());
        assert_eq!(m.self_energies, ANI2X_SELF_ENERGIES.to_vec());
        assert_eq!(m.members.len(), 2);
        for member in &m.members {
            assert_eq!(member.len(), 7);
            for net in member {
                let w: Vec<(usize, usize)> = net.layers.iter().map(|l| (l.n_in, l.n_out)).collect();
                assert_eq!(w, vec![(1008, 8), (8, 4), (4, 1)]);
                assert_eq!(net.layers[2].activation, Activation::Linear);
                assert_eq!(net.layers[0].activation, Activation::Celu);
            }
        }
        // Same seed, same bytes: weights must not depend on the machine.
        let dir2 = tempfile::tempdir().unwrap();
        let m2 = AniModel::load(&small_model(dir2.path())).unwrap();
        assert_eq!(m.members, m2.members);
        let one = AniModel::load_member(&info, 1).unwrap();
        assert_eq!(one.members.len(), 1);
        assert_eq!(one.members[0], m.members[1]);
        let e = err_of(AniModel::load_member(&info, 2));
        assert!(e.contains("has 2 ensemble members"), "{e}");
    }

    /// With the random part scaled to zero, an atom's network energy must be exactly the
    /// repulsion channel: `repulsion · Σ_s G[s, shift 0]` (the float64 reference's AEV), and
    /// the default surface must leave the plain model's weights unchanged.
    #[test]
    fn synthetic_surface_repulsion_channel() {
        let dir = tempfile::tempdir().unwrap();
        let surface = SyntheticSurface {
            random_scale: 0.0,
            repulsion: 0.05,
        };
        let info =
            write_synthetic_model_with(dir.path(), 2, &[vec![16, 8, 4]], 3, surface).unwrap();
        let m = AniModel::load(&info).unwrap();
        let species = vec![0usize, 1, 3, 0, 6];
        let pos = [
            [0.0, 0.0, 0.0],
            [0.9, 0.1, 0.0],
            [0.2, 1.1, 0.3],
            [-0.7, -0.4, 0.5],
            [2.0, 2.0, 1.0],
        ];
        let aev = crate::ani::reference::aevs(&m.aev, &species, 7, &pos, None).unwrap();
        let r = crate::ani::reference::evaluate(&m, &species, &pos, None).unwrap();
        let rep = 0.05f32 as f64;
        let mut strongest = 0.0f64;
        for (i, e) in r.atomic_nn.iter().enumerate() {
            let want: f64 = (0..7).map(|s| rep * aev[i][16 * s]).sum();
            strongest = strongest.max(want);
            assert!((e - want).abs() < 1e-12, "atom {i}: {e} vs {want}");
        }
        // Atoms 0–1 are 0.91 Å apart: the wall must be felt (the far Cl only checks zeros).
        assert!(strongest > 1e-3, "{strongest}");
        let plain = AniModel::load(
            &write_synthetic_model(&dir.path().join("p"), 1, &[vec![8, 4]], 9).unwrap(),
        )
        .unwrap();
        let same = AniModel::load(
            &write_synthetic_model_with(
                &dir.path().join("q"),
                1,
                &[vec![8, 4]],
                9,
                SyntheticSurface::default(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(plain.members, same.members);
    }

    #[test]
    fn per_species_widths() {
        let dir = tempfile::tempdir().unwrap();
        let widths: Vec<Vec<usize>> = (0..7).map(|s| vec![3 + s]).collect();
        let m = AniModel::load(&write_synthetic_model(dir.path(), 1, &widths, 1).unwrap()).unwrap();
        for (s, net) in m.members[0].iter().enumerate() {
            assert_eq!(net.layers[0].n_out, 3 + s);
        }
        assert!(write_synthetic_model(dir.path(), 1, &[vec![4], vec![4]], 1).is_err());
    }

    #[test]
    fn info_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.info");
        let e = err_of(AniModel::load(&missing));
        assert!(e.contains("nope.info"), "{e}");
        let short = dir.path().join("short.info");
        std::fs::write(&short, "a.params\nsae.dat\n").unwrap();
        let e = err_of(parse_info(&short));
        assert!(e.contains("short.info") && e.contains("4"), "{e}");
        std::fs::write(&short, "a.params\nsae.dat\ntrain\neight\n").unwrap();
        let e = err_of(parse_info(&short));
        assert!(e.contains("short.info") && e.contains("line 4"), "{e}");
    }

    #[test]
    fn params_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.params");
        std::fs::write(
            &p,
            ANI2X_PARAMS_TEXT.replace("Rcr = 5.1000e+00", "Rcr = 5.1x"),
        )
        .unwrap();
        let e = err_of(parse_params(&p));
        assert!(
            e.contains("x.params") && e.contains("line 6") && e.contains("Rcr"),
            "{e}"
        );
        std::fs::write(
            &p,
            ANI2X_PARAMS_TEXT.replace("Zeta = [1.4100000e+01]\n", ""),
        )
        .unwrap();
        let e = err_of(parse_params(&p));
        assert!(e.contains("x.params") && e.contains("Zeta"), "{e}");
        std::fs::write(&p, ANI2X_PARAMS_TEXT.replace("ShfA = [", "ShfA = (")).unwrap();
        let e = err_of(parse_params(&p));
        assert!(e.contains("ShfA"), "{e}");
        std::fs::write(&p, ANI2X_PARAMS_TEXT).unwrap();
        let (a, s) = parse_params(&p).unwrap();
        assert_eq!(a, AevParams::ani2x());
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn sae_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sae.dat");
        let syms: Vec<String> = ["H", "C"].map(String::from).to_vec();
        std::fs::write(&p, "H,0=-0.5\nC,1=-38.0\n").unwrap();
        assert_eq!(parse_sae(&p, &syms).unwrap(), vec![-0.5, -38.0]);
        std::fs::write(&p, "H,0=-0.5\nC,1=abc\n").unwrap();
        let e = err_of(parse_sae(&p, &syms));
        assert!(e.contains("sae.dat") && e.contains("line 2"), "{e}");
        std::fs::write(&p, "H,0=-0.5\n").unwrap();
        let e = err_of(parse_sae(&p, &syms));
        assert!(e.contains("sae.dat") && e.contains("element C"), "{e}");
        std::fs::write(&p, "H,1=-0.5\nC,0=-38\n").unwrap();
        let e = err_of(parse_sae(&p, &syms));
        assert!(e.contains("index 1"), "{e}");
        std::fs::write(&p, "H,0=-0.5\nC,1=-38\nNa,2=-1\n").unwrap();
        let e = err_of(parse_sae(&p, &syms));
        assert!(e.contains("Na"), "{e}");
    }

    #[test]
    fn truncated_wparam_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let info = small_model(dir.path());
        let w = dir
            .path()
            .join("synthetic/train1/networks/ANN-O.nnf-l2.wparam");
        let bytes = std::fs::read(&w).unwrap();
        std::fs::write(&w, &bytes[..bytes.len() - 3]).unwrap();
        let e = err_of(AniModel::load(&info));
        assert!(
            e.contains("ANN-O.nnf-l2.wparam") && e.contains("bytes"),
            "{e}"
        );
        // Member 0 does not touch the damaged file.
        assert!(AniModel::load_member(&info, 0).is_ok());
    }

    #[test]
    fn corrupt_bzip2_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let info = small_model(dir.path());
        let nnf = dir.path().join("synthetic/train0/networks/ANN-S.nnf");
        let mut bytes = std::fs::read(&nnf).unwrap();
        let n = bytes.len();
        for b in &mut bytes[n / 2..n / 2 + 8] {
            *b ^= 0x5a;
        }
        std::fs::write(&nnf, &bytes).unwrap();
        let e = err_of(AniModel::load(&info));
        assert!(e.contains("ANN-S.nnf"), "{e}");
        std::fs::write(&nnf, b"17=\nnot bzip2 at all").unwrap();
        let e = err_of(AniModel::load(&info));
        assert!(e.contains("ANN-S.nnf") && e.contains("bzip2"), "{e}");
        std::fs::write(&nnf, b"").unwrap();
        let e = err_of(AniModel::load(&info));
        assert!(e.contains("ANN-S.nnf"), "{e}");
    }

    #[test]
    fn missing_network_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let info = small_model(dir.path());
        std::fs::remove_file(
            dir.path()
                .join("synthetic/train0/networks/ANN-Cl.nnf-l3.bparam"),
        )
        .unwrap();
        let e = err_of(AniModel::load(&info));
        assert!(e.contains("ANN-Cl.nnf-l3.bparam"), "{e}");
        std::fs::remove_file(dir.path().join("synthetic/train0/networks/ANN-F.nnf")).unwrap();
        let e = err_of(AniModel::load(&info));
        assert!(e.contains("ANN-F.nnf"), "{e}");
    }

    fn layer_text(nodes: usize, act: i64, block: usize, wcount: usize, bcount: usize) -> String {
        format!(
            "layer [ nodes={nodes}; activation={act}; type=0; blocksize={block};\n\
             weights=FILE:w.wparam[{wcount}]; biases=FILE:b.bparam[{bcount}]; ]\n"
        )
    }

    #[test]
    fn nnf_consistency_checks() {
        let p = Path::new("net.nnf");
        let ok = format!(
            "{}{}",
            layer_text(4, 9, 10, 40, 4),
            layer_text(1, 6, 4, 4, 1)
        );
        let specs = parse_nnf(&ok, p).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].weights_file, "w.wparam");
        let cases = [
            (
                format!(
                    "{}{}",
                    layer_text(4, 9, 10, 41, 4),
                    layer_text(1, 6, 4, 4, 1)
                ),
                "weight count",
            ),
            (
                format!(
                    "{}{}",
                    layer_text(4, 9, 10, 40, 3),
                    layer_text(1, 6, 4, 4, 1)
                ),
                "bias count",
            ),
            (
                format!(
                    "{}{}",
                    layer_text(4, 9, 10, 40, 4),
                    layer_text(1, 6, 5, 5, 1)
                ),
                "previous layer",
            ),
            (
                format!(
                    "{}{}",
                    layer_text(4, 9, 10, 40, 4),
                    layer_text(1, 9, 4, 4, 1)
                ),
                "linear",
            ),
            (
                format!(
                    "{}{}",
                    layer_text(4, 5, 10, 40, 4),
                    layer_text(1, 6, 4, 4, 1)
                ),
                "not supported",
            ),
            (
                format!(
                    "{}{}{}",
                    layer_text(4, 9, 10, 40, 4),
                    layer_text(4, 5, 4, 16, 4),
                    layer_text(1, 6, 4, 4, 1)
                ),
                "share one activation",
            ),
            ("inputsize=3;".to_string(), "no layers"),
            (
                layer_text(4, 9, 10, 40, 4).replace("nodes=4;", "nodes=x;"),
                "not an integer",
            ),
            (
                layer_text(4, 9, 10, 40, 4).replace("biases=FILE:b.bparam[4];", ""),
                "biases is missing",
            ),
        ];
        for (text, want) in cases {
            let e = err_of(parse_nnf(&text, p));
            assert!(
                e.contains("net.nnf") && e.contains(want),
                "wanted '{want}' in: {e}"
            );
        }
    }

    #[test]
    fn nnf_length_header_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.nnf");
        let mut bytes = encode_nnf("inputsize=1;").unwrap();
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_nnf_text(&p).unwrap(), "inputsize=1;");
        bytes[0] = b'9';
        std::fs::write(&p, &bytes).unwrap();
        let e = err_of(read_nnf_text(&p));
        assert!(e.contains("a.nnf") && e.contains("header says"), "{e}");
        let mut huge = b"99999999999999999=\n".to_vec();
        huge.extend_from_slice(&bytes[4..]);
        std::fs::write(&p, &huge).unwrap();
        let e = err_of(read_nnf_text(&p));
        assert!(e.contains("a.nnf") && e.contains("header says"), "{e}");
    }
}
