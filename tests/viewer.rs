#![cfg(feature = "viewer")]
//! The viewer end to end: `wgmd view PRESET --screenshot X.png --frames N` under Xvfb on the
//! CPU Vulkan driver, then the PNG is checked for shaded atoms in the 3D view and coloured
//! plot lines in the plot panel. Needs `xvfb-run` (CI installs the `xvfb` package); without
//! it the test says so and passes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `xvfb-run -a` picks a free display by looking at lock files, which races when two start at
/// once: the tests here take turns.
static XVFB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` with a deadline; returns (success, stderr).
fn run_with_timeout(mut cmd: Command, limit: Duration) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr.txt");
    let err = std::fs::File::create(&err_path).unwrap();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start xvfb-run");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(s) => (s.success(), stderr),
        None => (false, format!("timed out after {limit:?}\n{stderr}")),
    }
}

#[test]
fn viewer_screenshot_shows_atoms_and_plots() {
    if !have("xvfb-run") {
        eprintln!("SKIPPED: xvfb-run not found (apt-get install xvfb); the viewer test needs a virtual display");
        return;
    }
    let _turn = XVFB.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png");
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets/lj_melt.toml");
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_wgmd"))
        .args([
            "view",
            preset.to_str().unwrap(),
            "--screenshot",
            png.to_str().unwrap(),
        ])
        .args(["--frames", "12"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("WAYLAND_DISPLAY");
    let t0 = Instant::now();
    let (ok, stderr) = run_with_timeout(cmd, Duration::from_secs(150));
    eprintln!("viewer ran {:.1} s", t0.elapsed().as_secs_f64());
    assert!(ok, "wgmd view failed:\n{stderr}");
    let img = image::open(&png)
        .unwrap_or_else(|e| {
            panic!(
                "cannot decode the screenshot {}: {e}\n{stderr}",
                png.display()
            )
        })
        .to_rgb8();
    let (w, h) = img.dimensions();
    assert!(w >= 800 && h >= 500, "screenshot is {w}x{h}");
    // The layout: controls on the left, the 3D view in the middle, plots on the right.
    let region = |x0: f64, x1: f64, y0: f64, y1: f64| {
        let mut v = Vec::new();
        for y in (y0 * h as f64) as u32..(y1 * h as f64) as u32 {
            for x in (x0 * w as f64) as u32..(x1 * w as f64) as u32 {
                v.push(img.get_pixel(x, y).0);
            }
        }
        v
    };
    let view = region(0.32, 0.62, 0.15, 0.85);
    let distinct: std::collections::HashSet<[u8; 3]> = view.iter().copied().collect();
    // Atoms are the bluish pixels: lit spheres of type A.
    let atoms = view
        .iter()
        .filter(|p| p[2] as i32 > p[0] as i32 + 40)
        .count();
    eprintln!(
        "3D view: {} distinct colours, {:.0}% atom pixels",
        distinct.len(),
        100.0 * atoms as f64 / view.len() as f64
    );
    assert!(
        distinct.len() > 200,
        "the 3D view has {} colours: no shaded atoms drawn",
        distinct.len()
    );
    assert!(
        atoms * 5 > view.len(),
        "atoms cover under 20% of the 3D view"
    );
    // Plot lines are saturated colours; the panel itself is grey.
    let plots = region(0.70, 0.99, 0.02, 0.95);
    let lines = plots
        .iter()
        .filter(|p| {
            let (mx, mn) = (p.iter().max().unwrap(), p.iter().min().unwrap());
            *mx as i32 - *mn as i32 > 60
        })
        .count();
    eprintln!("plot panel: {lines} coloured pixels");
    assert!(
        lines > 1500,
        "only {lines} coloured pixels in the plot panel: no plot lines"
    );
}

#[test]
fn viewer_reports_a_screenshot_it_cannot_write() {
    if !have("xvfb-run") {
        eprintln!("SKIPPED: xvfb-run not found (apt-get install xvfb)");
        return;
    }
    let _turn = XVFB.lock().unwrap_or_else(|e| e.into_inner());
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets/lj_gas.toml");
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1024x640x24"])
        .arg(env!("CARGO_BIN_EXE_wgmd"))
        .args(["view", preset.to_str().unwrap()])
        .args([
            "--screenshot",
            "/nonexistent-wgmd-dir/x.png",
            "--frames",
            "2",
        ])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("WAYLAND_DISPLAY");
    let (ok, stderr) = run_with_timeout(cmd, Duration::from_secs(120));
    assert!(!ok, "a screenshot that could not be written still exited 0");
    assert!(
        stderr.contains("nonexistent-wgmd-dir") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
