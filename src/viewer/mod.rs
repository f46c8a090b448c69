//! The desktop viewer (feature `viewer`): an eframe app that steps the simulation on the GPU
//! and draws its atoms straight from the position buffer, with live plots and controls.
//!
//! One device serves both: eframe opens it with [`gpu::device_descriptor`] on the adapter
//! [`gpu::pick_adapter`] chooses, and the simulation is built on it
//! ([`GpuContext::from_device`]), because buffers cannot cross devices. Each frame the app
//! polls the device without waiting, collects whatever finished (the last batch's energies,
//! histograms, a pick), submits the next batch of steps if the previous one is done, and lets
//! egui draw: the GUI never waits for a readback, and the steps per frame cap the GPU work.

mod app;
mod plots;
pub mod render;
/// The browser build: embedded presets, URL parameters, the `#wgmd-state` JSON mirror and
/// the wasm entry point.
pub mod web;

use std::path::{Path, PathBuf};
#[cfg(not(target_arch = "wasm32"))]
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _, Result};
#[cfg(not(target_arch = "wasm32"))]
use eframe::egui_wgpu;

use crate::config::Config;
use crate::engine::SimSpec;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu;

/// The preset `wgmd` with no arguments opens: a few thousand LJ atoms whose fcc crystal melts.
pub const DEFAULT_PRESET: &str = "lj_melt.toml";
const DEFAULT_PRESET_TEXT: &str = include_str!("../../assets/presets/lj_melt.toml");

/// What `wgmd view` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    /// Config to open; None = the default preset.
    pub config: Option<PathBuf>,
    /// Save the whole window here after `frames` frames, then exit.
    pub screenshot: Option<PathBuf>,
    pub frames: u64,
    /// Fixed steps per frame; None = auto.
    pub steps_per_frame: Option<u32>,
    pub adapter: Option<String>,
}

/// A loaded config: what reset returns to.
#[derive(Clone)]
pub struct Source {
    pub name: String,
    pub spec: SimSpec,
    pub description: String,
    /// The config text and where relative paths in it start (to open structures with it).
    pub text: String,
    pub base_dir: PathBuf,
    /// The config's `[about]` explanation, if it has one.
    pub about: Option<crate::config::AboutConfig>,
}

impl Source {
    pub fn load(path: &Path) -> Result<Source> {
        let cfg = Config::load(path)?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config '{}'", path.display()))?;
        Source::from_config(cfg, text, path)
    }

    fn from_config(cfg: Config, text: String, path: &Path) -> Result<Source> {
        let spec = cfg.to_spec()?;
        Ok(Source {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            description: cfg.description.clone().unwrap_or_default(),
            about: cfg.about.clone(),
            spec,
            text,
            base_dir: cfg.base_dir.clone(),
        })
    }

    /// The default preset, from `assets/presets` if present (so edits show), else built in.
    pub fn default_preset() -> Result<Source> {
        if let Some(p) = presets_dir().map(|d| d.join(DEFAULT_PRESET)) {
            if p.exists() {
                return Source::load(&p);
            }
        }
        let cfg = Config::from_str(DEFAULT_PRESET_TEXT, DEFAULT_PRESET, Path::new("."))?;
        Source::from_config(cfg, DEFAULT_PRESET_TEXT.into(), Path::new(DEFAULT_PRESET))
    }

    /// This config's force field and settings applied to a structure file (XYZ / extended
    /// XYZ or PDB). A structure without a box gets one around it with a cutoff of vacuum.
    pub fn with_structure(&self, file: &Path) -> Result<Source> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read structure '{}'", file.display()))?;
        self.with_structure_text(&file.display().to_string(), &text)
    }

    /// [`Self::with_structure`] for a file already in memory (an upload in the browser);
    /// `name` is how messages name it, and its extension picks the format.
    pub fn with_structure_text(&self, name: &str, text: &str) -> Result<Source> {
        let mut cfg = Config::from_str(&self.text, &self.name, &self.base_dir)?;
        let file = Path::new(name);
        let is_pdb = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pdb") || e.eq_ignore_ascii_case("ent"));
        let mut frame = if is_pdb {
            crate::io::pdb::parse_pdb(text, name)?
        } else {
            crate::io::xyz::parse_xyz(text, name)?
        };
        if frame.positions.is_empty() {
            bail!("'{name}' holds no atoms");
        }
        if frame.box_lengths.is_none() {
            // The force field's reach: the LJ cutoff, or the ANI radial cutoff (5.1 Å).
            let rc = cfg.forces.lj.as_ref().map_or(5.1, |lj| lj.cutoff);
            let mut lo = [f64::INFINITY; 3];
            let mut hi = [f64::NEG_INFINITY; 3];
            for p in &frame.positions {
                for d in 0..3 {
                    lo[d] = lo[d].min(p[d]);
                    hi[d] = hi[d].max(p[d]);
                }
            }
            let b = [0, 1, 2].map(|d| (hi[d] - lo[d] + 2.0 * rc).max(2.5 * rc));
            // Centre the structure in its new box so it is not cut by the periodic wrap.
            for p in &mut frame.positions {
                for d in 0..3 {
                    p[d] += 0.5 * b[d] - 0.5 * (lo[d] + hi[d]);
                }
            }
            frame.box_lengths = Some(b);
        }
        cfg.types.retain(|n, _| frame.symbols.contains(n));
        if let Some(lj) = cfg.forces.lj.as_mut() {
            lj.types.retain(|n, _| frame.symbols.contains(n));
        }
        // The config takes the frame from memory (no temporary file); an absolute path keeps
        // base_dir from being prefixed to the name in messages.
        cfg.system = crate::config::SystemConfig {
            lattice: None,
            cells: None,
            density: None,
            lattice_constant: None,
            type_name: None,
            structure: Some(PathBuf::from(name)),
            box_lengths: None,
            ..Default::default()
        };
        cfg.structure_frame = Some(frame);
        let spec = cfg.to_spec().with_context(|| {
            format!(
                "cannot simulate '{name}' with the force field of {}",
                self.name
            )
        })?;
        Ok(Source {
            name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            description: format!("{name} with the settings of {}", self.name),
            spec,
            text: self.text.clone(),
            base_dir: self.base_dir.clone(),
            about: None,
        })
    }
}

/// `assets/presets` of this checkout: beside the working directory, else where it was built.
pub fn presets_dir() -> Option<PathBuf> {
    [
        PathBuf::from("assets/presets"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
}

/// Every `*.toml` in the presets directory, sorted, default first.
pub fn list_presets() -> Vec<PathBuf> {
    let Some(dir) = presets_dir() else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|p| (p.file_name().is_none_or(|n| n != DEFAULT_PRESET), p.clone()));
    v
}

#[cfg(not(target_arch = "wasm32"))]
fn display_available() -> bool {
    if cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd"
    )) {
        std::env::var_os("DISPLAY").is_some_and(|v| !v.is_empty())
            || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty())
    } else {
        true
    }
}

/// Opens the viewer and returns when its window closes: Ok after a normal close or a saved
/// `--screenshot`; an error names what went wrong (no display, bad config, no GPU, …).
#[cfg(not(target_arch = "wasm32"))]
pub fn run(opts: ViewOptions) -> Result<()> {
    if opts.screenshot.is_some() && opts.frames == 0 {
        bail!("--frames must be at least 1 with --screenshot");
    }
    if let Some(n) = opts.steps_per_frame {
        if !(1..=app::MAX_STEPS_PER_FRAME).contains(&n) {
            bail!(
                "--steps-per-frame must be between 1 and {}; got {n}",
                app::MAX_STEPS_PER_FRAME
            );
        }
    }
    // Load first: a bad config is reported without opening a window.
    let source = match &opts.config {
        Some(p) => Source::load(p)?,
        None => Source::default_preset()?,
    };
    if !display_available() {
        bail!(
            "no display available (neither DISPLAY nor WAYLAND_DISPLAY is set), so the viewer cannot \
             open a window: run headless with `wgmd run {}`, or start the viewer under a display \
             (e.g. `xvfb-run wgmd view`)",
            opts.config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| format!("assets/presets/{DEFAULT_PRESET}"))
        );
    }
    let wanted = opts.adapter.clone();
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        setup.instance_descriptor.backends = wgpu::Backends::PRIMARY;
    }
    // Same reasoning as GpuContext::new: our indirect arguments are always in range.
    if !cfg!(windows) {
        setup
            .instance_descriptor
            .flags
            .remove(wgpu::InstanceFlags::VALIDATION_INDIRECT_CALL);
    }
    setup.native_adapter_selector = Some(Arc::new(move |adapters, surface| {
        let usable = |a: &wgpu::Adapter| surface.is_none_or(|s| a.is_surface_supported(s));
        gpu::pick_adapter(adapters, wanted.as_deref(), &usable).map_err(|e| e.to_string())
    }));
    setup.device_descriptor = Arc::new(gpu::device_descriptor);
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_title(format!("wgmd — {}", source.name)),
        renderer: eframe::Renderer::Wgpu,
        depth_buffer: 24,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: egui_wgpu::WgpuSetup::CreateNew(setup),
            ..Default::default()
        },
        ..Default::default()
    };
    // The app reports failures that must change the exit code (a screenshot it could not
    // write, a lost device) here; closing the window normally leaves it empty.
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let fail2 = failure.clone();
    // winit panics when the window is destroyed under it (e.g. `xdotool windowclose`, a
    // killed X server): turn that into a clear error instead of a panic trace, keeping the
    // panic's message and place in it.
    let panic_note: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let note = panic_note.clone();
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut n) = note.lock() {
            *n = Some(info.to_string());
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eframe::run_native(
            "wgmd",
            options,
            Box::new(move |cc| {
                let app = app::ViewerApp::new(cc, source, &opts, fail2).map_err(
                    |e| -> Box<dyn std::error::Error + Send + Sync> { format!("{e:#}").into() },
                )?;
                Ok(Box::new(app))
            }),
        )
    }));
    std::panic::set_hook(previous_hook);
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!("the viewer could not start: {e}"),
        Err(_) => {
            let what = panic_note
                .lock()
                .ok()
                .and_then(|n| n.clone())
                .unwrap_or_default();
            bail!("the viewer's window system failed and the viewer stopped ({what})");
        }
    }
    if let Some(msg) = failure.lock().ok().and_then(|m| m.clone()) {
        bail!("{msg}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argon() -> Source {
        Source::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/presets/argon_liquid.toml"),
        )
        .unwrap()
    }

    #[test]
    fn structures_open_with_the_presets_force_field() {
        let dir = tempfile::tempdir().unwrap();
        // No box in the file: the viewer puts one around the atoms.
        let xyz = dir.path().join("three.xyz");
        std::fs::write(&xyz, "3\nargon trimer\nAr 0 0 0\nAr 3.8 0 0\nAr 0 3.8 0\n").unwrap();
        let s = argon().with_structure(&xyz).unwrap();
        assert_eq!(s.spec.system.len(), 3);
        assert!(s.spec.system.box_lengths.iter().all(|&l| l >= 2.0 * 8.5125));
        let pdb = dir.path().join("two.pdb");
        std::fs::write(
            &pdb,
            "HETATM    1 AR    AR     1       1.000   1.000   1.000  1.00  0.00          AR\n\
             HETATM    2 AR    AR     2       4.800   1.000   1.000  1.00  0.00          AR\n",
        )
        .unwrap();
        assert_eq!(argon().with_structure(&pdb).unwrap().spec.system.len(), 2);
    }

    #[test]
    fn bad_structures_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let xe = dir.path().join("xenon.xyz");
        std::fs::write(&xe, "1\n\nXe 0 0 0\n").unwrap();
        let e = format!("{:#}", argon().with_structure(&xe).err().unwrap());
        assert!(e.contains("xenon.xyz") && e.contains("Xe"), "{e}");
        let bad = dir.path().join("bad.xyz");
        std::fs::write(&bad, "2\n\nAr 0 0 0\nAr 1 x 0\n").unwrap();
        let e = format!("{:#}", argon().with_structure(&bad).err().unwrap());
        assert!(e.contains("bad.xyz") && e.contains("line 4"), "{e}");
        let missing = dir.path().join("missing.pdb");
        let e = format!("{:#}", argon().with_structure(&missing).err().unwrap());
        assert!(e.contains("missing.pdb"), "{e}");
    }
}
