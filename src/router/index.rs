//! Which candidates a request can match at all, so that [`Router::find`] tries a few
//! routes instead of every one.
//!
//! Every candidate is in exactly one of three groups, each kept in precedence order
//! (ascending candidate index):
//!
//! - **by host**: candidates whose hosts are all plain names, filed under each of their
//!   names (ASCII lower-case, port left to the full check). A request whose host is
//!   none of a candidate's names cannot match it, so only one bucket is looked at.
//! - **by path prefix**: host-less candidates with prefix paths, in a byte trie of
//!   their prefixes. Only the prefixes met walking the request path down the trie can
//!   match it.
//! - **the rest** (wildcard hosts, regex paths, routes with neither hosts nor paths):
//!   tried for every request.
//!
//! [`Router::find`] tries the bucket, the trie's prefixes and the rest, each in order,
//! and keeps the lowest index that fully matches; a list is left as soon as it reaches
//! an index not below the best so far. Every candidate that could match is in a group
//! it looked at, so the answer is the scan's: the first match in precedence order.
//!
//! Cost: the host is lower-cased into a stack buffer and hashed (only when some
//! candidate is filed by host), and the trie is walked one node per path byte until the
//! path leaves it: O(host + path) plus the candidates actually tried, instead of
//! O(routes). The lists are built once per configuration and shared by every worker.
//!
//! [`Router::find`]: super::Router::find

use super::host::HostKind;
use super::{Candidate, PathRule};
use crate::fasthash::FastMap;

/// Longest host name filed by host. A route host longer than any DNS name goes to
/// the rest, so a request host that does not fit the lookup buffer can match nothing
/// in the map.
pub(super) const MAX_INDEXED_HOST: usize = 255;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// Exact host (lower-case) → candidates with that name among their hosts. The
    /// map's keys come from the configuration; a request only chooses which one it
    /// looks up, so a weak hash cannot be turned into long probe chains.
    by_host: FastMap<Box<[u8]>, Box<[u32]>>,
    prefixes: PrefixTrie,
    rest: Box<[u32]>,
}

impl Index {
    /// Files `candidates`, which are in precedence order.
    pub(super) fn new(candidates: &[Candidate]) -> Index {
        let mut by_host: FastMap<Box<[u8]>, Vec<u32>> = FastMap::default();
        let mut trie = TrieBuilder::default();
        let mut rest = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^32 candidates");
            let plain_hosts = !c.hosts.is_empty()
                && c.hosts.iter().all(|h| h.kind == HostKind::Exact && h.name.len() <= MAX_INDEXED_HOST);
            if plain_hosts {
                for h in c.hosts.iter() {
                    let list = by_host.entry(h.name.clone()).or_default();
                    // A name listed twice (with two ports, say) files the candidate once.
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
            } else if let (true, PathRule::Prefixes(prefixes)) = (c.hosts.is_empty(), &c.paths) {
                for p in prefixes.iter() {
                    trie.insert(p, i);
                }
            } else {
                rest.push(i);
            }
        }
        Index {
            by_host: by_host.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect(),
            prefixes: trie.freeze(),
            rest: rest.into(),
        }
    }

    /// Candidates that match whatever the host and path: always tried.
    pub(super) fn rest(&self) -> &[u32] {
        &self.rest
    }

    /// Candidates filed under `host`, a request host name without port, in any case.
    pub(super) fn by_host(&self, host: &[u8]) -> &[u32] {
        if self.by_host.is_empty() || host.len() > MAX_INDEXED_HOST {
            return &[];
        }
        let mut buf = [0u8; MAX_INDEXED_HOST];
        let lower = &mut buf[..host.len()];
        lower.copy_from_slice(host);
        lower.make_ascii_lowercase();
        self.by_host.get(&*lower).map_or(&[], |l| l)
    }

    /// Calls `f` with the candidates of every configured prefix that `path` starts
    /// with, shortest prefix first.
    pub(super) fn with_prefixes_of(&self, path: &[u8], f: impl FnMut(&[u32])) {
        self.prefixes.walk(path, f);
    }
}

/// A byte trie of the prefix paths, flattened: nodes, their children and their
/// candidates each in one array, so a walk touches a few cache lines.
#[derive(Debug, Default)]
struct PrefixTrie {
    /// `nodes[0]` is the root (the empty prefix, which no normalised prefix is).
    nodes: Vec<TrieNode>,
    /// Every node's children as (byte, node), sorted by byte within a node.
    edges: Vec<(u8, u32)>,
    /// Every node's candidates, ascending within a node.
    ends: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct TrieNode {
    edges: (u32, u32),
    ends: (u32, u32),
}

impl PrefixTrie {
    fn walk(&self, path: &[u8], mut f: impl FnMut(&[u32])) {
        if self.nodes.is_empty() {
            return;
        }
        let mut node = self.nodes[0];
        for &b in path {
            let edges = &self.edges[node.edges.0 as usize..node.edges.1 as usize];
            let Ok(at) = edges.binary_search_by_key(&b, |&(e, _)| e) else { return };
            node = self.nodes[edges[at].1 as usize];
            if node.ends.0 < node.ends.1 {
                f(&self.ends[node.ends.0 as usize..node.ends.1 as usize]);
            }
        }
    }
}

/// The trie while it is being built: per node, its children (sorted by byte) and its
/// candidates.
#[derive(Default)]
struct TrieBuilder {
    nodes: Vec<BuilderNode>,
}

type BuilderNode = (Vec<(u8, u32)>, Vec<u32>);

impl TrieBuilder {
    fn insert(&mut self, prefix: &[u8], candidate: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Default::default());
        }
        let mut at = 0usize;
        for &b in prefix {
            let next = self.nodes.len() as u32;
            let children = &mut self.nodes[at].0;
            at = match children.binary_search_by_key(&b, |&(e, _)| e) {
                Ok(k) => children[k].1 as usize,
                Err(k) => {
                    children.insert(k, (b, next));
                    self.nodes.push(Default::default());
                    next as usize
                }
            };
        }
        // Candidates arrive in ascending order; a prefix listed twice counts once.
        let ends = &mut self.nodes[at].1;
        if ends.last() != Some(&candidate) {
            ends.push(candidate);
        }
    }

    fn freeze(self) -> PrefixTrie {
        let mut trie = PrefixTrie {
            nodes: Vec::with_capacity(self.nodes.len()),
            edges: Vec::with_capacity(self.nodes.len().saturating_sub(1)),
            ends: Vec::new(),
        };
        for (children, ends) in self.nodes {
            let e0 = trie.edges.len() as u32;
            trie.edges.extend_from_slice(&children);
            let c0 = trie.ends.len() as u32;
            trie.ends.extend_from_slice(&ends);
            trie.nodes.push(TrieNode { edges: (e0, trie.edges.len() as u32), ends: (c0, trie.ends.len() as u32) });
        }
        trie
    }
}
