//! Writes the seed inputs of the WinRM fuzz targets into `DIR/<target>/seed-NN`, the layout
//! `cargo fuzz` reads a corpus from (see `docs/fuzzing.md`).
//!
//! ```text
//! cargo run -p orca-connectors --no-default-features --features fuzzing \
//!     --example winrm_fuzz_seeds -- orca-connectors/fuzz/seeds
//! ```

use orca_connectors::fuzzing::{Target, seeds};

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: winrm_fuzz_seeds DIR");
        std::process::exit(2)
    };
    for target in Target::ALL {
        let sub = std::path::Path::new(&dir).join(target.name());
        std::fs::create_dir_all(&sub)?;
        let all = seeds(target);
        for (i, seed) in all.iter().enumerate() {
            std::fs::write(sub.join(format!("seed-{i:02}")), seed)?;
        }
        println!(
            "{}: {} seeds in {}",
            target.name(),
            all.len(),
            sub.display()
        );
    }
    Ok(())
}
