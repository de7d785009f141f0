//! The name of a policy under evaluation: one of the built-in [`PolicyKind`]s, or an external
//! agent declared in the evaluation's configuration (`[agents.NAME]`).
//!
//! Results, records and reports name policies by [`PolicyId`]; the built-ins' behaviour (what
//! they propose, the guards they run behind) stays on [`PolicyKind`]. A `PolicyId` serialises as
//! its bare name, exactly as a `PolicyKind` does, so result lines of built-in policies read the
//! same whichever type wrote them.

use crate::policy::PolicyKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;

/// A policy's identity. Built-ins order first (in report order), then external agents by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyId {
    /// A built-in policy.
    Builtin(PolicyKind),
    /// An external agent, by its declared name (interned: a run names a handful of agents).
    External(&'static str),
}

/// Names of external agents seen by this process, each stored once, so that `PolicyId` stays
/// `Copy` like the `PolicyKind` it extends.
static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

fn intern(name: &str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

impl PolicyId {
    /// The policy called `name`: a built-in if one has that name (built-in names win), else an
    /// external agent's name.
    pub fn from_name(name: &str) -> PolicyId {
        match PolicyKind::from_name(name) {
            Some(kind) => PolicyId::Builtin(kind),
            None => PolicyId::External(intern(name)),
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyId::Builtin(kind) => kind.as_str(),
            PolicyId::External(name) => name,
        }
    }

    /// The built-in policy, if it is one.
    pub fn builtin(self) -> Option<PolicyKind> {
        match self {
            PolicyId::Builtin(kind) => Some(kind),
            PolicyId::External(_) => None,
        }
    }

    /// Whether it is an external agent.
    pub fn is_external(self) -> bool {
        matches!(self, PolicyId::External(_))
    }

    /// Whether its actions are an agent's (every external agent's are).
    pub fn is_agent(self) -> bool {
        self.builtin().is_none_or(PolicyKind::is_agent)
    }

    /// Whether it is the simulated LLM behind the kernel (see [`PolicyKind::is_constrained_llm`]).
    pub fn is_constrained_llm(self) -> bool {
        self.builtin().is_some_and(PolicyKind::is_constrained_llm)
    }

    /// Whether a name is usable for an external agent: 1 to 64 characters of lower-case ASCII
    /// letters, digits, `-` and `_`, starting with a letter (it names files, plot legends and
    /// table rows).
    pub fn check_external_name(name: &str) -> Result<(), String> {
        let ok = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "agent name `{name}`: use 1 to 64 lower-case letters, digits, `-` or `_`, starting with a letter"
            ))
        }
    }
}

impl From<PolicyKind> for PolicyId {
    fn from(kind: PolicyKind) -> Self {
        PolicyId::Builtin(kind)
    }
}

impl PartialEq<PolicyKind> for PolicyId {
    fn eq(&self, other: &PolicyKind) -> bool {
        *self == PolicyId::Builtin(*other)
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PolicyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PolicyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if PolicyKind::from_name(&name).is_none() {
            PolicyId::check_external_name(&name).map_err(serde::de::Error::custom)?;
        }
        Ok(PolicyId::from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_serialise_as_their_kind_does_and_sort_first() {
        for kind in PolicyKind::ALL {
            let id = PolicyId::from(kind);
            assert_eq!(
                serde_json::to_string(&id).unwrap(),
                serde_json::to_string(&kind).unwrap()
            );
            assert_eq!(PolicyId::from_name(kind.as_str()), id);
        }
        let ext = PolicyId::from_name("heuristic");
        assert!(ext.is_external() && ext.is_agent() && !ext.is_constrained_llm());
        assert!(PolicyId::from(PolicyKind::Oracle) < ext);
        let back: PolicyId = serde_json::from_str("\"heuristic\"").unwrap();
        assert_eq!(back, ext);
        assert!(serde_json::from_str::<PolicyId>("\"Bad Name\"").is_err());
        assert_eq!(
            PolicyId::from_name("heuristic").as_str().as_ptr(),
            ext.as_str().as_ptr()
        );
    }
}
