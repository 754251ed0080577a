//! Level of detail for long key axes: max-pooled copies of a queries × keys matrix.
//!
//! Level `l` pools `2^l` neighbouring keys into one column by their maximum, so a single strong
//! key (an attention sink, a needle) stays visible however far the view is zoomed out. The
//! panel picks the coarsest level whose columns are still no wider than one screen pixel and
//! uploads that level as textures of at most [`MAX_TILE_COLUMNS`] columns each.

use ndarray::{Array2, ArrayView2, Axis, s};

/// Widest texture a tile uses (well under every GPU's `max_texture_side`).
pub const MAX_TILE_COLUMNS: usize = 4096;

/// Halves the key axis, each output column the maximum of two input columns (the last one
/// alone when the count is odd).
pub fn halve_keys(matrix: ArrayView2<f32>) -> Array2<f32> {
    let (rows, cols) = matrix.dim();
    let out_cols = cols.div_ceil(2);
    let mut out = Array2::zeros((rows, out_cols));
    for (mut out_row, in_row) in out.outer_iter_mut().zip(matrix.outer_iter()) {
        for (c, value) in out_row.iter_mut().enumerate() {
            let a = in_row[2 * c];
            *value = match in_row.get(2 * c + 1) {
                Some(&b) => a.max(b),
                None => a,
            };
        }
    }
    out
}

/// The level whose columns cover at least `keys_per_pixel` keys: `ceil(log2(keys_per_pixel))`,
/// 0 when zoomed in past one key per pixel.
pub fn level_for(keys_per_pixel: f64) -> usize {
    if keys_per_pixel.is_nan() || keys_per_pixel <= 1.0 {
        0
    } else {
        keys_per_pixel.log2().ceil().min(63.0) as usize
    }
}

/// A matrix and all its max-pooled levels, down to one column (about twice the memory of the
/// matrix itself, built once per matrix).
#[derive(Debug)]
pub struct Pyramid {
    levels: Vec<Array2<f32>>,
}

impl Pyramid {
    /// Level 0 is `matrix` itself.
    pub fn new(matrix: Array2<f32>) -> Self {
        let top = level_for(matrix.ncols() as f64);
        let mut levels = Vec::with_capacity(top + 1);
        levels.push(matrix);
        while let Some(last) = levels.last()
            && last.ncols() > 1
        {
            let next = halve_keys(last.view());
            levels.push(next);
        }
        Self { levels }
    }

    /// The full-resolution matrix.
    pub fn base(&self) -> &Array2<f32> {
        &self.levels[0]
    }

    /// Number of keys at full resolution.
    pub fn keys(&self) -> usize {
        self.levels[0].ncols()
    }

    /// The coarsest level: one column for the whole axis.
    pub fn top_level(&self) -> usize {
        self.levels.len() - 1
    }

    /// Level `level`, clamped to [`Pyramid::top_level`].
    pub fn level(&self, level: usize) -> &Array2<f32> {
        &self.levels[level.min(self.top_level())]
    }
}

/// One texture's worth of columns of one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// First column of the level in this tile.
    pub first_column: usize,
    /// Columns in this tile.
    pub columns: usize,
}

impl Tile {
    /// The key range `[start, end)` this tile covers at `level` in an axis of `keys` keys.
    pub fn keys(&self, level: usize, keys: usize) -> (usize, usize) {
        let per_column = 1usize << level.min(63);
        let start = (self.first_column * per_column).min(keys);
        let end = ((self.first_column + self.columns) * per_column).min(keys);
        (start, end)
    }

    /// This tile's slice of a level matrix.
    pub fn slice<'a>(&self, level_matrix: &'a Array2<f32>) -> ArrayView2<'a, f32> {
        let end = (self.first_column + self.columns).min(level_matrix.len_of(Axis(1)));
        level_matrix.slice(s![.., self.first_column.min(end)..end])
    }
}

/// Splits `columns` columns into tiles of at most `max_columns`.
pub fn tiles(columns: usize, max_columns: usize) -> Vec<Tile> {
    let max_columns = max_columns.max(1);
    (0..columns.div_ceil(max_columns))
        .map(|i| {
            let first_column = i * max_columns;
            Tile {
                first_column,
                columns: max_columns.min(columns - first_column),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn halving_keeps_the_maximum_and_the_odd_tail() {
        let m = array![[1.0, 5.0, 2.0, 0.0, 7.0], [0.0, 0.0, 3.0, 4.0, 0.5]];
        assert_eq!(
            halve_keys(m.view()),
            array![[5.0, 2.0, 7.0], [0.0, 4.0, 0.5]]
        );
    }

    #[test]
    fn a_single_peak_survives_every_level() {
        let mut base = Array2::zeros((2, 8192));
        base[[1, 4097]] = 1.0;
        let pyramid = Pyramid::new(base);
        assert_eq!(pyramid.top_level(), 13);
        for level in 0..=13 {
            let m = pyramid.level(level);
            assert_eq!(m.ncols(), 8192usize.div_ceil(1 << level));
            let column = 4097 >> level;
            assert_eq!(m[[1, column]], 1.0, "level {level}");
            assert_eq!(m.sum(), 1.0, "level {level}");
        }
        assert_eq!(pyramid.level(40).ncols(), 1);
    }

    #[test]
    fn level_choice_never_magnifies_more_than_one_key_per_pixel() {
        assert_eq!(level_for(0.25), 0);
        assert_eq!(level_for(1.0), 0);
        assert_eq!(level_for(1.01), 1);
        assert_eq!(level_for(2.0), 1);
        assert_eq!(level_for(5.3), 3);
        assert_eq!(level_for(f64::NAN), 0);
    }

    #[test]
    fn tiles_cover_every_column_once_and_map_back_to_keys() {
        let t = tiles(10_000, 4096);
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().map(|t| t.columns).sum::<usize>(), 10_000);
        assert_eq!(
            t[2],
            Tile {
                first_column: 8192,
                columns: 1808
            }
        );
        // Level 2 of an axis of 39_999 keys has 10_000 columns; the last tile ends at the axis.
        assert_eq!(t[2].keys(2, 39_999), (32_768, 39_999));
        assert!(tiles(0, 4096).is_empty());
    }
}
