//! Stored link and key rows of every layout: decoding never panics, and a decoded row encodes to
//! one that decodes the same.
#![no_main]

use kurz_ports::rows::{decode_key, decode_link, encode_key, encode_link};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|row: &[u8]| {
    if let Ok(link) = decode_link(row) {
        assert_eq!(decode_link(&encode_link(&link)).expect("re-decodes"), link);
    }
    if let Ok(key) = decode_key(row) {
        assert_eq!(decode_key(&encode_key(&key)).expect("re-decodes"), key);
    }
});
