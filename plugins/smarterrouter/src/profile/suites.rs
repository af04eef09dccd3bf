//! The prompt suites (JSON files in `plugins/smarterrouter/suites/`, compiled in): for each
//! profiled category, prompts with an automatic grader.

use serde::Deserialize;

use super::graders::Grader;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub category: String,
    pub prompts: Vec<SuitePrompt>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuitePrompt {
    pub id: String,
    pub prompt: String,
    pub grader: Grader,
}

const FILES: &[(&str, &str)] = &[
    ("coding.json", include_str!("../../suites/coding.json")),
    (
        "reasoning.json",
        include_str!("../../suites/reasoning.json"),
    ),
    ("math.json", include_str!("../../suites/math.json")),
    ("factual.json", include_str!("../../suites/factual.json")),
    (
        "instruction.json",
        include_str!("../../suites/instruction.json"),
    ),
    (
        "creativity.json",
        include_str!("../../suites/creativity.json"),
    ),
];

/// Every suite; an unreadable file is reported with its name.
pub fn all() -> Result<Vec<Suite>, String> {
    FILES
        .iter()
        .map(|(name, text)| {
            let suite =
                serde_json::from_str::<Suite>(text).map_err(|e| format!("suite {name}: {e}"))?;
            for p in &suite.prompts {
                if let Grader::Contains { any_of, .. } = &p.grader {
                    if any_of.is_empty() || any_of.iter().any(|a| a.trim().is_empty()) {
                        return Err(format!(
                            "suite {name}, prompt {}: any_of needs non-empty answers",
                            p.id
                        ));
                    }
                }
            }
            Ok(suite)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suite_parses_and_its_example_answers_pass() {
        let suites = all().unwrap();
        assert_eq!(suites.len(), 6);
        for suite in suites {
            // Validation caps router.profiling.prompts_per_category at this number.
            assert_eq!(
                suite.prompts.len(),
                crate::config::SUITE_PROMPTS_PER_CATEGORY,
                "{}",
                suite.category
            );
            for p in &suite.prompts {
                assert!(
                    p.grader.passes(&p.grader.passing_reply()),
                    "{}/{}",
                    suite.category,
                    p.id
                );
                let counts_only = matches!(
                    p.grader,
                    Grader::WordCount { .. } | Grader::LineCount { .. }
                );
                if !counts_only {
                    assert!(
                        !p.grader.passes("I do not know."),
                        "{}/{} passes a non-answer",
                        suite.category,
                        p.id
                    );
                }
            }
        }
    }
}
