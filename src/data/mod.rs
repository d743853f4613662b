//! Dataset readers and the location of the data shipped in `data/`.

use std::path::PathBuf;

/// Environment variable that overrides where the shipped data is looked for
/// (tests and examples run on other machines set it).
pub const DATA_DIR_ENV: &str = "MIXPREC_DATA_DIR";

/// The directory holding the shipped data (`mnist/`, `text/`): `$MIXPREC_DATA_DIR`
/// if set, else `./data` if it exists, else the repository's `data/`.
pub fn shipped_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("data");
    if local.join("mnist").is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}
