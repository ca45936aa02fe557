//! cargo-fuzz target: `fastway_core::fuzz::frame_decoder` (see its docs for what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fastway_core::fuzz::frame_decoder(data);
});
