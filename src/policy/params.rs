//! Policy parameters: each policy lists the switches and numbers it reads
//! ([`super::Policy::params`]), and [`super::PolicySettings`] keeps one value per registered
//! parameter under the parameter's key. A new policy's parameters therefore reach `--param`,
//! `--help`, the explorer's settings, saved settings, manifests and run journals without any of
//! those naming them.
//!
//! Keys are the names settings have always been saved under (`sinks`, `pyramid_beta`...). Two
//! policies may share a parameter by listing the same static (Ada-KV's floor α, for instance,
//! for every head-adaptive policy).

use std::collections::BTreeMap;
use std::fmt;

use super::PolicyError;

/// An on/off parameter.
#[derive(Debug)]
pub struct Switch {
    /// Key in saved settings and `--param` (`judgeq_keep_window`).
    pub key: &'static str,
    /// Name in the explorer.
    pub label: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Value when not set.
    pub default: bool,
}

/// A whole number `≥ 0`.
#[derive(Debug)]
pub struct Count {
    /// Key in saved settings and `--param` (`sinks`).
    pub key: &'static str,
    /// Name in the explorer.
    pub label: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Value when not set.
    pub default: u64,
}

/// A real number within `[min, max]`.
#[derive(Debug)]
pub struct Number {
    /// Key in saved settings and `--param` (`pyramid_beta`).
    pub key: &'static str,
    /// Name in the explorer.
    pub label: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Value when not set.
    pub default: f64,
    /// Smallest valid value.
    pub min: f64,
    /// Largest valid value.
    pub max: f64,
    /// Step of the explorer's drag control.
    pub step: f64,
    /// The error when out of range, without the value (`PyramidKV's beta must be a number of
    /// at least 1 (default 20)`).
    pub invalid: &'static str,
}

/// One parameter of a policy, whatever its type.
#[derive(Clone, Copy, Debug)]
pub enum Param {
    /// On or off.
    Switch(&'static Switch),
    /// A whole number.
    Count(&'static Count),
    /// A real number.
    Number(&'static Number),
}

/// A parameter's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamValue {
    /// Of a [`Switch`].
    Switch(bool),
    /// Of a [`Count`].
    Count(u64),
    /// Of a [`Number`].
    Number(f64),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Switch(on) => write!(f, "{on}"),
            ParamValue::Count(n) => write!(f, "{n}"),
            ParamValue::Number(x) => write!(f, "{x}"),
        }
    }
}

impl Param {
    /// Key in saved settings and `--param`.
    pub fn key(self) -> &'static str {
        match self {
            Param::Switch(p) => p.key,
            Param::Count(p) => p.key,
            Param::Number(p) => p.key,
        }
    }

    /// Name in the explorer.
    pub fn label(self) -> &'static str {
        match self {
            Param::Switch(p) => p.label,
            Param::Count(p) => p.label,
            Param::Number(p) => p.label,
        }
    }

    /// What it does.
    pub fn help(self) -> &'static str {
        match self {
            Param::Switch(p) => p.help,
            Param::Count(p) => p.help,
            Param::Number(p) => p.help,
        }
    }

    /// The value when not set.
    pub fn default_value(self) -> ParamValue {
        match self {
            Param::Switch(p) => ParamValue::Switch(p.default),
            Param::Count(p) => ParamValue::Count(p.default),
            Param::Number(p) => ParamValue::Number(p.default),
        }
    }

    /// What values it takes, for messages (`true or false`).
    pub fn kind(self) -> &'static str {
        match self {
            Param::Switch(_) => "true or false",
            Param::Count(_) => "a whole number",
            Param::Number(_) => "a number",
        }
    }

    /// Whether `value` has this parameter's type.
    pub fn accepts(self, value: ParamValue) -> bool {
        matches!(
            (self, value),
            (Param::Switch(_), ParamValue::Switch(_))
                | (Param::Count(_), ParamValue::Count(_))
                | (Param::Number(_), ParamValue::Number(_))
        )
    }

    /// `text` as a value of this parameter (`true`/`false`/`on`/`off`, a whole number, a number).
    pub fn parse(self, text: &str) -> Result<ParamValue, PolicyError> {
        let text = text.trim();
        let value = match self {
            Param::Switch(_) => match text.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "1" => Some(ParamValue::Switch(true)),
                "false" | "off" | "no" | "0" => Some(ParamValue::Switch(false)),
                _ => None,
            },
            Param::Count(_) => text.parse().ok().map(ParamValue::Count),
            Param::Number(_) => text.parse().ok().map(ParamValue::Number),
        };
        value.ok_or_else(|| {
            PolicyError::Settings(format!(
                "the parameter `{}` takes {}, got {text:?}",
                self.key(),
                self.kind()
            ))
        })
    }

    /// Errors when `value` is outside the parameter's valid range.
    pub(crate) fn check(self, value: ParamValue) -> Result<(), PolicyError> {
        match (self, value) {
            (Param::Number(p), ParamValue::Number(x))
                if !(x.is_finite() && (p.min..=p.max).contains(&x)) =>
            {
                Err(PolicyError::Settings(format!("{}, got {x}", p.invalid)))
            }
            _ if self.accepts(value) => Ok(()),
            _ => Err(PolicyError::Settings(format!(
                "the parameter `{}` takes {}, got {value}",
                self.key(),
                self.kind()
            ))),
        }
    }
}

/// A parameter whose values have one Rust type, for typed reads and writes through
/// [`super::PolicySettings::get`] and [`super::PolicySettings::set`].
pub trait TypedParam: Sync + 'static {
    /// The Rust type of its values.
    type Value: Copy;
    /// Key in saved settings.
    fn key(&self) -> &'static str;
    /// The value when not set.
    fn default_value(&self) -> Self::Value;
    /// `value` as a [`ParamValue`].
    fn wrap(value: Self::Value) -> ParamValue;
    /// The typed value of `value`, when it has this type.
    fn unwrap(value: ParamValue) -> Option<Self::Value>;
}

impl TypedParam for Switch {
    type Value = bool;
    fn key(&self) -> &'static str {
        self.key
    }
    fn default_value(&self) -> bool {
        self.default
    }
    fn wrap(value: bool) -> ParamValue {
        ParamValue::Switch(value)
    }
    fn unwrap(value: ParamValue) -> Option<bool> {
        match value {
            ParamValue::Switch(on) => Some(on),
            _ => None,
        }
    }
}

impl TypedParam for Count {
    type Value = u64;
    fn key(&self) -> &'static str {
        self.key
    }
    fn default_value(&self) -> u64 {
        self.default
    }
    fn wrap(value: u64) -> ParamValue {
        ParamValue::Count(value)
    }
    fn unwrap(value: ParamValue) -> Option<u64> {
        match value {
            ParamValue::Count(n) => Some(n),
            _ => None,
        }
    }
}

impl TypedParam for Number {
    type Value = f64;
    fn key(&self) -> &'static str {
        self.key
    }
    fn default_value(&self) -> f64 {
        self.default
    }
    fn wrap(value: f64) -> ParamValue {
        ParamValue::Number(value)
    }
    fn unwrap(value: ParamValue) -> Option<f64> {
        match value {
            ParamValue::Number(x) => Some(x),
            _ => None,
        }
    }
}

/// The value of every registered parameter; one never set holds its default, so two settings
/// that differ only by a default spelled out compare equal.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamValues(BTreeMap<&'static str, ParamValue>);

impl Default for ParamValues {
    fn default() -> Self {
        Self(
            super::policies::params()
                .iter()
                .map(|p| (p.key(), p.default_value()))
                .collect(),
        )
    }
}

impl ParamValues {
    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<ParamValue> {
        self.0.get(key).copied()
    }

    /// Stores `value` under `key` (callers check the type).
    pub(crate) fn insert(&mut self, key: &'static str, value: ParamValue) {
        self.0.insert(key, value);
    }

    /// Every registered parameter with its value, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = (Param, ParamValue)> + '_ {
        super::policies::params()
            .iter()
            .map(|&p| (p, self.get(p.key()).unwrap_or(p.default_value())))
    }
}
