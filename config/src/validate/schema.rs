//! The keys of every table of the file format, read from the format's own `Deserialize` impls.
//!
//! The unknown-key check ([`super::parse`]) needs each table's keys. Rather than a second list
//! that could drift from the structs in [`crate::file`], they are read from the structs
//! themselves: [`ConfigFile`]'s derived `Deserialize` is run against [`Probe`], a deserializer
//! that holds no data. Each struct hands it its field names (the same list `deny_unknown_fields`
//! checks against), and the probe answers with every field in turn, descending into
//! `Option`s, lists and nested structs, so that every table's keys are recorded under its path
//! (`step_up`, `listeners.tls`, `policies.requirements`; list entries add no index).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use crate::file::ConfigFile;

type Error = de::value::Error;

/// One table of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableKeys {
    /// Its keys, in declaration order; `None` for a map that takes any key.
    pub(crate) keys: Option<&'static [&'static str]>,
    /// Whether it is an entry of a list (`[[routes]]`, a requirement) rather than one table.
    pub(crate) in_list: bool,
}

/// Table path → its keys. The top level is `""`.
pub(crate) type Tables = BTreeMap<String, TableKeys>;

/// Every table of [`ConfigFile`], read once.
pub(crate) fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| read().0)
}

/// The tables, and whether the probe got through the whole format. A field type the probe
/// cannot answer leaves the tables after it unrecorded, and so unchecked here (they are still
/// refused by `deny_unknown_fields`, one at a time); a unit test keeps that from happening.
fn read() -> (Tables, Result<(), Error>) {
    let mut tables = Tables::new();
    let result = ConfigFile::deserialize(Probe {
        path: String::new(),
        in_list: false,
        tables: &mut tables,
    })
    .map(drop);
    (tables, result)
}

/// `a.b` from `a` and `b`; `b` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A deserializer that records the tables it is asked for and otherwise answers with
/// placeholder values (`""`, `0`, `false`, one list entry), so that the derived visitors go
/// through every field.
struct Probe<'a> {
    path: String,
    in_list: bool,
    tables: &'a mut Tables,
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "{}: a self-describing type the key probe cannot answer",
            self.path
        )))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_bool(false)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_i8(0)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_i16(0)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_i32(0)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_i64(0)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u8(0)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u16(0)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u32(0)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(0)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_f32(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_f64(0.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_char('x')
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("")
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_bytes(b"")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_bytes(b"")
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_seq(OneEntry(Some(Probe {
            in_list: true,
            ..self
        })))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_any(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.tables.insert(
            self.path,
            TableKeys {
                keys: None,
                in_list: self.in_list,
            },
        );
        v.visit_map(de::value::MapDeserializer::new(
            std::iter::empty::<((), ())>(),
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.tables.insert(
            self.path.clone(),
            TableKeys {
                keys: Some(fields),
                in_list: self.in_list,
            },
        );
        v.visit_map(Fields {
            path: self.path,
            fields,
            next: 0,
            tables: self.tables,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match variants.first() {
            Some(first) => v.visit_enum(IntoDeserializer::<Error>::into_deserializer(*first)),
            None => self.deserialize_any(v),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
}

/// A list of exactly one entry, itself probed.
struct OneEntry<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneEntry<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .take()
            .map(|probe| seed.deserialize(probe))
            .transpose()
    }
}

/// A struct's fields, each once, with probed values.
struct Fields<'a> {
    path: String,
    fields: &'static [&'static str],
    next: usize,
    tables: &'a mut Tables,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        self.fields
            .get(self.next)
            .map(|field| seed.deserialize(IntoDeserializer::<Error>::into_deserializer(*field)))
            .transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self.fields.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        seed.deserialize(Probe {
            path: join(&self.path, field),
            in_list: false,
            tables: &mut *self.tables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_reads_the_whole_format() {
        let (tables, result) = read();
        result.expect("every field type of the file format is one the probe answers");
        let paths: Vec<&str> = tables.keys().map(String::as_str).collect();
        for table in [
            "",
            "listeners",
            "listeners.tls",
            "admin",
            "server",
            "upstreams",
            "upstreams.health_check",
            "upstreams.tls",
            "issuer",
            "tokens",
            "policies",
            "policies.requirements",
            "routes",
            "identity_headers",
            "step_up",
            "logging",
        ] {
            assert!(paths.contains(&table), "{table:?} not among {paths:?}");
        }
        let step_up = tables["step_up"];
        assert!(!step_up.in_list);
        assert!(step_up.keys.unwrap().contains(&"cookie_secure"));
        assert!(tables["routes"].in_list && tables["policies.requirements"].in_list);
        assert!(!tables["listeners.tls"].in_list);
        // Fields that are not tables are not recorded as tables.
        assert!(!tables.contains_key("step_up.cookie_secure"));
        assert!(!tables.contains_key("listeners.address"));
    }

    #[test]
    fn the_probe_matches_what_serde_refuses() {
        // Each recorded table refuses exactly the keys it does not list: a key it lists is
        // never reported unknown, one it does not is (serde's own check, one key at a time).
        for (path, table) in tables() {
            let Some(keys) = table.keys else { continue };
            let mut header = String::new();
            let mut prefix = String::new();
            for part in path.split('.').filter(|p| !p.is_empty()) {
                prefix = join(&prefix, part);
                let list = tables()[&prefix].in_list;
                header.push_str(&if list {
                    format!("[[{prefix}]]\n")
                } else {
                    format!("[{prefix}]\n")
                });
            }
            let err = toml::from_str::<ConfigFile>(&format!("{header}zz_unknown = 1\n"))
                .expect_err("an unknown key is refused")
                .to_string();
            assert!(err.contains("unknown field `zz_unknown`"), "{path}: {err}");
            for key in keys {
                assert!(err.contains(&format!("`{key}`")), "{path}: {key} in {err}");
            }
        }
    }
}
