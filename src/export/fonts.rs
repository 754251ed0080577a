//! The fonts of exported figures: egui's bundled fonts loaded into resvg, so that figures
//! measure and draw their text the same on every machine, with or without system fonts.

use std::sync::{Arc, OnceLock};

use resvg::usvg;

/// A font database with egui's bundled fonts: Ubuntu Light as the sans-serif family and Hack
/// as the monospace family. Built once.
pub(crate) fn figure_fontdb() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_font_data(epaint_default_fonts::UBUNTU_LIGHT.to_vec());
            db.load_font_data(epaint_default_fonts::HACK_REGULAR.to_vec());
            let family = |i: usize| {
                db.faces()
                    .nth(i)
                    .and_then(|f| f.families.first())
                    .map(|(name, _)| name.clone())
            };
            let (sans, mono) = (family(0), family(1));
            if let Some(sans) = sans {
                db.set_sans_serif_family(sans);
            }
            if let Some(mono) = mono {
                db.set_monospace_family(mono);
            }
            Arc::new(db)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_fonts_are_found_by_the_names_the_svg_uses() {
        let db = figure_fontdb();
        let families: Vec<String> = db
            .faces()
            .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
            .collect();
        assert!(
            families.iter().any(|f| f.starts_with("Ubuntu")),
            "{families:?}"
        );
        assert!(families.iter().any(|f| f == "Hack"), "{families:?}");
    }
}
