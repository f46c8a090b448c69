//! The eframe application: state, the per-frame loop (poll → collect → submit → draw) and
//! the panels (controls, 3D view, plots, status bar).

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
// std's Instant panics on wasm32; web-time is std's on native.
use web_time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use eframe::egui;
use eframe::egui_wgpu;
use glam::{Vec2, Vec3};

use super::plots::Series;
use super::render::{AtomRenderer, AtomsCallback, CameraUniform, OrbitCamera, MAX_TYPES};
use super::{list_presets, Source, ViewOptions};
use crate::engine::live::LiveStepper;
use crate::engine::Simulation;
use crate::forces::drag::Drag;
use crate::gpu::GpuContext;
use crate::integrate::{Integrator, Method};
use crate::observe::histogram::{self, HistSpec, Histograms, MAX_BINS};
use crate::observe::readback::Readback;
use crate::units::Units;

/// Auto steps per frame keeps the frame rate in this band: more steps while frames come
/// faster than the upper bound (the GPU would idle between batches), fewer below the lower
/// one (the UI would stutter). On a real GPU this runs the simulation near full speed at a
/// smooth frame rate. On a CPU rasterizer drawing alone caps the frame rate (about 6 fps on
/// lavapipe with 2 cores at 1 step per frame), so auto stops at `auto_floor` there.
const AUTO_FPS: (f64, f64) = (10.0, 25.0);
/// Seconds between histogram samples (each is one small extra GPU submission).
const HIST_EVERY_S: f64 = 0.5;
/// RDF centers per sample: bounds the pair loop to ~N·512 distances.
const RDF_CENTERS: u32 = 512;
/// Hard cap on steps per frame (also bounded by the engine's batch limit).
pub const MAX_STEPS_PER_FRAME: u32 = 2000;
const HIST_BINS: u32 = 100;

/// What the browser build adds (see `super::web`): the preset key and the URL settings,
/// kept current so the address bar reproduces the state.
pub(crate) struct WebConfig {
    pub preset: String,
    /// The adapter as the page's JS saw it (WebGPU's adapter info reaches wgpu without a
    /// name on some browsers); used when wgpu's name is empty.
    pub adapter: String,
    pub url: super::web::UrlSettings,
}

/// Everything tied to one simulation (replaced on reset / preset / file open).
struct Live {
    sim: Simulation,
    stepper: LiveStepper,
    bind: wgpu::BindGroup,
    hist: Histograms,
    hist_rb: Readback,
    /// The spec of the histogram sample in flight (to interpret its counts).
    hist_pending: Option<HistSpec>,
    pos_rb: Readback,
}

enum DragState {
    Idle,
    /// Waiting for the positions read back after a press at `ndc`.
    Picking {
        ndc: Vec2,
    },
    /// Dragging `atom` in the plane through `anchor` facing the camera.
    Active {
        atom: u32,
        anchor: Vec3,
    },
}

pub struct ViewerApp {
    ctx: Arc<GpuContext>,
    renderer: Arc<AtomRenderer>,
    source: Source,
    live: Option<Live>,
    series: Series,
    camera: OrbitCamera,
    running: bool,
    step_once: bool,
    steps_per_frame: u32,
    auto_steps: bool,
    auto_n: f64,
    /// Fewest steps per frame auto goes to: 10 on CPU rasterizers, where drawing alone keeps
    /// the frame rate low and fewer steps would only slow the simulation; else 1.
    auto_floor: u32,
    /// Steps of the batch in flight (auto adapts only from batches of the current size).
    batch_started: Option<u32>,
    atom_scale: f32,
    dt_text: String,
    target_text: String,
    thermostat: bool,
    drag_mode: bool,
    drag: DragState,
    spring_scale: f64,
    open_text: String,
    /// The latest message for the user and whether it is an error.
    message: Option<(String, bool)>,
    /// Recent frame instants and (instant, step) pairs for the fps and steps/s readouts.
    frame_times: Vec<Instant>,
    steps_window: Vec<(Instant, u64)>,
    last_hist: Instant,
    /// Screenshots arrive from egui's callback through this channel (path to save to).
    shot_tx: mpsc::Sender<(Arc<egui::ColorImage>, PathBuf)>,
    shot_rx: mpsc::Receiver<(Arc<egui::ColorImage>, PathBuf)>,
    /// `--screenshot`: where to save after `frames_left` more frames, then close.
    auto_shot: Option<PathBuf>,
    frames_left: u64,
    shot_requested: bool,
    failure: Arc<Mutex<Option<String>>>,
    device_lost: Arc<Mutex<Option<String>>>,
    closing: bool,
    /// Stop running once this many steps are done (the page's `&steps=N`).
    pause_at: Option<u64>,
    /// The browser build's state (None on the desktop).
    web: Option<WebConfig>,
    last_publish: Option<Instant>,
}

fn type_style(name: &str, k: usize) -> [f32; 3] {
    match name.to_ascii_lowercase().as_str() {
        "h" => [0.95, 0.95, 0.95],
        "c" => [0.45, 0.45, 0.45],
        "n" => [0.2, 0.35, 0.95],
        "o" => [0.95, 0.15, 0.1],
        "s" => [0.95, 0.85, 0.2],
        "cl" => [0.2, 0.9, 0.2],
        "na" => [0.65, 0.35, 0.95],
        "ar" => [0.3, 0.8, 0.9],
        "f" => [0.6, 0.95, 0.4],
        _ => {
            const PALETTE: [[f32; 3]; 6] = [
                [0.3, 0.6, 0.95],
                [0.95, 0.55, 0.2],
                [0.4, 0.85, 0.4],
                [0.9, 0.3, 0.5],
                [0.7, 0.5, 0.95],
                [0.95, 0.85, 0.3],
            ];
            PALETTE[k % PALETTE.len()]
        }
    }
}

impl ViewerApp {
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        source: Source,
        opts: &ViewOptions,
        failure: Arc<Mutex<Option<String>>>,
    ) -> Result<ViewerApp> {
        let rs = cc
            .wgpu_render_state
            .as_ref()
            .ok_or_else(|| anyhow!("eframe did not start its wgpu renderer"))?;
        let ctx = GpuContext::from_device(rs.adapter.clone(), rs.device.clone(), rs.queue.clone());
        let device_lost: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        {
            let lost = device_lost.clone();
            ctx.device.set_device_lost_callback(move |reason, msg| {
                if let Ok(mut l) = lost.lock() {
                    *l = Some(format!("the GPU device was lost ({reason:?}): {msg}"));
                }
            });
            // wgpu's default handler panics; a viewer reports the error and closes instead.
            let lost = device_lost.clone();
            ctx.device
                .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                    log::error!("GPU error: {e}");
                    if let Ok(mut l) = lost.lock() {
                        l.get_or_insert(format!("GPU error: {e}"));
                    }
                }));
        }
        let depth = egui_wgpu::depth_format_from_bits(24, 0)
            .ok_or_else(|| anyhow!("internal: no 24-bit depth format"))?;
        let renderer = Arc::new(AtomRenderer::new(&ctx.device, rs.target_format, depth)?);
        let (shot_tx, shot_rx) = mpsc::channel();
        let mut app = ViewerApp {
            ctx,
            renderer,
            camera: OrbitCamera::fit(source.spec.system.box_lengths),
            source: source.clone(),
            live: None,
            series: Series::default(),
            running: true,
            step_once: false,
            steps_per_frame: opts.steps_per_frame.unwrap_or(10),
            auto_steps: opts.steps_per_frame.is_none(),
            auto_n: opts.steps_per_frame.unwrap_or(10) as f64,
            auto_floor: if rs.adapter.get_info().device_type == wgpu::DeviceType::Cpu {
                10
            } else {
                1
            },
            batch_started: None,
            atom_scale: 1.0,
            dt_text: String::new(),
            target_text: String::new(),
            thermostat: false,
            drag_mode: false,
            drag: DragState::Idle,
            spring_scale: 1.0,
            open_text: String::new(),
            message: None,
            frame_times: Vec::new(),
            steps_window: Vec::new(),
            last_hist: Instant::now(),
            shot_tx,
            shot_rx,
            auto_shot: opts.screenshot.clone(),
            frames_left: opts.frames,
            shot_requested: false,
            failure,
            device_lost,
            closing: false,
            pause_at: None,
            web: None,
            last_publish: None,
        };
        app.load(source)?;
        Ok(app)
    }

    /// The browser's app: paused unless `autostart`, pausing at `steps`, with the URL's
    /// temperature / time step applied (a bad value is an error naming it).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn new_web(
        cc: &eframe::CreationContext<'_>,
        source: Source,
        opts: &ViewOptions,
        failure: Arc<Mutex<Option<String>>>,
        web: WebConfig,
    ) -> Result<ViewerApp> {
        let mut app = ViewerApp::new(cc, source, opts, failure)?;
        app.running = web.url.autostart;
        app.pause_at = web.url.steps;
        app.apply_url(&web.url)?;
        app.web = Some(web);
        Ok(app)
    }

    /// Applies a link's temperature (thermostat on) and time step to the loaded simulation.
    fn apply_url(&mut self, url: &super::web::UrlSettings) -> Result<()> {
        if url.temperature.is_none() && url.dt.is_none() {
            return Ok(());
        }
        if let Some(t) = url.temperature {
            self.target_text = format!("{t}");
            self.thermostat = true;
        }
        if let Some(dt) = url.dt {
            self.dt_text = format!("{dt}");
        }
        let integ = self
            .integrator_from_fields()
            .map_err(|e| anyhow!("URL parameters: {e:#}"))?;
        match &mut self.live {
            Some(l) => l.sim.set_integrator(integ),
            None => bail!("no simulation is loaded"),
        }
    }

    /// Builds the simulation of `source` and resets everything derived from it.
    fn load(&mut self, source: Source) -> Result<()> {
        // A browser cannot wait for the GPU: build and step without ever blocking there.
        let web = cfg!(target_arch = "wasm32");
        let sim = if web {
            Simulation::new_nonblocking(self.ctx.clone(), source.spec.clone())?
        } else {
            Simulation::new(self.ctx.clone(), source.spec.clone())?
        };
        let bind = self.renderer.bind(&self.ctx.device, sim.positions_buffer());
        let hist = Histograms::new(
            &self.ctx,
            sim.positions_buffer(),
            sim.velocities_buffer(),
            sim.n_atoms(),
            sim.spec.system.box_lengths,
        )?;
        let n = sim.n_atoms() as u64;
        self.live = Some(Live {
            stepper: if web {
                LiveStepper::new_nonblocking(&sim)
            } else {
                LiveStepper::new(&sim)
            },
            hist_rb: Readback::new(&self.ctx.device, "histograms", 2 * 4 * MAX_BINS as u64),
            pos_rb: Readback::new(&self.ctx.device, "pick positions", 16 * n),
            bind,
            hist,
            hist_pending: None,
            sim,
        });
        let integ = &source.spec.integrator;
        self.dt_text = format!("{}", integ.dt);
        let (on, t) = match integ.method {
            Method::Langevin { temperature, .. } => (true, temperature),
            Method::VelocityVerlet => (
                false,
                source
                    .spec
                    .system
                    .kinetic_energy(source.spec.units)
                    .max(0.0)
                    * 2.0
                    / (integ.dof(source.spec.system.len()) * source.spec.units.kb()),
            ),
        };
        self.thermostat = on;
        self.target_text = format!("{:.4}", t);
        self.series = Series::default();
        self.drag = DragState::Idle;
        self.steps_window.clear();
        if self.source.spec.system.box_lengths != source.spec.system.box_lengths {
            self.camera = OrbitCamera::fit(source.spec.system.box_lengths);
        }
        self.source = source;
        Ok(())
    }

    fn load_or_report(&mut self, source: Result<Source>) {
        match source.and_then(|s| {
            let name = s.name.clone();
            self.load(s).map(|_| name)
        }) {
            Ok(name) => self.message = Some((format!("loaded {name}"), false)),
            Err(e) => self.message = Some((format!("{e:#}"), true)),
        }
    }

    fn units(&self) -> Units {
        self.source.spec.units
    }

    /// Applies the time step / thermostat / target fields; a bad value is refused with a
    /// message and nothing changes.
    fn apply_integrator(&mut self) {
        let r = self.integrator_from_fields();
        match r.and_then(|integ| match &mut self.live {
            Some(l) => l.sim.set_integrator(integ),
            None => bail!("no simulation is loaded"),
        }) {
            Ok(()) => {
                self.message = None;
                // The browser's address bar follows, so a copied link reproduces the run.
                let (t, dt) = (
                    self.target_text.trim().parse().ok(),
                    self.dt_text.trim().parse().ok(),
                );
                if let Some(w) = &mut self.web {
                    w.url.temperature = if self.thermostat { t } else { None };
                    w.url.dt = dt;
                }
            }
            Err(e) => self.message = Some((format!("{e:#}"), true)),
        }
    }

    fn integrator_from_fields(&self) -> Result<Integrator> {
        let preset = &self.source.spec.integrator;
        let dt: f64 = self
            .dt_text
            .trim()
            .parse()
            .map_err(|_| anyhow!("time step '{}' is not a number", self.dt_text.trim()))?;
        // Beyond a few times the preset's step, LJ dynamics blows up at once.
        let max_dt = 4.0 * preset.dt;
        if !(dt.is_finite() && dt > 0.0 && dt <= max_dt) {
            bail!("time step must be positive and at most {max_dt} (4x the preset's); got {dt}");
        }
        let t: f64 = self.target_text.trim().parse().map_err(|_| {
            anyhow!(
                "target temperature '{}' is not a number",
                self.target_text.trim()
            )
        })?;
        let t_max = match self.units() {
            Units::Lj => 50.0,
            Units::Physical => 10_000.0,
        };
        if !(t.is_finite() && (0.0..=t_max).contains(&t)) {
            bail!("target temperature must be between 0 and {t_max}; got {t}");
        }
        let method = if self.thermostat {
            let (friction, seed) = match preset.method {
                Method::Langevin { friction, seed, .. } => (friction, seed),
                // About 100 steps of velocity memory: firm but not overdamped.
                Method::VelocityVerlet => (1.0 / (100.0 * preset.dt), 1),
            };
            Method::Langevin {
                temperature: t,
                friction,
                seed,
            }
        } else {
            Method::VelocityVerlet
        };
        Ok(Integrator { dt, method })
    }

    /// Per-frame simulation work; never waits for the GPU.
    fn advance(&mut self) {
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        let fps = self.fps();
        let Some(l) = &mut self.live else { return };
        match l.stepper.poll(&mut l.sim) {
            Ok(Some(th)) => {
                if let (Some(n), true) = (self.batch_started.take(), self.auto_steps) {
                    if n == self.steps_per_frame && fps > 0.0 {
                        let f = if fps > AUTO_FPS.1 {
                            1.15
                        } else if fps < AUTO_FPS.0 {
                            0.85
                        } else {
                            1.0
                        };
                        let cap = l.sim.max_batch().min(MAX_STEPS_PER_FRAME) as f64;
                        // Kept as a float so small counts can still move by 15%.
                        self.auto_n = (self.auto_n * f).clamp(self.auto_floor as f64, cap);
                        self.steps_per_frame = self.auto_n.round() as u32;
                    }
                }
                self.steps_window.push((Instant::now(), th.step));
                self.series.push(th);
            }
            Ok(None) => {}
            Err(e) => {
                self.running = false;
                self.message = Some((format!("{e:#} — press Reset"), true));
                self.live = None;
                return;
            }
        }
        if !l.stepper.busy() {
            // Nothing is in flight, so the collected step count is exact.
            let left = self
                .pause_at
                .map_or(u64::MAX, |p| p.saturating_sub(l.sim.step_count()));
            if self.running && left == 0 {
                self.running = false;
                self.pause_at = None;
            }
            let n = if self.running {
                self.steps_per_frame
                    .min(l.sim.max_batch())
                    .min(left.min(u32::MAX as u64) as u32)
            } else if std::mem::take(&mut self.step_once) {
                1
            } else if self.series.samples.is_empty() {
                0
            } else {
                u32::MAX
            };
            if n != u32::MAX {
                match l.stepper.submit(&mut l.sim, n) {
                    Ok(true) => self.batch_started = Some(n),
                    Ok(false) => {}
                    Err(e) => self.message = Some((format!("{e:#}"), true)),
                }
            }
        }
        // Histograms: collect the last sample, and start a new one every HIST_EVERY_S.
        match l.hist_rb.take() {
            Ok(Some(bytes)) => {
                if let Some(spec) = l.hist_pending.take() {
                    let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
                    let (rdf, speed) = words.split_at(MAX_BINS as usize);
                    let sys = &l.sim.spec.system;
                    self.series.rdf = histogram::rdf_curve(rdf, &spec, sys.len(), sys.volume());
                    self.series.speed = histogram::speed_density(speed, &spec, sys.len());
                    let kt = self
                        .series
                        .samples
                        .last()
                        .map(|s| s.temperature)
                        .unwrap_or(0.0)
                        * l.sim.units().kb();
                    let mvv2e = l.sim.units().mvv2e();
                    let n = sys.len().max(1) as f64;
                    let mut frac = vec![0.0; sys.type_masses.len()];
                    for &t in &sys.types {
                        frac[t as usize] += 1.0 / n;
                    }
                    self.series.mb = (0..200)
                        .map(|k| {
                            let v = spec.v_max * k as f64 / 199.0;
                            let f: f64 = frac
                                .iter()
                                .zip(&sys.type_masses)
                                .map(|(x, &m)| x * histogram::maxwell_boltzmann(v, kt, m, mvv2e))
                                .sum();
                            [v, f]
                        })
                        .collect();
                }
            }
            Ok(None) => {}
            Err(e) => self.message = Some((e, true)),
        }
        if self.last_hist.elapsed().as_secs_f64() > HIST_EVERY_S && l.hist_pending.is_none() {
            if let (Some(slot), Some(last)) = (l.hist_rb.reserve(), self.series.samples.last()) {
                self.last_hist = Instant::now();
                let sys = &l.sim.spec.system;
                let half = sys
                    .box_lengths
                    .iter()
                    .cloned()
                    .fold(f64::INFINITY, f64::min)
                    / 2.0;
                let sigma = l.sim.spec.lj.sigma.iter().cloned().fold(0.0, f64::max);
                let m_min = sys
                    .type_masses
                    .iter()
                    .cloned()
                    .fold(f64::INFINITY, f64::min);
                let kt = last.temperature.max(1e-6) * l.sim.units().kb();
                let spec = HistSpec {
                    n_bins: HIST_BINS,
                    n_centers: RDF_CENTERS.min(sys.len() as u32),
                    r_max: (4.0 * sigma).min(half),
                    // Past 5 thermal speeds of the lightest type the density is ~1e-9.
                    v_max: 5.0 * (kt / (m_min * l.sim.units().mvv2e())).sqrt(),
                };
                match l.hist.set(&self.ctx, spec) {
                    Ok(()) => {
                        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                        {
                            let mut pass = enc.begin_compute_pass(&Default::default());
                            l.hist.encode(&mut pass);
                        }
                        let dst = l.hist_rb.buffer(&slot);
                        let bytes = 4 * MAX_BINS as u64;
                        enc.copy_buffer_to_buffer(l.hist.rdf_buffer(), 0, dst, 0, bytes);
                        enc.copy_buffer_to_buffer(l.hist.speed_buffer(), 0, dst, bytes, bytes);
                        self.ctx.queue.submit([enc.finish()]);
                        l.hist_rb.submitted(slot);
                        l.hist_pending = Some(spec);
                    }
                    Err(e) => self.message = Some((format!("histograms: {e:#}"), true)),
                }
            }
        }
    }

    fn radius_of(&self, t: u32) -> f32 {
        let s = &self.source.spec.lj.sigma;
        0.5 * s.get(t as usize).copied().unwrap_or(1.0) as f32 * self.atom_scale
    }

    fn camera_uniform(&self, aspect: f32, drag: Option<(u32, Vec3)>) -> CameraUniform {
        let sys = &self.source.spec.system;
        let mut types = [[0.0f32; 4]; MAX_TYPES];
        for (k, name) in sys.type_names.iter().take(MAX_TYPES).enumerate() {
            let c = type_style(name, k);
            let sigma = self.source.spec.lj.sigma.get(k).copied().unwrap_or(1.0);
            types[k] = [c[0], c[1], c[2], 0.5 * sigma as f32];
        }
        let l = sys.box_lengths;
        let (da, dt) = drag.unwrap_or((0, Vec3::ZERO));
        CameraUniform {
            view: self.camera.view().to_cols_array_2d(),
            proj: self.camera.proj(aspect).to_cols_array_2d(),
            box_len: [l[0] as f32, l[1] as f32, l[2] as f32, self.atom_scale],
            light: [
                0.4,
                0.6,
                0.7,
                if self.camera.orthographic { 1.0 } else { 0.0 },
            ],
            drag: [dt.x, dt.y, dt.z, drag.is_some() as u32 as f32],
            drag_atom: [da, 0, 0, 0],
            types,
        }
    }

    fn spring_k(&self) -> f64 {
        let spec = &self.source.spec;
        let eps = spec.lj.epsilon.iter().cloned().fold(0.0, f64::max);
        let sigma = spec.lj.sigma.iter().cloned().fold(0.0, f64::max).max(1e-9);
        // Stiff enough to pull an atom out of a cage, soft enough not to fling it.
        20.0 * eps / (sigma * sigma) * self.spring_scale
    }

    /// The 3D view: input handling and the paint callback.
    fn view_3d(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        let response = ui.allocate_rect(rect, egui::Sense::click_and_drag());
        let aspect = rect.width() / rect.height().max(1.0);
        let to_ndc = |p: egui::Pos2| {
            Vec2::new(
                (p.x - rect.left()) / rect.width() * 2.0 - 1.0,
                1.0 - (p.y - rect.top()) / rect.height() * 2.0,
            )
        };
        let shift = ui.input(|i| i.modifiers.shift);
        let want_drag = self.drag_mode || shift;
        if response.drag_started_by(egui::PointerButton::Primary) && want_drag {
            if let (Some(p), Some(l)) = (response.interact_pointer_pos(), &mut self.live) {
                // Positions come back asynchronously; the pick completes a frame or two later.
                if let Some(slot) = l.pos_rb.reserve() {
                    let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                    let src = l.sim.positions_buffer();
                    let bytes = 16 * l.sim.n_atoms() as u64;
                    enc.copy_buffer_to_buffer(src, 0, l.pos_rb.buffer(&slot), 0, bytes);
                    self.ctx.queue.submit([enc.finish()]);
                    l.pos_rb.submitted(slot);
                    self.drag = DragState::Picking { ndc: to_ndc(p) };
                }
            }
        } else if response.dragged_by(egui::PointerButton::Primary) && !want_drag {
            self.camera.orbit(response.drag_delta());
        } else if response.dragged_by(egui::PointerButton::Secondary)
            || response.dragged_by(egui::PointerButton::Middle)
        {
            self.camera.pan(response.drag_delta(), rect.height());
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                self.camera.zoom(scroll);
            }
        }
        // Finish a pick.
        if let DragState::Picking { ndc } = self.drag {
            if let Some(l) = &mut self.live {
                if let Ok(Some(bytes)) = l.pos_rb.take() {
                    let pos: Vec<[f32; 4]> = bytemuck::pod_collect_to_vec(&bytes);
                    let (o, d) = self.camera.ray(ndc, aspect);
                    let radius = |t: u32| self.radius_of(t);
                    self.drag = match super::render::pick(o, d, &pos, &radius) {
                        Some((atom, anchor)) => DragState::Active { atom, anchor },
                        None => DragState::Idle,
                    };
                }
            }
        }
        let released = !ui.input(|i| i.pointer.primary_down());
        let mut drag_line = None;
        if let DragState::Active { atom, anchor } = self.drag {
            if released {
                self.drag = DragState::Idle;
                if let Some(l) = &mut self.live {
                    let _ = l.sim.set_drag(None);
                }
            } else if let Some(p) = ui.input(|i| i.pointer.latest_pos()) {
                let (o, d) = self.camera.ray(to_ndc(p), aspect);
                let n = self.camera.forward();
                let denom = d.dot(n);
                if denom.abs() > 1e-6 {
                    let target = o + d * ((anchor - o).dot(n) / denom);
                    let drag = Drag {
                        atom,
                        target: [target.x as f64, target.y as f64, target.z as f64],
                        k: self.spring_k(),
                    };
                    if let Some(l) = &mut self.live {
                        if let Err(e) = l.sim.set_drag(Some(drag)) {
                            self.message = Some((format!("{e:#}"), true));
                        }
                    }
                    drag_line = Some((atom, target));
                }
            }
        }
        let Some(l) = &self.live else {
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "no simulation — press Reset or pick a preset",
                egui::FontId::proportional(18.0),
                egui::Color32::LIGHT_RED,
            );
            return;
        };
        let cb = AtomsCallback {
            renderer: self.renderer.clone(),
            bind: l.bind.clone(),
            n_atoms: l.sim.n_atoms() as u32,
            camera: self.camera_uniform(aspect, drag_line),
            dragging: drag_line.is_some(),
        };
        ui.painter()
            .add(egui_wgpu::Callback::new_paint_callback(rect, cb));
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.heading("Simulation");
        ui.label(&self.source.name);
        if !self.source.description.is_empty() {
            ui.small(&self.source.description);
        }
        if let Some(about) = &self.source.about {
            egui::CollapsingHeader::new(egui::RichText::new(&about.title).strong())
                .id_salt("about")
                .default_open(true)
                .show(ui, |ui| ui.label(&about.text));
        }
        ui.horizontal(|ui| {
            let label = if self.running { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.running = !self.running;
            }
            if ui.button("Step").clicked() {
                self.running = false;
                self.step_once = true;
            }
            if ui.button("Reset").clicked() {
                let s = self.source.clone();
                self.load_or_report(Ok(s));
            }
        });
        let cap = self
            .live
            .as_ref()
            .map(|l| l.sim.max_batch())
            .unwrap_or(MAX_STEPS_PER_FRAME)
            .min(MAX_STEPS_PER_FRAME);
        ui.horizontal(|ui| {
            ui.add_enabled(
                !self.auto_steps,
                egui::Slider::new(&mut self.steps_per_frame, 1..=cap).text("steps / frame"),
            );
            let auto = ui
                .checkbox(&mut self.auto_steps, "auto")
                .on_hover_text("adapt the steps per frame to keep 10-25 frames per second");
            if auto.changed() {
                self.auto_n = self.steps_per_frame as f64;
            }
        });
        ui.separator();
        ui.heading("Integrator");
        let unit_t = match self.units() {
            Units::Lj => "τ",
            Units::Physical => "fs",
        };
        let unit_temp = match self.units() {
            Units::Lj => "ε/k_B",
            Units::Physical => "K",
        };
        let mut apply = false;
        ui.horizontal(|ui| {
            ui.label(format!("dt ({unit_t})"));
            apply |= ui.text_edit_singleline(&mut self.dt_text).lost_focus();
        });
        apply |= ui
            .checkbox(&mut self.thermostat, "Thermostat (Langevin)")
            .changed();
        ui.horizontal(|ui| {
            ui.label(format!("target T ({unit_temp})"));
            apply |= ui.text_edit_singleline(&mut self.target_text).lost_focus();
        });
        ui.horizontal(|ui| {
            let scale = |s: &str, f: f64| -> String {
                s.trim()
                    .parse::<f64>()
                    .map(|t| format!("{:.4}", t * f))
                    .unwrap_or(s.to_string())
            };
            if ui.button("Heat").clicked() {
                self.target_text = scale(&self.target_text, 1.25);
                self.thermostat = true;
                apply = true;
            }
            if ui.button("Cool").clicked() {
                self.target_text = scale(&self.target_text, 0.8);
                self.thermostat = true;
                apply = true;
            }
            if ui.button("Apply").clicked() {
                apply = true;
            }
        });
        if apply {
            self.apply_integrator();
        }
        ui.separator();
        ui.heading("View");
        ui.add(egui::Slider::new(&mut self.atom_scale, 0.1..=2.0).text("atom size"));
        ui.horizontal(|ui| {
            if ui.button("Fit box").clicked() {
                let ortho = self.camera.orthographic;
                self.camera = OrbitCamera::fit(self.source.spec.system.box_lengths);
                self.camera.orthographic = ortho;
            }
            ui.checkbox(&mut self.camera.orthographic, "orthographic");
        });
        ui.checkbox(&mut self.drag_mode, "mouse drags atoms (or hold Shift)");
        ui.add(
            egui::Slider::new(&mut self.spring_scale, 0.1..=10.0)
                .logarithmic(true)
                .text("spring"),
        );
        ui.small("left drag: rotate · right/middle drag: pan · wheel: zoom");
        ui.separator();
        ui.heading("Presets");
        if self.web.is_some() {
            self.web_presets(ui);
        } else {
            self.desktop_presets(ui);
        }
        if let Some((m, err)) = &self.message {
            ui.separator();
            let color = if *err {
                egui::Color32::LIGHT_RED
            } else {
                egui::Color32::LIGHT_GREEN
            };
            ui.colored_label(color, m);
        }
    }

    /// The browser's preset picker (embedded presets; the URL follows the choice) and its
    /// structure upload (the page's file picker or a file dropped on the canvas).
    fn web_presets(&mut self, ui: &mut egui::Ui) {
        let current = self
            .web
            .as_ref()
            .map(|w| w.preset.clone())
            .unwrap_or_default();
        let mut chosen = None;
        egui::ComboBox::from_id_salt("preset")
            .selected_text(current.clone())
            .show_ui(ui, |ui| {
                for name in super::web::preset_names() {
                    if ui.selectable_label(name == current, name).clicked() {
                        chosen = Some(name);
                    }
                }
            });
        if let Some(name) = chosen {
            let r = super::web::preset_source(name);
            if r.is_ok() {
                if let Some(w) = &mut self.web {
                    w.preset = name.to_string();
                    w.url = super::web::UrlSettings {
                        preset: Some(name.to_string()),
                        autostart: w.url.autostart,
                        steps_per_frame: w.url.steps_per_frame,
                        ..Default::default()
                    };
                }
                self.pause_at = None;
            }
            self.load_or_report(r);
        }
        ui.label(
            "Open a structure (.xyz / .pdb) with this preset's force field: use the file \
             picker above the canvas or drop the file here.",
        );
    }

    fn desktop_presets(&mut self, ui: &mut egui::Ui) {
        let presets = list_presets();
        let mut chosen = None;
        egui::ComboBox::from_id_salt("preset")
            .selected_text(self.source.name.clone())
            .show_ui(ui, |ui| {
                for p in &presets {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if ui
                        .selectable_label(name == self.source.name, &name)
                        .clicked()
                    {
                        chosen = Some(p.clone());
                    }
                }
            });
        if let Some(p) = chosen {
            self.load_or_report(Source::load(&p));
        }
        ui.label("Open a config (.toml) or structure (.xyz / .pdb):");
        ui.horizontal(|ui| {
            ui.text_edit_singleline(&mut self.open_text);
            if ui.button("Open").clicked() {
                let path = PathBuf::from(self.open_text.trim());
                let r = if path.extension().is_some_and(|e| e == "toml") {
                    Source::load(&path)
                } else {
                    self.source.with_structure(&path)
                };
                self.load_or_report(r);
            }
        });
        ui.separator();
        ui.heading("Export");
        ui.horizontal(|ui| {
            if ui.button("Screenshot PNG").clicked() {
                self.request_screenshot(ui.ctx(), timestamped("wgmd-screenshot", "png"));
            }
            if ui.button("Series CSV").clicked() {
                let p = timestamped("wgmd-series", "csv");
                self.message = Some(match self.series.write_csv(&p) {
                    Ok(()) => (format!("wrote {}", p.display()), false),
                    Err(e) => (format!("{e:#}"), true),
                });
            }
        });
    }

    /// The browser build's per-frame chores: structures handed in by the page or dropped on
    /// the canvas, the URL, and the `#wgmd-state` / `#wgmd-message` mirrors (4 times a second).
    #[cfg_attr(not(target_arch = "wasm32"), allow(unused_variables))]
    fn web_frame(&mut self, ctx: &egui::Context) {
        if self.web.is_none() {
            return;
        }
        #[allow(unused_mut)]
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        #[cfg(target_arch = "wasm32")]
        {
            // Dropped files are read asynchronously and arrive with the page's uploads.
            super::web::read_dropped(ctx.input(|i| i.raw.dropped_files.clone()));
            super::web::UPLOADS.with(|u| files.append(&mut u.borrow_mut()));
        }
        for (name, bytes) in files {
            let r = String::from_utf8(bytes)
                .map_err(|_| anyhow!("'{name}' is not a text file"))
                .and_then(|text| self.source.with_structure_text(&name, &text));
            self.load_or_report(r);
        }
        let due = self
            .last_publish
            .is_none_or(|t| t.elapsed().as_secs_f64() >= 0.25);
        if !due {
            return;
        }
        self.last_publish = Some(Instant::now());
        let state = self.state_json();
        #[cfg(target_arch = "wasm32")]
        {
            if let Ok(json) = serde_json::to_string(&state) {
                super::web::set_element_text("wgmd-state", &json);
            }
            let msg = match &self.message {
                Some((m, true)) => m.clone(),
                _ => String::new(),
            };
            super::web::set_element_text("wgmd-message", &msg);
            if let Some(w) = &self.web {
                super::web::set_query(&w.url.to_query());
            }
        }
    }

    /// The page's state mirror (see `super::web::StateJson`).
    fn state_json(&self) -> super::web::StateJson {
        let last = self.series.samples.last();
        super::web::StateJson {
            preset: self
                .web
                .as_ref()
                .map(|w| w.preset.clone())
                .unwrap_or_else(|| self.source.name.clone()),
            atoms: self.live.as_ref().map(|l| l.sim.n_atoms()).unwrap_or(0),
            step: last.map(|s| s.step).unwrap_or(0),
            potential_energy: last.map(|s| s.potential_energy),
            kinetic_energy: last.map(|s| s.kinetic_energy),
            total_energy: last.map(|s| s.total_energy),
            temperature: last.map(|s| s.temperature),
            adapter: match (&self.web, self.ctx.info.name.is_empty()) {
                (Some(w), true) => w.adapter.clone(),
                _ => self.ctx.info.name.clone(),
            },
            units: match self.units() {
                Units::Lj => "lj",
                Units::Physical => "physical",
            }
            .into(),
        }
    }

    fn request_screenshot(&mut self, ctx: &egui::Context, path: PathBuf) {
        let tx = self.shot_tx.clone();
        let repaint = ctx.clone();
        ctx.request_screenshot(move |img| {
            let _ = tx.send((img, path));
            repaint.request_repaint();
        });
    }

    /// Frames per second over the last two seconds (0 until two frames were seen).
    fn fps(&self) -> f64 {
        match (self.frame_times.first(), self.frame_times.last()) {
            (Some(a), Some(b)) if self.frame_times.len() > 1 && b > a => {
                (self.frame_times.len() - 1) as f64 / b.duration_since(*a).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// MD steps per second over the last three seconds of collected batches.
    fn steps_per_s(&self) -> f64 {
        match (self.steps_window.first(), self.steps_window.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                (b.1 - a.1) as f64 / b.0.duration_since(a.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        let now = Instant::now();
        self.frame_times.push(now);
        self.frame_times
            .retain(|t| now.duration_since(*t).as_secs_f64() < 2.0);
        let fps = self.fps();
        self.steps_window
            .retain(|(t, _)| now.duration_since(*t).as_secs_f64() < 3.0);
        let sps = self.steps_per_s();
        let dt = self
            .live
            .as_ref()
            .map(|l| l.sim.spec.integrator.dt)
            .unwrap_or(0.0);
        let per_day = sps * dt * 86400.0;
        let rate = match self.units() {
            Units::Physical => format!("{:.2} ns/day", per_day * 1e-6),
            Units::Lj => format!("{:.3e} τ/day", per_day),
        };
        let info = &self.ctx.info;
        let atoms = self.live.as_ref().map(|l| l.sim.n_atoms()).unwrap_or(0);
        let step = self.series.samples.last().map(|s| s.step).unwrap_or(0);
        let temp = self
            .series
            .samples
            .last()
            .map(|s| s.temperature)
            .unwrap_or(0.0);
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} ({:?}) · {atoms} atoms · step {step} · T {temp:.3} · {sps:.0} steps/s · {rate} · {fps:.1} fps",
                self.state_json().adapter,
                info.backend
            ));
        });
    }

    fn save_screenshot(&mut self, img: &egui::ColorImage, path: &Path) -> Result<()> {
        let [w, h] = img.size;
        let mut rgba = Vec::with_capacity(w * h * 4);
        for p in &img.pixels {
            rgba.extend_from_slice(&[p.r(), p.g(), p.b(), 255]);
        }
        let mut f = crate::io::AtomicFile::create(path)?;
        let enc = image::codecs::png::PngEncoder::new(f.writer());
        image::ImageEncoder::write_image(
            enc,
            &rgba,
            w as u32,
            h as u32,
            image::ExtendedColorType::Rgba8,
        )
        .with_context(|| format!("cannot encode '{}' as PNG", path.display()))?;
        f.commit()
    }

    fn fail_and_close(&mut self, ctx: &egui::Context, msg: String) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(msg);
        }
        self.closing = true;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

fn timestamped(stem: &str, ext: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from(format!("{stem}-{secs}.{ext}"))
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if self.closing {
            return;
        }
        if let Some(msg) = self.device_lost.lock().ok().and_then(|m| m.clone()) {
            if self.web.is_none() {
                self.fail_and_close(&ctx, msg);
                return;
            }
            // A page cannot close itself: say what happened (in #wgmd-message) and stop.
            self.running = false;
            self.message = Some((msg, true));
            if let Ok(mut l) = self.device_lost.lock() {
                *l = None;
            }
        }
        while let Ok((img, path)) = self.shot_rx.try_recv() {
            let r = self.save_screenshot(&img, &path);
            let auto = self.auto_shot.as_ref() == Some(&path);
            match r {
                Ok(()) => self.message = Some((format!("saved {}", path.display()), false)),
                Err(e) => {
                    self.message = Some((format!("{e:#}"), true));
                    if auto {
                        self.fail_and_close(&ctx, format!("{e:#}"));
                        return;
                    }
                }
            }
            if auto {
                // One line for scripts and BENCHMARKS.md: the rates when the shot was taken.
                eprintln!(
                    "wgmd view: saved {} (adapter {}, {} atoms, step {}, {:.1} fps, {:.1} steps/s, {} steps/frame)",
                    path.display(),
                    self.ctx.info.name,
                    self.live.as_ref().map(|l| l.sim.n_atoms()).unwrap_or(0),
                    self.series.samples.last().map(|s| s.step).unwrap_or(0),
                    self.fps(),
                    self.steps_per_s(),
                    self.steps_per_frame
                );
                self.closing = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                return;
            }
        }
        self.web_frame(&ctx);
        self.advance();
        if let Some(path) = self.auto_shot.clone() {
            if self.frames_left > 0 {
                self.frames_left -= 1;
            } else if !self.shot_requested {
                self.shot_requested = true;
                self.request_screenshot(&ctx, path);
            }
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("controls")
            .default_size(260.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui));
            });
        let (e, t, temp, p) = match self.units() {
            Units::Lj => ("ε", "τ", "ε/k_B", "ε/σ³"),
            Units::Physical => ("eV", "fs", "K", "bar"),
        };
        egui::Panel::right("plots")
            .default_size(420.0)
            .show(ui, |ui| self.series.show(ui, e, t, temp, p));
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(egui::Color32::from_rgb(18, 20, 28)))
            .show(ui, |ui| self.view_3d(ui));
        // Keep frames coming: the simulation advances once per frame.
        ctx.request_repaint();
    }
}
