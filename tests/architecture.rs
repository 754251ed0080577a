//! The architecture checked against the source: the explorer (`src/app`) and the policies
//! (`src/policy`) never import candle nor the model room (`use` lines and qualified paths,
//! test code included).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::path::Path;

use common::rust_source::scan;

/// Rooms that must never run the model.
const MODEL_FREE_ROOMS: [&str; 2] = ["app", "policy"];
/// The crates that run the model.
const MODEL_CRATES: [&str; 3] = ["candle_core", "candle_nn", "candle_transformers"];
/// The room that wraps them.
const MODEL_ROOM: &str = "model";
/// A source file: its path under `src/` (`app/explorer/commands.rs`) and its text.
struct Source {
    relative: String,
    text: String,
}

impl Source {
    fn new(relative: &str, text: &str) -> Self {
        Self {
            relative: relative.to_owned(),
            text: text.to_owned(),
        }
    }

    /// The module the file defines: `app/explorer/mod.rs` and `app/explorer.rs` are
    /// `[app, explorer]`; `lib.rs` and `main.rs` are the crate root, `[]`.
    fn module(&self) -> Vec<String> {
        let without_rs = self.relative.trim_end_matches(".rs");
        let mut module: Vec<String> = without_rs.split('/').map(str::to_owned).collect();
        if module.last().is_some_and(|last| last == "mod")
            || module == ["lib"]
            || module == ["main"]
        {
            module.pop();
        }
        module
    }
}

/// What a path names: a room of this crate or another crate.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Room(String),
    Crate(String),
}

/// Resolves `segments`, written in `module`; `None` for a path that names nothing outside the
/// crate root (a local type or variant, a single segment).
fn resolve(module: &[String], segments: &[String]) -> Option<Target> {
    let first = segments.first()?.as_str();
    let absolute: Vec<&String> = match first {
        "" => return segments.get(1).map(|c| Target::Crate(c.clone())),
        "crate" | "judgeq" => segments[1..].iter().collect(),
        "self" => module.iter().chain(&segments[1..]).collect(),
        "super" => {
            let ups = segments.iter().take_while(|s| *s == "super").count();
            let kept = module.len().checked_sub(ups)?;
            module[..kept].iter().chain(&segments[ups..]).collect()
        }
        _ if segments.len() >= 2 => return Some(Target::Crate(first.to_owned())),
        _ => return None,
    };
    absolute.first().map(|room| Target::Room((*room).clone()))
}

/// Every path in `source` (test code included) that names the model room or a candle crate,
/// as `file:line: path`.
fn model_imports(source: &Source) -> Vec<String> {
    let module = source.module();
    scan(&source.text)
        .paths
        .into_iter()
        .filter(|named| {
            let inline = [module.clone(), named.inline_module.clone()].concat();
            match resolve(&inline, &named.segments) {
                Some(Target::Room(room)) => room == MODEL_ROOM,
                Some(Target::Crate(name)) => MODEL_CRATES.contains(&name.as_str()),
                None => false,
            }
        })
        .map(|named| {
            format!(
                "src/{}:{}: {}",
                source.relative,
                named.line,
                named.segments.join("::")
            )
        })
        .collect()
}

/// The room a file belongs to: the first segment of its module (`cli` for the binary's
/// files); `None` for the crate roots.
fn room_of(source: &Source) -> Option<String> {
    source.module().first().cloned()
}

/// Every `.rs` file under `dir`, with paths relative to `root`, in a stable order.
fn read_sources(root: &Path, dir: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push(Source::new(&relative.replace('\\', "/"), &text));
        }
    }
}

fn crate_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    read_sources(&root, &root, &mut sources);
    sources
}

#[test]
fn the_explorer_and_the_policies_never_import_the_model() {
    let sources = crate_sources();
    let checked: Vec<&Source> = sources
        .iter()
        .filter(|s| room_of(s).is_some_and(|room| MODEL_FREE_ROOMS.contains(&room.as_str())))
        .collect();
    assert!(checked.len() > 20, "only {} files checked", checked.len());
    let found: Vec<String> = checked.iter().flat_map(|s| model_imports(s)).collect();
    assert!(
        found.is_empty(),
        "src/app and src/policy must not import candle or the model room:\n{}",
        found.join("\n")
    );
}

#[test]
fn planted_model_imports_are_found() {
    let planted = [
        ("app/x.rs", "use candle_core::Tensor;"),
        ("app/x.rs", "use candle_nn::{ops::softmax as sm};"),
        (
            "policy/x.rs",
            "fn f() { let _ = candle_transformers::utils::x(); }",
        ),
        (
            "policy/x.rs",
            "fn f() -> ::candle_core::Result<()> { Ok(()) }",
        ),
        ("app/x.rs", "use crate::{session::Session, model::Model};"),
        ("app/x.rs", "use crate::model;"),
        ("app/x.rs", "use judgeq::model::Model;"),
        (
            "app/panels/x.rs",
            "fn f() { super::super::super::model::load(); }",
        ),
        (
            "app/mod.rs",
            "mod inner { fn f() { super::super::model::load(); } }",
        ),
        ("policy/tests/mod.rs", "use crate::model::Transformer as T;"),
        (
            "app/x.rs",
            "#[cfg(test)]\nmod tests {\n    use candle_core::Device;\n}",
        ),
    ];
    for (relative, text) in planted {
        let found = model_imports(&Source::new(relative, text));
        assert_eq!(found.len(), 1, "{relative}: {text:?} gave {found:?}");
    }
    let found = model_imports(&Source::new("app/x.rs", "\n\nuse crate::model::Model;"));
    assert_eq!(found, ["src/app/x.rs:3: crate::model::Model"]);
}

#[test]
fn comments_strings_and_lookalikes_are_not_model_imports() {
    let harmless = [
        "// use candle_core::Tensor;",
        "/* crate::model::load() /* nested */ crate::model */",
        "/// See [`crate::model::Model`].\nfn f() {}",
        r#"const S: &str = "crate::model::Model";"#,
        r##"const S: &str = r#"candle_nn::ops "quoted""#;"##,
        "const C: char = '\"'; use crate::session::Session;",
        "use crate::models::Model; use crate::app::model::View; use self::model::X;",
        "fn f<'a>(x: &'a str) -> &'a str { x }",
        // `super::model` from app/x.rs is app::model, a module of the explorer.
        "use super::model::View;",
    ];
    for text in harmless {
        let found = model_imports(&Source::new("app/x.rs", text));
        assert!(found.is_empty(), "{text:?} gave {found:?}");
    }
}
