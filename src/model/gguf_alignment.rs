//! `general.alignment` of a GGUF file, read ahead of candle's parser: candle rounds the offset
//! of the tensor data up to a multiple of it and divides by zero when a file states 0.
//!
//! A forward walk over the metadata that only skips values. Anything it cannot walk (a short
//! file, an unknown value type) is left for candle's parser to report.

use std::io::{Read, Seek, SeekFrom};

/// GGUF value types (the file format's numbering).
const U8: u32 = 0;
const I8: u32 = 1;
const U16: u32 = 2;
const I16: u32 = 3;
const U32: u32 = 4;
const I32: u32 = 5;
const F32: u32 = 6;
const BOOL: u32 = 7;
const STRING: u32 = 8;
const ARRAY: u32 = 9;
const U64: u32 = 10;
const I64: u32 = 11;
const F64: u32 = 12;

/// Deepest nesting of arrays walked (candle refuses deeper ones).
const MAX_DEPTH: usize = 64;

/// The key candle reads the alignment from.
const ALIGNMENT_KEY: &[u8] = b"general.alignment";

/// The integer value of `general.alignment` when the metadata states one, read from the start
/// of `reader`; `None` when it is absent, not an integer, or the metadata cannot be walked.
pub(crate) fn stated_alignment<R: Read + Seek>(reader: &mut R) -> Option<i128> {
    reader.seek(SeekFrom::Start(0)).ok()?;
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).ok()?;
    let wide = match read_u32(reader)? {
        1 => false,
        2 | 3 => true,
        _ => return None,
    };
    let _tensors = read_length(reader, wide)?;
    let entries = read_length(reader, wide)?;
    for _ in 0..entries {
        let key_len = read_length(reader, wide)?;
        let is_alignment = if key_len == ALIGNMENT_KEY.len() as u64 {
            let mut key = [0u8; ALIGNMENT_KEY.len()];
            reader.read_exact(&mut key).ok()?;
            key == ALIGNMENT_KEY
        } else {
            skip(reader, key_len)?;
            false
        };
        let kind = read_u32(reader)?;
        if is_alignment {
            return integer(reader, kind);
        }
        skip_value(reader, kind, wide, 0)?;
    }
    None
}

/// Reads an integer value of type `kind`; `None` for other types.
fn integer<R: Read>(reader: &mut R, kind: u32) -> Option<i128> {
    let mut bytes = [0u8; 8];
    let size = fixed_size(kind).filter(|_| !matches!(kind, F32 | F64 | BOOL))?;
    reader.read_exact(&mut bytes[..size as usize]).ok()?;
    let unsigned = u64::from_le_bytes(bytes);
    let signed = |bits: u32| {
        let shift = 64 - bits;
        i128::from(((unsigned << shift) as i64) >> shift)
    };
    Some(match kind {
        I8 => signed(8),
        I16 => signed(16),
        I32 => signed(32),
        I64 => signed(64),
        _ => i128::from(unsigned),
    })
}

/// Skips one value of type `kind`.
fn skip_value<R: Read + Seek>(reader: &mut R, kind: u32, wide: bool, depth: usize) -> Option<()> {
    if let Some(size) = fixed_size(kind) {
        return skip(reader, size);
    }
    match kind {
        STRING => {
            let len = read_length(reader, wide)?;
            skip(reader, len)
        }
        ARRAY if depth < MAX_DEPTH => {
            let element = read_u32(reader)?;
            let count = read_length(reader, wide)?;
            if let Some(size) = fixed_size(element) {
                return skip(reader, count.checked_mul(size)?);
            }
            for _ in 0..count {
                skip_value(reader, element, wide, depth + 1)?;
            }
            Some(())
        }
        _ => None,
    }
}

/// Bytes of a value of fixed size, `None` for strings, arrays and unknown types.
fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        U8 | I8 | BOOL => Some(1),
        U16 | I16 => Some(2),
        U32 | I32 | F32 => Some(4),
        U64 | I64 | F64 => Some(8),
        _ => None,
    }
}

/// Moves `bytes` forward; fails at the end of the data, so that a walk over a short file stops.
fn skip<R: Read + Seek>(reader: &mut R, bytes: u64) -> Option<()> {
    let offset = i64::try_from(bytes).ok()?;
    let at = reader.seek(SeekFrom::Current(offset)).ok()?;
    let end = reader.seek(SeekFrom::End(0)).ok()?;
    (at <= end).then_some(())?;
    reader.seek(SeekFrom::Start(at)).ok().map(drop)
}

fn read_u32<R: Read>(reader: &mut R) -> Option<u32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes).ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// A length or count: 32 bits in GGUF version 1, 64 bits after.
fn read_length<R: Read>(reader: &mut R, wide: bool) -> Option<u64> {
    if !wide {
        return read_u32(reader).map(u64::from);
    }
    let mut bytes = [0u8; 8];
    reader.read_exact(&mut bytes).ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A GGUF v3 header with `entries` (key, type, value bytes) and no tensors.
    fn header(entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend((entries.len() as u64).to_le_bytes());
        for (key, kind, value) in entries {
            out.extend((key.len() as u64).to_le_bytes());
            out.extend(key.as_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(value);
        }
        out
    }

    fn string(text: &str) -> Vec<u8> {
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text.as_bytes());
        out
    }

    #[test]
    fn finds_the_alignment_after_values_of_every_shape() {
        let mut strings = STRING.to_le_bytes().to_vec();
        strings.extend(2u64.to_le_bytes());
        strings.extend(string("a"));
        strings.extend(string("bc"));
        let mut numbers = U16.to_le_bytes().to_vec();
        numbers.extend(3u64.to_le_bytes());
        numbers.extend([1, 0, 2, 0, 3, 0]);
        let bytes = header(&[
            ("general.name", STRING, string("tiny")),
            ("qwen2.block_count", U32, 1u32.to_le_bytes().to_vec()),
            ("tokens", ARRAY, strings),
            ("ids", ARRAY, numbers),
            ("eps", F32, 1e-5f32.to_le_bytes().to_vec()),
            ("general.alignment", I16, (-2i16).to_le_bytes().to_vec()),
        ]);
        assert_eq!(stated_alignment(&mut Cursor::new(bytes)), Some(-2));
        let bytes = header(&[("general.alignment", U64, 64u64.to_le_bytes().to_vec())]);
        assert_eq!(stated_alignment(&mut Cursor::new(bytes)), Some(64));
    }

    #[test]
    fn absent_odd_or_unwalkable_alignments_are_none() {
        let absent = header(&[("general.name", STRING, string("tiny"))]);
        assert_eq!(stated_alignment(&mut Cursor::new(absent)), None);
        let float = header(&[("general.alignment", F32, 32f32.to_le_bytes().to_vec())]);
        assert_eq!(stated_alignment(&mut Cursor::new(float)), None);
        // A string longer than the file: the walk stops instead of reading on.
        let mut long = header(&[("x", STRING, u64::MAX.to_le_bytes().to_vec())]);
        long.extend(b"general.alignment");
        assert_eq!(stated_alignment(&mut Cursor::new(long)), None);
        assert_eq!(stated_alignment(&mut Cursor::new(b"GG".to_vec())), None);
    }
}
