//! Settings shared by every policy, with the documented defaults, and the values of every
//! policy's own parameters.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::params::{Param, ParamValue, ParamValues, TypedParam};
use super::{PolicyError, policies};
use crate::attention::{Granularity, GroupOrder, Pooling};

/// How policies score and select. `Default` gives the documented defaults: window 32,
/// max-pooling with kernel 7, per query head, group reduction before pooling, and every
/// policy's parameters at their defaults (4 sink tokens, Judge Q without the kept window
/// (variant a), PyramidKV β = 20, Ada-KV floor α = 0.2, random seed 0, Oracle ranking the raw
/// decoded attention: the Judge Q paper's critical-KV hit rate).
///
/// Saved as one flat record, `{"window": 32, "pooling": ..., "sinks": 4, ...}`: the shared
/// fields, then each registered parameter under its key. Missing fields take their defaults and
/// unknown ones are ignored, so settings saved before a policy existed still load.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySettings {
    /// Last-window size `w`: the entries window policies always keep, and the end of their
    /// scored range `[0, n − w)`. Default 32 (the Judge Q paper's baselines).
    pub window: usize,
    /// Smoothing of scores along the key axis for SnapKV, PyramidKV, Ada-KV and Judge Q.
    /// Default max-pooling, kernel 7. H2O and H2O (window) never pool; the Oracle pools when
    /// its `oracle_pooling` parameter says so.
    pub pooling: Pooling,
    /// Which heads own a keep set. Default per query head (the Judge Q authors' code).
    pub granularity: Granularity,
    /// Whether a GQA group is reduced before or after pooling (KV-head granularity only).
    /// Default before (Ada-KV).
    pub group_order: GroupOrder,
    /// Every policy's own parameters by key ([`super::Policy::params`]), read and written
    /// through [`PolicySettings::get`] and [`PolicySettings::set`].
    pub params: ParamValues,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            window: 32,
            pooling: Pooling::default(),
            granularity: Granularity::default(),
            group_order: GroupOrder::default(),
            params: ParamValues::default(),
        }
    }
}

impl PolicySettings {
    /// Checks that every setting is in its valid range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !self.pooling.has_valid_kernel() {
            return Err(PolicyError::Settings(format!(
                "the pooling kernel must be odd (SnapKV uses 5 or 7), got {}",
                self.pooling.kernel()
            )));
        }
        for (param, value) in self.params.iter() {
            param.check(value)?;
        }
        Ok(())
    }

    /// The value of `param`.
    pub fn get<P: TypedParam>(&self, param: &P) -> P::Value {
        self.params
            .get(param.key())
            .and_then(P::unwrap)
            .unwrap_or_else(|| param.default_value())
    }

    /// Sets `param` to `value` (checked by [`PolicySettings::validate`]).
    pub fn set<P: TypedParam>(&mut self, param: &P, value: P::Value) {
        self.params.insert(param.key(), P::wrap(value));
    }

    /// These settings with `param` set to `value`.
    pub fn with<P: TypedParam>(mut self, param: &P, value: P::Value) -> Self {
        self.set(param, value);
        self
    }

    /// Sets `param` to `value`, which must have the parameter's type.
    pub fn set_value(&mut self, param: Param, value: ParamValue) -> Result<(), PolicyError> {
        if !param.accepts(value) {
            return Err(PolicyError::Settings(format!(
                "the parameter `{}` takes {}, got {value}",
                param.key(),
                param.kind()
            )));
        }
        self.params.insert(param.key(), value);
        Ok(())
    }

    /// Applies `KEY=VALUE` (`sinks=8`, `judgeq_keep_window=true`): the CLI's `--param`.
    pub fn assign(&mut self, assignment: &str) -> Result<(), PolicyError> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            PolicyError::Settings(format!(
                "{assignment:?} is not KEY=VALUE (e.g. sinks=8, pyramid_beta=10)"
            ))
        })?;
        let param = policies::param(key.trim())
            .ok_or_else(|| PolicyError::UnknownParam(key.trim().into()))?;
        let value = param.parse(value)?;
        self.set_value(param, value)
    }
}

/// The fields every setting has, before the policies' parameters.
const SHARED_FIELDS: [&str; 4] = ["window", "pooling", "granularity", "group_order"];

/// Every field name: the shared ones, then each registered parameter's key.
fn field_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        SHARED_FIELDS
            .into_iter()
            .chain(policies::params().iter().map(|p| p.key()))
            .collect()
    })
}

impl Serialize for PolicySettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let params: Vec<(Param, ParamValue)> = self.params.iter().collect();
        let mut record =
            serializer.serialize_struct("PolicySettings", SHARED_FIELDS.len() + params.len())?;
        record.serialize_field("window", &self.window)?;
        record.serialize_field("pooling", &self.pooling)?;
        record.serialize_field("granularity", &self.granularity)?;
        record.serialize_field("group_order", &self.group_order)?;
        for (param, value) in params {
            match value {
                ParamValue::Switch(on) => record.serialize_field(param.key(), &on)?,
                ParamValue::Count(n) => record.serialize_field(param.key(), &n)?,
                ParamValue::Number(x) => record.serialize_field(param.key(), &x)?,
            }
        }
        record.end()
    }
}

impl<'de> Deserialize<'de> for PolicySettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("PolicySettings", field_names(), SettingsVisitor)
    }
}

struct SettingsVisitor;

impl<'de> Visitor<'de> for SettingsVisitor {
    type Value = PolicySettings;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("policy settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicySettings, A::Error> {
        let mut settings = PolicySettings::default();
        while let Some(FieldName(key)) = map.next_key()? {
            match key.as_str() {
                "window" => settings.window = map.next_value()?,
                "pooling" => settings.pooling = map.next_value()?,
                "granularity" => settings.granularity = map.next_value()?,
                "group_order" => settings.group_order = map.next_value()?,
                other => match policies::param(other) {
                    Some(param) => {
                        let value = map.next_value_seed(ValueOf(param))?;
                        settings.params.insert(param.key(), value);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        Ok(settings)
    }
}

/// A field name, read as an identifier (JSON keys and RON field names alike).
struct FieldName(String);

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = FieldName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<FieldName, E> {
                Ok(FieldName(name.to_owned()))
            }
        }
        deserializer.deserialize_identifier(NameVisitor)
    }
}

/// Reads one value of a parameter, with the parameter's type.
struct ValueOf(Param);

impl<'de> DeserializeSeed<'de> for ValueOf {
    type Value = ParamValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ParamValue, D::Error> {
        Ok(match self.0 {
            Param::Switch(_) => ParamValue::Switch(bool::deserialize(deserializer)?),
            Param::Count(_) => ParamValue::Count(u64::deserialize(deserializer)?),
            Param::Number(_) => ParamValue::Number(f64::deserialize(deserializer)?),
        })
    }
}
