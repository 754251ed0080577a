//! Joining the shards of one sweep (`judgeq tasks merge DIR...`): the journals of runs made
//! with `--shard I/N` become one journal, from which the same tables as a single run follow.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::tasks::journal::{self, RunHeader, SampleResult, Shard, header_difference};
use crate::tasks::run_error::RunError;

/// A merged sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The sweep's header, as a whole run (shard `0/1`).
    pub header: RunHeader,
    /// Every finished sample of every shard, in index order.
    pub results: Vec<SampleResult>,
    /// Shards of the sweep that were not given.
    pub missing_shards: Vec<Shard>,
    /// Samples of the sweep that no given shard has finished.
    pub missing_samples: usize,
}

/// Reads the journals in `dirs` and joins them. They must be distinct shards of one sweep
/// (same task set, model, soft tokens, methods, budgets and shard count).
pub fn merge(dirs: &[PathBuf]) -> Result<Merged, RunError> {
    let Some(first_dir) = dirs.first() else {
        return Err(RunError::Merge("no run folders given".into()));
    };
    let (first, _) = journal::read(first_dir)?;
    let mut seen: BTreeMap<usize, PathBuf> = BTreeMap::new();
    let mut results: BTreeMap<usize, SampleResult> = BTreeMap::new();
    for dir in dirs {
        let (header, done) = journal::read(dir)?;
        if !header.same_sweep(&first) {
            return Err(RunError::Merge(format!(
                "{} and {} are not shards of one sweep ({} differ)",
                first_dir.display(),
                dir.display(),
                header_difference(&first, &header)
            )));
        }
        if header.shard.count != first.shard.count {
            return Err(RunError::Merge(format!(
                "{} was split into {} shards but {} into {}",
                first_dir.display(),
                first.shard.count,
                dir.display(),
                header.shard.count
            )));
        }
        if let Some(earlier) = seen.insert(header.shard.index, dir.clone()) {
            return Err(RunError::Merge(format!(
                "{} and {} are both shard {}",
                earlier.display(),
                dir.display(),
                header.shard
            )));
        }
        for result in done {
            if !header.shard.holds(result.index) {
                return Err(RunError::Merge(format!(
                    "{} holds sample {} which is not in its shard {}",
                    dir.display(),
                    result.index,
                    header.shard
                )));
            }
            results.insert(result.index, result);
        }
    }
    let count = first.shard.count;
    let missing_shards = (0..count)
        .filter(|i| !seen.contains_key(i))
        .map(|index| Shard { index, count })
        .collect();
    let header = RunHeader {
        shard: Shard::WHOLE,
        ..first
    };
    let missing_samples = header.samples.saturating_sub(results.len());
    Ok(Merged {
        header,
        results: results.into_values().collect(),
        missing_shards,
        missing_samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::journal::Journal;
    use crate::tasks::journal::tests::{header, result};
    use crate::tasks::outputs::write_outputs;

    /// Writes a run of `shard` holding `indices` into a new folder.
    fn run_folder(shard: Shard, indices: &[usize]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), header(shard), false).unwrap();
        for &i in indices {
            journal.append(result(i)).unwrap();
        }
        dir
    }

    /// Every file the outputs write, by relative path.
    fn files(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().unwrap() != journal::JOURNAL_FILE {
                    let rel = path.strip_prefix(dir).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn merged_shards_give_the_tables_of_one_run() {
        let whole = run_folder(Shard::WHOLE, &[0, 1, 2, 3, 4]);
        let shard0 = run_folder(Shard { index: 0, count: 2 }, &[0, 2, 4]);
        let shard1 = run_folder(Shard { index: 1, count: 2 }, &[1, 3]);
        let merged = merge(&[shard1.path().to_path_buf(), shard0.path().to_path_buf()]).unwrap();
        assert!(merged.missing_shards.is_empty());
        assert_eq!(merged.missing_samples, 0);
        let (whole_header, whole_results) = journal::read(whole.path()).unwrap();
        assert_eq!(merged.header, whole_header);
        assert_eq!(merged.results, whole_results);

        let out_whole = tempfile::tempdir().unwrap();
        let out_merged = tempfile::tempdir().unwrap();
        write_outputs(out_whole.path(), &whole_header, &whole_results).unwrap();
        write_outputs(out_merged.path(), &merged.header, &merged.results).unwrap();
        let (a, b) = (files(out_whole.path()), files(out_merged.path()));
        assert!(a.len() > 4, "{:?}", a.keys());
        assert_eq!(a, b);
    }

    #[test]
    fn merging_refuses_what_is_not_one_sweep() {
        let shard0 = run_folder(Shard { index: 0, count: 2 }, &[0]);
        let again = run_folder(Shard { index: 0, count: 2 }, &[2]);
        let err = merge(&[shard0.path().to_path_buf(), again.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("both shard 0/2"), "{err}");

        let three = run_folder(Shard { index: 1, count: 3 }, &[1]);
        let err = merge(&[shard0.path().to_path_buf(), three.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("split into 2 shards"), "{err}");

        let other = tempfile::tempdir().unwrap();
        let mut other_header = header(Shard { index: 1, count: 2 });
        other_header.task_set = "ruler".into();
        Journal::create(other.path(), other_header, false).unwrap();
        let err = merge(&[shard0.path().to_path_buf(), other.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("task_set differ"), "{err}");

        let half = merge(&[shard0.path().to_path_buf()]).unwrap();
        assert_eq!(half.missing_shards, vec![Shard { index: 1, count: 2 }]);
        assert_eq!(half.missing_samples, 4);
    }
}
