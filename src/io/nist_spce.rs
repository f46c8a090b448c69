//! The NIST SPC/E reference-configuration text format (NIST Standard Reference Simulation
//! Website, "SPC/E water reference calculations"):
//!
//! ```text
//!   Lx Ly Lz              (Å, orthorhombic box)
//!   M                     (molecules)
//!   1  x y z  O           (index, position in Å, site: O or H; O H H per molecule)
//!   ...
//! ```
//! Positions may lie anywhere (the NIST files centre the box on the origin); the engine wraps
//! them. Every molecule is O, H, H in that order; its three sites exclude each other.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::io::xyz::XyzFrame;

/// A NIST SPC/E configuration: the atoms as an [`XyzFrame`] (box set, no velocities or
/// charges: charges come from the config's types) and the molecules as atom-index triples.
#[derive(Clone, Debug)]
pub struct NistConfig {
    pub frame: XyzFrame,
    pub molecules: Vec<[u32; 3]>,
}

impl NistConfig {
    /// Every intramolecular pair (i < j, 0-based): three per molecule.
    pub fn exclusions(&self) -> Vec<[u32; 2]> {
        self.molecules
            .iter()
            .flat_map(|&[o, h1, h2]| [[o, h1], [o, h2], [h1, h2]])
            .collect()
    }
}

/// True when `text` starts like a NIST SPC/E file (three numbers, then one integer).
pub fn looks_like_nist(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("");
    let second = lines.next().unwrap_or("");
    let nums: Vec<&str> = first.split_whitespace().collect();
    nums.len() == 3
        && nums.iter().all(|t| t.parse::<f64>().is_ok())
        && second.split_whitespace().count() == 1
        && second.trim().parse::<u64>().is_ok()
}

pub fn parse_nist_spce(text: &str, source: &str) -> Result<NistConfig> {
    let mut lines = text.lines().enumerate();
    let mut next = |what: &str| -> Result<(usize, &str)> {
        lines
            .next()
            .map(|(k, l)| (k + 1, l))
            .ok_or_else(|| anyhow!("{source}: the file ends before {what}"))
    };
    let (ln, first) = next("the box line (Lx Ly Lz)")?;
    let b: Vec<f64> = first
        .split_whitespace()
        .map(|t| t.parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            anyhow!(
                "{source} line {ln}: expected the box 'Lx Ly Lz', found '{}'",
                first.trim()
            )
        })?;
    if b.len() != 3 || b.iter().any(|&l| !(l.is_finite() && l > 0.0)) {
        bail!(
            "{source} line {ln}: expected three positive box lengths 'Lx Ly Lz', found '{}'",
            first.trim()
        );
    }
    let (ln, second) = next("the molecule count")?;
    let m: usize = second.trim().parse().map_err(|_| {
        anyhow!(
            "{source} line {ln}: expected the number of molecules, found '{}'",
            second.trim()
        )
    })?;
    let n = 3 * m;
    let mut frame = XyzFrame {
        box_lengths: Some([b[0], b[1], b[2]]),
        comment: format!("NIST SPC/E configuration, {m} molecules"),
        ..Default::default()
    };
    for a in 0..n {
        let (ln, line) = next(&format!("atom {} of {n} ({m} molecules)", a + 1))?;
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() != 5 {
            bail!(
                "{source} line {ln}: expected 'index x y z O|H', found '{}'",
                line.trim()
            );
        }
        let mut p = [0.0; 3];
        for d in 0..3 {
            p[d] = t[1 + d]
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    anyhow!(
                        "{source} line {ln}: '{}' is not a finite {} coordinate",
                        t[1 + d],
                        ["x", "y", "z"][d]
                    )
                })?;
        }
        let want = if a % 3 == 0 { "O" } else { "H" };
        if t[4] != want {
            bail!(
                "{source} line {ln}: site '{}' where molecule {} needs {want} (every molecule is O, H, H)",
                t[4],
                a / 3 + 1
            );
        }
        frame.symbols.push(want.to_string());
        frame.positions.push(p);
    }
    let molecules = (0..m as u32)
        .map(|k| [3 * k, 3 * k + 1, 3 * k + 2])
        .collect();
    Ok(NistConfig { frame, molecules })
}

pub fn read_nist_spce_file(path: &Path) -> Result<NistConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read structure '{}'", path.display()))?;
    parse_nist_spce(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_lines() {
        let ok = "  20.0 20.0 20.0\n 1\n 1 0 0 0 O\n 2 1 0 0 H\n 3 0 1 0 H\n";
        assert!(looks_like_nist(ok));
        let c = parse_nist_spce(ok, "t").unwrap();
        assert_eq!(c.frame.positions.len(), 3);
        assert_eq!(c.exclusions(), vec![[0, 1], [0, 2], [1, 2]]);
        let e = parse_nist_spce("20 20 20\n1\n1 0 0 0 O\n2 1 0 0 O\n", "t").unwrap_err();
        assert!(e.to_string().contains("line 4"), "{e}");
        let e = parse_nist_spce("20 20 20\n2\n1 0 0 0 O\n", "t").unwrap_err();
        assert!(e.to_string().contains("ends before atom 2"), "{e}");
    }
}
