//! A YAML document as a tree of positioned nodes.
//!
//! The decK loader parses into this tree (not straight into typed structs) so that it
//! can keep going after the first problem and report every error with its line and
//! column. Plugin configs stay in this form in the model until their plugin validates
//! them.

use super::model::Mark;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Keys in document order. Keys are strings in every decK document; the loader
    /// reports any other key type as an error.
    Map(Vec<(String, Mark, Node)>),
}

impl Node {
    pub fn null() -> Node {
        Node { mark: Mark::default(), value: NodeValue::Null }
    }

    /// What kind of value this is, for messages ("expected a list, found a string").
    pub fn kind(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a map",
        }
    }

    /// Null, an empty list, map or string: a value that does not count as set (decK's
    /// and Kong's rule for defaults).
    pub fn is_unset(&self) -> bool {
        match &self.value {
            NodeValue::Null => true,
            NodeValue::Seq(items) => items.is_empty(),
            NodeValue::Map(entries) => entries.is_empty(),
            NodeValue::String(s) => s.is_empty(),
            _ => false,
        }
    }

    /// The value under `key` when this node is a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }
}
