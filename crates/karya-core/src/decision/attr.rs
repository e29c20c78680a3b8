//! Attribute trees: the values a decision carries and a policy reads.
//!
//! Shaped like JSON (null, booleans, integers, floats, text, lists, maps with text keys) but a
//! type of the core's own, so the core needs no JSON library; the store and the server convert.
//! Integers stay integers: money amounts in minor units compare exactly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Attr>),
    Map(BTreeMap<String, Attr>),
}

impl Attr {
    /// An empty map.
    pub fn map() -> Attr {
        Attr::Map(BTreeMap::new())
    }

    /// Builder: this map with `key` set (no-op on a non-map).
    pub fn with(mut self, key: &str, value: impl Into<Attr>) -> Attr {
        if let Attr::Map(map) = &mut self {
            map.insert(key.to_string(), value.into());
        }
        self
    }

    /// The value at a dotted path (`claim.amount`), if every step exists.
    pub fn get_path(&self, path: &str) -> Option<&Attr> {
        path.split('.')
            .try_fold(self, |current, key| match current {
                Attr::Map(map) => map.get(key),
                _ => None,
            })
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Attr::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn to_cel(&self) -> cel::Value {
        match self {
            Attr::Null => cel::Value::Null,
            Attr::Bool(b) => cel::Value::Bool(*b),
            Attr::Int(n) => cel::Value::Int(*n),
            Attr::Float(x) => cel::Value::Float(*x),
            Attr::Text(text) => cel::Value::String(Arc::new(text.clone())),
            Attr::List(items) => {
                cel::Value::List(Arc::new(items.iter().map(Attr::to_cel).collect()))
            }
            Attr::Map(map) => {
                let map: HashMap<String, cel::Value> =
                    map.iter().map(|(k, v)| (k.clone(), v.to_cel())).collect();
                cel::Value::from(map)
            }
        }
    }
}

impl From<i64> for Attr {
    fn from(n: i64) -> Attr {
        Attr::Int(n)
    }
}

impl From<bool> for Attr {
    fn from(b: bool) -> Attr {
        Attr::Bool(b)
    }
}

impl From<&str> for Attr {
    fn from(text: &str) -> Attr {
        Attr::Text(text.to_string())
    }
}

impl From<String> for Attr {
    fn from(text: String) -> Attr {
        Attr::Text(text)
    }
}

impl<T: Into<Attr>> From<Vec<T>> for Attr {
    fn from(items: Vec<T>) -> Attr {
        Attr::List(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_into_maps() {
        let claim = Attr::map().with(
            "claim",
            Attr::map().with("amount", 25_000).with("kind", "motor"),
        );
        assert_eq!(claim.get_path("claim.amount"), Some(&Attr::Int(25_000)));
        assert_eq!(claim.get_path("claim.missing"), None);
        assert_eq!(claim.get_path("claim.amount.deeper"), None);
    }
}
