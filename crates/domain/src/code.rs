//! Short codes: the path segment of a short URL.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 64;

/// Words that collide with Kurz's own routes, or that users would mistake for them. Compared
/// case-insensitively so `Health` cannot shadow `/health` behind a case-folding proxy.
pub const RESERVED: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "batch",
    "docs",
    "export",
    "favicon",
    "health",
    "healthz",
    "import",
    "keys",
    "links",
    "login",
    "logout",
    "metrics",
    "openapi",
    "qr",
    "ready",
    "readyz",
    "robots",
    "static",
    "stats",
    "status",
    "swagger",
    "ui",
    "v1",
    "v2",
    "well-known",
    "www",
];

/// A short code: 3–64 characters of `[A-Za-z0-9_-]`, case-sensitive. Codes up to 24 bytes (all
/// generated ones) are stored inline: cloning one, as every click does, allocates nothing.
///
/// [`Code::parse`] checks the syntax every code ever issued has; [`Code::parse_alias`] adds the rule
/// for new custom aliases (no reserved word), so growing the reserved list later never makes stored
/// events unreadable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Code(CompactString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("must be {MIN_LEN} to {MAX_LEN} characters long, got {0}")]
    Length(usize),
    #[error("may contain only letters, digits, '_' and '-', found {0:?}")]
    Character(char),
    #[error("{0:?} is reserved")]
    Reserved(String),
}

impl Code {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        CodeRef::parse(input).map(CodeRef::to_code)
    }

    /// This code, borrowed.
    pub fn as_code_ref(&self) -> CodeRef<'_> {
        CodeRef(&self.0)
    }

    /// A code a user asks for as a custom alias.
    pub fn parse_alias(input: &str) -> Result<Self, CodeError> {
        let code = Self::parse(input)?;
        if is_reserved(input) {
            return Err(CodeError::Reserved(input.to_owned()));
        }
        Ok(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A code checked where it lies (in a log record's bytes), made a [`Code`] only where it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CodeRef<'a>(&'a str);

impl<'a> CodeRef<'a> {
    /// The syntax of [`Code::parse`].
    pub fn parse(input: &'a str) -> Result<Self, CodeError> {
        // Every click decoded from the log parses its code: a valid code is ASCII, so one pass over
        // its bytes settles it; anything else takes the character walk that names the error.
        if (MIN_LEN..=MAX_LEN).contains(&input.len()) && input.bytes().all(|b| CODE_BYTES[usize::from(b)]) {
            return Ok(Self(input));
        }
        let len = input.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(CodeError::Length(len));
        }
        if let Some(bad) = input.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
            return Err(CodeError::Character(bad));
        }
        Ok(Self(input))
    }

    pub fn as_str(self) -> &'a str {
        self.0
    }

    pub fn to_code(self) -> Code {
        Code(CompactString::from(self.0))
    }
}

/// Which bytes a code may hold (ASCII letters, digits, `_`, `-`), by byte: a lookup per byte.
const CODE_BYTES: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        #[expect(clippy::cast_possible_truncation, reason = "below 256")]
        let b = byte as u8;
        allowed[byte] = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        byte += 1;
    }
    allowed
};

pub fn is_reserved(input: &str) -> bool {
    RESERVED.iter().any(|word| word.eq_ignore_ascii_case(input))
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lets maps keyed by `Code` be searched with a plain `&str` (the hash is the string's).
impl std::borrow::Borrow<str> for Code {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_the_documented_alphabet_and_keeps_case() {
        let code = Code::parse("My_Link-42").expect("valid");
        assert_eq!(code.as_str(), "My_Link-42");
        assert_ne!(Code::parse("abc").expect("valid"), Code::parse("ABC").expect("valid"));
    }

    #[test]
    fn refuses_bad_lengths_characters_and_reserved_words() {
        assert_eq!(Code::parse("ab"), Err(CodeError::Length(2)));
        assert_eq!(Code::parse(&"a".repeat(65)), Err(CodeError::Length(65)));
        assert_eq!(Code::parse("a/bc"), Err(CodeError::Character('/')));
        assert_eq!(Code::parse("héllo"), Err(CodeError::Character('é')));
        assert_eq!(Code::parse("abc def"), Err(CodeError::Character(' ')));
        assert!(matches!(Code::parse_alias("health"), Err(CodeError::Reserved(_))));
        assert!(matches!(Code::parse_alias("METRICS"), Err(CodeError::Reserved(_))));
        assert!(Code::parse("health").is_ok(), "stored codes are read by syntax alone");
    }

    proptest! {
        #[test]
        fn every_string_of_the_alphabet_in_range_parses_unless_reserved(s in "[A-Za-z0-9_-]{3,64}") {
            prop_assert!(Code::parse(&s).is_ok());
            prop_assert_eq!(Code::parse_alias(&s).is_ok(), !is_reserved(&s));
        }

        #[test]
        fn parse_never_panics_and_accepted_codes_round_trip(s in "\\PC{0,80}") {
            if let Ok(code) = Code::parse(&s) {
                prop_assert_eq!(code.as_str(), s.as_str());
            }
        }
    }
}
