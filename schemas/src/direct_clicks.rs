//! Clicks of the latest `LinkClicked` schema, read and written straight from and to their Avro
//! binary encoding.
//!
//! Nearly every record in the log is a click. apache-avro's serde reader walks the schema for every
//! field and fills a zeroed buffer for every string; reading clicks here instead takes a sixth off
//! the projector's read path (4,400 → 3,660 instructions per event, callgrind, BENCHMARKS.md). Its
//! writer looks up every field by name and needs the click copied into a record struct first;
//! writing here saves that on every redirect that records a click.
//!
//! This module handles exactly one layout — v2's eleven fields: a string, a long, eight nullable
//! strings, a nullable boolean — and is used only when the latest schema has that layout ([`fits`]). Whatever [`read_fields`] does not
//! accept goes to apache-avro, which stays the reference: its answer, error or not, is the answer.
//! Property tests hold the two to the same result on arbitrary clicks and on damaged records, and
//! [`write`] to the same bytes.

use apache_avro::Schema;

use kurz_domain::{ClickFields, ClickText, CodeRef, LinkClicked, Timestamp};

/// The fields of `LinkClicked` this reader knows, in order: the layout it checks the schema for.
const FIELDS: [(&str, Kind); 11] = [
    ("code", Kind::String),
    ("clicked_at", Kind::Long),
    ("referrer", Kind::NullableString),
    ("user_agent", Kind::NullableString),
    ("visitor_id", Kind::NullableString),
    ("event_id", Kind::NullableString),
    ("language", Kind::NullableString),
    ("country", Kind::NullableString),
    ("region", Kind::NullableString),
    ("city", Kind::NullableString),
    ("bot", Kind::NullableBoolean),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Long,
    NullableString,
    NullableBoolean,
}

/// Whether records of `schema` have the layout [`read_fields`] decodes.
pub fn fits(schema: &Schema) -> bool {
    let Schema::Record(record) = schema else { return false };
    record.fields.len() == FIELDS.len()
        && record
            .fields
            .iter()
            .zip(FIELDS)
            .all(|(field, (name, kind))| field.name == name && kind_of(&field.schema) == Some(kind))
}

/// The click in `body`, its texts borrowed from it, or `None` if it is not a well-formed record of
/// this layout or its code is not a code (the caller then asks apache-avro, for the error or for an
/// encoding this reader does not take).
pub fn read_fields(body: &[u8]) -> Option<ClickFields<'_>> {
    let mut input = body;
    let click = ClickFields {
        code: CodeRef::parse(text(&mut input).ok()?).ok()?,
        clicked_at: Timestamp::from_millis(long(&mut input).ok()?),
        referrer: nullable_string(&mut input).ok()?,
        user_agent: nullable_string(&mut input).ok()?,
        visitor_id: nullable_string(&mut input).ok()?,
        event_id: nullable_string(&mut input).ok()?,
        language: nullable_string(&mut input).ok()?,
        country: nullable_string(&mut input).ok()?,
        region: nullable_string(&mut input).ok()?,
        city: nullable_string(&mut input).ok()?,
        bot: nullable_boolean(&mut input).ok()?,
    };
    input.is_empty().then_some(click)
}

/// Appends the Avro body of `click` in this layout to `out`.
pub fn write(click: &LinkClicked, out: &mut Vec<u8>) {
    let details = &click.details;
    let texts = [
        &click.referrer,
        &click.user_agent,
        &click.visitor_id,
        &details.event_id,
        &details.language,
        &details.country,
        &details.region,
        &details.city,
    ];
    // Each varint here takes at most ten bytes; reserving once spares the growth steps.
    out.reserve(
        click.code.as_str().len() + texts.iter().map(|t| t.as_ref().map_or(0, ClickText::len)).sum::<usize>() + 60,
    );
    write_string(out, click.code.as_str());
    write_long(out, click.clicked_at.as_millis());
    for text in texts {
        match text {
            None => write_long(out, 0),
            Some(text) => {
                write_long(out, 1);
                write_string(out, text);
            }
        }
    }
    match details.bot {
        None => write_long(out, 0),
        Some(bot) => {
            write_long(out, 1);
            out.push(u8::from(bot));
        }
    }
}

/// Bytes this reader does not decode.
struct Unreadable;

fn kind_of(schema: &Schema) -> Option<Kind> {
    match schema {
        Schema::String => Some(Kind::String),
        Schema::Long | Schema::TimestampMillis => Some(Kind::Long),
        Schema::Union(union) if matches!(union.variants(), [Schema::Null, Schema::String]) => {
            Some(Kind::NullableString)
        }
        Schema::Union(union) if matches!(union.variants(), [Schema::Null, Schema::Boolean]) => {
            Some(Kind::NullableBoolean)
        }
        _ => None,
    }
}

/// A zig-zag encoded variable-length long (Avro's `int` and `long`).
#[expect(clippy::inline_always, reason = "measured: a call per long cost more than its one-byte fast path")]
#[inline(always)]
fn long(input: &mut &[u8]) -> Result<i64, Unreadable> {
    // Most longs of a click are one byte: union branches, lengths of short strings.
    if let Some((&byte, rest)) = input.split_first()
        && byte < 0x80
    {
        *input = rest;
        return Ok(zig_zag(u64::from(byte)));
    }
    long_of_more_bytes(input)
}

#[inline(never)]
fn long_of_more_bytes(input: &mut &[u8]) -> Result<i64, Unreadable> {
    let mut value: u64 = 0;
    for (i, byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may hold only the top bit of a 64-bit value.
        if i == 9 && bits > 1 {
            return Err(Unreadable);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(zig_zag(value));
        }
    }
    Err(Unreadable)
}

#[expect(clippy::cast_possible_wrap, reason = "zig-zag decoding reinterprets the bits")]
fn zig_zag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

#[expect(clippy::cast_sign_loss, clippy::cast_possible_truncation, reason = "zig-zag encoding, seven bits a byte")]
fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut rest = ((value << 1) ^ (value >> 63)) as u64;
    while rest >= 0x80 {
        out.push(rest as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    write_long(out, i64::try_from(text.len()).expect("strings in memory are shorter than 2^63 bytes"));
    out.extend_from_slice(text.as_bytes());
}

/// The length from which `simdutf8` validates with SIMD instructions.
const SIMD_UTF8_FROM: usize = 64;

#[inline]
fn text<'a>(input: &mut &'a [u8]) -> Result<&'a str, Unreadable> {
    let len = usize::try_from(long(input)?).map_err(|_| Unreadable)?;
    let (bytes, rest) = input.split_at_checked(len).ok_or(Unreadable)?;
    // Click texts are nearly all ASCII. A short one is checked as ASCII a word at a time, as the
    // validation of UTF-8 walks short texts byte by byte; from 64 bytes (user agents) the validation's
    // SIMD path costs less than half the ASCII check (138 against 319 instructions for a 111-byte
    // agent, callgrind).
    let short_ascii = if bytes.len() < SIMD_UTF8_FROM { ascii::AsciiStr::from_ascii(bytes).ok() } else { None };
    let text = match short_ascii {
        Some(ascii) => ascii.as_str(),
        None => simdutf8::basic::from_utf8(bytes).map_err(|_| Unreadable)?,
    };
    *input = rest;
    Ok(text)
}

/// Avro's boolean is one byte, 0 or 1 (anything else is not a boolean).
#[expect(clippy::inline_always, reason = "as `nullable_string`: most clicks' `bot` is absent, a one-byte check")]
#[inline(always)]
fn nullable_boolean(input: &mut &[u8]) -> Result<Option<bool>, Unreadable> {
    if let Some((0, rest)) = input.split_first() {
        *input = rest;
        return Ok(None);
    }
    present_boolean(input)
}

#[inline(never)]
fn present_boolean(input: &mut &[u8]) -> Result<Option<bool>, Unreadable> {
    match long(input)? {
        0 => Ok(None),
        1 => {
            let (byte, rest) = input.split_first().ok_or(Unreadable)?;
            let value = match byte {
                0 => false,
                1 => true,
                _ => return Err(Unreadable),
            };
            *input = rest;
            Ok(Some(value))
        }
        _ => Err(Unreadable),
    }
}

/// Inlined for the absent text (one byte, 0): most of a click's optional fields are absent, and a
/// call for each cost more than the check (43 instructions an absent field, callgrind).
#[expect(clippy::inline_always, reason = "measured: five to eight absent fields per click")]
#[inline(always)]
fn nullable_string<'a>(input: &mut &'a [u8]) -> Result<Option<&'a str>, Unreadable> {
    if let Some((0, rest)) = input.split_first() {
        *input = rest;
        return Ok(None);
    }
    present_string(input)
}

#[inline(never)]
fn present_string<'a>(input: &mut &'a [u8]) -> Result<Option<&'a str>, Unreadable> {
    match long(input)? {
        0 => Ok(None),
        1 => text(input).map(Some),
        _ => Err(Unreadable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_encode_to_the_varints_they_decode_from() {
        for value in [0, -1, 1, 63, -64, 64, 150, i64::MAX, i64::MIN] {
            let mut bytes = Vec::new();
            write_long(&mut bytes, value);
            let mut input = bytes.as_slice();
            assert_eq!(long(&mut input).ok(), Some(value));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn longs_decode_zig_zag_varints_and_refuse_overlong_ones() {
        let cases: [(&[u8], Option<i64>); 7] = [
            (&[0x00], Some(0)),
            (&[0x01], Some(-1)),
            (&[0x02], Some(1)),
            (&[0xac, 0x02], Some(150)),
            (&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], Some(i64::MAX)),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], None),
            (&[0x80], None),
        ];
        for (bytes, expected) in cases {
            let mut input = bytes;
            assert_eq!(long(&mut input).ok(), expected, "{bytes:02x?}");
        }
    }
}
