//! A small reader of Rust source for the architecture tests: the paths a file names (`use`
//! trees expanded, qualified paths such as `crate::model::load(..)` in code), outside comments
//! and string literals, with the inline module each is named in and whether that code is
//! compiled for tests only (`#[cfg(test)] mod ...`); and the structs, enums and traits it
//! declares `pub` or `pub(crate)`.
//!
//! Use: `mod common;` then `common::rust_source::scan(text)`.

#![allow(
    dead_code,
    reason = "each test binary uses only some of the shared helpers"
)]

/// One path named in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPath {
    /// The segments as written: `["crate", "model", "Model"]`; a leading `::` is `""`.
    pub segments: Vec<String>,
    /// The inline modules (`mod name { ... }`) it is named in, outermost first.
    pub inline_module: Vec<String>,
    /// Whether it is inside a `#[cfg(test)]` module.
    pub test_only: bool,
    /// Its line (1-based).
    pub line: usize,
}

/// A struct, enum or trait declared `pub` or `pub(crate)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredType {
    /// `struct`, `enum` or `trait`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its line (1-based).
    pub line: usize,
}

/// What [`scan`] finds in a file.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every path of two or more segments, and every `use` path, in order.
    pub paths: Vec<NamedPath>,
    /// Every struct, enum and trait declared `pub` or `pub(crate)` (test code included), in
    /// order. Other visibilities (`pub(super)`, `pub(in path)`) and type aliases are left out.
    pub declared_types: Vec<DeclaredType>,
    /// Modules declared `#[cfg(test)] mod name;` (in their own file), as the inline module
    /// path they are declared in followed by `name`.
    pub test_file_modules: Vec<Vec<String>>,
}

/// The paths named in `source`.
pub fn scan(source: &str) -> Scan {
    let tokens = lex(source);
    let mut scan = Scan::default();
    // One entry per open brace: the inline module it opens (if any) and whether it is test code.
    let mut braces: Vec<(Option<String>, bool)> = Vec::new();
    let mut cfg_test = false;
    let mut i = 0;
    while i < tokens.len() {
        let in_test = braces.last().is_some_and(|(_, test)| *test);
        let module: Vec<String> = braces.iter().filter_map(|(m, _)| m.clone()).collect();
        let line = tokens[i].line;
        match &tokens[i].tok {
            Tok::Punct('#') if is_cfg_test(&tokens[i..]) => {
                cfg_test = true;
                i += CFG_TEST.len();
            }
            Tok::Ident(word) if word == "mod" => {
                let name = match tokens.get(i + 1).map(|t| &t.tok) {
                    Some(Tok::Ident(name)) => name.clone(),
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                match tokens.get(i + 2).map(|t| &t.tok) {
                    Some(Tok::Punct('{')) => {
                        braces.push((Some(name), cfg_test || in_test));
                        i += 3;
                    }
                    Some(Tok::Punct(';')) => {
                        if cfg_test || in_test {
                            scan.test_file_modules.push([module, vec![name]].concat());
                        }
                        i += 3;
                    }
                    _ => i += 2,
                }
                cfg_test = false;
            }
            Tok::Punct('{') => {
                braces.push((None, in_test));
                cfg_test = false;
                i += 1;
            }
            Tok::Punct('}') => {
                braces.pop();
                i += 1;
            }
            Tok::Punct(';') => {
                cfg_test = false;
                i += 1;
            }
            Tok::Ident(word) if word == "pub" => {
                if let Some((kind, name)) = declared_type(&tokens, i) {
                    scan.declared_types.push(DeclaredType { kind, name, line });
                }
                i += 1;
            }
            Tok::Ident(word) if word == "use" => match use_item(&tokens, i + 1) {
                Some((paths, end)) => {
                    scan.paths
                        .extend(paths.into_iter().map(|segments| NamedPath {
                            segments,
                            inline_module: module.clone(),
                            test_only: in_test,
                            line,
                        }));
                    i = end;
                }
                // `use<'a>` bounds (precise capturing) are not imports.
                None => i += 1,
            },
            Tok::Ident(_) | Tok::PathSep => {
                let (segments, end) = qualified_path(&tokens, i);
                if segments.len() >= 2 {
                    scan.paths.push(NamedPath {
                        segments,
                        inline_module: module,
                        test_only: in_test,
                        line,
                    });
                }
                i = end.max(i + 1);
            }
            Tok::Punct(_) => i += 1,
        }
    }
    scan
}

/// A token of Rust source, comments and literals left out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An identifier or keyword (raw identifiers without `r#`).
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other character.
    Punct(char),
}

/// A token and its line.
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// `#[cfg(test)]`, token by token.
const CFG_TEST: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];

fn is_cfg_test(tokens: &[Token]) -> bool {
    tokens.len() >= CFG_TEST.len()
        && tokens.iter().zip(CFG_TEST).all(|(t, want)| match &t.tok {
            Tok::Ident(word) => word == want,
            Tok::Punct(c) => want.len() == 1 && want.starts_with(*c),
            Tok::PathSep => false,
        })
}

/// The kind and name of the struct, enum or trait that the `pub` at `i` declares, when its
/// visibility is `pub` or `pub(crate)`; `None` for anything else.
fn declared_type(tokens: &[Token], i: usize) -> Option<(String, String)> {
    let tok = |at: usize| tokens.get(at).map(|t| &t.tok);
    let mut at = i + 1;
    if tok(at) == Some(&Tok::Punct('(')) {
        let crate_only = matches!(tok(at + 1), Some(Tok::Ident(word)) if word == "crate")
            && tok(at + 2) == Some(&Tok::Punct(')'));
        if !crate_only {
            return None;
        }
        at += 3;
    }
    match (tok(at)?, tok(at + 1)?) {
        (Tok::Ident(kind), Tok::Ident(name))
            if matches!(kind.as_str(), "struct" | "enum" | "trait") =>
        {
            Some((kind.clone(), name.clone()))
        }
        _ => None,
    }
}

/// The `use` tree starting at `i` (after the keyword), expanded to full paths, and the index
/// after its `;`. `None` when what follows is not a use tree.
fn use_item(tokens: &[Token], i: usize) -> Option<(Vec<Vec<String>>, usize)> {
    let mut paths = Vec::new();
    let end = use_tree(tokens, i, Vec::new(), &mut paths)?;
    match tokens.get(end).map(|t| &t.tok) {
        Some(Tok::Punct(';')) => Some((paths, end + 1)),
        _ => None,
    }
}

/// One use tree below `prefix`; pushes its paths and returns the index after it. A glob
/// (`a::*`) gives the module `a`; `a::{self, b}` gives `a::self` and `a::b`.
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> Option<usize> {
    if tokens.get(i)?.tok == Tok::PathSep {
        path.push(String::new());
        i += 1;
    }
    loop {
        match &tokens.get(i)?.tok {
            Tok::Ident(name) => {
                path.push(name.clone());
                i += 1;
                match tokens.get(i).map(|t| &t.tok) {
                    Some(Tok::PathSep) => i += 1,
                    Some(Tok::Ident(word)) if word == "as" => {
                        out.push(path);
                        return Some(i + 2);
                    }
                    _ => {
                        out.push(path);
                        return Some(i);
                    }
                }
            }
            Tok::Punct('*') => {
                out.push(path);
                return Some(i + 1);
            }
            Tok::Punct('{') => {
                i += 1;
                loop {
                    match tokens.get(i)?.tok {
                        Tok::Punct('}') => return Some(i + 1),
                        Tok::Punct(',') => i += 1,
                        _ => i = use_tree(tokens, i, path.clone(), out)?,
                    }
                }
            }
            _ => return None,
        }
    }
}

/// The path starting at `i` (`a::b::c`, or `::a::b`) and the index after it. A `::` that
/// follows a generic argument list (`Vec::<u8>::new`) does not start a path; one after `->`
/// or `=>` does.
fn qualified_path(tokens: &[Token], i: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    let mut at = i;
    if tokens[at].tok == Tok::PathSep {
        let before = |back: usize| at.checked_sub(back).map(|k| &tokens[k].tok);
        let after_generics = before(1) == Some(&Tok::Punct('>'))
            && !matches!(before(2), Some(Tok::Punct('-' | '=')));
        if after_generics {
            return (segments, at + 1);
        }
        segments.push(String::new());
        at += 1;
    }
    while let Some(Tok::Ident(name)) = tokens.get(at).map(|t| &t.tok) {
        segments.push(name.clone());
        at += 1;
        let continues = tokens.get(at).map(|t| &t.tok) == Some(&Tok::PathSep)
            && matches!(tokens.get(at + 1).map(|t| &t.tok), Some(Tok::Ident(_)));
        if !continues {
            break;
        }
        at += 1;
    }
    (segments, at)
}

/// The tokens of `source`, without comments, string, character and number literals and
/// lifetimes.
fn lex(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i = skip_block_comment(&chars, i, &mut line);
        } else if c == '"' {
            i = skip_string(&chars, i + 1, 0, &mut line);
        } else if c == '\'' {
            i = skip_char_or_lifetime(&chars, i);
        } else if c.is_ascii_digit() {
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
        } else if c == '_' || c.is_alphabetic() {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let hashes = chars[i..].iter().take_while(|&&h| h == '#').count();
            let is_raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if is_raw_prefix && at(i + hashes) == '"' {
                i = skip_string(&chars, i + hashes + 1, hashes, &mut line);
            } else if word == "r" && hashes == 1 && is_ident_char(at(i + 1)) {
                // A raw identifier: `r#type` is the identifier `type`.
                let start = i + 1;
                i = start;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                tokens.push(Token {
                    tok: Tok::Ident(chars[start..i].iter().collect()),
                    line,
                });
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_string(&chars, i + 1, 0, &mut line);
            } else if word == "b" && at(i) == '\'' {
                i = skip_char_or_lifetime(&chars, i);
            } else {
                tokens.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    tokens
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The index after the (nested) block comment opening at `i`.
fn skip_block_comment(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            if chars[i] == '\n' {
                *line += 1;
            }
            i += 1;
        }
    }
    i
}

/// The index after a string literal whose body starts at `i`: escapes apply when `hashes` is
/// 0 (a plain string); a raw string ends at `"` followed by `hashes` `#`.
fn skip_string(chars: &[char], mut i: usize, hashes: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' if hashes == 0 => i += 2,
            '"' if chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes =>
            {
                return i + 1 + hashes;
            }
            c => {
                if c == '\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    i
}

/// The index after the character literal or lifetime whose `'` is at `i`.
fn skip_char_or_lifetime(chars: &[char], i: usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let mut end = i + 3;
        while end < chars.len() && chars[end] != '\'' {
            end += 1;
        }
        end + 1
    } else if chars.get(i + 2) == Some(&'\'') {
        i + 3
    } else {
        let mut end = i + 1;
        while end < chars.len() && is_ident_char(chars[end]) {
            end += 1;
        }
        end
    }
}
