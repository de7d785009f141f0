//! Reading untrusted JSON: size limits and errors that say where the problem is.
//!
//! Plans come from untrusted agents and graphs/scopes from files users edit by hand, so every
//! reader in this crate goes through [`parse_json`]: it refuses oversized input before parsing,
//! relies on `serde_json`'s recursion limit for deeply nested input, and reports failures with the
//! source name, line, column and the JSON path of the offending field. Nothing here panics on
//! input.

use serde::de::DeserializeOwned;
use std::fmt;

/// Where and why an input could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// File name or other label of the input.
    pub source_name: String,
    /// 1-based line and column, when the parser knows them.
    pub position: Option<(usize, usize)>,
    /// JSON path of the offending field (e.g. `stages[0][2].rps`), `.` for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// A semantic error found after parsing (no line/column: the parser has moved on).
    pub fn invalid(
        source_name: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        InputError {
            source_name: source_name.into(),
            position: None,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": field `{}`: {}", self.path, self.message)
    }
}

impl std::error::Error for InputError {}

/// Parses `text` as JSON into `T`, refusing inputs larger than `max_bytes`.
///
/// `what` names the document in the size error ("plan", "graph").
pub fn parse_json<T: DeserializeOwned>(
    text: &str,
    source_name: &str,
    what: &str,
    max_bytes: usize,
) -> Result<T, InputError> {
    if text.len() > max_bytes {
        return Err(InputError::invalid(
            source_name,
            ".",
            format!(
                "{what} is {} bytes, more than the {max_bytes}-byte limit",
                text.len()
            ),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        json_error(source_name, path, &inner)
    })?;
    de.end()
        .map_err(|inner| json_error(source_name, ".".to_string(), &inner))?;
    Ok(value)
}

fn json_error(source_name: &str, path: String, inner: &serde_json::Error) -> InputError {
    // serde_json appends " at line L column C" to its message; we report the position separately.
    let full = inner.to_string();
    let message = match full.rfind(" at line ") {
        Some(cut) => full[..cut].to_string(),
        None => full,
    };
    let position = (inner.line() > 0).then_some((inner.line(), inner.column()));
    InputError {
        source_name: source_name.to_string(),
        position,
        path,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        count: u32,
    }

    #[test]
    fn errors_name_line_column_and_field() {
        let text = "{\n  \"items\": [\n    {\"count\": 1},\n    {\"count\": \"two\"}\n  ]\n}";
        let err = parse_json::<Doc>(text, "doc.json", "doc", 1 << 20).unwrap_err();
        assert_eq!(err.path, "items[1].count");
        assert_eq!(err.position.map(|p| p.0), Some(4));
        let shown = err.to_string();
        assert!(shown.starts_with("doc.json:4:"), "{shown}");
        assert!(shown.contains("items[1].count"), "{shown}");
        assert!(!shown.contains(" at line "), "{shown}");
    }

    #[test]
    fn unknown_fields_trailing_garbage_and_size_are_errors() {
        let err = parse_json::<Doc>(r#"{"items": [], "extra": 1}"#, "d", "doc", 100).unwrap_err();
        assert!(err.message.contains("unknown field `extra`"), "{err}");
        let err = parse_json::<Doc>(r#"{"items": []} x"#, "d", "doc", 100).unwrap_err();
        assert!(err.message.contains("trailing"), "{err}");
        let err = parse_json::<Doc>(r#"{"items": []}"#, "d", "doc", 5).unwrap_err();
        assert!(err.message.contains("limit"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_json::<Doc>(&text, "d", "doc", 1 << 20).unwrap_err();
        assert!(!err.message.is_empty());
    }
}
