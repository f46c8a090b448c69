//! Minimal PDB reading for the viewer's "open a file": ATOM/HETATM coordinates, elements and
//! the CRYST1 box (orthorhombic only). Fixed columns per the wwPDB v3.3 format.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::xyz::XyzFrame;

fn field(line: &str, from: usize, to: usize) -> &str {
    line.get(from.min(line.len())..to.min(line.len()))
        .unwrap_or("")
        .trim()
}

/// Parses PDB text; `source` names it in errors ("source line N: ...").
pub fn parse_pdb(text: &str, source: &str) -> Result<XyzFrame> {
    let mut f = XyzFrame::default();
    for (k, line) in text.lines().enumerate() {
        let n = k + 1;
        let num = |from: usize, to: usize, what: &str| -> Result<f64> {
            field(line, from, to).parse::<f64>().map_err(|_| {
                anyhow!(
                    "{source} line {n}: cannot read {what} from columns {}-{}",
                    from + 1,
                    to
                )
            })
        };
        if line.starts_with("CRYST1") {
            let abc = [num(6, 15, "a")?, num(15, 24, "b")?, num(24, 33, "c")?];
            let angles = [
                num(33, 40, "alpha")?,
                num(40, 47, "beta")?,
                num(47, 54, "gamma")?,
            ];
            if angles.iter().any(|a| (a - 90.0).abs() > 1e-3) {
                bail!("{source} line {n}: only orthorhombic boxes (all angles 90) are supported");
            }
            // PDB files of isolated molecules often carry a 1 Å dummy cell.
            if abc.iter().all(|&x| x > 1.0) {
                f.box_lengths = Some(abc);
            }
        } else if line.starts_with("ATOM") || line.starts_with("HETATM") {
            let x = [num(30, 38, "x")?, num(38, 46, "y")?, num(46, 54, "z")?];
            let mut el = field(line, 76, 78).to_string();
            if el.is_empty() {
                // No element column: the atom name's leading letters (e.g. " CA " → C).
                el = field(line, 12, 16)
                    .chars()
                    .filter(|c| c.is_ascii_alphabetic())
                    .take(1)
                    .collect();
            }
            if el.is_empty() {
                bail!("{source} line {n}: the atom has neither an element nor a name");
            }
            let mut c = el.chars();
            let el = c
                .next()
                .map(|h| h.to_ascii_uppercase().to_string())
                .unwrap_or_default()
                + &c.as_str().to_ascii_lowercase();
            f.symbols.push(el);
            f.positions.push(x);
        } else if line.starts_with("ENDMDL") {
            break;
        }
    }
    if f.positions.is_empty() {
        bail!("{source}: no ATOM or HETATM records");
    }
    Ok(f)
}

pub fn read_pdb_file(path: &Path) -> Result<XyzFrame> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    parse_pdb(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_atoms_box_and_names_bad_lines() {
        let text = "CRYST1   20.000   21.000   22.000  90.00  90.00  90.00 P 1           1\n\
ATOM      1  OW  SOL     1       1.000   2.000   3.000  1.00  0.00           O\n\
HETATM    2  CL   CL     2       4.500   5.000   6.000  1.00  0.00          CL\n";
        let f = parse_pdb(text, "t.pdb").unwrap();
        assert_eq!(f.symbols, vec!["O", "Cl"]);
        assert_eq!(f.positions[1], [4.5, 5.0, 6.0]);
        assert_eq!(f.box_lengths, Some([20.0, 21.0, 22.0]));
        let bad = text.replace("4.500", "4.5x0");
        let e = parse_pdb(&bad, "t.pdb").unwrap_err().to_string();
        assert!(e.contains("t.pdb line 3"), "{e}");
    }
}
