//! The explorer's panels: each draws one area from the state and the session view and
//! records commands for side effects.

pub mod compare_panel;
pub mod decode_panel;
pub mod document_panel;
pub mod find_bar;
pub mod load_panel;
pub mod policy_panel;
pub mod source_panels;
pub mod source_toggles;
pub mod task_figure_window;
pub mod toolbar;
