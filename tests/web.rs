//! The browser build, tested in a real browser: `web/build.sh` builds the site, a tiny static
//! server serves `web/dist` on 127.0.0.1, headless Chromium (SwiftShader's WebGPU, the flags
//! of DESIGN.md) opens `?preset=lj_liquid&autostart=1&steps=N` and is driven over the DevTools
//! protocol; the energies the page mirrors in `#wgmd-state` at step N are compared with the
//! native engine's on the same preset and step, and a screenshot is saved under
//! `target/web-test/`. A second test opens the page in a Chromium without WebGPU and checks
//! for the message instead of a blank canvas.
//!
//! Needs `chromium` (or `WGMD_CHROMIUM`), the wasm32 target and the wasm-bindgen CLI of
//! Cargo.lock's version. Without them the tests print a loud SKIPPED, unless
//! `WGMD_REQUIRE_WEB=1` (set by `.ci/run`), which turns a missing tool into a failure.

#![cfg(feature = "viewer")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use wgmd::config::Config;
use wgmd::engine::Simulation;
use wgmd::gpu::{GpuContext, GpuOptions};

const PRESET: &str = "lj_liquid";
/// Few steps: both runs are f32 on different rasterizers (SwiftShader vs this machine's
/// adapter), whose rounding differs in the last bits; trajectories of a dense liquid diverge
/// exponentially, so the comparison is made early, while the two still agree to ~1e-6.
const STEPS: u64 = 20;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn required() -> bool {
    std::env::var("WGMD_REQUIRE_WEB").is_ok_and(|v| v == "1")
}

/// Returns the reason to skip, or panics when the tools are required.
fn skip(why: &str) {
    if required() {
        panic!("WGMD_REQUIRE_WEB=1 but {why}");
    }
    eprintln!("\n*** SKIPPED: the browser test needs {why} (set WGMD_REQUIRE_WEB=1 to make this a failure) ***\n");
}

fn chromium() -> String {
    std::env::var("WGMD_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

fn missing_tool() -> Option<String> {
    let ok = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&chromium(), "--version") {
        return Some(format!(
            "'{}' (Debian: apt-get install chromium)",
            chromium()
        ));
    }
    if !ok("wasm-bindgen", "--version") {
        return Some("the wasm-bindgen CLI (cargo install wasm-bindgen-cli)".into());
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !targets
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Some("the wasm32 target (rustup target add wasm32-unknown-unknown)".into());
    }
    None
}

/// Builds the site once per test binary and serves it; the base URL.
fn site() -> Result<String, String> {
    static SITE: OnceLock<Result<String, String>> = OnceLock::new();
    SITE.get_or_init(|| {
        let t0 = Instant::now();
        let out = Command::new("bash")
            .arg(manifest().join("web/build.sh"))
            .current_dir(manifest())
            .output()
            .map_err(|e| format!("cannot run web/build.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "web/build.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        eprintln!("web/build.sh took {:.0} s", t0.elapsed().as_secs_f64());
        serve(manifest().join("web/dist"))
    })
    .clone()
}

/// A static file server on 127.0.0.1 (an ephemeral port) for `dir`; the base URL.
fn serve(dir: PathBuf) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let _ = answer(stream, &dir);
            });
        }
    });
    Ok(format!("http://127.0.0.1:{port}"))
}

fn answer(mut stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let rel = if path == "/" {
        "index.html"
    } else {
        path.trim_start_matches('/')
    };
    let file = dir.join(rel);
    let (status, body, ctype) = if rel.contains("..") || !file.is_file() {
        ("404 Not Found", b"not found".to_vec(), "text/plain")
    } else {
        let ctype = match file.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript",
            Some("wasm") => "application/wasm",
            _ => "application/octet-stream",
        };
        ("200 OK", std::fs::read(&file)?, ctype)
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// Headless Chromium with a DevTools endpoint, killed on drop.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    devtools_port: u16,
    stderr_tail: Arc<Mutex<Vec<String>>>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch(url: &str, webgpu: bool) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(chromium());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--window-size=1280,800",
            "--remote-debugging-port=0",
            // The page's console (wgmd's log, a panic) in the failure messages.
            "--enable-logging=stderr",
            "--log-level=0",
        ]);
        if webgpu {
            // Vulkan (SwiftShader) shared images and ANGLE on SwiftShader too: without them
            // headless Chromium cannot allocate the image behind a WebGPU canvas, presenting
            // fails and the device is lost (every map_async then fails).
            cmd.args([
                "--enable-unsafe-webgpu",
                "--use-webgpu-adapter=swiftshader",
                "--use-angle=swiftshader",
                "--enable-features=Vulkan",
                "--use-vulkan=swiftshader",
            ]);
        } else {
            cmd.arg("--disable-features=WebGPU,Vulkan");
        }
        // Extra flags for experiments (e.g. another GPU setup), space-separated.
        if let Ok(extra) = std::env::var("WGMD_CHROMIUM_FLAGS") {
            cmd.args(extra.split_whitespace());
        }
        cmd.arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tail = Arc::new(Mutex::new(Vec::new()));
        let tail2 = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                    let port: u16 = rest.split('/').next().unwrap_or("").parse().unwrap_or(0);
                    let _ = tx.send(port);
                }
                let mut t = tail2.lock().unwrap();
                t.push(line);
                if t.len() > 40 {
                    t.remove(0);
                }
            }
        });
        let devtools_port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium did not open its DevTools endpoint within 60 s");
        Browser {
            child,
            _profile: profile,
            devtools_port,
            stderr_tail: tail,
        }
    }

    fn log_tail(&self) -> String {
        self.stderr_tail.lock().unwrap().join("\n")
    }

    /// The page target's DevTools connection.
    fn page(&self) -> Page {
        let t0 = Instant::now();
        loop {
            let list = http_get(self.devtools_port, "/json/list").unwrap_or_default();
            let targets: Value = serde_json::from_str(&list).unwrap_or(Value::Null);
            let ws = targets.as_array().and_then(|a| {
                a.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
            });
            if let Some(ws) = ws {
                let (socket, _) = tungstenite::connect(ws.as_str()).expect("DevTools websocket");
                // A page whose main thread hangs must fail the test, not hang it.
                if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                }
                return Page { socket, next_id: 1 };
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no page target in chromium"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    // Chromium's DevTools server may keep the connection open: read Content-Length bytes.
    let mut reader = BufReader::new(s);
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

struct Page {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(tungstenite::Message::text(msg)).unwrap();
        loop {
            let m = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("{method}: no answer from the page ({e})"));
            if let tungstenite::Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    /// The text of the element `id` ("" when it is missing).
    fn text_of(&mut self, id: &str) -> String {
        let r = self.call(
            "Runtime.evaluate",
            json!({
                "expression": format!("(document.getElementById('{id}') || {{}}).textContent || ''"),
                "returnByValue": true
            }),
        );
        r["result"]["value"].as_str().unwrap_or("").to_string()
    }

    fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        png
    }
}

fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("target"))
        .join("web-test")
}

/// The native engine's (potential, kinetic, temperature) after `steps` steps of the preset.
fn native(steps: u64) -> (f64, f64, f64) {
    let path = manifest().join(format!("assets/presets/{PRESET}.toml"));
    let spec = Config::load(&path).unwrap().to_spec().unwrap();
    let ctx = GpuContext::new(&GpuOptions::default()).unwrap();
    let mut sim = Simulation::new(ctx, spec).unwrap();
    let th = sim.advance(steps, true).unwrap().unwrap();
    assert_eq!(th.step, steps);
    (th.potential_energy, th.kinetic_energy, th.temperature)
}

#[test]
fn the_browser_runs_a_preset_like_the_native_engine() {
    if let Some(why) = missing_tool() {
        return skip(&why);
    }
    let base = site().unwrap_or_else(|e| panic!("{e}"));
    let url = format!("{base}/?preset={PRESET}&autostart=1&steps={STEPS}");
    let browser = Browser::launch(&url, true);
    let mut page = browser.page();
    let t0 = Instant::now();
    let state: Value = loop {
        let msg = page.text_of("wgmd-message");
        assert!(
            msg.is_empty(),
            "the page reports an error: {msg}\nchromium:\n{}",
            browser.log_tail()
        );
        let text = page.text_of("wgmd-state");
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            if v["step"] == STEPS && v["potential_energy"].is_number() {
                break v;
            }
        }
        if t0.elapsed().as_secs() % 15 == 0 {
            eprintln!("after {:.0} s: {text}", t0.elapsed().as_secs_f64());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "the page did not reach step {STEPS} in 300 s; last state: {text}\nchromium:\n{}",
            browser.log_tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "browser reached step {STEPS} after {:.1} s: {state}",
        t0.elapsed().as_secs_f64()
    );
    // The contract: exactly these keys.
    let mut keys: Vec<&str> = state
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "adapter",
            "atoms",
            "kinetic_energy",
            "potential_energy",
            "preset",
            "step",
            "temperature",
            "total_energy",
            "units"
        ]
    );
    assert_eq!(state["preset"], PRESET);
    assert_eq!(state["units"], "lj");
    assert_eq!(state["atoms"], 2048);
    assert!(
        state["adapter"].as_str().is_some_and(|a| !a.is_empty()),
        "{state}"
    );
    // The page must stay paused at exactly STEPS.
    std::thread::sleep(Duration::from_secs(2));
    let later: Value = serde_json::from_str(&page.text_of("wgmd-state")).unwrap();
    assert_eq!(
        later["step"], STEPS,
        "the page did not pause at step {STEPS}"
    );

    let shot = out_dir().join(format!("web-{PRESET}.png"));
    let png = page.screenshot(&shot);
    eprintln!("screenshot: {}", shot.display());
    // Not a blank canvas: the atoms and plots give many distinct colours.
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 200,
        "the screenshot has only {} colours",
        colours.len()
    );

    let (pe, ke, temp) = native(STEPS);
    let web_pe = state["potential_energy"].as_f64().unwrap();
    let web_ke = state["kinetic_energy"].as_f64().unwrap();
    let web_t = state["temperature"].as_f64().unwrap();
    let web_total = state["total_energy"].as_f64().unwrap();
    // f32 everywhere: per-atom energies carry ~1e-7 relative rounding, summed over 2,048 atoms
    // in different orders on the two devices, and 20 steps of a chaotic liquid amplify the
    // difference of the forces' last bits a little. 1e-5 of the energy scale (|PE| + KE,
    // about 9,000 ε here) is ~0.1 ε: far above that noise, far below what one step changes.
    let scale = pe.abs() + ke;
    let tol = 1e-5 * scale;
    eprintln!(
        "native: PE {pe:.6} KE {ke:.6} T {temp:.6}; browser: PE {web_pe:.6} KE {web_ke:.6} T {web_t:.6}; tolerance {tol:.3e}"
    );
    // The check can fail: one step earlier the native energies are far outside it.
    let (pe1, ke1, _) = native(STEPS - 1);
    assert!(
        (pe1 - pe).abs() > 10.0 * tol && (ke1 - ke).abs() > 10.0 * tol,
        "one step changes the energies by less than 10x the tolerance: PE {pe1} vs {pe}, KE {ke1} vs {ke}"
    );
    assert!(
        (web_pe - pe).abs() < tol,
        "PE: browser {web_pe}, native {pe}"
    );
    assert!(
        (web_ke - ke).abs() < tol,
        "KE: browser {web_ke}, native {ke}"
    );
    assert!((web_total - (web_pe + web_ke)).abs() < 1e-9 * scale);
    // T is KE over a constant: the same relative tolerance as KE.
    assert!(
        (web_t - temp).abs() < tol / ke * temp,
        "T: browser {web_t}, native {temp}"
    );
}

#[test]
fn a_browser_without_webgpu_gets_a_message_not_a_blank_canvas() {
    if let Some(why) = missing_tool() {
        return skip(&why);
    }
    let base = site().unwrap_or_else(|e| panic!("{e}"));
    let browser = Browser::launch(&format!("{base}/?preset={PRESET}&autostart=1"), false);
    let mut page = browser.page();
    let t0 = Instant::now();
    let msg = loop {
        let m = page.text_of("wgmd-message");
        if !m.is_empty() {
            break m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no message after 60 s in a browser without WebGPU\nchromium:\n{}",
            browser.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!("without WebGPU the page says: {msg}");
    assert!(msg.contains("WebGPU"), "{msg}");
    assert!(page.text_of("wgmd-state").is_empty());
    page.screenshot(&out_dir().join("web-no-webgpu.png"));
}

/// The engine path the browser uses, on this machine's adapter: a simulation built without
/// waiting ([`Simulation::new_nonblocking`]) and stepped by a non-blocking
/// [`LiveStepper`] must follow the blocking engine step for step, also through a
/// neighbor-list overflow (forced here with a tiny list), which it must detect from its
/// status readback, roll back, regrow and rebuild without waiting.
#[test]
fn the_nonblocking_engine_path_matches_the_blocking_one_through_an_overflow() {
    use wgmd::engine::live::LiveStepper;
    use wgmd::engine::SimSpec;
    let ctx = GpuContext::new(&GpuOptions::default()).unwrap();
    eprintln!("adapter: {}", ctx.info.name);
    // 4·5³ = 500 atoms: not a multiple of the workgroup size.
    let spec = SimSpec::lammps_in_lj(5);
    let (batch, batches) = (7u32, 4u64);
    let mut reference = Simulation::new(ctx.clone(), spec.clone()).unwrap();
    let mut want = None;
    for _ in 0..batches {
        want = reference.advance(batch as u64, true).unwrap();
    }
    let want = want.unwrap();

    let mut sim = Simulation::new_nonblocking(ctx.clone(), spec).unwrap();
    // Too small for anyone's neighbors: the first rebuild inside the first batch overflows.
    sim.set_neighbor_capacity(4).unwrap();
    sim.request_rebuild();
    let mut stepper = LiveStepper::new_nonblocking(&sim);
    let mut got = None;
    let mut polls = 0;
    while sim.step_count() < batch as u64 * batches {
        if !stepper.busy() {
            assert!(stepper.submit(&mut sim, batch).unwrap());
        }
        // Natively the test may wait; the stepper itself never does.
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .unwrap();
        if let Some(th) = stepper.poll(&mut sim).unwrap() {
            got = Some(th);
        }
        polls += 1;
        assert!(polls < 100, "the non-blocking stepper made no progress");
    }
    let got = got.unwrap();
    assert!(sim.stats().regrows >= 1, "the overflow was not exercised");
    assert_eq!(got.step, want.step);
    // Same device, kernels and batch boundaries: only the neighbor-list capacity differs,
    // which changes no sum's order, so the two agree to f32 rounding.
    let scale = want.potential_energy.abs() + want.kinetic_energy;
    for (what, a, b) in [
        ("potential", got.potential_energy, want.potential_energy),
        ("kinetic", got.kinetic_energy, want.kinetic_energy),
    ] {
        assert!(
            (a - b).abs() < 1e-6 * scale,
            "{what} energy: non-blocking {a}, blocking {b}"
        );
    }
}

/// Every preset the page embeds runs on a device with exactly WebGPU's default limits and no
/// optional features (what a browser may give: 8 storage buffers per stage, 128 MiB per
/// storage binding, 256 invocations per workgroup, no shader-f16), here on this machine's
/// adapter: no kernel needs more than a browser guarantees.
#[test]
fn the_embedded_presets_run_within_webgpu_default_limits() {
    let ctx = common::webgpu_default_ctx();
    assert_eq!(ctx.limits.max_storage_buffers_per_shader_stage, 8);
    assert!(!ctx.has_f16());
    for name in wgmd::viewer::web::preset_names() {
        let source = wgmd::viewer::web::preset_source(name).unwrap();
        let mut sim = Simulation::new(ctx.clone(), source.spec)
            .unwrap_or_else(|e| panic!("{name} within WebGPU default limits: {e:#}"));
        let th = sim.advance(2, true).unwrap().unwrap();
        assert!(th.total_energy.is_finite(), "{name}");
    }
}
