//! `wgmd eval CONFIG.toml --json` for classical configs: the JSON contract on the NIST SPC/E
//! presets (energies in K against NIST), another NIST file by changing only the structure
//! path, and clear errors for bad Coulomb input.

mod coulomb_support;

use std::path::Path;
use std::process::Command;

use coulomb_support::*;

fn wgmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgmd"));
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wgmd-coulomb-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn eval_json(config: &Path) -> serde_json::Value {
    let out = wgmd()
        .args(["eval", config.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_against_nist(v: &serde_json::Value, c: &serde_json::Value) {
    let n = 3 * c["molecules"].as_u64().unwrap();
    assert_eq!(v["atoms"].as_u64().unwrap(), n);
    assert_eq!(v["units"], "K");
    let terms = v["terms"].as_object().unwrap();
    let mut keys: Vec<&str> = terms.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "coulomb_exclusion",
            "coulomb_real",
            "coulomb_reciprocal",
            "coulomb_self",
            "lj",
            "lj_tail"
        ]
    );
    let total = v["total"].as_f64().unwrap();
    let sum: f64 = terms.values().map(|x| x.as_f64().unwrap()).sum();
    assert!((total - sum).abs() < 1e-9 * total.abs());
    let want = c["E_total"].as_f64().unwrap();
    assert!(
        (total - want).abs() < 2e-6 * want.abs(),
        "total {total} K, NIST {want}"
    );
    let real = terms["coulomb_real"].as_f64().unwrap();
    assert!((real - c["E_real"].as_f64().unwrap()).abs() < 2e-6 * real.abs());
    let f = v["forces"].as_array().unwrap();
    assert_eq!(f.len() as u64, n);
    assert!(f.iter().all(|r| r.as_array().unwrap().len() == 3));
}

#[test]
fn eval_nist_presets_and_another_file_by_path_only() {
    let r = reference();
    let configs = r["nist_spce_10A"]["configs"].as_array().unwrap();
    let presets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets");
    check_against_nist(&eval_json(&presets.join("nist_spce_1.toml")), &configs[0]);
    // nist_spce_1.toml with only the structure path changed evaluates configuration 2.
    let text = std::fs::read_to_string(presets.join("nist_spce_1.toml")).unwrap();
    let other = data_dir().join("spce_sample_config_periodic2.txt");
    let text = text.replace(
        "../../tests/data/nist_spce/spce_sample_config_periodic1.txt",
        other.to_str().unwrap(),
    );
    let dir = tmpdir("path");
    let cfg = dir.join("other.toml");
    std::fs::write(&cfg, text).unwrap();
    check_against_nist(&eval_json(&cfg), &configs[1]);
}

#[test]
fn bad_coulomb_input_is_one_clear_error() {
    let dir = tmpdir("bad");
    let base = r#"
units = "physical"
[system]
lattice = "rocksalt"
cells = [2, 2, 2]
lattice_constant = 6.0
species = ["Na", "Cl"]
[types.Na]
mass = 22.99
charge = CHARGE
[types.Cl]
mass = 35.45
charge = -1.0
[forces.coulomb]
method = "METHOD"
cutoff = 5.0
[integrator]
type = "verlet"
dt = 1.0
"#;
    for (charge, method, expect) in [
        ("1.0", "ewald", ""),
        ("1.5", "ewald", "net charge is 16.000000 e"),
        ("1.5", "pme", "neutralize = true"),
        ("1.0", "multipole", "method = \"multipole\" is unknown"),
    ] {
        let cfg = dir.join("c.toml");
        std::fs::write(
            &cfg,
            base.replace("CHARGE", charge).replace("METHOD", method),
        )
        .unwrap();
        let out = wgmd()
            .args(["eval", cfg.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if expect.is_empty() {
            assert!(out.status.success(), "{err}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["units"], "eV");
            assert!(v["terms"]["coulomb_reciprocal"].is_number() && v["terms"].get("lj").is_some());
        } else {
            assert!(!out.status.success());
            assert!(err.contains(expect), "{method}/{charge}: {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        }
    }
}
