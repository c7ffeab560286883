//! QR codes of short URLs, as PNG or SVG. The `qrcode` crate encodes; this module only lays the
//! modules out on a canvas of the asked size.

use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;

/// The largest image drawn: a PNG of it is at most 125 KB before compression (one bit a pixel).
pub const MAX_SIZE: u32 = 1000;
pub const MIN_SIZE: u32 = 50;
pub const MAX_MARGIN: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Svg,
}

/// `?format=png|svg&size=&margin=`: the image's side and its light border, in pixels.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `png` (the default) or `svg`.
    #[param(required = false, inline)]
    pub format: Format,
    /// The image's side in pixels (default 300).
    #[param(required = false, minimum = 50, maximum = 1000)]
    pub size: u32,
    /// The light border in pixels (default 16); the code needs room inside it.
    #[param(required = false, minimum = 0, maximum = 200)]
    pub margin: u32,
}

impl Default for QrQuery {
    fn default() -> Self {
        // A border of at least four modules (the standard's quiet zone) lets every reader find
        // the code on any background.
        Self { format: Format::Png, size: 300, margin: 16 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    #[error("size must be between {MIN_SIZE} and {MAX_SIZE} pixels")]
    Size,
    #[error("margin must be at most {MAX_MARGIN} pixels")]
    Margin,
    #[error("a {size}-pixel image with a {margin}-pixel margin has no room for this code's {modules} modules")]
    NoRoom { size: u32, margin: u32, modules: u32 },
    #[error("the short URL is too long for a QR code")]
    TooLong,
}

impl QrError {
    /// The query parameter at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Size | Self::NoRoom { .. } => "size",
            Self::Margin => "margin",
            Self::TooLong => "code",
        }
    }
}

/// The code's modules, placed on a square canvas of `size` pixels.
#[derive(Debug)]
pub struct Layout {
    size: u32,
    /// Pixels from the edge to the first module (the margin, plus what whole modules leave over).
    offset: u32,
    module: u32,
    modules: u32,
    dark: Vec<bool>,
}

impl QrQuery {
    /// The size and margin within their ranges (whether the code fits needs its URL: [`Layout::new`]).
    pub fn check(&self) -> Result<(), QrError> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return Err(QrError::Size);
        }
        if self.margin > MAX_MARGIN {
            return Err(QrError::Margin);
        }
        Ok(())
    }
}

impl Layout {
    pub fn new(url: &str, query: &QrQuery) -> Result<Self, QrError> {
        query.check()?;
        let code = QrCode::with_error_correction_level(url, EcLevel::M).map_err(|_| QrError::TooLong)?;
        let modules = u32::try_from(code.width()).map_err(|_| QrError::TooLong)?;
        let room = query.size.saturating_sub(2 * query.margin);
        let module = room / modules;
        if module == 0 {
            return Err(QrError::NoRoom { size: query.size, margin: query.margin, modules });
        }
        let offset = (query.size - module * modules) / 2;
        let dark = code.to_colors().into_iter().map(|color| color == Color::Dark).collect();
        Ok(Self { size: query.size, offset, module, modules, dark })
    }

    fn is_dark(&self, x: u32, y: u32) -> bool {
        self.dark[(y * self.modules + x) as usize]
    }

    /// A one-bit greyscale PNG.
    pub fn png(&self) -> Vec<u8> {
        let row_bytes = self.size.div_ceil(8) as usize;
        let mut pixels = vec![0xff_u8; row_bytes * self.size as usize];
        let end = self.offset + self.module * self.modules;
        for y in self.offset..end {
            let row = &mut pixels[y as usize * row_bytes..][..row_bytes];
            for x in self.offset..end {
                if self.is_dark((x - self.offset) / self.module, (y - self.offset) / self.module) {
                    row[x as usize / 8] &= !(0x80 >> (x % 8));
                }
            }
        }
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, self.size, self.size);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header().expect("a PNG header is written to memory");
        writer.write_image_data(&pixels).expect("the image fits its header");
        writer.finish().expect("a PNG is finished in memory");
        png
    }

    /// An SVG of one path, in module units scaled to `size` pixels.
    pub fn svg(&self) -> String {
        use std::fmt::Write as _;
        let mut path = String::new();
        for y in 0..self.modules {
            for x in 0..self.modules {
                if self.is_dark(x, y) {
                    let _ = write!(path, "M{x} {y}h1v1h-1z");
                }
            }
        }
        let offset = f64::from(self.offset) / f64::from(self.module);
        let side = f64::from(self.size) / f64::from(self.module);
        format!(
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" "#,
                r#"viewBox="-{offset} -{offset} {side} {side}" shape-rendering="crispEdges">"#,
                r##"<rect x="-{offset}" y="-{offset}" width="{side}" height="{side}" fill="#fff"/>"##,
                r##"<path fill="#000" d="{path}"/></svg>"##
            ),
            size = self.size,
            offset = offset,
            side = side,
            path = path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_before_drawing() {
        let url = "https://kurz.example/abc";
        let query = |size, margin| QrQuery { format: Format::Png, size, margin };
        assert_eq!(Layout::new(url, &query(49, 0)).expect_err("refused"), QrError::Size);
        assert_eq!(Layout::new(url, &query(1001, 0)).expect_err("refused"), QrError::Size);
        assert_eq!(Layout::new(url, &query(300, 201)).expect_err("refused"), QrError::Margin);
        assert!(matches!(Layout::new(url, &query(50, 20)).expect_err("refused"), QrError::NoRoom { .. }));
        assert_eq!(Layout::new(&"x".repeat(4000), &query(300, 0)).expect_err("refused"), QrError::TooLong);
    }

    #[test]
    fn the_modules_are_centred_in_whole_pixels() {
        let layout = Layout::new("https://kurz.example/abc", &QrQuery::default()).expect("fits");
        assert_eq!(layout.modules, 25);
        assert_eq!(layout.module, (300 - 32) / 25);
        assert_eq!(layout.offset, (300 - layout.module * 25) / 2);
    }
}
