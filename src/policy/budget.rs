//! [`Budget`]: KV entries kept per layer and head, set against one prompt once.

use std::fmt;

use super::PolicyError;

/// A budget `B`: the KV entries kept per layer and head, window included (KVCache-Factory's
/// `max_capacity_prompt`), for one prompt of `n` tokens.
///
/// Made once, where a number enters (a `--budgets` value, the explorer's slider), and passed
/// on as is:
/// - `B = 0` cannot be made ([`PolicyError::ZeroBudget`]): a cache is never empty;
/// - `B ≥ n` keeps every entry, and the selection's note says so;
/// - below what a policy always keeps (its window) the policy keeps only the first `B` of those
///   entries, and its note says so (see [`super::Protected`]).
///
/// The number stays as asked ([`Budget::asked`]: notes, tables and file names show it);
/// [`Budget::entries`] is what one row can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    asked: usize,
    prompt_len: usize,
}

impl Budget {
    /// `asked` entries per layer and head over a prompt of `prompt_len` tokens.
    pub fn new(asked: usize, prompt_len: usize) -> Result<Self, PolicyError> {
        if asked == 0 {
            return Err(PolicyError::ZeroBudget);
        }
        if prompt_len == 0 {
            return Err(PolicyError::EmptyPrompt);
        }
        Ok(Self { asked, prompt_len })
    }

    /// The budget a control or a saved setting shows on a prompt of `prompt_len` tokens:
    /// `asked` brought within `1..=prompt_len` (at least 1 when the prompt is empty).
    pub fn clamped(asked: usize, prompt_len: usize) -> Self {
        Self {
            asked: asked.clamp(1, prompt_len.max(1)),
            prompt_len,
        }
    }

    /// Entries asked for per layer and head.
    pub fn asked(self) -> usize {
        self.asked
    }

    /// Tokens of the prompt the budget was set against.
    pub fn prompt_len(self) -> usize {
        self.prompt_len
    }

    /// Entries one row can keep: `min(B, n)`.
    pub fn entries(self) -> usize {
        self.asked.min(self.prompt_len)
    }

    /// Whether every entry is kept (`B ≥ n`).
    pub fn keeps_all(self) -> bool {
        self.asked >= self.prompt_len
    }

    /// The note every policy gives when the budget keeps all entries.
    pub(crate) fn note(self) -> Option<String> {
        self.keeps_all().then(|| {
            format!(
                "budget {} ≥ prompt length {}: every entry is kept",
                self.asked, self.prompt_len
            )
        })
    }

    /// Errors unless the budget was set against a prompt of `prompt_len` tokens.
    pub(crate) fn check_prompt(self, prompt_len: usize) -> Result<(), PolicyError> {
        if self.prompt_len == prompt_len {
            Ok(())
        } else {
            Err(PolicyError::OtherPrompt {
                budget: self.asked,
                set_for: self.prompt_len,
                prompt: prompt_len,
            })
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.asked)
    }
}
