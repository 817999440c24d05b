//! Regular expressions as Envoy's RE2 will judge them.
//!
//! Every regex a document gives us reaches Envoy as a `safe_regex` (RE2). A regex RE2 refuses makes
//! Envoy reject the whole route configuration, so we refuse it first: parsed by `regex-syntax` (the
//! parser of Rust's `regex`, whose syntax is RE2's with a few extensions, which we refuse), with RE2's
//! limits on repetition, and with an upper bound of RE2's program size checked against the limit we
//! give Envoy ([`MAX_PROGRAM_SIZE`], set as `re2.max_program_size.error_level` in the bootstraps).

use regex_syntax::ast::{self, Ast, Visitor};
use regex_syntax::hir::{Class, Hir, HirKind};
use regex_syntax::utf8::Utf8Sequences;

/// The RE2 program size Envoy accepts: the bootstraps Tollgate ships set the runtime key
/// `re2.max_program_size.error_level` to this, and validation refuses anything that may be larger.
pub const MAX_PROGRAM_SIZE: usize = 1000;
/// RE2's largest repetition count (`kMaxRepeat`), also for the product of nested counts.
const MAX_REPEAT: u32 = 1000;
/// How deeply groups may nest (RE2 allows 1,000; nobody needs more than this).
const MAX_NEST: u32 = 100;
/// RE2's fixed instructions around every program: fail, match and the unanchored `.*?` prefix.
const PROGRAM_OVERHEAD: usize = 5;

/// Why RE2 would refuse a regex. The text is shown to the client after the regex.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    /// Not a regular expression (the parser's words).
    #[error("{0}")]
    Syntax(String),
    /// Valid for Rust's parser but not RE2 syntax.
    #[error("{0} is not supported by Envoy's RE2")]
    Unsupported(&'static str),
    /// A counted repetition, or the product of nested ones, above RE2's 1,000.
    #[error("repetition count above {MAX_REPEAT}")]
    Repeat,
    /// The compiled program may be larger than Envoy accepts.
    #[error("too complex: program size up to {size}, the limit is {MAX_PROGRAM_SIZE}")]
    ProgramSize {
        /// The estimated (upper bound) program size.
        size: usize,
    },
}

/// Checks `re` as RE2 would, returning an upper bound of its program size.
pub fn check(re: &str) -> Result<usize, RegexError> {
    let ast = ast::parse::ParserBuilder::new()
        .nest_limit(MAX_NEST)
        .build()
        .parse(re)
        .map_err(|e| RegexError::Syntax(e.kind().to_string()))?;
    let rules = ast::visit(
        &ast,
        Re2Rules {
            pattern: re,
            counts: Vec::new(),
            hidden: 0,
        },
    )?;
    let hir = regex_syntax::hir::translate::TranslatorBuilder::new()
        .utf8(true)
        .build()
        .translate(re, &ascii_perl_classes(ast))
        .map_err(|e| RegexError::Syntax(e.kind().to_string()))?;
    let size = program_size(&hir)
        .saturating_add(rules.hidden)
        .saturating_add(PROGRAM_OVERHEAD);
    if size > MAX_PROGRAM_SIZE {
        return Err(RegexError::ProgramSize { size });
    }
    Ok(size)
}

/// RE2's rules that `regex-syntax` does not apply: counted repetitions, and the extensions RE2 lacks.
struct Re2Rules<'a> {
    pattern: &'a str,
    /// The counts of the counted repetitions enclosing the current node.
    counts: Vec<u32>,
    /// Program size `regex-syntax` simplifies away and RE2 does not: a repetition of something that
    /// matches only the empty string (`(\b?){500}`) is one copy in the HIR but every copy in RE2.
    hidden: usize,
}

/// What the walk learned beyond the rules.
struct Walked {
    hidden: usize,
}

impl Visitor for Re2Rules<'_> {
    type Output = Walked;
    type Err = RegexError;

    fn finish(self) -> Result<Walked, RegexError> {
        Ok(Walked { hidden: self.hidden })
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), RegexError> {
        match ast {
            Ast::Repetition(r) => {
                if let Ast::Repetition(_) = *r.ast {
                    return Err(RegexError::Syntax(
                        "bad repetition operator (a repetition of a repetition)".into(),
                    ));
                }
                let count = match r.op.kind {
                    ast::RepetitionKind::Range(ast::RepetitionRange::Exactly(n))
                    | ast::RepetitionKind::Range(ast::RepetitionRange::AtLeast(n)) => n,
                    ast::RepetitionKind::Range(ast::RepetitionRange::Bounded(lo, hi)) => lo.max(hi),
                    _ => 1,
                };
                let product = self
                    .counts
                    .iter()
                    .try_fold(count.max(1), |acc, c| acc.checked_mul((*c).max(1)));
                if count > MAX_REPEAT || product.is_none_or(|p| p > MAX_REPEAT) {
                    return Err(RegexError::Repeat);
                }
                if count > 1 {
                    self.hidden = self
                        .hidden
                        .saturating_add(self.empty_copies(&r.ast, product.unwrap_or(1)));
                }
                self.counts.push(count);
            }
            Ast::Assertion(a) => assertion(&a.kind)?,
            Ast::ClassUnicode(u) => unicode_class(&u.kind)?,
            Ast::Literal(l) => escape(l)?,
            Ast::Flags(f) => flags(&f.flags)?,
            Ast::Group(g) => {
                if let ast::GroupKind::NonCapturing(f) = &g.kind {
                    flags(f)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_post(&mut self, ast: &Ast) -> Result<(), RegexError> {
        if let Ast::Repetition(_) = ast {
            self.counts.pop();
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), RegexError> {
        match item {
            ast::ClassSetItem::Unicode(u) => unicode_class(&u.kind),
            ast::ClassSetItem::Literal(l) => escape(l),
            ast::ClassSetItem::Range(r) => escape(&r.start).and_then(|()| escape(&r.end)),
            _ => Ok(()),
        }
    }

    fn visit_class_set_binary_op_pre(&mut self, _op: &ast::ClassSetBinaryOp) -> Result<(), RegexError> {
        Err(RegexError::Unsupported("a class set operation (&&, --, ~~)"))
    }
}

impl Re2Rules<'_> {
    /// The RE2 program size of `copies` copies of `sub` when it matches only the empty string
    /// (which the HIR folds into one), else 0.
    fn empty_copies(&self, sub: &Ast, copies: u32) -> usize {
        let span = sub.span();
        let Some(text) = self.pattern.get(span.start.offset..span.end.offset) else {
            return 0;
        };
        let Ok(hir) = regex_syntax::ParserBuilder::new().build().parse(text) else {
            return 0;
        };
        if hir.properties().maximum_len() != Some(0) {
            return 0;
        }
        (copies as usize).saturating_mul(program_size(&hir).saturating_add(2))
    }
}

/// Envoy's RE2 refuses a hex escape above `\x{FF}` ("invalid escape sequence"; found by the
/// differential test against the real Envoy).
fn escape(l: &ast::Literal) -> Result<(), RegexError> {
    let hex = matches!(l.kind, ast::LiteralKind::HexFixed(_) | ast::LiteralKind::HexBrace(_));
    if hex && u32::from(l.c) > 0xFF {
        return Err(RegexError::Unsupported("a hex escape above \\x{FF}"));
    }
    Ok(())
}

fn assertion(kind: &ast::AssertionKind) -> Result<(), RegexError> {
    use ast::AssertionKind::*;
    match kind {
        StartLine | EndLine | StartText | EndText | WordBoundary | NotWordBoundary => Ok(()),
        _ => Err(RegexError::Unsupported("this word-boundary assertion")),
    }
}

fn flags(f: &ast::Flags) -> Result<(), RegexError> {
    for item in &f.items {
        if let ast::FlagsItemKind::Flag(flag) = item.kind {
            match flag {
                ast::Flag::CaseInsensitive
                | ast::Flag::MultiLine
                | ast::Flag::DotMatchesNewLine
                | ast::Flag::SwapGreed => {}
                _ => return Err(RegexError::Unsupported("the flag u, R or x")),
            }
        }
    }
    Ok(())
}

/// RE2 knows `\pL`-style one-letter classes and general categories and scripts by name, not
/// `\p{name=value}` forms or binary properties.
fn unicode_class(kind: &ast::ClassUnicodeKind) -> Result<(), RegexError> {
    match kind {
        ast::ClassUnicodeKind::OneLetter(c) if "LMNPSZC".contains(*c) => Ok(()),
        ast::ClassUnicodeKind::Named(name) if is_re2_class_name(name) => Ok(()),
        _ => Err(RegexError::Unsupported("this Unicode class")),
    }
}

fn is_re2_class_name(name: &str) -> bool {
    const CATEGORIES: &[&str] = &[
        "Any", "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl",
        "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
    ];
    const SCRIPTS: &[&str] = &[
        "Arabic",
        "Armenian",
        "Bengali",
        "Common",
        "Cyrillic",
        "Devanagari",
        "Georgian",
        "Greek",
        "Gujarati",
        "Gurmukhi",
        "Han",
        "Hangul",
        "Hebrew",
        "Hiragana",
        "Inherited",
        "Kannada",
        "Katakana",
        "Khmer",
        "Lao",
        "Latin",
        "Malayalam",
        "Myanmar",
        "Oriya",
        "Sinhala",
        "Tamil",
        "Telugu",
        "Thai",
        "Tibetan",
    ];
    CATEGORIES.contains(&name) || SCRIPTS.contains(&name)
}

/// RE2's `\d`, `\s` and `\w` are ASCII classes where Rust's are Unicode: the same classes as ASCII
/// ones, so that the program size is RE2's.
fn ascii_perl_classes(mut ast: Ast) -> Ast {
    to_ascii(&mut ast);
    ast
}

fn to_ascii(ast: &mut Ast) {
    match ast {
        Ast::ClassPerl(p) => {
            let item = ascii_item(p);
            *ast = Ast::class_bracketed(ast::ClassBracketed {
                span: p.span,
                negated: false,
                kind: ast::ClassSet::Item(item),
            });
        }
        Ast::ClassBracketed(b) => set_to_ascii(&mut b.kind),
        Ast::Repetition(r) => to_ascii(&mut r.ast),
        Ast::Group(g) => to_ascii(&mut g.ast),
        Ast::Alternation(a) => a.asts.iter_mut().for_each(to_ascii),
        Ast::Concat(c) => c.asts.iter_mut().for_each(to_ascii),
        _ => {}
    }
}

fn set_to_ascii(set: &mut ast::ClassSet) {
    match set {
        ast::ClassSet::Item(item) => item_to_ascii(item),
        ast::ClassSet::BinaryOp(op) => {
            set_to_ascii(&mut op.lhs);
            set_to_ascii(&mut op.rhs);
        }
    }
}

fn item_to_ascii(item: &mut ast::ClassSetItem) {
    match item {
        ast::ClassSetItem::Perl(p) => *item = ascii_item(p),
        ast::ClassSetItem::Bracketed(b) => set_to_ascii(&mut b.kind),
        ast::ClassSetItem::Union(u) => u.items.iter_mut().for_each(item_to_ascii),
        _ => {}
    }
}

fn ascii_item(p: &ast::ClassPerl) -> ast::ClassSetItem {
    let kind = match p.kind {
        ast::ClassPerlKind::Digit => ast::ClassAsciiKind::Digit,
        ast::ClassPerlKind::Space => ast::ClassAsciiKind::Space,
        ast::ClassPerlKind::Word => ast::ClassAsciiKind::Word,
    };
    ast::ClassSetItem::Ascii(ast::ClassAscii {
        span: p.span,
        kind,
        negated: p.negated,
    })
}

/// An upper bound of the instructions RE2 compiles `hir` to (UTF-8 mode): a byte range per byte of a
/// literal or of each UTF-8 sequence of a class, an alternation per extra branch, a loop per
/// repetition, two per capture. RE2 shares common suffixes of class sequences, so it uses no more.
fn program_size(hir: &Hir) -> usize {
    match hir.kind() {
        HirKind::Empty => 1,
        HirKind::Literal(lit) => lit.0.len(),
        HirKind::Class(Class::Unicode(c)) => branches(
            c.ranges()
                .iter()
                .flat_map(|r| Utf8Sequences::new(r.start(), r.end()))
                .map(|s| s.len()),
        ),
        HirKind::Class(Class::Bytes(c)) => branches(c.ranges().iter().map(|_| 1)),
        HirKind::Look(_) => 1,
        HirKind::Repetition(r) => {
            let sub = program_size(&r.sub);
            let min = r.min as usize;
            match r.max {
                // x{n,}: n - 1 copies, then x+ (a copy and a loop).
                None => min.max(1).saturating_mul(sub).saturating_add(1),
                // x{n,m}: n copies, then m - n optional ones.
                Some(max) => min
                    .saturating_mul(sub)
                    .saturating_add((max as usize).saturating_sub(min).saturating_mul(sub + 1)),
            }
        }
        HirKind::Capture(c) => program_size(&c.sub).saturating_add(2),
        HirKind::Concat(subs) => subs.iter().map(program_size).fold(0, usize::saturating_add),
        HirKind::Alternation(subs) => branches(subs.iter().map(program_size)),
    }
}

/// Branches of the given sizes joined by alternations.
fn branches(sizes: impl Iterator<Item = usize>) -> usize {
    let (count, total) = sizes.fold((0usize, 0usize), |(n, t), s| (n + 1, t.saturating_add(s)));
    total.saturating_add(count.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_regexes_pass_with_a_small_program() {
        for re in [
            "^v[0-9]+$",
            "abc|def",
            "(?i)bearer .+",
            "[a-z]{3,8}",
            r"\d+\.\d+",
            "^$",
            r"\bx\B",
            r"\p{Greek}+",
        ] {
            let size = check(re).unwrap_or_else(|e| panic!("{re}: {e}"));
            assert!(size < 200, "{re}: {size}");
        }
    }

    #[test]
    fn repetitions_over_re2s_limit_are_refused() {
        assert_eq!(check("a{99999}"), Err(RegexError::Repeat));
        assert_eq!(check("a{1001}"), Err(RegexError::Repeat));
        assert_eq!(check("a{2,1001}"), Err(RegexError::Repeat));
        assert_eq!(check("((a{20}){20}){20}"), Err(RegexError::Repeat));
        assert!(check("a{2}").is_ok());
    }

    #[test]
    fn large_programs_are_refused() {
        // Found by the differential test: Envoy said "RE2 program size of 2045 > max program size of 1000".
        assert!(matches!(
            check(r"(\b?){507}\x41{7}0+?\w*$"),
            Err(RegexError::ProgramSize { .. })
        ));
        assert!(check(r"(\b?){5}").is_ok());
        assert!(matches!(check("[a-z]{999}"), Err(RegexError::ProgramSize { .. })));
        assert!(matches!(check("(.{30}){30}"), Err(RegexError::ProgramSize { .. })));
    }

    #[test]
    fn syntax_re2_lacks_is_refused() {
        for re in [
            r"\x{1F600}",
            r"[\x{100}-\x{200}]",
            "(?x)a b",
            r"\<word\>",
            r"\p{Script=Greek}",
            "[a-z&&[^aeiou]]",
            "(?u)a",
            r"\p{Emoji}",
        ] {
            assert!(matches!(check(re), Err(RegexError::Unsupported(_))), "{re}");
        }
    }

    #[test]
    fn non_regexes_are_refused() {
        for re in ["(", "a)", "[a", "*a", "a**", r"\1", "(?=a)", "(?<!a)b", "x{2,1}"] {
            assert!(matches!(check(re), Err(RegexError::Syntax(_))), "{re}: {:?}", check(re));
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(matches!(check(&deep), Err(RegexError::Syntax(_))));
    }
}

#[cfg(test)]
mod bootstrap_tests {
    /// The limit the validator uses is the one the shipped Envoy bootstraps give Envoy.
    #[test]
    fn every_shipped_bootstrap_sets_the_same_program_size_limit() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy");
        let line = format!("re2.max_program_size.error_level: {}", super::MAX_PROGRAM_SIZE);
        for name in ["bootstrap-delta.yaml", "bootstrap-sotw.yaml", "bootstrap-compose.yaml"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(text.contains(&line), "{name} must set `{line}`");
        }
    }
}
