//! [`PolicyId`]: the copyable handle of a registered policy, which the CLI, the explorer, `eval`,
//! `judgeq tasks` and the exports pass around, parse and save.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::OnceLock;

use serde::de::{self, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::interface::{Input, Policy};
use super::params::Param;
use super::{PolicyError, PolicySettings, policies};

/// A registered policy. Equal, hashed and saved by its id (`snapkv`); ordered as the registry
/// lists policies (display order).
///
/// Saved as the id in every format: `"snapkv"` in JSON, `snapkv` (`r#h2o-window`) in the
/// explorer's RON storage, as the enum of policies was before the registry.
#[derive(Clone, Copy)]
pub struct PolicyId(&'static dyn Policy);

impl PolicyId {
    /// The handle of `policy` (register it in `policies/mod.rs` too).
    pub const fn of(policy: &'static dyn Policy) -> Self {
        Self(policy)
    }

    /// Every registered policy, in display order.
    pub fn all() -> Vec<PolicyId> {
        policies::REGISTRY
            .iter()
            .map(|r| PolicyId(r.policy))
            .collect()
    }

    /// The policy itself.
    pub fn policy(self) -> &'static dyn Policy {
        self.0
    }

    /// Machine name used on the command line, in file names and saved settings (`snapkv`,
    /// `h2o-window`).
    pub fn id(self) -> &'static str {
        self.0.id()
    }

    /// Human name (`SnapKV`, `H2O (window)`).
    pub fn label(self) -> &'static str {
        self.0.label()
    }

    /// One line about what it keeps.
    pub fn summary(self) -> &'static str {
        self.0.summary()
    }

    /// Its parameters.
    pub fn params(self) -> &'static [Param] {
        self.0.params()
    }

    /// The session inputs it needs under `settings`.
    pub fn needs(self, settings: &PolicySettings) -> Vec<Input> {
        self.0.needs(settings)
    }

    /// Its colour in the explorer (RGB), from the registry.
    pub fn colour(self) -> [u8; 3] {
        self.entry()
            .map_or(policies::UNREGISTERED_COLOUR, |r| r.colour)
    }

    /// Whether `judgeq evict` compares it when no `--policies` are given.
    pub fn compared_by_default(self) -> bool {
        self.entry().is_some_and(|r| r.compared_by_default)
    }

    fn entry(self) -> Option<&'static policies::Registered> {
        policies::REGISTRY
            .iter()
            .find(|r| r.policy.id() == self.id())
    }

    /// Place in the registry (unregistered policies last).
    fn position(self) -> usize {
        policies::REGISTRY
            .iter()
            .position(|r| r.policy.id() == self.id())
            .unwrap_or(usize::MAX)
    }
}

impl PartialEq for PolicyId {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for PolicyId {}

impl Hash for PolicyId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl PartialOrd for PolicyId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PolicyId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.position(), self.id()).cmp(&(other.position(), other.id()))
    }
}

impl fmt::Debug for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyId({})", self.id())
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for PolicyId {
    type Err = PolicyError;

    /// Parses an id or a label, ignoring case, spaces, `-` and `_` (`snapkv`, `SnapKV`,
    /// `h2o-window`, `Full KV`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let squash = |t: &str| -> String {
            t.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect()
        };
        let wanted = squash(s);
        PolicyId::all()
            .into_iter()
            .find(|p| squash(p.id()) == wanted || squash(p.label()) == wanted)
            .ok_or_else(|| PolicyError::UnknownPolicy(s.trim().to_owned()))
    }
}

/// The name the ids are saved under, as the enum's before the registry.
const SAVED_NAME: &str = "PolicyKind";

/// Every registered id, for deserialisers that list the expected names.
fn ids() -> &'static [&'static str] {
    static IDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    IDS.get_or_init(|| policies::REGISTRY.iter().map(|r| r.policy.id()).collect())
}

impl Serialize for PolicyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = u32::try_from(self.position()).unwrap_or(u32::MAX);
        serializer.serialize_unit_variant(SAVED_NAME, index, self.id())
    }
}

impl<'de> Deserialize<'de> for PolicyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum(SAVED_NAME, ids(), IdVisitor)
    }
}

struct IdVisitor;

impl IdVisitor {
    fn find<E: de::Error>(id: &str) -> Result<PolicyId, E> {
        PolicyId::all()
            .into_iter()
            .find(|p| p.id() == id)
            .ok_or_else(|| E::unknown_variant(id, ids()))
    }
}

impl<'de> Visitor<'de> for IdVisitor {
    type Value = PolicyId;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a policy id")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<PolicyId, E> {
        Self::find(id)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<PolicyId, A::Error> {
        let (IdName(id), variant) = data.variant()?;
        variant.unit_variant()?;
        Self::find(&id)
    }
}

/// A policy id read as an identifier.
struct IdName(String);

impl<'de> Deserialize<'de> for IdName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = IdName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a policy id")
            }
            fn visit_str<E: de::Error>(self, id: &str) -> Result<IdName, E> {
                Ok(IdName(id.to_owned()))
            }
        }
        deserializer.deserialize_identifier(NameVisitor)
    }
}
