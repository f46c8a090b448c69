//! The `wgmd` binary: the run contract (log columns, files) and bad input — each gets one
//! clear error naming what is wrong, a non-zero exit and no output file under the asked name.

use std::path::{Path, PathBuf};
use std::process::Command;

fn wgmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgmd"))
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgmd-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SMALL: &str = r#"
units = "lj"
[system]
lattice = "fcc"
cells = [4, 4, 4]
density = 0.8442
type = "A"
[types.A]
mass = 1.0
[velocities]
temperature = 1.44
seed = 5
[forces.lj]
cutoff = 2.5
[forces.lj.types.A]
sigma = 1.0
epsilon = 1.0
[neighbor]
skin = 0.3
[integrator]
type = "verlet"
dt = 0.005
[run]
steps = 40
every = 10
"#;

/// Runs `wgmd run` on `config` text; returns (success, stderr, log path, traj path).
fn run_config(tag: &str, config: &str, extra: &[&str]) -> (bool, String, PathBuf, PathBuf) {
    let d = tmpdir(tag);
    let cfg = d.join("c.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = d.join("log.csv");
    let traj = d.join("traj.xyz");
    let out = wgmd()
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--traj",
            traj.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        log,
        traj,
    )
}

fn no_output(log: &Path, traj: &Path) {
    assert!(
        !log.exists(),
        "a log file was left under the requested name"
    );
    assert!(
        !traj.exists(),
        "a trajectory was left under the requested name"
    );
}

#[test]
fn run_writes_log_and_trajectory() {
    let (ok, err, log, traj) = run_config("ok", SMALL, &["--steps", "30", "--every", "10"]);
    assert!(ok, "run failed: {err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "step,time,temperature,potential_energy,kinetic_energy,total_energy,pressure"
    );
    assert_eq!(lines.len(), 1 + 4, "rows for steps 0,10,20,30");
    let last: Vec<f64> = lines[4].split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(last[0], 30.0);
    assert!((last[1] - 0.15).abs() < 1e-12);
    assert!((last[3] + last[4] - last[5]).abs() < 1e-6 * last[5].abs());
    let frames = std::fs::read_to_string(&traj).unwrap();
    assert_eq!(frames.lines().filter(|l| l.trim() == "256").count(), 4);
}

#[test]
fn neighbor_modes_give_the_same_run_and_bad_ones_are_named() {
    // The same 40 steps from a Verlet list and straight from the cell list: the logged
    // energies agree to f32 summation-order rounding.
    let rows = |mode: &str| {
        let cfg = SMALL.replace("skin = 0.3", &format!("skin = 0.3\nmode = \"{mode}\""));
        let (ok, err, log, _) = run_config(&format!("mode-{mode}"), &cfg, &[]);
        assert!(ok, "{mode}: {err}");
        let text = std::fs::read_to_string(&log).unwrap();
        let last = text.lines().last().unwrap().to_string();
        last.split(',')
            .map(|x| x.parse::<f64>().unwrap())
            .collect::<Vec<_>>()
    };
    let (v, c) = (rows("verlet"), rows("cells"));
    assert_eq!(v[0], 40.0);
    assert_eq!(c[0], 40.0);
    assert!(
        ((v[5] - c[5]) / v[5]).abs() < 1e-5,
        "total energy {} (verlet) vs {} (cells)",
        v[5],
        c[5]
    );
    let cfg = SMALL.replace("skin = 0.3", "skin = 0.3\nmode = \"octree\"");
    let (ok, err, log, traj) = run_config("mode-bad", &cfg, &[]);
    assert!(!ok);
    assert!(
        err.contains("neighbor.mode") && err.contains("octree"),
        "{err}"
    );
    no_output(&log, &traj);
}

#[test]
fn summary_reports_a_conserved_energy_only_without_a_thermostat() {
    let summary = |tag: &str, cfg: &str| {
        let d = tmpdir(tag);
        std::fs::write(d.join("c.toml"), cfg).unwrap();
        let out = wgmd()
            .args(["run", d.join("c.toml").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let nve = summary("sum-nve", SMALL);
    assert!(
        nve.contains("conserved energy") && nve.contains("relative drift"),
        "{nve}"
    );
    let nvt = summary(
        "sum-nvt",
        &SMALL.replace(
            "type = \"verlet\"",
            "type = \"langevin\"\ntemperature = 1.2\nfriction = 1.0",
        ),
    );
    assert!(
        nvt.contains("Langevin thermostat at T* = 1.2") && !nvt.contains("relative drift"),
        "{nvt}"
    );
}

#[test]
fn malformed_config_is_named() {
    let (ok, err, log, traj) =
        run_config("malformed", "units = \"lj\"\n[system\nlattice = 3\n", &[]);
    assert!(!ok);
    assert!(err.contains("c.toml") && err.contains("line"), "{err}");
    no_output(&log, &traj);
}

#[test]
fn unknown_key_is_named() {
    let cfg = SMALL.replace("skin = 0.3", "skin = 0.3\nskim = 1.0");
    let (ok, err, log, traj) = run_config("unknown", &cfg, &[]);
    assert!(!ok);
    assert!(err.contains("skim"), "{err}");
    no_output(&log, &traj);
}

#[test]
fn cutoff_larger_than_half_box_is_named() {
    let cfg = SMALL.replace("cutoff = 2.5", "cutoff = 4.0");
    let (ok, err, log, traj) = run_config("cutoff", &cfg, &[]);
    assert!(!ok);
    assert!(err.contains("cutoff") && err.contains("half"), "{err}");
    no_output(&log, &traj);
}

#[test]
fn negative_mass_and_time_step_are_named() {
    let (ok, err, log, traj) = run_config("mass", &SMALL.replace("mass = 1.0", "mass = -1.0"), &[]);
    assert!(!ok);
    assert!(err.contains("mass"), "{err}");
    no_output(&log, &traj);
    let (ok, err, log, traj) = run_config("dt", &SMALL.replace("dt = 0.005", "dt = -0.005"), &[]);
    assert!(!ok);
    assert!(err.contains("dt"), "{err}");
    no_output(&log, &traj);
}

#[test]
fn overlapping_atoms_blow_up_with_a_clear_error() {
    // Two atoms 0.05 sigma apart inside a dilute box: the force explodes at once.
    let d = tmpdir("overlap");
    std::fs::write(
        d.join("two.xyz"),
        "3\nLattice=\"8 0 0 0 8 0 0 0 8\"\nA 1.0 1.0 1.0\nA 1.05 1.0 1.0\nA 4 4 4\n",
    )
    .unwrap();
    let cfg = SMALL.replace(
        "lattice = \"fcc\"\ncells = [4, 4, 4]\ndensity = 0.8442\ntype = \"A\"",
        "structure = \"two.xyz\"",
    );
    std::fs::write(d.join("c.toml"), cfg).unwrap();
    let log = d.join("log.csv");
    let out = wgmd()
        .args([
            "run",
            d.join("c.toml").to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unstable") && err.contains("atom"), "{err}");
    assert!(!log.exists());
}

#[test]
fn malformed_structure_file_is_named() {
    let d = tmpdir("badxyz");
    std::fs::write(
        d.join("bad.xyz"),
        "3\nLattice=\"8 0 0 0 8 0 0 0 8\"\nA 1.0 1.0 1.0\nA 1.05 oops 1.0\n",
    )
    .unwrap();
    let cfg = SMALL.replace(
        "lattice = \"fcc\"\ncells = [4, 4, 4]\ndensity = 0.8442\ntype = \"A\"",
        "structure = \"bad.xyz\"",
    );
    std::fs::write(d.join("c.toml"), cfg).unwrap();
    let out = wgmd()
        .args(["run", d.join("c.toml").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.xyz") && err.contains("line 4"), "{err}");
}

#[test]
fn presets_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let mut cfg = wgmd::config::Config::load(&path).unwrap();
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
            // ANI presets name a model file users download; use the project's copy when it is
            // beside the checkout, else only check the config up to the clear "not found".
            if let Some(ani) = cfg.forces.ani.as_mut() {
                let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
                if ani.resolve(&cfg.base_dir, "").is_err() {
                    if shared.join(&ani.model).is_file() {
                        ani.model = shared.join(&ani.model);
                    } else {
                        let e = format!("{:#}", cfg.to_spec().unwrap_err());
                        assert!(
                            e.contains("was not found") && e.contains("ani-model-zoo"),
                            "{e}"
                        );
                        println!(
                            "{}: ANI model absent, checked the message only",
                            path.display()
                        );
                        continue;
                    }
                }
            }
            let spec = cfg
                .to_spec()
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            // Teaching and benchmark systems are sizeable; the ANI molecule is one molecule.
            assert!(
                spec.system.len() > 100 || spec.ani.is_some(),
                "{}",
                path.display()
            );
        }
    }
    for p in [
        "lj_bench.toml",
        "argon_liquid.toml",
        "lj_melt.toml",
        "lj_gas.toml",
        "lj_solid.toml",
        "lj_liquid.toml",
    ] {
        assert!(seen.iter().any(|s| s == p), "preset {p} is missing");
    }
}

#[test]
fn default_preset_runs_headless() {
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets/lj_melt.toml");
    let out = wgmd()
        .args([
            "run",
            preset.to_str().unwrap(),
            "--steps",
            "20",
            "--every",
            "10",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(feature = "viewer")]
#[test]
fn no_arguments_without_a_display_is_a_clear_error() {
    // `wgmd` alone opens the viewer; with no display it must say so, not panic.
    let out = wgmd()
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no display") && !err.contains("panicked"),
        "{err}"
    );
}

#[cfg(feature = "viewer")]
#[test]
fn view_of_a_bad_config_is_named() {
    let d = tmpdir("viewbad");
    let cfg = d.join("bad.toml");
    std::fs::write(&cfg, "units = \"lj\"\n[system\n").unwrap();
    let out = wgmd()
        .args(["view", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn unknown_adapter_is_named() {
    let out = wgmd()
        .args(["--adapter", "no-such-gpu-xyz", "info"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no-such-gpu-xyz") && err.contains("adapters found"),
        "{err}"
    );
}

#[cfg(feature = "viewer")]
#[test]
fn impossible_steps_per_frame_is_named() {
    let out = wgmd()
        .args(["view", "--steps-per-frame", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--steps-per-frame") && !err.contains("panicked"),
        "{err}"
    );
}

/// `wgmd eval --potential ani2x`: the JSON contract on a synthetic model (forces one row per
/// atom, energy = network energy + self energies), and bad input named: an element the model
/// lacks, a periodic box too small for minimum images, a missing model file.
#[test]
fn ani_eval_json_and_bad_input() {
    let dir = tmpdir("ani-eval");
    let info =
        wgmd::ani::neurochem::write_synthetic_model(&dir, 1, &[vec![32, 16, 16]], 7).unwrap();
    let water = dir.join("water.xyz");
    std::fs::write(
        &water,
        "3\nwater\nO 0 0 0.119262\nH 0 0.763239 -0.477047\nH 0 -0.763239 -0.477047\n",
    )
    .unwrap();
    let out = wgmd()
        .args(["eval", "--potential", "ani2x", "--json", "--model"])
        .arg(&info)
        .arg("--xyz")
        .arg(&water)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["atoms"], 3);
    let forces = v["forces_hartree_per_angstrom"].as_array().unwrap();
    assert_eq!(forces.len(), 3);
    // Newton's third law for an isolated molecule: the forces sum to zero.
    for k in 0..3 {
        let s: f64 = forces.iter().map(|f| f[k].as_f64().unwrap()).sum();
        let scale: f64 = forces
            .iter()
            .map(|f| f[k].as_f64().unwrap().abs())
            .sum::<f64>()
            .max(1e-12);
        assert!(s.abs() < 1e-4 * scale.max(1.0), "net force {s} along {k}");
    }
    let model = wgmd::ani::AniModel::load(&info).unwrap();
    let sae = model.self_energies[3] + 2.0 * model.self_energies[0];
    let e = v["energy_hartree"].as_f64().unwrap();
    let e_nn = v["energy_nn_hartree"].as_f64().unwrap();
    assert!(
        (e - e_nn - sae).abs() < 1e-9,
        "energy {e} != {e_nn} + {sae}"
    );

    let run = |xyz_text: &str, model: &Path| {
        let f = dir.join("bad.xyz");
        std::fs::write(&f, xyz_text).unwrap();
        let out = wgmd()
            .args(["eval", "--potential", "ani2x", "--model"])
            .arg(model)
            .arg("--xyz")
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("2\nsalt\nNa 0 0 0\nCl 2.8 0 0\n", &info);
    assert!(err.contains("atom 1 is element Na"), "{err}");
    let err = run(
        "2\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:3\nO 0 0 0\nH 1 0 0\n",
        &info,
    );
    assert!(
        err.contains("half the shortest box edge") && err.contains("10.2"),
        "{err}"
    );
    let err = run("1\nx\nH 0 0 0\n", &dir.join("nowhere.info"));
    assert!(err.contains("nowhere.info"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `bench ani` profiles every dispatch of an evaluation (the per-dispatch figures BENCHMARKS.md
/// quotes): one positive time per dispatch, as many as the evaluation records.
#[test]
fn bench_ani_profiles_every_dispatch() {
    let dir = tmpdir("bench-ani");
    let info =
        wgmd::ani::neurochem::write_synthetic_model(&dir, 2, &[vec![32, 16, 16]], 7).unwrap();
    let out = wgmd()
        .args(["bench", "ani", "--model"])
        .arg(&info)
        .args(["--atoms", "150", "--reps", "2", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let profile = r["ms_dispatches"].as_object().expect("ms_dispatches");
    assert_eq!(
        profile.len() as u64,
        r["ani_dispatches_per_evaluation"].as_u64().unwrap(),
        "{profile:?}"
    );
    for (name, ms) in profile {
        let ms = ms.as_f64().unwrap();
        assert!(ms.is_finite() && ms > 0.0, "{name}: {ms}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
