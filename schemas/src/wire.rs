//! The Confluent wire format: `0x00`, a big-endian 32-bit schema id, then the Avro binary body.

pub const MAGIC_BYTE: u8 = 0;
const HEADER_LEN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("record of {0} bytes is shorter than the 5-byte header")]
    TooShort(usize),
    #[error("magic byte is {0:#04x}, expected 0x00")]
    MagicByte(u8),
}

pub fn frame(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(HEADER_LEN + body.len());
    framed.push(MAGIC_BYTE);
    framed.extend_from_slice(&schema_id.to_be_bytes());
    framed.extend_from_slice(body);
    framed
}

/// Splits a framed record into its schema id and Avro body.
pub fn unframe(record: &[u8]) -> Result<(u32, &[u8]), FramingError> {
    let Some((header, body)) = record.split_first_chunk::<HEADER_LEN>() else {
        return Err(FramingError::TooShort(record.len()));
    };
    if header[0] != MAGIC_BYTE {
        return Err(FramingError::MagicByte(header[0]));
    }
    Ok((u32::from_be_bytes([header[1], header[2], header[3], header[4]]), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_headers_are_refused() {
        let framed = frame(0x0102_0304, b"body");
        assert_eq!(framed[..5], [0, 1, 2, 3, 4]);
        assert_eq!(unframe(&framed), Ok((0x0102_0304, &b"body"[..])));
        assert_eq!(unframe(&[0, 1]), Err(FramingError::TooShort(2)));
        assert_eq!(unframe(&[7, 0, 0, 0, 1]), Err(FramingError::MagicByte(7)));
    }
}
