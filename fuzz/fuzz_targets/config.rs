//! Configuration parsing and validation: any text must give a `Config` or a list of errors with
//! locations, never a panic; a text that validates must validate again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofgate_config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text) {
        Ok(_) => {
            assert!(
                Config::from_toml_str(text).is_ok(),
                "validation is not deterministic"
            );
        }
        Err(errors) => {
            // Rendering the errors (as `proofgate check` does) must not panic either.
            let _ = errors.to_string();
        }
    }
});
