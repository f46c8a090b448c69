//! ANI-2x float64 reference against TorchANI 2.9 data, finite differences and the loader's
//! error paths. Tests that need the real model or the reference data skip with one line when
//! those files are absent (CI machines may lack them); synthetic-model tests always run.

use std::path::PathBuf;

use wgmd::ani::{AniModel, ANI2X_SYMBOLS};

/// Where the real model and the reference data live: `WGMD_ANI_MODEL` (path to the `.info`)
/// and `WGMD_ANI_DATA` (directory), else the project's `shared/` beside the checkout.
struct Locations {
    model: PathBuf,
    data: PathBuf,
}

fn locations() -> Locations {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    Locations {
        model: std::env::var_os("WGMD_ANI_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| shared.join("models/ani-2x_8x.info")),
        data: std::env::var_os("WGMD_ANI_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| shared.join("data")),
    }
}

/// The real model's `.info` path, or `None` after printing the skip line.
fn real_model_path() -> Option<PathBuf> {
    let p = locations().model;
    if p.is_file() {
        Some(p)
    } else {
        println!("skipping: ANI-2x model not found at {}", p.display());
        None
    }
}

#[test]
fn real_model_loads_with_the_documented_shapes() {
    let Some(info) = real_model_path() else {
        return;
    };
    let m = AniModel::load(&info).unwrap();
    assert_eq!(m.symbols, ANI2X_SYMBOLS.map(String::from).to_vec());
    assert_eq!(m.members.len(), 8);
    assert_eq!(m.aev.aev_len(), 1008);
    assert_eq!(m.aev.eta_r, 19.700000762939453);
    assert_eq!(m.aev.zeta, 14.100000381469727);
    assert_eq!(m.aev.shf_z[0], 0.39269909262657166);
    assert_eq!((m.aev.rcr, m.aev.rca), (5.1, 3.5));
    assert_eq!(m.aev, wgmd::ani::AevParams::ani2x());
    let widths = |s: usize| -> Vec<usize> {
        let net = &m.members[3][s];
        let mut w = vec![net.layers[0].n_in];
        w.extend(net.layers.iter().map(|l| l.n_out));
        w
    };
    assert_eq!(widths(0), vec![1008, 256, 192, 160, 1]);
    assert_eq!(widths(1), vec![1008, 224, 192, 160, 1]);
    assert_eq!(widths(6), vec![1008, 160, 128, 96, 1]);
    let params: usize = m
        .members
        .iter()
        .flatten()
        .flat_map(|n| &n.layers)
        .map(|l| l.weights.len() + l.biases.len())
        .sum();
    assert_eq!(params, 13_705_784);
    assert_eq!(m.self_energies_f32_rounded()[6], -460.1681823730469);
    assert_eq!(m.self_energies[0], -0.5978583943827134);
    let e = m
        .species_for_atoms(&["C", "H", "Na"].map(String::from))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "atom 2 is element Na, which the ANI model (H C N O S F Cl) does not cover"
    );
}
