//! Framed Avro records of every schema version: decoding never panics, and what decodes encodes to
//! a record that decodes to the same event.
#![no_main]

use kurz_schemas::{Catalog, Codec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|record: &[u8]| {
    thread_local! {
        static CODEC: Codec = Codec::local(Catalog::shipped());
    }
    CODEC.with(|codec| {
        if let Ok(event) = codec.decode(record) {
            let encoded = codec.encode(&event).expect("a decoded event encodes");
            assert_eq!(codec.decode(&encoded).expect("re-decodes"), event);
        }
    });
});
