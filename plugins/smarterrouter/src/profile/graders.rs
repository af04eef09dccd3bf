//! Automatic graders for profiling answers: each checks something a reply either does or does not
//! do (a number, an accepted answer, valid JSON with keys, a word or line count), so quality is
//! measured without an LLM judge. Pure functions.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Grader {
    /// The last number in the reply equals `answer` (within `tolerance`).
    Number {
        answer: f64,
        #[serde(default)]
        tolerance: f64,
    },
    /// The reply contains one of the accepted answers as a whole word.
    Contains {
        any_of: Vec<String>,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// The reply (or its first fenced block) is a JSON object with these keys.
    Json { required_keys: Vec<String> },
    /// The reply has between `min` and `max` words.
    WordCount { min: usize, max: usize },
    /// The reply has between `min` and `max` non-empty lines.
    LineCount { min: usize, max: usize },
}

impl Grader {
    pub fn passes(&self, reply: &str) -> bool {
        let reply = strip_thinking(reply).trim();
        match self {
            Grader::Number { answer, tolerance } => {
                last_number(reply).is_some_and(|n| (n - answer).abs() <= tolerance.max(1e-9))
            }
            Grader::Contains {
                any_of,
                case_sensitive,
            } => any_of
                .iter()
                .any(|accepted| contains_word(reply, accepted, *case_sensitive)),
            Grader::Json { required_keys } => json_object(reply)
                .is_some_and(|obj| required_keys.iter().all(|k| obj.get(k).is_some())),
            Grader::WordCount { min, max } => {
                let n = reply.split_whitespace().count();
                (*min..=*max).contains(&n)
            }
            Grader::LineCount { min, max } => {
                let n = reply.lines().filter(|l| !l.trim().is_empty()).count();
                (*min..=*max).contains(&n)
            }
        }
    }

    /// A reply that passes: used by tests to script a model that answers right.
    pub fn passing_reply(&self) -> String {
        match self {
            Grader::Number { answer, .. } => format!("The answer is {answer}"),
            Grader::Contains { any_of, .. } => any_of.first().cloned().unwrap_or_default(),
            Grader::Json { required_keys } => {
                let fields: Vec<String> = required_keys
                    .iter()
                    .map(|k| format!("\"{k}\": 1"))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            Grader::WordCount { min, .. } => vec!["word"; (*min).max(1)].join(" "),
            Grader::LineCount { min, .. } => vec!["line"; (*min).max(1)].join("\n"),
        }
    }
}

/// Drops `<think>...</think>` reasoning that some models put before the answer.
fn strip_thinking(reply: &str) -> &str {
    match reply.rfind("</think>") {
        Some(end) => &reply[end + "</think>".len()..],
        None => reply,
    }
}

fn last_number(text: &str) -> Option<f64> {
    // "1,024" is one number; "3,4" and "a, b" are separators.
    let chars: Vec<char> = text.chars().collect();
    let thousands = |i: usize| {
        i > 0
            && chars[i - 1].is_ascii_digit()
            && (1..=3).all(|k| chars.get(i + k).is_some_and(char::is_ascii_digit))
            && !chars.get(i + 4).is_some_and(char::is_ascii_digit)
    };
    let cleaned: String = chars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            ',' if thousands(i) => None,
            ',' => Some(' '),
            other => Some(*other),
        })
        .collect();
    let mut last = None;
    let bytes = cleaned.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_number = bytes[i].is_ascii_digit()
            || (bytes[i] == b'-'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()));
        if starts_number {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let token = cleaned[start..i].trim_end_matches('.');
            if let Ok(n) = token.parse::<f64>() {
                last = Some(n);
            }
        } else {
            i += 1;
        }
    }
    last
}

fn contains_word(text: &str, word: &str, case_sensitive: bool) -> bool {
    if word.is_empty() {
        return false;
    }
    let (text, word) = if case_sensitive {
        (text.to_string(), word.to_string())
    } else {
        (text.to_lowercase(), word.to_lowercase())
    };
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(pos) = text[from..].find(&word) {
        let start = from + pos;
        let end = start + word.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !is_word(before) && !is_word(after) {
            return true;
        }
        from = start + word.len().max(1);
        while !text.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

fn json_object(reply: &str) -> Option<serde_json::Map<String, Value>> {
    let candidate = match reply.find("```") {
        Some(open) => {
            let after = &reply[open + 3..];
            let after = after.strip_prefix("json").unwrap_or(after);
            let close = after.find("```").unwrap_or(after.len());
            &after[..close]
        }
        None => {
            let start = reply.find('{')?;
            let end = reply.rfind('}')?;
            reply.get(start..=end)?
        }
    };
    match serde_json::from_str::<Value>(candidate.trim()).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_takes_the_last_number_and_tolerance() {
        let g = Grader::Number {
            answer: 150.0,
            tolerance: 0.0,
        };
        assert!(g.passes("60 km/h for 2.5 hours gives 150 km."));
        assert!(g.passes("150"));
        assert!(!g.passes("It is 2.5 hours"));
        assert!(!g.passes("no idea"));
        let g = Grader::Number {
            answer: 0.875,
            tolerance: 0.001,
        };
        assert!(g.passes("0.875"));
        assert!(Grader::Number {
            answer: 1024.0,
            tolerance: 0.0
        }
        .passes("1,024"));
        assert!(Grader::Number {
            answer: -3.0,
            tolerance: 0.0
        }
        .passes("x = -3"));
    }

    #[test]
    fn contains_is_whole_word_and_case_aware() {
        let g = Grader::Contains {
            any_of: vec!["paris".into()],
            case_sensitive: false,
        };
        assert!(g.passes("Paris."));
        assert!(!g.passes("Parisian food"));
        let g = Grader::Contains {
            any_of: vec!["HELLO".into()],
            case_sensitive: true,
        };
        assert!(g.passes("HELLO"));
        assert!(!g.passes("hello"));
        assert!(Grader::Contains {
            any_of: vec!["h₂o".into()],
            case_sensitive: false
        }
        .passes("H₂O"));
    }

    #[test]
    fn json_in_text_or_fence() {
        let g = Grader::Json {
            required_keys: vec!["name".into(), "age".into()],
        };
        assert!(g.passes(r#"{"name": "Ada", "age": 36}"#));
        assert!(g.passes("Here:\n```json\n{\"name\": \"Ada\", \"age\": 36}\n```"));
        assert!(!g.passes(r#"{"name": "Ada"}"#));
        assert!(!g.passes("name: Ada"));
    }

    #[test]
    fn counts_and_thinking() {
        assert!(Grader::WordCount { min: 3, max: 3 }.passes("deep blue endless"));
        assert!(!Grader::WordCount { min: 3, max: 3 }.passes("deep blue"));
        assert!(Grader::LineCount { min: 3, max: 3 }.passes("a\n\nb\nc\n"));
        assert!(Grader::Number {
            answer: 4.0,
            tolerance: 0.0
        }
        .passes("<think>2+3=5? no, 7</think>4"));
    }

    #[test]
    fn passing_replies_pass() {
        for g in [
            Grader::Number {
                answer: 0.875,
                tolerance: 0.001,
            },
            Grader::Contains {
                any_of: vec!["out".into()],
                case_sensitive: true,
            },
            Grader::Json {
                required_keys: vec!["a".into()],
            },
            Grader::WordCount { min: 20, max: 60 },
            Grader::LineCount { min: 2, max: 2 },
        ] {
            assert!(g.passes(&g.passing_reply()), "{g:?}");
        }
    }
}
