//! The architecture checked against the source: the explorer (`src/app`) and the policies
//! (`src/policy`) never import candle nor the model room, and ARCHITECTURE.md's "Room imports"
//! table lists exactly the rooms each room imports (`use crate::x`, `crate::x::` paths,
//! `super::` paths that leave the room; `judgeq::x` in the binary's `src/cli`). Test-only
//! modules (`#[cfg(test)] mod ...`) are left out of the table but not out of the first rule.
//!
//! And each type name means one thing: no two files of `src/` declare a `pub` or `pub(crate)`
//! struct, enum or trait of the same name. Type aliases are left out: every room's error
//! module names its `Result<T>` alias alike, as Rust crates do, and an alias is no new type.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::rust_source::scan;

/// Rooms that must never run the model.
const MODEL_FREE_ROOMS: [&str; 2] = ["app", "policy"];
/// The crates that run the model.
const MODEL_CRATES: [&str; 3] = ["candle_core", "candle_nn", "candle_transformers"];
/// The room that wraps them.
const MODEL_ROOM: &str = "model";
/// The heading of ARCHITECTURE.md's table of room imports.
const TABLE_HEADING: &str = "## Room imports";

/// Room → the rooms it imports.
type RoomImports = BTreeMap<String, BTreeSet<String>>;

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

/// Where a path starts.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A room of this crate (`crate::x`, `super::` up to the root, `judgeq::x`).
    Room(String),
    /// Any other first name: another crate, or an item in scope (`Command::Run`), which can
    /// never be mistaken for a candle crate.
    Crate(String),
}

/// Resolves `segments`, written in `module`; `None` for a single name or a `super::` that
/// climbs past the crate root.
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

/// The rooms each room imports, from non-test code. Every room appears, importing nothing
/// if so.
fn room_imports(sources: &[Source]) -> RoomImports {
    let scans: Vec<_> = sources.iter().map(|s| scan(&s.text)).collect();
    let test_modules: Vec<Vec<String>> = sources
        .iter()
        .zip(&scans)
        .flat_map(|(source, scan)| {
            let module = source.module();
            scan.test_file_modules
                .iter()
                .map(move |declared| [module.clone(), declared.clone()].concat())
        })
        .collect();
    let mut imports = RoomImports::new();
    for (source, scan) in sources.iter().zip(&scans) {
        let Some(room) = room_of(source) else {
            continue;
        };
        imports.entry(room.clone()).or_default();
        let module = source.module();
        if test_modules.iter().any(|test| module.starts_with(test)) {
            continue;
        }
        for named in scan.paths.iter().filter(|named| !named.test_only) {
            let inline = [module.clone(), named.inline_module.clone()].concat();
            if let Some(Target::Room(target)) = resolve(&inline, &named.segments)
                && target != room
            {
                imports.entry(room.clone()).or_default().insert(target);
            }
        }
    }
    // Paths into something that is not a room (`crate::Result`) do not count.
    let rooms: BTreeSet<String> = imports.keys().cloned().collect();
    for targets in imports.values_mut() {
        targets.retain(|target| rooms.contains(target));
    }
    imports
}

/// The table under [`TABLE_HEADING`]: rows `` | `room` | `a`, `b` | `` (`—` for none).
fn documented_room_imports(markdown: &str) -> RoomImports {
    let table = markdown
        .split_once(TABLE_HEADING)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no `{TABLE_HEADING}` section"))
        .1;
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    table
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').collect();
            let room = names(cells.get(1)?).into_iter().next()?;
            Some((room, names(cells.get(2)?)))
        })
        .collect()
}

/// How the table differs from the source, one line per wrong or missing arrow or row.
fn differences(documented: &RoomImports, real: &RoomImports) -> Vec<String> {
    let mut found = Vec::new();
    for (room, targets) in real {
        let Some(listed) = documented.get(room) else {
            found.push(format!("room `{room}` has no row"));
            continue;
        };
        for target in targets.difference(listed) {
            found.push(format!("`{room}` imports `{target}`, not in its row"));
        }
        for target in listed.difference(targets) {
            found.push(format!(
                "`{room}`'s row lists `{target}`, which it does not import"
            ));
        }
    }
    for room in documented.keys().filter(|room| !real.contains_key(*room)) {
        found.push(format!("row `{room}` is not a room"));
    }
    found
}

/// A circle of imports (`[a, b, a]` when `a` imports `b` and `b` imports `a`), if any.
fn import_circle(imports: &RoomImports) -> Option<Vec<String>> {
    /// Depth-first from `room`; `path` holds the rooms being visited, `done` those whose
    /// imports are known to hold no circle.
    fn visit(
        room: &str,
        imports: &RoomImports,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|r| r == room) {
            return Some([&path[start..], &[room.to_owned()]].concat());
        }
        if done.contains(room) {
            return None;
        }
        path.push(room.to_owned());
        for target in imports.get(room).into_iter().flatten() {
            if let Some(circle) = visit(target, imports, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(room.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    imports
        .keys()
        .find_map(|room| visit(room, imports, &mut Vec::new(), &mut done))
}

/// Type names declared (`pub` or `pub(crate)` structs, enums and traits) in more than one
/// file: name → `src/file:line` of each declaration.
fn shared_type_names(sources: &[Source]) -> BTreeMap<String, Vec<String>> {
    let mut declared: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for source in sources {
        for declaration in scan(&source.text).declared_types {
            declared
                .entry(declaration.name)
                .or_default()
                .push((source.relative.clone(), declaration.line));
        }
    }
    declared
        .into_iter()
        .filter(|(_, places)| {
            let files: BTreeSet<&String> = places.iter().map(|(file, _)| file).collect();
            files.len() > 1
        })
        .map(|(name, places)| {
            let places = places
                .into_iter()
                .map(|(file, line)| format!("src/{file}:{line}"))
                .collect();
            (name, places)
        })
        .collect()
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

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
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

#[test]
fn room_imports_follow_use_trees_relative_paths_and_skip_test_code() {
    let sources = [
        Source::new("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;"),
        Source::new(
            "a/mod.rs",
            "use crate::{b::{self, X}, c::*};\n#[cfg(test)]\nmod tests;\nmod inner;",
        ),
        Source::new("a/inner.rs", "fn f() { super::super::d::g(); super::h(); }"),
        Source::new("a/tests.rs", "use crate::b::Y; use crate::main_only::Z;"),
        Source::new(
            "b.rs",
            "use crate::Result;\n#[cfg(test)]\nmod tests { use crate::d::Z; }",
        ),
        Source::new(
            "c/mod.rs",
            "// crate::d::X\nfn f() { let _ = \"crate::d\"; }",
        ),
        Source::new("d.rs", "fn f() { crate::d::g(); self::g(); }"),
        Source::new("main.rs", "mod cli;"),
        Source::new("cli/mod.rs", "use judgeq::a::A; use crate::cli::x;"),
    ];
    let expected: RoomImports = [
        ("a", set(&["b", "c", "d"])),
        ("b", set(&[])),
        ("c", set(&[])),
        ("d", set(&[])),
        ("cli", set(&["a"])),
    ]
    .into_iter()
    .map(|(room, targets)| (room.to_owned(), targets))
    .collect();
    assert_eq!(room_imports(&sources), expected);
}

#[test]
fn table_differences_name_every_wrong_arrow() {
    let markdown = "# A\n\n## Room imports\n\nSome words.\n\n| room | imports |\n|---|---|\n\
                    | `a` | `b`, `c` |\n| `b` | — |\n| `gone` | `a` |\n\nAfter the table: `x` | `y`\n";
    let documented = documented_room_imports(markdown);
    assert_eq!(documented["a"], set(&["b", "c"]));
    assert_eq!(documented["b"], set(&[]));
    assert_eq!(documented.len(), 3);
    let real: RoomImports = [
        ("a".to_owned(), set(&["b", "d"])),
        ("b".to_owned(), set(&[])),
        ("e".to_owned(), set(&[])),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        differences(&documented, &real),
        [
            "`a` imports `d`, not in its row",
            "`a`'s row lists `c`, which it does not import",
            "room `e` has no row",
            "row `gone` is not a room",
        ]
    );
    assert!(differences(&real, &real).is_empty());
}

#[test]
fn rooms_import_each_other_one_way_only() {
    let real = room_imports(&crate_sources());
    assert_eq!(import_circle(&real), None);
}

#[test]
fn import_circles_are_found() {
    let graph = |edges: &[(&str, &[&str])]| -> RoomImports {
        edges
            .iter()
            .map(|(room, targets)| ((*room).to_owned(), set(targets)))
            .collect()
    };
    let chain = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
    assert_eq!(import_circle(&chain), None);
    let circle = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["d"]), ("d", &["b"])]);
    assert_eq!(
        import_circle(&circle),
        Some(vec!["b".into(), "c".into(), "d".into(), "b".into()])
    );
    let two = graph(&[("png", &["svg"]), ("svg", &["png"])]);
    assert_eq!(
        import_circle(&two),
        Some(vec!["png".into(), "svg".into(), "png".into()])
    );
}

#[test]
fn architecture_md_lists_the_real_room_imports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    let markdown = std::fs::read_to_string(&path).unwrap();
    let real = room_imports(&crate_sources());
    let found = differences(&documented_room_imports(&markdown), &real);
    assert!(
        found.is_empty(),
        "ARCHITECTURE.md's `{TABLE_HEADING}` table does not match the source:\n{}\n\nthe source's imports:\n{}",
        found.join("\n"),
        real.iter()
            .map(|(room, targets)| format!(
                "{room} → {}",
                targets.iter().cloned().collect::<Vec<_>>().join(", ")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_two_files_declare_a_type_of_the_same_name() {
    let sources = crate_sources();
    let declared: usize = sources
        .iter()
        .map(|s| scan(&s.text).declared_types.len())
        .sum();
    assert!(declared > 100, "only {declared} types found");
    let shared = shared_type_names(&sources);
    assert!(
        shared.is_empty(),
        "each type name must mean one thing; these are declared in more than one file:\n{}",
        shared
            .iter()
            .map(|(name, places)| format!("{name}: {}", places.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn shared_type_names_are_found_and_lookalikes_are_not() {
    let sources = [
        Source::new("a.rs", "pub struct Twice;\npub(crate) enum Thrice { A }"),
        Source::new(
            "b/mod.rs",
            "pub(crate) struct Twice<'a>(&'a str);\n#[cfg(test)]\nmod tests { pub enum Thrice {} }",
        ),
        Source::new("c.rs", "pub trait Thrice {}"),
        // Private, `pub(super)`, aliases, functions, comments and strings declare nothing.
        Source::new(
            "d.rs",
            "struct Twice; pub(super) enum Thrice {} pub(in crate::a) struct Twice;\n\
             pub type Twice = u8; pub fn Thrice() {}\n\
             // pub struct Twice;\n/// pub enum Thrice\nconst S: &str = \"pub struct Twice\";",
        ),
        // One file may declare a name twice (inline modules); that is its own business.
        Source::new("e.rs", "pub struct Once; mod inner { pub struct Once; }"),
    ];
    let shared = shared_type_names(&sources);
    let expected: BTreeMap<String, Vec<String>> = [
        ("Thrice", vec!["src/a.rs:2", "src/b/mod.rs:3", "src/c.rs:1"]),
        ("Twice", vec!["src/a.rs:1", "src/b/mod.rs:1"]),
    ]
    .into_iter()
    .map(|(name, places)| {
        (
            name.to_owned(),
            places.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect();
    assert_eq!(shared, expected);
}
