//! The configuration file (`onbehalf.toml`) as `config::Settings` reads and validates it: any text is a setting or
//! an error naming the key, never a panic. Input: the file.
#![no_main]

use figment::{
    Figment,
    providers::{Format, Toml},
};
use libfuzzer_sys::fuzz_target;
use onbehalf::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Settings::from_figment(Figment::new().merge(Toml::string(text)));
});
