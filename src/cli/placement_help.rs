//! `--help` text of `--question-placement`, shared by `inspect`, `evict`, `eval` and `tasks`.

/// The one-line help.
pub const PLACEMENT_HELP: &str = "Where the question goes: end (after the document), start (before it) or after-eviction \
     (the document is scored and evicted alone, then the question is appended)";

/// The `--help` text: what each placement prefills, scores, evicts and decodes.
pub const PLACEMENT_LONG_HELP: &str = "Where the question goes, and whether eviction sees it.

end: the user turn is the document, a blank line and the question; the whole prompt is \
prefilled, scored and evicted (kvpress's layout).

start: the user turn is the question, a blank line and the document, so the question is far \
from the end; the whole prompt is prefilled, scored and evicted.

after-eviction: the prompt is rendered as for end and cut before the question's first token. \
Only the part before the cut (chat scaffolding, the document, the blank line) is prefilled and \
scored: the last window, the soft tokens, the accumulated attention and every captured input \
see the document alone, and keep masks cover its keys. The question, the end of the turn, the \
assistant's header and any answer prefix are then fed under the kept cache (never evicted) and \
the answer is decoded. The oracle is the answer decoded with the full cache of the whole \
prompt; its tokens' raw attention over the document part's keys is what eviction could have \
kept, and every metric counts those keys only.";
