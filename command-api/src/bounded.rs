//! Request fields whose size is only known once parsed (lists and maps), refused while they are
//! parsed: the domain's builders say no at the first item past a limit, and the rest of the body is
//! never read into memory. A request lists at most `MAX_TAGS` tags, repeats included, as its
//! schema says (`maxItems`).

use std::fmt;

use kurz_domain::link::{MAX_TAGS, Metadata, MetadataBuilder, Tags, TagsBuilder};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug)]
pub struct RequestTags(pub Tags);

impl<'de> Deserialize<'de> for RequestTags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = RequestTags;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of tags")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<RequestTags, A::Error> {
                let mut tags = TagsBuilder::default();
                let mut listed = 0;
                while let Some(tag) = items.next_element::<String>()? {
                    listed += 1;
                    if listed > MAX_TAGS {
                        return Err(de::Error::custom(format_args!("at most {MAX_TAGS} tags may be listed")));
                    }
                    tags.push(tag).map_err(de::Error::custom)?;
                }
                Ok(RequestTags(tags.build()))
            }
        }
        deserializer.deserialize_seq(Each)
    }
}

#[derive(Debug)]
pub struct RequestMetadata(pub Metadata);

impl<'de> Deserialize<'de> for RequestMetadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = RequestMetadata;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<RequestMetadata, A::Error> {
                let mut metadata = MetadataBuilder::default();
                while let Some((key, value)) = entries.next_entry::<String, String>()? {
                    metadata.insert(key, value).map_err(de::Error::custom)?;
                }
                Ok(RequestMetadata(metadata.build()))
            }
        }
        deserializer.deserialize_map(Each)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_refused_at_the_first_item_past_the_limit() {
        let tags: Vec<String> = (0..18_500).map(|i| format!("{i:x}")).collect();
        let error = serde_json::from_value::<RequestTags>(serde_json::json!(tags)).expect_err("refused");
        assert!(error.to_string().contains("at most 32 tags"), "{error}");
        let repeated = serde_json::json!(vec!["same"; 32]);
        assert_eq!(serde_json::from_value::<RequestTags>(repeated).expect("duplicates fold").0.as_slice(), ["same"]);
        let error = serde_json::from_value::<RequestTags>(serde_json::json!(vec!["same"; 33])).expect_err("refused");
        assert!(error.to_string().contains("at most 32 tags"), "{error}");
        let entries: serde_json::Map<String, serde_json::Value> =
            (0..1000).map(|i| (format!("k{i}"), serde_json::json!("v"))).collect();
        let error = serde_json::from_value::<RequestMetadata>(serde_json::Value::Object(entries)).expect_err("refused");
        assert!(error.to_string().contains("at most 32 entries"), "{error}");
    }
}
