//! Stored link, key and orphan-visit rows of every layout: decoding never panics, and a decoded row encodes to
//! one that decodes the same.
#![no_main]

use kurz_ports::rows::{decode_key, decode_link, decode_orphan_day, encode_key, encode_link, encode_orphan_day};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|row: &[u8]| {
    if let Ok(link) = decode_link(row) {
        assert_eq!(decode_link(&encode_link(&link)).expect("re-decodes"), link);
    }
    if let Ok(key) = decode_key(row) {
        assert_eq!(decode_key(&encode_key(&key)).expect("re-decodes"), key);
    }
    if let Ok(day) = decode_orphan_day(row) {
        assert_eq!(decode_orphan_day(&encode_orphan_day(&day)).expect("re-decodes"), day);
    }
});
