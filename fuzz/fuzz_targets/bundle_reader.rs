//! Arbitrary bytes as a bundle file: `Bundle::open` and then `verify` (what `appliance verify` and a
//! replay run) must refuse or accept, never panic, hang or allocate without bound.
#![no_main]

use appliance::bundle::{Bundle, verify};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let file = dir.path().join("fuzz.bundle");
            (dir, file)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let path = file();
    std::fs::write(path, data).expect("write the bundle");
    if let Ok(bundle) = Bundle::open(std::slice::from_ref(path)) {
        let _ = bundle.manifest.replay_roots();
        let _ = verify(&bundle, None);
    }
});
