//! The mutator: structure-aware changes to JSON values, then, sometimes, byte-level havoc.
//!
//! Most of a door's code runs only after its input parses, so raw byte flips spend nearly all
//! their inputs on the JSON parser. Mutating the *value* (replacing a node, dropping or adding
//! a key, changing a type, splicing in a node from another real message) keeps most inputs
//! well-formed and reaching the methods behind the parser; byte havoc on a fraction of them
//! still covers the parsers and the framing.

use serde_json::{Map, Number, Value};

/// Strings worth trying anywhere a string goes, beside those harvested from the seeds.
const INTERESTING: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\n",
    "\r\n",
    "\u{feff}",
    "🙂",
    "é",
    "../../etc/passwd",
    "%00",
    "%zz",
    "%",
    "a:b",
    ":",
    "/",
    "//",
    "?",
    "#",
    "*",
    "=?base64?aGk=?=",
    "=?base64?!!!?=",
    "task_00000000000000000000000000000000",
    "task_",
    "task_ffffffffffffffffffffffffffffffffff",
    "TASK_STATE_COMPLETED",
    "-1",
    "18446744073709551616",
    "1e999",
    "NaN",
    "null",
    "true",
    "{}",
    "[]",
    "2.0",
    "1.0",
    "0.3",
    "2025-11-25",
    "2026-07-28",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999+99:99",
];

/// Numbers worth trying anywhere a number goes.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "100",
    "101",
    "0.5",
    "-0.5",
    "1e308",
    "-1e308",
    "5e-324",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
];

/// A seeded source of mutations. Every choice comes from `rng`, so a seed replays a run.
pub(crate) struct Mutator {
    pub(crate) rng: fastrand::Rng,
    /// Strings and keys taken from the seeds: the words the protocol knows.
    words: Vec<String>,
    /// Values taken from the seeds, spliced into other messages.
    nodes: Vec<Value>,
}

impl Mutator {
    /// A mutator whose dictionary is everything found in `seeds`.
    pub(crate) fn new(seed: u64, seeds: &[Value]) -> Self {
        let mut mutator = Self {
            rng: fastrand::Rng::with_seed(seed),
            words: INTERESTING.iter().map(|s| (*s).to_owned()).collect(),
            nodes: Vec::new(),
        };
        for seed in seeds {
            mutator.harvest(seed);
        }
        mutator.words.sort();
        mutator.words.dedup();
        mutator
    }

    /// Adds the keys, strings and nodes of `value` to the dictionary.
    pub(crate) fn harvest(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.words.push(text.clone()),
            Value::Array(items) => items.iter().for_each(|item| self.harvest(item)),
            Value::Object(map) => {
                for (key, item) in map {
                    self.words.push(key.clone());
                    self.harvest(item);
                }
            }
            _ => {}
        }
        if self.nodes.len() < 4096 {
            self.nodes.push(value.clone());
        }
    }

    /// True with probability `1 / n`.
    pub(crate) fn one_in(&mut self, n: u32) -> bool {
        self.rng.u32(0..n) == 0
    }

    /// Some element of `items`.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(0..items.len())]
    }

    /// A word of the dictionary, or now and then a random or very long string.
    pub(crate) fn word(&mut self) -> String {
        match self.rng.u32(0..20) {
            0 => (0..self.rng.usize(1..16))
                .map(|_| self.rng.char(..))
                .collect(),
            1 => "x".repeat(self.rng.usize(1..70_000)),
            _ => {
                let words = std::mem::take(&mut self.words);
                let word = self.pick(&words).clone();
                self.words = words;
                word
            }
        }
    }

    /// A number of the interesting kind.
    fn number(&mut self) -> Value {
        let text = *self.pick(NUMBERS);
        serde_json::from_str(text).unwrap_or(Value::Null)
    }

    /// A new value: a scalar, a node from a seed, or a deeply nested or very wide one.
    pub(crate) fn value(&mut self) -> Value {
        match self.rng.u32(0..12) {
            0 => Value::Null,
            1 => Value::Bool(self.rng.bool()),
            2 | 3 => self.number(),
            4..=6 => Value::String(self.word()),
            7 | 8 if !self.nodes.is_empty() => {
                let nodes = std::mem::take(&mut self.nodes);
                let node = self.pick(&nodes).clone();
                self.nodes = nodes;
                node
            }
            9 => {
                let mut value = Value::Null;
                for _ in 0..self.rng.usize(1..300) {
                    value = if self.rng.bool() {
                        Value::Array(vec![value])
                    } else {
                        Value::Object(Map::from_iter([(self.word(), value)]))
                    };
                }
                value
            }
            10 => Value::Array((0..self.rng.usize(0..2000)).map(|i| i.into()).collect()),
            _ => Value::Object(Map::new()),
        }
    }

    /// Applies one to four structural mutations to `value`.
    pub(crate) fn json(&mut self, value: &mut Value) {
        for _ in 0..self.rng.usize(1..5) {
            self.once(value);
        }
    }

    fn once(&mut self, value: &mut Value) {
        let count = count(value);
        let target = self.rng.usize(0..count);
        let Some(node) = nth(value, target) else {
            return;
        };
        match (self.rng.u32(0..10), node) {
            (0..=2, node) => *node = self.value(),
            (3, Value::Object(map)) if !map.is_empty() => {
                let key = map.keys().nth(self.rng.usize(0..map.len())).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
            (4 | 5, Value::Object(map)) => {
                let key = self.word();
                let item = self.value();
                map.insert(key, item);
            }
            (6, Value::Array(items)) if !items.is_empty() => {
                let at = self.rng.usize(0..items.len());
                if self.rng.bool() {
                    items.remove(at);
                } else {
                    let copy = items[at].clone();
                    items.push(copy);
                }
            }
            (7, Value::String(text)) => *text = self.word(),
            (7, node @ Value::Number(_)) => *node = self.number(),
            (8, node) => {
                // The same content in another type: a number as a string, a string as a number.
                *node = match &*node {
                    Value::String(text) => text.parse::<Number>().map_or(
                        Value::Array(vec![Value::String(text.clone())]),
                        Value::Number,
                    ),
                    Value::Number(number) => Value::String(number.to_string()),
                    Value::Bool(flag) => Value::String(flag.to_string()),
                    other => Value::String(other.to_string()),
                };
            }
            (_, node) => {
                let inner = node.take();
                *node = if self.rng.bool() {
                    Value::Array(vec![inner])
                } else {
                    Value::Object(Map::from_iter([(self.word(), inner)]))
                };
            }
        }
    }

    /// Byte-level havoc: flips, deletions, insertions, duplicated spans, a truncation.
    pub(crate) fn bytes(&mut self, bytes: &mut Vec<u8>) {
        for _ in 0..self.rng.usize(1..6) {
            let len = bytes.len();
            match self.rng.u32(0..6) {
                0 if len > 0 => {
                    let at = self.rng.usize(0..len);
                    bytes[at] ^= 1 << self.rng.u32(0..8);
                }
                1 if len > 0 => {
                    let at = self.rng.usize(0..len);
                    bytes[at] = *self.pick(b"\0\"\\{}[],:\n\r\x7f\xff\xc3");
                }
                2 if len > 0 => {
                    let start = self.rng.usize(0..len);
                    let end = self.rng.usize(start..=len.min(start + 16));
                    bytes.drain(start..end);
                }
                3 => {
                    let at = self.rng.usize(0..=len);
                    let word = self.word().into_bytes();
                    bytes.splice(at..at, word);
                }
                4 if len > 0 => {
                    let start = self.rng.usize(0..len);
                    let end = self.rng.usize(start..=len.min(start + 64));
                    let span = bytes[start..end].to_vec();
                    let at = self.rng.usize(0..=len);
                    bytes.splice(at..at, span);
                }
                _ => bytes.truncate(self.rng.usize(0..=len)),
            }
        }
    }
}

/// The number of nodes in `value`.
fn count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// The `n`th node of `value` in pre-order.
fn nth(value: &mut Value, mut n: usize) -> Option<&mut Value> {
    fn walk<'a>(value: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
        if *n == 0 {
            return Some(value);
        }
        *n -= 1;
        match value {
            Value::Array(items) => items.iter_mut().find_map(|item| walk(item, n)),
            Value::Object(map) => map.values_mut().find_map(|item| walk(item, n)),
            _ => None,
        }
    }
    walk(value, &mut n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_mutations() {
        let seed = serde_json::json!({"a": [1, "two", {"three": 3}]});
        let run = |s| {
            let mut mutator = Mutator::new(s, std::slice::from_ref(&seed));
            (0..50)
                .map(|_| {
                    let mut value = seed.clone();
                    mutator.json(&mut value);
                    value
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn nth_visits_every_node_in_order() {
        let mut value = serde_json::json!({"a": [1, 2], "b": 3});
        assert_eq!(count(&value), 5);
        assert_eq!(nth(&mut value, 2).cloned(), Some(1.into()));
        assert_eq!(nth(&mut value, 4).cloned(), Some(3.into()));
        assert_eq!(nth(&mut value, 5), None);
    }
}
