//! Random needle keys and values (RULER's `numbers`, `words` and `uuids`), distinct samples,
//! and the per-sample seeds that make every sample depend only on the run's seed and its own
//! place in the grid.

use std::collections::HashMap;

use super::words::{ADJECTIVES, NOUNS};
use crate::rng::SplitMix64;

/// What a needle's key or value is made of (RULER's `type_needle_k` / `type_needle_v`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A 7-digit number.
    Numbers,
    /// An `adjective-noun` pair.
    Words,
    /// A version-4 UUID.
    Uuids,
}

impl Kind {
    /// The plural RULER's templates use (`numbers`, `words`, `uuids`).
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Self::Numbers => "numbers",
            Self::Words => "words",
            Self::Uuids => "uuids",
        }
    }

    /// One random key or value of this kind.
    pub(crate) fn draw(self, rng: &mut SplitMix64) -> String {
        match self {
            Self::Numbers => number(rng),
            Self::Words => adjective_noun(rng),
            Self::Uuids => uuid(rng),
        }
    }
}

/// A uniform 7-digit number (RULER's `generate_random_number`).
pub(crate) fn number(rng: &mut SplitMix64) -> String {
    (1_000_000 + rng.below(9_000_000)).to_string()
}

/// Adjective-noun pairs available to [`adjective_noun_at`].
pub(crate) const ADJECTIVE_NOUNS: usize = ADJECTIVES.len() * NOUNS.len();

/// The `index`-th `adjective-noun` pair (`index < ADJECTIVE_NOUNS`).
pub(crate) fn adjective_noun_at(index: usize) -> String {
    format!(
        "{}-{}",
        ADJECTIVES[index / NOUNS.len()],
        NOUNS[index % NOUNS.len()]
    )
}

/// A random `adjective-noun` key (RULER's `generate_random_word`).
pub(crate) fn adjective_noun(rng: &mut SplitMix64) -> String {
    adjective_noun_at(rng.below(ADJECTIVE_NOUNS))
}

/// A random version-4 UUID in the 8-4-4-4-12 lowercase hex form (RULER's `uuid.UUID(int=...,
/// version=4)`: 128 random bits with the version and variant bits set).
pub(crate) fn uuid(rng: &mut SplitMix64) -> String {
    let high = (rng.next_u64() & !0xF000) | 0x4000;
    let low = (rng.next_u64() & !(0b11 << 62)) | (0b10 << 62);
    let hex = format!("{high:016x}{low:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `k` distinct indices of `0..n` in random order (Python's `random.sample(range(n), k)`;
/// `k <= n`). Costs `O(k)` whatever `n` is.
pub(crate) fn sample_distinct(rng: &mut SplitMix64, n: usize, k: usize) -> Vec<usize> {
    let mut moved: HashMap<usize, usize> = HashMap::with_capacity(k);
    (0..k.min(n))
        .map(|i| {
            let j = i + rng.below(n - i);
            let at_j = moved.get(&j).copied().unwrap_or(j);
            let at_i = moved.get(&i).copied().unwrap_or(i);
            moved.insert(j, at_i);
            at_j
        })
        .collect()
}

/// The seed of one sample: a function of the run's `seed` and the sample's coordinates in the
/// grid (task, length, depth, sample number), so that a sample is the same whatever else the
/// run generates.
pub(crate) fn sample_seed(seed: u64, coordinates: &[u64]) -> u64 {
    coordinates
        .iter()
        .fold(seed, |acc, &c| SplitMix64::stream(acc, c).next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_their_forms() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..200 {
            let n = number(&mut rng);
            assert!(n.len() == 7 && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'));
            let u = uuid(&mut rng);
            let groups: Vec<&str> = u.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(
                u.bytes()
                    .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert!(groups[2].starts_with('4'), "{u}");
            assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"), "{u}");
            let w = adjective_noun(&mut rng);
            let (adjective, noun) = w.split_once('-').unwrap();
            assert!(
                ADJECTIVES.contains(&adjective) && NOUNS.contains(&noun),
                "{w}"
            );
        }
        assert_eq!(
            adjective_noun_at(0),
            format!("{}-{}", ADJECTIVES[0], NOUNS[0])
        );
        assert_eq!(
            adjective_noun_at(ADJECTIVE_NOUNS - 1),
            format!(
                "{}-{}",
                ADJECTIVES[ADJECTIVES.len() - 1],
                NOUNS[NOUNS.len() - 1]
            )
        );
    }

    #[test]
    fn samples_are_distinct_and_cover_the_range() {
        let mut rng = SplitMix64::new(9);
        let mut seen = [0usize; 10];
        for _ in 0..2000 {
            let s = sample_distinct(&mut rng, 10, 3);
            assert_eq!(s.len(), 3);
            assert!(s[0] != s[1] && s[1] != s[2] && s[0] != s[2]);
            for i in s {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| (500..700).contains(&c)), "{seen:?}");
        let mut all = sample_distinct(&mut rng, 6, 6);
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4, 5]);
        assert_eq!(sample_distinct(&mut rng, 1_000_000_000, 2).len(), 2);
    }

    #[test]
    fn sample_seeds_depend_on_every_coordinate() {
        let base = sample_seed(1, &[2, 3]);
        assert_eq!(base, sample_seed(1, &[2, 3]));
        assert_ne!(base, sample_seed(2, &[2, 3]));
        assert_ne!(base, sample_seed(1, &[3, 2]));
        assert_ne!(base, sample_seed(1, &[2, 4]));
    }
}
