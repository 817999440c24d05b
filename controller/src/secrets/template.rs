//! The template subset API documents may use in string values, in Go `text/template` syntax as
//! WSO2's gateway documents it: `{{ env "NAME" }}`, `{{ secret "id" }}`, and
//! `{{ default "x" (env "NAME") }}` (or piped: `{{ env "NAME" | default "x" }}`), with `{{-`/`-}}`
//! trimming the whitespace beside an action. Anything else inside braces (variables, `if`,
//! `range`, other functions) is refused with a message rather than passed through as text.
//!
//! Why our own parser: the Rust port of Go templates (`gtmpl`) calls functions through plain `fn`
//! pointers with no per-render context, so it cannot look secrets up in this controller's store
//! or record which secrets a document used without global state; and these three functions need
//! about as much code as gluing it in would.

use crate::secret::Secret;

/// What the template functions read.
pub trait Lookup {
    /// An environment variable of the controller.
    fn env(&self, name: &str) -> Option<String>;
    /// A stored secret's value.
    fn secret(&self, id: &str) -> Option<Secret<String>>;
}

/// Why a template could not be parsed or rendered. Never holds a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text inside the braces is not a supported template.
    #[error("template syntax: {0}")]
    Syntax(&'static str),
    /// A function other than `env`, `secret` and `default`.
    #[error("unknown template function '{0}' (env, secret and default are supported)")]
    UnknownFunction(String),
    /// A function called with the wrong number of arguments.
    #[error("template function '{name}' takes {expected} argument(s)")]
    Arity { name: &'static str, expected: usize },
    /// `env` names a variable that is not set.
    #[error("environment variable '{0}' is not set")]
    MissingEnv(String),
    /// `secret` names a secret that does not exist.
    #[error("secret '{0}' does not exist")]
    MissingSecret(String),
}

/// A parsed template: text and actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Action(Pipeline),
}

/// Commands joined by `|`: each one's result is the last argument of the next.
type Pipeline = Vec<Call>;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Call {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Env,
    Secret,
    Default,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Arg {
    Str(String),
    Sub(Pipeline),
}

/// What rendering produced besides the text: the secrets it read.
#[derive(Debug, Default)]
pub struct Used {
    /// Ids of the secrets read (present or not).
    pub secret_ids: Vec<String>,
    /// Their values, to be redacted wherever the rendered text might be shown.
    pub secret_values: Vec<Secret<String>>,
}

/// A value while evaluating: a string, or a lookup that found nothing (an error only if it
/// reaches the output; `default` replaces it).
enum Val {
    Str(String),
    Missing(TemplateError),
}

/// Whether `s` holds an action at all (strings without `{{` are left alone, unparsed).
pub fn has_action(s: &str) -> bool {
    s.contains("{{")
}

// === impl Template ===

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = src;
        let mut trim_next = false;
        while let Some(open) = rest.find("{{") {
            let mut text = &rest[..open];
            if trim_next {
                text = text.trim_start();
            }
            let mut inner = &rest[open + 2..];
            if let Some(after) = inner.strip_prefix("- ") {
                text = text.trim_end();
                inner = after;
            }
            if !text.is_empty() {
                parts.push(Part::Text(text.to_string()));
            }
            let mut lexer = Lexer {
                src: inner,
                pos: 0,
                depth: 0,
            };
            let pipeline = lexer.pipeline()?;
            let (close, trim) = lexer.close()?;
            parts.push(Part::Action(pipeline));
            trim_next = trim;
            rest = &inner[close..];
        }
        let text = if trim_next { rest.trim_start() } else { rest };
        if !text.is_empty() {
            parts.push(Part::Text(text.to_string()));
        }
        Ok(Template { parts })
    }

    /// Renders with `lookup`, recording the secrets read in `used`.
    pub fn render(&self, lookup: &dyn Lookup, used: &mut Used) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(p) => match eval(p, lookup, used)? {
                    Val::Str(s) => out.push_str(&s),
                    Val::Missing(e) => return Err(e),
                },
            }
        }
        Ok(out)
    }

    /// The ids of the secrets this template names with a literal argument.
    pub fn secret_ids(&self) -> Vec<String> {
        fn walk(p: &Pipeline, out: &mut Vec<String>) {
            for call in p {
                for arg in &call.args {
                    match arg {
                        Arg::Str(s) if call.func == Func::Secret => out.push(s.clone()),
                        Arg::Sub(sub) => walk(sub, out),
                        Arg::Str(_) => {}
                    }
                }
            }
        }
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Action(p) = part {
                walk(p, &mut out);
            }
        }
        out
    }
}

fn eval(p: &Pipeline, lookup: &dyn Lookup, used: &mut Used) -> Result<Val, TemplateError> {
    let mut piped: Option<Val> = None;
    for call in p {
        let mut args = Vec::with_capacity(call.args.len() + 1);
        for a in &call.args {
            args.push(match a {
                Arg::Str(s) => Val::Str(s.clone()),
                Arg::Sub(sub) => eval(sub, lookup, used)?,
            });
        }
        args.extend(piped.take());
        piped = Some(apply(call.func, args, lookup, used)?);
    }
    piped.ok_or(TemplateError::Syntax("empty action"))
}

fn apply(func: Func, args: Vec<Val>, lookup: &dyn Lookup, used: &mut Used) -> Result<Val, TemplateError> {
    let arity = |name, expected| TemplateError::Arity { name, expected };
    match func {
        Func::Env | Func::Secret => {
            let name = if func == Func::Env { "env" } else { "secret" };
            let [arg] = <[Val; 1]>::try_from(args).map_err(|_| arity(name, 1))?;
            let key = match arg {
                Val::Str(s) => s,
                Val::Missing(e) => return Err(e),
            };
            Ok(if func == Func::Env {
                match lookup.env(&key) {
                    Some(v) => Val::Str(v),
                    None => Val::Missing(TemplateError::MissingEnv(key)),
                }
            } else {
                used.secret_ids.push(key.clone());
                match lookup.secret(&key) {
                    Some(v) => {
                        let s = v.expose().clone();
                        used.secret_values.push(v);
                        Val::Str(s)
                    }
                    None => Val::Missing(TemplateError::MissingSecret(key)),
                }
            })
        }
        Func::Default => {
            let [fallback, value] = <[Val; 2]>::try_from(args).map_err(|_| arity("default", 2))?;
            match value {
                Val::Str(s) if !s.is_empty() => Ok(Val::Str(s)),
                _ => Ok(fallback),
            }
        }
    }
}

/// How deeply `( )` may nest: parsing recurses, and a document is untrusted input.
const MAX_DEPTH: usize = 8;

/// Reads the inside of one action.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// Open parentheses around the current call.
    depth: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Open,
    Close,
    Pipe,
    /// `}}` (with `-}}`'s trim flag); the position after it.
    End {
        after: usize,
        trim: bool,
    },
}

// === impl Lexer ===

impl Lexer<'_> {
    fn pipeline(&mut self) -> Result<Pipeline, TemplateError> {
        let mut calls = vec![self.call()?];
        while self.peek()? == Token::Pipe {
            self.next()?;
            calls.push(self.call()?);
        }
        Ok(calls)
    }

    fn call(&mut self) -> Result<Call, TemplateError> {
        let func = match self.next()? {
            Token::Ident(name) => match name.as_str() {
                "env" => Func::Env,
                "secret" => Func::Secret,
                "default" => Func::Default,
                _ => return Err(TemplateError::UnknownFunction(name)),
            },
            Token::End { .. } => return Err(TemplateError::Syntax("empty action")),
            _ => return Err(TemplateError::Syntax("an action starts with a function name")),
        };
        let mut args = Vec::new();
        loop {
            match self.peek()? {
                Token::Str(_) => {
                    if let Token::Str(s) = self.next()? {
                        args.push(Arg::Str(s));
                    }
                }
                Token::Open => {
                    self.next()?;
                    if self.depth == MAX_DEPTH {
                        return Err(TemplateError::Syntax("parentheses nested too deeply"));
                    }
                    self.depth += 1;
                    let sub = self.pipeline()?;
                    self.depth -= 1;
                    args.push(Arg::Sub(sub));
                    if self.next()? != Token::Close {
                        return Err(TemplateError::Syntax("unclosed '('"));
                    }
                }
                Token::Ident(_) => return Err(TemplateError::Syntax("arguments are quoted strings or (calls)")),
                Token::Close | Token::Pipe | Token::End { .. } => return Ok(Call { func, args }),
            }
        }
    }

    /// The closing `}}`: where the text after it starts, and whether it trims.
    fn close(&mut self) -> Result<(usize, bool), TemplateError> {
        match self.next()? {
            Token::End { after, trim } => Ok((after, trim)),
            Token::Close => Err(TemplateError::Syntax("unexpected ')'")),
            _ => Err(TemplateError::Syntax("expected '}}'")),
        }
    }

    fn peek(&mut self) -> Result<Token, TemplateError> {
        let pos = self.pos;
        let t = self.next();
        self.pos = pos;
        t
    }

    fn next(&mut self) -> Result<Token, TemplateError> {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let mut chars = trimmed.chars();
        let Some(c) = chars.next() else {
            return Err(TemplateError::Syntax("unclosed '{{'"));
        };
        let single = |me: &mut Self, t| {
            me.pos += 1;
            Ok(t)
        };
        match c {
            '(' => single(self, Token::Open),
            ')' => single(self, Token::Close),
            '|' => single(self, Token::Pipe),
            '}' if trimmed.starts_with("}}") => {
                self.pos += 2;
                Ok(Token::End {
                    after: self.pos,
                    trim: false,
                })
            }
            '-' if trimmed.starts_with("-}}") && start > 0 && self.src[..start].ends_with(char::is_whitespace) => {
                self.pos += 3;
                Ok(Token::End {
                    after: self.pos,
                    trim: true,
                })
            }
            '"' => self.quoted(),
            '`' => {
                let end = trimmed[1..]
                    .find('`')
                    .ok_or(TemplateError::Syntax("unterminated raw string"))?;
                self.pos += end + 2;
                Ok(Token::Str(trimmed[1..=end].to_string()))
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = trimmed
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(trimmed.len());
                self.pos += len;
                Ok(Token::Ident(trimmed[..len].to_string()))
            }
            _ => Err(TemplateError::Syntax(
                "only function calls with quoted arguments are supported (env, secret, default)",
            )),
        }
    }

    /// A double-quoted string with Go's common escapes.
    fn quoted(&mut self) -> Result<Token, TemplateError> {
        let mut out = String::new();
        let mut chars = self.src[self.pos + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 2;
                    return Ok(Token::Str(out));
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    _ => return Err(TemplateError::Syntax("unsupported escape in a quoted string")),
                },
                '\n' => break,
                c => out.push(c),
            }
        }
        Err(TemplateError::Syntax("unterminated quoted string"))
    }
}
