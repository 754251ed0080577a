//! Encoding 8-bit RGB pixels as PNG: the heatmaps embedded in SVG figures and the rasterised
//! PNG figures alike.

use crate::export::ExportError;

/// Encodes 8-bit RGB pixels as PNG, recording `dpi` when given.
pub(crate) fn encode_rgb(
    width: usize,
    height: usize,
    rgb: &[u8],
    dpi: Option<f32>,
) -> Result<Vec<u8>, ExportError> {
    let render_error =
        |e: png::EncodingError| ExportError::Render(format!("PNG encoding failed: {e}"));
    let (w, h) = (to_u32(width)?, to_u32(height)?);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        if let Some(dpi) = dpi {
            let per_metre = (dpi / 0.0254).round() as u32;
            encoder.set_pixel_dims(Some(png::PixelDimensions {
                xppu: per_metre,
                yppu: per_metre,
                unit: png::Unit::Meter,
            }));
        }
        let mut writer = encoder.write_header().map_err(render_error)?;
        writer.write_image_data(rgb).map_err(render_error)?;
        writer.finish().map_err(render_error)?;
    }
    Ok(out)
}

fn to_u32(n: usize) -> Result<u32, ExportError> {
    u32::try_from(n)
        .map_err(|_| ExportError::Render(format!("an image side of {n} pixels is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_and_resolution_survive_a_decode() {
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 13) as u8).collect();
        let png = encode_rgb(3, 2, &rgb, Some(300.0)).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (3, 2));
        assert_eq!(decoded.into_raw(), rgb);
        let reader = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        let dims = reader.info().pixel_dims.unwrap();
        // 300 dots per inch is 300 / 0.0254 = 11811.02 dots per metre.
        assert_eq!(
            (dims.xppu, dims.yppu, dims.unit),
            (11811, 11811, png::Unit::Meter)
        );
        let plain = encode_rgb(1, 1, &[1, 2, 3], None).unwrap();
        let reader = png::Decoder::new(std::io::Cursor::new(&plain))
            .read_info()
            .unwrap();
        assert!(reader.info().pixel_dims.is_none());
    }

    #[test]
    fn a_short_pixel_buffer_is_an_error() {
        assert!(encode_rgb(2, 2, &[0; 6], None).is_err());
    }
}
