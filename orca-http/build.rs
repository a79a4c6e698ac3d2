//! Embeds the web console's committed build output (`web/dist`) when the `ui` feature is on.
//! Never touches the network and never runs Node: `web/dist` is built ahead of time (`npm run
//! build` in `web/`) and committed; CI rebuilds it and fails if it differs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dist = manifest.join("web").join("dist");
    println!("cargo:rerun-if-changed=web/dist");
    println!("cargo:rerun-if-changed=build.rs");
    let mut code = String::from("/// The console's files: (path, body, gzip, brotli).\n");
    code.push_str("pub(crate) static ASSETS: &[Asset] = &[\n");
    if std::env::var_os("CARGO_FEATURE_UI").is_some() {
        let mut all = Vec::new();
        files(&dist, &mut all);
        all.sort();
        if !all.iter().any(|p| p.ends_with("index.html")) {
            println!(
                "cargo:warning=web/dist/index.html is missing: the console is not embedded (run `npm ci && npm run build` in orca-http/web)"
            );
        }
        for p in &all {
            let name = p.to_string_lossy();
            if name.ends_with(".gz") || name.ends_with(".br") {
                continue;
            }
            let rel = p
                .strip_prefix(&dist)
                .expect("under dist")
                .to_string_lossy()
                .replace('\\', "/");
            let variant = |ext: &str| {
                let v = PathBuf::from(format!("{name}.{ext}"));
                if v.exists() {
                    format!("Some(include_bytes!({:?}))", v.to_string_lossy())
                } else {
                    "None".to_string()
                }
            };
            let _ = writeln!(
                code,
                "    Asset {{ path: {rel:?}, body: include_bytes!({name:?}), gzip: {}, brotli: {} }},",
                variant("gz"),
                variant("br")
            );
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ui_assets.rs");
    std::fs::write(out, code).expect("write ui_assets.rs");
}
