//! Rendered decK text → a positioned [`Node`] tree.
//!
//! Built on `saphyr-parser`, the event layer of the saphyr project (the maintained
//! successor of yaml-rust/yaml-rust2; serde_yaml is archived). We take events rather
//! than saphyr's own `MarkedYaml` tree because that tree keeps only the last of two
//! equal keys and has no position for keys, and we need both: a duplicate key is an
//! error here (decK's YAML reader would silently keep one of them, which can hide an
//! overridden `client_secret`), and an unknown key is reported at the key.
//!
//! Scalars are resolved with the YAML 1.2 core schema (`true`, `null`, `0x1f`, `.inf`;
//! not YAML 1.1's `yes`/`on`), and quoted scalars are always strings. Anchors and aliases
//! are resolved by copying the anchored node (with a cap on the total size of the
//! copies, the anchors' own included, against "billion laughs" documents); merge keys
//! (`<<`) are rejected, since YAML 1.2 has none and their meaning would be ambiguous.
//! Tags other than the core `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map` and
//! `!!seq` are rejected.
//!
//! Positions come from the parser in characters of the rendered text and are mapped
//! back to the source file through the template's [`SourceMap`]. Cost: linear in the
//! document; runs at load time only.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::model::Mark;
use super::node::{Node, NodeValue};
use super::template::SourceMap;

/// A problem found while parsing, positioned in the source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub mark: Mark,
    pub message: String,
}

/// How many nodes anchors and aliases may copy in total before the document is
/// refused. Anchors count too: each keeps a copy of its node, so anchors nested around
/// one large node would otherwise hold a copy of it per level.
const MAX_ALIAS_NODES: usize = 100_000;

/// How deep collections may nest (a decK document needs about a dozen levels). The
/// builder and every walker of the tree after it recurse: a document sent to the Admin
/// API must not be able to run them off the end of the stack, which aborts the process.
const MAX_DEPTH: usize = 128;

/// Parses one YAML document. An empty document is a `Null` node. Syntax errors stop
/// the parse; other problems (duplicate keys, unsupported tags) are collected and the
/// parse goes on, so that all of them are reported.
pub fn parse(text: &str, map: &SourceMap) -> Result<Node, Vec<YamlError>> {
    parse_documents(text, map, false).map(|mut docs| docs.remove(0))
}

/// Parses a stream of YAML documents (separated by `---`), as Kubernetes manifest files
/// hold them. Empty documents are skipped; an empty stream is one `Null` document.
pub fn parse_stream(text: &str, map: &SourceMap) -> Result<Vec<Node>, Vec<YamlError>> {
    parse_documents(text, map, true)
}

fn parse_documents(text: &str, map: &SourceMap, several: bool) -> Result<Vec<Node>, Vec<YamlError>> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        map,
        anchors: HashMap::new(),
        errors: Vec::new(),
        copied_nodes: 0,
        depth: 0,
    };
    match builder.documents(several) {
        Ok(node) if builder.errors.is_empty() => Ok(node),
        Ok(_) => Err(builder.errors),
        Err(fatal) => {
            builder.errors.push(fatal);
            Err(builder.errors)
        }
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    map: &'a SourceMap,
    anchors: HashMap<usize, Node>,
    errors: Vec<YamlError>,
    /// Nodes copied so far by anchors and aliases (capped at [`MAX_ALIAS_NODES`]).
    copied_nodes: usize,
    /// Collections open around the node being built.
    depth: usize,
}

impl<'a> Builder<'a> {
    fn mark(&self, span: &Span) -> Mark {
        self.map.mark(span.start.index())
    }

    fn scan_error(&self, e: ScanError) -> YamlError {
        YamlError { mark: self.map.mark(e.marker().index()), message: format!("invalid YAML: {}", e.info()) }
    }

    /// Refuses the document when a collection `nesting` levels deep, placed here, would
    /// nest beyond [`MAX_DEPTH`].
    fn check_depth(&self, nesting: usize, mark: Mark) -> Result<(), YamlError> {
        if self.depth + nesting > MAX_DEPTH {
            return Err(YamlError {
                mark,
                message: format!("collections nest more than {MAX_DEPTH} deep; refusing the document"),
            });
        }
        Ok(())
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(self.scan_error(e)),
            None => Err(YamlError {
                mark: Mark { line: 1, column: 1 },
                message: "invalid YAML: unexpected end of input".into(),
            }),
        }
    }

    /// The stream's documents: exactly one unless `several` (then empty ones are left
    /// out); at least one (a `Null` for an empty stream).
    fn documents(&mut self, several: bool) -> Result<Vec<Node>, YamlError> {
        let mut docs: Vec<Node> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    if !several && !docs.is_empty() {
                        return Err(YamlError {
                            mark: self.mark(&span),
                            message: "a decK file holds one YAML document; found a second one".into(),
                        });
                    }
                    let (event, span) = self.next()?;
                    let node = self.node(event, span)?;
                    if !(several && matches!(node.value, NodeValue::Null)) {
                        docs.push(node);
                    }
                }
                other => {
                    let node = self.node(other, span)?;
                    if docs.is_empty() {
                        docs.push(node);
                    }
                }
            }
        }
        if docs.is_empty() {
            docs.push(Node { mark: Mark { line: 1, column: 1 }, value: NodeValue::Null });
        }
        Ok(docs)
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, YamlError> {
        let mark = self.mark(&span);
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => (self.scalar(&text, style, tag.as_deref(), mark), anchor),
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "seq", mark);
                self.check_depth(1, mark)?;
                self.depth += 1;
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, span)?);
                }
                self.depth -= 1;
                (Node { mark, value: NodeValue::Seq(items) }, anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "map", mark);
                self.check_depth(1, mark)?;
                self.depth += 1;
                let node = self.mapping(mark)?;
                self.depth -= 1;
                (node, anchor)
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(YamlError { mark, message: "alias refers to an unknown anchor".into() });
                };
                self.check_depth(nesting(target), mark)?;
                charge_copy(&mut self.copied_nodes, count_nodes(target), mark)?;
                let mut copy = target.clone();
                copy.mark = mark;
                return Ok(copy);
            }
            _ => return Err(YamlError { mark, message: "invalid YAML: unexpected event".into() }),
        };
        if anchor != 0 {
            charge_copy(&mut self.copied_nodes, count_nodes(&node), mark)?;
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, mark: Mark) -> Result<Node, YamlError> {
        let mut entries: Vec<(String, Mark, Node)> = Vec::new();
        // Where each key was first written: one lookup per key, where a scan of the
        // entries made a map of many keys cost quadratic time.
        let mut seen: HashMap<String, Mark> = HashMap::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key = self.node(event, span)?;
            let (event, span) = self.next()?;
            let value = self.node(event, span)?;
            let key_text = match key.value {
                NodeValue::String(s) => s,
                NodeValue::Int(n) => n.to_string(),
                NodeValue::Bool(b) => b.to_string(),
                NodeValue::Float(f) => f.to_string(),
                NodeValue::Null => "null".to_string(),
                NodeValue::Seq(_) | NodeValue::Map(_) => {
                    self.errors.push(YamlError { mark: key.mark, message: "map keys must be plain strings".into() });
                    continue;
                }
            };
            if key_text == "<<" {
                self.errors.push(YamlError {
                    mark: key.mark,
                    message: "merge keys ('<<') are not supported; write the keys out".into(),
                });
                continue;
            }
            if let Some(first) = seen.get(&key_text) {
                self.errors.push(YamlError {
                    mark: key.mark,
                    message: format!("duplicate key '{key_text}' (first defined at {first})"),
                });
                continue;
            }
            seen.insert(key_text.clone(), key.mark);
            entries.push((key_text, key.mark, value));
        }
        Ok(Node { mark, value: NodeValue::Map(entries) })
    }

    fn check_collection_tag(&mut self, tag: Option<&Tag>, expected: &str, mark: Mark) {
        if let Some(tag) = tag {
            if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
                self.errors
                    .push(YamlError { mark, message: format!("unsupported YAML tag '{}{}'", tag.handle, tag.suffix) });
            }
        }
    }

    fn scalar(&mut self, text: &str, style: ScalarStyle, tag: Option<&Tag>, mark: Mark) -> Node {
        let value = match tag {
            None if style == ScalarStyle::Plain => resolve_plain(text),
            None => NodeValue::String(text.to_string()),
            Some(tag) if tag.is_yaml_core_schema() => {
                let resolved = match tag.suffix.as_str() {
                    "str" => Some(NodeValue::String(text.to_string())),
                    "int" => parse_int(text).map(NodeValue::Int),
                    "float" => parse_float(text).or_else(|| parse_int(text).map(|n| n as f64)).map(NodeValue::Float),
                    "bool" => parse_bool(text).map(NodeValue::Bool),
                    "null" => is_null(text).then_some(NodeValue::Null),
                    other => {
                        self.errors.push(YamlError { mark, message: format!("unsupported YAML tag '!!{other}'") });
                        Some(NodeValue::Null)
                    }
                };
                resolved.unwrap_or_else(|| {
                    self.errors.push(YamlError { mark, message: format!("'{text}' is not a valid !!{}", tag.suffix) });
                    NodeValue::Null
                })
            }
            Some(tag) => {
                self.errors
                    .push(YamlError { mark, message: format!("unsupported YAML tag '{}{}'", tag.handle, tag.suffix) });
                NodeValue::Null
            }
        };
        Node { mark, value }
    }
}

/// Adds `nodes` copied by an anchor or an alias to `copied`, refusing the document past
/// [`MAX_ALIAS_NODES`].
fn charge_copy(copied: &mut usize, nodes: usize, mark: Mark) -> Result<(), YamlError> {
    *copied += nodes;
    if *copied > MAX_ALIAS_NODES {
        return Err(YamlError {
            mark,
            message: format!("anchors and aliases copy more than {MAX_ALIAS_NODES} nodes; refusing the document"),
        });
    }
    Ok(())
}

/// How many collections deep `node` nests (0 for a scalar).
fn nesting(node: &Node) -> usize {
    match &node.value {
        NodeValue::Seq(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        NodeValue::Map(entries) => 1 + entries.iter().map(|(_, _, v)| nesting(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        NodeValue::Seq(items) => items.iter().map(count_nodes).sum(),
        NodeValue::Map(entries) => entries.iter().map(|(_, _, v)| count_nodes(v)).sum(),
        _ => 0,
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> NodeValue {
    if is_null(text) {
        NodeValue::Null
    } else if let Some(b) = parse_bool(text) {
        NodeValue::Bool(b)
    } else if let Some(n) = parse_int(text) {
        NodeValue::Int(n)
    } else if let Some(f) = parse_float(text) {
        NodeValue::Float(f)
    } else {
        NodeValue::String(text.to_string())
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(if text.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY }),
        ".nan" | ".NaN" | ".NAN" if unsigned == text => return Some(f64::NAN),
        _ => {}
    }
    // [0-9]* ( . [0-9]* )? ( [eE] [-+]? [0-9]+ )? with at least one digit before the exponent.
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + frac.len() == 0 || !digits_ok(whole) || !digits_ok(frac) {
        return None;
    }
    if let Some(exp) = exponent {
        let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        if exp.is_empty() || !digits_ok(exp) {
            return None;
        }
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{mark_inside, Rng};

    fn parse_ok(text: &str) -> Node {
        parse(text, &SourceMap::identity(text)).expect("parses")
    }

    fn parse_err(text: &str) -> Vec<YamlError> {
        parse(text, &SourceMap::identity(text)).expect_err("fails")
    }

    #[test]
    fn plain_scalars_resolve_with_the_core_schema() {
        let n = parse_ok("a: true\nb: 12\nc: 1.5\nd: ~\ne: yes\nf: '12'\ng: 0x10\n");
        assert_eq!(n.get("a").unwrap().value, NodeValue::Bool(true));
        assert_eq!(n.get("b").unwrap().value, NodeValue::Int(12));
        assert_eq!(n.get("c").unwrap().value, NodeValue::Float(1.5));
        assert_eq!(n.get("d").unwrap().value, NodeValue::Null);
        assert_eq!(n.get("e").unwrap().value, NodeValue::String("yes".into()));
        assert_eq!(n.get("f").unwrap().value, NodeValue::String("12".into()));
        assert_eq!(n.get("g").unwrap().value, NodeValue::Int(16));
    }

    #[test]
    fn keys_and_values_carry_line_and_column() {
        let n = parse_ok("top:\n  inner: [1, 2]\n");
        let NodeValue::Map(entries) = &n.value else { panic!("map") };
        assert_eq!(entries[0].1, Mark { line: 1, column: 1 });
        let inner = n.get("top").unwrap();
        let NodeValue::Map(entries) = &inner.value else { panic!("map") };
        assert_eq!(entries[0].1, Mark { line: 2, column: 3 });
        assert_eq!(entries[0].2.mark, Mark { line: 2, column: 10 });
    }

    #[test]
    fn duplicate_key_is_an_error_at_the_second_key() {
        let errors = parse_err("a: 1\nb: 2\na: 3\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].mark, Mark { line: 3, column: 1 });
        assert_eq!(errors[0].message, "duplicate key 'a' (first defined at 1:1)");
    }

    #[test]
    fn alias_is_resolved_to_a_copy_of_the_anchor() {
        let n = parse_ok("a: &x [1, 2]\nb: *x\n");
        assert_eq!(n.get("a").unwrap().value, n.get("b").unwrap().value);
        assert_eq!(n.get("b").unwrap().mark, Mark { line: 2, column: 4 });
    }

    #[test]
    fn merge_key_is_rejected() {
        let errors = parse_err("base: &b {x: 1}\nother:\n  <<: *b\n");
        assert_eq!(errors[0].mark, Mark { line: 3, column: 3 });
        assert!(errors[0].message.contains("merge keys"), "{}", errors[0].message);
    }

    #[test]
    fn syntax_error_is_positioned() {
        let errors = parse_err("a: [1, 2\nb: 3\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.starts_with("invalid YAML"), "{}", errors[0].message);
    }

    #[test]
    fn second_document_is_rejected() {
        let errors = parse_err("a: 1\n---\nb: 2\n");
        assert_eq!(errors[0].mark.line, 2);
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(parse_ok("").value, NodeValue::Null);
    }

    #[test]
    fn unknown_tag_is_rejected() {
        let errors = parse_err("a: !custom x\n");
        assert!(errors[0].message.contains("unsupported YAML tag"), "{}", errors[0].message);
    }

    #[test]
    fn alias_expansion_beyond_the_cap_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let errors = parse_err(&doc);
        assert!(errors[0].message.contains("anchors and aliases copy"), "{}", errors[0].message);
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_not_a_stack_overflow() {
        let deep = |n: usize| format!("{}x\n", "- ".repeat(n));
        assert!(matches!(parse_ok(&deep(MAX_DEPTH)).value, NodeValue::Seq(_)));
        let errors = parse_err(&deep(100_000));
        assert!(errors[0].message.contains("nest more than"), "{}", errors[0].message);
        let mut map = String::new();
        for i in 0..=MAX_DEPTH {
            map.push_str(&format!("{}k:\n", " ".repeat(i)));
        }
        assert!(parse_err(&map)[0].message.contains("nest more than"));
        // Aliases cannot stack anchors deeper than the limit either.
        let half = MAX_DEPTH / 2 + 1;
        let anchored =
            format!("a: &a {}1{}\nb: {}*a{}\n", "[".repeat(half), "]".repeat(half), "[".repeat(half), "]".repeat(half));
        assert!(parse_err(&anchored)[0].message.contains("nest more than"));
    }

    #[test]
    fn the_one_duplicate_among_many_keys_is_found_at_its_place() {
        // Each key used to be compared with every earlier one: quadratic, so a 16 MiB
        // `POST /config` body of short keys held the Admin API for hours. Its time is
        // measured in benches/config_scale.rs; this checks the result at a size.
        let doc: String = (0..20_000).map(|i| format!("k{i}: 1\n")).chain(["k7: 2\n".into()]).collect();
        let errors = parse_err(&doc);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "duplicate key 'k7' (first defined at 8:1)");
        assert_eq!(errors[0].mark, Mark { line: 20_001, column: 1 });
    }

    #[test]
    fn anchors_nested_around_a_wide_list_count_against_the_copy_cap() {
        // Regression: every anchor kept its own copy of its node, so anchors nested
        // 100 deep around a list of 2 000 items held 200 000 copies without a single
        // alias (a 400 kB document took 1.8 GB).
        let doc = format!("a: {}{}{}\n", "&x [".repeat(100), "x, ".repeat(2000), "]".repeat(100));
        let errors = parse_err(&doc);
        assert!(errors[0].message.contains("more than 100000 nodes"), "{}", errors[0].message);
        // One anchor on a list that size, used once, is fine.
        let doc = format!("a: &x [{}]\nb: *x\n", "x, ".repeat(2000));
        let n = parse_ok(&doc);
        assert_eq!(n.get("a").unwrap().value, n.get("b").unwrap().value);
    }

    /// The project's decK files and manifests, and documents like the tests' own.
    const FIXTURES: &[&str] = &[
        include_str!("../../config/minimal.yaml"),
        include_str!("../../config/kong-oidc.yaml"),
        include_str!("../../config/kong-services.yaml"),
        include_str!("../../config/kong-upstreams.yaml"),
        include_str!("../../config/k8s-oidc-plugin.yaml"),
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: 127.0.0.1\n  port: 9\n  routes:\n  - {name: r, paths: [\"~/a/(?<id>\\\\d+)$\"], methods: [GET]}\nconsumers:\n- username: alice\n  custom_id: \"42\"\n",
        "{\"_format_version\": \"3.0\", \"services\": [{\"host\": \"a\", \"port\": 99999, \"tags\": [\"x\"]}]}\n",
    ];

    /// What mutations put at the start or end of a line: YAML syntax, tags, anchors,
    /// aliases, merge keys, document markers, odd characters and huge numbers.
    const INSERTS: &[&str] = &[
        "&a ",
        "*a",
        "*nope",
        "!!int ",
        "!!str ",
        "!!float ",
        "!!bool ",
        "!!null ",
        "!!map ",
        "!!seq ",
        "!!binary ",
        "!custom ",
        "!<tag:yaml.org,2002:str> ",
        "<<: *a",
        "? ",
        "---",
        "...",
        "%YAML 1.2\n---\n",
        "%TAG ! x\n",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "- ",
        "# ",
        "'",
        "\"",
        "|",
        ">-",
        "\t",
        "\r",
        "\u{feff}",
        "\0",
        "\u{85}",
        "\u{2028}",
        "\u{1f600}",
        "99999999999999999999999999",
        "0x7fffffffffffffffff",
        "-0o77777777777777777777777",
        "1e99999",
        "-9223372036854775809",
        ".nan",
        "-.inf",
        "~",
        "null",
        "true",
        "yes",
    ];

    /// One random change of `doc`, at line or character level.
    fn mutate(rng: &mut Rng, doc: &mut String) {
        let mut lines: Vec<String> = doc.split('\n').map(str::to_string).collect();
        let n = lines.len();
        let i = rng.below(n);
        match rng.below(8) {
            // Indentation: deeper, shallower, or a tab.
            0 => lines[i].insert_str(0, rng.pick(&[" ", "  ", "    ", "\t"])),
            1 => {
                let cut = lines[i].len() - lines[i].trim_start_matches(' ').len();
                lines[i].replace_range(..cut.min(1 + rng.below(4)), "");
            }
            // Duplicated (so: duplicate keys), removed, moved lines.
            2 => {
                let copy = lines[i].clone();
                lines.insert(rng.below(n + 1), copy);
            }
            3 => {
                lines.remove(i);
            }
            4 => lines.swap(i, rng.below(n)),
            5 => {
                let piece = rng.pick(INSERTS);
                let at = if rng.chance(2) { lines[i].len() - lines[i].trim_start().len() } else { lines[i].len() };
                lines[i].insert_str(at, piece);
            }
            // A character replaced by another, ASCII or not.
            6 => {
                let bounds: Vec<usize> = lines[i].char_indices().map(|(b, _)| b).collect();
                if !bounds.is_empty() {
                    let at = rng.pick(&bounds);
                    let old = lines[i][at..].chars().next().map_or(0, char::len_utf8);
                    let c = if rng.chance(3) {
                        char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}')
                    } else {
                        rng.pick(b":-[]{}&*!|>'\"#%@`, ?\t") as char
                    };
                    lines[i].replace_range(at..at + old, &c.to_string());
                }
            }
            _ => lines.push(appendix(rng)),
        }
        *doc = lines.join("\n");
    }

    /// A top-level key holding something that stresses the limits: an alias ladder, deep
    /// nesting (around the limit), anchors nested around a list, a flow map with a
    /// repeated key.
    fn appendix(rng: &mut Rng) -> String {
        let key = format!("z{}", rng.below(1000));
        match rng.below(4) {
            0 => {
                // Small ones, and ones expanding to around the cap (3^11, 6^7, 10^5, ...).
                let (width, depth) =
                    rng.pick(&[(2, 3), (10, 3), (3, 11), (4, 9), (5, 7), (6, 7), (7, 6), (10, 5), (12, 5)]);
                let mut s = format!("{key}0: &{key}0 [{}]\n", vec!["x"; width].join(", "));
                for d in 1..depth {
                    let refs = vec![format!("*{key}{}", d - 1); width].join(", ");
                    s.push_str(&format!("{key}{d}: &{key}{d} [{refs}]\n"));
                }
                s
            }
            1 => {
                let depth = MAX_DEPTH - 4 + rng.below(8);
                if rng.chance(2) {
                    format!("{key}: {}1{}", "[".repeat(depth), "]".repeat(depth))
                } else {
                    format!("{key}: {}1{}", "{a: ".repeat(depth), "}".repeat(depth))
                }
            }
            2 => {
                let depth = 1 + rng.below(MAX_DEPTH);
                let anchors: String = (0..depth).map(|d| format!("&{key}{d} [")).collect();
                format!("{key}: {anchors}{}{}\nw: *{key}0", "x, ".repeat(1 + rng.below(200)), "]".repeat(depth))
            }
            _ => format!("{key}: {{a: 1, b: [2, {{c: 3}}], a: 4}}"),
        }
    }

    fn walk_marks(node: &Node, text: &str) {
        assert!(mark_inside(text, node.mark), "node at {} is outside the document", node.mark);
        match &node.value {
            NodeValue::Seq(items) => items.iter().for_each(|n| walk_marks(n, text)),
            NodeValue::Map(entries) => {
                for (key, mark, value) in entries {
                    assert!(mark_inside(text, *mark), "key {key:?} at {mark} is outside the document");
                    walk_marks(value, text);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn mutated_fixtures_parse_or_fail_with_positions_and_stay_bounded() {
        let mut rng = Rng(0x7a11_5eed_0bad_cafe);
        for _ in 0..1500 {
            let mut doc = rng.pick(FIXTURES).to_string();
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut doc);
            }
            let parsed = parse_stream(&doc, &SourceMap::identity(&doc));
            match parsed {
                Ok(docs) => {
                    for node in &docs {
                        walk_marks(node, &doc);
                        assert!(nesting(node) <= MAX_DEPTH, "{doc:?}");
                        // Every node is written in the text or copied by an alias.
                        let bound = 2 * doc.chars().count() + 2 + MAX_ALIAS_NODES;
                        assert!(count_nodes(node) <= bound, "{doc:?}");
                    }
                }
                Err(errors) => {
                    assert!(!errors.is_empty(), "{doc:?}");
                    for e in &errors {
                        assert!(mark_inside(&doc, e.mark), "{doc:?}: '{}' at {}", e.message, e.mark);
                    }
                }
            }
            // The single-document entry point agrees on positions as well.
            if let Err(errors) = parse(&doc, &SourceMap::identity(&doc)) {
                assert!(errors.iter().all(|e| mark_inside(&doc, e.mark)), "{doc:?}: {errors:?}");
            }
        }
    }
}
