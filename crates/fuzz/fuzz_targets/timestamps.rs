//! Every timestamp and date parser: never a panic, and what parses formats back to an instant that
//! parses to the same value.
#![no_main]

use kurz_service_kit::time_format::{format_date, format_millis, parse_date, parse_millis};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(millis) = parse_millis(input) {
        assert_eq!(parse_millis(&format_millis(millis)), Ok(millis));
    }
    if let Ok(days) = parse_date(input) {
        assert_eq!(parse_date(&format_date(days)), Ok(days));
    }
});
