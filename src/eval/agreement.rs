//! How an answer decoded under eviction compares with the full-cache answer.

use serde::Serialize;

/// Agreement of two token sequences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Agreement {
    /// The two answers are the same token for token.
    pub exact: bool,
    /// Number of leading tokens the two share.
    pub matched_prefix: usize,
}

/// Compares `answer` (decoded under eviction) with `reference` (full cache).
pub fn agreement(reference: &[u32], answer: &[u32]) -> Agreement {
    let matched_prefix = reference
        .iter()
        .zip(answer)
        .take_while(|(a, b)| a == b)
        .count();
    Agreement {
        exact: reference == answer,
        matched_prefix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_exact_match() {
        assert_eq!(
            agreement(&[1, 2, 3], &[1, 2, 3]),
            Agreement {
                exact: true,
                matched_prefix: 3
            }
        );
        assert_eq!(
            agreement(&[1, 2, 3], &[1, 2, 4, 5]),
            Agreement {
                exact: false,
                matched_prefix: 2
            }
        );
        assert_eq!(
            agreement(&[1, 2], &[1, 2, 3]),
            Agreement {
                exact: false,
                matched_prefix: 2
            }
        );
        assert!(agreement(&[], &[]).exact);
        assert_eq!(agreement(&[7], &[8]).matched_prefix, 0);
    }
}
