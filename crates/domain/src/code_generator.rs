//! Generated short codes: unique by construction and not guessable from one another.
//!
//! A sequence number (leased in blocks from durable storage, so it never repeats) goes through a keyed
//! pseudo-random permutation of `[0, 62^7)` and is written in base62. A permutation maps distinct
//! sequence numbers to distinct codes, so uniqueness needs no lookup; without the key, the code after
//! `aZ3kQ9x` is as hard to predict as a random one.
//!
//! The permutation is an 8-round balanced Feistel network on 42 bits with SipHash-2-4 as its round
//! function, restricted to `[0, 62^7)` by cycle walking (re-encrypting values that land outside it,
//! which keeps it a bijection on the smaller domain).

use std::hash::Hasher;

use siphasher::sip::SipHasher24;

use crate::code::{Code, is_reserved};

pub const GENERATED_LEN: usize = 7;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^7: the number of distinct generated codes.
pub const CAPACITY: u64 = 3_521_614_606_208;
const HALF_BITS: u32 = 21;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const ROUNDS: u64 = 8;

/// The secret that makes generated codes unguessable. 16 bytes, kept out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeKey([u8; 16]);

impl CodeKey {
    pub const fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct CodeGenerator {
    key: CodeKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("sequence {0} is beyond the {CAPACITY} codes of length {GENERATED_LEN}")]
    Exhausted(u64),
    /// The permutation produced a reserved word; the caller moves on to the next sequence number.
    #[error("sequence {0} maps to a reserved word")]
    Reserved(u64),
}

impl CodeGenerator {
    pub fn new(key: CodeKey) -> Self {
        Self { key }
    }

    /// The code for one sequence number. Distinct numbers always give distinct codes.
    pub fn code_for(&self, sequence: u64) -> Result<Code, GenerateError> {
        if sequence >= CAPACITY {
            return Err(GenerateError::Exhausted(sequence));
        }
        let text = base62(self.permute(sequence));
        if is_reserved(&text) {
            return Err(GenerateError::Reserved(sequence));
        }
        Ok(Code::parse(&text).expect("seven base62 characters that are not reserved form a valid code"))
    }

    fn permute(&self, sequence: u64) -> u64 {
        let mut value = sequence;
        loop {
            value = self.feistel(value);
            if value < CAPACITY {
                return value;
            }
        }
    }

    fn feistel(&self, value: u64) -> u64 {
        let (mut left, mut right) = (value >> HALF_BITS, value & HALF_MASK);
        for round in 0..ROUNDS {
            let mixed = left ^ (self.round_function(round, right) & HALF_MASK);
            left = right;
            right = mixed;
        }
        (left << HALF_BITS) | right
    }

    fn round_function(&self, round: u64, half: u64) -> u64 {
        let mut hasher = SipHasher24::new_with_key(&self.key.0);
        hasher.write_u64(round);
        hasher.write_u64(half);
        hasher.finish()
    }
}

fn base62(mut value: u64) -> String {
    let mut digits = [b'0'; GENERATED_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn generator(seed: u8) -> CodeGenerator {
        CodeGenerator::new(CodeKey::new([seed; 16]))
    }

    fn code(generator: &CodeGenerator, sequence: u64) -> Option<String> {
        generator.code_for(sequence).ok().map(|code| code.as_str().to_owned())
    }

    #[test]
    fn codes_are_seven_base62_characters() {
        let generator = generator(1);
        for sequence in 0..1000 {
            if let Some(code) = code(&generator, sequence) {
                assert_eq!(code.len(), GENERATED_LEN);
                assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
            }
        }
    }

    #[test]
    fn a_dense_run_of_sequence_numbers_never_repeats_a_code() {
        let generator = generator(7);
        let codes: Vec<String> = (0..200_000).filter_map(|s| code(&generator, s)).collect();
        let distinct: HashSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
    }

    #[test]
    fn consecutive_codes_do_not_look_sequential() {
        // Adjacent sequence numbers should differ in most positions, as random codes would
        // (on average 7 * 61/62 positions), not just in the last one or two.
        let generator = generator(3);
        let codes: Vec<Vec<u8>> = (0..1000).filter_map(|s| code(&generator, s)).map(String::into_bytes).collect();
        let differing: usize =
            codes.windows(2).map(|pair| pair[0].iter().zip(&pair[1]).filter(|(a, b)| a != b).count()).sum();
        let mean = differing as f64 / (codes.len() - 1) as f64;
        assert!(mean > 6.0, "adjacent codes differ in {mean:.2} positions on average");
    }

    #[test]
    fn the_key_changes_every_code() {
        let (a, b) = (generator(1), generator(2));
        let same = (0..1000).filter(|&s| code(&a, s) == code(&b, s)).count();
        assert!(same <= 1, "{same} codes equal under two keys");
    }

    #[test]
    fn sequences_beyond_capacity_are_refused() {
        assert_eq!(generator(1).code_for(CAPACITY).map(|_| ()), Err(GenerateError::Exhausted(CAPACITY)));
    }

    proptest! {
        #[test]
        fn permutation_is_injective_on_its_domain(a in 0..CAPACITY, b in 0..CAPACITY) {
            let generator = generator(9);
            prop_assume!(a != b);
            prop_assert_ne!(generator.permute(a), generator.permute(b));
            prop_assert!(generator.permute(a) < CAPACITY);
        }
    }
}
