//! The bytes of a click-spool file: decoding never panics.
#![no_main]

use kurz_query_api::decode_spooled_batch;
use kurz_schemas::{Catalog, Codec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: &[u8]| {
    thread_local! {
        static CODEC: Codec = Codec::local(Catalog::shipped());
    }
    CODEC.with(|codec| {
        let _ = decode_spooled_batch(codec, file);
    });
});
