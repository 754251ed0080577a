//! Drawing pieces that know nothing about the app's state.

pub mod colour_bar;
pub mod document_view;
pub mod heatmap;
pub mod key_strip;
pub mod mark_bands;
pub mod needle_grid;
pub mod overview_grid;
pub mod score_profile;
