//! A figure written as three files side by side: `NAME.svg`, `NAME.png` and the `NAME.json`
//! sidecar.

use std::path::{Path, PathBuf};

use crate::export::{
    ExportError, FigureSpec, Overwrite, check_outputs, figure_sidecar, render_png, render_svg,
    write_new,
};

/// Where the three files of a figure go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FigurePaths {
    /// The vector figure.
    pub svg: PathBuf,
    /// The raster figure.
    pub png: PathBuf,
    /// The JSON sidecar with the provenance.
    pub sidecar: PathBuf,
}

impl FigurePaths {
    /// The three paths for a figure saved as `path`; its extension, if any, is replaced
    /// (`out/layer12.png` gives `out/layer12.svg`, `.png` and `.json`).
    pub fn for_path(path: &Path) -> Result<Self, ExportError> {
        if path.file_stem().is_none_or(|stem| stem.is_empty()) {
            return Err(ExportError::InvalidFigure(format!(
                "{} does not name a file",
                path.display()
            )));
        }
        Ok(Self {
            svg: path.with_extension("svg"),
            png: path.with_extension("png"),
            sidecar: path.with_extension("json"),
        })
    }

    fn all(&self) -> [&Path; 3] {
        [&self.svg, &self.png, &self.sidecar]
    }
}

/// Renders `spec` as SVG, as PNG at `dpi` and as a sidecar, then writes the three files
/// beside `path` (see [`FigurePaths::for_path`]).
///
/// Everything is rendered and, unless `overwrite` is [`Overwrite::Replace`], every target
/// checked before the first byte is written: a refusal
/// ([`crate::export::WriteError::WouldOverwrite`]) or a rendering error leaves the directory
/// as it was. Each file is written atomically.
pub fn write_figure(
    path: &Path,
    spec: &FigureSpec,
    dpi: f32,
    overwrite: Overwrite,
) -> Result<FigurePaths, ExportError> {
    let paths = FigurePaths::for_path(path)?;
    let svg = render_svg(spec)?;
    let png = render_png(spec, dpi)?;
    write_rendered(&paths, &svg, &png, &figure_sidecar(spec), overwrite)?;
    Ok(paths)
}

/// Writes a rendered figure to `paths`: the SVG text, the PNG bytes and the sidecar as pretty
/// JSON. Every target is checked before the first byte is written.
pub(crate) fn write_rendered(
    paths: &FigurePaths,
    svg: &str,
    png: &[u8],
    sidecar: &impl serde::Serialize,
    overwrite: Overwrite,
) -> Result<(), ExportError> {
    let mut sidecar = serde_json::to_vec_pretty(sidecar).map_err(|source| ExportError::Json {
        path: paths.sidecar.clone(),
        source,
    })?;
    sidecar.push(b'\n');

    let dir = match paths.svg.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let names: Vec<String> = paths
        .all()
        .iter()
        .filter_map(|p| p.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    check_outputs(dir, &names, overwrite)?;
    write_new(&paths.svg, svg.as_bytes(), overwrite)?;
    write_new(&paths.png, png, overwrite)?;
    write_new(&paths.sidecar, &sidecar, overwrite)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support::figure_spec;
    use crate::export::{FigureSidecar, WriteError};

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_svg_png_and_sidecar_beside_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let spec = figure_spec(4, 8);
        let paths = write_figure(
            &dir.path().join("layer1.png"),
            &spec,
            150.0,
            Overwrite::Refuse,
        )
        .unwrap();
        assert_eq!(
            names(dir.path()),
            ["layer1.json", "layer1.png", "layer1.svg"]
        );
        assert_eq!(
            std::fs::read_to_string(&paths.svg).unwrap(),
            render_svg(&spec).unwrap()
        );
        let png = image::open(&paths.png).unwrap();
        assert_eq!(png.width(), (180.0f32 / 25.4 * 150.0).round() as u32);
        let sidecar: FigureSidecar =
            serde_json::from_slice(&std::fs::read(&paths.sidecar).unwrap()).unwrap();
        assert_eq!(sidecar, FigureSidecar::new(&spec));
    }

    #[test]
    fn an_existing_file_blocks_all_three_unless_replacing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fig.json"), b"mine").unwrap();
        let spec = figure_spec(2, 8);
        let err =
            write_figure(&dir.path().join("fig"), &spec, 100.0, Overwrite::Refuse).unwrap_err();
        match err {
            ExportError::Write(WriteError::WouldOverwrite {
                names: existing, ..
            }) => {
                assert_eq!(existing, ["fig.json"])
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(names(dir.path()), ["fig.json"]);
        write_figure(&dir.path().join("fig"), &spec, 100.0, Overwrite::Replace).unwrap();
        assert_eq!(names(dir.path()), ["fig.json", "fig.png", "fig.svg"]);
    }

    #[test]
    fn a_bad_figure_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = figure_spec(2, 8);
        spec.keys.end = spec.keys.start;
        assert!(
            write_figure(&dir.path().join("fig.svg"), &spec, 300.0, Overwrite::Refuse).is_err()
        );
        assert!(
            write_figure(
                &dir.path().join("fig.svg"),
                &figure_spec(2, 8),
                1.0,
                Overwrite::Refuse
            )
            .is_err()
        );
        assert!(names(dir.path()).is_empty());
        assert!(FigurePaths::for_path(Path::new("/")).is_err());
    }
}
