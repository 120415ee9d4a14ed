//! `POST /bulk_imports` request parsing: any body, under any of the content types the endpoint reads
//! (JSON, a form, none, or one it refuses), becomes a validated request or GitLab's 400 / 415, and
//! never a panic. The first byte picks the content type; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    match appliance::api::parse_create_request(content_type, body) {
        Ok(params) => assert!(!params.entities.is_empty()),
        Err(e) => {
            let status = e.status().as_u16();
            assert!(status == 400 || status == 415, "{status}: {e}");
        }
    }
});
