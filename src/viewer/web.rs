//! The browser build of the viewer (`web/build.sh` → `web/dist/`): the same app, engine and
//! WGSL kernels compiled to wasm32 and run on the browser's WebGPU.
//!
//! - Presets are compiled in ([`PRESETS`]); the page has no file system.
//! - URL parameters select a preset and its settings, so a link reproduces a state
//!   ([`UrlSettings`]): `?preset=NAME&autostart=1&steps=N&temperature=T&dt=DT&spf=K`.
//! - The page mirrors its state as JSON in the element `#wgmd-state` ([`StateJson`]) at least
//!   once per second, for scripts and headless browsers (`--dump-dom`); errors go to
//!   `#wgmd-message`.
//! - Nothing blocks: the simulation is built with [`Simulation::new_nonblocking`] and stepped
//!   by a non-blocking [`crate::engine::live::LiveStepper`]; every readback is `map_async`.
//!
//! [`Simulation::new_nonblocking`]: crate::engine::Simulation::new_nonblocking

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::Source;
use crate::config::Config;

/// Presets compiled into the browser build: (name, TOML). The first is the default. The
/// explanation panels come from each preset's `[about]` table.
pub const PRESETS: &[(&str, &str)] = &[
    ("lj_melt", include_str!("../../assets/presets/lj_melt.toml")),
    (
        "ideal_gas",
        include_str!("../../assets/presets/ideal_gas.toml"),
    ),
    ("lj_gas", include_str!("../../assets/presets/lj_gas.toml")),
    (
        "lj_liquid",
        include_str!("../../assets/presets/lj_liquid.toml"),
    ),
    (
        "lj_solid",
        include_str!("../../assets/presets/lj_solid.toml"),
    ),
    (
        "lj_coexistence",
        include_str!("../../assets/presets/lj_coexistence.toml"),
    ),
    (
        "argon_liquid",
        include_str!("../../assets/presets/argon_liquid.toml"),
    ),
    (
        "argon_rdf",
        include_str!("../../assets/presets/argon_rdf.toml"),
    ),
    // Molten NaCl joins here once the Coulomb/PME term lands (branch `coulomb`): add its
    // preset file to this list and any structure it names to STRUCTURES.
];

/// Structure files that embedded presets name in `[system] structure`, by file name.
pub const STRUCTURES: &[(&str, &str)] = &[];

/// The names of the embedded presets, default first.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

/// Builds the embedded preset `name` (its structure, if any, from [`STRUCTURES`]).
pub fn preset_source(name: &str) -> Result<Source> {
    let (key, text) = PRESETS
        .iter()
        .find(|(n, _)| *n == name || format!("{n}.toml") == name)
        .ok_or_else(|| {
            anyhow!(
                "there is no preset '{name}' (presets: {})",
                preset_names().join(", ")
            )
        })?;
    let file = format!("{key}.toml");
    let mut cfg = Config::from_str(text, &file, Path::new("."))?;
    if let Some(s) = &cfg.system.structure {
        let fname = s
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (_, xyz) = STRUCTURES
            .iter()
            .find(|(n, _)| *n == fname)
            .ok_or_else(|| anyhow!("{file}: structure '{fname}' is not built into this page"))?;
        cfg.structure_frame = Some(crate::io::xyz::parse_xyz(xyz, &fname)?);
    }
    if cfg.forces.ani.is_some() {
        bail!("{file} needs an ANI model file, which this page cannot load yet");
    }
    Source::from_config(cfg, text.to_string(), Path::new(&file))
}

/// Settings a link carries (see the module docs). Unknown parameters are ignored; bad values
/// are errors naming the parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlSettings {
    pub preset: Option<String>,
    pub autostart: bool,
    /// Pause after exactly this many steps.
    pub steps: Option<u64>,
    /// Thermostat target (switches the Langevin thermostat on), in the preset's units.
    pub temperature: Option<f64>,
    pub dt: Option<f64>,
    /// Fixed steps per frame (else auto).
    pub steps_per_frame: Option<u32>,
}

impl UrlSettings {
    /// Parses `key=value` pairs (already URL-decoded).
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<UrlSettings> {
        let mut u = UrlSettings::default();
        for (k, v) in pairs {
            let num = |what: &str| -> Result<f64> {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| anyhow!("URL parameter {what}={v} is not a number"))
            };
            match k {
                "preset" => u.preset = Some(v.to_string()),
                "autostart" => u.autostart = !matches!(v, "0" | "false" | "no"),
                "steps" => {
                    u.steps = Some(v.trim().parse().map_err(|_| {
                        anyhow!("URL parameter steps={v} is not a whole number of steps")
                    })?)
                }
                "temperature" | "T" => u.temperature = Some(num("temperature")?),
                "dt" => u.dt = Some(num("dt")?),
                "spf" => {
                    u.steps_per_frame =
                        Some(v.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                            anyhow!("URL parameter spf={v} must be a whole number >= 1")
                        })?)
                }
                _ => {}
            }
        }
        Ok(u)
    }

    /// The query string that reproduces these settings.
    pub fn to_query(&self) -> String {
        let mut q = Vec::new();
        if let Some(p) = &self.preset {
            q.push(format!("preset={p}"));
        }
        if let Some(t) = self.temperature {
            q.push(format!("temperature={t}"));
        }
        if let Some(dt) = self.dt {
            q.push(format!("dt={dt}"));
        }
        if let Some(n) = self.steps_per_frame {
            q.push(format!("spf={n}"));
        }
        if let Some(n) = self.steps {
            q.push(format!("steps={n}"));
        }
        if self.autostart {
            q.push("autostart=1".into());
        }
        format!("?{}", q.join("&"))
    }
}

/// The `#wgmd-state` JSON: exactly these keys (the browser test and scripts read them).
/// Energies are totals for the whole system in `units` ("lj": ε; "physical": eV), null until
/// the first sample arrives.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct StateJson {
    pub preset: String,
    pub atoms: usize,
    pub step: u64,
    pub potential_energy: Option<f64>,
    pub kinetic_energy: Option<f64>,
    pub total_energy: Option<f64>,
    pub temperature: Option<f64>,
    pub adapter: String,
    pub units: String,
}

#[cfg(target_arch = "wasm32")]
pub use wasm::*;

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::cell::RefCell;
    use std::sync::Arc;

    use eframe::egui_wgpu;
    use wasm_bindgen::prelude::*;

    use super::*;
    use crate::gpu;
    use crate::viewer::app::{ViewerApp, WebConfig};
    use crate::viewer::ViewOptions;

    thread_local! {
        /// Files the page hands in (file picker), collected by the app each frame.
        pub(crate) static UPLOADS: RefCell<Vec<(String, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    }

    /// Called by the page's file picker with the file's name and bytes.
    #[wasm_bindgen]
    pub fn open_file(name: String, bytes: Vec<u8>) {
        UPLOADS.with(|u| u.borrow_mut().push((name, bytes)));
    }

    /// Reads files dropped on the canvas (browsers only read files asynchronously); they
    /// join [`UPLOADS`] when read.
    pub(crate) fn read_dropped(files: Vec<eframe::egui::DroppedFileHandle>) {
        for f in files {
            wasm_bindgen_futures::spawn_local(async move {
                let name = f.path().display().to_string();
                match f.bytes_async().await {
                    Ok(bytes) => UPLOADS.with(|u| u.borrow_mut().push((name, bytes))),
                    Err(e) => log::error!("cannot read the dropped file '{name}': {e}"),
                }
            });
        }
    }

    fn url_settings() -> Result<UrlSettings> {
        let search = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        let params = web_sys::UrlSearchParams::new_with_str(&search)
            .map_err(|_| anyhow!("cannot read the URL parameters"))?;
        let mut pairs = Vec::new();
        for entry in params.entries() {
            let Ok(entry) = entry else { continue };
            let arr = js_sys::Array::from(&entry);
            let k = arr.get(0).as_string().unwrap_or_default();
            let v = arr.get(1).as_string().unwrap_or_default();
            pairs.push((k, v));
        }
        UrlSettings::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Starts the viewer on the canvas with id `canvas_id`. The page checks `navigator.gpu`
    /// first; an error here (no adapter, a bad URL parameter, a preset too big for the
    /// device) comes back as a JS exception with a readable message for the page to show.
    #[wasm_bindgen]
    pub async fn start(canvas_id: String) -> Result<(), JsValue> {
        let _ = eframe::WebLogger::init(log::LevelFilter::Info);
        let err = |e: anyhow::Error| JsValue::from_str(&format!("{e:#}"));
        let url = url_settings().map_err(err)?;
        let preset = url
            .preset
            .clone()
            .unwrap_or_else(|| PRESETS[0].0.to_string());
        let source = preset_source(&preset).map_err(err)?;
        let canvas = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(&canvas_id))
            .ok_or_else(|| JsValue::from_str(&format!("no element with id '{canvas_id}'")))?
            .dyn_into::<web_sys::HtmlCanvasElement>()
            .map_err(|_| JsValue::from_str(&format!("'{canvas_id}' is not a canvas")))?;
        let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
        setup.instance_descriptor.backends = wgpu::Backends::BROWSER_WEBGPU;
        setup.device_descriptor = Arc::new(gpu::device_descriptor);
        let options = eframe::WebOptions {
            depth_buffer: 24,
            wgpu_options: egui_wgpu::WgpuConfiguration {
                wgpu_setup: egui_wgpu::WgpuSetup::CreateNew(setup),
                ..Default::default()
            },
            ..Default::default()
        };
        let opts = ViewOptions {
            steps_per_frame: url.steps_per_frame,
            ..Default::default()
        };
        let adapter = web_sys::window()
            .and_then(|w| js_sys::Reflect::get(&w, &JsValue::from_str("wgmdAdapter")).ok())
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        let web = WebConfig {
            preset: preset.trim_end_matches(".toml").to_string(),
            adapter,
            url,
        };
        let runner = eframe::WebRunner::new();
        runner
            .start(
                canvas,
                options,
                Box::new(move |cc| {
                    let failure = Arc::new(std::sync::Mutex::new(None));
                    let app = ViewerApp::new_web(cc, source, &opts, failure, web).map_err(
                        |e| -> Box<dyn std::error::Error + Send + Sync> { format!("{e:#}").into() },
                    )?;
                    Ok(Box::new(app))
                }),
            )
            .await?;
        // The runner lives as long as the page.
        std::mem::forget(runner);
        Ok(())
    }

    /// Writes `text` into the element `id` (no-op when the page has none).
    pub(crate) fn set_element_text(id: &str, text: &str) {
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(id))
        {
            el.set_text_content(Some(text));
        }
    }

    /// Replaces the page's URL (no reload) so the address bar always reproduces the state.
    pub(crate) fn set_query(query: &str) {
        if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
            let _ = h.replace_state_with_url(&JsValue::NULL, "", Some(query));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_preset_builds_and_explains_itself() {
        assert!(!PRESETS.is_empty());
        for name in preset_names() {
            let s = preset_source(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(s.spec.system.len() >= 64, "{name}");
            s.spec.validate().unwrap();
            let about = s.about.unwrap_or_else(|| panic!("{name} has no [about]"));
            assert!(!about.title.is_empty() && about.text.len() > 80, "{name}");
        }
        let e = format!("{:#}", preset_source("nope").err().unwrap());
        assert!(e.contains("nope") && e.contains("lj_melt"), "{e}");
    }

    #[test]
    fn url_settings_round_trip_and_bad_values_are_named() {
        let u = UrlSettings::parse([
            ("preset", "lj_gas"),
            ("autostart", "1"),
            ("steps", "20"),
            ("temperature", "1.5"),
            ("spf", "5"),
            ("unrelated", "x"),
        ])
        .unwrap();
        assert_eq!(u.preset.as_deref(), Some("lj_gas"));
        assert!(u.autostart);
        assert_eq!(u.steps, Some(20));
        assert_eq!(u.temperature, Some(1.5));
        assert_eq!(u.steps_per_frame, Some(5));
        let q = u.to_query();
        let pairs: Vec<(&str, &str)> = q[1..]
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        assert_eq!(UrlSettings::parse(pairs).unwrap(), u);
        for (k, v) in [
            ("steps", "-3"),
            ("temperature", "hot"),
            ("spf", "0"),
            ("dt", "inf"),
        ] {
            let e = format!("{:#}", UrlSettings::parse([(k, v)]).err().unwrap());
            assert!(e.contains(k) && e.contains(v), "{e}");
        }
    }
}
