//! decK's `${{ ... }}` templating, applied to the raw file text before YAML parsing.
//!
//! decK renders the whole state file as a Go `text/template` with the delimiters `${{`
//! and `}}` and a function map of exactly `env`, `toBool`, `toInt`, `toFloat` and
//! `indent`. This module implements that subset and nothing more, so that a file decK
//! accepts renders to the same text here, and anything else (Go's `printf`, `.Field`,
//! `$var`, `if`, comments) is rejected with its position rather than half-supported:
//!
//! - `env "DECK_NAME"`: the name must start with `DECK_`; an unset variable is an error,
//!   a set-but-empty one renders as "".
//! - `toBool`, `toInt`, `toFloat`: parse a string as Go's `strconv.ParseBool`, `Atoi` and
//!   `ParseFloat` do; the value is printed back as Go's `fmt` prints it (`true`, `42`,
//!   `1e+06`). Hexadecimal float syntax (`0x1p-2`) is not accepted.
//! - `indent N`: puts N spaces after every newline of its string argument, for multi-line
//!   values inside an indented YAML block.
//! - Pipes (`a | f` passes `a` as the last argument of `f`), parentheses, `"..."` and
//!   `` `raw` `` strings, integer literals, and `${{-` / `-}}` trimming of adjacent
//!   whitespace (space, tab, CR, LF), as in Go.
//!
//! Invariant: the rendered text comes with a [`SourceMap`], so that the YAML parser and
//! the validator, which only see rendered text, still report positions in the file the
//! user wrote. Text copied from the source maps back exactly; text produced by an action
//! (even a multi-line `indent` value) maps to the position of the action's `${{`.
//!
//! Cost: one pass over the text; each action is tokenised and evaluated once. Only run
//! at load time.

use super::model::Mark;

/// The rendered text plus the way back to the source.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub map: SourceMap,
}

/// A problem found while rendering, positioned in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub mark: Mark,
    pub message: String,
}

/// Maps character offsets of the rendered text back to line and column of the source.
#[derive(Debug, Clone)]
pub struct SourceMap {
    /// Byte offset in the source where each line starts.
    line_starts: Vec<usize>,
    /// Sorted by `out`; the first segment starts at 0.
    segments: Vec<Segment>,
    /// The byte offset of every [`CHAR_STEP`]th character of the source; empty when the
    /// source is ASCII (a character is a byte). A position costs a search and a walk of
    /// under `CHAR_STEP` characters, not a walk from the segment's start: a large file
    /// has thousands of positions in one segment.
    sampled: Vec<usize>,
    source: String,
}

/// Characters between two entries of [`SourceMap::sampled`].
const CHAR_STEP: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Character offset in the rendered text where this segment starts.
    out: usize,
    /// Byte offset in the source: where the copied text starts, or where the action's
    /// `${{` is.
    src: usize,
    copied: bool,
}

impl SourceMap {
    /// The identity map for text that had no template actions.
    pub fn identity(source: &str) -> SourceMap {
        SourceMap::new(source, vec![Segment { out: 0, src: 0, copied: true }])
    }

    fn new(source: &str, segments: Vec<Segment>) -> SourceMap {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        let sampled = if source.is_ascii() {
            Vec::new()
        } else {
            source.char_indices().step_by(CHAR_STEP).map(|(b, _)| b).collect()
        };
        SourceMap { line_starts, segments, sampled, source: source.to_string() }
    }

    /// The source position of the character at `out` (a character offset into the
    /// rendered text, as the YAML parser counts).
    pub fn mark(&self, out: usize) -> Mark {
        let i = self.segments.partition_point(|s| s.out <= out).saturating_sub(1);
        let Some(seg) = self.segments.get(i) else {
            return Mark { line: 1, column: 1 };
        };
        let src = if seg.copied { self.byte_of_char(self.char_of_byte(seg.src) + (out - seg.out)) } else { seg.src };
        self.mark_of_byte(src)
    }

    /// The character index of a byte offset (a character boundary) in the source.
    fn char_of_byte(&self, byte: usize) -> usize {
        if self.sampled.is_empty() {
            return byte;
        }
        let k = self.sampled.partition_point(|&b| b <= byte).saturating_sub(1);
        k * CHAR_STEP + self.source[self.sampled[k]..byte].chars().count()
    }

    /// The byte offset of the source's `ch`th character; the source's length past its end.
    fn byte_of_char(&self, ch: usize) -> usize {
        if self.sampled.is_empty() {
            return ch.min(self.source.len());
        }
        let Some(&start) = self.sampled.get(ch / CHAR_STEP) else { return self.source.len() };
        match self.source[start..].char_indices().nth(ch % CHAR_STEP) {
            Some((b, _)) => start + b,
            None => self.source.len(),
        }
    }

    /// Line and column (in characters, 1-based) of a byte offset in the source.
    pub fn mark_of_byte(&self, byte: usize) -> Mark {
        let byte = byte.min(self.source.len());
        let line = self.line_starts.partition_point(|&s| s <= byte);
        let start = self.line_starts[line - 1];
        // Through the sampled offsets, not a count from the line's start: a one-line
        // document (JSON as `curl -d` sends it) would cost a walk of the line per node.
        let column = self.char_of_byte(byte) - self.char_of_byte(start) + 1;
        Mark { line: line as u32, column: column as u32 }
    }
}

const OPEN: &str = "${{";
const CLOSE: &str = "}}";

/// Go's `text/template` notion of trimmable space.
fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Renders `source`, looking `DECK_*` variables up with `env`. Returns every problem
/// found, in file order; rendering continues after a failed action so that one run
/// reports all unset variables at once.
pub fn render(source: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Rendered, Vec<TemplateError>> {
    let lines = SourceMap::identity(source);
    let mut out = String::with_capacity(source.len());
    let mut out_chars = 0usize;
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut pos = 0usize;
    // Whether the previous action ended with `-}}`.
    let mut trim_next = false;

    loop {
        let next = source[pos..].find(OPEN).map(|i| pos + i);
        let literal_end = next.unwrap_or(source.len());
        let mut lit_start = pos;
        if trim_next {
            let lit = &source[pos..literal_end];
            lit_start += lit.len() - lit.trim_start_matches(is_go_space).len();
        }
        let mut lit_end = literal_end;
        let trim_before = next.is_some_and(|at| left_trim_marker(&source[at + OPEN.len()..]));
        if trim_before {
            lit_end = lit_start + source[lit_start..literal_end].trim_end_matches(is_go_space).len();
        }
        if lit_start < lit_end {
            segments.push(Segment { out: out_chars, src: lit_start, copied: true });
            let lit = &source[lit_start..lit_end];
            out.push_str(lit);
            out_chars += lit.chars().count();
        }
        let Some(at) = next else { break };

        let body_start = at + OPEN.len() + if trim_before { 1 } else { 0 };
        let Some((body_end, close_end, trim_after)) = find_close(source, body_start) else {
            errors.push(TemplateError {
                mark: lines.mark_of_byte(at),
                message: "unterminated template action: '${{' without a matching '}}'".into(),
            });
            break;
        };
        match eval_action(source, body_start, body_end, env, &lines) {
            Ok(text) => {
                if !text.is_empty() {
                    segments.push(Segment { out: out_chars, src: at, copied: false });
                    out.push_str(&text);
                    out_chars += text.chars().count();
                }
            }
            Err(e) => errors.push(e),
        }
        trim_next = trim_after;
        pos = close_end;
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    if segments.is_empty() {
        segments.push(Segment { out: 0, src: 0, copied: true });
    }
    Ok(Rendered { text: out, map: SourceMap::new(source, segments) })
}

/// `${{-` trims only when the hyphen is followed by space, as in Go (`${{-3}}` is the
/// number -3).
fn left_trim_marker(after_open: &str) -> bool {
    let mut chars = after_open.chars();
    chars.next() == Some('-') && chars.next().is_some_and(is_go_space)
}

/// Finds the `}}` closing an action whose body starts at `from`, skipping string
/// literals. Returns (end of the body, end of the `}}`, whether it was `-}}`).
fn find_close(source: &str, from: usize) -> Option<(usize, usize, bool)> {
    let bytes = source.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
                i += 1;
            }
            b'}' if source[i..].starts_with(CLOSE) => {
                let body = &source[from..i];
                let trim = body.ends_with('-') && body[..body.len() - 1].ends_with(is_go_space);
                let end = if trim { i - 1 } else { i };
                return Some((end, i + CLOSE.len(), trim));
            }
            _ => i += 1,
        }
    }
    None
}

/// A token of an action body, with its byte offset in the source.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Pipe,
    Open,
    Close,
}

fn tokenize(source: &str, start: usize, end: usize, lines: &SourceMap) -> Result<Vec<(Token, usize)>, TemplateError> {
    let err = |at: usize, message: String| TemplateError { mark: lines.mark_of_byte(at), message };
    let body = &source[start..end];
    let mut tokens = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        let at = start + i;
        match c {
            c if is_go_space(c) => {
                chars.next();
            }
            '|' => {
                chars.next();
                tokens.push((Token::Pipe, at));
            }
            '(' => {
                chars.next();
                tokens.push((Token::Open, at));
            }
            ')' => {
                chars.next();
                tokens.push((Token::Close, at));
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('\\') => s.push('\\'),
                            Some('"') => s.push('"'),
                            Some('\'') => s.push('\''),
                            other => {
                                let shown = other.map(String::from).unwrap_or_default();
                                return Err(err(at, format!("unsupported escape '\\{shown}' in string literal")));
                            }
                        },
                        '\n' => break,
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err(err(at, "unterminated string literal".into()));
                }
                tokens.push((Token::Str(s), at));
            }
            '`' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '`' {
                        closed = true;
                        break;
                    }
                    s.push(c);
                }
                if !closed {
                    return Err(err(at, "unterminated raw string literal".into()));
                }
                tokens.push((Token::Str(s), at));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let mut text = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | '_') {
                        text.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                match text.parse::<i64>() {
                    Ok(n) => tokens.push((Token::Int(n), at)),
                    Err(_) => return Err(err(at, format!("unsupported number '{text}' (only integers are accepted)"))),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push((Token::Ident(name), at));
            }
            other => {
                return Err(err(
                    at,
                    format!("unexpected '{other}' in template action (only env, toBool, toInt, toFloat and indent are supported)"),
                ));
            }
        }
    }
    Ok(tokens)
}

/// A value flowing through a pipeline. Strings remember the variable they came from,
/// so conversion errors can name it.
#[derive(Debug, Clone)]
enum Value {
    Str { text: String, var: Option<String> },
    Int(i64),
    Bool(bool),
    Float(f64),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str { .. } => "string",
            Value::Int(_) => "integer",
            Value::Bool(_) => "boolean",
            Value::Float(_) => "float",
        }
    }

    fn render(self) -> String {
        match self {
            Value::Str { text, .. } => text,
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Float(f) => go_format_float(f),
        }
    }
}

struct Evaluator<'a> {
    tokens: Vec<(Token, usize)>,
    next: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
    lines: &'a SourceMap,
    /// Where the body ends, for "expected ..." errors at the end.
    end: usize,
}

fn eval_action(
    source: &str,
    start: usize,
    end: usize,
    env: &dyn Fn(&str) -> Option<String>,
    lines: &SourceMap,
) -> Result<String, TemplateError> {
    let tokens = tokenize(source, start, end, lines)?;
    if tokens.is_empty() {
        return Err(TemplateError {
            mark: lines.mark_of_byte(start),
            message: "empty template action '${{ }}'".into(),
        });
    }
    let mut ev = Evaluator { tokens, next: 0, env, lines, end };
    let value = ev.pipeline()?;
    if let Some((_, at)) = ev.tokens.get(ev.next) {
        return Err(ev.error(*at, "unexpected token after the end of the pipeline".into()));
    }
    Ok(value.render())
}

impl Evaluator<'_> {
    fn error(&self, at: usize, message: String) -> TemplateError {
        TemplateError { mark: self.lines.mark_of_byte(at), message }
    }

    fn peek(&self) -> Option<&(Token, usize)> {
        self.tokens.get(self.next)
    }

    /// pipeline := command ('|' command)*
    fn pipeline(&mut self) -> Result<Value, TemplateError> {
        let mut value = self.command(None)?;
        while matches!(self.peek(), Some((Token::Pipe, _))) {
            self.next += 1;
            value = self.command(Some(value))?;
        }
        Ok(value)
    }

    /// command := function argument*; a piped value becomes the last argument.
    fn command(&mut self, piped: Option<Value>) -> Result<Value, TemplateError> {
        let (token, at) = match self.peek() {
            Some(t) => t.clone(),
            None => return Err(self.error(self.end, "expected a function name".into())),
        };
        self.next += 1;
        let Token::Ident(name) = token else {
            return Err(self.error(at, "expected a function (env, toBool, toInt, toFloat or indent)".into()));
        };
        let mut args = Vec::new();
        loop {
            match self.peek().cloned() {
                Some((Token::Str(s), arg_at)) => {
                    self.next += 1;
                    args.push((Value::Str { text: s, var: None }, arg_at));
                }
                Some((Token::Int(n), arg_at)) => {
                    self.next += 1;
                    args.push((Value::Int(n), arg_at));
                }
                Some((Token::Open, open_at)) => {
                    self.next += 1;
                    let v = self.pipeline()?;
                    match self.peek() {
                        Some((Token::Close, _)) => self.next += 1,
                        _ => return Err(self.error(open_at, "unclosed '('".into())),
                    }
                    args.push((v, open_at));
                }
                Some((Token::Ident(other), other_at)) => {
                    return Err(self.error(
                        other_at,
                        format!("unexpected '{other}': a function call as an argument needs parentheses"),
                    ));
                }
                _ => break,
            }
        }
        if let Some(v) = piped {
            args.push((v, at));
        }
        self.call(&name, at, args)
    }

    fn call(&self, name: &str, at: usize, args: Vec<(Value, usize)>) -> Result<Value, TemplateError> {
        let want = match name {
            "env" | "toBool" | "toInt" | "toFloat" => 1,
            "indent" => 2,
            _ => {
                return Err(self.error(
                    at,
                    format!(
                        "unknown template function '{name}' (decK supports env, toBool, toInt, toFloat and indent)"
                    ),
                ))
            }
        };
        if args.len() != want {
            return Err(
                self.error(at, format!("wrong number of arguments for {name}: want {want}, got {}", args.len()))
            );
        }
        let string_arg = |index: usize, what: &str| -> Result<(String, Option<String>), TemplateError> {
            match &args[index] {
                (Value::Str { text, var }, _) => Ok((text.clone(), var.clone())),
                (other, arg_at) => {
                    Err(self.error(*arg_at, format!("{name} expects a string {what}, got {}", other.kind())))
                }
            }
        };
        match name {
            "env" => {
                let (var, _) = string_arg(0, "variable name")?;
                if !var.starts_with("DECK_") {
                    return Err(self.error(
                        at,
                        format!(
                            "environment variables in the state file must be prefixed with 'DECK_', found: '{var}'"
                        ),
                    ));
                }
                match (self.env)(&var) {
                    Some(text) => Ok(Value::Str { text, var: Some(var) }),
                    None => {
                        Err(self.error(at, format!("environment variable '{var}' present in state file but not set")))
                    }
                }
            }
            "toBool" => {
                let (text, var) = string_arg(0, "argument")?;
                parse_go_bool(&text).map(Value::Bool).ok_or_else(|| self.conversion_error(at, &text, var, "a boolean"))
            }
            "toInt" => {
                let (text, var) = string_arg(0, "argument")?;
                text.parse::<i64>().map(Value::Int).map_err(|_| self.conversion_error(at, &text, var, "an integer"))
            }
            "toFloat" => {
                let (text, var) = string_arg(0, "argument")?;
                parse_go_float(&text).map(Value::Float).ok_or_else(|| self.conversion_error(at, &text, var, "a float"))
            }
            _ => {
                let spaces = match &args[0] {
                    (Value::Int(n), _) if *n >= 0 => *n as usize,
                    (other, arg_at) => {
                        return Err(self.error(
                            *arg_at,
                            format!("indent expects a non-negative integer first, got {}", other.kind()),
                        ))
                    }
                };
                let (text, var) = string_arg(1, "second argument")?;
                let pad = format!("\n{}", " ".repeat(spaces));
                Ok(Value::Str { text: text.replace('\n', &pad), var })
            }
        }
    }

    /// A variable's value is never shown, only its name: it may be a secret (piped
    /// through `toInt` by mistake), and messages end up in logs and Admin API answers.
    /// A literal is shown; the file already holds it.
    fn conversion_error(&self, at: usize, text: &str, var: Option<String>, what: &str) -> TemplateError {
        match var {
            Some(v) => self.error(at, format!("cannot parse the value of '{v}' as {what}")),
            None => self.error(at, format!("cannot parse {text:?} as {what}")),
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal syntax and the special values; Rust's
/// parser agrees with Go on these except that Go also allows `_` separators only with a
/// base prefix (which is hex floats, not accepted here).
fn parse_go_float(s: &str) -> Option<f64> {
    let digits = s.trim_start_matches(['+', '-']);
    let lower = digits.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.to_ascii_lowercase().parse().ok();
    }
    if !digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    s.parse().ok()
}

/// Formats a float as Go's `fmt` prints a `float64` (`%v`, which is `%g` with the
/// shortest round-tripping digits): exponent form (`1e+06`, `1.5e-07`, at least two
/// exponent digits) when the decimal exponent is below -4 or at least 6, plain
/// decimal otherwise (`3.14`, `100000`).
fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "-1.2345e6".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    let dp = exp + 1;
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    if dp <= 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-dp) as usize));
    }
    let dp = dp as usize;
    if digits.len() <= dp {
        format!("{sign}{digits}{}", "0".repeat(dp - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..dp], &digits[dp..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{mark_inside as inside, Rng};

    fn env(name: &str) -> Option<String> {
        match name {
            "DECK_HOST" => Some("api.example.com".into()),
            "DECK_EMPTY" => Some(String::new()),
            "DECK_PORT" => Some("8080".into()),
            "DECK_FLAG" => Some("T".into()),
            "DECK_RATIO" => Some("0.25".into()),
            "DECK_BIG" => Some("1000000".into()),
            "DECK_BAD" => Some("eight".into()),
            "DECK_PEM" => Some("line1\nline2\nline3".into()),
            _ => None,
        }
    }

    fn ok(text: &str) -> String {
        render(text, &env).expect("renders").text
    }

    fn err(text: &str) -> Vec<TemplateError> {
        render(text, &env).expect_err("fails")
    }

    #[test]
    fn env_with_deck_prefix_is_substituted() {
        assert_eq!(ok("host: ${{ env \"DECK_HOST\" }}\n"), "host: api.example.com\n");
    }

    #[test]
    fn env_without_deck_prefix_is_an_error_quoting_the_name() {
        let e = err("a: 1\nb: ${{ env \"HOME\" }}\n");
        assert_eq!(e[0].mark, Mark { line: 2, column: 8 });
        assert_eq!(
            e[0].message,
            "environment variables in the state file must be prefixed with 'DECK_', found: 'HOME'"
        );
    }

    #[test]
    fn unset_variable_is_an_error_with_its_position() {
        let e = err("a: 1\n  b: x ${{ env \"DECK_NOPE\" }}\n");
        assert_eq!(e[0].mark, Mark { line: 2, column: 12 });
        assert_eq!(e[0].message, "environment variable 'DECK_NOPE' present in state file but not set");
    }

    #[test]
    fn every_unset_variable_is_reported() {
        let e = err("a: ${{ env \"DECK_A\" }}\nb: ${{ env \"DECK_B\" }}\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].mark.line, 2);
    }

    #[test]
    fn empty_variable_renders_as_empty_string() {
        assert_eq!(ok("a: '${{ env \"DECK_EMPTY\" }}'"), "a: ''");
    }

    #[test]
    fn to_int_prints_the_integer() {
        assert_eq!(ok("${{ env \"DECK_PORT\" | toInt }}"), "8080");
        let e = err("x: ${{ env \"DECK_BAD\" | toInt }}");
        assert_eq!(e[0].message, "cannot parse the value of 'DECK_BAD' as an integer");
        assert_eq!(e[0].mark, Mark { line: 1, column: 25 });
    }

    #[test]
    fn a_variable_that_does_not_convert_is_named_but_its_value_never_shown() {
        // Regression: the message quoted the value, so a secret piped through toInt by
        // mistake reached the log (and `ringgate check`'s output).
        let secret = |name: &str| (name == "DECK_CLIENT_SECRET").then(|| "s3cr3t-value".to_string());
        for filter in ["toInt", "toBool", "toFloat"] {
            let e = render(&format!("a: ${{{{ env \"DECK_CLIENT_SECRET\" | {filter} }}}}"), &secret).unwrap_err();
            assert!(e[0].message.starts_with("cannot parse the value of 'DECK_CLIENT_SECRET' as "), "{}", e[0].message);
            assert!(!e[0].message.contains("s3cr3t-value"), "{}", e[0].message);
        }
        assert_eq!(err("${{ toInt \"x1\" }}")[0].message, "cannot parse \"x1\" as an integer", "a literal is shown");
    }

    #[test]
    fn to_bool_accepts_go_spellings() {
        assert_eq!(ok("${{ env \"DECK_FLAG\" | toBool }}"), "true");
        assert_eq!(ok("${{ toBool \"0\" }}"), "false");
        let e = err("${{ env \"DECK_BAD\" | toBool }}");
        assert_eq!(e[0].message, "cannot parse the value of 'DECK_BAD' as a boolean");
    }

    #[test]
    fn to_float_prints_like_go_fmt() {
        assert_eq!(ok("${{ env \"DECK_RATIO\" | toFloat }}"), "0.25");
        assert_eq!(ok("${{ env \"DECK_BIG\" | toFloat }}"), "1e+06");
        assert_eq!(ok("${{ env \"DECK_PORT\" | toFloat }}"), "8080");
        assert_eq!(ok("${{ toFloat \"0.00001\" }}"), "1e-05");
        assert_eq!(ok("${{ toFloat \"-123456.5\" }}"), "-123456.5");
        let e = err("${{ env \"DECK_BAD\" | toFloat }}");
        assert_eq!(e[0].message, "cannot parse the value of 'DECK_BAD' as a float");
    }

    #[test]
    fn indent_pads_every_continuation_line() {
        assert_eq!(ok("pem: |\n  ${{ env \"DECK_PEM\" | indent 2 }}\n"), "pem: |\n  line1\n  line2\n  line3\n");
    }

    #[test]
    fn trim_markers_remove_adjacent_whitespace() {
        assert_eq!(ok("a  \n ${{- env \"DECK_PORT\" -}} \n b"), "a8080b");
        assert_eq!(ok("a ${{ env \"DECK_PORT\" -}}\n b"), "a 8080b");
        assert_eq!(ok("a\n ${{- env \"DECK_PORT\" }} b"), "a8080 b");
    }

    #[test]
    fn unknown_function_is_an_error_with_position() {
        let e = err("a: ${{ printf \"%s\" \"x\" }}");
        assert_eq!(e[0].mark, Mark { line: 1, column: 8 });
        assert!(e[0].message.starts_with("unknown template function 'printf'"), "{}", e[0].message);
    }

    #[test]
    fn field_access_is_rejected() {
        let e = err("a: ${{ .Values.x }}");
        assert!(e[0].message.starts_with("unexpected '.'"), "{}", e[0].message);
    }

    #[test]
    fn unterminated_action_is_an_error_at_its_start() {
        let e = err("a: 1\nb: ${{ env \"DECK_HOST\"\n");
        assert_eq!(e[0].mark, Mark { line: 2, column: 4 });
        assert!(e[0].message.starts_with("unterminated template action"), "{}", e[0].message);
    }

    #[test]
    fn wrong_argument_count_is_an_error() {
        let e = err("${{ env }}");
        assert_eq!(e[0].message, "wrong number of arguments for env: want 1, got 0");
    }

    #[test]
    fn parenthesised_call_is_an_argument() {
        assert_eq!(ok("${{ toInt (env \"DECK_PORT\") }}"), "8080");
    }

    #[test]
    fn source_map_points_after_multiline_expansion_at_the_original_line() {
        let src = "pem: |\n  ${{ env \"DECK_PEM\" | indent 2 }}\nnext: 1\n";
        let r = render(src, &env).unwrap();
        let at = r.text.find("next").unwrap();
        let chars = r.text[..at].chars().count();
        assert_eq!(r.map.mark(chars), Mark { line: 3, column: 1 });
        let line3 = r.text.find("line3").unwrap();
        assert_eq!(r.map.mark(r.text[..line3].chars().count()), Mark { line: 2, column: 3 });
    }

    #[test]
    fn source_map_finds_every_character_of_non_ascii_text_past_many_steps() {
        // Multi-byte characters before, between and after actions, over several
        // CHAR_STEPs: every character of the rendered text maps back to the source
        // character it was copied from (the one a character-by-character walk finds).
        let line = "name: \u{e9}t\u{e9}-\u{1f600}-\u{4e2d}\u{6587} # \u{fc}ber\n";
        let src = format!("{}port: ${{{{ env \"DECK_PORT\" }}}} \u{e0}\n{}", line.repeat(5), line.repeat(5));
        let r = render(&src, &env).unwrap();
        let src_chars: Vec<(usize, char)> = src.char_indices().collect();
        let walk = |byte: usize| {
            let line = src[..byte].matches('\n').count() as u32 + 1;
            let start = src[..byte].rfind('\n').map_or(0, |i| i + 1);
            Mark { line, column: src[start..byte].chars().count() as u32 + 1 }
        };
        let action_end = src.find("}}").unwrap() + 2;
        let shift = r.text.chars().count() as isize - src_chars.len() as isize;
        for (out, c) in r.text.chars().enumerate() {
            let expected = if out < src[..src.find("${{").unwrap()].chars().count() {
                walk(src_chars[out].0)
            } else if c.is_ascii_digit() {
                continue; // the substituted value: the action's position, checked elsewhere
            } else {
                let i = (out as isize - shift) as usize;
                assert!(src_chars[i].0 >= action_end);
                walk(src_chars[i].0)
            };
            assert_eq!(r.map.mark(out), expected, "character {out} ({c:?})");
        }
        assert_eq!(r.map.mark(r.text.chars().count() + 10).line as usize, src.lines().count() + 1, "past the end");
    }

    /// Text around actions: what YAML cares about, non-ASCII, line ends.
    const TEXT: &[&str] = &[
        "a: ",
        "- ",
        "# c",
        "\n",
        "\r\n",
        "\t",
        "  ",
        "key: value\n",
        "\u{e9}",
        "\u{1f600}",
        "\u{4e2d}",
        "'",
        "\"",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "*a",
        "$",
        "x",
    ];

    /// Whole actions, valid or not, set variables or not.
    const ACTIONS: &[&str] = &[
        "${{ env \"DECK_A\" }}",
        "${{ env \"DECK_NL\" }}",
        "${{ env \"DECK_Q\" }}",
        "${{ env \"DECK_T\" }}",
        "${{ env \"DECK_U\" }}",
        "${{- env \"DECK_A\" -}}",
        "${{ env \"DECK_NL\" | indent 4 }}",
        "${{ env `DECK_U` }}",
        "${{ env \"DECK_N\" | toInt }}",
        "${{ toFloat \"1e6\" }}",
        "${{ toBool \"T\" }}",
        "${{ indent 2 (env \"DECK_NL\") }}",
        "${{ env \"DECK_EMPTY\" }}",
        "${{ env \"DECK_MISSING\" }}",
        "${{ env \"HOME\" }}",
        "${{ env \"DECK_A\" | toInt }}",
        "${{ }}",
        "${{ .X }}",
    ];

    /// What mutations insert: halves of actions, tokens, broken quoting.
    const PIECES: &[&str] = &[
        "${{",
        "${{- ",
        "}}",
        " -}}",
        "}",
        "{",
        "$",
        " env ",
        "\"DECK_A\"",
        "\"",
        "`",
        " | ",
        "toInt",
        "indent -1",
        "(",
        ")",
        " 42 ",
        "-3",
        "\\",
        "\\q",
        "\n",
        "\u{1f600}",
    ];

    /// Values with newlines, quotes, template delimiters and YAML syntax in them.
    fn hostile_env(name: &str) -> Option<String> {
        match name {
            "DECK_A" => Some("plain".into()),
            "DECK_NL" => Some("line1\n- item\nkey: v # c\n".into()),
            "DECK_Q" => Some("\"'`\\ {x: [1]} ${{ env \"DECK_A\" }}".into()),
            "DECK_T" => Some("${{".into()),
            "DECK_U" => Some("\u{e9}\u{1f600}\r\n\u{4e2d}: -".into()),
            "DECK_N" => Some("-17".into()),
            "DECK_EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    /// Text and actions, then a few random insertions and cuts at character boundaries.
    fn random_template(rng: &mut Rng) -> String {
        let mut s = String::new();
        for _ in 0..rng.below(12) {
            s.push_str(if rng.chance(3) { rng.pick(ACTIONS) } else { rng.pick(TEXT) });
        }
        for _ in 0..rng.below(4) {
            let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
            let at = rng.pick(&bounds);
            if rng.chance(2) {
                s.insert_str(at, rng.pick(PIECES));
            } else {
                let end = rng.pick(&bounds).max(at);
                s.replace_range(at..end, "");
            }
        }
        s
    }

    /// The source text from `mark` on.
    fn from_mark(source: &str, mark: Mark) -> &str {
        let line_start: usize = source.split('\n').take(mark.line as usize - 1).map(|l| l.len() + 1).sum();
        let rest = &source[line_start..];
        let skip = rest.char_indices().nth(mark.column as usize - 1).map_or(rest.len(), |(b, _)| b);
        &rest[skip..]
    }

    #[test]
    fn random_templates_never_panic_and_every_position_maps_into_the_source() {
        let mut rng = Rng(0x5eed_7e3a_11a7_e001);
        for _ in 0..10_000 {
            let src = random_template(&mut rng);
            match render(&src, &hostile_env) {
                Ok(r) => {
                    // The module's invariant: a rendered character maps back to the
                    // same character of the source (copied text) or to the `${{` of
                    // the action that produced it; positions never go backwards.
                    let mut previous = (1, 1);
                    for (out, c) in r.text.chars().enumerate() {
                        let mark = r.map.mark(out);
                        assert!(inside(&src, mark), "{src:?}: character {out} maps to {mark}");
                        let there = from_mark(&src, mark);
                        assert!(
                            there.starts_with(c) || there.starts_with(OPEN),
                            "{src:?} -> {:?}: character {out} ({c:?}) maps to {mark}, which holds {:?}",
                            r.text,
                            there.chars().next()
                        );
                        assert!((mark.line, mark.column) >= previous, "{src:?}: character {out} goes back");
                        previous = (mark.line, mark.column);
                    }
                    let end = r.map.mark(r.text.chars().count());
                    assert!(inside(&src, end), "{src:?}: the end maps to {end}");
                }
                Err(errors) => {
                    assert!(!errors.is_empty(), "{src:?}");
                    for e in &errors {
                        assert!(inside(&src, e.mark), "{src:?}: {} at {}", e.message, e.mark);
                    }
                    let marks: Vec<(u32, u32)> = errors.iter().map(|e| (e.mark.line, e.mark.column)).collect();
                    assert!(marks.windows(2).all(|w| w[0] <= w[1]), "{src:?}: errors out of file order {marks:?}");
                }
            }
        }
    }

    #[test]
    fn positions_on_a_long_line_count_columns_in_characters() {
        // A column used to be counted from the start of its line, so a one-line JSON
        // document (`curl -d @kong.json` to POST /config) cost time quadratic in its
        // length. Its time is measured in benches/config_scale.rs; this checks every
        // column of a long line, in ASCII and in characters of two and four bytes.
        for unit in ["ab: c, ", "\u{e9}\u{1f600}: c, "] {
            let src = format!("{{{}x: 1}}\n", unit.repeat(20_000));
            let r = render(&src, &env).unwrap();
            for out in 0..r.text.chars().count() {
                assert_eq!(r.map.mark(out), Mark { line: 1, column: out as u32 + 1 });
            }
        }
    }

    #[test]
    fn source_map_keeps_columns_after_a_substitution_on_the_same_line() {
        let src = "a: ${{ env \"DECK_PORT\" }} # c\n";
        let r = render(src, &env).unwrap();
        let hash = r.text.find('#').unwrap();
        assert_eq!(r.map.mark(hash), Mark { line: 1, column: 27 });
    }
}
