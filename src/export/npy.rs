//! NumPy `.npy` files: f32 arrays and u8 keep masks, little-endian, C order.

use std::io::Write;
use std::path::Path;

use ndarray::{ArrayBase, Data, Dimension};
use ndarray_npy::{WritableElement, WriteNpyError, WriteNpyExt};

use crate::attention::KeepMask;
use crate::export::{ExportError, Overwrite, write_new_with};

/// Writes `array` to `path` as `.npy` in C order (`fortran_order: False`), atomically.
///
/// f32 arrays get `descr '<f4'` and u8 arrays `'|u1'` on every little-endian machine.
pub fn write_array<A, S, D>(
    path: &Path,
    array: &ArrayBase<S, D>,
    overwrite: Overwrite,
) -> Result<(), ExportError>
where
    A: WritableElement + Clone,
    S: Data<Elem = A>,
    D: Dimension,
{
    write_new_with(path, overwrite, |out| {
        encode(array, out).map_err(|source| ExportError::Npy {
            path: path.to_path_buf(),
            source,
        })
    })
}

/// Writes a keep mask as a u8 `.npy` array (1 = kept, 0 = evicted), atomically.
pub fn write_mask(path: &Path, mask: &KeepMask, overwrite: Overwrite) -> Result<(), ExportError> {
    write_array(path, &mask_as_u8(mask), overwrite)
}

/// A keep mask as the u8 array that goes into the file.
pub(crate) fn mask_as_u8(mask: &KeepMask) -> ndarray::Array3<u8> {
    mask.mapv(u8::from)
}

/// Encodes `array` as `.npy` into `out`, copying it to C order first when it is not already.
fn encode<A, S, D, W>(array: &ArrayBase<S, D>, out: W) -> Result<(), WriteNpyError>
where
    A: WritableElement + Clone,
    S: Data<Elem = A>,
    D: Dimension,
    W: Write,
{
    array.as_standard_layout().write_npy(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::WriteError;
    use ndarray::{Array2, Array3, Array4, ShapeBuilder, array};
    use ndarray_npy::ReadNpyExt;

    /// Parses a version-1.0 `.npy` header by hand, following the NumPy format document, and
    /// returns (header dictionary text, offset of the data).
    fn parse_header_by_spec(bytes: &[u8]) -> (String, usize) {
        assert_eq!(&bytes[..6], b"\x93NUMPY", "magic string");
        assert_eq!((bytes[6], bytes[7]), (1, 0), "format version 1.0");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let data_start = 10 + header_len;
        assert_eq!(
            data_start % 64,
            0,
            "header padded to a multiple of 64 bytes"
        );
        assert_eq!(bytes[data_start - 1], b'\n', "header ends with a newline");
        let dict = std::str::from_utf8(&bytes[10..data_start])
            .unwrap()
            .trim_end()
            .to_owned();
        assert!(dict.is_ascii());
        (dict, data_start)
    }

    #[test]
    fn f32_header_and_data_follow_the_numpy_format() {
        let values = array![[1.5f32, -2.0, 0.25], [3.0, 1e-7, f32::MAX]];
        let mut bytes = Vec::new();
        encode(&values, &mut bytes).unwrap();
        let (dict, data_start) = parse_header_by_spec(&bytes);
        assert!(dict.starts_with('{') && dict.ends_with('}'), "{dict}");
        assert!(dict.contains("'descr': '<f4'"), "{dict}");
        assert!(dict.contains("'fortran_order': False"), "{dict}");
        assert!(dict.contains("'shape': (2, 3)"), "{dict}");
        let data = &bytes[data_start..];
        assert_eq!(data.len(), 6 * 4);
        let expected: Vec<u8> = [1.5f32, -2.0, 0.25, 3.0, 1e-7, f32::MAX]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(data, expected.as_slice(), "little-endian f32 in C order");
    }

    #[test]
    fn fortran_ordered_input_is_written_in_c_order() {
        let mut values = Array2::<f32>::zeros((2, 3).f());
        for ((i, j), v) in values.indexed_iter_mut() {
            *v = (10 * i + j) as f32;
        }
        let mut bytes = Vec::new();
        encode(&values, &mut bytes).unwrap();
        let (dict, data_start) = parse_header_by_spec(&bytes);
        assert!(dict.contains("'fortran_order': False"), "{dict}");
        let expected: Vec<u8> = [0f32, 1.0, 2.0, 10.0, 11.0, 12.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(&bytes[data_start..], expected.as_slice());
    }

    #[test]
    fn masks_are_u8_zero_or_one() {
        let mask: KeepMask =
            Array3::from_shape_vec((1, 2, 3), vec![true, false, true, false, false, true]).unwrap();
        let mut bytes = Vec::new();
        encode(&mask_as_u8(&mask), &mut bytes).unwrap();
        let (dict, data_start) = parse_header_by_spec(&bytes);
        assert!(dict.contains("'descr': '|u1'"), "{dict}");
        assert!(dict.contains("'shape': (1, 2, 3)"), "{dict}");
        assert_eq!(&bytes[data_start..], &[1, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn files_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let rows = Array4::from_shape_fn((2, 3, 4, 5), |(l, h, q, k)| {
            (l * 1000 + h * 100 + q * 10 + k) as f32 / 7.0
        });
        let path = dir.path().join("rows.npy");
        write_array(&path, &rows, Overwrite::Refuse).unwrap();
        let back = Array4::<f32>::read_npy(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(back, rows);

        let mask: KeepMask = Array3::from_shape_fn((2, 1, 5), |(l, _, k)| (l + k) % 2 == 0);
        let mask_path = dir.path().join("keep.npy");
        write_mask(&mask_path, &mask, Overwrite::Refuse).unwrap();
        let back = Array3::<u8>::read_npy(std::fs::File::open(&mask_path).unwrap()).unwrap();
        assert_eq!(back.mapv(|v| v == 1), mask);
        assert!(back.iter().all(|&v| v <= 1));

        assert!(matches!(
            write_mask(&mask_path, &mask, Overwrite::Refuse),
            Err(ExportError::Write(WriteError::Exists { .. }))
        ));
    }
}
