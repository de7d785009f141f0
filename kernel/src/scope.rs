//! The recovery scope of an incident: which services a plan may touch and in which order they
//! may restart (DESIGN §3).
//!
//! A scope is computed by the monitoring side, never by the agent: [`crate::groups`] infers it
//! from the trace-derived graph and the symptom service (the deepest service whose own SLO alert
//! fires). It lists restart-coupled **groups** in a valid restart order (callees before callers),
//! the **order** constraints between groups (`[a, b]`: group `a` must finish restarting before
//! group `b` starts), start-up couplings inside a group, the **hubs** that need a drain around a
//! restart, and the services the size cap **truncated** away.
//!
//! # JSON form
//!
//! ```json
//! {
//!   "incident": "inc-7",
//!   "symptom": "search",
//!   "groups": [{"members": ["geo"]}, {"members": ["rate"]}, {"members": ["search"]}],
//!   "order": [[0, 2], [1, 2]],
//!   "startup_order": [],
//!   "requires_drain": [],
//!   "truncated": []
//! }
//! ```
//!
//! `layers` (groups that may restart in parallel, in order) is derived from `order`; it is
//! written out for readers and, when present in input, must match.

use crate::input::{InputError, parse_json};
use crate::isa::IncidentId;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::hash::BuildHasher;

/// Largest scope file read, in bytes.
pub const MAX_SCOPE_JSON_BYTES: usize = 4 << 20;

/// Most truncated services a scope lists by name (the total is counted separately).
pub const MAX_TRUNCATED_LISTED: usize = 8;

/// A restart-coupled group: services that restart together (a strongly connected component of
/// the scope, including start-up couplings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartGroup {
    /// Member services.
    pub members: Vec<String>,
}

/// JSON file form of a [`RecoveryScope`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeFile {
    /// Incident id.
    pub incident: IncidentId,
    /// The symptom service the scope was computed from.
    pub symptom: String,
    /// Groups in a valid restart order.
    pub groups: Vec<RestartGroup>,
    /// `[a, b]`: group `a` restarts before group `b` (b depends on a).
    #[serde(default)]
    pub order: Vec<(usize, usize)>,
    /// `[x, y]` inside one group: `x` restarts before `y` (y reads x only at start-up).
    #[serde(default)]
    pub startup_order: Vec<(String, String)>,
    /// Hubs: restarting them needs a drain before and a restore after.
    #[serde(default)]
    pub requires_drain: Vec<String>,
    /// Reachable services left out because the scope hit its size cap: callees of members
    /// outside the scope, at most [`MAX_TRUNCATED_LISTED`] of them by name.
    #[serde(default)]
    pub truncated: Vec<String>,
    /// How many such callees there were in all (≥ `truncated.len()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_total: Option<usize>,
    /// Parallel layers of groups, derived from `order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Vec<usize>>>,
}

/// Where a service sits in a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeSlot {
    /// Index of its restart group.
    pub group: usize,
    /// Whether restarting it needs a drain around it.
    pub requires_drain: bool,
}

/// A checked recovery scope with its derived ordering relation. See the
/// [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryScope {
    file: ScopeFile,
    layers: Vec<Vec<usize>>,
    slots: Slots,
    /// Bit `a` of row `b` (`words` u64s per row) is set when group `a` must restart before
    /// group `b` (transitively). Bitsets keep the hot validation path free of lookups.
    before: Vec<u64>,
    words: usize,
    /// Transitive start-up order pairs inside groups.
    startup_before: BTreeSet<(String, String)>,
}

impl RecoveryScope {
    /// Checks a scope file and derives layers and the restart-order relation.
    pub fn new(file: ScopeFile) -> Result<Self, (String, String)> {
        // Flat buffers throughout: inference builds a scope per query, so this is a hot path.
        let err = |path: String, msg: String| Err((path, msg));
        let mut slots = match Slots::new(&file.groups) {
            Ok(slots) => slots,
            Err(SlotError::Empty(g)) => {
                return err(
                    format!("groups[{g}].members"),
                    "a group needs members".into(),
                );
            }
            Err(SlotError::Repeat(g, m)) => {
                return err(
                    format!("groups[{g}].members[{m}]"),
                    format!("`{}` is in more than one group", file.groups[g].members[m]),
                );
            }
        };
        let n = file.groups.len();
        for (i, &(a, b)) in file.order.iter().enumerate() {
            if a >= n || b >= n || a == b {
                return err(
                    format!("order[{i}]"),
                    format!("[{a}, {b}] must name two different groups of the {n}"),
                );
            }
        }
        // Kahn's algorithm over the order pairs sorted by source (a CSR adjacency) gives a
        // topological order, or finds a cycle, and longest-path layers. Inference writes the
        // pairs sorted already; then they are used in place.
        let by_source: std::borrow::Cow<[(usize, usize)]> = if file.order.is_sorted() {
            std::borrow::Cow::Borrowed(&file.order)
        } else {
            let mut sorted = file.order.clone();
            sorted.sort_unstable();
            std::borrow::Cow::Owned(sorted)
        };
        // One buffer for the three per-group arrays: out-edge offsets, in-degrees, layers.
        let mut counts = vec![0usize; 3 * n + 1];
        let (first_out, rest) = counts.split_at_mut(n + 1);
        let (indegree, layer_of) = rest.split_at_mut(n);
        for &(a, b) in by_source.iter() {
            first_out[a + 1] += 1;
            indegree[b] += 1;
        }
        for g in 0..n {
            first_out[g + 1] += first_out[g];
        }
        // `topo` doubles as the queue: groups are appended once ready and visited in turn.
        // Layers and the transitive relation below do not depend on which topological order
        // this is.
        let mut topo: Vec<usize> = Vec::with_capacity(n);
        topo.extend((0..n).filter(|&g| indegree[g] == 0));
        let mut next = 0;
        while next < topo.len() {
            let g = topo[next];
            next += 1;
            for &(_, s) in &by_source[first_out[g]..first_out[g + 1]] {
                layer_of[s] = layer_of[s].max(layer_of[g] + 1);
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    topo.push(s);
                }
            }
        }
        if topo.len() != n {
            return err("order".into(), "the order constraints form a cycle".into());
        }
        // before[g] = every group that must restart before g, as bits; in topological order
        // each group passes its own bit and set to its successors.
        let words = n.div_ceil(64).max(1);
        let mut before = vec![0u64; n * words];
        for &g in &topo {
            for &(_, s) in &by_source[first_out[g]..first_out[g + 1]] {
                for w in 0..words {
                    before[s * words + w] |= before[g * words + w];
                }
                before[s * words + g / 64] |= 1 << (g % 64);
            }
        }
        let depth = layer_of.iter().copied().max().map_or(0, |d| d + 1);
        let mut layers = vec![Vec::new(); depth];
        for g in 0..n {
            layers[layer_of[g]].push(g);
        }
        if let Some(given) = &file.layers
            && *given != layers
        {
            return err(
                "layers".into(),
                format!("do not match the order constraints (expected {layers:?})"),
            );
        }
        let mut startup_before = BTreeSet::new();
        for (i, (x, y)) in file.startup_order.iter().enumerate() {
            match (slots.get(&file.groups, x), slots.get(&file.groups, y)) {
                (Some(gx), Some(gy)) if gx.group == gy.group && x != y => {
                    startup_before.insert((x.clone(), y.clone()));
                }
                _ => {
                    return err(
                        format!("startup_order[{i}]"),
                        format!("`{x}` and `{y}` must be two members of one group"),
                    );
                }
            }
        }
        // Close the start-up relation transitively (groups are small: at most MAX_GROUP_SIZE).
        loop {
            let extra: Vec<(String, String)> = startup_before
                .iter()
                .flat_map(|(a, b)| {
                    startup_before
                        .range((b.clone(), String::new())..)
                        .take_while(move |(b2, _)| b2 == b)
                        .map(move |(_, c)| (a.clone(), c.clone()))
                })
                .filter(|p| !startup_before.contains(p))
                .collect();
            if extra.is_empty() {
                break;
            }
            startup_before.extend(extra);
        }
        if let Some((x, _)) = startup_before.iter().find(|(a, b)| a == b) {
            return err(
                "startup_order".into(),
                format!("start-up order around `{x}` is cyclic"),
            );
        }
        for (i, hub) in file.requires_drain.iter().enumerate() {
            match slots.find(&file.groups, hub) {
                Some(i) => slots.entries[i].requires_drain = true,
                None => {
                    return err(
                        format!("requires_drain[{i}]"),
                        format!("`{hub}` is not in the scope"),
                    );
                }
            }
        }
        for (i, name) in file.truncated.iter().enumerate() {
            if slots.find(&file.groups, name).is_some() {
                return err(
                    format!("truncated[{i}]"),
                    format!("`{name}` is both in scope and truncated"),
                );
            }
        }
        if !file.symptom.is_empty() && slots.find(&file.groups, &file.symptom).is_none() {
            return err(
                "symptom".into(),
                format!("symptom `{}` is not in the scope", file.symptom),
            );
        }
        Ok(RecoveryScope {
            file,
            layers,
            slots,
            before,
            words,
            startup_before,
        })
    }

    /// Reads a scope from JSON (see the [module documentation](self)).
    pub fn from_json_str(text: &str, source_name: &str) -> Result<Self, InputError> {
        let file: ScopeFile = parse_json(text, source_name, "scope", MAX_SCOPE_JSON_BYTES)?;
        RecoveryScope::new(file).map_err(|(path, msg)| InputError::invalid(source_name, path, msg))
    }

    /// The incident the scope belongs to.
    pub fn incident(&self) -> &IncidentId {
        &self.file.incident
    }

    /// The symptom service.
    pub fn symptom(&self) -> &str {
        &self.file.symptom
    }

    /// Groups in restart order.
    pub fn groups(&self) -> &[RestartGroup] {
        &self.file.groups
    }

    /// Parallel layers of group indices, in order.
    pub fn layers(&self) -> &[Vec<usize>] {
        &self.layers
    }

    /// Number of services in scope.
    pub fn len(&self) -> usize {
        self.slots.entries.len()
    }

    /// Whether the scope holds no service.
    pub fn is_empty(&self) -> bool {
        self.slots.entries.is_empty()
    }

    /// Services in scope, group by group.
    pub fn services(&self) -> impl Iterator<Item = &str> + '_ {
        self.file
            .groups
            .iter()
            .flat_map(|g| g.members.iter().map(String::as_str))
    }

    /// Whether `service` is in scope.
    pub fn contains(&self, service: &str) -> bool {
        self.slots.find(&self.file.groups, service).is_some()
    }

    /// Where `service` sits in the scope, if it is in it.
    pub fn slot(&self, service: &str) -> Option<ScopeSlot> {
        self.slots.get(&self.file.groups, service)
    }

    /// The group index of `service`.
    pub fn group_of(&self, service: &str) -> Option<usize> {
        self.slot(service).map(|s| s.group)
    }

    /// Whether group `first` must finish restarting before group `second` starts.
    pub fn group_precedes(&self, first: usize, second: usize) -> bool {
        let n = self.file.groups.len();
        first < n
            && second < n
            && self.before[second * self.words + first / 64] & (1 << (first % 64)) != 0
    }

    /// Whether, inside one group, `second` reads `first` at start-up (directly or not).
    pub fn startup_precedes(&self, first: &str, second: &str) -> bool {
        !self.startup_before.is_empty()
            && self
                .startup_before
                .contains(&(first.to_string(), second.to_string()))
    }

    /// Whether `service` was reachable but cut by the size cap.
    pub fn is_truncated(&self, service: &str) -> bool {
        self.file.truncated.iter().any(|t| t == service)
    }

    /// Whether the size cap cut the scope (some callees of members were left out).
    pub fn was_truncated(&self) -> bool {
        !self.file.truncated.is_empty() || self.file.truncated_total.is_some_and(|n| n > 0)
    }

    /// Truncated services.
    pub fn truncated(&self) -> &[String] {
        &self.file.truncated
    }

    /// Whether restarting `service` needs a drain around it.
    pub fn requires_drain(&self, service: &str) -> bool {
        self.slot(service).is_some_and(|s| s.requires_drain)
    }

    /// Hubs needing a drain.
    pub fn hubs(&self) -> &[String] {
        &self.file.requires_drain
    }

    /// Whether `first` must finish restarting before `second` starts: `second`'s group depends
    /// (transitively) on `first`'s, or both share a group and `second` reads `first` at start-up.
    pub fn must_restart_before(&self, first: &str, second: &str) -> bool {
        match (self.group_of(first), self.group_of(second)) {
            (Some(a), Some(b)) if a != b => self.group_precedes(a, b),
            (Some(_), Some(_)) => self.startup_precedes(first, second),
            _ => false,
        }
    }

    /// The direct order constraints between groups.
    pub fn order(&self) -> &[(usize, usize)] {
        &self.file.order
    }

    /// The scope's file form, with layers filled in.
    pub fn to_file(&self) -> ScopeFile {
        ScopeFile {
            layers: Some(self.layers.clone()),
            ..self.file.clone()
        }
    }
}

/// Where each member sits, found by name without owning a copy of it: an open-addressing
/// table of entries that point back into the scope's groups, so building a scope (once per
/// inference query) clones no names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Slots {
    /// Members in group-then-member order.
    entries: Vec<SlotEntry>,
    /// Power-of-two table of indices into `entries` (`EMPTY` when free), linear probing.
    table: Vec<u32>,
}

/// Why groups cannot be indexed: an empty group, or a member `(group, member)` named earlier.
enum SlotError {
    Empty(usize),
    Repeat(usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SlotEntry {
    hash: u64,
    group: u32,
    member: u32,
    requires_drain: bool,
}

impl Slots {
    const EMPTY: u32 = u32::MAX;

    /// Indexes every member of `groups`, in order: the first empty group or repeated name (at
    /// its second place) is the error.
    fn new(groups: &[RestartGroup]) -> Result<Self, SlotError> {
        let members: usize = groups.iter().map(|g| g.members.len()).sum();
        let mut slots = Slots {
            entries: Vec::with_capacity(members),
            table: vec![Self::EMPTY; (2 * members).next_power_of_two().max(2)],
        };
        for (g, group) in groups.iter().enumerate() {
            if group.members.is_empty() {
                return Err(SlotError::Empty(g));
            }
            for (m, name) in group.members.iter().enumerate() {
                let hash = Self::hash(name);
                let at = match slots.probe(groups, name, hash) {
                    Ok(_) => return Err(SlotError::Repeat(g, m)),
                    Err(free) => free,
                };
                slots.table[at] = slots.entries.len() as u32;
                slots.entries.push(SlotEntry {
                    hash,
                    group: g as u32,
                    member: m as u32,
                    requires_drain: false,
                });
            }
        }
        Ok(slots)
    }

    fn hash(name: &str) -> u64 {
        FxBuildHasher.hash_one(name)
    }

    /// `Ok(entry index)` of `name`, or `Err(free table position)` where it would go.
    fn probe(&self, groups: &[RestartGroup], name: &str, hash: u64) -> Result<usize, usize> {
        let mask = self.table.len() - 1;
        // The high bits: FxHash mixes them best.
        let mut at = (hash >> 32) as usize & mask;
        loop {
            let i = self.table[at];
            if i == Self::EMPTY {
                return Err(at);
            }
            let e = &self.entries[i as usize];
            if e.hash == hash && groups[e.group as usize].members[e.member as usize] == name {
                return Ok(i as usize);
            }
            at = (at + 1) & mask;
        }
    }

    /// The entry index of `name`.
    fn find(&self, groups: &[RestartGroup], name: &str) -> Option<usize> {
        self.probe(groups, name, Self::hash(name)).ok()
    }

    fn get(&self, groups: &[RestartGroup], name: &str) -> Option<ScopeSlot> {
        self.find(groups, name).map(|i| {
            let e = &self.entries[i];
            ScopeSlot {
                group: e.group as usize,
                requires_drain: e.requires_drain,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(text: &str) -> Result<RecoveryScope, InputError> {
        RecoveryScope::from_json_str(text, "s.json")
    }

    #[test]
    fn derives_layers_and_transitive_order() {
        let s = scope(
            r#"{"incident": "i", "symptom": "a",
                "groups": [{"members": ["c"]}, {"members": ["b1", "b2"]}, {"members": ["a"]}, {"members": ["x"]}],
                "order": [[0, 1], [1, 2]],
                "startup_order": [["b1", "b2"]]}"#,
        )
        .unwrap();
        assert_eq!(s.layers(), &[vec![0, 3], vec![1], vec![2]]);
        assert!(s.must_restart_before("c", "a"), "transitive");
        assert!(!s.must_restart_before("a", "c"));
        assert!(!s.must_restart_before("x", "a"), "no path, no constraint");
        assert!(s.must_restart_before("b1", "b2"));
        assert!(!s.must_restart_before("b2", "b1"));
        assert_eq!(s.len(), 5);
        let back = RecoveryScope::new(s.to_file()).unwrap();
        assert_eq!(
            back.to_file(),
            s.to_file(),
            "layers written out are accepted back"
        );
    }

    #[test]
    fn inconsistent_scopes_are_rejected_with_a_path() {
        let cases = [
            (
                r#"{"incident": "i", "symptom": "a", "groups": [{"members": ["a"]}, {"members": ["a"]}]}"#,
                "groups[1].members[0]",
            ),
            (
                r#"{"incident": "i", "symptom": "a", "groups": [{"members": ["a"]}, {"members": ["b"]}], "order": [[0, 1], [1, 0]]}"#,
                "order",
            ),
            (
                r#"{"incident": "i", "symptom": "a", "groups": [{"members": ["a"]}], "order": [[0, 3]]}"#,
                "order[0]",
            ),
            (
                r#"{"incident": "i", "symptom": "a", "groups": [{"members": ["a"]}], "requires_drain": ["z"]}"#,
                "requires_drain[0]",
            ),
            (
                r#"{"incident": "i", "symptom": "q", "groups": [{"members": ["a"]}]}"#,
                "symptom",
            ),
            (
                r#"{"incident": "i", "symptom": "a", "groups": [{"members": ["a"]}], "truncated": ["a"]}"#,
                "truncated[0]",
            ),
            (
                r#"{"incident": "i", "symptom": "a", "groups": [{"members": ["a"]}, {"members": ["b"]}], "layers": [[1], [0]]}"#,
                "layers",
            ),
        ];
        for (text, path) in cases {
            let err = scope(text).unwrap_err();
            assert_eq!(err.path, path, "{err}");
        }
    }
}
