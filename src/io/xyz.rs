//! XYZ structure files: plain XYZ (`symbol x y z`) and extended XYZ (the ASE/libAtoms
//! convention of `key=value` pairs on the comment line, with `Lattice` and `Properties`).
//!
//! Reading takes the first frame only, because a structure file gives the starting
//! configuration; writing emits one extended-XYZ frame per call so trajectories can be
//! appended frame by frame and read back by ASE, OVITO, VMD and this reader alike.
//!
//! The engine only knows orthorhombic, fully periodic boxes, so a triclinic cell is refused
//! rather than silently reduced to its diagonal, and `pbc` flags are not interpreted.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::system::System;

/// Symbol and standard atomic weight (amu) of elements 1..=56, indexed by atomic number − 1.
///
/// Values are the IUPAC/CIAAW standard atomic weights; for elements whose standard weight
/// is an interval (H, Li, B, C, N, O, Mg, Si, S, Cl, Br) the IUPAC conventional value is used.
const ELEMENTS: [(&str, f64); 56] = [
    ("H", 1.008),
    ("He", 4.002602),
    ("Li", 6.94),
    ("Be", 9.0121831),
    ("B", 10.81),
    ("C", 12.011),
    ("N", 14.007),
    ("O", 15.999),
    ("F", 18.998403162),
    ("Ne", 20.1797),
    ("Na", 22.98976928),
    ("Mg", 24.305),
    ("Al", 26.9815384),
    ("Si", 28.085),
    ("P", 30.973761998),
    ("S", 32.06),
    ("Cl", 35.45),
    // IUPAC (2017) now gives an interval with conventional value 39.95; 39.948 is the weight
    // of atmospheric argon that argon force fields and reference MD results are built on.
    ("Ar", 39.948),
    ("K", 39.0983),
    ("Ca", 40.078),
    ("Sc", 44.955907),
    ("Ti", 47.867),
    ("V", 50.9415),
    ("Cr", 51.9961),
    ("Mn", 54.938043),
    ("Fe", 55.845),
    ("Co", 58.933194),
    ("Ni", 58.6934),
    ("Cu", 63.546),
    ("Zn", 65.38),
    ("Ga", 69.723),
    ("Ge", 72.630),
    ("As", 74.921595),
    ("Se", 78.971),
    ("Br", 79.904),
    ("Kr", 83.798),
    ("Rb", 85.4678),
    ("Sr", 87.62),
    ("Y", 88.905838),
    ("Zr", 91.222),
    ("Nb", 92.90637),
    ("Mo", 95.95),
    // Tc has no stable isotope and so no standard weight; 98 is the customary tabulated value.
    ("Tc", 98.0),
    ("Ru", 101.07),
    ("Rh", 102.90549),
    ("Pd", 106.42),
    ("Ag", 107.8682),
    ("Cd", 112.414),
    ("In", 114.818),
    ("Sn", 118.710),
    ("Sb", 121.760),
    ("Te", 127.60),
    ("I", 126.90447),
    ("Xe", 131.293),
    ("Cs", 132.90545196),
    ("Ba", 137.327),
];

/// Heavier elements common in MD (metals), beyond the contiguous table: (Z, symbol, weight).
const HEAVY_ELEMENTS: [(u32, &str, f64); 2] = [
    (79, "Au", 196.966570),
    // Lead's standard weight is an interval since 2020; 207.2 is its conventional value.
    (82, "Pb", 207.2),
];

/// Standard atomic weight (amu) of an element symbol, case-sensitive ("Cl", not "CL"), so
/// force-field type names such as "CL" or "OW" are never mistaken for elements.
pub fn element_mass(symbol: &str) -> Option<f64> {
    ELEMENTS
        .iter()
        .copied()
        .chain(HEAVY_ELEMENTS.iter().map(|&(_, s, m)| (s, m)))
        .find(|&(s, _)| s == symbol)
        .map(|(_, m)| m)
}

/// Symbol of atomic number `z`, for files that give species as numbers.
fn element_symbol(z: u32) -> Option<&'static str> {
    match z {
        1..=56 => Some(ELEMENTS[z as usize - 1].0),
        _ => HEAVY_ELEMENTS
            .iter()
            .find(|&&(hz, _, _)| hz == z)
            .map(|&(_, s, _)| s),
    }
}

/// The first frame of an XYZ file, in the file's units and atom order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct XyzFrame {
    /// Per-atom species; atomic numbers in the file are already converted to symbols.
    pub symbols: Vec<String>,
    pub positions: Vec<[f64; 3]>,
    /// Present only when the file has a velocity column (`vel`, `velo` or `velocities`).
    pub velocities: Option<Vec<[f64; 3]>>,
    /// Present only when the file has a `charge`/`charges` column.
    pub charges: Option<Vec<f64>>,
    /// Orthorhombic box edge lengths, from `Lattice=` or a `cell:` comment.
    pub box_lengths: Option<[f64; 3]>,
    /// The comment line (line 2) as written, without the line ending.
    pub comment: String,
}

/// Where each quantity sits among the whitespace-separated columns of an atom line.
struct Layout {
    columns: usize,
    species: usize,
    pos: usize,
    vel: Option<usize>,
    charge: Option<usize>,
    /// Plain XYZ tolerates trailing columns (some writers append data there); extended XYZ
    /// declares its columns, so a different count means the file and its header disagree.
    exact: bool,
    /// How the columns were described, for "expected N columns (...)" messages.
    described: String,
}

impl Layout {
    fn plain() -> Layout {
        Layout {
            columns: 4,
            species: 0,
            pos: 1,
            vel: None,
            charge: None,
            exact: false,
            described: "symbol x y z".into(),
        }
    }
}

/// Reads the first frame of plain or extended XYZ text. `source` names the text (usually
/// the file path) in error messages, which all have the form "`source` line N: ...".
pub fn parse_xyz(text: &str, source: &str) -> Result<XyzFrame> {
    let fail = |line: usize, msg: String| anyhow!("{source} line {line}: {msg}");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();

    let count_text = match lines.next() {
        None => return Err(fail(1, "the file is empty; expected the atom count".into())),
        Some(l) => l.trim(),
    };
    if count_text.is_empty() {
        return Err(fail(1, "the line is empty; expected the atom count".into()));
    }
    let n = match count_text.parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(fail(
                1,
                format!("the atom count '{count_text}' is not a positive integer"),
            ))
        }
    };

    let comment = lines
        .next()
        .ok_or_else(|| {
            fail(
                1,
                format!(
                    "file ends after the atom count; expected a comment line and {n} atom lines"
                ),
            )
        })?
        .to_string();
    let (layout, box_lengths) = parse_comment(&comment).map_err(|msg| fail(2, msg))?;

    // Capacity is capped by the lines actually present so a bogus huge count cannot
    // allocate before the truncation error is found.
    let cap = n.min(text.len() / 8 + 1);
    let mut frame = XyzFrame {
        symbols: Vec::with_capacity(cap),
        positions: Vec::with_capacity(cap),
        velocities: layout.vel.map(|_| Vec::with_capacity(cap)),
        charges: layout.charge.map(|_| Vec::with_capacity(cap)),
        box_lengths,
        comment,
    };
    for i in 0..n {
        let line_no = i + 3;
        let Some(line) = lines.next() else {
            // Name the last line that exists: that is where the reader ran out.
            return Err(fail(
                line_no - 1,
                format!("file ends after {i} of {n} atoms"),
            ));
        };
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let count_ok = if layout.exact {
            tokens.len() == layout.columns
        } else {
            tokens.len() >= layout.columns
        };
        if !count_ok {
            return Err(fail(
                line_no,
                format!(
                    "expected {} columns ({}), found {}",
                    layout.columns,
                    layout.described,
                    tokens.len()
                ),
            ));
        }
        let at = |msg: String| fail(line_no, msg);
        frame
            .symbols
            .push(species(tokens[layout.species]).map_err(at)?);
        frame
            .positions
            .push(vector(&tokens[layout.pos..layout.pos + 3], "coordinate").map_err(at)?);
        if let (Some(c), Some(v)) = (layout.vel, frame.velocities.as_mut()) {
            v.push(vector(&tokens[c..c + 3], "velocity").map_err(at)?);
        }
        if let (Some(c), Some(q)) = (layout.charge, frame.charges.as_mut()) {
            q.push(number(tokens[c], "charge").map_err(at)?);
        }
    }
    Ok(frame)
}

/// Reads the first frame of an XYZ file.
pub fn read_xyz_file(path: &Path) -> Result<XyzFrame> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read structure file '{}'", path.display()))?;
    parse_xyz(&text, &path.display().to_string())
}

/// A species token: an element/type name as written, or an atomic number turned into its
/// symbol so that masses can be looked up by name.
fn species(token: &str) -> Result<String, String> {
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(token.to_string());
    }
    token
        .parse::<u32>()
        .ok()
        .and_then(element_symbol)
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "atomic number {token} is not a known element; write the element symbol instead"
            )
        })
}

/// A finite number; `what` names it in the message ("x coordinate", "charge").
fn number(token: &str, what: &str) -> Result<f64, String> {
    let x: f64 = token
        .parse()
        .map_err(|_| format!("{what} '{token}' is not a number"))?;
    if !x.is_finite() {
        return Err(format!("{what} is '{token}'; every number must be finite"));
    }
    Ok(x)
}

fn vector(tokens: &[&str], what: &str) -> Result<[f64; 3], String> {
    let mut v = [0.0; 3];
    for (d, (x, t)) in v.iter_mut().zip(tokens).enumerate() {
        *x = number(t, &format!("{} {what}", ["x", "y", "z"][d]))?;
    }
    Ok(v)
}

/// Column layout and box from the comment line. Text that is not key=value pairs is just
/// a comment, so only Lattice/Properties/`cell:` content that is present but wrong is an error.
fn parse_comment(comment: &str) -> Result<(Layout, Option<[f64; 3]>), String> {
    let pairs = key_values(comment);
    let find = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };

    let layout = match find("Properties") {
        Some(p) => parse_properties(p)?,
        None => Layout::plain(),
    };
    let box_lengths = match find("Lattice") {
        Some(l) => Some(parse_lattice(l)?),
        None => match cell_numbers(comment) {
            Some(nums) => parse_cell(&nums)?,
            None => None,
        },
    };
    Ok((layout, box_lengths))
}

/// Splits an extended-XYZ comment into (key, value) pairs. Values may be double-quoted (with
/// backslash escapes) or brace-delimited to contain spaces; a bare key has an empty value.
/// Never fails: a plain-text comment just yields pairs nobody looks up.
fn key_values(comment: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = comment.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut pairs = Vec::new();
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            return pairs;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        // The extended-XYZ grammar allows spaces around '='.
        let mut j = i;
        skip_ws(&mut j);
        let mut value = String::new();
        if j < chars.len() && chars[j] == '=' {
            i = j + 1;
            skip_ws(&mut i);
            match chars.get(i) {
                Some('"') => {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        if chars[i] == '\\' && i + 1 < chars.len() {
                            i += 1;
                        }
                        value.push(chars[i]);
                        i += 1;
                    }
                    i += 1; // closing quote (or past the end if unterminated)
                }
                Some('{') => {
                    i += 1;
                    while i < chars.len() && chars[i] != '}' {
                        value.push(chars[i]);
                        i += 1;
                    }
                    i += 1;
                }
                _ => {
                    while i < chars.len() && !chars[i].is_whitespace() {
                        value.push(chars[i]);
                        i += 1;
                    }
                }
            }
        }
        if !key.is_empty() {
            pairs.push((key, value));
        }
    }
}

/// Column layout from a `Properties=name:type:count:...` value.
fn parse_properties(spec: &str) -> Result<Layout, String> {
    let fields: Vec<&str> = spec.split(':').collect();
    if spec.is_empty() || fields.len() % 3 != 0 {
        return Err(format!(
            "Properties={spec} is not a list of name:type:count triples"
        ));
    }
    let (mut species, mut pos, mut vel, mut charge) = (None, None, None, None);
    let mut column = 0;
    for triple in fields.chunks(3) {
        let (name, kind, count) = (triple[0], triple[1].to_ascii_uppercase(), triple[2]);
        let count: usize = count.parse().ok().filter(|&c| c > 0).ok_or_else(|| {
            format!("Properties column '{name}' has count '{count}'; expected a positive integer")
        })?;
        if !matches!(kind.as_str(), "S" | "R" | "I" | "L") {
            return Err(format!(
                "Properties column '{name}' has type '{kind}'; expected S, R, I or L"
            ));
        }
        let expect = |k: &str, c: usize| {
            if kind == k && count == c {
                Ok(Some(column))
            } else {
                Err(format!(
                    "Properties column '{name}' is {kind}:{count}; expected {name}:{k}:{c}"
                ))
            }
        };
        // The first column of each kind wins; anything unrecognised is skipped by its width.
        match name.to_ascii_lowercase().as_str() {
            "species" if species.is_none() => species = expect("S", 1)?,
            "pos" if pos.is_none() => pos = expect("R", 3)?,
            "velo" | "vel" | "velocities" if vel.is_none() => vel = expect("R", 3)?,
            "charge" | "charges" if charge.is_none() => charge = expect("R", 1)?,
            _ => {}
        }
        column += count;
    }
    let species = species.ok_or_else(|| format!("Properties={spec} has no species:S:1 column"))?;
    let pos = pos.ok_or_else(|| format!("Properties={spec} has no pos:R:3 column"))?;
    Ok(Layout {
        columns: column,
        species,
        pos,
        vel,
        charge,
        exact: true,
        described: format!("from Properties={spec}"),
    })
}

/// Box from a `Lattice="ax ay az bx by bz cx cy cz"` value (three cell vectors); three
/// numbers are also accepted as the edge lengths of an orthorhombic box.
fn parse_lattice(value: &str) -> Result<[f64; 3], String> {
    let nums = value
        .split_whitespace()
        .map(|t| match t.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(format!("Lattice entry '{t}' is not a finite number")),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    match nums.len() {
        9 => diagonal_box(&nums, "Lattice"),
        3 => positive_box([nums[0], nums[1], nums[2]], "Lattice"),
        k => Err(format!(
            "Lattice has {k} numbers; expected 9 (three cell vectors)"
        )),
    }
}

/// Numbers following a lumol/NIST-style `cell:` marker (`cell: 10 10 10`,
/// `cell: [10, 10, 10]`), or None when the comment has no such marker with numbers.
fn cell_numbers(comment: &str) -> Option<Vec<f64>> {
    // ASCII lowercase keeps byte offsets, so positions in `lower` index `comment`.
    let lower = comment.to_ascii_lowercase();
    let at = lower
        .match_indices("cell:")
        .map(|(k, _)| k)
        .find(|&k| k == 0 || comment[..k].ends_with(char::is_whitespace))?;
    let mut rest = comment[at + "cell:".len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('[') {
        rest = &inner[..inner.find(']').unwrap_or(inner.len())];
    }
    let nums: Vec<f64> = rest
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map_while(|t| t.parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    (!nums.is_empty()).then_some(nums)
}

/// Box from `cell:` numbers: one (cubic), three (edges), six (edges and angles in degrees)
/// or nine (cell vectors).
fn parse_cell(nums: &[f64]) -> Result<Option<[f64; 3]>, String> {
    let lengths = match nums.len() {
        1 => [nums[0]; 3],
        3 => [nums[0], nums[1], nums[2]],
        6 => {
            if nums[3..].iter().any(|&a| (a - 90.0).abs() > 90.0 * 1e-9) {
                return Err(triclinic("cell:"));
            }
            [nums[0], nums[1], nums[2]]
        }
        9 => diagonal_box(nums, "cell:")?,
        k => {
            return Err(format!(
                "cell: has {k} numbers; expected 3 box lengths (or 1 for a cube)"
            ))
        }
    };
    positive_box(lengths, "cell:").map(Some)
}

/// Edge lengths of a 3×3 cell matrix (row vectors, finite entries) that must be diagonal.
fn diagonal_box(m: &[f64], what: &str) -> Result<[f64; 3], String> {
    let diag = [m[0], m[4], m[8]];
    let scale = diag.iter().fold(0.0f64, |s, x| s.max(x.abs()));
    let off = [m[1], m[2], m[3], m[5], m[6], m[7]];
    if off.iter().any(|x| x.abs() > 1e-9 * scale) {
        return Err(triclinic(what));
    }
    positive_box(diag, what)
}

fn triclinic(what: &str) -> String {
    format!("{what} describes a triclinic (non-orthogonal) box; triclinic boxes are not supported, only orthorhombic ones")
}

fn positive_box(lengths: [f64; 3], what: &str) -> Result<[f64; 3], String> {
    for (d, &l) in lengths.iter().enumerate() {
        if !(l.is_finite() && l > 0.0) {
            return Err(format!(
                "{what} gives a box length of {l} along {}; box lengths must be positive",
                ["x", "y", "z"][d]
            ));
        }
    }
    Ok(lengths)
}

/// Writes one extended-XYZ frame: the atom count, a comment line with `Lattice`,
/// `Properties`, `pbc` and then `extra` (more key=value pairs, e.g. `Time=... Step=...`),
/// and one line per atom. `names[i]` is atom i's species. Numbers have 9 significant digits
/// in C-style scientific notation (`-1.23456789e+01`), which round-trips f32 data exactly,
/// keeps columns aligned and is readable by every XYZ reader.
pub fn write_xyz(
    out: &mut impl Write,
    names: &[&str],
    positions: &[[f64; 3]],
    velocities: Option<&[[f64; 3]]>,
    box_lengths: [f64; 3],
    extra: &str,
) -> std::io::Result<()> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
    let n = positions.len();
    if names.len() != n {
        return Err(invalid(format!(
            "XYZ output: {} names for {n} positions",
            names.len()
        )));
    }
    if let Some(v) = velocities.filter(|v| v.len() != n) {
        return Err(invalid(format!(
            "XYZ output: {} velocities for {n} positions",
            v.len()
        )));
    }
    if extra.contains(['\n', '\r']) {
        return Err(invalid(
            "XYZ output: the extra comment text contains a line break".into(),
        ));
    }

    let [lx, ly, lz] = box_lengths;
    writeln!(out, "{n}")?;
    let vel_columns = if velocities.is_some() { ":vel:R:3" } else { "" };
    write!(out, "Lattice=\"{lx} 0 0 0 {ly} 0 0 0 {lz}\" Properties=species:S:1:pos:R:3{vel_columns} pbc=\"T T T\"")?;
    if !extra.is_empty() {
        write!(out, " {extra}")?;
    }
    writeln!(out)?;

    let width = names.iter().map(|s| s.len()).max().unwrap_or(0).max(2);
    // One reused line buffer: trajectories write millions of numbers.
    let mut line = String::new();
    for i in 0..n {
        line.clear();
        line.push_str(names[i]);
        line.extend(std::iter::repeat_n(' ', width - names[i].len()));
        let vel = velocities.map(|v| v[i]);
        for x in positions[i].iter().chain(vel.iter().flatten()) {
            push_sci(&mut line, *x);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Appends " " and `x` as `%.8e` would print it (sign column kept for alignment).
fn push_sci(line: &mut String, x: f64) {
    use std::fmt::Write as _;
    line.push(' ');
    if !x.is_sign_negative() {
        line.push(' ');
    }
    let start = line.len();
    // Writing to a String cannot fail.
    let _ = write!(line, "{x:.8e}");
    // Rust prints exponents as "e3"/"e-3"; C's "e+03"/"e-03" keeps every column one width.
    if let Some(e) = line[start..].find('e').map(|k| start + k) {
        let exp: i32 = line[e + 1..]
            .parse()
            .expect("Rust's {:e} exponent is an integer");
        line.truncate(e);
        let _ = write!(
            line,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}

impl XyzFrame {
    /// Builds a System: one type per distinct symbol in order of first appearance, with the
    /// mass `masses` gives for it; absent velocities and charges become zero.
    pub fn into_system(self, masses: &dyn Fn(&str) -> Option<f64>) -> Result<System> {
        let n = self.positions.len();
        if self.symbols.len() != n
            || self.velocities.as_ref().is_some_and(|v| v.len() != n)
            || self.charges.as_ref().is_some_and(|q| q.len() != n)
        {
            bail!("internal: XYZ frame has per-atom lists of different lengths");
        }
        let box_lengths = self.box_lengths.ok_or_else(|| {
            anyhow!(
                "the XYZ structure has no box: add Lattice=\"Lx 0 0 0 Ly 0 0 0 Lz\" to its comment line \
                 (extended XYZ) or set box = [Lx, Ly, Lz] in the config's [system] table"
            )
        })?;
        let mut sys = System {
            positions: self.positions,
            velocities: self.velocities.unwrap_or_else(|| vec![[0.0; 3]; n]),
            charges: self.charges.unwrap_or_else(|| vec![0.0; n]),
            box_lengths,
            ..System::default()
        };
        sys.types.reserve(n);
        for (i, name) in self.symbols.iter().enumerate() {
            // Ask for a mass only once per type, on its first atom.
            let t = match sys.type_names.iter().position(|t| t == name) {
                Some(t) => t as u32,
                None => {
                    let mass = masses(name).ok_or_else(|| {
                        anyhow!(
                            "no mass for atom type '{name}' (first seen at atom {}): give its mass in the \
                             config's [types.{name}] table, e.g. mass = 12.011",
                            i + 1
                        )
                    })?;
                    sys.type_index(name, mass)
                }
            };
            sys.types.push(t);
        }
        Ok(sys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        format!("{:#}", r.expect_err("expected an error"))
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn element_table() {
        assert_eq!(element_mass("Ar"), Some(39.948));
        assert_eq!(element_mass("Cl"), Some(35.45));
        assert_eq!(element_mass("CL"), None);
        assert_eq!(element_mass("Pb"), Some(207.2));
        assert_eq!(element_mass("OW"), None);
        assert_eq!(element_symbol(1), Some("H"));
        assert_eq!(element_symbol(36), Some("Kr"));
        assert_eq!(element_symbol(56), Some("Ba"));
        assert_eq!(element_symbol(79), Some("Au"));
        assert_eq!(element_symbol(0), None);
        assert_eq!(element_symbol(57), None);
        // Every symbol in the table has a mass and the order matches atomic numbers.
        assert_eq!(ELEMENTS[17].0, "Ar");
        assert_eq!(ELEMENTS[46].0, "Ag");
        assert_eq!(ELEMENTS[52].0, "I");
    }

    #[test]
    fn round_trip() {
        let names = ["O", "H", "H", "Na"];
        let pos = [
            [1.5, -2.25e-3, 9.87654321],
            [0.1f32 as f64, 123.456789, -0.0],
            [1e-9, 2.0, 3.0],
            [7.0, 8.0, 1e3],
        ];
        let vel = [
            [1e-3, -2e-3, 3e-3],
            [0.0; 3],
            [-4.5, 0.0, 1.0],
            [1.0, 1.0, 1.0],
        ];
        let bx = [10.0, 12.5, 1000.0 / 7.0];
        let mut buf = Vec::new();
        write_xyz(&mut buf, &names, &pos, Some(&vel), bx, "Time=1.5 Step=3").unwrap();
        let text = String::from_utf8(buf).unwrap();
        let f = parse_xyz(&text, "traj.xyz").unwrap();
        assert_eq!(f.symbols, names);
        assert_eq!(f.box_lengths, Some(bx));
        assert!(f.comment.ends_with("Time=1.5 Step=3"), "{}", f.comment);
        assert!(f.charges.is_none());
        let fv = f.velocities.as_ref().unwrap();
        for i in 0..4 {
            for d in 0..3 {
                assert!(
                    close(f.positions[i][d], pos[i][d], 1e-7),
                    "{:?} vs {:?}",
                    f.positions[i],
                    pos[i]
                );
                assert!(close(fv[i][d], vel[i][d], 1e-7));
            }
        }
        // f32 data survives exactly.
        assert_eq!(f.positions[1][0] as f32, 0.1f32);

        // Without velocities the Properties line omits them.
        let mut buf = Vec::new();
        write_xyz(&mut buf, &names, &pos, None, bx, "").unwrap();
        let f = parse_xyz(std::str::from_utf8(&buf).unwrap(), "x").unwrap();
        assert!(f.velocities.is_none());
        assert!(f.comment.ends_with("pbc=\"T T T\""));
    }

    #[test]
    fn writer_rejects_mismatched_lengths() {
        let mut buf = Vec::new();
        assert!(write_xyz(&mut buf, &["A"], &[[0.0; 3]; 2], None, [1.0; 3], "").is_err());
        assert!(write_xyz(&mut buf, &["A"], &[[0.0; 3]], None, [1.0; 3], "a\nb").is_err());
    }

    #[test]
    fn extended_with_velocity_charge_and_skipped_columns() {
        let text = "3\n\
            lattice=\"10 0 0 0 12 0 0 0 9\" properties=species:S:1:pos:R:3:tag:I:1:velo:R:3:charges:R:1:label:S:2 Time=5.0 pbc=\"T T T\"\n\
            O  1 2 3  7  0.1 0.2 0.3  -0.8476  a b\n\
            H  1.5 2 3  7  0 0 0  0.4238  c d\n\
            8  0 0 0  9  1 1 1  0.4238  e f\n";
        let f = parse_xyz(text, "w.xyz").unwrap();
        assert_eq!(f.symbols, ["O", "H", "O"]);
        assert_eq!(f.box_lengths, Some([10.0, 12.0, 9.0]));
        assert_eq!(f.positions[1], [1.5, 2.0, 3.0]);
        assert_eq!(f.velocities.as_ref().unwrap()[0], [0.1, 0.2, 0.3]);
        assert_eq!(f.charges.as_ref().unwrap(), &[-0.8476, 0.4238, 0.4238]);

        let sys = f.into_system(&element_mass).unwrap();
        assert_eq!(sys.type_names, ["O", "H"]);
        assert_eq!(sys.types, [0, 1, 0]);
        assert_eq!(sys.type_masses, [15.999, 1.008]);
        assert_eq!(sys.box_lengths, [10.0, 12.0, 9.0]);
        assert_eq!(sys.charges[0], -0.8476);

        // A column count that disagrees with Properties is an error naming the line.
        let bad = "1\nProperties=species:S:1:pos:R:3:vel:R:3\nAr 0 0 0 1 1\n";
        let e = err_of(parse_xyz(bad, "v.xyz"));
        assert!(e.contains("v.xyz line 3: expected 7 columns"), "{e}");
    }

    #[test]
    fn plain_xyz_and_atomic_numbers() {
        let f = parse_xyz(
            "2\nwater fragment\n6 0 0 0\nCl 1 1 1 extra columns ignored\n",
            "p.xyz",
        )
        .unwrap();
        assert_eq!(f.symbols, ["C", "Cl"]);
        assert_eq!(f.box_lengths, None);
        assert!(f.velocities.is_none());
        let sys = f.clone().into_system(&element_mass);
        let e = err_of(sys);
        assert!(e.contains("has no box") && e.contains("Lattice="), "{e}");

        // With a box from the config the frame becomes a System with zero velocities.
        let mut f = f;
        f.box_lengths = Some([5.0; 3]);
        let sys = f.into_system(&element_mass).unwrap();
        assert_eq!(sys.velocities, vec![[0.0; 3]; 2]);
        assert_eq!(sys.charges, vec![0.0; 2]);
        assert_eq!(sys.type_masses, [12.011, 35.45]);
    }

    #[test]
    fn cell_comment_styles() {
        let f = parse_xyz("1\ncell: 10 11 12\nAr 0 0 0\n", "a").unwrap();
        assert_eq!(f.box_lengths, Some([10.0, 11.0, 12.0]));
        let f = parse_xyz("1\nargon cell: [10, 10.5, 10] 1 atom\nAr 0 0 0\n", "a").unwrap();
        assert_eq!(f.box_lengths, Some([10.0, 10.5, 10.0]));
        let f = parse_xyz("1\ncell: 21.0\nAr 0 0 0\n", "a").unwrap();
        assert_eq!(f.box_lengths, Some([21.0; 3]));
        let f = parse_xyz("1\ncell: [10, 10, 10, 90, 90, 90]\nAr 0 0 0\n", "a").unwrap();
        assert_eq!(f.box_lengths, Some([10.0; 3]));
        let e = err_of(parse_xyz(
            "1\ncell: [10, 10, 10, 90, 90, 120]\nAr 0 0 0\n",
            "c.xyz",
        ));
        assert!(e.contains("c.xyz line 2") && e.contains("triclinic"), "{e}");
        // Lattice takes precedence, and "cell:" without numbers is plain text.
        let f = parse_xyz(
            "1\nLattice=\"3 0 0 0 3 0 0 0 3\" cell: 5 5 5\nAr 0 0 0\n",
            "a",
        )
        .unwrap();
        assert_eq!(f.box_lengths, Some([3.0; 3]));
        let f = parse_xyz("1\nunit cell: fcc\nAr 0 0 0\n", "a").unwrap();
        assert_eq!(f.box_lengths, None);
    }

    #[test]
    fn bad_atom_count() {
        let e = err_of(parse_xyz("abc\n\nAr 0 0 0\n", "water.xyz"));
        assert_eq!(
            e,
            "water.xyz line 1: the atom count 'abc' is not a positive integer"
        );
        let e = err_of(parse_xyz("0\n\n", "water.xyz"));
        assert!(e.contains("line 1") && e.contains("'0'"), "{e}");
        let e = err_of(parse_xyz("", "empty.xyz"));
        assert!(e.contains("empty.xyz line 1") && e.contains("empty"), "{e}");
        let e = err_of(parse_xyz("3\n", "short.xyz"));
        assert!(
            e.contains("short.xyz line 1") && e.contains("comment line"),
            "{e}"
        );
    }

    #[test]
    fn short_line() {
        let e = err_of(parse_xyz(
            "3\ncomment\nO 0 0 0\nH 1 0\nH 0 1 0\n",
            "water.xyz",
        ));
        assert_eq!(
            e,
            "water.xyz line 4: expected 4 columns (symbol x y z), found 3"
        );
    }

    #[test]
    fn truncated_file() {
        let mut text = String::from("8\ncomment\n");
        for i in 0..5 {
            text += &format!("Ar {i} 0 0\n");
        }
        let e = err_of(parse_xyz(&text, "argon.xyz"));
        assert_eq!(e, "argon.xyz line 7: file ends after 5 of 8 atoms");
    }

    #[test]
    fn non_finite_numbers() {
        let e = err_of(parse_xyz("2\n\nAr 0 0 0\nAr 1 NaN 0\n", "nan.xyz"));
        assert!(
            e.starts_with("nan.xyz line 4: y coordinate") && e.contains("finite"),
            "{e}"
        );
        let e = err_of(parse_xyz(
            "1\nProperties=species:S:1:pos:R:3:vel:R:3\nAr 0 0 0 1 inf 0\n",
            "inf.xyz",
        ));
        assert!(
            e.starts_with("inf.xyz line 3: y velocity") && e.contains("finite"),
            "{e}"
        );
        let e = err_of(parse_xyz("1\n\nAr 0 zero 0\n", "txt.xyz"));
        assert_eq!(e, "txt.xyz line 3: y coordinate 'zero' is not a number");
    }

    #[test]
    fn triclinic_lattice() {
        let e = err_of(parse_xyz(
            "1\nLattice=\"10 0 0 1 10 0 0 0 10\"\nAr 0 0 0\n",
            "tri.xyz",
        ));
        assert!(
            e.starts_with("tri.xyz line 2:") && e.contains("triclinic boxes are not supported"),
            "{e}"
        );
        let e = err_of(parse_xyz(
            "1\nLattice=\"10 0 0 0 nan 0 0 0 10\"\nAr 0 0 0\n",
            "nan.xyz",
        ));
        assert!(
            e.starts_with("nan.xyz line 2:") && e.contains("'nan' is not a finite number"),
            "{e}"
        );
        let e = err_of(parse_xyz(
            "1\nLattice=\"10 0 0 0 -10 0 0 0 10\"\nAr 0 0 0\n",
            "neg.xyz",
        ));
        assert!(
            e.starts_with("neg.xyz line 2:") && e.contains("along y"),
            "{e}"
        );
        // Rounding-level off-diagonal noise is accepted.
        let f = parse_xyz(
            "1\nLattice=\"10 1e-12 0 0 10 0 0 0 10\"\nAr 0 0 0\n",
            "ok.xyz",
        )
        .unwrap();
        assert_eq!(f.box_lengths, Some([10.0; 3]));
    }

    #[test]
    fn bad_properties() {
        let e = err_of(parse_xyz(
            "1\nProperties=species:S:1:pos:R\nAr 0 0 0\n",
            "p.xyz",
        ));
        assert!(
            e.starts_with("p.xyz line 2:") && e.contains("triples"),
            "{e}"
        );
        let e = err_of(parse_xyz(
            "1\nProperties=species:S:1:pos:R:2\nAr 0 0\n",
            "p.xyz",
        ));
        assert!(
            e.starts_with("p.xyz line 2:") && e.contains("pos:R:3"),
            "{e}"
        );
        let e = err_of(parse_xyz("1\nProperties=pos:R:3\n0 0 0\n", "p.xyz"));
        assert!(e.contains("species:S:1"), "{e}");
        let e = err_of(parse_xyz("1\n\n200 0 0 0\n", "z.xyz"));
        assert!(e.starts_with("z.xyz line 3: atomic number 200"), "{e}");
    }

    #[test]
    fn unknown_element_needs_a_mass() {
        let f = parse_xyz("2\ncell: 5 5 5\nAr 0 0 0\nXx 1 1 1\n", "x.xyz").unwrap();
        let e = err_of(f.into_system(&element_mass));
        assert!(
            e.contains("'Xx'") && e.contains("[types.Xx]") && e.contains("atom 2"),
            "{e}"
        );
        // A caller-supplied mass (from the config) covers non-element type names.
        let f = parse_xyz("1\ncell: 5 5 5\nXx 0 0 0\n", "x.xyz").unwrap();
        let sys = f
            .into_system(&|n| {
                if n == "Xx" {
                    Some(3.0)
                } else {
                    element_mass(n)
                }
            })
            .unwrap();
        assert_eq!(sys.type_masses, [3.0]);
    }

    #[test]
    fn read_missing_file_names_the_path() {
        let e = err_of(read_xyz_file(Path::new("/nonexistent/dir/w.xyz")));
        assert!(e.contains("/nonexistent/dir/w.xyz"), "{e}");
    }
}
