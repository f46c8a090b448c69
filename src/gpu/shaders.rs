//! WGSL sources, embedded at build time, with a tiny `#import name` composition step
//! (textual inclusion of `shaders/name.wgsl`, each file at most once) and naga validation.

use anyhow::{anyhow, Result};

/// Every WGSL file in `shaders/`, by name.
pub const SOURCES: &[(&str, &str)] = &[
    ("common", include_str!("../../shaders/common.wgsl")),
    ("cell_list", include_str!("../../shaders/cell_list.wgsl")),
    ("neighbor", include_str!("../../shaders/neighbor.wgsl")),
    ("lj_pair", include_str!("../../shaders/lj_pair.wgsl")),
    ("split_rows", include_str!("../../shaders/split_rows.wgsl")),
    ("lj", include_str!("../../shaders/lj.wgsl")),
    ("coulomb", include_str!("../../shaders/coulomb.wgsl")),
    ("spread_f32", include_str!("../../shaders/spread_f32.wgsl")),
    ("bspline", include_str!("../../shaders/bspline.wgsl")),
    ("interp", include_str!("../../shaders/interp.wgsl")),
    (
        "coulomb_spread",
        include_str!("../../shaders/coulomb_spread.wgsl"),
    ),
    (
        "spread_tile",
        include_str!("../../shaders/spread_tile.wgsl"),
    ),
    ("ewald", include_str!("../../shaders/ewald.wgsl")),
    ("integrate", include_str!("../../shaders/integrate.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("prec_f32", include_str!("../../shaders/prec_f32.wgsl")),
    ("prec_f16", include_str!("../../shaders/prec_f16.wgsl")),
    ("prec_f16n", include_str!("../../shaders/prec_f16n.wgsl")),
    ("aev", include_str!("../../shaders/aev.wgsl")),
    ("mlp", include_str!("../../shaders/mlp.wgsl")),
    ("coop", include_str!("../../shaders/coop.wgsl")),
    ("mlp_coop", include_str!("../../shaders/mlp_coop.wgsl")),
    ("histogram", include_str!("../../shaders/histogram.wgsl")),
    ("drag", include_str!("../../shaders/drag.wgsl")),
    ("render", include_str!("../../shaders/render.wgsl")),
];

/// Kernel files (everything but shared snippets) that share the engine's `Params`; each
/// must validate on its own. A `+` joins a precision snippet and the file that uses it
/// (`prec_f16+aev`).
pub const KERNEL_FILES: &[&str] = &[
    "cell_list",
    "neighbor",
    "lj",
    "coulomb",
    "coulomb_spread",
    "spread_tile",
    "ewald",
    "integrate",
    "reduce",
    "drag",
    "prec_f32+aev",
    "prec_f16+aev",
    "prec_f16n+aev",
    "prec_f32+mlp",
    "prec_f16+mlp",
    "prec_f16n+mlp",
    "coop+prec_f16n+mlp+mlp_coop",
];

/// Shader files with their own uniform instead of `Params` (they work on any position and
/// velocity buffers): the histograms and the viewer's renderer. Validated in
/// `tests/observe_gpu.rs` with their own layout checks.
pub const STANDALONE_FILES: &[&str] = &["histogram", "render"];

fn source(name: &str) -> Result<&'static str> {
    SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| anyhow!("internal: no shader named '{name}'"))
}

/// Resolves `#import other` lines recursively. `a+b` composes `a` then `b` (variants: a
/// precision snippet in front of a kernel file that uses its `Store*` aliases).
pub fn compose(name: &str) -> Result<String> {
    let mut seen = Vec::new();
    let mut out = String::new();
    for part in name.split('+') {
        compose_into(part, &mut seen, &mut out)?;
    }
    Ok(out)
}

fn compose_into(name: &str, seen: &mut Vec<String>, out: &mut String) -> Result<()> {
    if seen.iter().any(|s| s == name) {
        return Ok(());
    }
    seen.push(name.to_string());
    for line in source(name)?.lines() {
        if let Some(rest) = line.trim().strip_prefix("#import ") {
            compose_into(rest.trim(), seen, out)?;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(())
}

/// Parses and validates with naga; errors carry naga's located message.
pub fn validate(name: &str, source: &str) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        anyhow!(
            "shader '{name}' does not parse:\n{}",
            e.emit_to_string(source)
        )
    })?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| anyhow!("shader '{name}' is invalid:\n{}", e.emit_to_string(source)))?;
    Ok((module, info))
}
